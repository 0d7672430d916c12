"""A run: which files are new, which dates and buckets it owns, the stage order, and
its summary. The only module (with :mod:`jobs.tables`) that reads or writes data.

Stages, each an idempotent write, so that a run that dies is completed by running it
again (SPEC §9):

1. **ingest** — new landing files → ``bronze/probes`` (MERGE on sensor, client,
   instant), ``bronze/quarantine`` (MERGE on file, line), ``ops/pending_dates``
   (the (mall, local date) pairs with new probes), then ``ops/ingested_files``.
2. **sessions** — the run's (mall, date) scope is rebuilt from bronze into
   ``silver/sessions`` and ``silver/client_days`` (replaceWhere on the scope).
3. **gold** — every bucket that the scope can change is recomputed: the scope's
   dates, the next ``employee_window_days - 1`` dates (employee status), and each
   client's next visit date (comeback); the hours, days, weeks and months holding
   them are replaced in ``gold/group_datetime``.
4. the scope's pending dates are cleared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from delta.exceptions import DeltaConcurrentModificationException

from jobs import classify, ingest, metrics, sessions
from jobs.config import Config, client_id_key, hmac_key
from jobs.lock import ConcurrentRunError, exclusive
from jobs.tables import (BRONZE_PROBES, CLIENT_DAYS, GROUP_DATETIME, INGESTED_FILES,
                         PENDING_DATES, QUARANTINE, SCHEMAS, SENSORS, SESSIONS, Lakehouse,
                         date_ranges_predicate, to_ranges)

DateRanges = dict[int, list[tuple[dt.date, dt.date]]]

#: Quarantine reason of a landing file that cannot be read at all (a corrupt or
#: truncated gzip): one row, ``line_no`` 0, no raw text.
CORRUPT_FILE = "corrupt_file"


class RunError(RuntimeError):
    """The run cannot start (bad input location, bad arguments); nothing was written."""


@dataclass
class Summary:
    """What a run did; printed at its end."""

    command: str
    run_id: str
    files_seen: int = 0
    files_new: int = 0
    records_read: int = 0
    records_valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    randomized_read: int = 0
    randomized_excluded: int = 0
    replayed_from_quarantine: int = 0
    session_dates: int = 0
    sessions_written: int = 0
    gold_buckets_dates: int = 0
    gold_rows_written: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    stage_spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The summary as JSON (for schedulers, data-quality checks and benchmarks)."""
        import json
        return json.dumps(dataclasses.asdict(self), indent=2)

    def render(self) -> str:
        lines = [f"footfall {self.command} — run {self.run_id}"]
        lines.append(f"  landing files      {self.files_new} new of {self.files_seen}")
        lines.append(f"  records read       {self.records_read}  (valid {self.records_valid})")
        rej = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"
        lines.append(f"  rejected           {sum(self.rejected.values())}  ({rej})")
        lines.append(f"  randomised MACs    {self.randomized_read} read, "
                     f"{self.randomized_excluded} probes excluded from sessions")
        if self.replayed_from_quarantine:
            lines.append(f"  replayed too_late  {self.replayed_from_quarantine}")
        lines.append(f"  sessions           {self.sessions_written} written for {self.session_dates} mall-dates")
        lines.append(f"  gold rows          {self.gold_rows_written} written "
                     f"(buckets over {self.gold_buckets_dates} mall-dates)")
        total = sum(self.timings.values())
        times = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        lines.append(f"  time               {total:.1f}s  ({times})")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


class _Stage:
    def __init__(self, summary: Summary, name: str):
        self.summary, self.name = summary, name

    def __enter__(self):
        self.t0, self.wall0 = time.perf_counter(), time.time()

    def __exit__(self, *exc):
        self.summary.timings[self.name] = time.perf_counter() - self.t0
        self.summary.stage_spans[self.name] = (self.wall0, time.time())


# -- config as DataFrames -------------------------------------------------------------

def sensors_df(spark: SparkSession, cfg: Config) -> DataFrame:
    return spark.createDataFrame(
        cfg.sensor_rows(),
        "sensor_id string, zone_id long, floor_id long, mall_id long, threshold int")


