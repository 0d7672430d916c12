"""Classified sessions → gold ``group_datetime`` (SPEC §6–§7).

All 28 threshold pairs × 7 user types come from two aggregations, not 196 passes:

1. per (object, bucket, client): bit masks of the client's sessions — for employee and
   passer sessions one byte each, for visitor sessions one byte per *duration bin*
   ``k`` (the number of thresholds ≤ the duration, 0…7). In each byte bit 0 means
   "has such a session" and bit 1+i "…on a date the client comes back within window
   i". Session counts and milliseconds are summed per class and bin alongside.
2. per (object, bucket): for each *slot* — employee, passer, all, and every range
   ``[lo, hi)`` of visitor bins — the number of clients whose masks hit it, per bit.
   The clients of a bucket share few distinct masks, so they are first counted per
   (bucket, masks) and the slots are summed over those groups, weighted.

A (b, e, user type) is then one slot: the bins whose durations
:func:`jobs.spec.visitor_class` puts in that type (for bounced ``[0, i)``, half engaged
``[i, j)``, engaged ``[j, 8)`` where b and e are the i-th and j-th thresholds).
"""

from __future__ import annotations

import datetime as dt
from functools import reduce
from typing import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import layout
from jobs.spark import rows_df
from jobs.spec import (COMEBACK_WINDOWS, EMPLOYEE, GSH_INTERVALS, PASSER,
                       THRESHOLD_PAIRS, THRESHOLDS, USER_TYPES, VISITOR, visitor_class)

_BINS = len(THRESHOLDS) + 1  # k = 0 … 7
_BITS = 1 + len(COMEBACK_WINDOWS)  # presence + one per window
_BUCKET = ["mall_id", "object_id", "object_type", "interval", "bucket_start", "bucket_date"]
#: Per client: session counts and milliseconds of employee, passer and each visitor bin.
_SUMS = ["e_n", "e_ms", "p_n", "p_ms"] + [f"v_{m}{b}" for b in range(_BINS) for m in ("n", "ms")]
#: Visitor bin ranges [lo, hi), then the three whole-class slots, then an empty slot.
SLOTS: tuple[tuple, ...] = (
    tuple((VISITOR, lo, hi) for lo in range(_BINS) for hi in range(lo + 1, _BINS + 1))
    + ((EMPLOYEE,), (PASSER,), ("all",), ("none",))
)


def _bin_floor(k: int) -> int:
    """The shortest duration (minutes) of visitor bin ``k``: every duration of the bin
    has the same class under any (b, e), since thresholds are the bins' edges."""
    return 0 if k == 0 else THRESHOLDS[k - 1]


def _slot_of(user_type: str, b: int, e: int) -> int:
    if user_type in ("all", EMPLOYEE, PASSER):
        return SLOTS.index((user_type,))
    if user_type == VISITOR:
        return SLOTS.index((VISITOR, 0, _BINS))
    bins = [k for k in range(_BINS) if visitor_class(_bin_floor(k), b, e) == user_type]
    # Contiguous by construction (the classes are ordered by duration); none for half
    # engaged when b = e.
    return SLOTS.index((VISITOR, bins[0], bins[-1] + 1) if bins else ("none",))


def combos(spark: SparkSession) -> DataFrame:
    """The 196 (bounce_threshold, engagement_threshold, user_type) rows with the slot
    that answers each."""
    rows = [(b, e, t, _slot_of(t, b, e)) for b, e in THRESHOLD_PAIRS for t in USER_TYPES]
    return rows_df(
        spark, rows, "bounce_threshold int, engagement_threshold int, user_type string, slot int")


