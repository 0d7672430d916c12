"""The contract's vocabulary (SPEC), in one Spark-free module that every package imports.

Thresholds, user types, intervals, comeback windows, quarantine reasons, table paths,
gold's order and the input ranges are written here once; the rules that use them live
in one module each (the README's table "Where each rule lives"). One rule is written
here, as plain Python: the split of visitor sessions by duration (:func:`visitor_class`).

Pipeline settings and their defaults (``session_gap_minutes`` …) are the config's:
:class:`jobs.config.Settings`.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

# ---------------------------------------------------------------------------- §4 user types

#: Allowed bounce and engagement thresholds, minutes (both b and e).
THRESHOLDS: tuple[int, ...] = (2, 5, 10, 15, 20, 30, 45)
#: Every (b, e) with b ≤ e: the 28 combinations gold precomputes.
THRESHOLD_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (b, e) for b in THRESHOLDS for e in THRESHOLDS if e >= b)

#: A session's base class (one per session and object).
EMPLOYEE, VISITOR, PASSER = "employee", "visitor", "passer"
BASE_CLASSES: tuple[str, ...] = (EMPLOYEE, VISITOR, PASSER)
#: Visitor sessions again, by duration against (b, e).
BOUNCED, HALF_ENGAGED, ENGAGED = "bounced", "half engaged", "engaged"
#: Every user type, in the order of the API's response (SPEC §10).
USER_TYPES: tuple[str, ...] = ("all", BOUNCED, EMPLOYEE, ENGAGED, HALF_ENGAGED, PASSER, VISITOR)


def visitor_class(duration_minutes: float, b: int, e: int) -> str:
    """The engagement of a visitor session of ``duration_minutes`` under thresholds
    ``b`` ≤ ``e``: bounced (duration < b), half engaged (b ≤ duration < e), engaged
    (duration ≥ e). Gold's slot table (:mod:`jobs.metrics`) is derived from this."""
    if duration_minutes < b:
        return BOUNCED
    if duration_minutes < e:
        return HALF_ENGAGED
    return ENGAGED


# ---------------------------------------------------------------------------- §5 comeback

class ComebackWindow(NamedTuple):
    """One comeback window: its SPEC/API name, its gold column and its span. ``prev ≥
    d − W`` with ``W`` = ``days`` days or ``months`` calendar months (SQL interval
    arithmetic: 2016-03-31 − 1 month = 2016-02-29)."""

    name: str
    column: str
    days: int
    months: int


COMEBACK_WINDOWS: tuple[ComebackWindow, ...] = tuple(
    ComebackWindow(name, "count_comeback_client_" + name.replace(" ", "_"), days, months)
    for name, days, months in (
        ("2 week", 14, 0),
        ("1 month", 0, 1),
        ("2 month", 0, 2),
        ("3 month", 0, 3),
        ("6 month", 0, 6),
        ("1 year", 0, 12),
        ("10 year", 0, 120),
    ))
#: API name → gold column.
COMEBACK_COLUMNS: dict[str, str] = {w.name: w.column for w in COMEBACK_WINDOWS}


# ---------------------------------------------------------------------------- §6–§7 buckets

INTERVALS: tuple[str, ...] = ("hourly", "daily", "weekly", "monthly", "weekday", "weekend")
#: Intervals whose ``sum_session_duration`` (Gross Shopping Hours) is reported; the
#: others report 0, as the original page states.
GSH_INTERVALS: tuple[str, ...] = ("daily", "weekly", "monthly")
#: The whole period a bucket of each interval lies in, which is what a run replaces
#: when one date of it changes: the day, the ISO week (Monday–Sunday) or the month.
INTERVAL_PERIOD: dict[str, str] = {
    "hourly": "day", "daily": "day",
    "weekly": "week", "weekday": "week", "weekend": "week",
    "monthly": "month",
}


# ---------------------------------------------------------------------------- §2 input

