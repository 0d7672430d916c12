"""Feeds through the ingest (jobs/formats.py, jobs/stages.py): a landing of SPEC JSON
lines, a pcap, a gzip'd pcapng, a vendor CSV and files of no known format. Every record
takes the one validation path; what lands in bronze and in the quarantine is written
out by hand below, also after files are delivered again under their names."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import functions as F

from jobs import stages
from jobs.config import hmac_key, load_config
from jobs.spec import BRONZE_PROBES, QUARANTINE
from jobs.summary import Summary
from jobs.tables import Lakehouse
from tests.helpers import write_conf
from tests.test_feedcsv import ms
from tests.test_pcap import BEACON, DATA, epb, idb, pcap, probe, radiotap, rt, shb

NOW = dt.datetime(2016, 11, 15, tzinfo=dt.timezone.utc)

FEEDS = """\
feeds:
  - {path: "sniffer/**/*.pcapng*", format: pcapng, sensor_id: s-3}
  - {path: "sniffer/**/*.pcap*", format: pcap, sensor_id: s-2}      # *.pcapng* matched first
  - {path: "berlin/*", format: pcap, sensor_id: b-1}
  - path: "exports/*.csv"
    format: csv
    delimiter: ";"
    columns: {mac: "Source MAC", ts: "Local time", rssi: "Signal (dBm)"}
    sensor_id_column: Sniffer
    timezone: Europe/Berlin
