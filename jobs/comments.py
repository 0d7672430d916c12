"""What the BI catalog (:mod:`jobs.catalog`) says about its tables and views: one
comment per table and per column, shown by ``DESCRIBE`` and by every BI tool's table
browser. Spark-free; docs/bi.md lists the same tables in prose.

Units are named where a number has one (minutes, hours, milliseconds, dBm).
"""

from __future__ import annotations

from typing import NamedTuple

from jobs.spec import (BRONZE_PROBES, CLIENT_DAYS, COMEBACK_WINDOWS, GROUP_DATETIME, OBJECTS,
                       QUARANTINE, SESSIONS, THRESHOLDS, USER_TYPES)


class TableDoc(NamedTuple):
    """A catalog table: its name, its Delta table under the lakehouse, its comments."""

    name: str
    path: str
    comment: str
    columns: dict[str, str]


_LABEL = ("the bucket's label: ISO 8601 local time of its start with the UTC offset in "
          "force then (+03:00; Z for zero)")
_USER_TYPE = "user type: " + ", ".join(USER_TYPES)
_THRESHOLD = "minutes: " + ", ".join(map(str, THRESHOLDS))
_MALL = "the mall the row belongs to (objects.object_id of its mall)"
_OBJECT = "the mall, floor or zone (objects.object_id)"
_OBJECT_TYPE = "mall, floor or zone"

GOLD_METRICS: dict[str, str] = {
    "count_session": "sessions of this user type that start in the bucket",
    "count_client": "distinct clients (devices) with such a session",
    "avg_session_duration": "mean session duration in minutes, rounded half up to a whole minute; 0 when none",
    "sum_session_duration": ("Gross Shopping Hours: total session duration in hours, 2 decimals "
                             "(daily, weekly, monthly; 0 for hourly, weekday, weekend)"),
}

GOLD = TableDoc("group_datetime", GROUP_DATETIME, (
    "Footfall metrics per object, interval, bucket, threshold pair and user type. Filter on "
    "one bounce_threshold and one engagement_threshold (else each session counts 28 times), "
    "and on mall_id and interval (the partitions). A bucket without sessions has no rows."), {
    "object_id": _OBJECT,
    "object_type": _OBJECT_TYPE,
    "mall_id": _MALL + " (partition)",
    "interval": "hourly, daily, weekly, monthly, weekday or weekend (partition)",
    "bucket_start": "the bucket's start as a UTC instant",
    "bucket_date": "the bucket's start as a local date (the mall's time zone)",
    "datetime": _LABEL,
    "bounce_threshold": "b: a visit shorter than b is bounced; " + _THRESHOLD,
    "engagement_threshold": "e: a visit of at least e is engaged; " + _THRESHOLD + " (e >= b)",
    "user_type": _USER_TYPE,
    **GOLD_METRICS,
    **{w.column: (f"distinct clients of the bucket who come back within {w.name} "
                  "(another local day with a session at this object)") for w in COMEBACK_WINDOWS},
})

SESSIONS_DOC = TableDoc("sessions", SESSIONS, (
    "One row per session: one stay of one client at one object (a gap of more than "
    "session_gap_minutes between probes starts a new one)."), {
    "mall_id": _MALL + " (partition)",
    "date": "the local date of the session's start (partition)",
    "object_id": _OBJECT,
    "object_type": _OBJECT_TYPE,
    "client_id": "the device: HMAC-SHA256 of its MAC (never the MAC)",
    "session_start": "first probe, UTC instant",
    "session_end": "last probe, UTC instant",
    "duration_ms": "session_end - session_start in milliseconds",
    "duration_minutes": "the duration in minutes (duration_ms / 60000)",
    "probe_count": "probes in the session",
    "strong": "true when at least one probe reached the sensor's visitor RSSI threshold",
})

CLIENT_DAYS_DOC = TableDoc("client_days", CLIENT_DAYS, (
    "Per object, client and local date: how many sessions and how long in total. Feeds "
    "the employee rule and the comeback counts."), {
    "mall_id": _MALL + " (partition)",
    "date": "local date (partition)",
    "object_id": _OBJECT,
    "object_type": _OBJECT_TYPE,
    "client_id": "the device: HMAC-SHA256 of its MAC (never the MAC)",
    "session_count": "sessions of the client at the object that day",
    "duration_ms": "their total duration in milliseconds",
})