def add_buckets(sessions: DataFrame, malls: DataFrame) -> DataFrame:
    """One row per session and interval (weekday and weekend are exclusive, so 5), with
    ``interval``, ``bucket_start`` (UTC instant of the local start) and ``bucket_date``.

    :param sessions: with ``mall_id``, ``date`` (local) and ``session_start``.
    :param malls: ``(mall_id, timezone)``.
    """
    tz = F.col("timezone")
    local = F.from_utc_timestamp("session_start", tz)
    into_hour_ms = F.unix_millis(local) - F.unix_millis(F.date_trunc("hour", local))
    hour_start = F.timestamp_millis(F.unix_millis("session_start") - into_hour_ms)
    monday = F.date_sub("date", F.weekday("date"))
    is_weekend = F.weekday("date") >= 5

    def bucket(interval: str | Column, start: Column, day: Column) -> Column:
        name = F.lit(interval) if isinstance(interval, str) else interval
        return F.struct(name.alias("interval"), start.alias("bucket_start"), day.alias("bucket_date"))

    def midnight(day: Column) -> Column:
        return F.to_utc_timestamp(day.cast("timestamp"), tz)

    week_part = F.when(is_weekend, F.date_add(monday, 5)).otherwise(monday)
    buckets = F.array(
        bucket("hourly", hour_start, F.col("date")),
        bucket("daily", midnight(F.col("date")), F.col("date")),
        bucket("weekly", midnight(monday), monday),
        bucket("monthly", midnight(F.trunc("date", "month")), F.trunc("date", "month")),
        bucket(F.when(is_weekend, "weekend").otherwise("weekday"), midnight(week_part), week_part),
    )
    return (sessions.join(F.broadcast(malls.select("mall_id", "timezone")), "mall_id")
            .withColumn("_b", F.explode(buckets))
            .select("*", "_b.*").drop("_b", "timezone"))


def _duration_bin(duration_ms: Column) -> Column:
    return reduce(lambda acc, t: acc + (duration_ms >= t * 60_000).cast("int"),
                  THRESHOLDS, F.lit(0))


def client_masks(bucketed: DataFrame) -> DataFrame:
    """Aggregation 1: per (object, interval, bucket, client), the bit masks and the
    session counts / milliseconds per class and duration bin (see module doc)."""
    cls = F.col("base_class")
    byte = F.col("_byte")
    k = F.col("_k")
    aggs = [
        F.bit_or(F.when(cls == EMPLOYEE, byte).otherwise(0)).alias("e_bits"),
        F.bit_or(F.when(cls == PASSER, byte).otherwise(0)).alias("p_bits"),
        F.bit_or(F.when(cls == VISITOR, F.expr("shiftleft(cast(_byte AS BIGINT), _k * 8)"))
                 .otherwise(F.lit(0).cast("long"))).alias("v_bits"),
        F.sum((cls == EMPLOYEE).cast("long")).alias("e_n"),
        F.sum(F.when(cls == EMPLOYEE, F.col("duration_ms")).otherwise(0)).alias("e_ms"),
        F.sum((cls == PASSER).cast("long")).alias("p_n"),
        F.sum(F.when(cls == PASSER, F.col("duration_ms")).otherwise(0)).alias("p_ms"),
    ]
    for b in range(_BINS):
        in_bin = (cls == VISITOR) & (k == b)
        aggs.append(F.sum(in_bin.cast("long")).alias(f"v_n{b}"))
        aggs.append(F.sum(F.when(in_bin, F.col("duration_ms")).otherwise(0)).alias(f"v_ms{b}"))
    return (bucketed.withColumn("_k", _duration_bin(F.col("duration_ms")))
            .withColumn("_byte", F.lit(1).bitwiseOR(F.shiftleft(F.col("comeback"), 1)))
            .groupBy(*_BUCKET, "client_id")
            .agg(*aggs))


def mask_groups(clients: DataFrame) -> DataFrame:
    """The clients of each (object, interval, bucket) grouped by their three masks:
    ``clients`` counts them, and their session counts and milliseconds are summed."""
    # Most clients of a bucket have one or two sessions, so their masks repeat: the
    # 902,829 client rows of the 1 M bench world fall into 120,538 groups, and the ~300
    # conditional sums of bucket_slots run over those.
    return (clients.groupBy(*_BUCKET, "e_bits", "p_bits", "v_bits")
            .agg(F.count(F.lit(1)).alias("clients"), *[F.sum(c).alias(c) for c in _SUMS]))


