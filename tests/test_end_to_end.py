"""End to end on a small generated world: backfill = the independent reference model
(tests/reference.py); nightly day by day = the model (four nights, late files among them);
a backfill, then nightly runs = one whole backfill (`make test-heavy`); reruns change nothing; a redelivered file
changes nothing; too-late records wait for a backfill (SPEC §9)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from jobs import run
from jobs.config import load_config
from jobs.generate.world import make_objects, write_objects_yaml
from jobs.tables import BRONZE_PROBES, QUARANTINE, SESSIONS, Lakehouse
from tests import reference
from tests.helpers import GOLD_KEY as KEY, generated_world, gold_by_key

START = dt.date(2016, 3, 24)  # covers Berlin's DST start (03-27) and a month end
DAYS = 10
END = START + dt.timedelta(days=DAYS - 1)
NOW = dt.datetime(2016, 4, 20, tzinfo=dt.timezone.utc)


def _conf(folder: Path, pipeline: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_objects_yaml(folder / "objects.yaml", make_objects())
    (folder / "pipeline.yaml").write_text(pipeline)
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generated_world(tmp_path_factory.mktemp("world"), start=START, days=DAYS, devices=30, seed=7)


def _cfg(conf: Path, landing: Path, lake: Path):
    return load_config(conf).with_storage(str(landing), str(lake))


def _table(spark, lake: Path, table: str, *cols) -> list:
    df = Lakehouse(spark, str(lake)).read(table)
    return sorted(tuple(r) for r in df.select(*(cols or df.columns)).collect())


def _diff(got: dict, expected: dict) -> list[str]:
    """What differs between two gold tables keyed by KEY: the first missing and extra
    keys, then for each common key the columns of ``expected`` whose values differ, as
    {column: (expected, got)}; [] when they agree. About ten lines at most."""
    missing = sorted(set(expected) - set(got), key=str)
    extra = sorted(set(got) - set(expected), key=str)
    problems = [f"missing {k}" for k in missing[:5]] + [f"extra {k}" for k in extra[:5]]
    if len(missing) > 5 or len(extra) > 5:
        problems.append(f"({len(missing)} missing, {len(extra)} extra in all)")
    for k in sorted(set(got) & set(expected), key=str):
        bad = {c: (want, got[k].get(c)) for c, want in expected[k].items() if got[k].get(c) != want}
        if bad:
            problems.append(f"{k}: expected/got {bad}")
        if len(problems) > 10:
            break
    return problems


def test_diff_names_missing_and_extra_rows_and_the_differing_columns():
    expected = {(1, "daily"): {"count_session": 3, "count_client": 2, "user_type": "all"},
                (2, "daily"): {"count_session": 1, "count_client": 1, "user_type": "all"}}
    got = {(1, "daily"): {"count_session": 3, "count_client": 5, "user_type": "all", "extra_col": 0},
           (3, "daily"): {"count_session": 1, "count_client": 1, "user_type": "all"}}
    assert _diff(got, expected) == [
        "missing (2, 'daily')",
        "extra (3, 'daily')",
        "(1, 'daily'): expected/got {'count_client': (2, 5)}",
    ]
    # A column of expected that got lacks differs (None); columns only in got are not compared.
    assert _diff({(1, "daily"): {"count_session": 3}}, {(1, "daily"): expected[(1, "daily")]}) == [
        "(1, 'daily'): expected/got {'count_client': (2, None), 'user_type': ('all', None)}"]
    assert _diff(got, got) == [] and _diff({}, {}) == []


@pytest.fixture(scope="module")
def backfilled(spark, world):
    lake = world / "lake-backfill"
    cfg = _cfg(world / "conf", world / "landing", lake)
    summary = run.backfill(spark, cfg, START, END, now=NOW)
    return lake, summary


@pytest.fixture(scope="module")
def model(world):
    """tests/reference.py on the world, computed once: (gold by KEY, rejected records,
    sessions). It models a full run, so it also holds after a backfill that brought in
    records a nightly run had held back as too late (max_lateness_days)."""
    expected_rows, rejected, ref_sessions = reference.compute(world / "conf", world / "landing", NOW)
    return _by_key(expected_rows), rejected, ref_sessions


def _by_key(rows: list[dict]) -> dict:
    return {tuple(r[k] for k in KEY): r for r in rows}


def test_backfill_equals_the_reference_model(spark, backfilled, model):
    lake, summary = backfilled
    expected, _, ref_sessions = model
    got = gold_by_key(spark, lake)
    assert len(expected) > 10_000
    assert _diff(got, expected) == []
    assert summary.gold_rows_written == len(expected)
    # The default excludes randomised MACs: the run counts the bronze probes it left out.
    randomised = Lakehouse(spark, str(lake)).read(BRONZE_PROBES).where("randomized").count()
    assert summary.randomized_excluded == randomised > 0
    assert _table(spark, lake, SESSIONS, "object_id", "date", "duration_ms") == sorted(
        (s["object_id"], s["date"], s["duration_ms"]) for s in ref_sessions)


def test_every_rejected_record_is_in_the_quarantine_with_its_reason(spark, backfilled, model):
    lake, summary = backfilled
    _, rejected, _ = model
    got = [(f.removeprefix("file:"), n, reason) for f, n, reason in
           _table(spark, lake, QUARANTINE, "source_file", "line_no", "reason")]
    assert got == sorted((r.source_file, r.line_no, r.reason) for r in rejected)
    assert {r.reason for r in rejected} >= {"malformed", "invalid_mac", "invalid_rssi", "invalid_ts",
                                            "unknown_sensor"}
    assert sum(summary.rejected.values()) == len(rejected)


def _nightly_day_by_day(spark, world: Path, arrivals: list[Path], tmp_path: Path):
    """A fresh lakehouse fed one arrival folder a night, each followed by the nightly run
    of its date. :return: (landing, lakehouse, config)."""
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    landing.mkdir()
    cfg = _cfg(world / "conf", landing, lake)
    for folder in arrivals:
        shutil.copytree(folder, landing / folder.name)
        run.nightly(spark, cfg, dt.date.fromisoformat(folder.name), now=NOW)
    return landing, lake, cfg


def _reruns_change_nothing(spark, cfg, lake: Path, last_night: dt.date, expected: dict) -> None:
    """The last nightly run again finds nothing new, and a backfill over the whole range
    changes no row of bronze, the sessions or gold."""
    before = (_table(spark, lake, BRONZE_PROBES), _table(spark, lake, SESSIONS))
    again = run.nightly(spark, cfg, last_night, now=NOW)
    assert again.files_new == 0
    run.backfill(spark, cfg, START, END, now=NOW)
    assert _diff(gold_by_key(spark, lake), expected) == []
    assert (_table(spark, lake, BRONZE_PROBES), _table(spark, lake, SESSIONS)) == before


#: The nightly test of `make test`: four nights, the first three (the 25th's folder also
#: holds records of the 24th) and the 29th's (records of the 24th, five days late: another
#: week's employee windows and comebacks change). `make test-heavy` runs the later nights
#: after a backfill.
QUICK_NIGHTS = ("2016-03-24", "2016-03-25", "2016-03-26", "2016-03-29")


def test_nightly_runs_with_late_files_equal_the_model_and_reruns_change_nothing(spark, world, tmp_path):
    arrivals = [world / "landing" / night for night in QUICK_NIGHTS]
    # The 29th's files do hold records five days late (read with the model, not the pipeline).
    late, _ = reference.read_records(reference.load_config(world / "conf"), arrivals[-1], NOW)
    assert min(p.ts_ms for p in late) < dt.datetime(2016, 3, 25, tzinfo=dt.timezone.utc).timestamp() * 1000
    landing, lake, cfg = _nightly_day_by_day(spark, world, arrivals, tmp_path)
    expected_rows, _, _ = reference.compute(world / "conf", landing, NOW)
    expected = _by_key(expected_rows)
    assert _diff(gold_by_key(spark, lake), expected) == []
    _reruns_change_nothing(spark, cfg, lake, dt.date.fromisoformat(QUICK_NIGHTS[-1]), expected)


@pytest.mark.heavy  # a backfill and four nightly runs: minutes
def test_nightly_runs_after_a_backfill_equal_one_whole_backfill(spark, world, backfilled, tmp_path):
    """As a deployment starts: a backfill of what has arrived by the 29th, then the nightly
    run of each later arrival folder, over the month end; gold then equals one backfill of
    the whole world. (The first nights run one by one from an empty
    lakehouse in the four-night test, in `make test`, which also reruns them.)"""
    arrivals = sorted(p for p in (world / "landing").iterdir() if p.is_dir())
    first = dt.date(2016, 3, 29)
    landing = tmp_path / "landing"
    for folder in arrivals:
        if dt.date.fromisoformat(folder.name) <= first:
            shutil.copytree(folder, landing / folder.name)
    cfg = _cfg(world / "conf", landing, tmp_path / "lake")
    run.backfill(spark, cfg, START, first, now=NOW)
    later = [p for p in arrivals if dt.date.fromisoformat(p.name) > first]
    assert [p.name for p in later] == ["2016-03-30", "2016-03-31", "2016-04-01", "2016-04-02"]
    for folder in later:
        shutil.copytree(folder, landing / folder.name)
        run.nightly(spark, cfg, dt.date.fromisoformat(folder.name), now=NOW)
    assert _diff(gold_by_key(spark, tmp_path / "lake"), gold_by_key(spark, backfilled[0])) == []


@pytest.mark.heavy  # a whole run or two on the world: ~1 min; unit cases in test_ingest.py
def test_a_redelivered_file_changes_nothing(spark, world, backfilled, tmp_path):
    # The backfill's lakehouse, copied as it is (its ingested files are the world's), and
    # one of the world's files delivered again under another folder, for this test only.
    lake = tmp_path / "lake"
    shutil.copytree(backfilled[0], lake)
    cfg = _cfg(world / "conf", world / "landing", lake)
    gold = gold_by_key(spark, lake)
    bronze = _table(spark, lake, BRONZE_PROBES, "sensor_id", "client_id", "ts", "rssi")
    first = sorted((world / "landing").rglob("*.*"))[0]
    copy = world / "landing" / "redelivered" / first.name
    copy.parent.mkdir()
    shutil.copy(first, copy)
    try:
        summary = run.nightly(spark, cfg, END, now=NOW)
    finally:
        shutil.rmtree(copy.parent)
    assert summary.files_new == 1
    assert _table(spark, lake, BRONZE_PROBES, "sensor_id", "client_id", "ts", "rssi") == bronze
    assert _diff(gold_by_key(spark, lake), gold) == []


@pytest.mark.heavy  # a whole run or two on the world: ~1 min; unit cases in test_ingest.py
def test_too_late_records_wait_in_quarantine_for_a_backfill(spark, world, model, tmp_path):
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
    assert _diff(gold_by_key(spark, lake), model[0]) == []


@pytest.mark.heavy  # a whole run or two on the world: ~1 min; unit cases in test_ingest.py
def test_randomised_macs_included_when_configured(spark, world, tmp_path):
    conf = _conf(tmp_path / "conf", "randomized_macs: include\n")
    lake = tmp_path / "lake"
    cfg = _cfg(conf, world / "landing", lake)
    summary = run.backfill(spark, cfg, START, END, now=NOW)
    assert summary.randomized_excluded == 0 and summary.randomized_read > 0
    expected_rows, _, _ = reference.compute(conf, world / "landing", NOW)
    assert _diff(gold_by_key(spark, lake), _by_key(expected_rows)) == []
