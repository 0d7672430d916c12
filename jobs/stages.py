"""The stages of a run, each an idempotent write, so that a run that dies is completed
by running it again (SPEC §9):

1. :func:`ingest_new_files` — new landing files → ``bronze/probes`` (MERGE on sensor,
   client, instant; an append where the (mall, date) partitions are still empty),
   ``bronze/quarantine`` (MERGE on file, line), ``ops/pending_dates`` (the (mall, local
   date)s with new probes), then ``ops/ingested_files``.
   :func:`replay_quarantine` (backfill) brings back quarantined records now valid.
2. :func:`build_sessions` — the run's (mall, date) scope is rebuilt from bronze into
   ``silver/sessions`` and ``silver/client_days`` (replaceWhere on the scope).
3. :func:`build_gold` — every bucket the scope can change (:mod:`jobs.scope`) is
   recomputed and replaced in ``gold/group_datetime``; then :func:`clear_pending` takes
   the scope out of ``ops/pending_dates``.

Transforms come from :mod:`jobs.ingest`, :mod:`jobs.sessions`, :mod:`jobs.classify` and
:mod:`jobs.metrics`; files are read by :mod:`jobs.landing`, tables by :mod:`jobs.tables`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import classify, formats, ingest, landing, metrics, progress, scope, sessions
from jobs.config import Config
from jobs.scope import DateRanges, GoldScope, MallDate, date_ranges_predicate
from jobs.spark import rows_df
from jobs.spec import (BRONZE_PROBES, CLIENT_DAYS, CORRUPT_FILE, GROUP_DATETIME,
                       INGESTED_FILES, MALFORMED, PENDING_DATES, QUARANTINE, SENSORS, SESSIONS,
                       TOO_LATE, UNKNOWN_SENSOR)
from jobs.summary import Summary
from jobs.tables import SCHEMAS, Lakehouse

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

# -- the config as DataFrames ---------------------------------------------------------


def sensors_df(spark: SparkSession, cfg: Config) -> DataFrame:
    """The configured sensors: ``(sensor_id, zone_id, floor_id, mall_id, threshold)``."""
    return rows_df(
        spark, cfg.sensor_rows(),
        "sensor_id string, zone_id long, floor_id long, mall_id long, threshold int")


def malls_df(spark: SparkSession, cfg: Config) -> DataFrame:
    """The malls and their time zones: ``(mall_id, timezone)``."""
    return rows_df(spark, [(m.id, m.timezone) for m in cfg.malls], "mall_id long, timezone string")


def sync_sensors(spark: SparkSession, lake: Lakehouse, cfg: Config, today: dt.date) -> DataFrame:
    """Bring ``ops/sensors`` up to date with the config and return it.

    Configured sensors are active (``retired_on`` null) with their place from the
    config; a sensor that left the config keeps its last place and the date it left,
    so that recomputing past dates still counts its probes (its history stays), while
    new records from it are ``unknown_sensor``.
    """
    current = {r[0]: (*r, None) for r in cfg.sensor_rows()}
    before = {r[0]: r for r in lake.rows(SENSORS)}
    after = dict(current)
    for sid, row in before.items():
        if sid not in current:
            after[sid] = row if row[-1] is not None else (*row[:-1], today)
    rows = sorted(after.values())
    if after != before:
        lake.overwrite_rows(SENSORS, rows)
    return rows_df(spark, rows, SCHEMAS[SENSORS])


# -- 1. ingest -------------------------------------------------------------------------

def _parse(fields: DataFrame, spark: SparkSession, cfg: Config, key: bytes, now: dt.datetime) -> DataFrame:
    now_ms = int(now.timestamp() * 1000)
    sensors = sensors_df(spark, cfg)
    return (fields
            .transform(ingest.validate, sensors, now_ms)
            .transform(ingest.pseudonymise, key)
            .transform(ingest.locate, sensors, malls_df(spark, cfg)))


def _write_probes(lake: Lakehouse, valid: DataFrame, run_id: str, touched: list[MallDate]) -> None:
    if not touched:
        return
    probes = (valid.withColumn("run_id", F.lit(run_id))
              .select(*SCHEMAS[BRONZE_PROBES].fieldNames()))
    if not lake.holds_any(BRONZE_PROBES, touched):
        # Partitions no run has written yet (a new day, a first backfill): nothing to
        # match, and the run lock keeps them empty until this commit. One shuffle, by
        # partition, serves both the dedupe (its keys start with the partition's) and the
        # files (one per partition); Delta's optimized write would shuffle a second time.
        lake.append(BRONZE_PROBES, probes.repartition("mall_id", "date").transform(ingest.dedupe_probes),
                    laid_out=True)
        return
    probes = probes.transform(ingest.dedupe_probes)
    malls = sorted({m for m, _ in touched})
    lo, hi = min(d for _, d in touched), max(d for _, d in touched)
    prune = (f"t.mall_id IN ({', '.join(map(str, malls))}) AND "
             f"t.date >= DATE'{lo}' AND t.date <= DATE'{hi}'")
    lake.merge(BRONZE_PROBES, probes, ["mall_id", "date", "sensor_id", "client_id", "ts"],
               prune=prune, update_when="s.rssi > t.rssi", update_set={"rssi": "s.rssi"})


def ingest_new_files(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
                     key: bytes, now: dt.datetime, too_late_before: dt.date | None) -> list[MallDate]:
    """Ingest every landing file not ingested yet; return the (mall, date) pairs of the
    valid probes read.

    :param key: the HMAC key for client ids (resolved once per run).
    :param too_late_before: the nightly lateness cut-off (SPEC §9); None in a backfill.
    """
    listing = landing.list_landing(spark, cfg.storage.landing, cfg.feeds, summary.files_skipped)
    known = {(path, size, (mtime - _EPOCH) // dt.timedelta(milliseconds=1))
             for path, size, mtime in lake.rows(INGESTED_FILES, ["path", "size", "modification_time"])}
    new_files = [f for f in listing if (f.path, f.size, f.mtime_ms) not in known]
    summary.files_seen = len(listing)
    summary.files_new = len(new_files)
    progress.step("  landing: %d new files of %d", summary.files_new, summary.files_seen)
    if not new_files:
        return []
    fields, corrupt_captures, cached = formats.read_fields(spark, new_files, cfg.feeds, summary)
    parsed = _parse(fields, spark, cfg, key, now)
    if too_late_before is not None:
        parsed = ingest.flag_too_late(parsed, too_late_before)
    parsed = parsed.transform(ingest.for_writes).persist()
    # Per (mall, date) too: the valid rows' pairs are the run's touched dates (one job less).
    stats = (parsed.groupBy("source_file", "reason", "mall_id", "date")
             .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("randomized").cast("int")).alias("rnd"))
             .collect())
    with_lines = {r.source_file for r in stats}
    uris = {f.path: f.uri for f in new_files}
    by_uri = {f.uri: f.path for f in new_files if f.is_capture}
    corrupt = landing.unreadable_files(spark, [p for p, u in uris.items()
                                               if u not in with_lines and u not in by_uri])
    corrupt.update({by_uri[u]: error for u, error in corrupt_captures.items()})
    for r in stats:
        summary.records_read += r.n
        if r.reason is None:
            summary.records_valid += r.n
            summary.randomized_read += r.rnd or 0
        else:
            summary.reject(r.reason, r.n)
    # Only files with malformed lines can have a header that lacks a mapped column.
    malformed = {r.source_file for r in stats if r.reason == MALFORMED}
    summary.notes.extend(formats.header_notes(parsed, [f for f in new_files if f.uri in malformed],
                                              cfg.feeds))
    progress.step("  read %d records: %d valid, %d rejected", summary.records_read,
                  summary.records_valid, sum(summary.rejected.values()))
    valid = parsed.where(F.col("reason").isNull())
    touched = sorted({(r.mall_id, r.date) for r in stats if r.reason is None})
    _write_probes(lake, valid, summary.run_id, touched)
    progress.step("  bronze/probes: merged the probes of %d mall-dates", len(touched))
    rejected = (parsed.where(F.col("reason").isNotNull())
                .withColumn("run_id", F.lit(summary.run_id))
                .select(*SCHEMAS[QUARANTINE].fieldNames()))
    if corrupt:
        summary.reject(CORRUPT_FILE, len(corrupt))
        summary.notes.extend(f"{CORRUPT_FILE}: {path}: {error}" for path, error in sorted(corrupt.items()))
        whole = rows_df(
            spark, [(uris[path], 0, None, None, CORRUPT_FILE, None, None, summary.run_id, None) for path in corrupt],
            SCHEMAS[QUARANTINE])
        rejected = rejected.unionByName(whole)
    held = _quarantined(lake, uris.values())
    if not summary.rejected:
        # Nothing to add: a MERGE of nothing still plans and scans (~1 s a night).
        lake.ensure(QUARANTINE)
    elif held:
        lake.merge(QUARANTINE, rejected, ["source_file", "line_no"])
    else:
        # No file of this run has rows there (a file is quarantined again only when it is
        # delivered again, changed, under its old name): nothing to match.
        lake.append(QUARANTINE, rejected)
    _clear_repaired(lake, {f for f, reasons in held.items() if CORRUPT_FILE in reasons} & with_lines)
    _add_pending(lake, touched)
    # Appended, not MERGEd: the new files are by definition not in the registry (read
    # above, and the run lock keeps it so), and each is listed once.
    lake.append_rows(INGESTED_FILES, [(f.path, f.size, _EPOCH + dt.timedelta(milliseconds=f.mtime_ms),
                                       summary.run_id) for f in new_files])
    parsed.unpersist()
    for df in cached:
        df.unpersist()
    return touched


def _add_pending(lake: Lakehouse, touched: list[MallDate]) -> None:
    """Record the (mall, date)s with new probes in ``ops/pending_dates``, each once: the
    small table is read and only what it lacks is appended (a MERGE of a few rows
    costs seconds of planning and jobs)."""
    if not touched:
        return
    new = sorted(set(touched) - set(lake.rows(PENDING_DATES)))
    if new:
        lake.append_rows(PENDING_DATES, new)


def clear_pending(lake: Lakehouse, ranges: DateRanges) -> None:
    """Take the (mall, date)s of ``ranges`` out of ``ops/pending_dates``, once their
    sessions and gold are written: the small table is rewritten with the rest, in one
    commit (a DELETE plans, scans and rewrites: about a second)."""
    done = set(scope.days(ranges))
    held = lake.rows(PENDING_DATES)
    rest = [md for md in held if md not in done]
    if len(rest) < len(held):
        lake.overwrite_rows(PENDING_DATES, sorted(rest))


def _sql_strings(values: Iterable[str]) -> str:
    """``'a', 'b'``: SQL string literals for an ``IN (…)`` list ('' when none)."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _quarantined(lake: Lakehouse, files: Iterable[str]) -> dict[str, set[str]]:
    """The reasons ``bronze/quarantine`` holds rows for, per file among ``files``."""
    held: dict[str, set[str]] = {}
    for source_file, reason in lake.rows(QUARANTINE, ["source_file", "reason"],
                                         isin=("source_file", sorted(set(files)))):
        held.setdefault(source_file, set()).add(reason)
    return held


