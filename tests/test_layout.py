"""Gold's file layout (jobs/layout.py): Spark's hash in Python, keys that give each
(mall, interval, period) a task of its own, and so a file of its own."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
from deltalake import DeltaTable as RsDeltaTable
from pyspark.sql import functions as F

from jobs.layout import distinct_bucket_keys, gold_files, spark_hash_int


def test_the_python_hash_is_sparks(spark):
    values = [0, 1, -1, 7, 42, 2**31 - 1, -2**31, 123_456_789]
    got = spark.createDataFrame([(v,) for v in values], "v int").select("v", F.hash("v").alias("h")).collect()
    assert {r.v: r.h for r in got} == {v: spark_hash_int(v) for v in values}
    # Two values by hand, from Murmur3_x86_32.hashInt(v, 42) as Spark computes it.
    assert (spark_hash_int(0), spark_hash_int(1)) == (933211791, -559580957)


def test_each_key_has_a_hash_partition_of_its_own(spark):
    for n in (1, 2, 9, 40):
        keys = distinct_bucket_keys(n)
        parts = (spark.createDataFrame([(k,) for k in keys], "k int").repartition(n, "k")
                 .select("k", F.spark_partition_id().alias("p")).collect())
        assert sorted(r.p for r in parts) == list(range(n)), n


def test_one_sorted_file_per_partition_and_period(spark, tmp_path):
    feb, mar, y2016 = dt.date(2016, 2, 1), dt.date(2016, 3, 1), dt.date(2016, 1, 1)
    rows = [(m, i, d, o) for m in (1, 2) for i in ("daily", "hourly")
            for d in (dt.date(2016, 2, 28), dt.date(2016, 2, 29), dt.date(2016, 3, 1)) for o in (3, 2, 1)]
    gold = spark.createDataFrame(rows, "mall_id long, interval string, bucket_date date, object_id long")
    gold = gold.select("*", F.lit(5).alias("bounce_threshold"), F.lit(20).alias("engagement_threshold"),
                       F.col("bucket_date").cast("timestamp").alias("bucket_start"))
    periods = [(m, "hourly", x) for m in (1, 2) for x in (feb, mar)] + [(m, "daily", y2016) for m in (1, 2)]
    (gold_files(gold, periods).write.format("delta").partitionBy("mall_id", "interval")
     .option("optimizeWrite", "false").save(str(tmp_path / "g")))
    files = RsDeltaTable(str(tmp_path / "g")).file_uris()
    # Hourly: a file for February (2 days) and one for March (1 day); daily: one for 2016.
    sizes = sorted((("hourly" if "interval=hourly" in u else "daily"),
                    len(pq.read_table(u.removeprefix("file://")))) for u in files)
    assert sizes == [("daily", 9), ("daily", 9), ("hourly", 3), ("hourly", 3), ("hourly", 6), ("hourly", 6)]
    for uri in files:
        t = pq.read_table(uri.removeprefix("file://")).to_pylist()
        keys = [(r["object_id"], r["bucket_start"]) for r in t]
        assert keys == sorted(keys)