def _signed64(mask: int) -> int:
    return mask - (1 << 64) if mask >= (1 << 63) else mask


def _visitor_mask(lo: int, hi: int, bit: int) -> int:
    return _signed64(sum(1 << (8 * k + bit) for k in range(lo, hi)))


def bucket_slots(groups: DataFrame) -> DataFrame:
    """Aggregation 2, over :func:`mask_groups`: per (object, interval, bucket), an array
    ``slots`` with, for each of :data:`SLOTS`, ``n`` sessions, ``ms`` milliseconds and
    ``c``: clients per bit."""
    # Written as SQL text: built from Column objects, the ~300 expressions took ~3 s of
    # gateway calls in the driver, a third of a nightly run's gold stage.
    def long(value: int) -> str:
        return f"CAST({value} AS BIGINT)"

    def hits(cond: str) -> str:
        return f"CAST(SUM(CASE WHEN {cond} THEN clients ELSE 0 END) AS BIGINT)"

    def v_sum(kind: str, lo: int, hi: int) -> str:
        return "(" + " + ".join(f"v_{kind}{b}" for b in range(lo, hi)) + ")"

    aggs = [f"CAST(SUM({name}) AS BIGINT) AS {name}" for name in _SUMS]
    slot_exprs = []
    for s, slot in enumerate(SLOTS):
        conds = []
        for bit in range(_BITS):
            if slot[0] == VISITOR:
                conds.append(f"(v_bits & {long(_visitor_mask(slot[1], slot[2], bit))}) != 0")
            elif slot[0] in (EMPLOYEE, PASSER):
                conds.append(f"({slot[0][0]}_bits & {1 << bit}) != 0")
            elif slot[0] == "all":
                conds.append(f"((e_bits | p_bits) & {1 << bit}) != 0 OR "
                             f"(v_bits & {long(_visitor_mask(0, _BINS, bit))}) != 0")
        aggs += [f"{hits(cond)} AS c{s}_{bit}" for bit, cond in enumerate(conds)]
        if slot[0] == VISITOR:
            n, ms = v_sum("n", slot[1], slot[2]), v_sum("ms", slot[1], slot[2])
        elif slot[0] in (EMPLOYEE, PASSER):
            n, ms = f"{slot[0][0]}_n", f"{slot[0][0]}_ms"
        elif slot[0] == "all":
            n, ms = f"(e_n + p_n + {v_sum('n', 0, _BINS)})", f"(e_ms + p_ms + {v_sum('ms', 0, _BINS)})"
        else:
            n, ms = long(0), long(0)
        c = ", ".join(f"c{s}_{bit}" for bit in range(len(conds))) or ", ".join([long(0)] * _BITS)
        slot_exprs.append(f"named_struct('n', CAST({n} AS BIGINT), 'ms', CAST({ms} AS BIGINT), "
                          f"'c', array({c}))")
    return (groups.groupBy(*_BUCKET).agg(*[F.expr(a) for a in aggs])
            .select(*_BUCKET, F.expr(f"array({', '.join(slot_exprs)})").alias("slots")))


def _offset_text(local: Column, instant: Column) -> Column:
    off = F.unix_seconds(local) - F.unix_seconds(instant)
    hhmm = F.format_string("%s%02d:%02d", F.when(off < 0, "-").otherwise("+"),
                           (F.abs(off) / 3600).cast("int"), ((F.abs(off) % 3600) / 60).cast("int"))
    return F.when(off == 0, F.lit("Z")).otherwise(hhmm)


