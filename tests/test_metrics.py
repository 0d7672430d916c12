"""SPEC §6–§7: buckets and labels (DST included), duration classes, metrics, rounding."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from jobs import metrics

CLASSIFIED = ("mall_id long, object_id long, object_type string, client_id string, date date, "
              "session_start timestamp, duration_ms long, base_class string, comeback int")
MIN = 60_000


@pytest.fixture
def malls(spark):
    return spark.createDataFrame([(1, "Europe/Moscow"), (2, "Europe/Berlin"), (3, "UTC"),
                                  (4, "America/Sao_Paulo")],
                                 "mall_id long, timezone string")


def _gold(spark, malls, rows):
    return metrics.group_datetime(spark.createDataFrame(rows, CLASSIFIED), malls)


def _ts(text):
    return dt.datetime.fromisoformat(text)


def test_every_bucket_has_all_28_by_7_rows(spark, malls):
    gold = _gold(spark, malls, [(3, 3, "mall", "c", dt.date(2016, 2, 1), _ts("2016-02-01 10:00:00"),
                                 MIN, "visitor", 0)])
    counts = {r.interval: r["count"] for r in gold.groupBy("interval").count().collect()}
    assert counts == {"hourly": 196, "daily": 196, "weekly": 196, "monthly": 196, "weekday": 196}
    assert len(metrics.THRESHOLD_PAIRS) == 28


def test_buckets_and_labels_in_local_time_across_dst_and_local_midnight(spark, malls):
    """SPEC §6, one mall per case (object = mall): each session's buckets (user type all,
    every threshold pair alike), their ISO labels with the local offset (Z at zero) and
    their UTC starts. Sessions are one-probe passers (no duration)."""
    def session(mall, client, date, start_utc):
        return (mall, mall, "mall", client, dt.date.fromisoformat(date), _ts(start_utc), 0, "passer", 0)

    rows = [
        # Berlin, DST end 2016-10-30 (a Sunday): 02:00-03:00 happens twice, at +02:00 (00:xxZ)
        # and at +01:00 (01:xxZ): two hourly buckets with the same local hour.
        session(2, "a", "2016-10-30", "2016-10-30 00:30:00"),
        session(2, "b", "2016-10-30", "2016-10-30 01:30:00"),
        session(2, "c", "2016-10-30", "2016-10-30 02:10:00"),
        # Berlin, DST start 2016-03-27 (a Sunday): 02:00 local does not exist; 01:30Z is 03:30 +02:00.
        session(2, "a", "2016-03-27", "2016-03-27 00:30:00"),
        session(2, "b", "2016-03-27", "2016-03-27 01:30:00"),
        # Sao Paulo 2016-10-16 (a Sunday): clocks jump from 00:00 (-03:00) to 01:00 (-02:00);
        # the day starts at its first instant, 00:00 -03:00.
        session(4, "a", "2016-10-16", "2016-10-16 05:00:00"),
        # Moscow (+03:00): 2016-01-31T21:30Z is 00:30 on Monday 2016-02-01 local.
        session(1, "a", "2016-02-01", "2016-01-31 21:30:00"),
        # UTC: labels end in Z; 2016-02-06 is a Saturday.
        session(3, "a", "2016-02-06", "2016-02-06 10:00:00"),
    ]
    got = (_gold(spark, malls, rows).where("user_type = 'all'")
           .select("mall_id", "interval", "datetime", "bucket_start", "count_session").distinct())
    expected = spark.createDataFrame([(m, i, label, _ts(start), n) for m, i, label, start, n in [
        (2, "hourly", "2016-10-30T02:00:00+02:00", "2016-10-30 00:00:00", 1),
        (2, "hourly", "2016-10-30T02:00:00+01:00", "2016-10-30 01:00:00", 1),
        (2, "hourly", "2016-10-30T03:00:00+01:00", "2016-10-30 02:00:00", 1),
        (2, "daily", "2016-10-30T00:00:00+02:00", "2016-10-29 22:00:00", 3),
        (2, "weekly", "2016-10-24T00:00:00+02:00", "2016-10-23 22:00:00", 3),
        (2, "monthly", "2016-10-01T00:00:00+02:00", "2016-09-30 22:00:00", 3),
        (2, "weekend", "2016-10-29T00:00:00+02:00", "2016-10-28 22:00:00", 3),

        (2, "hourly", "2016-03-27T01:00:00+01:00", "2016-03-27 00:00:00", 1),
        (2, "hourly", "2016-03-27T03:00:00+02:00", "2016-03-27 01:00:00", 1),
        (2, "daily", "2016-03-27T00:00:00+01:00", "2016-03-26 23:00:00", 2),
        (2, "weekly", "2016-03-21T00:00:00+01:00", "2016-03-20 23:00:00", 2),
        (2, "monthly", "2016-03-01T00:00:00+01:00", "2016-02-29 23:00:00", 2),
        (2, "weekend", "2016-03-26T00:00:00+01:00", "2016-03-25 23:00:00", 2),

        (4, "hourly", "2016-10-16T03:00:00-02:00", "2016-10-16 05:00:00", 1),
        (4, "daily", "2016-10-16T00:00:00-03:00", "2016-10-16 03:00:00", 1),
        (4, "weekly", "2016-10-10T00:00:00-03:00", "2016-10-10 03:00:00", 1),
        (4, "monthly", "2016-10-01T00:00:00-03:00", "2016-10-01 03:00:00", 1),
        (4, "weekend", "2016-10-15T00:00:00-03:00", "2016-10-15 03:00:00", 1),

        (1, "hourly", "2016-02-01T00:00:00+03:00", "2016-01-31 21:00:00", 1),
        (1, "daily", "2016-02-01T00:00:00+03:00", "2016-01-31 21:00:00", 1),
        (1, "weekly", "2016-02-01T00:00:00+03:00", "2016-01-31 21:00:00", 1),
        (1, "monthly", "2016-02-01T00:00:00+03:00", "2016-01-31 21:00:00", 1),
        (1, "weekday", "2016-02-01T00:00:00+03:00", "2016-01-31 21:00:00", 1),

        (3, "hourly", "2016-02-06T10:00:00Z", "2016-02-06 10:00:00", 1),
        (3, "daily", "2016-02-06T00:00:00Z", "2016-02-06 00:00:00", 1),
        (3, "weekly", "2016-02-01T00:00:00Z", "2016-02-01 00:00:00", 1),
        (3, "monthly", "2016-02-01T00:00:00Z", "2016-02-01 00:00:00", 1),
        (3, "weekend", "2016-02-06T00:00:00Z", "2016-02-06 00:00:00", 1),
    ]], "mall_id long, interval string, datetime string, bucket_start timestamp, count_session long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_duration_exactly_b_or_e_and_b_equal_e_and_the_user_types(spark, malls):
    """SPEC §4: bounced < b ≤ half engaged < e ≤ engaged. Mall 3 at b=5, e=20 (the
    types and their metrics); zone 31 alone at b = e = 10 (half engaged is empty)."""
    d, t = dt.date(2016, 2, 1), _ts("2016-02-01 10:00:00")
    rows = [
        (3, 3, "mall", "v1", d, t, 5 * MIN - 1, "visitor", 0),   # bounced for b=5
        (3, 3, "mall", "v2", d, t, 5 * MIN, "visitor", 0b1),     # exactly b=5: half engaged
        (3, 3, "mall", "v3", d, t, 20 * MIN, "visitor", 0),      # exactly e=20: engaged
        (3, 3, "mall", "v3", d, t, 30 * MIN, "visitor", 0),      # same client, engaged again
        (3, 3, "mall", "p1", d, t, 3 * MIN, "passer", 0b11),
        (3, 3, "mall", "e1", d, t, 300 * MIN, "employee", 0b1111111),
        (3, 31, "zone", "v", d, t, 10 * MIN, "visitor", 0),      # exactly b = e = 10: engaged
    ]
    gold = (_gold(spark, malls, rows)
            .where("interval = 'daily' AND (object_id = 3 AND bounce_threshold = 5 AND engagement_threshold = 20"
                   " OR object_id = 31 AND bounce_threshold = 10 AND engagement_threshold = 10)")
            .select("object_id", "user_type", "count_session", "count_client", "avg_session_duration",
                    "sum_session_duration", "count_comeback_client_2_week", "count_comeback_client_1_month"))
    expected = spark.createDataFrame([
        (3, "all", 6, 5, 60, 6.05, 3, 2),  # (4.99998+5+20+30+3+300)/6 = 60.47 → 60; 363 min = 6.05 h
        (3, "bounced", 1, 1, 5, 0.08, 0, 0),
        (3, "employee", 1, 1, 300, 5.0, 1, 1),
        (3, "engaged", 2, 1, 25, 0.83, 0, 0),
        (3, "half engaged", 1, 1, 5, 0.08, 1, 0),
        (3, "passer", 1, 1, 3, 0.05, 1, 1),
        (3, "visitor", 4, 3, 15, 1.0, 1, 0),  # 59.99998 min / 4 = 14.99 → 15; 1.0 h
        (31, "all", 1, 1, 10, 0.17, 0, 0),    # 10 min = 0.1667 h → 0.17
        (31, "bounced", 0, 0, 0, 0.0, 0, 0),
        (31, "employee", 0, 0, 0, 0.0, 0, 0),
        (31, "engaged", 1, 1, 10, 0.17, 0, 0),
        (31, "half engaged", 0, 0, 0, 0.0, 0, 0),
        (31, "passer", 0, 0, 0, 0.0, 0, 0),
        (31, "visitor", 1, 1, 10, 0.17, 0, 0),
    ], "object_id long, user_type string, count_session long, count_client long, avg_session_duration long, "
       "sum_session_duration double, count_comeback_client_2_week long, count_comeback_client_1_month long")
    assert_approx_df_equality(gold, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_rounding_half_up_and_gross_hours_only_for_day_and_longer(spark, malls):
    d, t = dt.date(2016, 2, 1), _ts("2016-02-01 10:00:00")
    # Two sessions of 2.5 min: avg 2.5 → 3. 5 min = 0.0833 h → 0.08.
    # 0.015 h = 54 s: rounds half up to 0.02 (plain floats would say 0.01).
    rows = [(3, 3, "mall", "a", d, t, 150_000, "passer", 0), (3, 3, "mall", "b", d, t, 150_000, "passer", 0),
            (3, 30, "zone", "a", d, t, 54_000, "passer", 0)]
    gold = _gold(spark, malls, rows).where("user_type = 'passer' AND bounce_threshold = 2 AND engagement_threshold = 45")
    got = {(r.object_id, r.interval): (r.avg_session_duration, r.sum_session_duration) for r in gold.collect()}
    assert got[(3, "daily")] == (3, 0.08)
    assert got[(3, "weekly")] == (3, 0.08)
    assert got[(3, "monthly")] == (3, 0.08)
    assert got[(3, "hourly")] == (3, 0.0)
    assert got[(3, "weekday")] == (3, 0.0)
    assert got[(30, "daily")] == (1, 0.02)


def test_no_sessions_of_a_type_gives_zeros(spark, malls):
    d, t = dt.date(2016, 2, 1), _ts("2016-02-01 10:00:00")
    gold = _gold(spark, malls, [(3, 3, "mall", "p", d, t, MIN, "passer", 0)]).where(
        "interval = 'daily' AND user_type = 'employee' AND bounce_threshold = 5 AND engagement_threshold = 20")
    r = gold.first()
    assert (r.count_session, r.count_client, r.avg_session_duration, r.sum_session_duration,
            r.count_comeback_client_10_year) == (0, 0, 0, 0.0, 0)


def test_a_scope_aggregates_only_its_buckets_and_leaves_theirs_whole(spark, malls):
    """A run's scope (``buckets``) keeps whole buckets: the weekly and monthly rows of a
    session outside the day range are still its week's and month's."""
    rows = [(3, 3, "mall", "c", dt.date(2016, 2, 1), _ts("2016-02-01 10:00:00"), 10 * MIN, "visitor", 0),
            (3, 3, "mall", "d", dt.date(2016, 2, 2), _ts("2016-02-02 10:00:00"), 10 * MIN, "visitor", 0)]
    scope = ("(interval IN ('hourly', 'daily') AND bucket_date = DATE'2016-02-02') OR "
             "(interval IN ('weekly', 'monthly') AND mall_id = 3)")
    got = (metrics.group_datetime(spark.createDataFrame(rows, CLASSIFIED), malls, buckets=scope)
           .where("user_type = 'all' AND bounce_threshold = 5 AND engagement_threshold = 20")
           .select("interval", "bucket_date", "count_client"))
    expected = spark.createDataFrame(
        [("hourly", dt.date(2016, 2, 2), 1), ("daily", dt.date(2016, 2, 2), 1),
         ("weekly", dt.date(2016, 2, 1), 2), ("monthly", dt.date(2016, 2, 1), 2)],
        "interval string, bucket_date date, count_client long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
