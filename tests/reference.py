"""An independent, deliberately simple pure-Python model of the product contract.

It implements SPEC.md sections 1-7 with the choices written down in
docs/decisions.md, with plain loops and nothing from the `jobs` or `reports`
packages, so that tests can compare the Spark pipeline's output against it.

Public API:
    load_config(conf_dir) -> Config
    read_records(conf, landing_dir, now) -> (list[Probe], list[Rejected])
    sessions(conf, probes) -> list[Session dict]
    gold(conf, sessions) -> list[gold row dict]
    compute(conf_dir, landing_dir, now) -> (gold rows, rejected, sessions)
"""
from __future__ import annotations

import gzip
import json
import os
import re
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import yaml
from dateutil.relativedelta import relativedelta

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TS_MS = 1262304000000  # 2010-01-01T00:00:00Z
DAY_MS = 86400000

Probe = namedtuple("Probe", "sensor_id mac ts_ms rssi randomized")
Rejected = namedtuple("Rejected", "source_file line_no raw reason")

DEFAULTS = {
    "session_gap_minutes": 15,
    "visitor_rssi_threshold": -70,
    "employee_window_days": 14,
    "employee_min_days": 5,
    "employee_min_daily_minutes": 240,
    "randomized_macs": "exclude",
    "max_lateness_days": 31,
}

THRESHOLDS = [2, 5, 10, 15, 20, 30, 45]
PAIRS = [(b, e) for b in THRESHOLDS for e in THRESHOLDS if e >= b]  # 28 pairs
USER_TYPES = ["all", "bounced", "employee", "engaged", "half engaged", "passer", "visitor"]
INTERVALS = ["hourly", "daily", "weekly", "monthly", "weekday", "weekend"]
# window name -> ("days", n) or ("months", n)
WINDOWS = [
    ("2_week", "days", 14),
    ("1_month", "months", 1),
    ("2_month", "months", 2),
    ("3_month", "months", 3),
    ("6_month", "months", 6),
    ("1_year", "months", 12),
    ("10_year", "months", 120),
]

# "White space" = ASCII white space (space, tab, LF, CR, FF, VT).
WS = " \t\n\r\f\v"


# --------------------------------------------------------------------------- config

@dataclass
class Config:
    pipeline: dict                                  # pipeline.yaml merged over DEFAULTS
    malls: dict = field(default_factory=dict)       # mall_id -> ZoneInfo
    objects: dict = field(default_factory=dict)     # object_id -> {"type", "mall_id", "name", "parent"}
    sensors: dict = field(default_factory=dict)     # sensor_id (str) -> {"zone_id", "threshold" (or None)}

    def tz(self, mall_id):
        return self.malls[mall_id]

    def sensor_threshold(self, sensor_id):
        t = self.sensors[sensor_id]["threshold"]
        return self.pipeline["visitor_rssi_threshold"] if t is None else t

    def objects_of_sensor(self, sensor_id):
        """The zone, its floor and its mall: every object whose subtree holds the sensor."""
        zone_id = self.sensors[sensor_id]["zone_id"]
        floor_id = self.objects[zone_id]["parent"]
        mall_id = self.objects[floor_id]["parent"]
        return [zone_id, floor_id, mall_id]


def _read_yaml(path):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return data or {}


