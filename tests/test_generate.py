"""The synthetic-data generator (jobs/generate).

Facts are checked by reading the written files back with plain Python (json, csv
rules of docs/decisions.md, gzip) and a small validator of SPEC §2 written here,
not by calling the generator's internals.
"""
from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from jobs.generate import generate, main, make_objects, write_objects_yaml, write_pipeline_yaml

START = date(2016, 1, 4)
DAYS = 5

# --------------------------------------------------------------------------- #
# A small reader + validator of SPEC §2 / docs/decisions.md.

HEX = "[0-9a-fA-F]"
MAC_FORMS = {
    "colon": re.compile(rf"^{HEX}{{2}}(:{HEX}{{2}}){{5}}$"),
    "dash": re.compile(rf"^{HEX}{{2}}(-{HEX}{{2}}){{5}}$"),
    "bare": re.compile(rf"^{HEX}{{12}}$"),
    "dot": re.compile(rf"^{HEX}{{4}}\.{HEX}{{4}}\.{HEX}{{4}}$"),
}
ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
INT = re.compile(r"^[+-]?\d+$")
EPOCH = re.compile(r"^-?\d+$")
MIN_MS = int(datetime(2010, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
NOW_MS = int(datetime.now(timezone.utc).timestamp() * 1000) + 86_400_000
FIELDS = ("sensor_id", "mac", "ts", "rssi")


class Num(str):
    """A JSON number, kept as its text."""


def mac_form(text: str) -> str | None:
    return next((k for k, r in MAC_FORMS.items() if r.match(text)), None)


def parse_ts(text: str) -> int | None:
    if EPOCH.match(text):
        v = int(text)
        if abs(v) >= 2 ** 63:
            return None
        return v if v >= 10 ** 11 else v * 1000
    m = ISO.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    except ValueError:
        return None
    ms = int(dt.timestamp()) * 1000 + (int((frac[1:] + "00")[:3]) if frac else 0)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        ms -= sign * (int(tz[1:3]) * 60 + int(tz[4:6])) * 60_000
    return ms


def validate(vals: dict | None, sensors: set) -> tuple[str | None, tuple | None]:
    """(reason, (sensor, mac, ts_ms, rssi)) — reason None for a valid record."""
    if vals is None:
        return "malformed", None
    mac = vals["mac"].strip()
    if not mac_form(mac):
        return "invalid_mac", None
    h = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if int(h[:2], 16) & 1:
        return "invalid_mac", None
    rssi = vals["rssi"].strip()
    if not INT.match(rssi) or not -120 <= int(rssi) <= 0:
        return "invalid_rssi", None
    ts = parse_ts(vals["ts"].strip())
    if ts is None or ts < MIN_MS or ts > NOW_MS:
        return "invalid_ts", None
    sensor = vals["sensor_id"].strip()
    if sensor not in sensors:
        return "unknown_sensor", None
    return None, (sensor, h, ts, int(rssi))


def read_file(path: Path) -> tuple[list[dict], list[str]]:
    """Records of one landing file: dicts with raw text values (None if malformed),
    plus the header (CSV) or []."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in raw.decode("utf-8").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    header: list[str] = []
    is_csv = ".csv" in path.name
    if is_csv:
        header = [h.strip().strip('"') for h in lines[0].split(",")]
        lines = lines[1:]
    for ln in lines:
        if not ln.strip():
            continue
        rec = {"line": ln, "vals": None, "types": None}
        if is_csv:
            parts = [p.strip() for p in ln.split(",")]
            if len(parts) == len(header):
                parts = [p[1:-1] if len(p) >= 2 and p[0] == p[-1] == '"' else p for p in parts]
                row = dict(zip(header, parts))
                if all(k in row for k in FIELDS):
                    rec["vals"] = {k: row[k] for k in FIELDS}
        else:
            try:
                obj = json.loads(ln, parse_int=Num, parse_float=Num)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and all(isinstance(obj.get(k), str) for k in FIELDS):
                rec["vals"] = {k: str(obj[k]) for k in FIELDS}
                rec["types"] = {k: "num" if isinstance(obj[k], Num) else "str" for k in FIELDS}
        out.append(rec)
    return out, header


def load_landing(landing: Path, sensors: set) -> list[dict]:
    files = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        recs, header = read_file(path)
        for r in recs:
            r["reason"], r["probe"] = validate(r["vals"], sensors)
        files.append({"path": path, "folder": path.parent.name, "name": path.name,
                      "records": recs, "header": header})
    return files


def tree_facts(conf: Path):
    tree = yaml.safe_load((conf / "objects.yaml").read_text())
    sensor_mall, mall_tz = {}, {}
    for m in tree["malls"]:
        mall_tz[m["id"]] = m["timezone"]
        for fl in m["floors"]:
            for z in fl["zones"]:
                for s in z["sensors"]:
                    sensor_mall[s["id"]] = m["id"]
    return tree, sensor_mall, mall_tz


# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    base = tmp_path_factory.mktemp("gen")
    conf = base / "conf"
    write_objects_yaml(conf / "objects.yaml", make_objects(seed=1))
    write_pipeline_yaml(conf / "pipeline.yaml")
    landing = base / "landing"
    summary = generate(conf, landing, start=START, days=DAYS, devices=60, seed=7)
    tree, sensor_mall, mall_tz = tree_facts(conf)
    files = load_landing(landing, set(sensor_mall))
    return dict(conf=conf, landing=landing, summary=summary, files=files, tree=tree,
                sensor_mall=sensor_mall, mall_tz=mall_tz)


def all_records(small, first_only=False):
    names = Counter(f["name"] for f in small["files"])
    seen = set()
    for f in small["files"]:
        if first_only and names[f["name"]] > 1:
            if f["name"] in seen:
                continue
            seen.add(f["name"])
        for r in f["records"]:
            yield f, r


def copies(small):
    """name -> [folders] of files delivered more than once (sorted folders)."""
    by = defaultdict(list)
    for f in small["files"]:
        by[f["name"]].append(f)
    return {k: sorted(v, key=lambda f: f["folder"]) for k, v in by.items() if len(v) > 1}


# ------------------------------------------------------------------- the tree

def test_demo_tree_has_two_malls_with_time_zones_and_unique_ids(tmp_path):
    tree = make_objects(seed=42)
    malls = {m["id"]: m for m in tree["malls"]}
    assert set(malls) == {215, 1290}
    assert (malls[215]["name"], malls[215]["timezone"]) == ("Galereya", "Europe/Moscow")
    assert (malls[1290]["name"], malls[1290]["timezone"]) == ("Alexa", "Europe/Berlin")
    ids, sensor_ids, overrides = [], [], []
    for m in tree["malls"]:
        ids.append(m["id"])
        assert 2 <= len(m["floors"]) <= 3
        for fl in m["floors"]:
            ids.append(fl["id"])
            assert 3 <= len(fl["zones"]) <= 4
            for z in fl["zones"]:
                ids.append(z["id"])
                assert 1 <= len(z["sensors"]) <= 3
                for s in z["sensors"]:
                    assert re.match(rf"^s-{m['id']}-\d{{4}}$", s["id"])
                    sensor_ids.append(s["id"])
                    if "visitor_rssi_threshold" in s:
                        overrides.append(s["visitor_rssi_threshold"])
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), "object ids must be unique across types"
    assert len(sensor_ids) == len(set(sensor_ids))
    assert 1 <= len(overrides) <= 2 and -65 in overrides
    assert 2151 in ids and 21511 in ids and 12901 in ids

    # round trip through the files
    write_objects_yaml(tmp_path / "objects.yaml", tree)
    assert yaml.safe_load((tmp_path / "objects.yaml").read_text()) == tree
    write_pipeline_yaml(tmp_path / "pipeline.yaml")
    assert yaml.safe_load((tmp_path / "pipeline.yaml").read_text()) == {
        "session_gap_minutes": 15, "visitor_rssi_threshold": -70, "employee_window_days": 14,
        "employee_min_days": 5, "employee_min_daily_minutes": 240,
        "randomized_macs": "exclude", "max_lateness_days": 31}
    assert make_objects(seed=42) == tree
    assert len(make_objects(malls=3)["malls"]) == 3


# ---------------------------------------------------------------- determinism

def _tree_bytes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_gives_identical_files(small, tmp_path):
    again = tmp_path / "again"
    generate(small["conf"], again, start=START, days=DAYS, devices=60, seed=7)
    a, b = _tree_bytes(small["landing"]), _tree_bytes(again)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)
    other = tmp_path / "other"
    generate(small["conf"], other, start=START, days=DAYS, devices=60, seed=8)
    assert _tree_bytes(other) != a


# ------------------------------------------------------------------- layout

def test_layout_formats_and_compression(small):
    exts = set()
    for f in small["files"]:
        m = re.match(r"^(\d+)-(\d{8})T(\d{2})-(\d+)\.(ndjson|jsonl|json|csv)(\.gz)?$", f["name"])
        assert m, f["name"]
        assert int(m.group(1)) in small["mall_tz"]
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", f["folder"])
        exts.add(m.group(5) + (m.group(6) or ""))
        if f["name"].endswith(".gz"):
            assert f["path"].read_bytes()[:2] == b"\x1f\x8b"
    assert exts == {e + gz for e in ("ndjson", "jsonl", "json", "csv") for gz in ("", ".gz")}
    folders = sorted({f["folder"] for f in small["files"]})
    assert folders == [(START + timedelta(days=i)).isoformat() for i in range(DAYS)]
    headers = {tuple(f["header"]) for f in small["files"] if f["header"]}
    assert len(headers) > 1 and all(set(FIELDS) <= set(h) for h in headers)
    assert any(b"\r\n" in gzip.decompress(f["path"].read_bytes()) if f["name"].endswith(".gz")
               else b"\r\n" in f["path"].read_bytes() for f in small["files"])


def test_every_mac_spelling_and_ts_form(small):
    forms, cases, ts_forms, num_types = set(), set(), set(), set()
    for f, r in all_records(small):
        if r["reason"] is not None:
            continue
        mac, ts = r["vals"]["mac"], r["vals"]["ts"]
        forms.add(mac_form(mac))
        letters = [c for c in mac if c.isalpha()]
        if letters:
            cases.add("upper" if all(c.isupper() for c in letters) else
                      "lower" if all(c.islower() for c in letters) else "mixed")
        m = ISO.match(ts)
        if m:
            frac, tz = m.group(7), m.group(8)
            ts_forms.add(("iso", "Z" if tz == "Z" else "+00:00" if tz == "+00:00" else "offset",
                          "frac" if frac else "nofrac"))
            if frac:
                ts_forms.add(("frac_len", len(frac) - 1))
        else:
            ts_forms.add("epoch_ms" if int(ts) >= 10 ** 11 else "epoch_s")
        if r["types"]:
            num_types.add(("ts", r["types"]["ts"], "iso" if m else "epoch"))
            num_types.add(("rssi", r["types"]["rssi"]))
    assert forms == {"colon", "dash", "bare", "dot"}
    assert cases == {"upper", "lower", "mixed"}
    for want in [("iso", "Z", "frac"), ("iso", "Z", "nofrac"), ("iso", "offset", "frac"),
                 ("iso", "offset", "nofrac"), ("iso", "+00:00", "frac"), "epoch_ms", "epoch_s",
                 ("frac_len", 3), ("frac_len", 6)]:
        assert want in ts_forms, want
    # numbers as JSON numbers and as strings
    assert {("ts", "num", "epoch"), ("ts", "str", "epoch"), ("rssi", "num"),
            ("rssi", "str")} <= num_types
    # offsets are the malls' local ones: +03:00 (Moscow) and +01:00 (Berlin in winter)
    offsets = {ISO.match(r["vals"]["ts"]).group(8) for _, r in all_records(small)
               if r["reason"] is None and ISO.match(r["vals"]["ts"])}
    assert {"+03:00", "+01:00", "Z"} <= offsets


# ------------------------------------------------------------- bad records

def test_every_bad_record_kind_appears(small):
    by_reason = defaultdict(list)
    for f, r in all_records(small):
        if r["reason"]:
            by_reason[r["reason"]].append((f, r))
    assert set(by_reason) == {"malformed", "invalid_mac", "invalid_rssi", "invalid_ts",
                              "unknown_sensor"}

    mal = by_reason["malformed"]
    def json_fails(ln):
        try:
            json.loads(ln)
            return False
        except ValueError:
            return True
    assert any(".csv" not in f["name"] and json_fails(r["line"]) for f, r in mal), "truncated JSON"
    assert any(".csv" not in f["name"] and not json_fails(r["line"])
               and isinstance(json.loads(r["line"]), dict)
               and not set(FIELDS) <= set(json.loads(r["line"])) for f, r in mal), "missing field"
    assert any(".csv" in f["name"] and len(r["line"].split(",")) != len(f["header"])
               for f, r in mal), "CSV field count"

    macs = [r["vals"]["mac"] for _, r in by_reason["invalid_mac"]]
    multicast = [m for m in macs if mac_form(m) and int(re.sub(r"[^0-9a-fA-F]", "", m)[:2], 16) & 1]
    mixed = [m for m in macs if len({c for c in m if c in ":-."}) > 1]
    spelling = [m for m in macs if not mac_form(m) and m not in mixed]
    assert multicast and mixed and spelling

    rssis = [r["vals"]["rssi"] for _, r in by_reason["invalid_rssi"]]
    assert any(INT.match(x) and int(x) > 0 for x in rssis)
    assert any(INT.match(x) and int(x) < -120 for x in rssis)
    assert any(re.match(r"^-?\d+\.\d+$", x) for x in rssis)
    assert any(not re.match(r"^[+-]?[\d.]+$", x) for x in rssis)

    tss = [r["vals"]["ts"] for _, r in by_reason["invalid_ts"]]
    no_offset = [t for t in tss if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$", t)]
    parsed = [parse_ts(t) for t in tss]
    assert no_offset
    assert any(p is not None and p < MIN_MS for p in parsed), "2009 dates"
    assert any(p is not None and p > NOW_MS for p in parsed), "far future"
    assert any(p is None and t not in no_offset for p, t in zip(parsed, tss)), "garbage"

    unknown = {r["vals"]["sensor_id"] for _, r in by_reason["unknown_sensor"]}
    assert unknown and not unknown & set(small["sensor_mall"])


def test_share_of_bad_records_is_near_bad_share(small):
    recs = [r for _, r in all_records(small, first_only=True)]
    bad = sum(1 for r in recs if r["reason"])
    assert len(recs) > 5000
    assert abs(bad / len(recs) - 0.01) < 0.002
    s = small["summary"]
    assert s.bad_total == bad
    # the generator's intended reason is the one SPEC's order of checks gives
    assert s.bad == dict(Counter(r["reason"] for r in recs if r["reason"]))
    assert s.records == sum(len(f["records"]) for f in small["files"])


# ---------------------------------------------- duplicates, copies, late files

def test_exact_duplicates_some_with_another_rssi(small):
    seen = {}
    same = other = 0
    for _, r in all_records(small, first_only=True):
        if r["probe"] is None:
            continue
        sensor, mac, ts, rssi = r["probe"]
        key = (sensor, mac, ts)
        if key in seen:
            same += seen[key] == rssi
            other += seen[key] != rssi
        seen[key] = rssi
    assert same >= 1 and other >= 1


def test_redelivered_and_late_files(small):
    cp = copies(small)
    assert cp, "some file is delivered twice"
    for name, fs in cp.items():
        assert len({f["path"].read_bytes() for f in fs}) == 1, name
        assert fs[0]["folder"] < fs[1]["folder"]
    sensor_mall, mall_tz = small["sensor_mall"], small["mall_tz"]
    late = 0
    for f in small["files"]:
        if f["name"] in cp and f is not cp[f["name"]][0]:
            continue  # the later copy
        dates = set()
        for r in f["records"]:
            if r["probe"]:
                sensor, _, ts, _ = r["probe"]
                tz = ZoneInfo(mall_tz[sensor_mall[sensor]])
                dates.add(datetime.fromtimestamp(ts / 1000, tz).date())
        assert len(dates) == 1, f["name"]  # one file = one local date
        lag = (date.fromisoformat(f["folder"]) - dates.pop()).days
        assert lag == 0 or 2 <= lag <= 5, (f["name"], lag)
        late += lag > 0
    assert late >= 1


# ---------------------------------------------------------------- realism

def test_traffic_looks_like_a_mall(small):
    sensor_mall, mall_tz = small["sensor_mall"], small["mall_tz"]
    total = in_range = 0
    all_macs, rand_macs = set(), set()
    day_span = defaultdict(list)      # (mac, date) -> [first, last]
    macs_days = defaultdict(set)
    hours = Counter()
    strong = 0
    for _, r in all_records(small, first_only=True):
        if r["probe"] is None:
            continue
        sensor, mac, ts, rssi = r["probe"]
        in_range += -99 <= rssi <= -30
        strong += rssi >= -70
        total += 1
        all_macs.add(mac)
        if int(mac[:2], 16) & 2:
            rand_macs.add(mac)
            continue
        loc = datetime.fromtimestamp(ts / 1000, ZoneInfo(mall_tz[sensor_mall[sensor]]))
        hours[loc.hour] += 1
        span = day_span[(mac, loc.date())]
        if not span:
            span += [ts, ts]
        span[0], span[1] = min(span[0], ts), max(span[1], ts)
        macs_days[mac].add(loc.date())
    assert 0.08 < len(rand_macs) / len(all_macs) < 0.3   # randomised MACs, fresh per stay
    assert 0.3 < strong / total < 0.95 and in_range / total > 0.99
    assert sum(hours[h] for h in range(7, 24)) / sum(hours.values()) > 0.93   # opening hours
    long_days = Counter(mac for (mac, _), (a, b) in day_span.items() if b - a >= 7 * 3600_000)
    assert sum(1 for n in long_days.values() if n >= 3) >= 3   # employees, day after day
    returning = [m for m, ds in macs_days.items() if len(ds) >= 2 and long_days[m] == 0]
    assert len(returning) >= 5                                 # clients who come back
    s = small["summary"]
    assert s.employees >= 6 and s.randomised_stays > 0 and s.duplicates > 0


# ------------------------------------------------------------------- scale

def test_target_probes_picks_the_size(tmp_path, small):
    landing = tmp_path / "big"
    s = generate(small["conf"], landing, start=START, days=14, target_probes=200_000, seed=3,
                 gz_share=0.0)
    n = 0
    for p in landing.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                lines = f.read().split(b"\n")
            n += sum(1 for ln in lines if ln.strip()) - (1 if ".csv" in p.name else 0)
    assert 160_000 <= n <= 240_000
    assert n == s.records


# --------------------------------------------------------------------- CLI

def test_cli_new_world_and_clean(tmp_path, capsys):
    conf, landing = tmp_path / "conf", tmp_path / "landing"
    assert main(["--conf", str(conf), "--landing", str(landing)]) == 2   # no objects.yaml
    (landing / "old").mkdir(parents=True)
    (landing / "old" / "stale.csv").write_text("x\n")
    rc = main(["--conf", str(conf), "--landing", str(landing), "--new-world", "--clean",
               "--days", "2", "--devices", "20", "--seed", "5"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "records" in out and "files" in out
    assert (conf / "objects.yaml").exists() and (conf / "pipeline.yaml").exists()
    assert not (landing / "old").exists()
    assert sorted(p.name for p in landing.iterdir()) == ["2016-01-04", "2016-01-05"]
    # without --landing: conf/storage.yaml's landing, relative to the folder holding conf/
    (conf / "storage.yaml").write_text("landing: lz\n")
    assert main(["--conf", str(conf), "--days", "1", "--devices", "5"]) == 0
    assert [p.name for p in (tmp_path / "lz").iterdir()] == ["2016-01-04"]


# ------------------------------------------------------------------- --feeds

FEED_DAYS = 4
FEED_KW = dict(start=START, days=FEED_DAYS, devices=40, seed=7, late_share=0.25,
               redeliver_share=0.25)
CONF_FEEDS = Path(__file__).resolve().parents[1] / "conf" / "feeds.yaml"
CSV_TS = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?$")


def _lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8").split("\n")


def _stem(name: str) -> str:
    return name.split(".", 1)[0]


@pytest.fixture(scope="module")
def feeds_run(tmp_path_factory):
    """The demo world (objects.yaml of seed 42, conf/feeds.yaml) written without and with
    --feeds."""
    from jobs.feeds import load_feeds

    base = tmp_path_factory.mktemp("feeds")
    conf = base / "conf"
    write_objects_yaml(conf / "objects.yaml", make_objects(seed=42))
    (conf / "feeds.yaml").write_text(CONF_FEEDS.read_text())
    feeds = load_feeds(conf)
    plain = generate(conf, base / "plain", **FEED_KW)
    fed = generate(conf, base / "fed", feeds=feeds, **FEED_KW)
    tree, sensor_mall, mall_tz = tree_facts(conf)
    return dict(conf=conf, feeds=feeds, plain=plain, fed=fed, plain_dir=base / "plain",
                fed_dir=base / "fed", sensors=set(sensor_mall), tree=tree)


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def _read_feed_file(path: Path, feed) -> tuple[list[tuple], int]:
    """(sensor, mac, ts_ms, rssi) records of a feed file, and its non-probe frames."""
    import csv
    import io

    from jobs.pcap import read_capture

    if feed.format in ("pcap", "pcapng"):
        cap = read_capture(path.read_bytes())
        assert cap.bad == [] and cap.frames == len(cap.probes) + cap.skipped
        return [(feed.sensor_id, p.mac.replace(":", ""), p.ts_ms, p.rssi)
                for p in cap.probes], cap.skipped
    rows = list(csv.reader(io.StringIO("\n".join(_lines(path))), delimiter=feed.delimiter))
    header, rows = rows[0], [r for r in rows[1:] if r]
    col = {k: header.index(feed.columns.get(k, k)) for k in ("mac", "ts", "rssi")}
    assert len(header) == 5 and feed.sensor_id_column in header  # + one ignored column
    out = []
    for r in rows:
        d, mo, y, h, mi, s, ms = CSV_TS.match(r[col["ts"]]).groups()
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                         tzinfo=ZoneInfo(feed.timezone))
        ts = int(local.timestamp()) * 1000 + int(ms or 0)
        mac = r[col["mac"]].lower().replace(":", "")
        out.append((r[header.index(feed.sensor_id_column)], mac, ts, int(r[col["rssi"]])))
    return out, 0


def test_feeds_write_captures_and_exports_at_paths_their_feed_claims(feeds_run):
    feeds, fed = feeds_run["feeds"], feeds_run["fed"]
    by_format = Counter()
    records = other = feed_files = 0
    for rel, path in _files(feeds_run["fed_dir"]).items():
        feed = feeds.feed_for(rel)
        if feed is None:  # a SPEC file, in its arrival folder
            assert re.match(r"^\d{4}-\d{2}-\d{2}/\d+-\d{8}T\d{2}-\d+\.(ndjson|jsonl|json|csv)"
                            r"(\.gz)?$", rel)
            recs, _ = read_file(path)
            records += len(recs)
            continue
        m = re.match(r"^(.+)/(\d{4}-\d{2}-\d{2})/(\d+)-(\d{8})T\d{2}-\d+\.(pcapng|pcap|csv)(\.gz)?$",
                     rel)
        assert m and m.group(5) == feed.format and feed.path.startswith(m.group(1) + "/"), rel
        if m.group(6):
            assert path.read_bytes()[:2] == b"\x1f\x8b"
        by_format[m.group(5) + (m.group(6) or "")] += 1
        recs, skipped = _read_feed_file(path, feed)
        records, other, feed_files = records + len(recs), other + skipped, feed_files + 1
        if feed.format != "csv":
            assert skipped >= 1  # beacons and data frames the reader skips
    assert set(by_format) >= {"pcap", "pcapng", "csv"} and len(by_format) > 3
    exports = [_lines(p)[1] for rel, p in _files(feeds_run["fed_dir"]).items() if ".csv" in rel
               and feeds.feed_for(rel) is not None]
    assert any('"' in ln for ln in exports) and any('"' not in ln for ln in exports)
    # the run's counts are those of the files written, and the world is the same
    plain = feeds_run["plain"]
    assert (fed.files, fed.records, fed.feed_files, fed.other_frames) == (
        len(_files(feeds_run["fed_dir"])), records, feed_files, other)
    assert fed.feed_records == sum(f["records"] for f in fed.feeds)
    assert (fed.records, fed.probes, fed.bad, fed.duplicates, fed.late_records,
            fed.redelivered_records) == (plain.records, plain.probes, plain.bad, plain.duplicates,
                                         plain.late_records, plain.redelivered_records)
    assert [f["sensors"] for f in fed.feeds] == [
        ["s-215-0001"], ["s-215-0002"], ["s-1290-0001", "s-1290-0002", "s-1290-0003"]]
    alexa = next(m for m in feeds_run["tree"]["malls"] if m["timezone"] == "Europe/Berlin")
    assert [s["id"] for s in alexa["floors"][0]["zones"][0]["sensors"]] == fed.feeds[2]["sensors"]


def test_feed_records_are_the_spec_records_of_their_sensors(feeds_run):
    feeds, sensors = feeds_run["feeds"], feeds_run["sensors"]
    feed_sensors = {s for f in feeds_run["fed"].feeds for s in f["sensors"]}
    want = defaultdict(Counter)  # (arrival folder, file stem) -> records of feed sensors
    for rel, path in _files(feeds_run["plain_dir"]).items():
        folder, name = rel.split("/")
        for r in read_file(path)[0]:
            reason, probe = validate(r["vals"], sensors)
            if reason is None and probe[0] in feed_sensors:
                want[(folder, _stem(name))][probe] += 1
    got = defaultdict(Counter)
    for rel, path in _files(feeds_run["fed_dir"]).items():
        feed = feeds.feed_for(rel)
        if feed is not None:
            folder, name = rel.split("/")[-2:]
            got[(folder, _stem(name))].update(_read_feed_file(path, feed)[0])
    assert got == want
    total = sum(want.values(), Counter())
    assert any(n > 1 for n in total.values())  # exact duplicates travel along …
    rssis = defaultdict(set)
    for sensor, mac, ts, rssi in total:
        rssis[(sensor, mac, ts)].add(rssi)
    assert any(len(v) > 1 for v in rssis.values())  # … and those with another RSSI
    assert any(ts % 1000 for _, _, ts, _ in total) and any(ts % 1000 == 0 for _, _, ts, _ in total)
    # late and re-delivered files exist for feeds as for SPEC files
    stems = Counter(stem for _, stem in got)
    assert any(n > 1 for n in stems.values())
    local_date = {s: "-".join(re.search(r"-(\d{4})(\d{2})(\d{2})T", s).groups()) for _, s in got}
    assert any(folder != local_date[s] for folder, s in got if stems[s] == 1)


def test_spec_files_keep_every_other_line(feeds_run):
    sensors = feeds_run["sensors"]
    feed_sensors = {s for f in feeds_run["fed"].feeds for s in f["sensors"]}
    plain, fed = _files(feeds_run["plain_dir"]), _files(feeds_run["fed_dir"])
    spec_fed = {rel for rel in fed if feeds_run["feeds"].feed_for(rel) is None}
    assert spec_fed <= set(plain)
    untouched = changed = 0
    for rel, path in plain.items():
        lines = _lines(path)
        header = 1 if ".csv" in rel else 0
        kept = lines[:header]
        for ln in lines[header:]:
            rec = read_file_line(ln, lines[0] if header else None)
            if (rec is not None and validate(rec, sensors)[0] is None
                    and rec["sensor_id"] in feed_sensors):
                continue
            kept.append(ln)
        if kept == lines:
            untouched += 1
            assert fed[rel].read_bytes() == path.read_bytes(), rel
        elif not any(ln.strip() for ln in kept[header:]):
            assert rel not in fed, rel  # every record went to feeds: no file
        else:
            changed += 1
            assert _lines(fed[rel]) == kept, rel
    assert untouched and changed


def read_file_line(line: str, header: str | None) -> dict | None:
    """One SPEC line's raw field texts (None: malformed or blank), as read_file reads it."""
    line = line[:-1] if line.endswith("\r") else line
    if not line.strip():
        return None
    if header is not None:
        names = [h.strip().strip('"') for h in header.rstrip("\r").split(",")]
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != len(names):
            return None
        parts = [p[1:-1] if len(p) >= 2 and p[0] == p[-1] == '"' else p for p in parts]
        row = dict(zip(names, parts))
        return {k: row[k] for k in FIELDS} if all(k in row for k in FIELDS) else None
    try:
        obj = json.loads(line, parse_int=Num, parse_float=Num)
    except ValueError:
        return None
    ok = isinstance(obj, dict) and all(isinstance(obj.get(k), str) for k in FIELDS)
    return {k: str(obj[k]) for k in FIELDS} if ok else None


def test_a_glob_the_generator_cannot_follow_is_an_error(tmp_path, capsys):
    from jobs.feeds import FeedsFile

    conf = tmp_path / "conf"
    write_objects_yaml(conf / "objects.yaml", make_objects(seed=42))
    bad = FeedsFile.model_validate({"feeds": [
        {"path": "sniffers/*.pcap", "format": "pcap", "sensor_id": "s-215-0001"}]})
    landing = tmp_path / "landing"
    (landing / "keep").mkdir(parents=True)
    with pytest.raises(ValueError, match=re.escape("'sniffers/*.pcap'")):
        generate(conf, landing, start=START, days=1, devices=5, clean=True, feeds=bad)
    assert (landing / "keep").exists()  # checked before --clean empties anything
    (conf / "feeds.yaml").write_text(
        'feeds:\n  - {path: "x/**/*.csv", format: csv, sensor_id_column: S, '
        'timezone: Europe/Berlin, ts_format: "yyyyMMddHHmmss"}\n')
    assert main(["--conf", str(conf), "--landing", str(landing), "--days", "1",
                 "--devices", "5", "--feeds"]) == 2
    assert "'x/**/*.csv'" in capsys.readouterr().err
