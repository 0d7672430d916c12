"""SPEC §4–§5: employee status over the 14-day window, base class, comeback windows."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import classify
from jobs.spec import COMEBACK_WINDOWS
from tests.helpers import assert_cases

DAY = dt.timedelta(days=1)
MIN = 60_000
#: The comeback windows, in the order of the mask's bits.
WINDOWS = [w.name for w in COMEBACK_WINDOWS]


def test_employee_on_d_when_5_of_the_14_days_d_minus_13_to_d_have_240_minutes(spark):
    """One client per case at mall 1: (date, minutes at the mall) in, is_employee per date out."""
    d0 = dt.date(2016, 2, 1)
    days = {
        # 240 minutes on 5 days running: the 4th long day is not enough, the 5th is.
        "fifth long day": [(d0 + i * DAY, 240) for i in range(5)],
        # 240 minutes less 1 ms on the 5th day: not a long day.
        "fifth day 1 ms short": [(d0 + i * DAY, 240) for i in range(4)] + [(d0 + 4 * DAY, 240 - 1 / MIN)],
        # Long days on d0 … d0+3 and on d0+13 (window d0 … d0+13: five); a short visit on
        # d0+14 (window d0+1 … d0+14: four left).
        "window d-13 to d": [(d0 + i * DAY, 300) for i in range(4)] + [(d0 + 13 * DAY, 300),
                                                                      (d0 + 14 * DAY, 10)],
    }
    expected = {
        "fifth long day": [False, False, False, False, True],
        "fifth day 1 ms short": [False, False, False, False, False],
        "window d-13 to d": [False, False, False, False, True, False],
    }
    mall_days = spark.createDataFrame(
        [(1, case, d, int(m * MIN)) for case, rows in days.items() for d, m in rows],
        "mall_id long, client_id string, date date, duration_ms long")
    got = classify.employee_days(mall_days, window_days=14, min_days=5, min_daily_minutes=240)
    want = spark.createDataFrame(
        [(1, case, d, is_employee) for case, rows in days.items()
         for (d, _), is_employee in zip(rows, expected[case], strict=True)],
        "mall_id long, client_id string, date date, is_employee boolean")
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)


def test_comes_back_within_w_when_the_previous_date_is_on_or_after_d_minus_w(spark):
    """SPEC §5, one row per (case, window): d − W in SQL interval arithmetic (days for
    weeks, calendar months clamped to the month's last day)."""
    def every_window(case, d, prev, back):
        return [(case, d, prev, w, w in back) for w in WINDOWS]

    d = dt.date(2016, 3, 31)
    cases = [
        ("2 week: d - 14 days", dt.date(2016, 2, 15), dt.date(2016, 2, 1), "2 week", True),
        ("2 week: d - 15 days", dt.date(2016, 2, 15), dt.date(2016, 1, 31), "2 week", False),
        ("2016-03-31 - 1 month = 02-29", d, dt.date(2016, 2, 29), "1 month", True),
        ("1 month: a day before", d, dt.date(2016, 2, 28), "1 month", False),
        ("2016-03-31 - 2 month = 01-31", d, dt.date(2016, 1, 31), "2 month", True),
        ("2 month: a day before", d, dt.date(2016, 1, 30), "2 month", False),
        ("2016-03-31 - 3 month = 2015-12-31", d, dt.date(2015, 12, 31), "3 month", True),
        ("3 month: a day before", d, dt.date(2015, 12, 30), "3 month", False),
        ("2016-03-31 - 6 month = 2015-09-30", d, dt.date(2015, 9, 30), "6 month", True),
        ("6 month: a day before", d, dt.date(2015, 9, 29), "6 month", False),
        ("2016-02-29 - 1 year = 2015-02-28", dt.date(2016, 2, 29), dt.date(2015, 2, 28), "1 year", True),
        ("1 year: a day before", dt.date(2016, 2, 29), dt.date(2015, 2, 27), "1 year", False),
        ("2016-03-31 - 10 year = 2006-03-31", d, dt.date(2006, 3, 31), "10 year", True),
        ("10 year: a day before", d, dt.date(2006, 3, 30), "10 year", False),
        *every_window("ten years back: only the 10-year window", dt.date(2016, 2, 1), dt.date(2006, 2, 1),
                      {"10 year"}),
        *every_window("the day before: every window", dt.date(2016, 2, 1), dt.date(2016, 1, 31), set(WINDOWS)),
        *every_window("no previous visit: no window", dt.date(2016, 2, 1), None, set()),
    ]
    df = spark.createDataFrame(
        [(case if w in case else f"{case} ({w})", d, prev, WINDOWS.index(w), back)
         for case, d, prev, w, back in cases],
        "case string, date date, prev_date date, bit int, expected boolean")
    got = (df.withColumn("mask", classify.comeback_mask(F.col("date"), F.col("prev_date")))
           .withColumn("got", F.expr("shiftright(mask, bit) & 1 = 1")))
    assert_cases(got)


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