def sync_sensors(spark: SparkSession, lake: Lakehouse, cfg: Config, today: dt.date) -> DataFrame:
    """Bring ``ops/sensors`` up to date with the config and return it.

    Configured sensors are active (``retired_on`` null) with their place from the
    config; a sensor that left the config keeps its last place and the date it left,
    so that recomputing past dates still counts its probes (its history stays), while
    new records from it are ``unknown_sensor``.
    """
    current = {r[0]: (*r, None) for r in cfg.sensor_rows()}
    before = {r.sensor_id: tuple(r) for r in lake.read(SENSORS).collect()}
    after = dict(current)
    for sid, row in before.items():
        if sid not in current:
            after[sid] = row if row[-1] is not None else (*row[:-1], today)
    registry = spark.createDataFrame(sorted(after.values()), SCHEMAS[SENSORS])
    if after != before:
        lake.overwrite(SENSORS, registry)
    return registry


def malls_df(spark: SparkSession, cfg: Config) -> DataFrame:
    return spark.createDataFrame([(m.id, m.timezone) for m in cfg.malls],
                                 "mall_id long, timezone string")


# -- landing ---------------------------------------------------------------------------

def check_landing(spark: SparkSession, landing: str) -> None:
    """Stop before any write when the landing folder is missing."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(landing)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        raise RunError(f"landing folder {landing} does not exist (set `landing` in "
                       "conf/storage.yaml or pass --landing)")


def list_landing(spark: SparkSession, landing: str) -> DataFrame:
    """Every probe file below ``landing``, at any depth: ``(path, size, modification_time)``."""
    listing = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
               .load(landing).select(F.col("path"), F.col("length").alias("size"),
                                     F.col("modificationTime").alias("modification_time")))
    fmt = F.regexp_replace(F.lower("path"), r"\.gz$", "")
    # Spark skips names starting with "." or "_" but keeps "_k=v" (a partition folder's
    # name): skip those too (decisions.md).
    return listing.where(fmt.rlike(r"\.(ndjson|jsonl|json|csv)$") & ~F.col("path").rlike(r"/_[^/]*="))


#: Hadoop settings for reading landing files: the local file system without checksum
#: files, whose `.<name>.crc` path Hadoop cannot build for a name with a `:`
#: (`t:10:00.json` failed as "Relative path in absolute URI"). Other schemes are unaffected.
LANDING_READ_CONF = {"fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
                     "fs.file.impl.disable.cache": "true"}


#: Characters that make Spark's reader take a path as a glob pattern.
_GLOB_CHARS = re.compile(r"[\\*?\[\]{}]")


def read_files(spark: SparkSession, paths: list[str]) -> DataFrame:
    """``(source_file, value)``: each file's whole text, gunzipped by extension.

    A file that cannot be read (a corrupt or truncated gzip) yields no row instead of
    failing the run: :func:`unreadable_files` finds it afterwards.

    Spark's reader takes a path with ``[ ] { } * ? \\`` as a glob pattern: a file named
    ``a[1].json`` is "not found" and fails the run, and with a ``:`` in the path as well
    Hadoop cannot build the pattern at all. Those files (rare) are read in the driver.
    """
    plain = [p for p in paths if not _GLOB_CHARS.search(p)]
    out = (spark.read.option("ignoreCorruptFiles", "true").options(**LANDING_READ_CONF)
           .text(plain, wholetext=True)
           .select(F.col("_metadata.file_path").alias("source_file"), "value")) if plain else None
    odd = [p for p in paths if _GLOB_CHARS.search(p)]
    if odd:
        read = spark.createDataFrame(_read_in_driver(spark, odd), "source_file string, value binary")
        read = read.select("source_file", F.col("value").cast("string").alias("value"))
        out = read if out is None else out.unionByName(read)
    return out


def _read_in_driver(spark: SparkSession, paths: list[str]) -> list[tuple[str, bytes]]:
    """``(file_uri, bytes)`` of each file of ``paths`` that can be read, gunzipped as
    Spark's reader does; one that cannot is left out (as the reader does)."""
    out = []
    for path, (data, error) in _decompress(spark, paths, keep=True).items():
        if error is None:
            out.append((file_uri(spark, path), data))
    return out


