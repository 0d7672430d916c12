"""The buckets of SPEC §6 as the report API answers them, without Spark: every bucket of
an interval overlapping a local date range in a mall's zone, with the label gold writes
(docs/decisions.md, "Buckets"), so that a bucket without gold rows is still reported,
with zeros. Also used by the API's warm-up and its benchmark."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from typing import NamedTuple
from zoneinfo import ZoneInfo

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_DAY = dt.timedelta(days=1)


class Bucket(NamedTuple):
    """One bucket: its start as UTC epoch seconds, its local start date and its label."""

    start: int
    date: dt.date
    label: str


def _offset_text(offset: dt.timedelta) -> str:
    """``Z`` or ``±HH:MM``, as gold writes it (seconds of historical offsets dropped)."""
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _day_start(d: dt.date, zone: ZoneInfo) -> tuple[int, str]:
    """The first instant of local date ``d`` and the day-based label ``<d>T00:00:00<offset>``.

    ``fold=0``: where DST skips midnight, Python maps 00:00 with the offset before the
    change, which is the instant of the change (e.g. 03:00Z in America/Sao_Paulo on
    2016-10-16) and the offset gold's label shows (docs/decisions.md, "Buckets").
    """
    local = dt.datetime(d.year, d.month, d.day, tzinfo=zone)
    start = (local - _EPOCH) // dt.timedelta(seconds=1)
    return start, f"{d.isoformat()}T00:00:00{_offset_text(local.utcoffset())}"


def _hours(d: dt.date, zone: ZoneInfo) -> list[Bucket]:
    """The local hours of date ``d``: a repeated hour twice (two offsets), a skipped one never."""
    start, _ = _day_start(d, zone)
    end, _ = _day_start(d + _DAY, zone)
    first = dt.datetime.fromtimestamp(start, _UTC).astimezone(zone)
    last = dt.datetime.fromtimestamp(end - 1, _UTC).astimezone(zone)
    if end - start == 86_400 and first.utcoffset() == last.utcoffset() and first.hour == 0:
        off = _offset_text(first.utcoffset())
        day = d.isoformat()
        return [Bucket(start + 3600 * h, d, f"{day}T{h:02d}:00:00{off}") for h in range(24)]
    # A day with a change of offset: an hour bucket starts wherever the wall clock shows a
    # whole hour. Quarter-hour steps also find the hours of zones with :30 or :45 offsets.
    out = []
    for t in range(start, end, 900):
        local = dt.datetime.fromtimestamp(t, _UTC).astimezone(zone)
        if local.minute == 0 and local.second == 0:
            out.append(Bucket(t, d, local.strftime("%Y-%m-%dT%H:%M:%S") + _offset_text(local.utcoffset())))
    return out


def _dates(interval: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """Start dates of the day-based buckets that overlap [start, end] (whole buckets)."""
    if interval == "daily":
        return [start + _DAY * i for i in range((end - start).days + 1)]
    monday = start - _DAY * start.weekday()
    if interval == "weekly":
        return [monday + _DAY * 7 * i for i in range((end - monday).days // 7 + 1)]
    if interval == "monthly":
        out, d = [], start.replace(day=1)
        while d <= end:
            out.append(d)
            d = (d + _DAY * calendar.monthrange(d.year, d.month)[1])
        return out
    # weekday: Mon 00:00 – Sat 00:00; weekend: Sat 00:00 – Mon 00:00. A bucket overlaps the
    # range when it starts on or before `end` and ends after `start`.
    first, length = (monday, 5) if interval == "weekday" else (monday - _DAY * 2, 2)
    out, d = [], first
    while d <= end:
        if d + _DAY * length > start:
            out.append(d)
        d += _DAY * 7
    return out


@functools.lru_cache(maxsize=512)
def buckets(interval: str, start: dt.date, end: dt.date, timezone: str) -> tuple[Bucket, ...]:
    """Every bucket of ``interval`` overlapping local dates [start, end] in ``timezone``,
    in time order, labelled as gold labels them."""
    zone = ZoneInfo(timezone)
    if interval == "hourly":
        return tuple(b for i in range((end - start).days + 1) for b in _hours(start + _DAY * i, zone))
    out = []
    for d in _dates(interval, start, end):
        first, label = _day_start(d, zone)
        out.append(Bucket(first, d, label))
    return tuple(out)


def bucket_count(interval: str, start: dt.date, end: dt.date) -> int:
    """How many buckets the range has, to refuse a too large request before doing the work
    (hourly: 24 per day; a DST change moves this by one)."""
    if interval == "hourly":
        return 24 * ((end - start).days + 1)
    return len(_dates(interval, start, end))