OBJECTS_DOC = TableDoc("objects", OBJECTS, (
    "The object tree of conf/objects.yaml: every mall, floor and zone, for labels and "
    "drill-down mall -> floor -> zone. Join on object_id."), {
    "object_id": "the object's id (unique across malls, floors and zones)",
    "object_type": _OBJECT_TYPE,
    "name": "the object's name",
    "mall_id": "its mall's id",
    "mall_name": "its mall's name",
    "floor_id": "its floor's id (null for a mall)",
    "floor_name": "its floor's name (null for a mall)",
    "zone_id": "the zone's id (null for a mall or floor)",
    "zone_name": "the zone's name (null for a mall or floor)",
    "parent_id": "the object one level up (null for a mall)",
    "timezone": "the mall's IANA time zone: every local date and label is in it",
})

PROBES_DOC = TableDoc("probes", BRONZE_PROBES, (
    "Bronze: every valid probe record, exact duplicates collapsed (highest RSSI)."), {
    "mall_id": _MALL + " (partition)",
    "date": "the probe's local date (partition)",
    "sensor_id": "the sensor that heard it",
    "client_id": "the device: HMAC-SHA256 of its MAC",
    "ts": "when, UTC instant (milliseconds)",
    "rssi": "signal strength in dBm",
    "randomized": "the MAC is locally administered (a phone's random MAC)",
    "source_file": "the landing file it came from",
    "line_no": "its line (record) in that file",
    "run_id": "the run that stored it",
})

QUARANTINE_DOC = TableDoc("quarantine", QUARANTINE, (
    "Bronze: every rejected record with its raw text (raw MACs: restrict access)."), {
    "source_file": "the landing file",
    "line_no": "the line (record) in that file",
    "raw": "the record's raw text",
    "csv_header": "the header of its CSV file (null for JSON)",
    "reason": "why it was rejected: malformed, invalid_mac, invalid_rssi, invalid_ts, "
              "unknown_sensor, too_late, corrupt_file (partition)",
    "mall_id": "the mall, when its sensor is known",
    "date": "the local date, when its time could be read",
    "run_id": "the run that rejected it",
    "sensor_id": "the sensor id as written, when it could be read",
})

#: The catalog's tables; ``include_raw`` adds :data:`RAW_TABLES`.
TABLES: tuple[TableDoc, ...] = (GOLD, SESSIONS_DOC, CLIENT_DAYS_DOC, OBJECTS_DOC)
RAW_TABLES: tuple[TableDoc, ...] = (PROBES_DOC, QUARANTINE_DOC)


class ViewDoc(NamedTuple):
    """A catalog view: its name, comment, column comments in column order, and the
    catalog tables it reads."""

    name: str
    comment: str
    columns: dict[str, str]
    reads: tuple[str, ...]


REPORT_VIEW = ViewDoc("report", (
    "group_datetime with one comeback window per row, as the report API answers: filter on "
    "bounce_threshold, engagement_threshold and comeback (2 week ... 10 year)."), {
    "object_id": GOLD.columns["object_id"],
    "object_type": GOLD.columns["object_type"],
    "mall_id": GOLD.columns["mall_id"],
    "interval": GOLD.columns["interval"],
    "bucket_start": GOLD.columns["bucket_start"],
    "bucket_date": GOLD.columns["bucket_date"],
    "datetime": GOLD.columns["datetime"],
    "bounce_threshold": GOLD.columns["bounce_threshold"],
    "engagement_threshold": GOLD.columns["engagement_threshold"],
    "user_type": GOLD.columns["user_type"],
    **GOLD_METRICS,
    "comeback": "the comeback window, as the API spells it: " + ", ".join(w.name for w in COMEBACK_WINDOWS),
    "count_comeback_client": "distinct clients of the bucket who come back within the window",
}, ("group_datetime",))

DAILY_MALL_SUMMARY_VIEW = ViewDoc("daily_mall_summary", (
    "One row per mall and local day, at the default thresholds (bounce 5 minutes, "
    "engagement 20 minutes) and the 2-week comeback window."), {
    "mall_id": "the mall's id",
    "mall_name": "the mall's name",
    "date": "the local date",
    "clients": "distinct devices seen (all user types)",
    "visitors": "distinct visitors",
    "passers": "distinct passers-by",
    "employees": "distinct employees",
    "bounced": "distinct visitors with a visit shorter than 5 minutes",
    "half_engaged": "distinct visitors with a visit of 5 to under 20 minutes",
    "engaged": "distinct visitors with a visit of 20 minutes or more",
    "visits": "visitor sessions",
    "avg_visit_minutes": "mean visitor session in minutes, rounded half up",
    "gross_shopping_hours": "total visitor session time in hours, 2 decimals",
    "comeback_visitors_2_week": "distinct visitors who come back within 2 weeks",
}, ("group_datetime", "objects"))

VIEWS: tuple[ViewDoc, ...] = (REPORT_VIEW, DAILY_MALL_SUMMARY_VIEW)
