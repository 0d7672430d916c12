"""SPEC §4–§5: employee status over the 14-day window, base class, comeback windows."""

from __future__ import annotations

import datetime as dt

from jobs import classify
from jobs.spec import COMEBACK_WINDOWS

DAY = dt.timedelta(days=1)
MIN = 60_000


def _employees(spark, days):
    """days: list of (date, minutes at the mall) for one client → {date: is_employee}."""
    df = spark.createDataFrame([(1, "c", d, int(m * MIN)) for d, m in days],
                               "mall_id long, client_id string, date date, duration_ms long")
    out = classify.employee_days(df, window_days=14, min_days=5, min_daily_minutes=240)
    return {r.date: r.is_employee for r in out.collect()}


def test_fifth_long_day_in_the_window_makes_an_employee(spark):
    d0 = dt.date(2016, 2, 1)
    got = _employees(spark, [(d0 + i * DAY, 240) for i in range(5)])
    assert [got[d0 + i * DAY] for i in range(5)] == [False, False, False, False, True]


def test_a_day_one_millisecond_short_does_not_count(spark):
    d0 = dt.date(2016, 2, 1)
    days = [(d0 + i * DAY, 240) for i in range(4)] + [(d0 + 4 * DAY, 240 - 1 / MIN)]
    assert _employees(spark, days)[d0 + 4 * DAY] is False


def test_the_window_is_d_minus_13_to_d(spark):
    d0 = dt.date(2016, 2, 1)
    # Long days on d0, d0+1, d0+2, d0+3; the 5th on d0+13 (window d0..d0+13) and a short
    # visit on d0+14 (window d0+1..d0+14: only 4 long days left).
    days = [(d0 + i * DAY, 300) for i in range(4)] + [(d0 + 13 * DAY, 300), (d0 + 14 * DAY, 10)]
    got = _employees(spark, days)
    assert got[d0 + 13 * DAY] is True
    assert got[d0 + 14 * DAY] is False


def _comes_back(spark, date, prev):
    df = spark.createDataFrame([(date, prev)], "date date, prev_date date")
    mask = df.select(classify.comeback_mask(df.date, df.prev_date).alias("m")).first().m
    return {w.name: bool(mask >> i & 1) for i, w in enumerate(COMEBACK_WINDOWS)}


def test_two_weeks_is_fourteen_days(spark):
    d = dt.date(2016, 2, 15)
    assert _comes_back(spark, d, d - 14 * DAY)["2 week"] is True
    assert _comes_back(spark, d, d - 15 * DAY)["2 week"] is False


def test_month_end_uses_sql_interval_arithmetic(spark):
    d = dt.date(2016, 3, 31)
    assert _comes_back(spark, d, dt.date(2016, 2, 29))["1 month"] is True   # 03-31 − 1 month = 02-29
    assert _comes_back(spark, d, dt.date(2016, 2, 28))["1 month"] is False
    assert _comes_back(spark, dt.date(2016, 2, 29), dt.date(2015, 2, 28))["1 year"] is True
    assert _comes_back(spark, dt.date(2016, 2, 29), dt.date(2015, 2, 27))["1 year"] is False


def test_no_previous_visit_never_comes_back(spark):
    assert not any(_comes_back(spark, dt.date(2016, 2, 1), None).values())


def test_ten_years_and_first_visit(spark):
    d = dt.date(2016, 2, 1)
    got = _comes_back(spark, d, dt.date(2006, 2, 1))
    assert got == {"2 week": False, "1 month": False, "2 month": False, "3 month": False,
                   "6 month": False, "1 year": False, "10 year": True}


def test_previous_visit_is_the_latest_earlier_date_per_object(spark):
    rows = [(1, "c", dt.date(2016, 1, 1)), (1, "c", dt.date(2016, 1, 9)), (2, "c", dt.date(2016, 1, 5)),
            (1, "c", dt.date(2016, 1, 20))]
    df = spark.createDataFrame(rows, "object_id long, client_id string, date date")
    got = {(r.object_id, r.date): r.prev_date for r in classify.previous_visits(df).collect()}
    assert got == {(1, dt.date(2016, 1, 1)): None, (1, dt.date(2016, 1, 9)): dt.date(2016, 1, 1),
                   (1, dt.date(2016, 1, 20)): dt.date(2016, 1, 9), (2, dt.date(2016, 1, 5)): None}


def test_base_class_employee_beats_strong(spark):
    d = dt.date(2016, 2, 1)
    sessions = spark.createDataFrame(
        [(1, 1, "emp", d, True), (1, 1, "vis", d, True), (1, 1, "pas", d, False)],
        "mall_id long, object_id long, client_id string, date date, strong boolean")
    employees = spark.createDataFrame([(1, "emp", d, True), (1, "vis", d, False)],
                                      "mall_id long, client_id string, date date, is_employee boolean")
    previous = spark.createDataFrame([(1, "vis", d, d - DAY)],
                                     "object_id long, client_id string, date date, prev_date date")
    got = {r.client_id: (r.base_class, r.comeback)
           for r in classify.classify(sessions, employees, previous).collect()}
    assert got == {"emp": ("employee", 0), "vis": ("visitor", 0b1111111), "pas": ("passer", 0)}
