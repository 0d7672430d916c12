"""SPEC §2: parsing, validation reasons, normalisation, duplicates, pseudonymisation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import ingest
from jobs.run import sensors_df

NOW = dt.datetime(2016, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
CSV_HEADER = "rssi,ts,mac,sensor_id"


def _validate(spark, cfg, lines):
    """lines: (format, raw[, csv_header]) → list of (line_no, reason, mac, ts_ms, rssi)."""
    rows = [("f", fmt, i + 1, raw, hdr) for i, (fmt, raw, hdr) in
            enumerate((ln + (None,))[:3] if len(ln) == 2 else ln for ln in lines)]
    df = spark.createDataFrame(rows, "source_file string, format string, line_no long, raw string, csv_header string")
    out = (df.transform(ingest.parse_fields)
           .transform(lambda d: ingest.validate(d, sensors_df(spark, cfg), NOW_MS))
           .select("line_no", "reason", "mac", "ts_ms", "rssi").orderBy("line_no").collect())
    return [tuple(r) for r in out]


def _json(sensor="s-1", mac="00:11:22:33:44:55", ts="2016-02-01T10:00:00Z", rssi=-60, raw=None):
    import json
    return ("json", raw if raw is not None else json.dumps({"sensor_id": sensor, "mac": mac, "ts": ts, "rssi": rssi}))


def test_each_reason_and_the_first_failure_wins(spark, cfg):
    got = _validate(spark, cfg, [
        _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":"2016-02-01T10:00:00Z"'),  # truncated
        _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","rssi":-60}'),  # missing ts
        _json(raw='{"sensor_id":"s-1","mac":null,"ts":1454320800,"rssi":-60}'),  # null = missing
        _json(raw='[1, 2, 3]'),  # not an object
        _json(mac="01:11:22:33:44:55"),  # multicast
        _json(mac="00:11:22-33:44:55"),  # mixed separators
        _json(rssi=5),
        _json(rssi=-121),
        _json(rssi="-65.5"),
        _json(ts="2016-02-01T10:00:00"),  # ISO without offset
        _json(ts="2009-12-31T23:59:59Z"),
        _json(ts="2016-03-02T12:00:00.001Z"),  # now + 1 day + 1 ms
        _json(sensor="nope"),
        _json(mac="01:11:22:33:44:55", rssi=99, ts="bad", sensor="nope"),  # mac is checked first
        _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":1454320800,"rssi":-60,"rssi":5}'),
        _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":1454320800,"rssi":NaN}'),
        _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":1454320800,"rssi":true}'),
    ])
    assert [r[1] for r in got] == [
        "malformed", "malformed", "malformed", "malformed",
        "invalid_mac", "invalid_mac",
        "invalid_rssi", "invalid_rssi", "invalid_rssi",
        "invalid_ts", "invalid_ts", "invalid_ts",
        "unknown_sensor", "invalid_mac",
        "invalid_rssi",  # a key given twice: the last one counts
        "malformed", "malformed",  # NaN is not JSON; a boolean is not a string or number
    ]


@pytest.mark.parametrize("spelling", [
    "AA:BB:CC:DD:EE:F0", "aa-bb-cc-dd-ee-f0", "aabbccddeef0", "aabb.ccdd.eef0", "Aa:bB:cc:DD:ee:F0",
])
def test_mac_spellings_normalise_to_lower_colon_form(spark, cfg, spelling):
    got = _validate(spark, cfg, [_json(mac=spelling)])
    assert got[0][1] is None
    assert got[0][2] == "aa:bb:cc:dd:ee:f0"


def test_timestamp_forms_to_the_millisecond(spark, cfg):
    base = 1454320800000  # 2016-02-01T10:00:00Z
    got = _validate(spark, cfg, [
        _json(ts="2016-02-01T10:00:00Z"),
        _json(ts="2016-02-01T13:00:00+03:00"),
        _json(ts="2016-02-01T05:30:00-04:30"),
        _json(ts="2016-02-01T10:00:00.123Z"),
        _json(ts="2016-02-01T10:00:00.1239Z"),  # truncated to ms
        _json(ts=1454320800),  # epoch seconds
        _json(ts=1454320800123),  # epoch ms
        _json(ts="1454320800"),  # number as a string
        _json(ts=99_999_999_999),  # < 10^11: seconds → year 5138, invalid
        _json(ts=100_000_000_000),  # ≥ 10^11: milliseconds → 1973, invalid
        _json(ts="2016-02-30T10:00:00Z"),  # no such day
    ])
    assert [r[3] for r in got[:8]] == [base, base, base, base + 123, base + 123, base, base + 123, base]
    assert [r[1] for r in got[8:]] == ["invalid_ts", "invalid_ts", "invalid_ts"]


def test_boundaries_of_the_valid_time_range(spark, cfg):
    got = _validate(spark, cfg, [
        _json(ts="2010-01-01T00:00:00Z"),
        _json(ts="2016-03-02T12:00:00Z"),  # exactly now + 1 day
    ])
    assert [r[1] for r in got] == [None, None]


def test_rssi_as_string_and_range_ends(spark, cfg):
    got = _validate(spark, cfg, [_json(rssi="-65"), _json(rssi=0), _json(rssi=-120), _json(rssi=" -70 ")])
    assert [(r[1], r[4]) for r in got] == [(None, -65), (None, 0), (None, -120), (None, -70)]


def test_csv_columns_in_any_order_and_wrong_width(spark, cfg):
    got = _validate(spark, cfg, [
        ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55,s-1", CSV_HEADER),
        ("csv", '"-60","2016-02-01T10:00:00Z","00:11:22:33:44:55","s-1"', CSV_HEADER),
        ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55", CSV_HEADER),
        ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55,s-1,x", CSV_HEADER),
        ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55", "rssi,ts,mac"),
        ("csv", "-60,2016-02-01T10:00:00Z,,s-1", CSV_HEADER),  # empty mac: present, invalid
    ])
    assert [r[1] for r in got] == [None, None, "malformed", "malformed", "malformed", "invalid_mac"]


def test_split_lines_numbers_physical_lines_and_skips_blank_and_header(spark):
    files = spark.createDataFrame([
        ("/l/a.ndjson", '{"a":1}\n\n  \n{"b":2}\r\n'),
        ("/l/b.csv.gz", "\ufeffrssi,ts,mac,sensor_id\r\n1,2,3,4\n"),
        ("/l/c.JSONL", "x"),
    ], "source_file string, value string")
    got = ingest.split_lines(files).orderBy("source_file", "line_no")
    expected = spark.createDataFrame([
        ("/l/a.ndjson", "json", 1, '{"a":1}', None),
        ("/l/a.ndjson", "json", 4, '{"b":2}', None),
        ("/l/b.csv.gz", "csv", 2, "1,2,3,4", "rssi,ts,mac,sensor_id"),
        ("/l/c.JSONL", "json", 1, "x", None),
    ], "source_file string, format string, line_no long, raw string, csv_header string")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_client_id_is_hmac_sha256_of_the_normalised_mac(spark):
    key = b"k" * 70  # longer than a SHA-256 block: hashed first, as HMAC says
    df = spark.createDataFrame([("aa:bb:cc:dd:ee:ff",)], "mac string")
    got = df.select(ingest.client_id(F.col("mac"), key).alias("c")).first().c
    assert got == hmac.new(key, b"aa:bb:cc:dd:ee:ff", hashlib.sha256).hexdigest()
    got_short = df.select(ingest.client_id(F.col("mac"), b"dev").alias("c")).first().c
    assert got_short == hmac.new(b"dev", b"aa:bb:cc:dd:ee:ff", hashlib.sha256).hexdigest()


def test_randomised_flag_is_the_locally_administered_bit(spark, cfg):
    rows = [_json(mac="02:00:00:00:00:01"), _json(mac="00:00:00:00:00:01"), _json(mac="fe:00:00:00:00:01")]
    df = spark.createDataFrame([("f", f, i, r, None) for i, (f, r) in enumerate(rows)],
                               "source_file string, format string, line_no long, raw string, csv_header string")
    got = (df.transform(ingest.parse_fields)
           .transform(lambda d: ingest.validate(d, sensors_df(spark, cfg), NOW_MS))
           .orderBy("line_no").select("randomized").collect())
    assert [r.randomized for r in got] == [True, False, True]


def test_exact_duplicates_keep_the_highest_rssi(spark):
    ts = dt.datetime(2016, 2, 1, 10)
    d = dt.date(2016, 2, 1)
    df = spark.createDataFrame([
        (1, d, "s-1", "c1", ts, -70, "b.csv", 3),
        (1, d, "s-1", "c1", ts, -60, "a.csv", 9),
        (1, d, "s-1", "c1", ts, -60, "a.csv", 2),
        (1, d, "s-2", "c1", ts, -80, "a.csv", 4),  # another sensor: another probe
    ], "mall_id long, date date, sensor_id string, client_id string, ts timestamp, rssi int, "
       "source_file string, line_no long")
    got = ingest.dedupe_probes(df)
    expected = spark.createDataFrame([
        (1, d, "s-1", "c1", ts, -60, "a.csv", 2),
        (1, d, "s-2", "c1", ts, -80, "a.csv", 4),
    ], df.schema)
    assert_df_equality(got, expected, ignore_row_order=True)


def test_too_late_only_for_valid_records(spark):
    df = spark.createDataFrame([
        (None, dt.date(2016, 1, 1)), (None, dt.date(2016, 1, 2)), ("invalid_rssi", dt.date(2015, 1, 1)),
    ], "reason string, date date")
    got = [r.reason for r in ingest.flag_too_late(df, dt.date(2016, 1, 2)).collect()]
    assert got == ["too_late", None, "invalid_rssi"]
