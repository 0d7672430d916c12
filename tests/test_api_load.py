"""The report API under load while a nightly run rewrites gold: the scenario of
``make load-api`` (benchmarks/loadscenario.py) at CI size, and the rule that keeps each
answer on one gold version (reports/query.py, ``GoldSnapshot``)."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.config import load_config
from reports.params import parse, resolve_objects
from reports.query import Gold, report
from tests.report_world import gold_rows, make_world, write_gold

FEB_1, FEB_3 = dt.date(2016, 2, 1), dt.date(2016, 2, 3)


def _sessions(snap, mall_id: int, object_id: int) -> list[int]:
    rows = snap.rows(mall_id, "daily", [object_id], 5, 20, FEB_1, FEB_3, "count_comeback_client_2_week")
    return sorted(rows["count_session"].to_list())


def _bumped(rows: list[dict], by: int) -> list[dict]:
    return [{**r, "count_session": r["count_session"] + by} for r in rows]


def test_a_snapshot_keeps_its_version_while_gold_changes(tmp_path):
    conf, lake = make_world(tmp_path)
    gold = Gold(str(lake), refresh_seconds=0)
    old = gold.snapshot()
    mall1, mall2 = _sessions(old, 1, 1), _sessions(old, 2, 2)
    assert mall1 and mall2
    write_gold(lake, _bumped(gold_rows(), 1000))  # a commit, as a nightly run makes one
    new = gold.snapshot()
    assert new.version == old.version + 1
    # A request that opened `old` reads it for all its malls, whatever was committed since.
    assert (_sessions(old, 1, 1), _sessions(old, 2, 2)) == (mall1, mall2)
    assert (_sessions(new, 1, 1), _sessions(new, 2, 2)) == ([n + 1000 for n in mall1],
                                                            [n + 1000 for n in mall2])
    # And a whole two-mall answer is of one version.
    cfg = load_config(conf)
    req = parse({"objects": ["1,2"], "interval": ["daily"], "from": ["2016-02-01"], "to": ["2016-02-03"]})
    frame = report(gold, cfg, resolve_objects(cfg, req), req).frame
    firsts = {o: frame.filter((frame["object_id"] == o) & (frame["user_type"] == "all")
                              & (frame["datetime"].str.starts_with("2016-02-01")))["count_session"].item()
              for o in ("1", "2")}
    assert firsts == {"1": 1020, "2": 1960}


def test_the_latest_version_is_looked_for_only_after_the_refresh_interval(tmp_path):
    _, lake = make_world(tmp_path)
    gold = Gold(str(lake), refresh_seconds=3600)
    first = gold.snapshot()
    write_gold(lake, _bumped(gold_rows(), 1))
    assert gold.snapshot() is first
    gold.refresh_seconds = 0
    assert gold.snapshot().version == first.version + 1


def test_a_broken_newer_commit_keeps_the_open_version(tmp_path, caplog):
    _, lake = make_world(tmp_path)
    gold = Gold(str(lake), refresh_seconds=0)
    first = gold.snapshot()
    log_dir = lake / "gold" / "group_datetime" / "_delta_log"
    (log_dir / f"{first.version + 1:020d}.json").write_text('{"add": {broken\n')
    assert gold.snapshot() is first and gold.snapshot() is first
    assert _sessions(gold.snapshot(), 1, 1)
    warnings = [r.getMessage() for r in caplog.records if "gold refresh failed" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0]


@pytest.mark.heavy
@pytest.mark.timeout(900)
def test_answers_under_load_during_a_nightly_run_are_whole_and_of_one_version(spark, tmp_path):
    """20 clients while `python -m jobs nightly` replaces gold buckets; the API looks for a
    new version on every request (refresh 0), the strictest case for mixed versions. The
    backfill before it runs on this session's Spark (the nightly is the command line's)."""
    from benchmarks.loadscenario import markdown, run_scenario
    from jobs import run

    def backfill(world) -> dict:
        cfg = load_config(world.conf).with_storage(str(world.landing), str(world.lake))
        return run.backfill(spark, cfg, world.start, world.end).timings

    r = run_scenario(tmp_path / "load", clients=20, seconds=10, days=3, devices=10, refresh_seconds=0,
                     warmup=2, late_devices=10, log=lambda *_: None, backfill=backfill)
    load, classes, gold_stage = r["load"], r["classes"], r["during_gold_stage"]
    assert load["by_status"] == {"200": load["requests"]} and load["requests"] > 0
    assert classes["torn"] == 0, classes["torn_samples"]
    assert r["after_status"] == [200] * len(r["requests"])
    # The nightly run changed answers, those of the two-mall requests among them (the
    # answers that could mix versions), and the load saw both the old and the new ones.
    both = [i for i, q in enumerate(r["requests"]) if q["objects"] == "215,1290"]
    assert both and set(both) <= set(classes["changed_requests"])
    assert classes["before"] > 0 and classes["after"] > 0
    # Ten new devices, one session each, at each mall on the late date.
    for mall, rows in r["late_date_all"].items():
        assert rows["after"]["count_session"] - rows["before"]["count_session"] == 10, mall
        assert rows["after"]["count_client"] - rows["before"]["count_client"] == 10, mall
    # The load covered the whole gold stage, with answers in flight during it.
    lo, hi = r["nightly"]["stage_spans_from_load_start"]["gold"]
    assert 0 < lo < hi < load["seconds"]
    assert gold_stage["requests"] > 0 and gold_stage["server_errors"] == 0
    assert all(r["checks"].values()), r["checks"]
    assert "| during its gold stage | 20 |" in markdown(r)
