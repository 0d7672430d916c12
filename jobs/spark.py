"""build_spark(): the one place that holds Spark and Delta Lake settings; rows_df():
small DataFrames from rows the driver holds."""

from __future__ import annotations

import os
import sys
from typing import Iterable, Mapping, Sequence

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from jobs.paths import JAR_DIR, driver_java_options, jars

#: Settings every session gets; conf/storage.yaml's spark.conf adds to / overrides them.
BASE_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # All instants are stored in UTC; local time is always explicit (mall time zone).
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    # Small tables: no need for Delta's default of 50 partitions to read a log.
    "spark.databricks.delta.snapshotPartitions": "4",
    "spark.databricks.delta.optimizeWrite.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "static",
    # Reading hundreds of landing files lists them in a Spark job: by default one task
    # per file (900 files: 2–7 s of tasks); 8 tasks list them in a fraction of a second.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
    # The gold aggregation has ~330 aggregates: keep it in whole-stage code generation
    # (Spark's default limit of 100 fields turns it off and costs ~40 % of that stage).
    "spark.sql.codegen.maxFields": "2000",
    # Row groups of 100k rows: readers of gold (the API) skip most of a sorted file.
    "spark.hadoop.parquet.block.row.count.limit": "100000",
    # A JSON record with a key given twice: the last one counts (as Python's json does).
    "spark.sql.variant.allowDuplicateKeys": "true",
    # Commits on S3 by put-if-absent, so a second driver cannot overwrite a version
    # (jvm/footfall/delta/ConditionalPutLogStore.java; docs/decisions.md).
    "spark.delta.logStore.s3a.impl": "footfall.delta.ConditionalPutLogStore",
}


def submitted_jars() -> list[str]:
    """The JARs spark-submit gave this driver (``--jars``); [] outside spark-submit."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return []
    from pyspark import SparkContext
    SparkContext._ensure_initialized()
    value = SparkContext._jvm.java.lang.System.getProperty("spark.jars") or ""
    return [j for j in value.split(",") if j]


def session_jars() -> list[str]:
    """The JARs of every session (Delta Lake's, the S3 connector's) from the setup cache,
    else (a driver run from the artifact of ``make dist``, away from the checkout)
    spark-submit's; a clear error if neither."""
    found = jars() or submitted_jars()
    if not any("delta-spark" in j for j in found):
        raise RuntimeError(
            f"Delta Lake JARs not found in {JAR_DIR} nor in spark-submit's --jars: run "
            "`make setup` once (it resolves them from Maven Central so that no job downloads "
            "at run time)"
        )
    return found


def build_spark(master: str = "local[*]", app_name: str = "footfall",
                conf: Mapping[str, str] | None = None) -> SparkSession:
    """Create (or return the running) SparkSession with Delta Lake configured.

    :param master: the Spark master URL (``local[*]``, ``spark://host:7077``, ``yarn`` …).
    :param app_name: the application name shown by the cluster.
    :param conf: extra Spark settings (conf/storage.yaml's ``spark.conf``); they win
        over the base settings, but a ``spark.jars`` there adds to the session's JARs.
    """
    builder = SparkSession.builder.master(master).appName(app_name)
    conf = dict(conf or {})
    extra = [j for j in conf.pop("spark.jars", "").split(",") if j.strip()]
    settings = {**BASE_CONF, "spark.jars": ",".join(session_jars() + extra),
                "spark.driver.extraJavaOptions": driver_java_options()}
    if master.startswith("local"):
        # A local run talks only to itself: keep the driver on loopback.
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
        # Its Python workers (capture files, jobs/capture.py) run this interpreter, whatever
        # PATH says: an in-process SparkContext takes them from PYSPARK_PYTHON only (not from
        # spark.pyspark.python), else `python3` on PATH, which may lack pyarrow.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.update(conf)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def rows_df(spark: SparkSession, rows: Iterable[Sequence], schema: T.StructType | str) -> DataFrame:
    """A DataFrame of a few rows held by the driver (the config, a registry).

    The rows go to the JVM as one Arrow batch: ``spark.createDataFrame`` of a list
    passes them through a Python worker, whose start costs about a second a run.
    """
    if isinstance(schema, str):
        schema = T._parse_datatype_string(schema)
    table = pa.Table.from_pylist([dict(zip(schema.names, row)) for row in rows],
                                 schema=to_arrow_schema(schema, timezone="UTC"))
    return spark.createDataFrame(table, schema)
