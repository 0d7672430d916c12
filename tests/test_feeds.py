"""conf/feeds.yaml (jobs/feeds.py): the shape, its checks, and which feed claims a file.
Pure Python: no Spark."""

from __future__ import annotations

import textwrap

import pytest

from jobs.configfile import ConfigError
from jobs.feeds import glob_regex, load_feeds

EXAMPLE = """\
feeds:
  - path: "sniffer-a/**/*.pcap*"
    format: pcap
    sensor_id: lab-p1
  - path: "exports/*.csv*"
    format: csv
    delimiter: ";"
    columns: {mac: src, ts: datetime, rssi: rssi}
    sensor_id_column: sniffer
    timezone: Europe/Prague
    ts_format: "yyyy-MM-dd HH:mm:ss[.SSSSSS]"
"""


def write(tmp_path, text: str):
    (tmp_path / "feeds.yaml").write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.parametrize("pattern, path, matches", [
    ("sniffer-a/**/*.pcap*", "sniffer-a/a.pcap", True),          # ** spans no folder too
    ("sniffer-a/**/*.pcap*", "sniffer-a/2016/03/a.pcapng.gz", True),
    ("sniffer-a/**/*.pcap*", "sniffer-b/a.pcap", False),
    ("exports/*.csv*", "exports/a.csv", True),
    ("exports/*.csv*", "exports/a.csv.gz", True),
    ("exports/*.csv*", "exports/sub/a.csv", False),              # * stays in its folder
    ("exports/?.csv", "exports/ab.csv", False),
    ("exports/[!x]*.csv", "exports/x1.csv", False),
    ("exports/[!x]*.csv", "exports/y1.csv", True),
    ("**", "any/thing.bin", True),
    ("a+b/(1).csv", "a+b/(1).csv", True),                         # regex characters are literal
])
def test_globs(pattern, path, matches):
    assert bool(glob_regex(pattern).match(path)) is matches


def test_the_first_matching_feed_wins_and_others_are_read_as_today(tmp_path):
    feeds = load_feeds(write(tmp_path, EXAMPLE + """\
  - path: "**/*.pcap"
    format: pcapng
    sensor_id: other
"""))
    assert feeds.feed_for("sniffer-a/x/a.pcap").sensor_id == "lab-p1"
    assert feeds.feed_for("elsewhere/a.pcap").sensor_id == "other"
    csv = feeds.feed_for("exports/day.csv")
    assert (csv.delimiter, csv.columns, csv.sensor_id_column, csv.timezone) == (
        ";", {"mac": "src", "ts": "datetime", "rssi": "rssi"}, "sniffer", "Europe/Prague")
    assert feeds.feed_for("sensors/day.ndjson") is None


def test_no_file_is_no_feed(tmp_path):
    assert load_feeds(tmp_path).feeds == ()


@pytest.mark.parametrize("feed, message", [
    ("{path: a/*, format: csv, sensor_id: s, colour: red}", "feeds[0]: unknown key 'colour'"),
    ("{path: a/*, format: csv, sensor_id: s, timezone: Europe/Pragu}", "unknown time zone 'Europe/Pragu'"),
    ("{path: a/*, format: csv}", "exactly one of sensor_id"),
    ("{path: a/*, format: csv, sensor_id: s, sensor_id_column: c}", "exactly one of sensor_id"),
    ("{path: a/*, format: pcap, sensor_id: s, timezone: UTC}", "timezone: not for a pcap feed"),
    ("{path: a/*, format: xls, sensor_id: s}", "feeds[0].format"),
    ("{path: a/*, format: csv, sensor_id: s, columns: {mack: m}}", "feeds[0].columns"),
    ("{path: a/*, format: csv, sensor_id: s, delimiter: ';;'}", "feeds[0].delimiter"),
    ("{path: a/*, format: csv, sensor_id: s, delimiter: '\"'}", "not a quote or a line break"),
    ("{path: a/*, format: json, sensor_id: s}", "feeds[0].format"),
    ("{path: a/*, format: csv, sensor_id: s, ts_format: 'dd.MM.yyyy HH:mm'}",
     "reads no offset: give timezone"),
])
def test_bad_feeds_name_file_and_key(tmp_path, feed, message):
    with pytest.raises(ConfigError) as err:
        load_feeds(write(tmp_path, f"feeds:\n  - {feed}\n"))
    assert str(tmp_path / "feeds.yaml") in str(err.value) and message in str(err.value)


def test_a_ts_format_with_an_offset_needs_no_time_zone(tmp_path):
    feeds = load_feeds(write(tmp_path, "feeds:\n  - {path: a/*, format: csv, sensor_id: s, "
                                       "ts_format: \"yyyy-MM-dd HH:mm:ssXXX\"}\n"))
    assert feeds.feeds[0].timezone is None


def test_one_glob_two_meanings_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"feeds\[1\] and feeds\[0\] share the glob 'a/\*'"):
        load_feeds(write(tmp_path, """\
            feeds:
              - {path: a/*, format: csv, sensor_id: s1}
              - {path: a/*, format: csv, sensor_id: s2}
            """))
    # The same glob twice with the same settings is harmless.
    load_feeds(write(tmp_path, """\
        feeds:
          - {path: a/*, format: csv, sensor_id: s1}
          - {path: a/*, format: csv, sensor_id: s1}
        """))
