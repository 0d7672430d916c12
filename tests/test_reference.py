"""Hand-computed cases for tests/reference.py, the pure-Python model of SPEC §1-7.

No Spark here. Every expected value below is worked out by hand in the test.
"""
import gzip
import json
import os
from datetime import date, datetime, timezone

import pytest

from tests import reference as ref

Probe = ref.Probe

UTC = timezone.utc
NOW = datetime(2016, 12, 31, tzinfo=UTC)

OBJECTS_YAML = """
malls:
  - id: 1
    name: Mega
    timezone: Europe/Moscow
    floors:
      - id: 11
        name: Ground
        zones:
          - id: 111
            name: Food court
            sensors:
              - id: s1
              - id: s2
                visitor_rssi_threshold: -65
          - id: 112
            name: Shoes
            sensors:
              - id: s3
  - id: 2
    name: Berlin Mall
    timezone: Europe/Berlin
    floors:
      - id: 21
        name: EG
        zones:
          - id: 211
            name: Eingang
            sensors:
              - id: b1
  - id: 3
    name: London
    timezone: UTC
    floors:
      - id: 31
        name: Ground
        zones:
          - id: 311
            name: A
            sensors:
              - id: u1
          - id: 312
            name: B
            sensors:
              - id: u2
"""

A = "00:11:22:33:44:55"   # plain unicast, globally administered
B = "00:11:22:33:44:66"
C = "00:11:22:33:44:77"
D = "00:11:22:33:44:88"
RANDOM = "02:11:22:33:44:55"  # locally administered bit set


def make_conf_dir(tmp_path, pipeline=None):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "objects.yaml").write_text(OBJECTS_YAML)
    if pipeline is not None:
        (conf_dir / "pipeline.yaml").write_text(pipeline)
    return conf_dir


def conf_for(tmp_path, pipeline=None):
    return ref.load_config(make_conf_dir(tmp_path, pipeline))


