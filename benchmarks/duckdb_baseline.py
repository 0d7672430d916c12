"""The footfall contract (SPEC §2–§7) as DuckDB SQL in one process: a timing baseline.

Why it exists: it is the comparison a data engineer makes before trusting a Spark + Delta
pipeline, "what would I get in an afternoon with DuckDB on one machine?". It reads the same
config and landing files, computes gold's metrics for every bucket from scratch, and
:func:`compare` diffs them with the product's gold Delta table. It keeps nothing: no Delta
tables, no incremental runs, no quarantine (rejected records are only counted by reason).
It follows SPEC and docs/decisions.md as tests/reference.py models them
(tests/test_duckdb_baseline.py checks it against that model).

Client identity: the normalised MAC as a 48-bit integer. Gold holds only counts, and the
HMAC-SHA256 ids of distinct MACs are distinct, so the counts are the same. With
``hmac_key`` the product's ids (64 hex) are computed in Python once per distinct MAC and
joined in, to measure what that costs.

Local time: offsets come from Python's zoneinfo (as in the reference), in a small table of
(mall, UTC day) → offset before and after that day's offset change, if any (at most one a
day: true of every zone since 2010); the bucket starts of a local date are
``datetime(y, m, d, tzinfo=zone)``, as decisions.md says.

Where DuckDB reads a landing file differently from the contract (byte-level oddities that
the generator never writes; most still get the same verdict):
- a bare CR ends a line too (contract: only LF), and a NUL byte ends a line's text (it is
  the reader's column delimiter);
- a line with invalid UTF-8 is taken back from DuckDB's reject table, where a bad byte reads
  as '?' (contract: U+FFFD): the same verdict unless a sensor id holds one;
- file names holding glob characters (``[ * ? {``) are read by DuckDB as patterns;
- a .gz file that cannot be read is left out whole (the product quarantines it);
- a JSON number used as a MAC or sensor id is spelt as DuckDB writes it, which differs only
  for non-integers (``"mac": 1e1111111111``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hmac
import json
import os
import sys
import time
from fractions import Fraction
from hashlib import sha256
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import yaml

from jobs.config import DEV_HMAC_KEY
from jobs.spec import (COMEBACK_WINDOWS, EPOCH_MS_FROM, FIELDS, GSH_INTERVALS, INTERVALS,
                       THRESHOLD_PAIRS, THRESHOLDS, USER_TYPES)

DEFAULTS = {"session_gap_minutes": 15, "visitor_rssi_threshold": -70, "employee_window_days": 14,
            "employee_min_days": 5, "employee_min_daily_minutes": 240, "randomized_macs": "exclude"}
WS = " \t\n\r\f\v"  # decisions.md's white space
DAY_MS, MIN_TS_MS = 86_400_000, 1_262_304_000_000  # 2010-01-01T00:00:00Z
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
#: The gold columns the baseline computes: the key of a row, and its metrics.
KEY = ["object_id", "interval", "bucket_start", "bounce_threshold", "engagement_threshold", "user_type"]
METRICS = ["count_session", "count_client", "avg_session_duration", "sum_session_duration",
           *[w.column for w in COMEBACK_WINDOWS]]
MAC_RE = ("[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{12}"
          r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
ISO_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
# JSON lines where DuckDB's parser (yyjson) and Python's json.loads may disagree: a trailing
# comma or NaN/Infinity in any case (yyjson reads them, Python does not), a key given twice
# (Python: the last counts), escapes, or a line long enough to reach the parser's limits.
NOT_JSON_RE = r",[ \t\r]*[\]}]|[Nn][Aa][Nn]|[Ii][Nn][Ff]"
ODD_JSON_RE = NOT_JSON_RE + r'|\\|"sensor_id".*"sensor_id"|"mac".*"mac"|"ts".*"ts"|"rssi".*"rssi"'
READ = ("columns={'line': 'VARCHAR'}, header=false, auto_detect=false, delim=chr(0), quote='', "
        "escape='', new_line='\\n', strict_mode=false, ignore_errors=true, store_rejects=true, "
        "max_line_size=16777216, buffer_size=67108864")


def load_config(conf_dir: Path) -> tuple[dict, dict, list]:
    """(settings, {mall_id: ZoneInfo}, [(sensor_id, zone, floor, mall, rssi threshold)])."""
    def read(name):
        path = Path(conf_dir) / name
        return (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
    settings = {**DEFAULTS, **{k: v for k, v in read("pipeline.yaml").items()
                               if k in DEFAULTS and v is not None}}
    zones, sensors = {}, []
    for mall in read("objects.yaml").get("malls") or []:
        zones[int(mall["id"])] = ZoneInfo(mall.get("timezone") or "UTC")
        for floor in mall.get("floors") or []:
            for zone in floor.get("zones") or []:
                for s in zone.get("sensors") or []:
                    t = s.get("visitor_rssi_threshold")
                    sensors.append((str(s["id"]).strip(WS), int(zone["id"]), int(floor["id"]), int(mall["id"]),
                                    int(settings["visitor_rssi_threshold"] if t is None else t)))
    return settings, zones, sensors


def landing_files(landing: Path) -> dict[tuple[str, bool], list[str]]:
    """Files by (format, gzipped), skipping hidden/marker names and empty files."""
    found: dict[tuple[str, bool], list[str]] = {}
    for root, dirs, files in os.walk(landing):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            lower, path = name.lower(), os.path.join(root, name)
            fmt = next((f for ext, f in ((".ndjson", "json"), (".jsonl", "json"), (".json", "json"),
                                         (".csv", "csv")) if lower.removesuffix(".gz").endswith(ext)), None)
            if fmt and not name.startswith((".", "_")) and os.path.getsize(path) > 0:
                found.setdefault((fmt, lower.endswith(".gz")), []).append(os.path.abspath(path))
    return found


def _csv_header(path: str, gz: bool) -> tuple[str | None, list[str] | None]:
    """A CSV file's first line and its fields (decisions.md's splitting); Nones if unreadable."""
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            line = f.readline().decode("utf-8", errors="replace").removeprefix("\ufeff")
    except (OSError, EOFError):
        return None, None
    line = line.removesuffix("\n").removesuffix("\r")
    fields = [p.strip(WS) for p in line.split(",")]
    return line, [p[1:-1].strip(WS) if len(p) >= 2 and p[0] == p[-1] == '"' else p for p in fields]


def _load(con, paths: list[str], gz: bool, csv: bool) -> None:
    """Appends the lines of ``paths`` to the table ``lines``; a file DuckDB cannot read (a
    corrupt gzip) is left out."""
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    try:
        con.execute(f"INSERT INTO lines SELECT line, {'filename' if csv else 'NULL'}, {csv} FROM read_csv("
                    f"[{quoted}], {READ}, compression='{'gzip' if gz else 'none'}', filename={csv})")
    except duckdb.Error as error:
        if len(paths) == 1:
            print(f"warning: landing file left out: {paths[0]}: {error}", file=sys.stderr)
            return
        for p in paths:
            _load(con, [p], gz, csv)


def _tz_tables(zones: dict, lo_ms: int, hi_ms: int) -> tuple[pa.Table, pa.Table]:
    """(mall, UTC day) → offsets; (mall, local day) → the UTC starts of its day's buckets."""
    def off(tz, ms):
        return int(dt.datetime.fromtimestamp(ms // 1000, tz).utcoffset().total_seconds()) * 1000

    def midnight(tz, d, memo={}):
        if (tz, d) not in memo:
            start = dt.datetime(d.year, d.month, d.day, tzinfo=tz)
            memo[tz, d] = (start - EPOCH) // dt.timedelta(milliseconds=1)
        return memo[tz, d]
    utc_rows, local_rows = [], []
    for mall, tz in zones.items():
        for day in range(lo_ms // DAY_MS - 1, hi_ms // DAY_MS + 2):
            a, b = off(tz, day * DAY_MS), off(tz, day * DAY_MS + DAY_MS - 1)
            lo, hi = day * DAY_MS, day * DAY_MS + DAY_MS - 1  # → the first instant with offset b
            while a != b and lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if off(tz, mid) == b else (mid + 1, hi)
            utc_rows.append((mall, day, a, hi if a != b else day * DAY_MS + DAY_MS, b))
            d = EPOCH.date() + dt.timedelta(days=day)
            wd = d.weekday()
            part = d - dt.timedelta(days=wd if wd < 5 else wd - 5)  # Monday or Saturday
            local_rows.append((mall, day, midnight(tz, d), midnight(tz, d - dt.timedelta(days=wd)),
                               midnight(tz, d.replace(day=1)), 5 if wd < 5 else 6, midnight(tz, part)))
    return (pa.table(list(zip(*utc_rows)), names=["mall_id", "utc_day", "off0", "switch_ms", "off1"]),
            pa.table(list(zip(*local_rows)),
                     names=["mall_id", "day", "daily", "weekly", "monthly", "part", "part_start"]))


def _slots() -> tuple[pa.Table, pa.Table]:
    """The 196 (b, e, user type) rows answer from a few "slots": all, employee, passer, or the
    visitor sessions whose duration bin k (how many thresholds they reach, 0..7) is in [lo, hi]."""
    idx = {t: i for i, t in enumerate(THRESHOLDS)}
    ranges, rows = {}, []
    for b, e in THRESHOLD_PAIRS:
        i, j = idx[b], idx[e]
        span = {"bounced": (0, i), "half engaged": (i + 1, j), "engaged": (j + 1, 7), "visitor": (0, 7)}
        for t in USER_TYPES:
            slot = t if t in ("all", "employee", "passer") else "v%d-%d" % span[t]
            ranges.setdefault(slot, span.get(t, (0, -1)))
            rows.append((b, e, t, slot))
    lo, hi = zip(*ranges.values())
    masks = [sum(255 << 8 * k for k in range(a, z + 1)) for a, z in ranges.values()]
    return (pa.table([list(ranges), list(lo), list(hi), pa.array(masks, pa.uint64())],
                     names=["slot", "lo", "hi", "vmask"]),
            pa.table(list(zip(*rows)), names=["bounce_threshold", "engagement_threshold", "user_type", "slot"]))


def baseline(conf_dir, landing_dir, now: dt.datetime, hmac_key: bytes | None = None,
             stats: dict | None = None, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Gold's columns :data:`KEY` + :data:`METRICS` for every bucket with a session, as an
    Arrow table. ``now``: the ingest time; ``stats`` (a dict) gets record counts and times."""
    stats = {} if stats is None else stats
    t0 = time.perf_counter()
    con = duckdb.connect() if con is None else con
    con.execute("SET preserve_insertion_order = false")
    settings, zones, sensors = load_config(Path(conf_dir))
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    max_ts = ((now - EPOCH) // dt.timedelta(microseconds=1) + DAY_MS * 1000) // 1000
    gap_ms = int(Fraction(str(settings["session_gap_minutes"])) * 60000)  # gap > x ⇔ gap > ⌊x⌋
    min_day_ms = -(-Fraction(str(settings["employee_min_daily_minutes"])) * 60000 // 1)  # ⌈x⌉
    exclude = str(settings["randomized_macs"]).strip().lower() == "exclude"
    con.register("sensor_list", pa.table(list(zip(*sensors)) or [[]] * 5,
                                         names=["sensor_id", "zone_id", "floor_id", "mall_id", "threshold"]))
    con.execute("CREATE OR REPLACE TEMP TABLE sensors AS "
                "SELECT row_number() OVER () AS sensor_no, * FROM sensor_list")
    con.execute("""
        CREATE OR REPLACE TEMP MACRO wtrim(s) AS  -- trims white space; trim(s, chars) is slow: only if needed
            CASE WHEN ascii(s) <= 32 OR ascii(s[-1]) <= 32 THEN trim(s, ' \t\n\r\x0b\x0c') ELSE s END;
        CREATE OR REPLACE TEMP MACRO jtext(v) AS CASE  -- a JSON value's text: strings decoded, numbers as written
            WHEN v[1] = '"' THEN wtrim(CASE WHEN contains(v, '\\') THEN v ->> '$' ELSE v[2:-2] END)
            WHEN v[1] = '-' OR v[1] BETWEEN '0' AND '9' THEN v END;  -- null, true, {…}: missing
        CREATE OR REPLACE TEMP MACRO unquote(s) AS
            CASE WHEN length(s) >= 2 AND s[1] = '"' AND s[-1] = '"' THEN wtrim(s[2:-2]) ELSE s END;
        CREATE OR REPLACE TEMP MACRO fold8(x) AS  -- OR of the 8 bytes of a 64-bit mask
            (x | (x >> 8) | (x >> 16) | (x >> 24) | (x >> 32) | (x >> 40) | (x >> 48) | (x >> 56)) & 255;""")

    # -- §2 every line of every file; JSON and CSV records as four texts (NULL: malformed) ------------
    files = landing_files(Path(landing_dir))
    con.execute("CREATE OR REPLACE TEMP TABLE lines (line VARCHAR, filename VARCHAR, csv BOOLEAN)")
    for (fmt, gz), paths in sorted(files.items()):
        _load(con, paths, gz, fmt == "csv")
    if files:  # lines with invalid UTF-8, from DuckDB's reject tables (which gather every scan's)
        con.execute("INSERT INTO lines SELECT e.csv_line, s.file_path, regexp_matches(lower(s.file_path), "
                    "'[.]csv(.gz)?$') FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id) "
                    "WHERE e.error_type = 'INVALID ENCODING'")
    headers = [(p, *_csv_header(p, gz)) for (fmt, gz), paths in files.items() if fmt == "csv" for p in paths]
    con.register("csv_files", pa.table(list(zip(*[  # each file's header: field count, where the four are
        (p, first, len(h or ()), *[h.index(k) + 1 if h and set(FIELDS) <= set(h) else None for k in FIELDS])
        for p, first, h in headers])) or [[]] * 7, names=["filename", "first_line", "ncols", *FIELDS]))
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE records AS
    WITH nonblank AS (SELECT * FROM lines WHERE NOT regexp_full_match(line, '[ \t\n\r\f\v]*')),
    json_lines AS MATERIALIZED (
        SELECT line, json_valid(line) AS valid,
               regexp_matches(line, '{ODD_JSON_RE}') OR length(line) > 1000 AS odd
        FROM nonblank WHERE NOT csv),
    plain AS (SELECT json_extract(line, {["$." + k for k in FIELDS]})::VARCHAR[] AS v
              FROM json_lines WHERE valid AND NOT odd),
    odd AS MATERIALIZED (  -- the rare lines to check as Python's json would
        SELECT row_number() OVER () AS rid, line,
               regexp_replace(line, '"([^"\\\\]|\\\\.)*"', '""', 'g') AS bare  -- strings blanked
        FROM json_lines WHERE valid AND odd),
    odd_ok AS (  -- JSON for Python too: no NaN or trailing comma, ≤ 999 levels, numbers ≤ 1000 chars
        SELECT rid, line FROM odd
        WHERE NOT regexp_matches(bare, '{NOT_JSON_RE}')
          AND list_reduce(list_transform(string_split(regexp_replace(bare, '[^\\[\\]{{}}]', '', 'g'), ''),
                                         lambda c: CASE WHEN c IN ('[', '{{') THEN 1 ELSE -1 END),
                          lambda acc, x: {{'d': acc.d + x, 'm': greatest(acc.m, acc.d + x)}},
                          {{'d': 0, 'm': 0}}).m <= 999
          AND coalesce(list_max(list_transform(regexp_extract_all(bare, '-?[0-9][-+.eE0-9]*'),
                                               lambda n: length(n))), 0) <= 1000),
    odd_fields AS (  -- a key given twice: the last one counts
        SELECT [{", ".join(f"max_by(value, id) FILTER (WHERE key = '{k}')" for k in FIELDS)}]::VARCHAR[] AS v
        FROM odd_ok LEFT JOIN LATERAL json_each(odd_ok.line) ON true GROUP BY rid),
    json_fields AS (
        SELECT {", ".join(f"jtext(v[{i + 1}]) AS {k}" for i, k in enumerate(FIELDS))}
        FROM (SELECT v FROM plain UNION ALL SELECT v FROM odd_fields)
        UNION ALL SELECT NULL, NULL, NULL, NULL FROM json_lines WHERE NOT valid
        UNION ALL SELECT NULL, NULL, NULL, NULL FROM odd WHERE rid NOT IN (SELECT rid FROM odd_ok)),
    csv_fields AS (  -- the header names the four columns, and the line has as many fields as it
        SELECT {", ".join(f"CASE WHEN len(v) = ncols THEN unquote(wtrim(v[f.{k}])) END AS {k}" for k in FIELDS)}
        FROM (SELECT string_split(line, ',') AS v, * FROM nonblank WHERE csv) l JOIN csv_files f USING (filename)
        WHERE l.line IS DISTINCT FROM f.first_line)  -- the header, rejected as a record anyway: left out
    SELECT * FROM json_fields UNION ALL SELECT * FROM csv_fields""")

    # -- §2 validation: the reason is the first check failed; duplicates; randomised MACs -------------
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE checked AS
    WITH parsed AS (
        SELECT sensor_id, sensor_id IS NULL OR mac IS NULL OR ts IS NULL OR rssi IS NULL AS malformed,
            CASE WHEN regexp_full_match(mac, '{MAC_RE}')
                 THEN ('0x' || replace(replace(replace(mac, ':', ''), '-', ''), '.', ''))::UBIGINT END AS mac48,
            CASE WHEN regexp_full_match(rssi, '[+-]?[0-9]+') THEN TRY_CAST(rssi AS INTEGER) END AS rssi,
            CASE WHEN regexp_full_match(ts, '-?[0-9]+') THEN TRY_CAST(ts AS BIGINT) END AS epoch,
            CASE WHEN regexp_full_match(ts, '{ISO_RE}') THEN ts END AS iso,  -- YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)
            CASE WHEN ts[-1] = 'Z' THEN 0 WHEN TRY_CAST(ts[-2:] AS INT) <= 59 THEN (CASE ts[-6] WHEN '-' THEN -1
                 ELSE 1 END) * (TRY_CAST(ts[-5:-4] AS INT) * 60 + TRY_CAST(ts[-2:] AS INT)) END AS off_min
        FROM records),
    instants AS (
        SELECT *, CASE
            WHEN epoch >= {EPOCH_MS_FROM} THEN epoch
            WHEN epoch >= 0 THEN epoch * 1000
            WHEN iso[12:13]::INT <= 23 AND iso[15:16]::INT <= 59 AND iso[18:19]::INT <= 59
                 AND abs(off_min) <= 1080 THEN
                (TRY_CAST(iso[1:10] AS DATE) - DATE '1970-01-01')::BIGINT * {DAY_MS} + iso[12:13]::INT * 3600000
                + iso[15:16]::INT * 60000 + iso[18:19]::INT * 1000 - off_min * 60000
                + CASE WHEN iso[20] = '.' THEN rpad(iso[21:length(iso) - CASE iso[-1] WHEN 'Z' THEN 1 ELSE 6 END],
                                                   3, '0')::INT ELSE 0 END
            END AS ts_ms FROM parsed)
    SELECT s.sensor_no, i.mac48, i.ts_ms, i.rssi, CASE
        WHEN malformed THEN 'malformed'
        WHEN mac48 IS NULL OR ((mac48 >> 40) & 1) = 1 THEN 'invalid_mac'
        WHEN i.rssi IS NULL OR i.rssi NOT BETWEEN -120 AND 0 THEN 'invalid_rssi'
        WHEN ts_ms IS NULL OR ts_ms < {MIN_TS_MS} OR ts_ms > {max_ts} THEN 'invalid_ts'
        WHEN s.sensor_no IS NULL THEN 'unknown_sensor' END AS reason
    FROM instants i LEFT JOIN sensors s ON s.sensor_id = i.sensor_id""")
    stats.update({r or "valid": n for r, n in
                  con.execute("SELECT reason, count(*) FROM checked GROUP BY 1").fetchall()})
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE probes AS
    SELECT sensor_no, mac48 AS client, ts_ms, max(rssi) AS rssi FROM checked
    WHERE reason IS NULL {'AND ((mac48 >> 41) & 1) = 0' if exclude else ''} GROUP BY ALL""")
    if hmac_key is not None:  # the product's client ids, once per distinct MAC
        macs = con.execute("SELECT DISTINCT client FROM probes").fetchnumpy()["client"].tolist()
        ids = [hmac.new(hmac_key, ":".join(f"{m:012x}"[i:i + 2] for i in range(0, 12, 2)).encode(),
                        sha256).hexdigest() for m in macs]
        con.register("client_ids", pa.table([pa.array(macs, pa.uint64()), ids], names=["client", "client_id"]))
        con.execute("CREATE OR REPLACE TEMP TABLE probes AS SELECT sensor_no, client_id AS client, ts_ms, rssi "
                    "FROM probes JOIN client_ids USING (client)")
    stats["probes"] = con.execute("SELECT count(*) FROM probes").fetchall()[0][0]
    stats["seconds_read"] = time.perf_counter() - t0

    # -- §3 sessions per object (zone, floor, mall): cut at gaps and at local midnight ---------------
    lo, hi = con.execute("SELECT coalesce(min(ts_ms), 0), coalesce(max(ts_ms), 0) FROM probes").fetchall()[0]
    utc_days, local_days = _tz_tables(zones, lo, hi)
    con.register("utc_days", utc_days)
    con.register("local_days", local_days)
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE sessions AS
    WITH located AS (
        SELECT p.client, p.ts_ms, p.rssi >= s.threshold AS strong, s.zone_id, s.floor_id, s.mall_id,
               CASE WHEN p.ts_ms >= u.switch_ms THEN u.off1 ELSE u.off0 END AS off
        FROM probes p JOIN sensors s USING (sensor_no)
        JOIN utc_days u ON u.mall_id = s.mall_id AND u.utc_day = p.ts_ms // {DAY_MS}),
    at_object AS (
        SELECT unnest([zone_id, floor_id, mall_id]) AS object_id, mall_id, client, ts_ms, strong, off,
               (ts_ms + off) // {DAY_MS} AS day FROM located),
    marked AS (
        SELECT *, coalesce(ts_ms - lag(ts_ms) OVER w > {gap_ms} OR day <> lag(day) OVER w, true) AS new
        FROM at_object WINDOW w AS (PARTITION BY object_id, client ORDER BY ts_ms)),
    numbered AS (  -- probes at one instant share a session: peers in the frame, the same sum
        SELECT *, sum(new::INT) OVER (PARTITION BY object_id, client ORDER BY ts_ms) AS sid FROM marked)
    SELECT object_id, any_value(mall_id) AS mall_id, client, min(day) AS day, min(ts_ms) AS start_ms,
           max(ts_ms) - min(ts_ms) AS duration_ms, bool_or(strong) AS strong, arg_min(off, ts_ms) AS off
    FROM numbered GROUP BY object_id, client, sid""")
    stats["sessions"] = con.execute("SELECT count(*) FROM sessions").fetchall()[0][0]
    stats["seconds_sessions"] = time.perf_counter() - t0 - stats["seconds_read"]

    # -- §4–§7 classes, comebacks, buckets, metrics ---------------------------------------------------
    slots, slot_of = _slots()
    con.register("slots", slots)
    con.register("slot_of", slot_of)
    bins = " + ".join(f"(duration_ms >= {t * 60000})::INT" for t in THRESHOLDS)
    comeback = " | ".join(  # prev ≥ d − W, W in days or in calendar months
        f"(coalesce(prev >= day - {w.days}, false)::INT << {i + 1})" if w.days else
        f"(coalesce(DATE '1970-01-01' + prev::INT >= DATE '1970-01-01' + day::INT - INTERVAL {w.months} MONTH,"
        f" false)::INT << {i + 1})" for i, w in enumerate(COMEBACK_WINDOWS))
    result = con.sql(f"""
    WITH employee AS (  -- §4: long days (≥ 240 min at the mall) on ≥ 5 of the 14 local dates D-13 … D
        SELECT mall_id, client, day, count(*) FILTER (WHERE long) OVER (
            PARTITION BY mall_id, client ORDER BY day
            RANGE BETWEEN {int(settings['employee_window_days']) - 1} PRECEDING AND CURRENT ROW)
            >= {int(settings['employee_min_days'])} AS employee
        FROM (SELECT mall_id, client, day, sum(duration_ms) >= {min_day_ms} AS long
              FROM sessions WHERE object_id = mall_id GROUP BY ALL)),
    visits AS (  -- §5: bit 0 = a visit, bit w = a comeback within window w
        SELECT object_id, client, day, 1 | {comeback} AS flags
        FROM (SELECT *, lag(day) OVER (PARTITION BY object_id, client ORDER BY day) AS prev
              FROM (SELECT DISTINCT object_id, client, day FROM sessions))),
    bucketed AS (  -- §6: each session in its 5 buckets; class 0 employee, 1 passer, 2 visitor
        SELECT s.object_id, s.client, s.duration_ms, v.flags,
               CASE WHEN e.employee THEN 0 WHEN s.strong THEN 2 ELSE 1 END AS cls,
               CASE WHEN NOT e.employee AND s.strong THEN {bins} ELSE 0 END AS k,
               unnest([{{'iv': 0, 'bstart': s.start_ms - (s.start_ms + s.off) % 3600000}},
                       {{'iv': 1, 'bstart': d.daily}}, {{'iv': 2, 'bstart': d.weekly}},
                       {{'iv': 3, 'bstart': d.monthly}}, {{'iv': d.part - 1, 'bstart': d.part_start}}],
                      recursive := true)
        FROM sessions s JOIN employee e USING (mall_id, client, day)
        JOIN visits v USING (object_id, client, day) JOIN local_days d USING (mall_id, day)),
    clients AS (  -- one row per (bucket, client): its flags per class, and per duration bin for visitors
        SELECT object_id, iv, bstart, coalesce(bit_or(flags) FILTER (WHERE cls = 0), 0) AS e,
               coalesce(bit_or(flags) FILTER (WHERE cls = 1), 0) AS p,
               coalesce(bit_or(flags::UBIGINT << (8 * k)) FILTER (WHERE cls = 2), 0::UBIGINT) AS v
        FROM bucketed GROUP BY object_id, iv, bstart, client),
    client_counts AS (  -- distinct clients and comeback clients per (bucket, slot)
        SELECT object_id, iv, bstart, slot,
               {", ".join(f"sum(n) FILTER (WHERE ((f >> {i}) & 1) = 1) AS c{i}" for i in range(8))}
        FROM (SELECT object_id, iv, bstart, slot, n, CASE slot WHEN 'all' THEN e | p | fold8(v)
                     WHEN 'employee' THEN e WHEN 'passer' THEN p ELSE fold8(v & vmask) END AS f
              FROM (SELECT object_id, iv, bstart, e, p, v, count(*) AS n FROM clients GROUP BY ALL), slots)
        GROUP BY ALL),
    session_sums AS (  -- sessions and their milliseconds per (bucket, slot)
        SELECT object_id, iv, bstart, slot, sum(n) AS n, sum(ms) AS ms
        FROM (SELECT object_id, iv, bstart, cls, k, count(*) AS n, sum(duration_ms) AS ms
              FROM bucketed GROUP BY ALL)
        JOIN slots ON slot = 'all' OR (slot = 'employee' AND cls = 0) OR (slot = 'passer' AND cls = 1)
                   OR (slot[1] = 'v' AND cls = 2 AND k BETWEEN lo AND hi)
        GROUP BY ALL)
    SELECT c.object_id, {"CASE iv " + " ".join(f"WHEN {i} THEN '{n}'" for i, n in enumerate(INTERVALS))} END
               AS interval, make_timestamp(c.bstart * 1000) AS bucket_start,
           o.bounce_threshold::INTEGER AS bounce_threshold,
           o.engagement_threshold::INTEGER AS engagement_threshold, o.user_type,
           coalesce(s.n, 0)::BIGINT AS count_session, coalesce(c.c0, 0)::BIGINT AS count_client,
           coalesce((2 * s.ms + s.n * 60000) // (2 * s.n * 60000), 0)::BIGINT AS avg_session_duration,
           CASE WHEN iv IN ({", ".join(str(INTERVALS.index(i)) for i in GSH_INTERVALS)})
                THEN coalesce((s.ms * 100 + 1800000) // 3600000, 0) / 100 ELSE 0 END::DOUBLE
               AS sum_session_duration,
           {", ".join(f"coalesce(c.c{i + 1}, 0)::BIGINT AS {w.column}" for i, w in enumerate(COMEBACK_WINDOWS))}
    FROM client_counts c JOIN slot_of o USING (slot)
    LEFT JOIN session_sums s USING (object_id, iv, bstart, slot)""").to_arrow_table()
    stats["rows"] = result.num_rows
    stats["seconds"] = time.perf_counter() - t0
    stats["seconds_gold"] = stats["seconds"] - stats["seconds_read"] - stats["seconds_sessions"]
    return result


def compare(baseline: pa.Table, gold_path, *, show: int = 10) -> int:
    """Diffs ``baseline`` with the product's gold Delta table at ``gold_path`` (read with
    delta-rs) on :data:`KEY`; prints a summary and up to ``show`` examples of each kind.
    :return: the number of mismatched rows (missing from gold, extra in gold, different)."""
    from deltalake import DeltaTable

    con = duckdb.connect()
    con.register("ours", baseline.select(KEY + METRICS))
    con.register("theirs", DeltaTable(str(gold_path)).to_pyarrow_table(columns=KEY + METRICS))
    con.execute(f"""
    CREATE TEMP TABLE diff AS
    SELECT CASE WHEN t.{METRICS[0]} IS NULL THEN 'missing from gold' WHEN o.{METRICS[0]} IS NULL
                THEN 'extra in gold' ELSE 'different' END AS kind,
           {", ".join("make_timestamp(bucket_start * 1000) AS bucket_start" if k == "bucket_start" else k
                      for k in KEY)},
           {", ".join(f"o.{m} AS baseline_{m}, t.{m} AS gold_{m}" for m in METRICS)}
    FROM (SELECT * REPLACE (epoch_ms(bucket_start) AS bucket_start) FROM ours) o
    FULL JOIN (SELECT * REPLACE (epoch_ms(bucket_start) AS bucket_start) FROM theirs) t USING ({", ".join(KEY)})
    WHERE t.{METRICS[0]} IS NULL OR o.{METRICS[0]} IS NULL
       OR {" OR ".join(f"o.{m} IS DISTINCT FROM t.{m}" for m in METRICS)}""")
    counts = con.execute("SELECT kind, count(*) FROM diff GROUP BY 1 ORDER BY 1").fetchall()
    total = sum(n for _, n in counts)
    gold_rows = con.execute("SELECT count(*) FROM theirs").fetchall()[0][0]
    print(f"compare: {baseline.num_rows} baseline rows, {gold_rows} gold rows, {total} mismatched"
          + "".join(f"; {n} {kind}" for kind, n in counts))
    for kind, _ in counts:
        print(f"-- {kind} (first {show}: the key, then each metric as baseline, gold)")
        for row in con.execute(f"SELECT * EXCLUDE (kind) FROM diff WHERE kind = '{kind}' "
                               f"ORDER BY ALL LIMIT {show}").fetchall():
            print("  ", row)
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.duckdb_baseline",
                                description=__doc__.split("\n")[0])
    p.add_argument("--conf", required=True, help="config folder (objects.yaml, pipeline.yaml)")
    p.add_argument("--landing", required=True, help="landing folder")
    p.add_argument("--lakehouse", help="compare with <lakehouse>/gold/group_datetime (exit 1 if they differ)")
    p.add_argument("--now", type=dt.datetime.fromisoformat, default=dt.datetime.now(UTC),
                   help="ingest time, ISO 8601 (default: now; UTC when it has no offset)")
    p.add_argument("--hmac", action="store_true",
                   help="hash MACs as the product does (key: $FOOTFALL_HMAC_KEY, else the development key)")
    p.add_argument("--summary-json", metavar="FILE", help="also write the seconds and counts as JSON (make bench)")
    args = p.parse_args(argv)
    key = (os.environ.get("FOOTFALL_HMAC_KEY") or DEV_HMAC_KEY).encode() if args.hmac else None
    stats: dict = {}
    started = time.perf_counter()
    gold = baseline(args.conf, args.landing, args.now, hmac_key=key, stats=stats)
    seconds = time.perf_counter() - started
    print(f"duckdb baseline: {seconds:.2f} s wall (read + validate "
          f"{stats['seconds_read']:.2f} s, sessions {stats['seconds_sessions']:.2f} s, gold "
          f"{stats['seconds_gold']:.2f} s); duckdb {duckdb.__version__}, {os.cpu_count()} cores")
    print("records: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())
                                  if not k.startswith(("seconds", "rows"))))
    print(f"gold rows: {gold.num_rows}")
    mismatches = compare(gold, Path(args.lakehouse) / "gold" / "group_datetime") if args.lakehouse else None
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(
            {"seconds": seconds, "gold_rows": gold.num_rows, "mismatches": mismatches, "stats": stats}))
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
