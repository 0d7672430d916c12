"""CSV feeds (jobs/feedcsv.py): the feed's delimiter and quoting, its column names, and
its wall-clock times, each rule as a case table with hand-written answers.

The instants are written as UTC text and turned into epoch ms by Python's datetime
here, independently of Spark's zone rules. Europe/Berlin in 2016: clocks went forward
at 2016-03-27 02:00 (CET +01:00 → CEST +02:00; 02:00–02:59 does not exist) and back at
2016-10-30 03:00 (02:00–02:59 happens twice, first at +02:00).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from jobs.feedcsv import feed_fields, instant_text, split_fields
from jobs.feeds import Feed
from tests.helpers import assert_cases


def ms(utc: str) -> str:
    """Epoch ms (as text) of an ISO UTC time written by hand."""
    t = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.timezone.utc)
    return str(int(t.timestamp() * 1000))


def test_fields_split_at_the_delimiter_outside_quotes(spark):
    cases = [
        ("plain", "a;b;c", ["a", "b", "c"]),
        ("trimmed", " a ; b ", ["a", "b"]),
        ("delimiter inside quotes", '"a;b";c', ["a;b", "c"]),
        ("doubled quote inside quotes", '"say ""hi""";x', ['say "hi"', "x"]),
        ("space around the quotes", ' "a" ;b', ["a", "b"]),
        ("empty field", "a;;b", ["a", "", "b"]),
        ("comma is data here", "1,5;x", ["1,5", "x"]),
    ]
    df = spark.createDataFrame(cases, "case string, line string, expected array<string>")
    assert_cases(df.withColumn("got", split_fields(F.col("line"), ";")))


BERLIN = Feed(path="x/*", format="csv", sensor_id="s", timezone="Europe/Berlin")
BERLIN_FORMAT = Feed(path="x/*", format="csv", sensor_id="s", timezone="Europe/Berlin",
                     ts_format="dd.MM.yyyy HH:mm:ss[.SSS]")
OFFSET_FORMAT = Feed(path="x/*", format="csv", sensor_id="s", ts_format="yyyy-MM-dd HH:mm:ssXXX")
NO_ZONE = Feed(path="x/*", format="csv", sensor_id="s")


def test_wall_clock_times_are_read_in_the_feed_time_zone(spark):
    cases = [
        ("winter", BERLIN, "2016-01-04 09:13:07", ms("2016-01-04T08:13:07")),
        ("T between date and time", BERLIN, "2016-01-04T09:13:07.250", ms("2016-01-04T08:13:07.250")),
        ("fraction below 1 ms is cut", BERLIN, "2016-01-04 09:13:07.2509", ms("2016-01-04T08:13:07.250")),
        ("local midnight is the day before in UTC", BERLIN, "2016-06-01 00:00:00", ms("2016-05-31T22:00:00")),
        ("last second before the gap", BERLIN, "2016-03-27 01:59:59", ms("2016-03-27T00:59:59")),
        ("in the DST gap: kept, invalid_ts later", BERLIN, "2016-03-27 02:30:00", "2016-03-27 02:30:00"),
        ("first time after the gap", BERLIN, "2016-03-27 03:00:00", ms("2016-03-27T01:00:00")),
        ("repeated hour: first occurrence", BERLIN, "2016-10-30 02:30:00", ms("2016-10-30T00:30:00")),
        ("after the repeated hour", BERLIN, "2016-10-30 03:00:00", ms("2016-10-30T02:00:00")),
        ("an offset is SPEC's instant", BERLIN, "2016-10-30T02:30:00+01:00", "2016-10-30T02:30:00+01:00"),
        ("epoch is SPEC's", BERLIN, "1458000000", "1458000000"),
        ("not a time: kept", BERLIN, "yesterday", "yesterday"),
        ("ts_format", BERLIN_FORMAT, "30.10.2016 02:30:00.250", ms("2016-10-30T00:30:00.250")),
        ("ts_format, no fraction", BERLIN_FORMAT, "04.01.2016 09:13:07", ms("2016-01-04T08:13:07")),
        ("ts_format, in the gap", BERLIN_FORMAT, "27.03.2016 02:30:00", "27.03.2016 02:30:00"),
        ("ts_format, another shape: kept", BERLIN_FORMAT, "2016-01-04 09:13:07", "2016-01-04 09:13:07"),
        ("ts_format with an offset", OFFSET_FORMAT, "2016-10-30 02:30:00+01:00", ms("2016-10-30T01:30:00")),
        ("no time zone: naive stays (invalid_ts)", NO_ZONE, "2016-01-04 09:13:07", "2016-01-04 09:13:07"),
    ]
    feeds = [BERLIN, BERLIN_FORMAT, OFFSET_FORMAT, NO_ZONE]
    df = spark.createDataFrame([(c, feeds.index(f), t, e) for c, f, t, e in cases],
                               "case string, feed int, text string, expected string")
    # One job: each feed's rule on its own rows.
    got = F.coalesce(*[F.when(F.col("feed") == i, instant_text(F.col("text"), f))
                       for i, f in enumerate(feeds)])
    assert_cases(df.withColumn("got", got))