#: Landing file formats by extension (lower case; ``.gz`` may follow).
JSON_EXTENSIONS: tuple[str, ...] = (".ndjson", ".jsonl", ".json")
CSV_EXTENSIONS: tuple[str, ...] = (".csv",)
GZIP_EXTENSION = ".gz"
#: The four fields of a probe record.
FIELDS: tuple[str, ...] = ("sensor_id", "mac", "ts", "rssi")
RSSI_MIN, RSSI_MAX = -120, 0
#: Instants before this are ``invalid_ts`` …
MIN_TS = dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc)
#: … and so are instants later than the ingest time plus this.
MAX_TS_AHEAD = dt.timedelta(days=1)
#: Integer epochs at or above this are milliseconds, below it seconds.
EPOCH_MS_FROM = 10**11

#: Quarantine reasons, in the order the checks run (a record gets the first it fails).
MALFORMED, INVALID_MAC, INVALID_RSSI, INVALID_TS, UNKNOWN_SENSOR = (
    "malformed", "invalid_mac", "invalid_rssi", "invalid_ts", "unknown_sensor")
#: Nightly only: a valid record dated before D − max_lateness_days (SPEC §9).
TOO_LATE = "too_late"
#: A landing file that cannot be read at all (a corrupt gzip): one row, line 0.
CORRUPT_FILE = "corrupt_file"
REASONS: tuple[str, ...] = (MALFORMED, INVALID_MAC, INVALID_RSSI, INVALID_TS, UNKNOWN_SENSOR,
                            TOO_LATE, CORRUPT_FILE)
#: Reasons a backfill tries again: records held back by the lateness rule, and records
#: of sensors that may have been added to the config since.
REPLAYED: tuple[str, ...] = (TOO_LATE, UNKNOWN_SENSOR)


def file_format(path: str) -> str | None:
    """``'json'`` or ``'csv'`` from a landing file's name (``.gz`` allowed), else None."""
    name = path.lower().removesuffix(GZIP_EXTENSION)
    if name.endswith(JSON_EXTENSIONS):
        return "json"
    if name.endswith(CSV_EXTENSIONS):
        return "csv"
    return None


# ---------------------------------------------------------------------------- §8 tables

#: Table paths under the lakehouse root.
BRONZE_PROBES = "bronze/probes"
QUARANTINE = "bronze/quarantine"
SESSIONS = "silver/sessions"
CLIENT_DAYS = "silver/client_days"
GROUP_DATETIME = "gold/group_datetime"
#: The object tree as a table, for BI tools (written with the catalog, jobs/catalog.py).
OBJECTS = "gold/objects"
INGESTED_FILES = "ops/ingested_files"
PENDING_DATES = "ops/pending_dates"
SENSORS = "ops/sensors"

#: Gold's partition columns, and the order rows are sorted in within a partition: the
#: layout the report API reads fastest (a request is one object, one (b, e), a range of
#: buckets). The pipeline writes it and maintenance keeps it.
GOLD_PARTITIONS: tuple[str, ...] = ("mall_id", "interval")
GOLD_SORT: tuple[str, ...] = ("object_id", "bounce_threshold", "engagement_threshold", "bucket_start")
#: Gold's files: one per partition and calendar period of ``bucket_date`` (jobs/layout.py):
#: a month of hourly buckets, a year of the other intervals' (their rows are few).
GOLD_FILE_PERIOD: dict[str, str] = {"hourly": "month"}
GOLD_FILE_PERIOD_DEFAULT = "year"


def gold_file_start(interval: str, bucket_date: dt.date) -> dt.date:
    """The first day of the gold file period that holds ``bucket_date``."""
    if GOLD_FILE_PERIOD.get(interval, GOLD_FILE_PERIOD_DEFAULT) == "month":
        return bucket_date.replace(day=1)
    return bucket_date.replace(month=1, day=1)


# ---------------------------------------------------------------------------- §10 report

#: The report's optional parameters and their defaults (the original page's example).
REPORT_DEFAULTS: dict[str, str] = {"comeback": "2 week", "bounce_threshold": "5 minute",
                                   "engagement_threshold": "20 minute"}
