"""End to end on a small generated world: backfill = the independent reference model
(tests/reference.py); nightly day by day = backfill; reruns change nothing; late files
are absorbed; too-late records wait for a backfill (SPEC §9)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from jobs import run
from jobs.config import load_config
from jobs.generate import generate
from jobs.generate.world import make_objects, write_objects_yaml
from jobs.tables import GROUP_DATETIME, QUARANTINE, SESSIONS, BRONZE_PROBES, Lakehouse
from tests import reference

START = dt.date(2016, 3, 24)  # covers Berlin's DST start (03-27) and a month end
DAYS = 10
END = START + dt.timedelta(days=DAYS - 1)
NOW = dt.datetime(2016, 4, 20, tzinfo=dt.timezone.utc)
KEY = ("object_id", "interval", "bucket_start", "bounce_threshold", "engagement_threshold", "user_type")


def _conf(folder: Path, pipeline: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_objects_yaml(folder / "objects.yaml", make_objects())
    (folder / "pipeline.yaml").write_text(pipeline)
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    conf = _conf(root / "conf")
    generate(conf, root / "landing", start=START, days=DAYS, devices=30, seed=7)
    return root


def _cfg(conf: Path, landing: Path, lake: Path):
    return load_config(conf).with_storage(str(landing), str(lake))


def _gold(spark, lake: Path) -> dict:
    rows = {}
    for r in Lakehouse(spark, str(lake)).read(GROUP_DATETIME).collect():
        d = r.asDict()
        d["bucket_start"] = d["bucket_start"].replace(tzinfo=dt.timezone.utc)
        rows[tuple(d[k] for k in KEY)] = d
    return rows


def _table(spark, lake: Path, table: str, *cols) -> list:
    df = Lakehouse(spark, str(lake)).read(table)
    return sorted(tuple(r) for r in df.select(*(cols or df.columns)).collect())


def _diff(got: dict, expected: dict) -> list[str]:
    problems = [f"missing {k}" for k in sorted(set(expected) - set(got), key=str)[:5]]
    problems += [f"extra {k}" for k in sorted(set(got) - set(expected), key=str)[:5]]
    for k in sorted(set(got) & set(expected), key=str):
        bad = {c: (expected[c], got[c]) for c in expected[k] if got[k].get(c) != expected[k][c]}
        if bad:
            problems.append(f"{k}: expected/got {bad}")
        if len(problems) > 10:
            break
    return problems


@pytest.fixture(scope="module")
def backfilled(spark, world):
    lake = world / "lake-backfill"
    cfg = _cfg(world / "conf", world / "landing", lake)
    summary = run.backfill(spark, cfg, START, END, now=NOW)
    return lake, summary


def test_backfill_equals_the_reference_model(spark, world, backfilled):
    lake, summary = backfilled
    expected_rows, rejected, ref_sessions = reference.compute(world / "conf", world / "landing", NOW)
    expected = {tuple(r[k] for k in KEY): {c: v for c, v in r.items()} for r in expected_rows}
    got = _gold(spark, lake)
    assert len(expected) > 10_000
    assert _diff(got, expected) == []
    assert summary.gold_rows_written == len(expected)
    assert _table(spark, lake, SESSIONS, "object_id", "date", "duration_ms") == sorted(
        (s["object_id"], s["date"], s["duration_ms"]) for s in ref_sessions)


def test_every_rejected_record_is_in_the_quarantine_with_its_reason(spark, world, backfilled):
    lake, summary = backfilled
    _, rejected, _ = reference.compute(world / "conf", world / "landing", NOW)
    got = [(f.removeprefix("file:"), n, reason) for f, n, reason in
           _table(spark, lake, QUARANTINE, "source_file", "line_no", "reason")]
    assert got == sorted((r.source_file, r.line_no, r.reason) for r in rejected)
    assert {r.reason for r in rejected} >= {"malformed", "invalid_mac", "invalid_rssi", "invalid_ts",
                                            "unknown_sensor"}
    assert sum(summary.rejected.values()) == len(rejected)


def test_nightly_day_by_day_equals_backfill_and_reruns_change_nothing(spark, world, backfilled, tmp_path):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    landing.mkdir()
    cfg = _cfg(world / "conf", landing, lake)
    arrivals = sorted(p for p in (world / "landing").iterdir() if p.is_dir())
    assert any(dt.date.fromisoformat(p.name) > END for p in arrivals) or len(arrivals) >= DAYS
    for folder in arrivals:
        shutil.copytree(folder, landing / folder.name)
        run.nightly(spark, cfg, dt.date.fromisoformat(folder.name), now=NOW)
    expected = _gold(spark, backfilled[0])
    assert _diff(_gold(spark, lake), expected) == []

    before = (_table(spark, lake, BRONZE_PROBES), _table(spark, lake, SESSIONS))
    again = run.nightly(spark, cfg, dt.date.fromisoformat(arrivals[-1].name), now=NOW)
    assert again.files_new == 0
    run.backfill(spark, cfg, START, END, now=NOW)
    assert _diff(_gold(spark, lake), expected) == []
    assert (_table(spark, lake, BRONZE_PROBES), _table(spark, lake, SESSIONS)) == before


def test_a_redelivered_file_changes_nothing(spark, world, tmp_path):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(world / "landing", landing)
    cfg = _cfg(world / "conf", landing, lake)
    run.backfill(spark, cfg, START, END, now=NOW)
    gold, bronze = _gold(spark, lake), _table(spark, lake, BRONZE_PROBES, "sensor_id", "client_id", "ts", "rssi")
    first = sorted(landing.rglob("*.*"))[0]
    copy = landing / "redelivered" / first.name
    copy.parent.mkdir()
    shutil.copy(first, copy)
    summary = run.nightly(spark, cfg, END, now=NOW)
    assert summary.files_new == 1
    assert _table(spark, lake, BRONZE_PROBES, "sensor_id", "client_id", "ts", "rssi") == bronze
    assert _diff(_gold(spark, lake), gold) == []


def test_too_late_records_wait_in_quarantine_for_a_backfill(spark, world, tmp_path):
    conf = _conf(tmp_path / "conf", "max_lateness_days: 3\n")
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(world / "landing", landing)
    cfg = _cfg(conf, landing, lake)
    summary = run.nightly(spark, cfg, END, now=NOW)
    assert summary.rejected["too_late"] > 0
    held = Lakehouse(spark, str(lake)).read(QUARANTINE).where("reason = 'too_late'")
    assert held.agg({"date": "max"}).first()[0] < END - dt.timedelta(days=3)

    summary = run.backfill(spark, cfg, START, END, now=NOW)
    assert summary.replayed_from_quarantine > 0
    assert Lakehouse(spark, str(lake)).read(QUARANTINE).where("reason = 'too_late'").count() == 0
    expected_rows, _, _ = reference.compute(conf, landing, NOW)
    expected = {tuple(r[k] for k in KEY): r for r in expected_rows}
    assert _diff(_gold(spark, lake), expected) == []


def test_randomised_macs_included_when_configured(spark, world, tmp_path):
    conf = _conf(tmp_path / "conf", "randomized_macs: include\n")
    lake = tmp_path / "lake"
    cfg = _cfg(conf, world / "landing", lake)
    summary = run.backfill(spark, cfg, START, END, now=NOW)
    assert summary.randomized_excluded == 0 and summary.randomized_read > 0
    expected_rows, _, _ = reference.compute(conf, world / "landing", NOW)
    expected = {tuple(r[k] for k in KEY): r for r in expected_rows}
    assert _diff(_gold(spark, lake), expected) == []
