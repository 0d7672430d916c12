"""Config change and schema evolution (issue 5): adding a mall, a zone or a sensor to
objects.yaml and backfilling works without touching the other malls' rows; a removed
sensor keeps its history; a table written before a column was added gains it.

One hand-made landing, three backfills on one lakehouse:

1. config v1 — mall 1 with zones 111 (s-1) and 112 (s-3, s-5). Probes of s-4 and b-1
   (not configured yet) are quarantined as ``unknown_sensor``. Day 2's file arrives
   only after step 1. The quarantine table
   exists already in the layout of the first release (no ``sensor_id`` column).
2. config v2 — zone 113 (s-4) added to mall 1, mall 2 (b-1) added, s-3 removed;
   ``backfill --malls 2``: mall 2 appears, and no file of mall 1 changes.
3. ``backfill`` of both malls: s-4's earlier records come out of the quarantine into
   zone 113; s-3's probes of 03-01 still count (its history), its new ones do not.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from deltalake import DeltaTable as RsDeltaTable
from pyspark.sql import types as T

from jobs import run
from jobs.config import load_config
from jobs.tables import (BRONZE_PROBES, GROUP_DATETIME, QUARANTINE, SCHEMAS, SENSORS, SESSIONS,
                         Lakehouse)
from tests.helpers import write_conf

NOW = dt.datetime(2016, 3, 10, tzinfo=dt.timezone.utc)
D1, D2 = dt.date(2016, 3, 1), dt.date(2016, 3, 2)

MALL_1 = """\
  - id: 1
    name: Mega
    timezone: Europe/Moscow
    floors:
      - id: 11
        name: Ground floor
        zones:
          - id: 111
            name: Food court
            sensors:
              - id: s-1
          - id: 112
            name: Shops
            sensors:
{s3}              - id: s-5
{zone113}"""
ZONE_113 = """\
          - id: 113
            name: Kiosks
            sensors:
              - id: s-4
"""
MALL_2 = """\
  - id: 2
    name: Alexa
    timezone: Europe/Berlin
    floors:
      - id: 21
        name: Ground floor
        zones:
          - id: 211
            name: Entrance
            sensors:
              - id: b-1
