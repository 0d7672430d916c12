"""Bronze probes → sessions per client and object (SPEC §3)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window


def drop_randomized(probes: DataFrame, randomized_macs: str) -> DataFrame:
    """``exclude`` (the default) leaves randomised MACs out of sessions (SPEC §2)."""
    return probes.where(~F.col("randomized")) if randomized_macs == "exclude" else probes


def at_objects(probes: DataFrame, sensors: DataFrame) -> DataFrame:
    """One row per probe and object it counts at: its zone, that zone's floor and the
    mall; with ``strong`` = RSSI ≥ the sensor's visitor threshold.

    :param sensors: ``(sensor_id, zone_id, floor_id, mall_id, threshold)``.
    """
    s = sensors.select("sensor_id", "zone_id", "floor_id", "threshold")
    objects = F.array(
        F.struct(F.col("zone_id").alias("object_id"), F.lit("zone").alias("object_type")),
        F.struct(F.col("floor_id").alias("object_id"), F.lit("floor").alias("object_type")),
        F.struct(F.col("mall_id").alias("object_id"), F.lit("mall").alias("object_type")),
    )
    return (probes.join(F.broadcast(s), "sensor_id")
            .withColumn("strong", F.col("rssi") >= F.col("threshold"))
            .select("mall_id", "date", "client_id", "ts", "strong", F.explode(objects).alias("o"))
            .select("mall_id", "date", F.col("o.object_id").cast("long").alias("object_id"),
                    F.col("o.object_type").alias("object_type"), "client_id", "ts", "strong"))


def sessionize(probes_at_objects: DataFrame, gap_minutes: float) -> DataFrame:
    """Cut each client's probes at an object into sessions: a new session at the first
    probe, after a gap greater than ``gap_minutes``, and at every local date change.

    :return: one row per session with ``session_start``, ``session_end``,
        ``duration_ms`` (exact), ``duration_minutes``, ``probe_count`` and ``strong``
        (at least one strong probe).
    """
    gap_ms = int(round(gap_minutes * 60_000))
    # mall_id and date first: rows already hash-partitioned by (mall, date), as silver's
    # files are, need no second shuffle (an object lies in one mall).
    by_client = Window.partitionBy("mall_id", "date", "object_id", "client_id").orderBy("ts")
    ms = F.unix_millis("ts")
    starts = (F.lag(ms).over(by_client).isNull()
              | ((ms - F.lag(ms).over(by_client)) > gap_ms)).cast("int")
    return (
        probes_at_objects
        .withColumn("_new", starts)
        .withColumn("_session", F.sum("_new").over(by_client.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy("mall_id", "date", "object_id", "object_type", "client_id", "_session")
        .agg(F.min("ts").alias("session_start"), F.max("ts").alias("session_end"),
             F.count(F.lit(1)).alias("probe_count"), F.max(F.col("strong").cast("int")).alias("_strong"))
        .withColumn("duration_ms", F.unix_millis("session_end") - F.unix_millis("session_start"))
        .withColumn("duration_minutes", F.col("duration_ms") / 60_000.0)
        .withColumn("strong", F.col("_strong") == 1)
        .drop("_session", "_strong")
    )


def client_days(sessions: DataFrame) -> DataFrame:
    """Per object, client and local date: number of sessions and total duration. It
    feeds employee status (mall level) and previous-visit dates (SPEC §4–§5)."""
    return (sessions.groupBy("mall_id", "date", "object_id", "object_type", "client_id")
            .agg(F.count(F.lit(1)).alias("session_count"),
                 F.sum("duration_ms").cast("long").alias("duration_ms")))