def bucket_label(interval: Column, bucket_start: Column, bucket_date: Column, timezone: Column) -> Column:
    """SPEC §6 label: the bucket's local start with its offset, ``Z`` when zero.

    Hourly buckets show the wall clock and offset at their start instant (a repeated
    DST hour gets two labels). Day-based buckets show ``<date>T00:00:00`` with the
    offset in force just before their start instant, which is the offset at local
    midnight — also where a DST change skips midnight (the bucket then starts at the
    first instant of the day, e.g. 2016-10-16T00:00:00-03:00 in America/Sao_Paulo).
    """
    local = F.from_utc_timestamp(bucket_start, timezone)
    hourly = F.concat(F.date_format(local, "yyyy-MM-dd'T'HH:mm:ss"), _offset_text(local, bucket_start))
    before = F.timestamp_millis(F.unix_millis(bucket_start) - 1)
    midnight = F.concat(F.date_format(bucket_date, "yyyy-MM-dd"), F.lit("T00:00:00"),
                        _offset_text(F.from_utc_timestamp(before, timezone), before))
    return F.when(interval == "hourly", hourly).otherwise(midnight)


def gold_rows(slots: DataFrame, combo_rows: DataFrame, malls: DataFrame) -> DataFrame:
    """Expand each bucket into its 28 × 7 rows with the metrics of SPEC §7."""
    n, ms = F.col("n"), F.col("ms")
    avg = F.when(n > 0, F.floor((2 * ms + n * 60_000) / (2 * n * 60_000))).otherwise(0)
    gsh = F.when(F.col("interval").isin(*GSH_INTERVALS),
                 F.floor((ms + 18_000) / 36_000) / 100.0).otherwise(0.0)
    comebacks = [F.element_at("c", i + 2).alias(w.column) for i, w in enumerate(COMEBACK_WINDOWS)]
    # Label each bucket once, then one row per slot, then join each (b, e, type) to its slot.
    per_slot = (slots.join(F.broadcast(malls.select("mall_id", "timezone")), "mall_id")
                .withColumn("datetime", bucket_label(F.col("interval"), F.col("bucket_start"),
                                                     F.col("bucket_date"), F.col("timezone")))
                .select("*", F.posexplode("slots").alias("slot", "v"))
                .select("*", "v.*").drop("v", "slots", "timezone"))
    return (per_slot.join(F.broadcast(combo_rows), "slot")
            .select("object_id", "object_type", "mall_id", "interval", "bucket_start", "bucket_date",
                    "datetime", "bounce_threshold", "engagement_threshold", "user_type",
                    n.alias("count_session"), F.element_at("c", 1).alias("count_client"),
                    avg.cast("long").alias("avg_session_duration"),
                    gsh.cast("double").alias("sum_session_duration"), *comebacks))


def group_datetime(classified: DataFrame, malls: DataFrame, buckets: str | None = None,
                   file_periods: Sequence[tuple[int, str, dt.date]] | None = None) -> DataFrame:
    """Classified sessions → every gold row of SPEC §8 for the buckets they start in.

    :param classified: sessions with ``base_class`` and ``comeback`` (see classify).
    :param malls: ``(mall_id, timezone)``.
    :param buckets: only the buckets this SQL predicate on ``mall_id``, ``interval`` and
        ``bucket_date`` keeps (a run's scope). A bucket's rows come from its own sessions
        alone, so this is the same as filtering the result, without aggregating the rest.
    :param file_periods: lay the rows out for gold's files, as
        :func:`jobs.layout.gold_files` does. Each bucket goes to its file's task before it
        becomes its 28 × 7 rows, so that the shuffle moves buckets, not 196 times as
        many rows.
    """
    bucketed = classified.transform(add_buckets, malls)
    if buckets:
        bucketed = bucketed.where(buckets)
    # One shuffle, by bucket, serves the three aggregations: each groups by the bucket
    # and more. (Left to itself Spark shuffles before each, the first time by client.)
    slots = (bucketed.repartition(*_BUCKET)
             .transform(client_masks).transform(mask_groups).transform(bucket_slots))
    if file_periods is not None:
        slots = slots.transform(layout.file_tasks, file_periods)
    gold = slots.transform(gold_rows, combos(classified.sparkSession), malls)
    return gold if file_periods is None else gold.transform(layout.sorted_for_files)