def _clear_repaired(lake: Lakehouse, repaired: set[str]) -> None:
    """Files once quarantined whole as corrupt, delivered again and now readable, leave
    the quarantine: their records are in bronze or quarantined line by line."""
    if repaired:
        files = _sql_strings(sorted(repaired))
        lake.delete(QUARANTINE, f"reason = '{CORRUPT_FILE}' AND source_file IN ({files})")


def replay_quarantine(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
                      key: bytes, now: dt.datetime, ranges: DateRanges) -> list[MallDate]:
    """Bring quarantined ``too_late`` and ``unknown_sensor`` records that are now valid
    and whose (mall, local date) is in ``ranges`` into bronze (SPEC §9: "brought in by
    an explicit backfill"; a sensor added to objects.yaml gets its earlier records)."""
    if not lake.exists(QUARANTINE):
        return []
    # too_late rows know their (mall, date); unknown_sensor rows their sensor (rows
    # quarantined before the column existed have none: they are tried every time).
    configured = _sql_strings(r[0] for r in cfg.sensor_rows()) or "NULL"
    held = lake.read(QUARANTINE).where(
        f"(reason = '{UNKNOWN_SENSOR}' AND (sensor_id IS NULL OR sensor_id IN ({configured}))) OR "
        f"(reason = '{TOO_LATE}' AND ({date_ranges_predicate(ranges, 'date')}))")
    if held.isEmpty():
        return []
    parsed = (_parse(formats.held_fields(spark, held, cfg), spark, cfg, key, now)
              .transform(ingest.for_writes).persist())
    valid = parsed.where(F.col("reason").isNull()).where(date_ranges_predicate(ranges, "date"))
    touched = [(r.mall_id, r.date) for r in valid.select("mall_id", "date").distinct().collect()]
    summary.replayed_from_quarantine = valid.count()
    progress.step("  replayed %d quarantined records", summary.replayed_from_quarantine)
    if touched:
        _write_probes(lake, valid, summary.run_id, touched)
        # Bronze holds them now: only then do they leave the quarantine.
        lake.delete_keys(QUARANTINE, valid, ["source_file", "line_no"])
    parsed.unpersist()
    return touched


