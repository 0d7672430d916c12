"""Table locations, schemas, and the idempotent Delta writes.

Layout under the lakehouse root (SPEC §8)::

    bronze/probes           valid probes, deduplicated; partitioned by mall_id, date
    bronze/quarantine       rejected records with raw text, file, line, reason
    silver/sessions         sessions per object; partitioned by mall_id, date
    silver/client_days      per (object, client, local date): sessions and minutes
    gold/group_datetime     the report table; partitioned by mall_id, interval
    ops/ingested_files      which landing files were read (path, size, mtime)
    ops/pending_dates       (mall, local date) with new probes not yet sessionised
    ops/sensors             every sensor ever configured, with its objects; removed
                            ones keep their last place (``retired_on``) for history

Every write either MERGEs from a deduplicated source, appends it to partitions that
hold no row yet, or replaces exactly the rows a run owns (``replaceWhere``), so
re-running a run changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable, Mapping, Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.lock import local_folder
from jobs.objectstore import delta_rs_uri
from jobs.spark import rows_df
from jobs.spec import (BRONZE_PROBES, CLIENT_DAYS, COMEBACK_WINDOWS, GOLD_PARTITIONS,
                       GROUP_DATETIME, INGESTED_FILES, OBJECTS, PENDING_DATES, QUARANTINE,
                       SENSORS, SESSIONS)

SCHEMAS: dict[str, T.StructType] = {
    BRONZE_PROBES: T.StructType([
        T.StructField("mall_id", T.LongType(), False),
        T.StructField("date", T.DateType(), False),
        T.StructField("sensor_id", T.StringType(), False),
        T.StructField("client_id", T.StringType(), False),
        T.StructField("ts", T.TimestampType(), False),
        T.StructField("rssi", T.IntegerType(), False),
        T.StructField("randomized", T.BooleanType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_no", T.LongType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]),
    QUARANTINE: T.StructType([
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_no", T.LongType(), False),
        T.StructField("raw", T.StringType(), True),
        T.StructField("csv_header", T.StringType(), True),
        T.StructField("reason", T.StringType(), False),
        T.StructField("mall_id", T.LongType(), True),
        T.StructField("date", T.DateType(), True),
        T.StructField("run_id", T.StringType(), False),
        # Added after the first release (tables from then gain it on the next write,
        # null in their old rows): lets a backfill find the records of a sensor added
        # to the config since without parsing the whole quarantine again.
        T.StructField("sensor_id", T.StringType(), True),
    ]),
    SESSIONS: T.StructType([
        T.StructField("mall_id", T.LongType(), False),
        T.StructField("date", T.DateType(), False),
        T.StructField("object_id", T.LongType(), False),
        T.StructField("object_type", T.StringType(), False),
        T.StructField("client_id", T.StringType(), False),
        T.StructField("session_start", T.TimestampType(), False),
        T.StructField("session_end", T.TimestampType(), False),
        T.StructField("duration_ms", T.LongType(), False),
        T.StructField("duration_minutes", T.DoubleType(), False),
        T.StructField("probe_count", T.LongType(), False),
        T.StructField("strong", T.BooleanType(), False),
    ]),
    CLIENT_DAYS: T.StructType([
        T.StructField("mall_id", T.LongType(), False),
        T.StructField("date", T.DateType(), False),
        T.StructField("object_id", T.LongType(), False),
        T.StructField("object_type", T.StringType(), False),
        T.StructField("client_id", T.StringType(), False),
        T.StructField("session_count", T.LongType(), False),
        T.StructField("duration_ms", T.LongType(), False),
    ]),
    GROUP_DATETIME: T.StructType([
        T.StructField("object_id", T.LongType(), False),
        T.StructField("object_type", T.StringType(), False),
        T.StructField("mall_id", T.LongType(), False),
        T.StructField("interval", T.StringType(), False),
        T.StructField("bucket_start", T.TimestampType(), False),
        T.StructField("bucket_date", T.DateType(), False),
        T.StructField("datetime", T.StringType(), False),
        T.StructField("bounce_threshold", T.IntegerType(), False),
        T.StructField("engagement_threshold", T.IntegerType(), False),
        T.StructField("user_type", T.StringType(), False),
        T.StructField("count_session", T.LongType(), False),
        T.StructField("count_client", T.LongType(), False),
        T.StructField("avg_session_duration", T.LongType(), False),
        T.StructField("sum_session_duration", T.DoubleType(), False),
        *[T.StructField(w.column, T.LongType(), False) for w in COMEBACK_WINDOWS],
    ]),
    INGESTED_FILES: T.StructType([
        T.StructField("path", T.StringType(), False),
        T.StructField("size", T.LongType(), False),
        T.StructField("modification_time", T.TimestampType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]),
    PENDING_DATES: T.StructType([
        T.StructField("mall_id", T.LongType(), False),
        T.StructField("date", T.DateType(), False),
    ]),
    OBJECTS: T.StructType([  # the object tree for BI tools (jobs/catalog.py)
        T.StructField("object_id", T.LongType(), False),
        T.StructField("object_type", T.StringType(), False),
        T.StructField("name", T.StringType(), False),
        T.StructField("mall_id", T.LongType(), False),
        T.StructField("mall_name", T.StringType(), False),
        T.StructField("floor_id", T.LongType(), True),
        T.StructField("floor_name", T.StringType(), True),
        T.StructField("zone_id", T.LongType(), True),
        T.StructField("zone_name", T.StringType(), True),
        T.StructField("parent_id", T.LongType(), True),
        T.StructField("timezone", T.StringType(), False),
    ]),
    SENSORS: T.StructType([
        T.StructField("sensor_id", T.StringType(), False),
        T.StructField("zone_id", T.LongType(), False),
        T.StructField("floor_id", T.LongType(), False),
        T.StructField("mall_id", T.LongType(), False),
        T.StructField("threshold", T.IntegerType(), False),
        T.StructField("retired_on", T.DateType(), True),
    ]),
}

PARTITIONS: dict[str, list[str]] = {
    BRONZE_PROBES: ["mall_id", "date"],
    QUARANTINE: ["reason"],
    SESSIONS: ["mall_id", "date"],
    CLIENT_DAYS: ["mall_id", "date"],
    GROUP_DATETIME: list(GOLD_PARTITIONS),
    OBJECTS: [],
    INGESTED_FILES: [],
    PENDING_DATES: [],
    SENSORS: [],
}


class Lakehouse:
    """The Delta tables under one root URI, and the only code that writes them."""

    def __init__(self, spark: SparkSession, root: str,
                 storage_options: Mapping[str, str] | None = None):
        """:param storage_options: delta-rs settings for an object store
        (:attr:`jobs.storagefile.Storage.delta_rs_options`), for :meth:`rows` and co."""
        self.spark = spark
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})

    def path(self, table: str) -> str:
        """The table's location: ``<root>/<layer>/<name>``."""
        return f"{self.root}/{table}"

    def exists(self, table: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(table))

    def ensure(self, table: str) -> None:
        """Create the table, empty and with its schema, if it does not exist yet."""
        if not self.exists(table):
            (rows_df(self.spark, [], SCHEMAS[table]).write.format("delta")
             .partitionBy(*PARTITIONS[table]).mode("append").save(self.path(table)))

    def read(self, table: str) -> DataFrame:
        """The table as a DataFrame (an empty one with the schema if it does not exist)."""
        if not self.exists(table):
            return rows_df(self.spark, [], SCHEMAS[table])
        return self.spark.read.format("delta").load(self.path(table))

    def replace(self, table: str, df: DataFrame, predicate: str, laid_out: bool = False) -> None:
        """Atomically replace the rows matching ``predicate`` with ``df``.

        Every row of ``df`` must match ``predicate`` (Delta checks it). An empty
        ``df`` deletes the matching rows; rows outside the predicate are untouched.
        ``laid_out``: ``df`` is already arranged in the tasks and order its files should
        have (gold's, :mod:`jobs.layout`; silver's, by (mall, date)), instead
        of Delta's optimized write.
        """
        self.ensure(table)
        (df.select(*SCHEMAS[table].fieldNames()).write.format("delta").mode("overwrite")
         .option("replaceWhere", predicate).option("optimizeWrite", str(not laid_out).lower())
         .option("mergeSchema", "true")
         .save(self.path(table)))

    def merge(self, table: str, source: DataFrame, keys: Sequence[str], *,
              prune: str | None = None, update_when: str | None = None,
              update_set: Mapping[str, str] | None = None) -> None:
        """MERGE a deduplicated ``source`` into ``table`` on ``keys``: insert rows not
        there yet; where ``update_when`` holds for a match, apply ``update_set``.

        :param prune: an extra predicate on the target (``t.``) that limits the files
            the MERGE reads, e.g. the partitions the source touches.
        """
        self.ensure(table)
        cond = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        if prune:
            cond = f"({prune}) AND {cond}"
        # withSchemaEvolution: a column added to SCHEMAS is added to an older table.
        m = DeltaTable.forPath(self.spark, self.path(table)).alias("t").merge(
            source.select(*SCHEMAS[table].fieldNames()).alias("s"), cond).withSchemaEvolution()
        if update_when and update_set:
            m = m.whenMatchedUpdate(condition=update_when, set=dict(update_set))
        m.whenNotMatchedInsertAll().execute()

    def append(self, table: str, df: DataFrame, laid_out: bool = False) -> None:
        """Add the rows of ``df``: only where none of them can be in the table yet
        (partitions that :meth:`holds_any` found empty); elsewhere :meth:`merge`.
        ``laid_out``: as in :meth:`replace`."""
        self.ensure(table)
        (df.select(*SCHEMAS[table].fieldNames()).write.format("delta").mode("append")
         .option("optimizeWrite", str(not laid_out).lower())
         .option("mergeSchema", "true").save(self.path(table)))

    # -- small writes by the driver ----------------------------------------------------
    # The ops registries take a few rows a run; through Spark each such commit costs a
    # nightly ~0.5–2 s (planning, a job, Delta's snapshot of the table), through delta-rs
    # milliseconds. Only on a local lakehouse: on object storage Spark's log store (and
    # its commit lock) stays the one writer. A table that does not exist yet is created
    # by Spark, so that every table has Spark's protocol.

    def append_rows(self, table: str, rows: Iterable[Sequence]) -> None:
        """Add a few rows held by the driver (``SCHEMAS[table]`` order), as :meth:`append`."""
        self._write_rows(table, rows, "append")

    def overwrite_rows(self, table: str, rows: Iterable[Sequence]) -> None:
        """Replace the whole small table with these rows, as :meth:`overwrite`."""
        self._write_rows(table, rows, "overwrite")

    def _write_rows(self, table: str, rows: Iterable[Sequence], mode: str) -> None:
        local = local_folder(self.root) is not None and not self._spark_only
        rs = self._delta_rs(table) if local else None
        if rs is None:
            df = rows_df(self.spark, rows, SCHEMAS[table])
            if mode == "append":
                self.append(table, df)
            else:
                self.overwrite(table, df)
            return
        import pyarrow as pa
        from deltalake import write_deltalake
        from pyspark.sql.pandas.types import to_arrow_schema
        schema = SCHEMAS[table]
        data = pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows],
                                    schema=to_arrow_schema(schema, timezone="UTC"))
        # merge: a column added to SCHEMAS is added to an older table (as mergeSchema).
        write_deltalake(rs, data, mode=mode, schema_mode="merge")

    # -- small reads by the driver, without Spark ---------------------------------------
    # A Spark read of a Delta table costs a nightly run 0.3–2 s (Delta's snapshot jobs,
    # planning, code generation) however small the table; delta-rs reads the log and a
    # few files in milliseconds. Where delta-rs cannot reach the lakehouse (a scheme other
    # than a local path or s3a://), these fall back to Spark.

    def _delta_rs(self, table: str):
        """The table through delta-rs (where ``_spark_only`` is false); None if it does
        not exist."""
        from deltalake import DeltaTable as RsTable
        from deltalake.exceptions import TableNotFoundError
        try:
            return RsTable(delta_rs_uri(self.path(table)), storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None

    @property
    def _spark_only(self) -> bool:
        return local_folder(self.root) is None and not self.root.startswith("s3a://")

    def rows(self, table: str, columns: Sequence[str] | None = None,
             isin: tuple[str, Iterable] | None = None) -> list[tuple]:
        """Every row of a small table (the ops registries) as tuples of ``columns``
        (default: the schema's), [] when the table does not exist. Timestamps are UTC
        (time-zone aware).

        :param isin: ``(column, values)``: only the rows whose ``column`` is one of
            ``values`` (a partition column prunes files, another one row groups).
        """
        cols = list(columns or SCHEMAS[table].fieldNames())
        values = None if isin is None else list(isin[1])
        if values == []:
            return []
        if self._spark_only:
            utc = dt.timezone.utc  # Spark returns local wall-clock time, without a zone
            df = self.read(table)
            if isin is not None:
                df = df.where(F.col(isin[0]).isin(values))
            return [tuple(v.astimezone(utc) if isinstance(v, dt.datetime) else v for v in r)
                    for r in df.select(*cols).collect()]
        rs = self._delta_rs(table)
        if rs is None:
            return []
        if isin is None:
            data = rs.to_pyarrow_table(columns=cols)
        else:
            import pyarrow.compute as pc
            data = rs.to_pyarrow_dataset().to_table(
                columns=cols, filter=pc.field(isin[0]).isin(values))
        return list(zip(*(data.column(c).to_pylist() for c in cols)))

    def holds_any(self, table: str, partitions: Iterable[tuple]) -> bool:
        """Whether any of ``partitions`` (values of the table's partition columns, in
        order) holds a row; answered from the table's list of files and their row counts."""
        wanted = set(partitions)
        keys = PARTITIONS[table]
        if self._spark_only:
            def lit(v):
                return f"DATE'{v}'" if isinstance(v, dt.date) else repr(v)
            pred = " OR ".join("(" + " AND ".join(f"{k} = {lit(v)}" for k, v in zip(keys, p)) + ")"
                               for p in sorted(wanted))
            return bool(wanted) and self.exists(table) and not self.read(table).where(pred).isEmpty()
        rs = self._delta_rs(table)
        if rs is None or not wanted:
            return False
        import pyarrow as pa
        adds = pa.table(rs.get_add_actions(flatten=True))
        values = [adds.column(f"partition.{k}").to_pylist() for k in keys]
        counts = adds.column("num_records").to_pylist()
        # A file without statistics may hold rows; one with num_records 0 holds none.
        return any(tuple(v) in wanted and n != 0 for *v, n in zip(*values, counts))

    def count_true(self, table: str, column: str, partitions: Iterable[tuple]) -> int:
        """How many rows of ``partitions`` (values of the table's partition columns, in
        order, as in :meth:`holds_any`) have ``column`` true; one boolean column of those
        partitions' files is read."""
        *outer, last = PARTITIONS[table]
        groups: dict[tuple, list] = {}
        for *head, v in sorted(set(partitions)):
            groups.setdefault(tuple(head), []).append(v)
        if self._spark_only:
            if not groups or not self.exists(table):
                return 0
            col = F.col
        else:
            import pyarrow.compute as pc
            rs = self._delta_rs(table)
            if rs is None or not groups:
                return 0
            col = pc.field
        # (outer keys equal AND last key in the values), OR-ed over the outer values.
        pred = None
        for head, values in groups.items():
            one = col(last).isin(values)
            for k, v in zip(outer, head):
                one = one & (col(k) == v)
            pred = one if pred is None else pred | one
        if self._spark_only:
            return self.read(table).where(pred & col(column)).count()
        return rs.to_pyarrow_dataset().count_rows(filter=pred & col(column))

    def delete_keys(self, table: str, keys_df: DataFrame, keys: Sequence[str]) -> None:
        """Delete the rows whose ``keys`` appear in ``keys_df`` (deduplicated here)."""
        if self.exists(table):
            cond = " AND ".join(f"t.{k} = s.{k}" for k in keys)
            (DeltaTable.forPath(self.spark, self.path(table)).alias("t")
             .merge(keys_df.select(*keys).distinct().alias("s"), cond)
             .whenMatchedDelete().execute())

    def overwrite(self, table: str, df: DataFrame) -> None:
        """Replace the whole (small) table with ``df`` in one commit."""
        (df.select(*SCHEMAS[table].fieldNames()).write.format("delta").mode("overwrite")
         .save(self.path(table)))

    def delete(self, table: str, predicate: str) -> None:
        """Delete the rows matching ``predicate`` (nothing if the table does not exist)."""
        if self.exists(table):
            DeltaTable.forPath(self.spark, self.path(table)).delete(predicate)

    # -- what a write did, and upkeep (jobs.maintenance) --------------------------------

    def last_metric(self, table: str, name: str) -> int:
        """An operation metric of the table's latest commit, e.g. ``numOutputRows``."""
        if self._spark_only:
            row = DeltaTable.forPath(self.spark, self.path(table)).history(1).collect()[0]
            return int((row.operationMetrics or {}).get(name, 0))
        return int((self._delta_rs(table).history(1)[0].get("operationMetrics") or {}).get(name, 0))

    def file_count(self, table: str) -> int:
        """How many data files the table's current version has."""
        return int(DeltaTable.forPath(self.spark, self.path(table)).detail().collect()[0].numFiles)

    def rewrite(self, table: str, predicate: str,
                arrange: Callable[[DataFrame], DataFrame]) -> None:
        """Rewrite the rows matching ``predicate`` as ``arrange`` lays them out (e.g.
        :func:`jobs.layout.gold_files`); a ``dataChange=false`` commit, as Delta's own
        compaction is (readers see the same rows)."""
        (arrange(self.read(table).where(predicate))
         .select(*SCHEMAS[table].fieldNames())
         .write.format("delta").mode("overwrite").option("replaceWhere", predicate)
         .option("dataChange", "false").option("optimizeWrite", "false").save(self.path(table)))

    def optimize(self, table: str, zorder_by: Sequence[str] = ()) -> None:
        """Compact small files (``OPTIMIZE``), Z-ordered by ``zorder_by`` when given."""
        opt = DeltaTable.forPath(self.spark, self.path(table)).optimize()
        if zorder_by:
            opt.executeZOrderBy(*zorder_by)
        else:
            opt.executeCompaction()

    def vacuum(self, table: str, retain_hours: float) -> int:
        """``VACUUM`` files no version of the last ``retain_hours`` references; how many
        it removed (from the table's history: VACUUM logging must be on)."""
        dt_ = DeltaTable.forPath(self.spark, self.path(table))
        dt_.vacuum(retain_hours)
        for row in dt_.history(5).collect():
            if row.operation == "VACUUM END":
                return int((row.operationMetrics or {}).get("numDeletedFiles", 0))
        return 0
