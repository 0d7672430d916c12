"""benchmarks/duckdb_baseline.py (SPEC as DuckDB SQL) against tests/reference.py: the same
gold, row for row, and the same count of rejected records per reason. No Spark.

Two worlds: a tiny generated one (every kind of bad record the generator writes,
duplicates, re-deliveries, a DST change), and a hand-made one with the edge cases of
docs/decisions.md that the generator never writes.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections import Counter
from pathlib import Path

from benchmarks.duckdb_baseline import KEY, METRICS, baseline
from jobs.spec import REASONS
from tests import reference
from tests.helpers import generated_world

UTC = dt.timezone.utc
NOW = dt.datetime(2016, 12, 30, tzinfo=UTC)


def _assert_same(root: Path) -> list[dict]:
    """Baseline == reference on ``root``'s conf/ and landing/; returns the gold rows."""
    expected, rejected, _ = reference.compute(root / "conf", root / "landing", NOW)
    stats: dict = {}
    gold = baseline(root / "conf", root / "landing", NOW, stats=stats)

    def by_key(rows):
        return {tuple(r[k].replace(tzinfo=UTC) if k == "bucket_start" else r[k] for k in KEY):
                tuple(r[m] for m in METRICS) for r in rows}
    ours, theirs = by_key(gold.to_pylist()), by_key(expected)
    assert len(ours) == gold.num_rows  # one row per key
    assert sorted(set(theirs) - set(ours))[:5] == [], "rows missing from the baseline"
    assert sorted(set(ours) - set(theirs))[:5] == [], "rows the reference does not have"
    assert [(k, ours[k], theirs[k]) for k in sorted(ours) if ours[k] != theirs[k]][:5] == []
    assert {k: v for k, v in stats.items() if k in REASONS} == dict(Counter(r.reason for r in rejected))
    return expected


def _total(rows, column, user_type):
    return sum(r[column] for r in rows if r["interval"] == "daily" and r["user_type"] == user_type
               and (r["bounce_threshold"], r["engagement_threshold"]) == (5, 20))


def test_generated_world_equals_the_reference(tmp_path):
    # Eight days from a Monday: employees from the fifth day, comebacks, weekends, and
    # 2016-03-27, when Berlin's clocks go forward. ~15,000 records, ~200,000 gold rows.
    world = generated_world(tmp_path, start=dt.date(2016, 3, 21), days=8, devices=12, seed=11)
    rows = _assert_same(world)
    assert len(rows) > 100_000
    assert _total(rows, "count_session", "employee") > 0
    assert _total(rows, "count_comeback_client_2_week", "all") > 0


OBJECTS = """
malls:
  - {id: 1, name: Mega, timezone: Europe/Moscow, floors: [{id: 11, zones: [
      {id: 111, sensors: [{id: s1}, {id: s2, visitor_rssi_threshold: -65}]},
      {id: 112, sensors: [{id: s3}, {id: 5}]}]}]}
  - {id: 2, name: Sao, timezone: America/Sao_Paulo, floors: [{id: 21, zones: [{id: 211, sensors: [{id: b1}]}]}]}
  - {id: 3, name: Berlin, timezone: Europe/Berlin, floors: [{id: 31, zones: [
      {id: 311, sensors: [{id: u1}]}, {id: 312, sensors: [{id: u2}]}]}]}
"""