# -- 2. sessions -----------------------------------------------------------------------

def build_sessions(lake: Lakehouse, cfg: Config, summary: Summary, ranges: DateRanges,
                   sensors: DataFrame) -> None:
    """Rebuild silver for ``ranges`` (per mall, date ranges) from bronze.

    :param sensors: the sensor registry (:func:`sync_sensors`): configured sensors and
        the retired ones, whose stored probes still count where they were.
    """
    pred = date_ranges_predicate(ranges, "date")
    probes = lake.read(BRONZE_PROBES).where(pred)
    if cfg.settings.randomized_macs == "exclude":
        summary.randomized_excluded = lake.count_true(BRONZE_PROBES, "randomized",
                                                      scope.days(ranges))
    # One shuffle, of the probes before they fan out to their objects, by silver's
    # partition: the windows, the aggregation and one file per (mall, date) all use it,
    # so the write needs no optimized write (a second shuffle).
    built = (probes
             .transform(sessions.drop_randomized, cfg.settings.randomized_macs)
             .repartition("mall_id", "date")
             .transform(sessions.at_objects, sensors)
             .transform(sessions.sessionize, cfg.settings.session_gap_minutes))
    lake.replace(SESSIONS, built, pred, laid_out=True)
    summary.sessions_written = lake.last_metric(SESSIONS, "numOutputRows")
    summary.session_dates = len(scope.days(ranges))
    progress.step("  silver/sessions: %d sessions for %d mall-dates", summary.sessions_written,
                  summary.session_dates)
    lake.replace(CLIENT_DAYS, lake.read(SESSIONS).where(pred).repartition("mall_id", "date")
                 .transform(sessions.client_days), pred, laid_out=True)