"""
V1 = "malls:\n" + MALL_1.format(s3="              - id: s-3\n", zone113="")
V2 = "malls:\n" + MALL_1.format(s3="", zone113=ZONE_113) + MALL_2

A, B, C, D = ("00:00:00:00:00:0a", "00:00:00:00:00:0b", "00:00:00:00:00:0c", "00:00:00:00:00:0d")
PROBES = [
    # (sensor, mac, ts, rssi); mall 1 is in Moscow (+03:00), mall 2 in Berlin (+01:00).
    ("s-1", A, "2016-03-01T10:00:00+03:00", -50),
    ("s-1", A, "2016-03-01T10:10:00+03:00", -50),
    ("s-3", B, "2016-03-01T11:00:00+03:00", -50),
    ("s-3", B, "2016-03-01T11:20:00+03:00", -50),   # 20 min gap: a second session
    ("s-4", C, "2016-03-01T12:00:00+03:00", -50),
    ("s-4", C, "2016-03-01T12:01:00+03:00", -50),
    ("b-1", D, "2016-03-01T10:00:00+01:00", -50),
    ("b-1", D, "2016-03-01T10:10:00+01:00", -50),
    ("s-1", A, "2016-03-02T10:00:00+03:00", -50),
    ("s-3", B, "2016-03-02T10:00:00+03:00", -50),   # after s-3 left the config (v2)
]
#: The quarantine as the first release wrote it: no sensor_id column.
OLD_QUARANTINE = T.StructType([f for f in SCHEMAS[QUARANTINE].fields if f.name != "sensor_id"])


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("config-change")
    landing = root / "landing"
    landing.mkdir()
    (landing / "day1.ndjson").write_text("".join(
        json.dumps({"sensor_id": s, "mac": m, "ts": t, "rssi": r}) + "\n" for s, m, t, r in PROBES[:8]))
    lake = root / "lake"
    old = spark.createDataFrame([("file:/old/file.csv", 7, "x,y", "a,b", "malformed", None, None, "old-run")],
                                OLD_QUARANTINE)
    old.write.format("delta").partitionBy("reason").save(str(lake / QUARANTINE))
    cfg1 = load_config(write_conf(root / "v1", V1)).with_storage(str(landing), str(lake))
    cfg2 = load_config(write_conf(root / "v2", V2)).with_storage(str(landing), str(lake))
    states = {}

    def snapshot(name: str) -> None:
        lh = Lakehouse(spark, str(lake))
        states[name] = {
            "gold_files_mall_1": _files(lake / GROUP_DATETIME, "mall_id", "1"),
            "session_files_mall_1": _files(lake / SESSIONS, "mall_id", "1"),
            "quarantine": sorted((r.reason, r.sensor_id, r.line_no, Path(r.source_file).name)
                                 for r in lh.read(QUARANTINE).collect()),
            "sessions": sorted((r.object_id, str(r.date), r.client_id[:6], r.duration_ms)
                               for r in lh.read(SESSIONS).collect()),
            "mall_2_gold": sorted(tuple(r) for r in lh.read(GROUP_DATETIME).where("mall_id = 2").collect()),
        }

    run.backfill(spark, cfg1, D1, D2, now=NOW)
    snapshot("v1")
    # Day 2's file arrives after s-3 has left the config.
    (landing / "day2.ndjson").write_text("".join(
        json.dumps({"sensor_id": s, "mac": m, "ts": t, "rssi": r}) + "\n" for s, m, t, r in PROBES[8:]))
    run.backfill(spark, cfg2, D1, D2, malls=[2], now=NOW)
    snapshot("v2 mall 2")
    run.backfill(spark, cfg2, D1, D2, now=NOW)
    snapshot("v2 all")
    return lake, states


def _files(table: Path, column: str, value: str) -> list[str]:
    return sorted(f for f in RsDeltaTable(str(table)).file_uris() if f"/{column}={value}/" in f)


def _client(mac: str) -> str:
    import hashlib
    import hmac
    from jobs.config import hmac_key
    return hmac.new(hmac_key()[0], mac.encode(), hashlib.sha256).hexdigest()[:6]


def test_unconfigured_sensors_wait_in_the_quarantine(world):
    _, states = world
    q = states["v1"]["quarantine"]
    assert q == [("malformed", None, 7, "file.csv"),
                 ("unknown_sensor", "b-1", 7, "day1.ndjson"), ("unknown_sensor", "b-1", 8, "day1.ndjson"),
                 ("unknown_sensor", "s-4", 5, "day1.ndjson"), ("unknown_sensor", "s-4", 6, "day1.ndjson")]


def test_an_older_table_gains_the_new_column(spark, world):
    lake, _ = world
    q = Lakehouse(spark, str(lake)).read(QUARANTINE)
    assert "sensor_id" in q.columns
    assert q.where("run_id = 'old-run'").select("sensor_id").collect()[0][0] is None


def test_adding_a_mall_and_backfilling_it_touches_no_file_of_the_other_mall(world):
    _, states = world
    before, after = states["v1"], states["v2 mall 2"]
    assert after["gold_files_mall_1"] == before["gold_files_mall_1"] != []
    assert after["session_files_mall_1"] == before["session_files_mall_1"] != []
    # Mall 2's records came out of the quarantine into one 10-minute session at each
    # of its objects (zone 211, floor 21, mall 2); s-4's wait for a backfill of mall 1.
    assert [s for s in after["sessions"] if s[0] in (2, 21, 211)] == [
        (2, "2016-03-01", _client(D), 600_000), (21, "2016-03-01", _client(D), 600_000),
        (211, "2016-03-01", _client(D), 600_000)]
    assert [q[:2] for q in after["quarantine"]] == [
        ("malformed", None), ("unknown_sensor", "s-3"), ("unknown_sensor", "s-4"), ("unknown_sensor", "s-4")]
    assert after["mall_2_gold"] and not before["mall_2_gold"]


def test_an_added_zone_and_sensor_get_their_earlier_records(world):
    _, states = world
    after = states["v2 all"]
    assert [s for s in after["sessions"] if s[0] == 113] == [(113, "2016-03-01", _client(C), 60_000)]
    assert [q[:2] for q in after["quarantine"]] == [("malformed", None), ("unknown_sensor", "s-3")]


def test_a_removed_sensor_keeps_its_history(spark, world):
    lake, states = world
    after = states["v2 all"]
    b = _client(B)
    # s-3's two sessions of 03-01 in zone 112 (and at floor 11 and mall 1) stay ...
    assert [s for s in after["sessions"] if s[0] == 112] == [(112, "2016-03-01", b, 0), (112, "2016-03-01", b, 0)]
    assert [s for s in states["v1"]["sessions"] if s[0] == 112] == [s for s in after["sessions"] if s[0] == 112]
    # ... its record of 03-02, sent after it left the config, is unknown_sensor.
    assert ("unknown_sensor", "s-3", 2, "day2.ndjson") in after["quarantine"]
    lh = Lakehouse(spark, str(lake))
    sensors = {r.sensor_id: (r.zone_id, r.retired_on) for r in lh.read(SENSORS).collect()}
    assert sensors == {"s-1": (111, None), "s-3": (112, NOW.date()), "s-4": (113, None),
                       "s-5": (112, None), "b-1": (211, None)}
    daily = {(r.object_id, r.bucket_date): r.count_session for r in lh.read(GROUP_DATETIME).where(
        "interval = 'daily' AND user_type = 'all' AND bounce_threshold = 5 AND engagement_threshold = 20")
        .collect()}
    # Mall 1 on 03-01: A 1 session + B 2 (s-3, history) + C 1 (s-4, added); on 03-02: A only.
    assert daily[(1, D1)] == 4 and daily[(1, D2)] == 1
    assert daily[(112, D1)] == 2 and (112, D2) not in daily
    assert daily[(113, D1)] == 1
    assert lh.read(BRONZE_PROBES).where("sensor_id = 's-3'").count() == 2


def test_the_other_malls_values_do_not_change_when_all_are_backfilled(world):
    _, states = world
    assert states["v2 all"]["mall_2_gold"] == states["v2 mall 2"]["mall_2_gold"]