def load_config(conf_dir) -> Config:
    pipeline = dict(DEFAULTS)
    for key, value in _read_yaml(os.path.join(conf_dir, "pipeline.yaml")).items():
        if key in DEFAULTS and value is not None:
            pipeline[key] = value
    conf = Config(pipeline=pipeline)
    objects = _read_yaml(os.path.join(conf_dir, "objects.yaml"))
    for mall in objects.get("malls") or []:
        mall_id = int(mall["id"])
        conf.malls[mall_id] = ZoneInfo(mall.get("timezone") or "UTC")
        conf.objects[mall_id] = {"type": "mall", "mall_id": mall_id, "name": mall.get("name"), "parent": None}
        for floor in mall.get("floors") or []:
            floor_id = int(floor["id"])
            conf.objects[floor_id] = {"type": "floor", "mall_id": mall_id, "name": floor.get("name"), "parent": mall_id}
            for zone in floor.get("zones") or []:
                zone_id = int(zone["id"])
                conf.objects[zone_id] = {"type": "zone", "mall_id": mall_id, "name": zone.get("name"), "parent": floor_id}
                for sensor in zone.get("sensors") or []:
                    sensor_id = str(sensor["id"]).strip(WS)
                    threshold = sensor.get("visitor_rssi_threshold")
                    conf.sensors[sensor_id] = {"zone_id": zone_id,
                                               "threshold": None if threshold is None else int(threshold)}
    return conf


# --------------------------------------------------------------------------- raw input

class _JsonNumber:
    """A JSON number kept as its JSON text."""

    def __init__(self, text):
        if len(text) > 1000:  # a limit of the pipeline's JSON parser (decisions.md)
            raise ValueError("JSON number longer than 1000 characters")
        self.text = text


def _json_depth(line):
    """The deepest nesting of [ and { in a JSON text (outside strings)."""
    depth = top = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            top = max(top, depth)
        elif ch in "]}":
            depth -= 1
    return top


def _lone_surrogate(value):
    """A string left holding a surrogate code point: json decoded an unpaired escape."""
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def _reject_constant(name):
    raise ValueError("not JSON: " + name)


MAC_PATTERNS = [
    re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}"),
    re.compile(r"[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}"),
    re.compile(r"[0-9A-Fa-f]{12}"),
    re.compile(r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"),
]
RSSI_RE = re.compile(r"[+-]?[0-9]+")
EPOCH_RE = re.compile(r"-?[0-9]+")
ISO_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def normalise_mac(text):
    """Lower-case colon form, or None when not an accepted spelling of a unicast MAC."""
    if not any(p.fullmatch(text) for p in MAC_PATTERNS):
        return None
    hex12 = text.replace(":", "").replace("-", "").replace(".", "").lower()
    if int(hex12[0:2], 16) & 0x01:  # multicast bit
        return None
    return ":".join(hex12[i:i + 2] for i in range(0, 12, 2))


def is_randomized(mac):
    return bool(int(mac[0:2], 16) & 0x02)


def parse_rssi(text):
    if not RSSI_RE.fullmatch(text):
        return None
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 3:  # far out of range (and safe from int()'s digit limit)
        return None
    value = -int(digits) if text.startswith("-") else int(digits)
    if value < -120 or value > 0:
        return None
    return value