def _decompress(spark: SparkSession, paths: Iterable[str], keep: bool) -> dict[str, tuple[bytes | None, str | None]]:
    """Each path's decompressed bytes (when ``keep``) or its read error, read in the
    driver JVM with the file system settings and codec of the landing reader."""
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(spark.sparkContext._jsc.hadoopConfiguration())
    for key, value in LANDING_READ_CONF.items():
        conf.set(key, value)
    codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)
    out: dict[str, tuple[bytes | None, str | None]] = {}
    for path in paths:
        p = jvm.org.apache.hadoop.fs.Path(path)
        stream = None
        try:
            stream = p.getFileSystem(conf).open(p)
            codec = codecs.getCodec(p)
            if codec is not None:
                stream = codec.createInputStream(stream)
            if keep:
                out[path] = (bytes(stream.readAllBytes()), None)
            else:
                stream.transferTo(jvm.java.io.OutputStream.nullOutputStream())
                out[path] = (None, None)
        except Exception as exc:  # noqa: BLE001 -- any failure to read is the file's
            java = getattr(exc, "java_exception", None)
            out[path] = (None, java.toString() if java is not None else str(exc).splitlines()[0])
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001 -- closing a broken stream may fail too
                    pass
    return out


def file_uri(spark: SparkSession, path: str) -> str:
    """A listed path in the form Spark gives ``_metadata.file_path`` (URI-encoded)."""
    return spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path).toUri().toString()


def unreadable_files(spark: SparkSession, paths: Iterable[str]) -> dict[str, str]:
    """Which of ``paths`` cannot be read, each with the reader's error (e.g.
    ``java.io.EOFException: Unexpected end of input stream``).

    Only called for files that gave no line (rare: blank or corrupt files). Each is
    decompressed once in the driver JVM with the codec Spark's reader uses.
    """
    return {path: error for path, (_, error) in _decompress(spark, paths, keep=False).items()
            if error is not None}


# -- ingest ----------------------------------------------------------------------------

def _parse(lines: DataFrame, spark: SparkSession, cfg: Config, key: bytes,
           now: dt.datetime) -> DataFrame:
    now_ms = int(now.timestamp() * 1000)
    sensors = sensors_df(spark, cfg)
    return (lines.transform(ingest.parse_fields)
            .transform(lambda df: ingest.validate(df, sensors, now_ms))
            .transform(lambda df: ingest.pseudonymise(df, key))
            .transform(lambda df: ingest.locate(df, sensors, malls_df(spark, cfg))))


def _write_probes(lake: Lakehouse, valid: DataFrame, run_id: str,
                  touched: list[tuple[int, dt.date]]) -> None:
    if not touched:
        return
    malls = sorted({m for m, _ in touched})
    lo, hi = min(d for _, d in touched), max(d for _, d in touched)
    prune = (f"t.mall_id IN ({', '.join(map(str, malls))}) AND "
             f"t.date >= DATE'{lo}' AND t.date <= DATE'{hi}'")
    probes = (valid.withColumn("run_id", F.lit(run_id))
              .select(*SCHEMAS[BRONZE_PROBES].fieldNames())
              .transform(ingest.dedupe_probes))
    lake.merge(BRONZE_PROBES, probes, ["mall_id", "date", "sensor_id", "client_id", "ts"],
               prune=prune, update_when="s.rssi > t.rssi", update_set={"rssi": "s.rssi"})


