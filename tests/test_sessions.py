"""SPEC §3: sessions per client and object, gaps, local midnight, strong probes."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from jobs import sessions
from jobs.run import sensors_df

PROBES = "mall_id long, date date, sensor_id string, client_id string, ts timestamp, rssi int, randomized boolean"


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _sessions(spark, cfg, rows, gap=15):
    probes = spark.createDataFrame(rows, PROBES)
    return (probes.transform(lambda df: sessions.at_objects(df, sensors_df(spark, cfg)))
            .transform(lambda df: sessions.sessionize(df, gap)))


def _zone_rows(df, zone=111):
    return sorted((r.session_start, r.duration_ms, r.probe_count, r.strong)
                  for r in df.where(f"object_id = {zone}").collect())


def test_gap_of_exactly_the_setting_stays_one_session(spark, cfg):
    d = dt.date(2016, 2, 1)
    rows = [(1, d, "s-1", "c", _ts("2016-02-01 10:00:00"), -80, False),
            (1, d, "s-1", "c", _ts("2016-02-01 10:15:00"), -80, False)]
    assert _zone_rows(_sessions(spark, cfg, rows)) == [(_ts("2016-02-01 10:00:00"), 900_000, 2, False)]


def test_gap_one_second_longer_starts_a_new_session(spark, cfg):
    d = dt.date(2016, 2, 1)
    rows = [(1, d, "s-1", "c", _ts("2016-02-01 10:00:00"), -80, False),
            (1, d, "s-1", "c", _ts("2016-02-01 10:15:01"), -80, False)]
    assert _zone_rows(_sessions(spark, cfg, rows)) == [
        (_ts("2016-02-01 10:00:00"), 0, 1, False), (_ts("2016-02-01 10:15:01"), 0, 1, False)]


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
    got = _sessions(spark, cfg, rows).groupBy("object_id").count()
    expected = spark.createDataFrame([(111, 1), (112, 1), (121, 1), (11, 1), (12, 1), (1, 1)],
                                     "object_id long, count long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    mall = _sessions(spark, cfg, rows).where("object_id = 1").first()
    assert (mall.duration_ms, mall.probe_count) == (600_000, 3)


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
    assert sessions.drop_randomized(probes, "exclude").count() == 1
    assert sessions.drop_randomized(probes, "include").count() == 2


def test_client_days_sum_sessions_per_date(spark):
    d = dt.date(2016, 2, 1)
    s = spark.createDataFrame([(1, d, 1, "mall", "c", 60_000), (1, d, 1, "mall", "c", 30_000)],
                              "mall_id long, date date, object_id long, object_type string, client_id string, duration_ms long")
    got = sessions.client_days(s)
    expected = spark.createDataFrame([(1, d, 1, "mall", "c", 2, 90_000)],
                                     "mall_id long, date date, object_id long, object_type string, "
                                     "client_id string, session_count long, duration_ms long")
    assert_df_equality(got, expected, ignore_nullable=True)
