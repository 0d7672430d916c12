"""Gold's file layout: one file per (mall, interval) partition and period of
``bucket_date`` (a month of hourly buckets, a year of the others':
:data:`jobs.spec.GOLD_FILE_PERIOD`), sorted by :data:`jobs.spec.GOLD_SORT`.

Why periods: a run replaces its buckets with ``replaceWhere``, and Delta rewrites every
file that holds a row of them, copying the rows it keeps. With one file per partition, a
night whose late records touch a past day copied that partition's whole history (1.77 M
rows for 0.10 M replaced on the 57-day demo world); now it copies at most the rest of
a month of hours or a year of days, however long the history. Hourly buckets are most of
gold (17 million rows a year for a mall of 30 objects), hence their month; the other
intervals' files stay large enough that a request for a year opens one or two files
(docs/performance.md). Each file is sorted so that its row groups skip to one object
and pair.

Spark writes one file per partition folder per task, so each period must get a task of
its own: rows are hash-partitioned (``repartition(n, key)``) on a key chosen per
(mall, interval, period) so that ``pmod(hash(key), n)`` differs for every one of the n
groups (:func:`distinct_bucket_keys`, Spark's Murmur3 in Python). A row whose group was
not foreseen still lands in some task: a file then holds two periods, a cost and never
a loss.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.spark import rows_df
from jobs.spec import GOLD_FILE_PERIOD, GOLD_FILE_PERIOD_DEFAULT, GOLD_PARTITIONS, GOLD_SORT

_M32 = 0xFFFFFFFF
#: Spark's seed for ``hash()`` and for hash partitioning.
_SPARK_SEED = 42


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def spark_hash_int(value: int) -> int:
    """Spark's ``hash(value)`` of an INT (Murmur3_x86_32.hashInt, seed 42), signed."""
    k = (value & _M32) * 0xCC9E2D51 & _M32
    k = _rotl(k, 15) * 0x1B873593 & _M32
    h = _rotl(_SPARK_SEED ^ k, 13)
    h = (h * 5 + 0xE6546B64) & _M32
    h ^= 4
    h ^= h >> 16
    h = h * 0x85EBCA6B & _M32
    h ^= h >> 13
    h = h * 0xC2B2AE35 & _M32
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def distinct_bucket_keys(n: int) -> list[int]:
    """n INT keys whose hash partitions (``pmod(hash(key), n)``) are 0 … n-1, one each."""
    keys: list[int | None] = [None] * n
    free, candidate = n, 0
    while free:
        bucket = spark_hash_int(candidate) % n  # Python's % is pmod for n > 0
        if keys[bucket] is None:
            keys[bucket], free = candidate, free - 1
        candidate += 1
    return keys  # type: ignore[return-value]


def file_start(interval: Column, bucket_date: Column) -> Column:
    """:func:`jobs.spec.gold_file_start` as a Spark expression."""
    start = F.trunc(bucket_date, GOLD_FILE_PERIOD_DEFAULT)
    for name, period in GOLD_FILE_PERIOD.items():
        start = F.when(interval == name, F.trunc(bucket_date, period)).otherwise(start)
    return start


def file_tasks(df: DataFrame, periods: Sequence[tuple[int, str, dt.date]]) -> DataFrame:
    """``df`` (with ``mall_id``, ``interval``, ``bucket_date``) in one task per (mall,
    interval, period start) of ``periods``: the task that writes that period's file."""
    periods = sorted(set(periods))
    if not periods:
        return df.repartition(*GOLD_PARTITIONS)
    keys = distinct_bucket_keys(len(periods))
    lookup = rows_df(df.sparkSession, [(*g, k) for g, k in zip(periods, keys)],
                     "mall_id long, interval string, _file_start date, _file_key int")
    return (df.withColumn("_file_start", file_start(F.col("interval"), F.col("bucket_date")))
            .join(F.broadcast(lookup), ["mall_id", "interval", "_file_start"], "left")
            .repartition(len(periods), "_file_key")
            .select(*df.columns))


def sorted_for_files(gold: DataFrame) -> DataFrame:
    """Each task's rows in its files' order: the partition columns first (the writer then
    keeps this order instead of sorting again), then :data:`GOLD_SORT`."""
    return gold.sortWithinPartitions(*GOLD_PARTITIONS, *GOLD_SORT)


def gold_files(gold: DataFrame, periods: Sequence[tuple[int, str, dt.date]]) -> DataFrame:
    """``gold`` ordered for the writer: one task (so one file) per (mall, interval,
    period start) of ``periods``, sorted by the partition columns then :data:`GOLD_SORT`."""
    return gold.transform(file_tasks, periods).transform(sorted_for_files)