def ingest_landing(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
                   now: dt.datetime, too_late_before: dt.date | None) -> list[tuple[int, dt.date]]:
    """Ingest every landing file not ingested yet; return the (mall, date) pairs of the
    valid probes read. ``too_late_before``: the nightly lateness cut-off (SPEC §9)."""
    key, is_dev_key = hmac_key()
    if is_dev_key:
        summary.notes.append("client ids use the development HMAC key: set FOOTFALL_HMAC_KEY "
                             "for real data")
    listing = list_landing(spark, cfg.storage.landing).cache()
    known = lake.read(INGESTED_FILES).select("path", "size", "modification_time")
    new_files = listing.join(known, ["path", "size", "modification_time"], "left_anti").collect()
    summary.files_seen = listing.count()
    summary.files_new = len(new_files)
    listing.unpersist()
    if not new_files:
        return []
    lines = ingest.split_lines(read_files(spark, [r.path for r in new_files]))
    parsed = _parse(lines, spark, cfg, key, now)
    if too_late_before is not None:
        parsed = ingest.flag_too_late(parsed, too_late_before)
    parsed = parsed.persist()
    stats = (parsed.groupBy("source_file", "reason")
             .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("randomized").cast("int")).alias("rnd"))
             .collect())
    with_lines = {r.source_file for r in stats}
    uris = {r.path: file_uri(spark, r.path) for r in new_files}
    corrupt = unreadable_files(spark, [p for p, u in uris.items() if u not in with_lines])
    for r in stats:
        summary.records_read += r.n
        if r.reason is None:
            summary.records_valid += r.n
            summary.randomized_read += r.rnd or 0
        else:
            summary.rejected[r.reason] = summary.rejected.get(r.reason, 0) + r.n
    valid = parsed.where(F.col("reason").isNull())
    touched = [(r.mall_id, r.date) for r in valid.select("mall_id", "date").distinct().collect()]
    _write_probes(lake, valid, summary.run_id, touched)
    rejected = (parsed.where(F.col("reason").isNotNull())
                .withColumn("run_id", F.lit(summary.run_id))
                .select(*SCHEMAS[QUARANTINE].fieldNames()))
    if corrupt:
        summary.rejected[CORRUPT_FILE] = summary.rejected.get(CORRUPT_FILE, 0) + len(corrupt)
        summary.notes.extend(f"{CORRUPT_FILE}: {path}: {error}" for path, error in sorted(corrupt.items()))
        whole = spark.createDataFrame(
            [(uris[path], 0, None, None, CORRUPT_FILE, None, None, summary.run_id, None) for path in corrupt],
            SCHEMAS[QUARANTINE])
        rejected = rejected.unionByName(whole)
    lake.merge(QUARANTINE, rejected, ["source_file", "line_no"])
    _clear_repaired(lake, with_lines)
    if touched:
        pending = spark.createDataFrame(touched, SCHEMAS[PENDING_DATES])
        lake.merge(PENDING_DATES, pending, ["mall_id", "date"])
    registry = spark.createDataFrame(
        [(r.path, r.size, r.modification_time, summary.run_id) for r in new_files],
        SCHEMAS[INGESTED_FILES])
    lake.merge(INGESTED_FILES, registry, ["path", "size", "modification_time"])
    parsed.unpersist()
    return touched


def _clear_repaired(lake: Lakehouse, readable: set[str]) -> None:
    """A file once quarantined whole as corrupt, delivered again and now readable,
    leaves the quarantine: its records are in bronze or quarantined line by line."""
    if not lake.exists(QUARANTINE):
        return
    held = {r.source_file for r in lake.read(QUARANTINE).where(f"reason = '{CORRUPT_FILE}'")
            .select("source_file").collect()}
    repaired = sorted(held & readable)
    if repaired:
        files = ", ".join("'" + f.replace("'", "''") + "'" for f in repaired)
        lake.delete(QUARANTINE, f"reason = '{CORRUPT_FILE}' AND source_file IN ({files})")


#: Quarantine reasons a backfill tries again: records held back by the nightly
#: lateness rule, and records of sensors that may have been added to the config since.
REPLAYED = ("too_late", "unknown_sensor")


def replay_quarantine(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
                      now: dt.datetime, scope: DateRanges) -> list[tuple[int, dt.date]]:
    """Bring quarantined ``too_late`` and ``unknown_sensor`` records that are now valid
    and whose (mall, local date) is in ``scope`` into bronze (SPEC §9: "brought in by an
    explicit backfill"; a sensor added to objects.yaml gets its earlier records)."""
    if not lake.exists(QUARANTINE):
        return []
    # too_late rows know their (mall, date); unknown_sensor rows their sensor (rows
    # quarantined before the column existed have none: they are tried every time).
    configured = ", ".join("'" + r[0].replace("'", "''") + "'" for r in cfg.sensor_rows()) or "NULL"
    held = lake.read(QUARANTINE).where(
        f"(reason = '{REPLAYED[1]}' AND (sensor_id IS NULL OR sensor_id IN ({configured}))) OR "
        f"(reason = '{REPLAYED[0]}' AND ({date_ranges_predicate(scope, 'date')}))")
    if held.isEmpty():
        return []
    key, _ = hmac_key()
    lines = held.select("source_file", ingest.format_of(F.col("source_file")).alias("format"),
                        "line_no", "raw", "csv_header")
    parsed = _parse(lines, spark, cfg, key, now).persist()
    valid = parsed.where(F.col("reason").isNull()).where(date_ranges_predicate(scope, "date"))
    touched = [(r.mall_id, r.date) for r in valid.select("mall_id", "date").distinct().collect()]
    summary.replayed_from_quarantine = valid.count()
    if touched:
        _write_probes(lake, valid, summary.run_id, touched)
        # Bronze holds them now: only then do they leave the quarantine.
        lake.delete_keys(QUARANTINE, valid, ["source_file", "line_no"])
    parsed.unpersist()
    return touched


