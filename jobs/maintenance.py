"""Weekly Delta maintenance: compact small files, then vacuum what no reader needs.

Nightly runs replace a few days, weeks and months of each table at a time, so every
partition collects one small file per run. Per table:

- ``gold/group_datetime`` — each (mall, interval) partition where a file period's rows
  (a month of hourly buckets, a year of the others') are not alone in one file is
  rewritten as one file a period, sorted by object, thresholds and bucket
  (:mod:`jobs.layout`): the layout the report API reads fastest, and the one that lets
  a run replace a past day without copying more than that period (docs/performance.md). A Z-order would interleave object and time and lose that
  order, so gold is compacted by this sorted rewrite instead, marked
  ``dataChange=false`` as Delta's own compaction is.
- ``silver/sessions`` — ``OPTIMIZE … ZORDER BY (object_id)``: BI tools filter sessions
  by object.
- every other table — ``OPTIMIZE`` (bin-packing compaction).

Then ``VACUUM`` with ``retain_hours`` (default 168 h = Delta's 7 days): files that no
table version of the last week references are removed, so a reader (the API, a BI
tool) that opened a snapshot up to a week ago never finds its files gone. Delta's own
retention check stays on: a shorter retention is refused with a message.

Reads give the same rows before and after (tests/test_maintenance.py).
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import layout
from jobs.spec import GROUP_DATETIME, SESSIONS
from jobs.tables import PARTITIONS, Lakehouse

#: Delta's default ``delta.deletedFileRetentionDuration``: the shortest safe retention.
SAFE_RETAIN_HOURS = 168
ZORDER = {SESSIONS: ["object_id"]}


class MaintenanceError(ValueError):
    """A maintenance setting is unsafe or wrong; nothing was changed."""


@dataclass
class TableReport:
    """What maintenance did to one table."""

    table: str
    files_before: int
    files_after_optimize: int
    files_vacuumed: int
    seconds: float

    def render(self) -> str:
        return (f"  {self.table:<22} files {self.files_before} → {self.files_after_optimize}, "
                f"{self.files_vacuumed} removed by VACUUM ({self.seconds:.1f}s)")


def compact_gold(lake: Lakehouse) -> None:
    """Rewrite, in one commit, every gold partition (mall, interval) where a file
    period's rows (:mod:`jobs.layout`) are not alone in one file: spread over files (a
    nightly run adds one), or sharing a file with another period (the layout before
    periods). Whole partitions: Delta's compaction commit (``dataChange=false``) takes
    no data filter."""
    rows = (lake.read(GROUP_DATETIME)
            .select("mall_id", "interval", layout.file_start(F.col("interval"), F.col("bucket_date")).alias("p"),
                    F.input_file_name().alias("f"))
            .distinct().collect())
    files, periods = collections.defaultdict(set), collections.defaultdict(set)
    for r in rows:
        files[(r.mall_id, r.interval, r.p)].add(r.f)
        periods[r.f].add((r.mall_id, r.interval, r.p))
    stale = {g[:2] for g, fs in files.items() if len(fs) > 1 or any(len(periods[f]) > 1 for f in fs)}
    if not stale:
        return
    where = " OR ".join(f"(mall_id = {int(m)} AND interval = '{i}')" for m, i in sorted(stale))
    rewritten = [g for g in files if g[:2] in stale]
    lake.rewrite(GROUP_DATETIME, where, lambda df: layout.gold_files(df, rewritten))


def maintain(spark: SparkSession, lake: Lakehouse, retain_hours: float = SAFE_RETAIN_HOURS,
             enforce_retention: bool = True, tables: Sequence[str] | None = None) -> list[TableReport]:
    """Compact every table of the lakehouse (or only ``tables``), then vacuum it.

    :param retain_hours: VACUUM keeps files that a version of the last ``retain_hours``
        references; below :data:`SAFE_RETAIN_HOURS` it is refused unless
        ``enforce_retention`` is False (tests, and only when no reader is running).
    :raises MaintenanceError: an unsafe retention.
    """
    if retain_hours < SAFE_RETAIN_HOURS and enforce_retention:
        raise MaintenanceError(
            f"--retain-hours {retain_hours:g} is below {SAFE_RETAIN_HOURS} (7 days): a reader "
            "holding an older snapshot (the API, a BI tool, a running job) could lose its files")
    reports = []
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, "true")
    spark.conf.set(check, "true" if enforce_retention else "false")
    # VACUUM writes its START/END (with the count of deleted files) to the history.
    spark.conf.set("spark.databricks.delta.vacuum.logging.enabled", "true")
    try:
        for table in tables or PARTITIONS:
            if not lake.exists(table):
                continue
            t0 = time.perf_counter()
            before = lake.file_count(table)
            if table == GROUP_DATETIME:
                compact_gold(lake)
            else:
                lake.optimize(table, zorder_by=ZORDER.get(table, ()))
            after = lake.file_count(table)
            vacuumed = lake.vacuum(table, retain_hours)
            reports.append(TableReport(table, before, after, vacuumed, time.perf_counter() - t0))
    finally:
        spark.conf.set(check, previous)
    return reports
