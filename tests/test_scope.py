"""What a run owns (jobs/scope.py, SPEC §9): hand-computed dates (Spark only for the
next visits, which are read from ``client_days``)."""

from __future__ import annotations

from datetime import date, timedelta

from jobs.scope import (GoldScope, by_mall, date_ranges_predicate, dependent_dates,
                        employee_lookback, next_visits, to_ranges)
from jobs.tables import CLIENT_DAYS, SCHEMAS


def test_dates_collapse_into_maximal_runs():
    days = [date(2016, 2, d) for d in (5, 1, 2, 3, 3)]
    assert to_ranges(days) == [(date(2016, 2, 1), date(2016, 2, 3)), (date(2016, 2, 5), date(2016, 2, 5))]
    assert by_mall([(2, date(2016, 2, 1)), (1, date(2016, 2, 2)), (2, date(2016, 2, 2))]) == {
        2: [(date(2016, 2, 1), date(2016, 2, 2))], 1: [(date(2016, 2, 2), date(2016, 2, 2))]}


def test_a_changed_date_touches_the_next_13_dates_and_the_next_visits():
    d = date(2016, 3, 1)
    got = dependent_dates({1: [(d, d)]}, employee_window_days=14, next_visit_dates=[(1, date(2016, 6, 1))])
    assert got == [(1, d + timedelta(days=i)) for i in range(14)] + [(1, date(2016, 6, 1))]


def test_next_visits_are_the_next_dates_of_the_scopes_client_days(spark):
    feb, mar = (lambda d: date(2016, 2, d)), (lambda d: date(2016, 3, d))
    days = [(mall, d, obj, "zone", client, 1, 60_000) for mall, d, obj, client in [
        (1, feb(20), 10, "a"), (1, mar(1), 10, "a"), (1, mar(5), 10, "a"),  # Mar 1 → Mar 5
        (1, mar(1), 11, "a"),                       # another object: no next date
        (1, mar(1), 10, "b"),                       # no later day
        (1, feb(25), 10, "c"), (1, mar(10), 10, "c"),  # Feb 25 is before the scope
        (2, feb(2), 20, "d"), (2, feb(10), 20, "d"), (2, feb(12), 20, "d"),
        (3, feb(2), 30, "e"), (3, feb(3), 30, "e"),  # a mall outside the scope
    ]]
    scope = {1: [(mar(1), mar(1))], 2: [(feb(1), feb(2)), (feb(10), feb(10))]}
    got = next_visits(spark.createDataFrame(days, SCHEMAS[CLIENT_DAYS]), scope).collect()
    assert sorted(tuple(r) for r in got) == [(1, mar(5)), (2, feb(10)), (2, feb(12))]


def test_employee_status_looks_back_13_days():
    assert employee_lookback({1: [(date(2016, 3, 1), date(2016, 3, 2))]}, 14) == {
        1: [(date(2016, 2, 17), date(2016, 3, 2))]}


def test_gold_scope_is_the_whole_day_iso_week_and_month():
    scope = GoldScope.around([(7, date(2016, 2, 29))])  # a Monday, the last day of February
    assert scope.periods == {
        "day": {7: [(date(2016, 2, 29), date(2016, 2, 29))]},
        "week": {7: [(date(2016, 2, 29), date(2016, 3, 6))]},
        "month": {7: [(date(2016, 2, 1), date(2016, 2, 29))]},
    }
    assert scope.read_ranges() == {7: [(date(2016, 2, 1), date(2016, 3, 6))]}
    assert scope.mall_dates() == 1
    pred = scope.predicate()
    assert "(interval IN ('hourly', 'daily') AND ((mall_id = 7 AND bucket_date >= DATE'2016-02-29'" in pred
    assert "(interval IN ('weekly', 'weekday', 'weekend') AND ((mall_id = 7 AND bucket_date >= DATE'2016-02-29' AND bucket_date <= DATE'2016-03-06')))" in pred
    assert "(interval IN ('monthly') AND ((mall_id = 7 AND bucket_date >= DATE'2016-02-01' AND bucket_date <= DATE'2016-02-29')))" in pred



def test_gold_scope_names_the_files_it_writes_a_month_of_hours_a_year_of_the_rest():
    feb, y2016 = date(2016, 2, 1), date(2016, 1, 1)
    assert GoldScope.around([(7, date(2016, 2, 29))]).file_periods() == [
        (7, "daily", y2016), (7, "hourly", feb), (7, "monthly", y2016),
        (7, "weekday", y2016), (7, "weekend", y2016), (7, "weekly", y2016)]
    # The last ISO week of 2015 ends in 2016 (Sun Jan 3): its weekly bucket (Mon Dec 28)
    # is in a 2015 file; 2016's is foreseen too (a file no row needs is never written).
    assert (7, "weekly", date(2015, 1, 1)) in GoldScope.around([(7, date(2016, 1, 2))]).file_periods()
    assert (7, "hourly", date(2015, 12, 1)) not in GoldScope.around([(7, date(2016, 1, 2))]).file_periods()


def test_a_predicate_that_owns_nothing_is_false():
    assert date_ranges_predicate({}, "date") == "false"