# -- 3. gold ---------------------------------------------------------------------------

def gold_scope(lake: Lakehouse, cfg: Config, ranges: DateRanges) -> GoldScope:
    """The gold buckets that the new sessions of ``ranges`` can change."""
    nxt = scope.next_visits(lake.read(CLIENT_DAYS), ranges).collect()
    dates = scope.dependent_dates(ranges, cfg.settings.employee_window_days,
                                  [(r.mall_id, r.next_date) for r in nxt])
    return GoldScope.around(dates)


def build_gold(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
               owned: GoldScope) -> None:
    """Recompute and replace every gold bucket in ``owned``."""
    read = owned.read_ranges()
    s = cfg.settings
    all_days = lake.read(CLIENT_DAYS).where(
        f"mall_id IN ({', '.join(str(m) for m in read) or 'NULL'})")
    mall_days = (all_days.where(F.col("object_type") == "mall")
                 .where(date_ranges_predicate(scope.employee_lookback(read, s.employee_window_days), "date")))
    employees = classify.employee_days(mall_days, s.employee_window_days, s.employee_min_days,
                                       s.employee_min_daily_minutes)
    last = max(hi for rs in read.values() for _, hi in rs)
    previous = classify.previous_visits(all_days.where(F.col("date") <= F.lit(last)))
    classified = classify.classify(lake.read(SESSIONS).where(date_ranges_predicate(read, "date")),
                                   employees, previous)
    gold = metrics.group_datetime(classified, malls_df(spark, cfg), buckets=owned.predicate(),
                                  file_periods=owned.file_periods())
    lake.replace(GROUP_DATETIME, gold, owned.predicate(), laid_out=True)
    summary.gold_rows_written = lake.last_metric(GROUP_DATETIME, "numOutputRows")
    summary.gold_buckets_dates = owned.mall_dates()
    progress.step("  gold/group_datetime: %d rows over %d mall-dates", summary.gold_rows_written,
                  summary.gold_buckets_dates)