def test_columns_are_found_by_the_feed_names_in_any_order(spark):
    feed = Feed(path="x/*", format="csv", delimiter=";", sensor_id_column="Sniffer",
                columns={"mac": "Source MAC", "ts": "When", "rssi": "Signal (dBm)"})
    header = 'Channel;"Signal (dBm)";When;Sniffer;"Source MAC"'
    want = ("s-1", "a4:5e:60:01:02:03", "1458000000000", "-67")
    cases = [
        ("renamed, reordered, extra column", header, '6;-67;1458000000000;s-1;"A4:5E:60:01:02:03"', None, False),
        ("quoted delimiter in the extra column", header, '"6;11";-67;1458000000000;s-1;a4:5e:60:01:02:03', want, False),
        ("a field too few", header, "6;-67;1458000000000;s-1", None, True),
        ("a field too many", header, "6;-67;1458000000000;s-1;a4:5e:60:01:02:03;x", None, True),
        ("the header lacks a mapped column", "Channel;Signal (dBm);When;Sniffer;MAC",
         "6;-67;1458000000000;s-1;a4:5e:60:01:02:03", None, True),
        ("empty field is present, not missing", header, "6;-67;1458000000000;s-1;", ("s-1", "", "1458000000000", "-67"), False),
    ]
    rows = [(c, "f.csv", i + 2, line, h) for i, (c, h, line, _, _) in enumerate(cases)]
    lines = spark.createDataFrame(rows, "case string, source_file string, line_no long, raw string, csv_header string")
    got = lines.transform(feed_fields, feed).orderBy("line_no").collect()
    for r, (case, _, _, fields, malformed) in zip(got, cases):
        assert r.malformed is malformed, case
        assert r.format == "csv", case
        if fields is not None:
            assert (r.sensor_id_text, r.mac_text, r.ts_text, r.rssi_text) == fields, case
    first = got[0]
    assert (first.sensor_id_text, first.mac_text, first.rssi_text) == ("s-1", "A4:5E:60:01:02:03", "-67")


def test_a_fixed_sensor_needs_no_column(spark):
    feed = Feed(path="x/*", format="csv", sensor_id="lab-1", timezone="Europe/Berlin")
    lines = spark.createDataFrame([("f.csv", 2, "a4:5e:60:01:02:03,2016-01-04 09:13:07,-70", "mac,ts,rssi")],
                                  "source_file string, line_no long, raw string, csv_header string")
    r = lines.transform(feed_fields, feed).first()
    assert (r.sensor_id_text, r.mac_text, r.ts_text, r.rssi_text, r.malformed) == \
        ("lab-1", "a4:5e:60:01:02:03", ms("2016-01-04T08:13:07"), "-70", False)
