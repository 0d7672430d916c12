"""What a run owns: which (mall, local date)s it rebuilds and which gold buckets it
replaces (SPEC §9, late data and incremental = full).

A change to the sessions of a date ``d`` at a mall can change gold

* on ``d`` itself;
* on the next ``employee_window_days - 1`` dates, whose employee window includes ``d``
  (:func:`dependent_dates`);
* on each client's next visit date after ``d``, whose comeback looks back at ``d``
  (:func:`next_visits`);

and every bucket holding one of those dates: the day (hourly, daily), the ISO week
(weekly, weekday, weekend) and the month (monthly) — :class:`GoldScope`. Recomputing a
bucket needs the sessions of all its days and, for employee status, the
``employee_window_days - 1`` dates before them (:func:`employee_lookback`).

Plain Python except :func:`next_visits`, a DataFrame transform.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from jobs.spec import INTERVAL_PERIOD, gold_file_start

#: Per mall, sorted and disjoint (first, last) local date ranges, both included.
DateRanges = dict[int, list[tuple[dt.date, dt.date]]]
MallDate = tuple[int, dt.date]

_DAY = dt.timedelta(days=1)


def to_ranges(dates: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Collapse dates into sorted, maximal runs of consecutive days."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in sorted(set(dates)):
        if out and d - out[-1][1] <= _DAY:
            out[-1] = (out[-1][0], max(out[-1][1], d))
        else:
            out.append((d, d))
    return out


def by_mall(pairs: Iterable[MallDate]) -> DateRanges:
    """(mall, date) pairs as per-mall date ranges."""
    grouped: dict[int, set[dt.date]] = defaultdict(set)
    for m, d in pairs:
        grouped[m].add(d)
    return {m: to_ranges(ds) for m, ds in grouped.items()}


def days(ranges: DateRanges) -> list[MallDate]:
    """Every (mall, date) of ``ranges``."""
    out = []
    for m, rs in ranges.items():
        for lo, hi in rs:
            out.extend((m, lo + _DAY * i) for i in range((hi - lo).days + 1))
    return out


def sql_date(d: dt.date) -> str:
    """A SQL date literal, ``DATE'2016-02-29'``."""
    return f"DATE'{d.isoformat()}'"


def date_ranges_predicate(ranges: Mapping[int, Iterable[tuple[dt.date, dt.date]]],
                          date_col: str) -> str:
    """``(mall_id = m AND date_col >= a AND date_col <= b) OR …`` for each mall's
    ranges; ``false`` when there is none (a replace that owns nothing)."""
    parts = []
    for mall_id in sorted(ranges):
        for lo, hi in sorted(ranges[mall_id]):
            # Not BETWEEN: Delta's replaceWhere cannot resolve it (INTERNAL_ERROR).
            parts.append(f"(mall_id = {int(mall_id)} AND {date_col} >= {sql_date(lo)}"
                         f" AND {date_col} <= {sql_date(hi)})")
    return " OR ".join(parts) if parts else "false"


def next_visits(client_days: DataFrame, scope: DateRanges) -> DataFrame:
    """``(mall_id, next_date)``: for each client day in ``scope``, the client's next
    date with a session at the same object (whose comeback looks back at it)."""
    w = Window.partitionBy("object_id", "client_id").orderBy("date")
    # A day's next date is never before it: the days before the scope are not read.
    since = " OR ".join(f"(mall_id = {m} AND date >= DATE'{min(lo for lo, _ in rs)}')"
                        for m, rs in scope.items() if rs) or "FALSE"
    return (client_days.where(since)
            .withColumn("next_date", F.lead("date").over(w))
            .where(date_ranges_predicate(scope, "date"))
            .where(F.col("next_date").isNotNull())
            .select("mall_id", "next_date").distinct())


def dependent_dates(scope: DateRanges, employee_window_days: int,
                    next_visit_dates: Iterable[MallDate]) -> list[MallDate]:
    """The dates whose gold can change when the sessions of ``scope`` change: the
    scope, the following ``employee_window_days - 1`` days, and the next visits."""
    out = set(days(scope))
    for m, d in list(out):
        out.update((m, d + _DAY * i) for i in range(1, employee_window_days))
    out.update(next_visit_dates)
    return sorted(out)


def employee_lookback(ranges: DateRanges, employee_window_days: int) -> DateRanges:
    """``ranges`` widened back by the employee window: the mall-level days that decide
    employee status on each of their dates (D-13 … D by default)."""
    back = _DAY * (employee_window_days - 1)
    return {m: [(lo - back, hi) for lo, hi in rs] for m, rs in ranges.items()}


def _monday(d: dt.date) -> dt.date:
    return d - _DAY * d.weekday()


def _month_span(d: dt.date) -> tuple[dt.date, dt.date]:
    first = d.replace(day=1)
    nxt = (first + _DAY * 32).replace(day=1)
    return first, nxt - _DAY


def _period(d: dt.date, period: str) -> list[dt.date]:
    """Every date of the day, ISO week or month that holds ``d``."""
    if period == "day":
        return [d]
    first, last = (_monday(d), _monday(d) + _DAY * 6) if period == "week" else _month_span(d)
    return [first + _DAY * i for i in range((last - first).days + 1)]


@dataclass
class GoldScope:
    """The gold buckets a run replaces: per period (day, week, month; see
    :data:`jobs.spec.INTERVAL_PERIOD`), per mall, the date ranges of whole periods."""

    periods: dict[str, DateRanges]

    @classmethod
    def around(cls, dates: Iterable[MallDate]) -> "GoldScope":
        """The whole days, weeks and months that hold ``dates``."""
        dates = list(dates)
        return cls({p: by_mall((m, x) for m, d in dates for x in _period(d, p))
                    for p in dict.fromkeys(INTERVAL_PERIOD.values())})

    def read_ranges(self) -> DateRanges:
        """Session dates to read: every day of every bucket in scope."""
        return by_mall(md for ranges in self.periods.values() for md in days(ranges))

    def predicate(self) -> str:
        """The gold rows this scope owns."""
        parts = []
        for period, ranges in self.periods.items():
            intervals = ", ".join(f"'{i}'" for i, p in INTERVAL_PERIOD.items() if p == period)
            parts.append(f"(interval IN ({intervals}) AND "
                         f"({date_ranges_predicate(ranges, 'bucket_date')}))")
        return " OR ".join(parts)

    def file_periods(self) -> list[tuple[int, str, dt.date]]:
        """The gold files this scope writes: (mall, interval, start of the file's period,
        :func:`jobs.spec.gold_file_start`) for every date of the interval's ranges (a few
        more than hold rows is harmless: :mod:`jobs.layout`)."""
        return sorted({(m, interval, gold_file_start(interval, d))
                       for interval, period in INTERVAL_PERIOD.items()
                       for m, d in days(self.periods[period])})

    def mall_dates(self) -> int:
        """How many (mall, date)s have their day buckets replaced."""
        return len(days(self.periods["day"]))