def write(path, lines, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "\n".join(lines).encode("utf-8")
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return str(path.resolve())


def ms(iso):
    """Epoch milliseconds of an ISO instant with offset (stdlib, not the reference)."""
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return round(dt.timestamp() * 1000)


def rec(sensor="s1", mac=A, ts="2016-02-01T10:00:00Z", rssi=-60):
    return json.dumps({"sensor_id": sensor, "mac": mac, "ts": ts, "rssi": rssi})


def visit(sensor, mac, start_iso, minutes, step_s=60, rssi=-60):
    """Probes every step_s seconds from start for `minutes` minutes (both ends included)."""
    t0 = ms(start_iso)
    end = t0 + minutes * 60000
    out = []
    t = t0
    while t < end:
        out.append(Probe(sensor, mac, t, rssi, False))
        t += step_s * 1000
    out.append(Probe(sensor, mac, end, rssi, False))
    return out


def row(rows, object_id, interval, label, user_type, b=5, e=20):
    found = [r for r in rows if r["object_id"] == object_id and r["interval"] == interval
             and r["datetime"] == label and r["user_type"] == user_type
             and r["bounce_threshold"] == b and r["engagement_threshold"] == e]
    assert len(found) == 1, (object_id, interval, label, user_type, b, e, len(found))
    return found[0]


def labels(rows, object_id, interval):
    return sorted({(r["bucket_start"], r["datetime"]) for r in rows
                   if r["object_id"] == object_id and r["interval"] == interval})


# --------------------------------------------------------------------------- config

def test_load_config_defaults_and_tree(tmp_path):
    conf = conf_for(tmp_path, pipeline="session_gap_minutes: 10\n")
    assert conf.pipeline["session_gap_minutes"] == 10
    assert conf.pipeline["visitor_rssi_threshold"] == -70
    assert conf.pipeline["employee_window_days"] == 14
    assert conf.pipeline["employee_min_days"] == 5
    assert conf.pipeline["employee_min_daily_minutes"] == 240
    assert conf.pipeline["randomized_macs"] == "exclude"
    assert conf.objects[111]["type"] == "zone" and conf.objects[111]["mall_id"] == 1
    assert conf.objects[11]["type"] == "floor" and conf.objects[1]["type"] == "mall"
    assert conf.objects_of_sensor("s3") == [112, 11, 1]
    assert conf.sensor_threshold("s2") == -65
    assert conf.sensor_threshold("s1") == -70


def test_load_config_without_pipeline_yaml(tmp_path):
    conf = conf_for(tmp_path)
    assert conf.pipeline["session_gap_minutes"] == 15
    assert conf.pipeline["max_lateness_days"] == 31


# --------------------------------------------------------------------------- raw input

def test_quarantine_reasons_json(tmp_path):
    conf = conf_for(tmp_path)
    lines = [
        rec(),                                                               # 1 ok
        "not json",                                                          # 2 malformed
        '{"sensor_id":"s1","mac":"%s","ts":"2016-02-01T10:00:00Z"}' % A,     # 3 missing rssi
        '{"sensor_id":"s1","mac":"%s","ts":"2016-02-01T10:00:00Z","rssi":null}' % A,  # 4 null
        "[1, 2]",                                                            # 5 not an object
        '{"sensor_id":"s1","mac":"%s","ts":true,"rssi":-60}' % A,            # 6 boolean
        "   ",                                                               # 7 blank: skipped
        rec(mac="01:11:22:33:44:55"),                                        # 8 multicast
        rec(mac="00:11:22-33:44:55"),                                        # 9 mixed separators
        rec(mac="zz", rssi=5, ts="bad"),                                     # 10 mac first
        rec(rssi=-121),                                                      # 11
        rec(rssi=1),                                                         # 12
        '{"sensor_id":"s1","mac":"%s","ts":"2016-02-01T10:00:00Z","rssi":-65.0}' % A,  # 13
        rec(rssi="-65dBm"),                                                  # 14
        rec(rssi=-200, ts="bad", sensor="nope"),                             # 15 rssi before ts
        rec(ts="2016-02-01T10:00:00"),                                       # 16 no offset
        rec(ts="2009-12-31T23:59:59.999Z"),                                  # 17 before 2010
        rec(ts="2010-01-01T00:00:00Z"),                                      # 18 ok (boundary)
        rec(ts="2016-13-01T00:00:00Z"),                                      # 19 month 13
        rec(ts="2017-01-01T00:00:00.001Z"),                                  # 20 > now + 1 day
        rec(ts="2017-01-01T00:00:00Z"),                                      # 21 ok (boundary)
        rec(sensor="nope", ts="2016-02-30T00:00:00Z"),                       # 22 ts before sensor
        rec(sensor="nope"),                                                  # 23 unknown_sensor
        rec(ts="2016-02-01T10:00:00+18:01"),                                 # 24 offset > 18:00
        rec(ts="2016-02-01t10:00:00z"),                                      # 25 lower-case t/z
        rec(ts="2016-02-01T10:00:60Z"),                                      # 26 second 60
        '{"sensor_id":"s1","mac":"%s","ts":"2016-02-01T10:00:01Z","rssi":" -65 ","x":[1]}\r' % A,  # 27 ok
    ]
    path = write(tmp_path / "landing" / "day1" / "a.json", lines)
    probes, rejected = ref.read_records(conf, tmp_path / "landing", NOW)
    expected = {2: "malformed", 3: "malformed", 4: "malformed", 5: "malformed", 6: "malformed",
                8: "invalid_mac", 9: "invalid_mac", 10: "invalid_mac",
                11: "invalid_rssi", 12: "invalid_rssi", 13: "invalid_rssi", 14: "invalid_rssi",
                15: "invalid_rssi",
                16: "invalid_ts", 17: "invalid_ts", 19: "invalid_ts", 20: "invalid_ts",
                22: "invalid_ts", 24: "invalid_ts", 25: "invalid_ts", 26: "invalid_ts",
                23: "unknown_sensor"}
    assert {r.line_no: r.reason for r in rejected} == expected
    assert all(r.source_file == path for r in rejected)
    assert [r for r in rejected if r.line_no == 2][0].raw == "not json"
    assert [r for r in rejected if r.line_no == 8][0].raw == lines[7]
    assert sorted(p.ts_ms for p in probes) == [
        1262304000000,                 # 2010-01-01T00:00:00Z
        1454320800000,                 # 2016-02-01T10:00:00Z
        1454320801000,                 # 2016-02-01T10:00:01Z (rssi given as " -65 ")
        1483228800000,                 # 2017-01-01T00:00:00Z
    ]
    assert [p.rssi for p in probes if p.ts_ms == 1454320801000] == [-65]


def test_csv_files_gzip_and_ignored_files(tmp_path):
    conf = conf_for(tmp_path)
    landing = tmp_path / "landing"
    p1 = write(landing / "x" / "y" / "a.csv.gz", [
        ' rssi ,"ts",mac,sensor_id,extra',
        '"-65","2016-02-01T10:00:00Z","00-11-22-33-44-55","s1",whatever',
        "-60,2016-02-01T10:00:00Z,00:11:22:33:44:55",                        # 3 too few fields
        "",
        "-60,2016-02-01T10:05:00Z,,s1,q",                                    # 5 empty mac
        "-60,1454321100,00:11:22:33:44:55, s3 ,q",                           # 6 ok, epoch s
    ], gz=True)
    p2 = write(landing / "b.csv", ["sensor_id,mac,ts", "s1,%s,2016-02-01T10:00:00Z" % A, ""])
    write(landing / "c.csv", ["sensor_id,mac,ts,rssi"])                      # header only
    write(landing / "notes.txt", ["garbage"])
    write(landing / "d.json.bak", ["garbage"])
    probes, rejected = ref.read_records(conf, landing, NOW)
    assert sorted((r.source_file, r.line_no, r.reason) for r in rejected) == sorted([
        (p1, 3, "malformed"), (p1, 5, "invalid_mac"), (p2, 2, "malformed")])
    assert sorted(probes) == sorted([
        Probe("s1", A, 1454320800000, -65, False),
        Probe("s3", A, 1454321100000, -60, False),
    ])


@pytest.mark.parametrize("spelling", [
    "4C:1B:2C:3D:4E:5F", "4c:1b:2c:3d:4e:5f", "4c:1B:2c:3D:4e:5F",
    "4c-1b-2c-3d-4e-5f", "4C-1B-2C-3D-4E-5F",
    "4c1b2c3d4e5f", "4C1B2C3D4E5F",
    "4c1b.2c3d.4e5f", "4C1B.2C3D.4E5F",
    "  4c1b2c3d4e5f  ",
])
def test_mac_spellings_accepted(tmp_path, spelling):
    conf = conf_for(tmp_path)
    write(tmp_path / "l" / "a.ndjson", [rec(mac=spelling)])
    probes, rejected = ref.read_records(conf, tmp_path / "l", NOW)
    assert rejected == []
    assert probes == [Probe("s1", "4c:1b:2c:3d:4e:5f", 1454320800000, -60, False)]


@pytest.mark.parametrize("spelling", [
    "0a:1b:2c:3d:4e", "0a:1b:2c:3d:4e:5f:60", "0a1b2c3d4e5g", "0a:1b:2c-3d-4e-5f",
    "0a1b:2c3d:4e5f", "0a.1b.2c.3d.4e.5f", "0a:1b:2c:3d:4e:5", "0a1b2c3d4e5",
    "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "0b:1b:2c:3d:4e:5f", "",
])
def test_mac_spellings_rejected(tmp_path, spelling):
    conf = conf_for(tmp_path)
    write(tmp_path / "l" / "a.jsonl", [rec(mac=spelling)])
    probes, rejected = ref.read_records(conf, tmp_path / "l", NOW)
    assert probes == []
    assert [r.reason for r in rejected] == ["invalid_mac"]


def test_randomized_flag(tmp_path):
    conf = conf_for(tmp_path)
    write(tmp_path / "l" / "a.json", [rec(mac="02:00:00:00:00:01"), rec(mac="0E00.0000.0002"),
                                      rec(mac="04:00:00:00:00:03")])
    probes, _ = ref.read_records(conf, tmp_path / "l", NOW)
    assert {p.mac: p.randomized for p in probes} == {
        "02:00:00:00:00:01": True, "0e:00:00:00:00:02": True, "04:00:00:00:00:03": False}


def test_epoch_seconds_vs_millis_boundary(tmp_path):
    conf = conf_for(tmp_path)
    far_now = datetime(6000, 1, 1, tzinfo=UTC)
    write(tmp_path / "l" / "a.json", [
        rec(ts=99999999999),        # < 10^11: seconds -> 99999999999000 ms (year 5138)
        rec(ts="100000000000"),     # = 10^11: milliseconds -> 1973-03-03: before 2010
        rec(ts=1454320800),         # seconds
        rec(ts="1454320800001"),    # milliseconds
        rec(ts="2016-02-01T10:00:00.123456789+03:00"),  # fraction truncated to ms
        rec(ts="1454320800.0"),     # not an integer
        rec(ts="+1454320800"),      # no '+' sign for epochs
        rec(ts="9" * 5000),         # far beyond 64 bits
        rec(ts="0" * 5000 + "1454320800", rssi="-" + "0" * 5000 + "61"),  # leading zeros are fine
    ])
    probes, rejected = ref.read_records(conf, tmp_path / "l", far_now)
    assert sorted(p.ts_ms for p in probes) == [
        1454310000123,              # 07:00:00.123Z
        1454320800000, 1454320800001, 99999999999000]
    assert [p.rssi for p in probes if p.ts_ms == 1454320800000] == [-60]   # duplicate: max(-60, -61)
    assert [(r.line_no, r.reason) for r in rejected] == [
        (2, "invalid_ts"), (6, "invalid_ts"), (7, "invalid_ts"), (8, "invalid_ts")]


def test_duplicates_collapse_to_highest_rssi(tmp_path):
    conf = conf_for(tmp_path)
    write(tmp_path / "l" / "1" / "a.json", [rec(rssi=-80), rec(sensor="s2", rssi=-90)])
    write(tmp_path / "l" / "2" / "b.json", [rec(ts=1454320800, rssi=-60, mac="00-11-22-33-44-55")])
    write(tmp_path / "l" / "3" / "c.csv", ["sensor_id,mac,ts,rssi", "s1,%s,1454320800000,-70" % A])
    probes, rejected = ref.read_records(conf, tmp_path / "l", NOW)
    assert rejected == []
    assert sorted(probes) == [Probe("s1", A, 1454320800000, -60, False),
                              Probe("s2", A, 1454320800000, -90, False)]


# --------------------------------------------------------------------------- sessions

def test_gap_of_exactly_15_minutes_is_one_session(tmp_path):
    conf = conf_for(tmp_path)
    t0 = ms("2016-02-01T10:00:00Z")
    probes = [Probe("u1", A, t0, -60, False), Probe("u1", A, t0 + 900000, -60, False),
              Probe("u1", B, t0, -60, False), Probe("u1", B, t0 + 900001, -60, False)]
    sess = [s for s in ref.sessions(conf, probes) if s["object_id"] == 311]
    a = [s for s in sess if s["client"] == A]
    b = [s for s in sess if s["client"] == B]
    assert [(s["start_ms"], s["end_ms"], s["duration_ms"]) for s in a] == [(t0, t0 + 900000, 900000)]
    assert [(s["start_ms"], s["duration_ms"]) for s in b] == [(t0, 0), (t0 + 900001, 0)]


def test_session_gap_setting(tmp_path):
    conf = conf_for(tmp_path, pipeline="session_gap_minutes: 5\n")
    t0 = ms("2016-02-01T10:00:00Z")
    probes = [Probe("u1", A, t0, -60, False), Probe("u1", A, t0 + 300001, -60, False)]
    assert len([s for s in ref.sessions(conf, probes) if s["object_id"] == 311]) == 2


def test_stay_across_local_midnight_is_two_sessions(tmp_path):
    conf = conf_for(tmp_path)
    # Moscow is UTC+3: 23:50 local = 20:50Z, 00:05 local = 21:05Z, 00:20 local = 21:20Z
    probes = [Probe("s1", A, ms("2016-02-01T20:50:00Z"), -60, False),
              Probe("s1", A, ms("2016-02-01T21:05:00Z"), -60, False),
              Probe("s1", A, ms("2016-02-01T21:20:00Z"), -60, False)]
    sess = sorted((s for s in ref.sessions(conf, probes) if s["object_id"] == 111),
                  key=lambda s: s["start_ms"])
    assert [(s["date"], s["duration_ms"]) for s in sess] == [
        (date(2016, 2, 1), 0), (date(2016, 2, 2), 900000)]
    # UTC mall: the same instants are one session (20:50 .. 21:20 UTC)
    probes_utc = [p._replace(sensor_id="u1") for p in probes]
    sess = [s for s in ref.sessions(conf, probes_utc) if s["object_id"] == 311]
    assert [(s["date"], s["duration_ms"]) for s in sess] == [(date(2016, 2, 1), 1800000)]


def test_sessions_per_object_and_strong(tmp_path):
    conf = conf_for(tmp_path)
    t0 = ms("2016-02-01T10:00:00Z")
    probes = [
        Probe("s2", A, t0, -66, False),              # zone 111, s2 threshold -65: weak
        Probe("s3", A, t0 + 600000, -70, False),     # zone 112, global -70: strong (>=)
        Probe("s2", B, t0, -65, False),              # strong at s2 (>= -65)
        Probe("s1", C, t0, -71, False),              # weak
    ]
    got = {(s["object_id"], s["object_type"], s["client"]): (s["start_ms"], s["duration_ms"], s["strong"])
           for s in ref.sessions(conf, probes)}
    assert got == {
        (111, "zone", A): (t0, 0, False),
        (112, "zone", A): (t0 + 600000, 0, True),
        (11, "floor", A): (t0, 600000, True),
        (1, "mall", A): (t0, 600000, True),
        (111, "zone", B): (t0, 0, True), (11, "floor", B): (t0, 0, True), (1, "mall", B): (t0, 0, True),
        (111, "zone", C): (t0, 0, False), (11, "floor", C): (t0, 0, False), (1, "mall", C): (t0, 0, False),
    }
    assert all(s["mall_id"] == 1 for s in ref.sessions(conf, probes))


def test_randomized_macs_exclude_and_include(tmp_path):
    t0 = ms("2016-02-01T10:00:00Z")
    probes = [Probe("u1", RANDOM, t0, -60, True), Probe("u1", A, t0, -60, False)]
    excl = ref.sessions(conf_for(tmp_path), probes)
    assert {s["client"] for s in excl} == {A}
    incl = ref.sessions(conf_for(tmp_path, pipeline="randomized_macs: include\n"), probes)
    assert {s["client"] for s in incl} == {A, RANDOM}


# --------------------------------------------------------------------------- classes

def test_duration_exactly_b_and_e(tmp_path):
    conf = conf_for(tmp_path)
    t0 = ms("2016-02-01T10:00:00Z")
    probes = [
        Probe("u1", A, t0, -60, False), Probe("u1", A, t0 + 300000, -60, False),          # 5 min
        Probe("u1", B, t0, -60, False), Probe("u1", B, t0 + 299999, -60, False),          # 5 min - 1 ms
    ]
    probes += [Probe("u1", C, t0 + 60000 * k, -60, False) for k in range(0, 21, 5)]     # 20 min
    probes.append(Probe("u1", D, t0, -80, False))                                        # passer
    rows = ref.gold(conf, ref.sessions(conf, probes))
    lab = "2016-02-01T00:00:00Z"
    get = lambda t, b=5, e=20: row(rows, 311, "daily", lab, t, b, e)["count_session"]
    assert (get("all"), get("visitor"), get("passer"), get("employee")) == (4, 3, 1, 0)
    assert (get("bounced"), get("half engaged"), get("engaged")) == (1, 1, 1)
    # b = e = 5: half engaged is empty, A (5 min) and C (20 min) are engaged
    assert (get("bounced", 5, 5), get("half engaged", 5, 5), get("engaged", 5, 5)) == (1, 0, 2)
    # b = 2, e = 45: B and A are half engaged (>= 2 min), C too (< 45)
    assert (get("bounced", 2, 45), get("half engaged", 2, 45), get("engaged", 2, 45)) == (0, 3, 0)
    # 28 pairs x 7 types for the one daily bucket of zone 311
    assert len([r for r in rows if r["object_id"] == 311 and r["interval"] == "daily"]) == 196
    for r in rows:
        assert (r["bounce_threshold"], r["engagement_threshold"]) in ref.PAIRS
    assert len(ref.PAIRS) == 28
    r = row(rows, 311, "daily", lab, "engaged")
    assert (r["object_type"], r["mall_id"], r["bucket_date"]) == ("zone", 3, date(2016, 2, 1))
    assert r["bucket_start"] == datetime(2016, 2, 1, tzinfo=UTC)


def test_employee_5th_vs_4th_day_and_window(tmp_path):
    conf = conf_for(tmp_path)
    X = A
    probes = []
    # 240 minutes at the mall on Feb 1, 2, 4, 5 (zone 311) ...
    for day in ("01", "02", "04", "05"):
        probes += visit("u1", X, "2016-02-%sT08:00:00Z" % day, 240, step_s=600)
    # ... and on Feb 3 as two sessions at two zones: 120 min + 120 min = 240 at the mall
    probes += visit("u1", X, "2016-02-03T08:00:00Z", 120, step_s=600)
    probes += visit("u2", X, "2016-02-03T11:00:00Z", 120, step_s=600)
    # Feb 6: one day of 239 min 59.999 s (not a long day)
    probes += visit("u1", X, "2016-02-06T08:00:00Z", 239, step_s=60)
    probes.append(Probe("u1", X, ms("2016-02-06T12:00:00Z") - 1, -60, False))
    # short visits on Feb 14 (window Feb 1..14: 5 long days) and Feb 15 (window Feb 2..15: 4)
    probes += [Probe("u2", X, ms("2016-02-14T10:00:00Z"), -60, False),
               Probe("u2", X, ms("2016-02-15T10:00:00Z"), -60, False)]
    sess = ref.sessions(conf, probes)
    mall_feb3 = [s for s in sess if s["object_id"] == 3 and s["date"] == date(2016, 2, 3)]
    assert sorted(s["duration_ms"] for s in mall_feb3) == [7200000, 7200000]
    rows = ref.gold(conf, sess)

    def kind(obj, day):
        lab = "2016-02-%02dT00:00:00Z" % day
        return {t: row(rows, obj, "daily", lab, t)["count_session"] for t in ("employee", "visitor")}

    assert kind(3, 4) == {"employee": 0, "visitor": 1}      # 4th long day: not yet
    assert kind(3, 5) == {"employee": 1, "visitor": 0}      # 5th long day: employee
    assert kind(311, 5) == {"employee": 1, "visitor": 0}    # applies at the zone
    assert kind(31, 5) == {"employee": 1, "visitor": 0}     # and at the floor
    assert kind(3, 6) == {"employee": 1, "visitor": 0}      # Feb 1..6 hold 5 long days
    assert kind(3, 14) == {"employee": 1, "visitor": 0}     # D-13 = Feb 1
    assert kind(312, 14) == {"employee": 1, "visitor": 0}
    assert kind(3, 15) == {"employee": 0, "visitor": 1}     # D-13 = Feb 2: 4 long days
    assert kind(3, 3) == {"employee": 0, "visitor": 2}      # two mall sessions on Feb 3
    assert ref.employee_days(conf, sess) == {(3, X, date(2016, 2, d)) for d in (5, 6, 14)}


def test_employee_settings(tmp_path):
    conf = conf_for(tmp_path, pipeline="employee_min_days: 1\nemployee_min_daily_minutes: 60\n")
    probes = visit("u1", A, "2016-02-01T08:00:00Z", 60, step_s=600)
    probes += visit("u1", B, "2016-02-01T08:00:00Z", 50, step_s=600)
    sess = ref.sessions(conf, probes)
    assert ref.employee_days(conf, sess) == {(3, A, date(2016, 2, 1))}


# --------------------------------------------------------------------------- comeback

def one_probe_days(sensor, mac, days):
    return [Probe(sensor, mac, ms(d + "T10:00:00Z"), -60, False) for d in days]


def test_comeback_two_weeks_14_vs_15_days(tmp_path):
    conf = conf_for(tmp_path)
    probes = one_probe_days("u1", A, ["2016-03-01", "2016-03-15"])      # 14 days
    probes += one_probe_days("u1", B, ["2016-03-01", "2016-03-16"])     # 15 days
    probes += one_probe_days("u1", C, ["2016-03-16"])                   # no prev
    rows = ref.gold(conf, ref.sessions(conf, probes))
    r15 = row(rows, 311, "daily", "2016-03-15T00:00:00Z", "all")
    r16 = row(rows, 311, "daily", "2016-03-16T00:00:00Z", "all")
    r01 = row(rows, 311, "daily", "2016-03-01T00:00:00Z", "all")
    assert r15["count_comeback_client_2_week"] == 1
    assert r16["count_comeback_client_2_week"] == 0
    assert r16["count_comeback_client_1_month"] == 1
    assert r16["count_client"] == 2
    for name in ("2_week", "1_month", "2_month", "3_month", "6_month", "1_year", "10_year"):
        assert r01["count_comeback_client_" + name] == 0
    # March: A and B have dates within March with prev inside March, C does not
    rm = row(rows, 311, "monthly", "2016-03-01T00:00:00Z", "all")
    assert rm["count_comeback_client_2_week"] == 1       # A (on the 15th)
    assert rm["count_comeback_client_1_month"] == 2      # A and B
    assert rm["count_client"] == 3


def test_comeback_calendar_months(tmp_path):
    conf = conf_for(tmp_path)
    probes = one_probe_days("u1", A, ["2016-02-29", "2016-03-31"])      # 2016-03-31 - 1 month = 02-29
    probes += one_probe_days("u1", B, ["2016-02-28", "2016-03-31"])
    probes += one_probe_days("u1", C, ["2016-01-01", "2016-01-20", "2016-03-31"])  # prev = 01-20
    # exactly 10 years (probes are built directly, so the 2010 ingest floor does not apply)
    probes += one_probe_days("u1", D, ["2006-03-31", "2016-03-31"])
    rows = ref.gold(conf, ref.sessions(conf, probes))
    r = row(rows, 311, "daily", "2016-03-31T00:00:00Z", "all")
    assert r["count_comeback_client_2_week"] == 0
    assert r["count_comeback_client_1_month"] == 1        # A
    assert r["count_comeback_client_2_month"] == 2        # A, B  (C: 01-20 < 01-31)
    assert r["count_comeback_client_3_month"] == 3        # A, B, C
    assert r["count_comeback_client_6_month"] == 3
    assert r["count_comeback_client_1_year"] == 3
    assert r["count_comeback_client_10_year"] == 4        # D: 2006-03-31 >= 2006-03-31


def test_comeback_counts_only_sessions_of_the_type(tmp_path):
    conf = conf_for(tmp_path)
    probes = one_probe_days("u1", A, ["2016-03-01", "2016-03-02"])
    probes += [Probe("u1", B, ms("2016-03-01T10:00:00Z"), -60, False),
               Probe("u1", B, ms("2016-03-02T10:00:00Z"), -90, False)]   # passer on the 2nd
    rows = ref.gold(conf, ref.sessions(conf, probes))
    lab = "2016-03-02T00:00:00Z"
    assert row(rows, 311, "daily", lab, "visitor")["count_comeback_client_2_week"] == 1
    assert row(rows, 311, "daily", lab, "passer")["count_comeback_client_2_week"] == 1
    assert row(rows, 311, "daily", lab, "all")["count_comeback_client_2_week"] == 2
    assert row(rows, 311, "daily", lab, "employee")["count_comeback_client_2_week"] == 0


# --------------------------------------------------------------------------- buckets

def test_dst_berlin_hourly_and_other_labels(tmp_path):
    conf = conf_for(tmp_path)
    instants = ["2016-03-27T00:30:00Z",   # 01:30 CET
                "2016-03-27T01:30:00Z",   # 03:30 CEST (02:xx is skipped)
                "2016-10-30T00:30:00Z",   # 02:30 CEST
                "2016-10-30T01:30:00Z",   # 02:30 CET (repeated hour)
                "2016-10-30T02:30:00Z"]   # 03:30 CET
    probes = [Probe("b1", A, ms(i), -60, False) for i in instants]
    rows = ref.gold(conf, ref.sessions(conf, probes))
    u = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    assert labels(rows, 211, "hourly") == [
        (u("2016-03-27T00:00:00Z"), "2016-03-27T01:00:00+01:00"),
        (u("2016-03-27T01:00:00Z"), "2016-03-27T03:00:00+02:00"),
        (u("2016-10-30T00:00:00Z"), "2016-10-30T02:00:00+02:00"),
        (u("2016-10-30T01:00:00Z"), "2016-10-30T02:00:00+01:00"),
        (u("2016-10-30T02:00:00Z"), "2016-10-30T03:00:00+01:00"),
    ]
    assert labels(rows, 211, "daily") == [
        (u("2016-03-26T23:00:00Z"), "2016-03-27T00:00:00+01:00"),
        (u("2016-10-29T22:00:00Z"), "2016-10-30T00:00:00+02:00"),
    ]
    assert labels(rows, 211, "weekly") == [
        (u("2016-03-20T23:00:00Z"), "2016-03-21T00:00:00+01:00"),
        (u("2016-10-23T22:00:00Z"), "2016-10-24T00:00:00+02:00"),
    ]
    assert labels(rows, 211, "monthly") == [
        (u("2016-02-29T23:00:00Z"), "2016-03-01T00:00:00+01:00"),
        (u("2016-09-30T22:00:00Z"), "2016-10-01T00:00:00+02:00"),
    ]
    assert labels(rows, 211, "weekend") == [
        (u("2016-03-25T23:00:00Z"), "2016-03-26T00:00:00+01:00"),
        (u("2016-10-28T22:00:00Z"), "2016-10-29T00:00:00+02:00"),
    ]
    assert labels(rows, 211, "weekday") == []
    assert row(rows, 211, "daily", "2016-10-30T00:00:00+02:00", "all")["count_session"] == 3
    assert row(rows, 2, "hourly", "2016-10-30T02:00:00+01:00", "all")["count_session"] == 1
    r = row(rows, 211, "hourly", "2016-10-30T02:00:00+01:00", "all")
    assert r["bucket_date"] == date(2016, 10, 30)


def test_weekday_weekend_labels(tmp_path):
    conf = conf_for(tmp_path)
    probes = [
        Probe("u1", A, ms("2016-02-03T10:00:00Z"), -60, False),   # Wednesday
        Probe("u1", A, ms("2016-02-06T10:00:00Z"), -60, False),   # Saturday
        Probe("u1", A, ms("2016-02-07T10:00:00Z"), -60, False),   # Sunday
        Probe("u1", A, ms("2016-02-08T10:00:00Z"), -60, False),   # Monday, next week
        # Moscow (UTC+3): Friday 23:30 local and Saturday 00:30 local
        Probe("s1", B, ms("2016-02-05T20:30:00Z"), -60, False),
        Probe("s1", B, ms("2016-02-05T21:30:00Z"), -60, False),
    ]
    rows = ref.gold(conf, ref.sessions(conf, probes))
    u = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    assert labels(rows, 311, "weekday") == [
        (u("2016-02-01T00:00:00Z"), "2016-02-01T00:00:00Z"),
        (u("2016-02-08T00:00:00Z"), "2016-02-08T00:00:00Z")]
    assert labels(rows, 311, "weekend") == [(u("2016-02-06T00:00:00Z"), "2016-02-06T00:00:00Z")]
    assert row(rows, 311, "weekend", "2016-02-06T00:00:00Z", "all")["count_session"] == 2
    assert row(rows, 311, "weekend", "2016-02-06T00:00:00Z", "all")["count_client"] == 1
    assert row(rows, 311, "weekday", "2016-02-01T00:00:00Z", "all")["count_session"] == 1
    assert labels(rows, 111, "weekday") == [(u("2016-01-31T21:00:00Z"), "2016-02-01T00:00:00+03:00")]
    assert labels(rows, 111, "weekend") == [(u("2016-02-05T21:00:00Z"), "2016-02-06T00:00:00+03:00")]
    wk = row(rows, 111, "weekday", "2016-02-01T00:00:00+03:00", "all")
    assert wk["bucket_date"] == date(2016, 2, 1)
    assert labels(rows, 311, "weekly") == [
        (u("2016-02-01T00:00:00Z"), "2016-02-01T00:00:00Z"),
        (u("2016-02-08T00:00:00Z"), "2016-02-08T00:00:00Z")]


def test_rounding_half_up_avg_and_sum(tmp_path):
    conf = conf_for(tmp_path)
    t = lambda s: ms("2016-02-01T" + s + "Z")
    probes = [
        # zone 311 on Feb 1: 2 min and 3 min -> avg 2.5 -> 3 ; sum 5 min = 0.08333 h -> 0.08
        Probe("u1", A, t("10:00:00"), -60, False), Probe("u1", A, t("10:02:00"), -60, False),
        Probe("u1", B, t("10:00:00"), -60, False), Probe("u1", B, t("10:03:00"), -60, False),
    ]
    probes += [
        # zone 312 on Feb 1: 18 s and 36 s (checked below)
        Probe("u2", A, t("10:00:00"), -60, False), Probe("u2", A, t("10:00:18"), -60, False),  # 18 s
        Probe("u2", B, t("10:00:00"), -60, False), Probe("u2", B, t("10:00:36"), -60, False),  # 36 s
    ]
    # Feb 2, zone 311: 17.999 s -> 0.0049997 h -> 0.0 ; avg 0.29998 min -> 0
    probes += [Probe("u1", C, ms("2016-02-02T10:00:00Z"), -60, False),
               Probe("u1", C, ms("2016-02-02T10:00:17Z") + 999, -60, False)]
    # Feb 3, zone 311: 1 min and 2 min -> avg 1.5 -> 2 ; 3 min = 0.05 h
    probes += [Probe("u1", D, ms("2016-02-03T10:00:00Z"), -60, False),
               Probe("u1", D, ms("2016-02-03T10:01:00Z"), -60, False),
               Probe("u1", C, ms("2016-02-03T10:00:00Z"), -60, False),
               Probe("u1", C, ms("2016-02-03T10:02:00Z"), -60, False)]
    rows = ref.gold(conf, ref.sessions(conf, probes))
    r = row(rows, 311, "daily", "2016-02-01T00:00:00Z", "all")
    assert (r["avg_session_duration"], r["sum_session_duration"]) == (3, 0.08)
    # zone 312: 18 s + 36 s = 54 s = 0.015 h -> 0.02 (float 0.015*100 would floor to 0.01);
    # avg 27 s = 0.45 min -> 0
    r = row(rows, 312, "daily", "2016-02-01T00:00:00Z", "all")
    assert (r["avg_session_duration"], r["sum_session_duration"]) == (0, 0.02)
    r = row(rows, 312, "hourly", "2016-02-01T10:00:00Z", "all")
    assert (r["avg_session_duration"], r["sum_session_duration"]) == (0, 0.0)
    r = row(rows, 311, "daily", "2016-02-02T00:00:00Z", "all")
    assert (r["avg_session_duration"], r["sum_session_duration"]) == (0, 0.0)
    r = row(rows, 311, "daily", "2016-02-03T00:00:00Z", "all")
    assert (r["avg_session_duration"], r["sum_session_duration"]) == (2, 0.05)
    # week of Feb 1 at zone 311, 5 sessions: 120000+180000+17999+60000+120000 = 497999 ms
    # = 0.138333 h -> 0.14 ; avg 497999/5 ms = 1.66666 min -> 2
    r = row(rows, 311, "weekly", "2016-02-01T00:00:00Z", "all")
    assert (r["count_session"], r["avg_session_duration"], r["sum_session_duration"]) == (5, 2, 0.14)
    r = row(rows, 311, "monthly", "2016-02-01T00:00:00Z", "all")
    assert r["sum_session_duration"] == 0.14
    for interval in ("hourly", "weekday", "weekend"):
        assert all(x["sum_session_duration"] == 0.0 for x in rows if x["interval"] == interval)
    # none of the sessions is a passer: zeros
    r = row(rows, 311, "daily", "2016-02-01T00:00:00Z", "passer")
    assert (r["count_session"], r["count_client"], r["avg_session_duration"], r["sum_session_duration"]) == (0, 0, 0, 0.0)


def test_sum_half_hundredth_exact(tmp_path):
    conf = conf_for(tmp_path)
    t0 = ms("2016-02-01T10:00:00Z")
    # 18 s = 0.005 h -> 0.01 exactly half: rounds up ; avg 0.3 min -> 0
    probes = [Probe("u1", A, t0, -60, False), Probe("u1", A, t0 + 18000, -60, False)]
    rows = ref.gold(conf, ref.sessions(conf, probes))
    assert row(rows, 311, "daily", "2016-02-01T00:00:00Z", "all")["sum_session_duration"] == 0.01
    assert row(rows, 311, "daily", "2016-02-01T00:00:00Z", "all")["avg_session_duration"] == 0
    # 30 s: avg 0.5 min -> 1 (half up)
    probes = [Probe("u1", A, t0, -60, False), Probe("u1", A, t0 + 30000, -60, False)]
    rows = ref.gold(conf, ref.sessions(conf, probes))
    assert row(rows, 311, "daily", "2016-02-01T00:00:00Z", "all")["avg_session_duration"] == 1


# --------------------------------------------------------------------------- end to end

def test_compute_end_to_end_and_invariants(tmp_path):
    conf_dir = make_conf_dir(tmp_path, pipeline="randomized_macs: exclude\n")
    landing = tmp_path / "landing"
    write(landing / "2016-02-01" / "a.ndjson", [
        rec(sensor="s1", mac=A, ts="2016-02-01T10:00:00+03:00", rssi=-60),
        rec(sensor="s1", mac=A, ts="2016-02-01T10:10:00+03:00", rssi=-60),
        rec(sensor="s3", mac=A, ts="2016-02-01T10:20:00+03:00", rssi=-80),
        rec(sensor="s3", mac=RANDOM, ts="2016-02-01T10:20:00+03:00", rssi=-50),
        rec(sensor="s3", mac=B, ts="2016-02-01T10:25:00+03:00", rssi=-75),
        "oops",
    ])
    rows, rejected, sess = ref.compute(conf_dir, landing, NOW)
    assert [(r.line_no, r.reason) for r in rejected] == [(6, "malformed")]
    # mall 1: A one session 10:00-10:20 local (20 min, strong), B one probe (weak)
    lab = "2016-02-01T00:00:00+03:00"
    r = row(rows, 1, "daily", lab, "all")
    assert (r["count_session"], r["count_client"], r["avg_session_duration"], r["sum_session_duration"]) \
        == (2, 2, 10, 0.33)
    assert row(rows, 1, "daily", lab, "engaged")["count_session"] == 1
    assert row(rows, 1, "daily", lab, "passer")["count_session"] == 1
    assert row(rows, 112, "daily", lab, "passer")["count_session"] == 2
    assert row(rows, 111, "daily", lab, "bounced", 15, 20)["count_session"] == 1  # A at 111: 10 min
    assert row(rows, 1, "hourly", "2016-02-01T10:00:00+03:00", "all")["bucket_start"] == \
        datetime(2016, 2, 1, 7, tzinfo=UTC)
    assert {s["client"] for s in sess} == {A, B}
    assert {r["object_id"] for r in rows} == {1, 11, 111, 112}
    # every bucket: 196 rows; all = employee + visitor + passer; visitor = the three splits
    keys = {}
    for r in rows:
        keys.setdefault((r["object_id"], r["interval"], r["bucket_start"]), []).append(r)
    for group in keys.values():
        assert len(group) == 196
        by = {(r["bounce_threshold"], r["engagement_threshold"], r["user_type"]): r["count_session"]
              for r in group}
        for b, e in ref.PAIRS:
            assert by[(b, e, "all")] == by[(b, e, "employee")] + by[(b, e, "visitor")] + by[(b, e, "passer")]
            assert by[(b, e, "visitor")] == by[(b, e, "bounced")] + by[(b, e, "half engaged")] \
                + by[(b, e, "engaged")]
    assert set(r["user_type"] for r in rows) == set(ref.USER_TYPES)