def parse_ts(text):
    """Epoch milliseconds (int) of an ISO or epoch instant, or None when unparseable."""
    if EPOCH_RE.fullmatch(text):
        digits = text.lstrip("-").lstrip("0") or "0"
        if len(digits) > 19:  # does not fit 64 bits
            return None
        value = -int(digits) if text.startswith("-") else int(digits)
        if value < -(2 ** 63) or value > 2 ** 63 - 1:
            return None
        return value if value >= 10 ** 11 else value * 1000
    m = ISO_RE.fullmatch(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, offset = m.group(7), m.group(8)
    try:
        d = date(year, month, day)
    except ValueError:
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    if offset == "Z":
        offset_s = 0
    else:
        oh, om = int(offset[1:3]), int(offset[4:6])
        if om > 59 or oh * 60 + om > 18 * 60:
            return None
        offset_s = (oh * 3600 + om * 60) * (-1 if offset[0] == "-" else 1)
    millis = int((frac or "").ljust(3, "0")[:3])
    days = d.toordinal() - date(1970, 1, 1).toordinal()
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_s
    return seconds * 1000 + millis


def _aware_us(now):
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    delta = now - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000000 + delta.microseconds


def validate(conf, fields, now_us):
    """fields: dict of the four texts (already trimmed) or None when malformed.
    Returns (Probe, None) or (None, reason)."""
    if fields is None:
        return None, "malformed"
    mac = normalise_mac(fields["mac"])
    if mac is None:
        return None, "invalid_mac"
    rssi = parse_rssi(fields["rssi"])
    if rssi is None:
        return None, "invalid_rssi"
    ts_ms = parse_ts(fields["ts"])
    if ts_ms is None or ts_ms < MIN_TS_MS or ts_ms * 1000 > now_us + DAY_MS * 1000:
        return None, "invalid_ts"
    if fields["sensor_id"] not in conf.sensors:
        return None, "unknown_sensor"
    return Probe(fields["sensor_id"], mac, ts_ms, rssi, is_randomized(mac)), None


COLUMNS = ("sensor_id", "mac", "ts", "rssi")


def _json_fields(line):
    # Limits of the pipeline's JSON parser (decisions.md): nesting deeper than 999
    # levels, a number longer than 1000 characters, an unpaired surrogate → malformed.
    if _json_depth(line) > 999:
        return None
    try:
        obj = json.loads(line, parse_int=_JsonNumber, parse_float=_JsonNumber,
                         parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or _lone_surrogate(obj):
        return None
    fields = {}
    for col in COLUMNS:
        value = obj.get(col)
        if isinstance(value, str):
            fields[col] = value.strip(WS)
        elif isinstance(value, _JsonNumber):
            fields[col] = value.text
        else:  # missing, null, boolean, object, array
            return None
    return fields


def _csv_split(line):
    out = []
    for part in line.split(","):
        part = part.strip(WS)
        if len(part) >= 2 and part[0] == '"' and part[-1] == '"':
            part = part[1:-1].strip(WS)
        out.append(part)
    return out


def _file_format(name):
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    for ext, fmt in ((".ndjson", "json"), (".jsonl", "json"), (".json", "json"), (".csv", "csv")):
        if lower.endswith(ext):
            return fmt
    return None


def _file_lines(path):
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def landing_files(landing_dir):
    found = []
    for root, dirs, files in os.walk(landing_dir):
        # Hidden / marker names ('.x', '_x') are skipped, folders included (decisions.md).
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            if name.startswith((".", "_")):
                continue
            fmt = _file_format(name)
            if fmt:
                found.append((os.path.abspath(os.path.join(root, name)), fmt))
    return found


def read_records(conf, landing_dir, now):
    now_us = _aware_us(now)
    best = {}  # (sensor_id, mac, ts_ms) -> Probe with the highest rssi
    rejected = []
    for path, fmt in landing_files(landing_dir):
        lines = _file_lines(path)
        header = None
        if fmt == "csv" and lines:
            header = _csv_split(lines[0])
        for idx, line in enumerate(lines):
            line_no = idx + 1
            if fmt == "csv" and line_no == 1:
                continue
            if line.strip(WS) == "":
                continue
            if fmt == "json":
                fields = _json_fields(line)
            else:
                values = _csv_split(line)
                if any(col not in header for col in COLUMNS) or len(values) != len(header):
                    fields = None
                else:
                    fields = {col: values[header.index(col)] for col in COLUMNS}
            probe, reason = validate(conf, fields, now_us)
            if probe is None:
                rejected.append(Rejected(path, line_no, line, reason))
                continue
            key = (probe.sensor_id, probe.mac, probe.ts_ms)
            if key not in best or probe.rssi > best[key].rssi:
                best[key] = probe
    probes = sorted(best.values(), key=lambda p: (p.ts_ms, p.sensor_id, p.mac))
    return probes, rejected


# --------------------------------------------------------------------------- sessions

def local_dt(ts_ms, tz):
    return (EPOCH + timedelta(milliseconds=ts_ms)).astimezone(tz)


def _minutes_ms(minutes):
    """A setting in minutes as exact milliseconds (a Fraction when not whole)."""
    return Fraction(str(minutes)) * 60000


def sessions(conf, probes):
    gap_ms = _minutes_ms(conf.pipeline["session_gap_minutes"])
    exclude = str(conf.pipeline["randomized_macs"]).strip().lower() == "exclude"
    # (object_id, client) -> list of (ts_ms, strong)
    by_key = {}
    for p in probes:
        if p.randomized and exclude:
            continue
        if p.sensor_id not in conf.sensors:
            continue
        strong = p.rssi >= conf.sensor_threshold(p.sensor_id)
        for object_id in conf.objects_of_sensor(p.sensor_id):
            by_key.setdefault((object_id, p.mac), []).append((p.ts_ms, strong))
    result = []
    for (object_id, client) in sorted(by_key):
        obj = conf.objects[object_id]
        tz = conf.tz(obj["mall_id"])
        items = sorted(by_key[(object_id, client)])
        current = None
        for ts_ms, strong in items:
            d = local_dt(ts_ms, tz).date()
            if current is not None and ts_ms - current["end_ms"] <= gap_ms and d == current["date"]:
                current["end_ms"] = ts_ms
                current["strong"] = current["strong"] or strong
                continue
            if current is not None:
                result.append(current)
            current = {"mall_id": obj["mall_id"], "object_id": object_id, "object_type": obj["type"],
                       "client": client, "date": d, "start_ms": ts_ms, "end_ms": ts_ms, "strong": strong}
        if current is not None:
            result.append(current)
    for s in result:
        s["duration_ms"] = s["end_ms"] - s["start_ms"]
    return [{k: s[k] for k in ("mall_id", "object_id", "object_type", "client", "date",
                                "start_ms", "end_ms", "duration_ms", "strong")} for s in result]


# --------------------------------------------------------------------------- classes, comeback, buckets

def employee_days(conf, sess):
    """Set of (mall_id, client, date) on which the client is an employee of the mall."""
    window = int(conf.pipeline["employee_window_days"])
    min_days = int(conf.pipeline["employee_min_days"])
    min_ms = _minutes_ms(conf.pipeline["employee_min_daily_minutes"])
    daily = {}  # (mall_id, client, date) -> total ms at the mall object
    for s in sess:
        if s["object_type"] == "mall":
            key = (s["mall_id"], s["client"], s["date"])
            daily[key] = daily.get(key, 0) + s["duration_ms"]
    long_days = {k for k, total in daily.items() if total >= min_ms}
    result = set()
    for (mall_id, client, d) in daily:  # only dates with sessions need an answer
        n = 0
        for i in range(window):
            if (mall_id, client, d - timedelta(days=i)) in long_days:
                n += 1
        if n >= min_days:
            result.add((mall_id, client, d))
    return result


def window_start(d, kind, n):
    if kind == "days":
        return d - timedelta(days=n)
    return d - relativedelta(months=n)


def comeback_flags(sess):
    """(object_id, client, date) -> {window_name: bool} for every date with a session."""
    dates = {}
    for s in sess:
        dates.setdefault((s["object_id"], s["client"]), set()).add(s["date"])
    flags = {}
    for (object_id, client), ds in dates.items():
        ordered = sorted(ds)
        prev = None
        for d in ordered:
            flags[(object_id, client, d)] = {
                name: prev is not None and prev >= window_start(d, kind, n)
                for name, kind, n in WINDOWS
            }
            prev = d
    return flags


def offset_label(offset):
    total = int(offset.total_seconds())
    if total == 0:
        return "Z"
    sign = "+" if total > 0 else "-"
    total = abs(total)
    return "%s%02d:%02d" % (sign, total // 3600, (total % 3600) // 60)


def bucket_of(start_ms, tz, interval):
    """(bucket_start UTC datetime, bucket_date local date, label) of the bucket holding start_ms."""
    local = local_dt(start_ms, tz)
    d = local.date()
    if interval == "hourly":
        begin = local.replace(minute=0, second=0, microsecond=0)  # keeps `fold` of a repeated hour
    else:
        if interval == "daily":
            first = d
        elif interval == "weekly":
            first = d - timedelta(days=d.weekday())
        elif interval == "monthly":
            first = d.replace(day=1)
        elif interval == "weekday":
            if d.weekday() >= 5:
                return None
            first = d - timedelta(days=d.weekday())
        elif interval == "weekend":
            if d.weekday() < 5:
                return None
            first = d - timedelta(days=d.weekday() - 5)
        else:
            raise ValueError(interval)
        begin = datetime(first.year, first.month, first.day, tzinfo=tz)
    label = begin.strftime("%Y-%m-%dT%H:%M:%S") + offset_label(begin.utcoffset())
    return begin.astimezone(UTC), begin.date(), label


def base_class(s, employees):
    if (s["mall_id"], s["client"], s["date"]) in employees:
        return "employee"
    return "visitor" if s["strong"] else "passer"


def session_types(base, duration_ms, b, e):
    """The user types (besides 'all') a session counts under for thresholds (b, e)."""
    if base != "visitor":
        return [base]
    if duration_ms < b * 60000:
        return ["visitor", "bounced"]
    if duration_ms < e * 60000:
        return ["visitor", "half engaged"]
    return ["visitor", "engaged"]


def avg_minutes(sum_ms, count):
    if count == 0:
        return 0
    # floor(sum_ms / count / 60000 + 0.5)
    return (2 * sum_ms + count * 60000) // (2 * count * 60000)


def gross_hours(sum_ms):
    # floor(sum_ms / 3600000 * 100 + 0.5) / 100
    return ((sum_ms * 100 + 1800000) // 3600000) / 100


def gold(conf, sess):
    employees = employee_days(conf, sess)
    flags = comeback_flags(sess)
    # (object_id, interval, bucket_start) -> (bucket_date, label, [sessions])
    buckets = {}
    for s in sess:
        tz = conf.tz(s["mall_id"])
        for interval in INTERVALS:
            found = bucket_of(s["start_ms"], tz, interval)
            if found is None:
                continue
            bucket_start, bucket_date, label = found
            key = (s["object_id"], INTERVALS.index(interval), bucket_start)
            buckets.setdefault(key, (bucket_date, label, []))[2].append(s)
    rows = []
    for key in sorted(buckets):
        object_id, interval_idx, bucket_start = key
        interval = INTERVALS[interval_idx]
        bucket_date, label, members = buckets[key]
        obj = conf.objects[object_id]
        for b, e in PAIRS:
            grouped = {t: [] for t in USER_TYPES}
            for s in members:
                grouped["all"].append(s)
                for t in session_types(base_class(s, employees), s["duration_ms"], b, e):
                    grouped[t].append(s)
            for t in USER_TYPES:
                group = grouped[t]
                sum_ms = sum(s["duration_ms"] for s in group)
                row = {
                    "object_id": object_id,
                    "object_type": obj["type"],
                    "mall_id": obj["mall_id"],
                    "interval": interval,
                    "bucket_start": bucket_start,
                    "bucket_date": bucket_date,
                    "datetime": label,
                    "bounce_threshold": b,
                    "engagement_threshold": e,
                    "user_type": t,
                    "count_session": len(group),
                    "count_client": len({s["client"] for s in group}),
                    "avg_session_duration": avg_minutes(sum_ms, len(group)),
                    "sum_session_duration": gross_hours(sum_ms) if interval in ("daily", "weekly", "monthly") else 0.0,
                }
                for name, _kind, _n in WINDOWS:
                    row["count_comeback_client_" + name] = len(
                        {s["client"] for s in group if flags[(object_id, s["client"], s["date"])][name]})
                rows.append(row)
    return rows


def compute(conf_dir, landing_dir, now):
    conf = load_config(conf_dir)
    probes, rejected = read_records(conf, landing_dir, now)
    sess = sessions(conf, probes)
    return gold(conf, sess), rejected, sess
