"""Delta maintenance (issue 5): compaction and VACUUM change no row of any table, for
Spark and for the API's reader (delta-rs); gold stays one sorted file per partition and
period (a month of hours, a year of the rest);
a retention under 7 days is refused; VACUUM removes the files of replaced versions and
the uncommitted files a killed run leaves behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable as RsDeltaTable

from jobs import run
from jobs.config import load_config
from jobs.maintenance import MaintenanceError, maintain
from jobs.spec import GOLD_SORT
from jobs.tables import GROUP_DATETIME, PARTITIONS, SESSIONS, Lakehouse
from tests.helpers import generated_world

START = dt.date(2016, 2, 27)
DAYS = 4
NOW = dt.datetime(2016, 3, 20, tzinfo=dt.timezone.utc)


def _rows(spark, lake: Path) -> dict:
    lh = Lakehouse(spark, str(lake))
    return {t: sorted((tuple(r) for r in lh.read(t).collect()), key=repr) for t in PARTITIONS if lh.exists(t)}


def _rs_gold(lake: Path) -> list:
    rows = RsDeltaTable(str(lake / GROUP_DATETIME)).to_pyarrow_table().to_pylist()
    return sorted((tuple(sorted(r.items())) for r in rows), key=repr)


def _parquet_on_disk(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts}


def _assert_sorted_files_of_one_period(lake: Path) -> None:
    for uri in RsDeltaTable(str(lake / GROUP_DATETIME)).file_uris():
        t = pq.read_table(uri.removeprefix("file://"), columns=[*GOLD_SORT, "bucket_date"]).to_pylist()
        keys = [tuple(r[c] for c in GOLD_SORT) for r in t]
        assert keys == sorted(keys), uri
        hourly = "interval=hourly" in uri
        assert len({r["bucket_date"].replace(day=1) if hourly else r["bucket_date"].year for r in t}) == 1, uri


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A lakehouse after a backfill and a partial re-run: several files per partition."""
    root = generated_world(tmp_path_factory.mktemp("maintenance"), start=START, days=DAYS,
                           devices=8, seed=3)
    conf = root / "conf"
    lake = root / "lake"
    cfg = load_config(conf).with_storage(str(root / "landing"), str(lake))
    run.backfill(spark, cfg, START, START + dt.timedelta(days=DAYS - 1), now=NOW)
    run.backfill(spark, cfg, START + dt.timedelta(days=1), START + dt.timedelta(days=1), now=NOW)
    return lake


def test_the_runs_write_gold_sorted_one_period_a_file(lake):
    # Before maintenance: the layout the runs themselves give (their replaceWhere keeps
    # a rewritten file's rows in their order).
    _assert_sorted_files_of_one_period(lake)


def test_a_retention_under_seven_days_is_refused(spark, lake):
    with pytest.raises(MaintenanceError, match="below 168"):
        maintain(spark, Lakehouse(spark, str(lake)), retain_hours=24)


def test_maintenance_changes_no_row_and_vacuum_removes_dead_files(spark, lake):
    before, rs_before = _rows(spark, lake), _rs_gold(lake)
    gold = lake / GROUP_DATETIME
    files_before = len(RsDeltaTable(str(gold)).file_uris())
    # What a killed run leaves: a data file no commit references.
    orphan = lake / SESSIONS / "mall_id=215" / "orphan-of-a-killed-run.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"PAR1 not really")

    reports = maintain(spark, Lakehouse(spark, str(lake)))  # the safe default: 168 h
    assert _rows(spark, lake) == before and _rs_gold(lake) == rs_before
    by_table = {r.table: r for r in reports}
    assert by_table[GROUP_DATETIME].files_before == files_before > 12
    # One file per partition and period: Feb 27 … Mar 1 is two months of hourly buckets,
    # one year of each of the 5 other intervals with data; 7 files a mall.
    assert by_table[GROUP_DATETIME].files_after_optimize == len(RsDeltaTable(str(gold)).file_uris()) == 14
    assert all(r.files_vacuumed == 0 for r in reports)  # nothing is older than a week yet
    assert orphan.exists()

    # Readers gone, a week later: VACUUM with retention 0 stands in for the wait.
    maintain(spark, Lakehouse(spark, str(lake)), retain_hours=0, enforce_retention=False,
             tables=[GROUP_DATETIME, SESSIONS])
    assert not orphan.exists()
    live = {u.removeprefix("file://") for u in RsDeltaTable(str(gold)).file_uris()}
    assert _parquet_on_disk(gold) == live
    assert _rows(spark, lake) == before and _rs_gold(lake) == rs_before


def test_gold_files_stay_sorted_for_the_api_and_hold_one_period_each(lake):
    _assert_sorted_files_of_one_period(lake)
