"""SPEC §3: sessions per client and object, gaps, local midnight, strong probes."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from jobs import sessions
from jobs.stages import sensors_df

PROBES = "mall_id long, date date, sensor_id string, client_id string, ts timestamp, rssi int, randomized boolean"


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _sessions(spark, cfg, rows, gap=15):
    probes = spark.createDataFrame(rows, PROBES)
    return (probes.transform(sessions.at_objects, sensors_df(spark, cfg))
            .transform(sessions.sessionize, gap))


SESSION = "client_id string, session_start timestamp, duration_ms long, probe_count long, strong boolean"


def test_a_gap_greater_than_the_setting_starts_a_new_session(spark, cfg):
    """One client per case, all at zone 111 (sensor s-1, weak probes); setting 15 minutes."""
    d = dt.date(2016, 2, 1)
    probes = {
        "gap exactly 15 min": ["10:00:00", "10:15:00"],
        "gap 15 min + 1 ms": ["10:00:00", "10:15:00.001"],
        "gap 15 min + 1 s": ["10:00:00", "10:15:01"],
        "15-min gaps chain": ["10:00:00", "10:15:00", "10:30:00"],
    }
    rows = [(1, d, "s-1", case, _ts(f"2016-02-01 {t}"), -80, False) for case, ts in probes.items() for t in ts]
    got = (_sessions(spark, cfg, rows).where("object_id = 111")
           .select("client_id", "session_start", "duration_ms", "probe_count", "strong"))
    expected = spark.createDataFrame([
        ("gap exactly 15 min", _ts("2016-02-01 10:00:00"), 900_000, 2, False),
        ("gap 15 min + 1 ms", _ts("2016-02-01 10:00:00"), 0, 1, False),
        ("gap 15 min + 1 ms", _ts("2016-02-01 10:15:00.001"), 0, 1, False),
        ("gap 15 min + 1 s", _ts("2016-02-01 10:00:00"), 0, 1, False),
        ("gap 15 min + 1 s", _ts("2016-02-01 10:15:01"), 0, 1, False),
        ("15-min gaps chain", _ts("2016-02-01 10:00:00"), 1_800_000, 3, False),
    ], SESSION)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_local_midnight_cuts_a_session(spark, cfg):
    # Moscow is UTC+3: 20:50Z is 23:50 local on the 1st, 21:20Z is 00:20 on the 2nd.
    rows = [(1, dt.date(2016, 2, 1), "s-1", "c", _ts("2016-02-01 20:50:00"), -60, False),
            (1, dt.date(2016, 2, 2), "s-1", "c", _ts("2016-02-01 21:05:00"), -60, False),
            (1, dt.date(2016, 2, 2), "s-1", "c", _ts("2016-02-01 21:20:00"), -60, False)]
    got = _sessions(spark, cfg, rows).where("object_id = 1").select("date", "duration_ms").collect()
    assert sorted((r.date, r.duration_ms) for r in got) == [
        (dt.date(2016, 2, 1), 0), (dt.date(2016, 2, 2), 900_000)]


def test_every_object_level_gets_its_subtree_probes(spark, cfg):
    d = dt.date(2016, 2, 1)
    rows = [(1, d, "s-1", "c", _ts("2016-02-01 10:00:00"), -80, False),   # zone 111
            (1, d, "s-3", "c", _ts("2016-02-01 10:05:00"), -80, False),   # zone 112, same floor
            (1, d, "s-4", "c", _ts("2016-02-01 10:10:00"), -80, False)]   # zone 121, other floor
    got = _sessions(spark, cfg, rows).select("object_id", "duration_ms", "probe_count")
    expected = spark.createDataFrame([
        (111, 0, 1), (112, 0, 1), (121, 0, 1),  # each zone: its own sensor's probe
        (11, 300_000, 2),                        # floor 11: zones 111 and 112, 10:00-10:05
        (12, 0, 1),                              # floor 12: zone 121
        (1, 600_000, 3),                         # the mall: all three, 10:00-10:10
    ], "object_id long, duration_ms long, probe_count long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_strong_uses_the_sensor_threshold_else_the_global_one(spark, cfg):
    d = dt.date(2016, 2, 1)
    rows = [(1, d, "s-1", "a", _ts("2016-02-01 10:00:00"), -70, False),  # global -70: strong
            (1, d, "s-2", "b", _ts("2016-02-01 10:00:00"), -66, False),  # own -65: weak
            (1, d, "s-2", "c", _ts("2016-02-01 10:00:00"), -65, False)]  # own -65: strong
    got = {r.client_id: r.strong for r in _sessions(spark, cfg, rows).where("object_id = 111").collect()}
    assert got == {"a": True, "b": False, "c": True}


def test_randomised_macs_excluded_or_included(spark):
    d = dt.date(2016, 2, 1)
    probes = spark.createDataFrame([(1, d, "s-1", "a", _ts("2016-02-01 10:00:00"), -60, True),
                                    (1, d, "s-1", "b", _ts("2016-02-01 10:00:00"), -60, False)], PROBES)
    got = (sessions.drop_randomized(probes, "exclude").selectExpr("'exclude' AS setting", "client_id")
           .unionByName(sessions.drop_randomized(probes, "include")
                        .selectExpr("'include' AS setting", "client_id")))
    expected = spark.createDataFrame([("exclude", "b"), ("include", "a"), ("include", "b")],
                                     "setting string, client_id string")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_client_days_sum_sessions_per_date(spark):
    d = dt.date(2016, 2, 1)
    s = spark.createDataFrame([(1, d, 1, "mall", "c", 60_000), (1, d, 1, "mall", "c", 30_000)],
                              "mall_id long, date date, object_id long, object_type string, client_id string, duration_ms long")
    got = sessions.client_days(s)
    expected = spark.createDataFrame([(1, d, 1, "mall", "c", 2, 90_000)],
                                     "mall_id long, date date, object_id long, object_type string, "
                                     "client_id string, session_count long, duration_ms long")
    assert_df_equality(got, expected, ignore_nullable=True)
