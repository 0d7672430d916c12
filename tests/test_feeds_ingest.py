"""Capture feeds through the pipeline (issue 14, work in progress): the same records as
SPEC JSON lines and as a pcap capture give the same gold; unusable frames are
quarantined by frame number; files of unknown format are counted."""

from __future__ import annotations

import datetime as dt
import json

from chispa import assert_df_equality

from jobs import run
from jobs.config import load_config
from jobs.tables import Lakehouse
from tests.helpers import write_conf
from tests.test_pcap import BEACON, pcap, probe, radiotap, rt

NOW = dt.datetime(2016, 3, 1, tzinfo=dt.timezone.utc)
DAY = dt.date(2016, 2, 2)
# (mac, epoch ms, rssi) of sensor s-1 (zone 111 of mall 1, Moscow) on 2016-02-02.
RECORDS = [("a4:5e:60:00:00:01", 1454400000000 + i * 60_000, -60 - i % 20) for i in range(40)] + \
          [("a4:5e:60:00:00:02", 1454403600000 + i * 120_000, -75) for i in range(10)]


def world(root, as_capture: bool):
    conf = write_conf(root / "conf")
    landing = root / "landing"
    landing.mkdir(parents=True)
    if as_capture:
        (conf / "feeds.yaml").write_text(
            'feeds:\n  - {path: "sniffer/**/*.pcap*", format: pcap, sensor_id: s-1}\n')
        frames = [((ms // 1000, ms % 1000 * 1000 + 7), rt(probe(mac), rssi)) for mac, ms, rssi in RECORDS]
        frames.insert(3, ((1454400000, 0), rt(BEACON)))
        frames.append(((1454400000, 0), radiotap(None) + probe("a4:5e:60:00:00:09")))
        (landing / "sniffer" / "2016").mkdir(parents=True)
        (landing / "sniffer" / "2016" / "day.pcap").write_bytes(pcap(frames))
        (landing / "notes.txt").write_text("not probes")
    else:
        (landing / "day.ndjson").write_text("".join(
            json.dumps({"sensor_id": "s-1", "mac": mac, "ts": ms, "rssi": rssi}) + "\n"
            for mac, ms, rssi in RECORDS))
    return load_config(conf).with_storage(str(landing), str(root / "lake"))


def test_a_capture_gives_the_gold_of_the_same_records_as_json(spark, tmp_path):
    gold = {}
    for as_capture in (False, True):
        cfg = world(tmp_path / str(as_capture), as_capture)
        summary = run.backfill(spark, cfg, DAY, DAY, now=NOW)
        gold[as_capture] = Lakehouse(spark, cfg.storage.lakehouse).read("gold/group_datetime")
        if as_capture:
            assert summary.files_skipped == ["notes.txt"]
            assert summary.records_read == len(RECORDS) + 1 and summary.rejected == {"malformed": 1}
            q = Lakehouse(spark, cfg.storage.lakehouse).read("bronze/quarantine").collect()
            assert [(r.line_no, r.reason) for r in q] == [(len(RECORDS) + 2, "malformed")]
            assert "without a radiotap antenna signal" in q[0].raw
    assert gold[True].count() > 0
    assert_df_equality(gold[False], gold[True], ignore_row_order=True)
