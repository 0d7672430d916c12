"""The Lakehouse's small reads by the driver (jobs/tables.py): the ops registries, a
file's quarantine reasons, which partitions hold rows, a count of flagged rows, a
commit's metrics. They go through delta-rs where it reaches the
lakehouse, through Spark elsewhere; both give the same answers."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.spark import rows_df
from jobs.tables import (BRONZE_PROBES, INGESTED_FILES, PENDING_DATES, QUARANTINE, SCHEMAS,
                         Lakehouse)

D1, D2 = dt.date(2016, 3, 1), dt.date(2016, 3, 2)
UTC = dt.timezone.utc


@pytest.fixture(params=["delta-rs", "spark"])
def lake(request, spark, tmp_path, monkeypatch):
    """A fresh lakehouse, read through delta-rs or (as for a scheme delta-rs cannot
    reach) through Spark."""
    if request.param == "spark":
        monkeypatch.setattr(Lakehouse, "_spark_only", property(lambda self: True))
    return Lakehouse(spark, str(tmp_path / "lake"))


def test_rows_of_a_small_table_and_none_before_it_exists(spark, lake):
    assert lake.rows(PENDING_DATES) == []
    lake.append(PENDING_DATES, rows_df(spark, [(1290, D2), (215, D1)], SCHEMAS[PENDING_DATES]))
    assert sorted(lake.rows(PENDING_DATES)) == [(215, D1), (1290, D2)]


def test_rows_appended_and_overwritten_by_the_driver(spark, lake):
    mtime = dt.datetime(2016, 3, 2, 23, 59, 59, 123000, tzinfo=UTC)
    lake.append_rows(PENDING_DATES, [(215, D1)])  # creates the table (by Spark)
    lake.append_rows(PENDING_DATES, [(1290, D2), (1290, D1)])
    lake.append_rows(INGESTED_FILES, [("file:/l/a.json", 42, mtime, "run-1")])
    assert sorted(lake.rows(PENDING_DATES)) == [(215, D1), (1290, D1), (1290, D2)]
    lake.overwrite_rows(PENDING_DATES, [(1290, D2)])
    # Spark reads what the driver wrote: the same rows, the same instant.
    assert [tuple(r) for r in lake.read(PENDING_DATES).collect()] == [(1290, D2)]
    got = lake.read(INGESTED_FILES).select(F.unix_micros("modification_time")).first()[0]
    assert got == (mtime - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
    lake.overwrite_rows(PENDING_DATES, [])
    assert lake.rows(PENDING_DATES) == [] and lake.read(PENDING_DATES).count() == 0
    lake.append(PENDING_DATES, rows_df(spark, [(215, D2)], SCHEMAS[PENDING_DATES]))  # Spark again
    assert lake.rows(PENDING_DATES) == [(215, D2)]


def test_rows_give_timestamps_in_utc_to_the_microsecond(spark, lake):
    mtime = dt.datetime(2016, 3, 2, 23, 59, 59, 123000, tzinfo=UTC)
    lake.append(INGESTED_FILES, rows_df(spark, [("file:/l/a.json", 42, mtime, "run-1")],
                                        SCHEMAS[INGESTED_FILES]))
    assert lake.rows(INGESTED_FILES, ["path", "size", "modification_time"]) == [
        ("file:/l/a.json", 42, mtime)]


def test_rows_whose_column_is_one_of_the_values(spark, lake):
    assert lake.rows(QUARANTINE, ["source_file", "reason"], isin=("source_file", ["a"])) == []
    held = [(f, n, None, None, reason, None, None, "run-1", None) for f, n, reason in
            [("a", 1, "malformed"), ("a", 2, "invalid_ts"), ("b", 1, "malformed"), ("c", 1, "too_late")]]
    lake.append(QUARANTINE, rows_df(spark, held, SCHEMAS[QUARANTINE]))
    got = lake.rows(QUARANTINE, ["source_file", "reason"], isin=("source_file", ["a", "c", "z"]))
    assert sorted(got) == [("a", "invalid_ts"), ("a", "malformed"), ("c", "too_late")]
    assert lake.rows(QUARANTINE, ["line_no"], isin=("source_file", [])) == []
    # On a partition column (the quarantine's reason) too.
    assert sorted(lake.rows(QUARANTINE, ["source_file"], isin=("reason", ["malformed"]))) == [("a",), ("b",)]


def _probe(mall: int, date: dt.date, line: int, randomized: bool = False) -> tuple:
    ts = dt.datetime.combine(date, dt.time(12), tzinfo=UTC)
    return (mall, date, "s-1", "c-1", ts, -60, randomized, "f.json", line, "run-1")


def test_count_true_counts_flagged_rows_of_the_given_partitions(spark, lake):
    assert lake.count_true(BRONZE_PROBES, "randomized", [(215, D1)]) == 0
    lake.append(BRONZE_PROBES, rows_df(spark, [
        _probe(215, D1, 1, True), _probe(215, D1, 2, True), _probe(215, D1, 3),
        _probe(215, D2, 4, True), _probe(1290, D1, 5, True)], SCHEMAS[BRONZE_PROBES]))
    cases = [([(215, D1)], 2), ([(215, D1), (215, D2)], 3), ([(1290, D1), (215, D2)], 2),
             ([(1290, D2)], 0), ([], 0), ([(215, D1), (215, D1)], 2)]
    assert [lake.count_true(BRONZE_PROBES, "randomized", parts) for parts, _ in cases] == [
        want for _, want in cases]


def test_holds_any_sees_only_partitions_with_rows(spark, lake):
    assert not lake.holds_any(BRONZE_PROBES, [(215, D1)])
    lake.append(BRONZE_PROBES, rows_df(spark, [_probe(215, D1, 1)], SCHEMAS[BRONZE_PROBES]))
    cases = [([(215, D1)], True), ([(215, D2)], False), ([(1290, D1)], False),
             ([(1290, D1), (215, D1)], True), ([], False)]
    assert [lake.holds_any(BRONZE_PROBES, parts) for parts, _ in cases] == [want for _, want in cases]
    lake.delete(BRONZE_PROBES, "mall_id = 215")
    assert not lake.holds_any(BRONZE_PROBES, [(215, D1)])


def test_last_metric_is_of_the_latest_commit(spark, lake):
    lake.append(BRONZE_PROBES, rows_df(spark, [_probe(215, D1, 1), _probe(215, D1, 2)],
                                       SCHEMAS[BRONZE_PROBES]))
    assert lake.last_metric(BRONZE_PROBES, "numOutputRows") == 2
    lake.replace(BRONZE_PROBES, rows_df(spark, [_probe(215, D2, 3)], SCHEMAS[BRONZE_PROBES]),
                 f"date = DATE'{D2}'")
    assert lake.last_metric(BRONZE_PROBES, "numOutputRows") == 1
    assert lake.last_metric(BRONZE_PROBES, "noSuchMetric") == 0
