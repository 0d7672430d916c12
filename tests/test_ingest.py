"""SPEC §2: parsing, validation reasons, normalisation, duplicates, pseudonymisation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import ingest
from jobs.stages import sensors_df
from tests.helpers import assert_cases

NOW = dt.datetime(2016, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
CSV_HEADER = "rssi,ts,mac,sensor_id"
LINE = "case string, source_file string, format string, line_no long, raw string, csv_header string"
#: A valid record's instant (epoch ms) and RSSI; null for a rejected one (not compared).
VALID_TS_MS = "IF(reason IS NULL, ts_ms, NULL) AS ts_ms"
VALID_RSSI = "IF(reason IS NULL, rssi, NULL) AS rssi"


def _validated(spark, cfg, expected: str, got: list, cases: list):
    """One Spark job for a case table of SPEC §2's checks.

    :param expected: DDL of the expected values, e.g. ``"reason string, mac string"``.
    :param got: the matching columns of ``ingest.validate``'s output, as SQL expressions.
    :param cases: ``(label, line, *expected values)``; ``line`` is ``(format, raw[, csv_header])``.
    :return: ``(case, got, expected)``, ``got`` and ``expected`` structs, for :func:`assert_cases`.
    """
    names = [field.split()[0] for field in expected.split(",")]
    rows = [(label, "f", line[0], i + 1, line[1], line[2] if len(line) > 2 else None, *want)
            for i, (label, line, *want) in enumerate(cases)]
    schema = LINE + "".join(f", expected_{field.strip()}" for field in expected.split(","))
    out = (spark.createDataFrame(rows, schema).transform(ingest.parse_fields)
           .transform(lambda d: ingest.validate(d, sensors_df(spark, cfg), NOW_MS)))
    return out.select("case", F.struct(*[F.expr(g) for g in got]).alias("got"),
                      F.struct(*[F.col(f"expected_{n}").alias(n) for n in names]).alias("expected"))


def _json(sensor="s-1", mac="00:11:22:33:44:55", ts="2016-02-01T10:00:00Z", rssi=-60, raw=None):
    import json
    return ("json", raw if raw is not None else json.dumps({"sensor_id": sensor, "mac": mac, "ts": ts, "rssi": rssi}))


def test_each_reason_and_the_first_failure_wins(spark, cfg):
    assert_cases(_validated(spark, cfg, "reason string", ["reason"], [
        ("truncated JSON", _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":"2016-02-01T10:00:00Z"'),
         "malformed"),
        ("missing ts", _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","rssi":-60}'), "malformed"),
        ("null is missing", _json(raw='{"sensor_id":"s-1","mac":null,"ts":1454320800,"rssi":-60}'), "malformed"),
        ("not an object", _json(raw='[1, 2, 3]'), "malformed"),
        ("NaN is not JSON", _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":1454320800,"rssi":NaN}'),
         "malformed"),
        ("a boolean is not a string or number",
         _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":1454320800,"rssi":true}'), "malformed"),
        ("multicast MAC", _json(mac="01:11:22:33:44:55"), "invalid_mac"),
        ("mixed separators", _json(mac="00:11:22-33:44:55"), "invalid_mac"),
        ("rssi above 0", _json(rssi=5), "invalid_rssi"),
        ("rssi below -120", _json(rssi=-121), "invalid_rssi"),
        ("rssi not an integer", _json(rssi="-65.5"), "invalid_rssi"),
        ("a key given twice: the last one counts",
         _json(raw='{"sensor_id":"s-1","mac":"00:11:22:33:44:55","ts":1454320800,"rssi":-60,"rssi":5}'),
         "invalid_rssi"),
        ("ISO without offset", _json(ts="2016-02-01T10:00:00"), "invalid_ts"),
        ("unknown sensor", _json(sensor="nope"), "unknown_sensor"),
        # The first failing check of SPEC's list wins.
        ("missing field before a bad MAC",
         _json(raw='{"sensor_id":"s-1","mac":"01:11:22:33:44:55","rssi":-60}'), "malformed"),
        ("MAC before rssi, ts and sensor", _json(mac="01:11:22:33:44:55", rssi=99, ts="bad", sensor="nope"),
         "invalid_mac"),
        ("rssi before ts and sensor", _json(rssi=99, ts="bad", sensor="nope"), "invalid_rssi"),
        ("ts before sensor", _json(ts="bad", sensor="nope"), "invalid_ts"),
    ]))


def test_mac_spellings_normalise_to_lower_colon_form(spark, cfg):
    assert_cases(_validated(spark, cfg, "reason string, mac string", ["reason", "mac"], [
        (spelling, _json(mac=spelling), None, "aa:bb:cc:dd:ee:f0")
        for spelling in ["AA:BB:CC:DD:EE:F0", "aa-bb-cc-dd-ee-f0", "aabbccddeef0", "aabb.ccdd.eef0",
                         "Aa:bB:cc:DD:ee:F0"]]))


def test_timestamp_forms_to_the_millisecond(spark, cfg):
    base = 1454320800000  # 2016-02-01T10:00:00Z
    assert_cases(_validated(spark, cfg, "reason string, ts_ms long", ["reason", VALID_TS_MS], [
        ("ISO Z", _json(ts="2016-02-01T10:00:00Z"), None, base),
        ("ISO +03:00", _json(ts="2016-02-01T13:00:00+03:00"), None, base),
        ("ISO -04:30", _json(ts="2016-02-01T05:30:00-04:30"), None, base),
        ("ISO with ms", _json(ts="2016-02-01T10:00:00.123Z"), None, base + 123),
        ("ISO below ms: truncated", _json(ts="2016-02-01T10:00:00.1239Z"), None, base + 123),
        ("epoch seconds", _json(ts=1454320800), None, base),
        ("epoch ms", _json(ts=1454320800123), None, base + 123),
        ("a number as a string", _json(ts="1454320800"), None, base),
        ("< 10^11: seconds, year 5138", _json(ts=99_999_999_999), "invalid_ts", None),
        (">= 10^11: milliseconds, 1973", _json(ts=100_000_000_000), "invalid_ts", None),
        ("no such day", _json(ts="2016-02-30T10:00:00Z"), "invalid_ts", None),
    ]))


def test_the_valid_time_range_is_2010_to_ingest_time_plus_one_day(spark, cfg):
    assert_cases(_validated(spark, cfg, "reason string", ["reason"], [  # NOW is 2016-03-01T12:00:00Z
        ("1 ms before 2010", _json(ts="2009-12-31T23:59:59.999Z"), "invalid_ts"),
        ("1 s before 2010", _json(ts="2009-12-31T23:59:59Z"), "invalid_ts"),
        ("2010-01-01 exactly", _json(ts="2010-01-01T00:00:00Z"), None),
        ("now + 1 day exactly", _json(ts="2016-03-02T12:00:00Z"), None),
        ("now + 1 day + 1 ms", _json(ts="2016-03-02T12:00:00.001Z"), "invalid_ts"),
    ]))


def test_rssi_as_string_and_range_ends(spark, cfg):
    assert_cases(_validated(spark, cfg, "reason string, rssi int", ["reason", VALID_RSSI], [
        ("a string", _json(rssi="-65"), None, -65),
        ("0, the top", _json(rssi=0), None, 0),
        ("-120, the bottom", _json(rssi=-120), None, -120),
        ("white space around", _json(rssi=" -70 "), None, -70),
        ("1, above the top", _json(rssi=1), "invalid_rssi", None),
        ("-121, below the bottom", _json(rssi=-121), "invalid_rssi", None),
    ]))


def test_csv_columns_in_any_order_and_wrong_width(spark, cfg):
    assert_cases(_validated(spark, cfg, "reason string", ["reason"], [
        ("columns in another order", ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55,s-1", CSV_HEADER), None),
        ("quoted values", ("csv", '"-60","2016-02-01T10:00:00Z","00:11:22:33:44:55","s-1"', CSV_HEADER), None),
        ("a value short", ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55", CSV_HEADER), "malformed"),
        ("a value more", ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55,s-1,x", CSV_HEADER), "malformed"),
        ("no sensor_id column", ("csv", "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55", "rssi,ts,mac"),
         "malformed"),
        ("empty mac: present, invalid", ("csv", "-60,2016-02-01T10:00:00Z,,s-1", CSV_HEADER), "invalid_mac"),
    ]))


def test_split_lines_numbers_physical_lines_and_skips_blank_and_header(spark):
    files = spark.createDataFrame([
        ("/l/a.ndjson", '{"a":1}\n\n  \n{"b":2}\r\n'),
        ("/l/b.csv.gz", "\ufeffrssi,ts,mac,sensor_id\r\n1,2,3,4\n"),
        ("/l/c.JSONL", "x"),
    ], "source_file string, value string")
    got = ingest.split_lines(files).orderBy("source_file", "line_no")
    expected = spark.createDataFrame([
        ("/l/a.ndjson", "json", 1, '{"a":1}', None, None),
        ("/l/a.ndjson", "json", 4, '{"b":2}', None, None),
        ("/l/b.csv.gz", "csv", 2, "1,2,3,4", "rssi,ts,mac,sensor_id", ["rssi", "ts", "mac", "sensor_id"]),
        ("/l/c.JSONL", "json", 1, "x", None, None),
    ], "source_file string, format string, line_no long, raw string, csv_header string, "
       "csv_names array<string>")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_client_id_is_hmac_sha256_of_the_normalised_mac(spark):
    df = spark.createDataFrame([("aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF")], "mac string, mac_text string")
    long_key = b"k" * 70  # longer than a SHA-256 block: hashed first, as HMAC says
    for key in (long_key, b"dev"):
        got = ingest.pseudonymise(df, key)
        assert got.columns == ["client_id"]  # the MAC, its text and the pads are gone
        assert got.first().client_id == hmac.new(key, b"aa:bb:cc:dd:ee:ff", hashlib.sha256).hexdigest()


def test_the_key_is_in_no_query_plan(spark):
    # Spark's UI, event logs and History Server show the plans: a pad there is the key.
    key = b"a-key-nobody-may-read-in-a-plan"
    df = spark.createDataFrame([("aa:bb:cc:dd:ee:ff", "x")], "mac string, mac_text string")
    out = ingest.pseudonymise(df, key)
    out.collect()
    qe = out._jdf.queryExecution()
    plans = (qe.toString() + qe.executedPlan().toString()).lower()
    ipad, opad = ingest.hmac_pads(key)
    for secret in (ipad.hex(), opad.hex(), key.hex(), key.decode()):
        assert secret not in plans


def test_randomised_flag_is_the_locally_administered_bit(spark, cfg):
    assert_cases(_validated(spark, cfg, "randomized boolean", ["randomized"], [
        ("02: the bit set", _json(mac="02:00:00:00:00:01"), True),
        ("00: the bit clear", _json(mac="00:00:00:00:00:01"), False),
        ("fe: the bit set", _json(mac="fe:00:00:00:00:01"), True),
        ("dotted, the bit set", _json(mac="0a00.0000.0001"), True),
        ("not a MAC: no flag", _json(mac="02:00:00:00:00"), None),
    ]))


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