# -- scope helpers ---------------------------------------------------------------------

def _by_mall(pairs: Iterable[tuple[int, dt.date]]) -> DateRanges:
    grouped: dict[int, set[dt.date]] = defaultdict(set)
    for m, d in pairs:
        grouped[m].add(d)
    return {m: to_ranges(ds) for m, ds in grouped.items()}


def _days(ranges: DateRanges) -> list[tuple[int, dt.date]]:
    out = []
    for m, rs in ranges.items():
        for lo, hi in rs:
            out.extend((m, lo + dt.timedelta(days=i)) for i in range((hi - lo).days + 1))
    return out


def _monday(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def _month_span(d: dt.date) -> tuple[dt.date, dt.date]:
    first = d.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return first, nxt - dt.timedelta(days=1)


@dataclass
class GoldScope:
    """The buckets a run recomputes, per mall: whole days (hourly, daily), whole ISO
    weeks (weekly, weekday, weekend) and whole months (monthly)."""

    days: DateRanges
    weeks: DateRanges
    months: DateRanges

    @classmethod
    def around(cls, dates: Iterable[tuple[int, dt.date]]) -> "GoldScope":
        days, weeks, months = defaultdict(set), defaultdict(set), defaultdict(set)
        for m, d in dates:
            days[m].add(d)
            mon = _monday(d)
            weeks[m].update(mon + dt.timedelta(days=i) for i in range(7))
            first, last = _month_span(d)
            months[m].update(first + dt.timedelta(days=i) for i in range((last - first).days + 1))
        rng = lambda g: {m: to_ranges(ds) for m, ds in g.items()}  # noqa: E731
        return cls(rng(days), rng(weeks), rng(months))

    def read_ranges(self) -> DateRanges:
        """Session dates to read: every day of every bucket in scope."""
        return _by_mall(_days(self.days) + _days(self.weeks) + _days(self.months))

    def predicate(self) -> str:
        """The gold rows this scope owns."""
        parts = [
            f"(interval IN ('hourly', 'daily') AND ({date_ranges_predicate(self.days, 'bucket_date')}))",
            f"(interval IN ('weekly', 'weekday', 'weekend') AND "
            f"({date_ranges_predicate(self.weeks, 'bucket_date')}))",
            f"(interval = 'monthly' AND ({date_ranges_predicate(self.months, 'bucket_date')}))",
        ]
        return " OR ".join(parts)

    def mall_dates(self) -> int:
        return len(_days(self.days))


# -- sessions and gold -----------------------------------------------------------------

def _last_metric(lake: Lakehouse, table: str, name: str) -> int:
    from delta.tables import DeltaTable
    row = DeltaTable.forPath(lake.spark, lake.path(table)).history(1).collect()[0]
    return int((row.operationMetrics or {}).get(name, 0))


def build_sessions(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
                   scope: DateRanges, sensors: DataFrame) -> None:
    """Rebuild silver for ``scope`` (per mall, date ranges) from bronze.

    :param sensors: the sensor registry (:func:`sync_sensors`): configured sensors and
        the retired ones, whose stored probes still count where they were.
    """
    pred = date_ranges_predicate(scope, "date")
    probes = lake.read(BRONZE_PROBES).where(pred)
    if cfg.settings.randomized_macs == "exclude":
        summary.randomized_excluded = probes.where("randomized").count()
    built = (probes
             .transform(lambda df: sessions.drop_randomized(df, cfg.settings.randomized_macs))
             .transform(lambda df: sessions.at_objects(df, sensors))
             .transform(lambda df: sessions.sessionize(df, cfg.settings.session_gap_minutes)))
    lake.replace(SESSIONS, built, pred)
    summary.sessions_written = _last_metric(lake, SESSIONS, "numOutputRows")
    summary.session_dates = len(_days(scope))
    days = lake.read(SESSIONS).where(pred).transform(sessions.client_days)
    lake.replace(CLIENT_DAYS, days, pred)


def dependent_dates(lake: Lakehouse, cfg: Config, scope: DateRanges) -> list[tuple[int, dt.date]]:
    """The dates whose gold can change when the sessions of ``scope`` change: the scope,
    the following employee-window days, and each client's next visit (comeback)."""
    out = set(_days(scope))
    span = cfg.settings.employee_window_days
    for m, d in list(out):
        out.update((m, d + dt.timedelta(days=i)) for i in range(1, span))
    malls = ", ".join(str(m) for m in scope) or "NULL"
    w = Window.partitionBy("object_id", "client_id").orderBy("date")
    nxt = (lake.read(CLIENT_DAYS).where(f"mall_id IN ({malls})")
           .withColumn("next_date", F.lead("date").over(w))
           .where(date_ranges_predicate(scope, "date"))
           .where(F.col("next_date").isNotNull())
           .select("mall_id", "next_date").distinct().collect())
    out.update((r.mall_id, r.next_date) for r in nxt)
    return sorted(out)


def build_gold(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
               scope: GoldScope) -> None:
    """Recompute and replace every gold bucket in ``scope``."""
    read = scope.read_ranges()
    s = cfg.settings
    all_days = lake.read(CLIENT_DAYS).where(
        f"mall_id IN ({', '.join(str(m) for m in read) or 'NULL'})")
    employee_read = {m: [(lo - dt.timedelta(days=s.employee_window_days - 1), hi) for lo, hi in rs]
                     for m, rs in read.items()}
    mall_days = (all_days.where(F.col("object_type") == "mall")
                 .where(date_ranges_predicate(employee_read, "date")))
    employees = classify.employee_days(mall_days, s.employee_window_days, s.employee_min_days,
                                       s.employee_min_daily_minutes)
    last = max(hi for rs in read.values() for _, hi in rs)
    previous = classify.previous_visits(all_days.where(F.col("date") <= F.lit(last)))
    classified = classify.classify(lake.read(SESSIONS).where(date_ranges_predicate(read, "date")),
                                   employees, previous)
    gold = (metrics.group_datetime(classified, malls_df(spark, cfg)).where(scope.predicate())
            # One sorted file per (mall, interval): the API reads a few row groups of it.
            .repartition("mall_id", "interval")
            # Partition columns first: the writer then keeps this order instead of re-sorting.
            .sortWithinPartitions("mall_id", "interval", "object_id", "bounce_threshold",
                                  "engagement_threshold", "bucket_start"))
    lake.replace(GROUP_DATETIME, gold, scope.predicate(), optimize_write=False)
    summary.gold_rows_written = _last_metric(lake, GROUP_DATETIME, "numOutputRows")
    summary.gold_buckets_dates = scope.mall_dates()


def _recompute(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
               scope: DateRanges, sensors: DataFrame) -> None:
    if not scope:
        return
    with _Stage(summary, "sessions"):
        build_sessions(spark, lake, cfg, summary, scope, sensors)
    with _Stage(summary, "gold"):
        dates = dependent_dates(lake, cfg, scope)
        build_gold(spark, lake, cfg, summary, GoldScope.around(dates))


# -- the two commands ------------------------------------------------------------------

def _new_summary(command: str) -> Summary:
    return Summary(command=command, run_id=dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
                   + "-" + uuid.uuid4().hex[:6])


@contextlib.contextmanager
def writing(cfg: Config, command: str):
    """Hold the lakehouse's run lock (:mod:`jobs.lock`) while a run writes, and turn a
    Delta conflict with another writer into :class:`ConcurrentRunError`."""
    with exclusive(cfg.storage.lakehouse, command):
        try:
            yield
        except DeltaConcurrentModificationException as exc:
            first = str(exc).strip().splitlines()[0][:400]
            raise ConcurrentRunError(
                f"another writer changed the lakehouse {cfg.storage.lakehouse} during this run "
                f"({type(exc).__name__}: {first}). Every table is as one of the two runs left "
                "it; run this one again") from None


def nightly(spark: SparkSession, cfg: Config, date: dt.date,
            now: dt.datetime | None = None) -> Summary:
    """Ingest new files, then recompute every bucket up to local date ``date`` that new
    data touches (SPEC §11). Records dated before ``date - max_lateness_days`` are
    quarantined as ``too_late``; records after ``date`` wait for their own run.

    :raises LakehouseBusy: another run holds the lakehouse (nothing was done).
    """
    summary = _new_summary(f"nightly --date {date}")
    lake = Lakehouse(spark, cfg.storage.lakehouse)
    now = now or dt.datetime.now(dt.timezone.utc)
    check_landing(spark, cfg.storage.landing)
    client_id_key(cfg)  # ConfigError if storage.yaml requires FOOTFALL_HMAC_KEY and it is unset
    with writing(cfg, summary.command):
        sensors = sync_sensors(spark, lake, cfg, now.date())
        with _Stage(summary, "ingest"):
            cutoff = date - dt.timedelta(days=cfg.settings.max_lateness_days)
            ingest_landing(spark, lake, cfg, summary, now, too_late_before=cutoff)
        malls = {m.id for m in cfg.malls}
        pending = [(r.mall_id, r.date) for r in lake.read(PENDING_DATES)
                   .where(F.col("date") <= F.lit(date)).collect() if r.mall_id in malls]
        scope = _by_mall(pending)
        _recompute(spark, lake, cfg, summary, scope, sensors)
        with _Stage(summary, "finish"):
            if scope:
                lake.delete(PENDING_DATES, date_ranges_predicate(scope, "date"))
    return summary


def backfill(spark: SparkSession, cfg: Config, start: dt.date, end: dt.date,
             malls: list[int] | None = None, now: dt.datetime | None = None) -> Summary:
    """Ingest new files, bring in the quarantined records of the range that a backfill
    replays (``too_late``; ``unknown_sensor`` of sensors added since), then recompute
    ``start`` … ``end`` (and what depends on it) from the stored probes.

    :raises LakehouseBusy: another run holds the lakehouse (nothing was done).
    """
    if start > end:
        raise RunError(f"--from {start} is after --to {end}")
    known = {m.id for m in cfg.malls}
    malls = malls or sorted(known)
    unknown = sorted(set(malls) - known)
    if unknown:
        raise RunError(f"--malls: unknown mall id(s) {', '.join(map(str, unknown))}; "
                       f"config has {', '.join(map(str, sorted(known)))}")
    summary = _new_summary(f"backfill --from {start} --to {end} --malls {','.join(map(str, malls))}")
    lake = Lakehouse(spark, cfg.storage.lakehouse)
    now = now or dt.datetime.now(dt.timezone.utc)
    check_landing(spark, cfg.storage.landing)
    client_id_key(cfg)  # ConfigError if storage.yaml requires FOOTFALL_HMAC_KEY and it is unset
    scope: DateRanges = {m: [(start, end)] for m in malls}
    with writing(cfg, summary.command):
        sensors = sync_sensors(spark, lake, cfg, now.date())
        with _Stage(summary, "ingest"):
            ingest_landing(spark, lake, cfg, summary, now, too_late_before=None)
            replay_quarantine(spark, lake, cfg, summary, now, scope)
        _recompute(spark, lake, cfg, summary, scope, sensors)
        with _Stage(summary, "finish"):
            lake.delete(PENDING_DATES, date_ranges_predicate(scope, "date"))
    return summary


def maintain(spark: SparkSession, cfg: Config, retain_hours: float) -> str:
    """The weekly maintenance (:mod:`jobs.maintenance`) under the run lock; its report."""
    from jobs.maintenance import maintain as maintain_tables
    lake = Lakehouse(spark, cfg.storage.lakehouse)
    t0 = time.perf_counter()
    with writing(cfg, f"maintain --retain-hours {retain_hours:g}"):
        reports = maintain_tables(spark, lake, retain_hours)
    lines = [f"footfall maintain — {cfg.storage.lakehouse} ({time.perf_counter() - t0:.1f}s)"]
    return "\n".join(lines + [r.render() for r in reports])