"""

# The vendor export: Berlin wall clock; columns renamed, reordered, one extra, quoted.
EXPORT = "\n".join([
    '"Signal (dBm)";Channel;"Local time";Sniffer;"Source MAC"',
    '-61;"6;11";2016-10-30 01:59:59.500;b-1;"A4:5E:60:00:00:0A"',   # 2: CEST, +02:00
    "-62;6;2016-10-30 02:30:00;b-1;a4:5e:60:00:00:0a",               # 3: repeated: first, +02:00
    "-63;6;2016-10-30 03:00:00;b-1;a4:5e:60:00:00:0a",               # 4: CET, +01:00
    "-64;6;2016-03-27 02:30:00;b-1;a4:5e:60:00:00:0a",               # 5: DST gap: invalid_ts
    "-65;6;2016-03-27 03:00:00;b-1;a4:5e:60:00:00:0a",               # 6: CEST
    "-66;6;2016-10-30 12:00:00;b-9;a4:5e:60:00:00:0a",               # 7: unknown_sensor
    "-67;6;2016-10-30 12:00:00;b-1",                                 # 8: a field short: malformed
    "",
]) + "\n"


def landing_files() -> dict[str, bytes]:
    capture = pcap([((1478476800, 250_000), rt(probe("a4:5e:60:00:00:02"), -70)),   # 2016-11-07T00:00:00.250Z
                    ((1478476801, 0), rt(BEACON)),
                    ((1478476802, 0), rt(DATA)),
                    ((1478476803, 999_999), rt(probe("a4:5e:60:00:00:02"), -71)),   # ms cut: .999
                    ((1478476804, 0), radiotap(None) + probe("a4:5e:60:00:00:03"))])  # no signal
    # Berlin's local midnight (22:00Z, CEST) and the end of summer time (01:00Z) in one capture.
    berlin = pcap([((1477778399, 999_000), rt(probe("a4:5e:60:00:00:0c"), -50)),   # 2016-10-29T21:59:59.999Z
                   ((1477778400, 0), rt(probe("a4:5e:60:00:00:0c"), -51)),         # 2016-10-29T22:00:00Z
                   ((1477789199, 0), rt(probe("a4:5e:60:00:00:0c"), -52)),         # 2016-10-30T00:59:59Z
                   ((1477789200, 0), rt(probe("a4:5e:60:00:00:0c"), -53))],        # 2016-10-30T01:00:00Z
                  ns=False)
    capture_ng = shb() + idb() + epb(0, 1478476805_000_000, rt(probe("a4:5e:60:00:00:04"), -72))
    return {
        "day.ndjson": json.dumps({"sensor_id": "s-1", "mac": "a4:5e:60:00:00:01",
                                  "ts": "2016-11-07T03:00:00+03:00", "rssi": -60}).encode() + b"\n",
        "sniffer/2016-11-07/a.pcap": capture,
        "sniffer/2016-11-07/b.pcapng.gz": gzip.compress(capture_ng),
        "berlin/capture-2016-10-30": berlin,
        "sniffer/broken.pcap": b"\xd4\xc3\xb2\xa1" + b"\x00" * 7,
        "exports/alexa.csv": EXPORT.encode(),
        # An older export whose MAC column has another name: its line is malformed.
        "exports/old.csv": b"Sniffer;MAC;Local time;Signal (dBm)\nb-1;a4:5e:60:00:00:0b;2016-10-30 12:00:00;-60\n",
        "notes.txt": b"not probes",
        "sniffer/readme.md": b"# the sniffer's notes",
    }


def ingest(spark, root: Path, too_late_before=None):
    landing = root / "landing"
    for rel, data in landing_files().items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_bytes(data)
    conf = write_conf(root / "conf")
    (conf / "feeds.yaml").write_text(FEEDS)
    cfg = load_config(conf).with_storage(str(landing), str(root / "lake"))
    summary = Summary("test", "feeds-run")
    lake = Lakehouse(spark, str(root / "lake"))
    stages.ingest_new_files(spark, lake, cfg, summary, hmac_key()[0], NOW, too_late_before)
    return cfg, lake, summary


def rel(uri: str) -> str:
    return unquote(urlparse(uri).path).split("/landing/", 1)[1]


def bronze_dates(lake, sensor):
    return {(r.ts_ms, str(r.date)) for r in lake.read(BRONZE_PROBES).where(F.col("sensor_id") == sensor)
            .select(F.unix_millis("ts").alias("ts_ms"), "date").collect()}


def bronze(lake):
    return {(r.sensor_id, r.ts_ms, r.rssi) for r in lake.read(BRONZE_PROBES)
            .select("sensor_id", F.unix_millis("ts").alias("ts_ms"), "rssi").collect()}


def quarantine(lake):
    return {(rel(r.source_file), r.line_no, r.reason) for r in lake.read(QUARANTINE).collect()}


def test_every_format_joins_the_one_validation_path(spark, tmp_path):
    # A nightly's cut-off: line 6 of the export (2016-03-27 in Berlin) is too late.
    cfg, lake, summary = ingest(spark, tmp_path, too_late_before=dt.date(2016, 10, 30))
    assert bronze(lake) == {
        ("s-1", int(ms("2016-11-07T00:00:00")), -60),
        ("s-2", int(ms("2016-11-07T00:00:00.250")), -70),
        ("s-2", int(ms("2016-11-07T00:00:03.999")), -71),
        ("s-3", int(ms("2016-11-07T00:00:05")), -72),
        ("b-1", int(ms("2016-10-29T23:59:59.500")), -61),   # local date 2016-10-30
        ("b-1", int(ms("2016-10-30T00:30:00")), -62),
        ("b-1", int(ms("2016-10-30T02:00:00")), -63),
        ("b-1", int(ms("2016-10-29T22:00:00")), -51),
        ("b-1", int(ms("2016-10-30T00:59:59")), -52),
        ("b-1", int(ms("2016-10-30T01:00:00")), -53),
    }
    # The local date of a capture's frame: Berlin's midnight is 22:00Z in summer time.
    assert {d for t, d in bronze_dates(lake, "b-1") if t >= int(ms("2016-10-29T22:00:00"))} == {"2016-10-30"}
    assert quarantine(lake) == {
        ("berlin/capture-2016-10-30", 1, "too_late"),       # 2016-10-29 in Berlin
        ("sniffer/2016-11-07/a.pcap", 5, "malformed"),      # frame 5: no signal
        ("sniffer/broken.pcap", 0, "corrupt_file"),
        ("exports/alexa.csv", 5, "invalid_ts"),
        ("exports/alexa.csv", 6, "too_late"),
        ("exports/alexa.csv", 7, "unknown_sensor"),
        ("exports/alexa.csv", 8, "malformed"),
        ("exports/old.csv", 2, "malformed"),
    }
    assert any(n.endswith("exports/old.csv: the header has no column 'Source MAC' (mac) that "
                          "feeds.yaml feeds[3] (exports/*.csv) maps: its lines are quarantined "
                          "as malformed") for n in summary.notes), summary.notes
    assert summary.files_skipped == ["notes.txt", "sniffer/readme.md"]
    assert (summary.files_seen, summary.records_read, summary.records_valid) == (7, 17, 10)
    assert (summary.frames_read, summary.frames_probes, summary.frames_other, summary.frames_unusable) == \
        (10, 7, 2, 1)
    assert summary.rejected == {"malformed": 3, "invalid_ts": 1, "too_late": 2, "unknown_sensor": 1,
                                "corrupt_file": 1}
    assert "skipped            2 files of unknown format, e.g. notes.txt, sniffer/readme.md" in summary.render()
    assert "capture frames     10: 7 probe requests, 2 other frames skipped, 1 unusable" in summary.render()

    # A backfill of those days replays the held line, read again by its feed, and the
    # held frame, from the JSON record it is kept as.
    replay = Summary("test", "replay-run")
    stages.replay_quarantine(spark, lake, cfg, replay, hmac_key()[0], NOW,
                             {2: [(dt.date(2016, 3, 27), dt.date(2016, 3, 27)),
                                  (dt.date(2016, 10, 29), dt.date(2016, 10, 29))]})
    assert replay.replayed_from_quarantine == 2
    assert {("b-1", int(ms("2016-03-27T01:00:00")), -65),
            ("b-1", int(ms("2016-10-29T21:59:59.999")), -50)} <= bronze(lake)
    assert (int(ms("2016-10-29T21:59:59.999")), "2016-10-29") in bronze_dates(lake, "b-1")
    assert not {q for q in quarantine(lake) if q[2] == "too_late"}


def test_files_delivered_again_under_their_names_update_the_quarantine(spark, tmp_path):
    cfg, lake, _ = ingest(spark, tmp_path)
    landing = tmp_path / "landing"
    # The broken capture arrives whole; the old export again, with a second line.
    (landing / "sniffer/broken.pcap").write_bytes(
        pcap([((1478476810, 0), rt(probe("a4:5e:60:00:00:05"), -73))]))       # 2016-11-07T00:00:10Z
    (landing / "exports/old.csv").write_bytes(
        b"Sniffer;MAC;Local time;Signal (dBm)\n"
        b"b-1;a4:5e:60:00:00:0b;2016-10-30 12:00:00;-60\nb-1;a4:5e:60:00:00:0b;2016-10-30 12:00:01;-61\n")
    again = Summary("test", "again-run")
    stages.ingest_new_files(spark, lake, cfg, again, hmac_key()[0], NOW, None)
    assert again.files_new == 2
    # A list, not a set: a line quarantined twice would show.
    assert sorted((rel(r.source_file), r.line_no, r.reason) for r in lake.read(QUARANTINE).collect()) == [
        ("exports/alexa.csv", 5, "invalid_ts"),
        ("exports/alexa.csv", 7, "unknown_sensor"),
        ("exports/alexa.csv", 8, "malformed"),
        ("exports/old.csv", 2, "malformed"),
        ("exports/old.csv", 3, "malformed"),
        ("sniffer/2016-11-07/a.pcap", 5, "malformed"),
    ]
    assert ("s-2", int(ms("2016-11-07T00:00:10")), -73) in bronze(lake)