def _edge_world(root: Path) -> Path:
    land = root / "landing" / "a"
    land.mkdir(parents=True)
    (root / "conf").mkdir()
    (root / "conf" / "objects.yaml").write_text(OBJECTS)
    (root / "conf" / "pipeline.yaml").write_text("")

    def rec(sensor="s3", ts="2016-06-01T12:00:00Z", rssi="-50", mac=None, **extra):
        return json.dumps({"sensor_id": sensor, "mac": mac, "ts": ts, "rssi": rssi, **extra})
    m = "10:22:33:44:55:%02x"  # one MAC a line: every verdict shows in gold
    edge = [  # (line, its verdict in a comment where it is not obvious)
        "\ufeff" + rec("s1", "2016-02-01T10:00:00+03:00", -60, "A8:BB:CC:00:00:01"),  # BOM at file start
        rec("s1", "2016-02-01T07:15:00Z", "-0071", "a8-bb-cc-00-00-01"),  # gap exactly 15 min: same session
        rec("s1", 1454311800, -80, "a8bbcc000001"),  # epoch seconds
        rec("s1", 1454312701000, -80, "a8bb.cc00.0001"),  # epoch ms; gap 15:01: new session
        # a key given twice: the last one counts
        '{"sensor_id":"s1","mac":"a8:bb:cc:00:00:01","ts":"2016-02-01T07:45:01Z","rssi":-90,"rssi":-50}',
        '{"sensor_id":"s2","mac":"%s","ts":"2016-02-01T20:50:00Z","rssi":-50,}' % (m % 1),  # trailing comma
        '{"sensor_id":"s2","mac":"%s","ts":"2016-02-01T20:50:00Z","rssi":-50,"x":NaN}' % (m % 2),
        '{"sensor_id":"s2","m\\u0061c":"%s","ts":"2016-02-01T20:51:00Z","rssi":-50}' % (m % 3),  # escaped key
        '{"sensor_id":"s2","mac":"%s","ts":"2016-02-01T21:10:00Z","rssi":-50.0}' % (m % 4),  # invalid_rssi
        rec("s2", "2016-02-01T21:05:00.123456789Z", " -50 ", m % 5),
        rec("s2", "2016-02-01T20:55:00Z", -50, m % 6),  # 23:55 and 00:05 in Moscow: two sessions
        rec("s2", "2016-02-01T21:05:00Z", -50, m % 6),
        '{"sensor_id":5,"mac":102233445566,"ts":"2016-02-01T21:25:00Z","rssi":-50}',  # numbers as text
        rec("5", "2016-02-01T21:26:00+00:00", -50, "10:22:33:44:55:66"),
        rec(mac="03:22:33:44:55:66"), rec(mac="02:22:33:44:55:66"),  # multicast; randomised (excluded)
        rec(ts="2016-02-01T21:26:00", mac=m % 7), rec(ts="2016-02-30T21:26:00Z", mac=m % 8),
        rec(ts="2009-12-31T23:59:59.999Z", mac=m % 9), rec(ts="2010-01-01T00:00:00Z", mac=m % 10),
        rec(ts="2016-12-31T00:00:00.001Z", mac=m % 11), rec(ts="2016-12-31T00:00:00Z", mac=m % 12),
        rec(ts="2016-06-01T12:00:00+18:01", mac=m % 13), rec(ts="2016-06-01T12:00:00-18:00", mac=m % 14),
        rec(ts=None, mac=m % 15), rec(rssi=True, mac=m % 16), '["s3"]', '"x"', "{}", "oops", "   ", "\t",
        rec(mac=m % 17) + " x", rec(mac=m % 18) + "\r", rec(mac=m % 19, ts=1464782437.0),
        rec(mac=m % 20)[:-1] + ', "deep": ' + "[" * 999 + "]" * 999 + "}",  # 1000 levels: malformed
        rec(mac=m % 21, pad="x" * 500)[:-1] + ', "deep": ' + "[" * 300 + "]" * 300 + "}",  # fine
        rec(mac=m % 22)[:-1] + ', "n": ' + "1" * 1001 + "}",  # a number of 1001 characters
        rec(mac=m % 23)[:-1] + ', "n": "\\ud800"}', rec(mac=m % 24)[:-1] + ', "n": "\\ud83d\\ude00 ,}"}',
        rec(ts="1464782435", rssi="+0", mac=m % 25), rec(ts="0001464782436", rssi="-120", mac=m % 26),
        rec(ts=99999999999999999999, mac=m % 27), rec(" s3 ", mac=" %s\u2028" % (m % 28)),
        rec(" s3 ", rssi=-121, mac=m % 29), rec(" s3 ", rssi=-120, mac=" %s\t" % (m % 30)),
        rec("zz", mac=m % 31), rec(mac="10:22:33:44:55:6G"), rec(mac="10:22:33-44:55:66"), rec(mac=""),
        rec(ts="2016-06-01T12:00:00.5Z", mac=m % 32), rec(ts="2016-06-01T12:00:00.12+05:45", mac=m % 33),
        rec(ts="2016-06-01T12:00:00-03:30", mac=m % 34), rec(ts="2016-06-01T12:00:00+18:00", mac=m % 35),
        rec(ts="2016-06-01T12:00:00+05:60", mac=m % 36), rec(ts="2016-06-01T24:00:00Z", mac=m % 37),
        rec(ts="2016-06-01T12:00:60Z", mac=m % 38), rec(ts="2016-06-01t12:00:00z", mac=m % 39),
        " \t" + rec(ts="2016-06-01T12:00:00.1234567890Z", mac=m % 40) + " ", rec(ts=" 1464782400 ", mac=m % 41),
        rec(mac=m % 42)[:-1] + ', "x": -inf}', rec(mac=m % 43)[:-1] + ', "x": nan}',  # yyjson reads them
        rec(mac=m % 44, fw="info: NaN ,}"), rec(mac=m % 45)[:-1] + ', "x": [1, ]}',
    ]
    (land / "mix.ndjson").write_text("\n".join(edge) + "\n\n")
    (land / "bytes.jsonl").write_bytes(  # invalid UTF-8 in a key the record does not need; CRLF
        b'{"sensor_id":"s1","mac":"a8:bb:cc:00:00:09","ts":"2016-02-02T10:00:00Z","rssi":-50,"fw":"\xff"}\r\n'
        b'{"sensor_id":"s1","mac":"a8:bb:cc:00:00:09","ts":"2016-02-02T10:05:00Z","rssi":-50}\r\n')
    for hidden in (land / ".hidden.json", root / "landing" / "_tmp" / "x.json"):
        hidden.parent.mkdir(exist_ok=True)
        hidden.write_text(edge[3])
    (land / "empty.json.gz").write_bytes(b"")
    sao = [rec("b1", ts, -50, "a8:bb:cc:00:10:%02d" % n) for ts, n in (
        ("2016-10-15T23:50:00-03:00", 1), ("2016-10-16T01:05:00-02:00", 1),  # midnight skipped on 10-16
        ("2016-10-16T01:15:00-02:00", 1), ("2016-10-17T09:00:00-02:00", 4),
        ("2016-02-20T23:30:00-02:00", 2), ("2016-02-20T23:30:00-03:00", 3))]  # 23:00-24:00 twice
    (land / "SAO.JSON.GZ").write_bytes(gzip.compress("\n".join(sao).encode()))
    (land / "ber.csv").write_text("\n".join([  # 2016-10-30: 02:00-03:00 twice in Berlin
        'rssi , "ts",mac,sensor_id,extra,sensor_id',
        "-50,2016-10-30T00:30:00Z,a8:bb:cc:00:20:01,u1,x,zz",
        '-50,"2016-10-30T01:30:00Z", "a8:bb:cc:00:20:01" ,u1,,',
        "-50,2016-10-30T01:40:00Z,a8:bb:cc:00:20:02,u1,x",  # too few fields
        "-50,2016-10-30T01:41:00Z,a8:bb:cc:00:20:03,u1,x,y,z",  # too many
        '"-50",1477791780000,A8:BB:CC:00:20:04,u2,x,y',
        "-50 ,1477791780000,A8:BB:CC:00:20:05,  u2 ,x,y\r", "", " "]))
    (land / "no_rssi.csv.gz").write_bytes(gzip.compress(b"sensor_id,mac,ts\nu1,a8:bb:cc:00:20:06,1477791780\n"))
    (land / "only_header.csv").write_text("sensor_id,mac,ts,rssi\n")
    busy = [rec("u1", "2016-03-%02dT%02d:%02d:00+01:00" % (d, 8 + t // 60, t % 60), -50,
                "a8:bb:cc:00:30:01") for d in range(1, 8) for t in range(0, 301, 10)]  # an employee from day 5
    busy += [rec("u2", ts, -50, "a8:bb:cc:00:30:02") for ts in (  # comebacks across month ends
        "2015-11-30T12:00:00Z", "2016-01-30T12:00:00Z", "2016-02-29T12:00:00Z", "2016-03-31T12:00:00Z",
        "2016-05-31T12:00:00Z", "2016-11-30T12:00:00Z", "2017-11-30T12:00:00Z")]
    rnd = random.Random(5)
    busy += [rec(rnd.choice(["s1", "s2", "s3", "5"]), 1454284800000 + rnd.randrange(5 * 86400000),
                 -rnd.randrange(40, 90), "a8:bb:cc:00:40:%02x" % rnd.randrange(12)) for _ in range(400)]
    (land / "busy.json").write_text("\n".join(busy))
    (land / "busy_again.json").write_text("\n".join(busy[:50]))  # the same records twice
    return root


def test_edge_cases_equal_the_reference(tmp_path):
    rows = _assert_same(_edge_world(tmp_path))
    assert len(rows) > 100_000 and _total(rows, "count_session", "employee") > 0
