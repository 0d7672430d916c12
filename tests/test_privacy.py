"""SPEC §2 "Privacy": the raw MAC never leaves ingestion, client ids are
HMAC-SHA256(FOOTFALL_HMAC_KEY, normalised MAC), and the development key is never
used silently.

A small generated world is run through the real pipeline twice — in-process with
``FOOTFALL_HMAC_KEY`` set, and (`make test-heavy`) through the command line without it,
with a Delta checkpoint at every commit — and every file
under each lakehouse root except ``bronze/quarantine`` (Parquet data files decoded and
as raw bytes, Delta commits with their column statistics, checkpoints, CRC files,
anything else) is searched for every MAC of the landing files, in every spelling SPEC
accepts and as raw bytes. The MACs are read from the landing files by this test, not
by pipeline code. The same scanner finds them in the quarantine and the landing
files, which proves it can.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs import run
from jobs.config import (DEV_HMAC_KEY, HMAC_KEY_ENV, ConfigError, check_hmac_key, client_id_key,
                         load_config)
from jobs.tables import BRONZE_PROBES, QUARANTINE, SESSIONS, Lakehouse
from tests.helpers import CLI_STORAGE_YAML, ROOT, generated_world

START = dt.date(2016, 3, 7)
DAYS = 3
END = START + dt.timedelta(days=DAYS - 1)
NOW = dt.datetime(2016, 4, 1, tzinfo=dt.timezone.utc)
#: Not ASCII, and longer than one SHA-256 block: the key is used as UTF-8 bytes.
TEST_KEY = "privacy-test-key-ключ-" + "x" * 60
#: Delta tables a run writes besides the quarantine (the scan covers any others it finds).
TABLES = ("bronze/probes", "silver/sessions", "silver/client_days", "gold/group_datetime",
          "ops/ingested_files", "ops/pending_dates")

# Spark for the command-line run: small, and a Delta checkpoint at every commit so that
# the scan meets checkpoints (with their copies of the column statistics) too.
STORAGE_YAML = CLI_STORAGE_YAML + "    spark.databricks.delta.properties.defaults.checkpointInterval: 1\n"


# -- the MACs of the world, read from the landing files by this test ---------------------

_HEX12 = re.compile(r"^[0-9a-f]{12}$")
#: SPEC §2's spellings, any case, one separator style per MAC.
_SPELLED = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}|[0-9a-f]{2}(-[0-9a-f]{2}){5}|[0-9a-f]{12}"
                      r"|[0-9a-f]{4}(\.[0-9a-f]{4}){2}", re.IGNORECASE)


@dataclass
class LandingMacs:
    every: set[str]       # 12 lower-case hex digits: every `mac` field that holds 48 bits
    valid: set[str]       # ... of those, spelled as SPEC accepts and unicast
    records: int          # records whose `mac` field was read
    spellings: set[str]   # the spelling styles seen (colon, dash, bare, dot)


def _mac_fields(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    name = path.name.lower().removesuffix(".gz")
    out = []
    if name.endswith(".csv"):
        rows = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(rows, [])]
        if "mac" in header:
            i = header.index("mac")
            out.extend(row[i] for row in rows if len(row) > i)
    elif name.endswith((".json", ".jsonl", ".ndjson")):
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("mac"), str):
                out.append(rec["mac"])
    return out


def read_landing_macs(landing: Path) -> LandingMacs:
    every, valid, spellings, records = set(), set(), set(), 0
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        for text in _mac_fields(path):
            records += 1
            t = text.strip()
            h = re.sub(r"[:.\-]", "", t).lower()
            if not _HEX12.match(h):
                continue
            every.add(h)
            if _SPELLED.fullmatch(t):
                spellings.add(":" if ":" in t else "-" if "-" in t else "." if "." in t else "bare")
                if int(h[:2], 16) & 1 == 0:
                    valid.add(h)
    return LandingMacs(every, valid, records, spellings)


def colon(h: str) -> str:
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def expected_client_id(key: str, h: str) -> str:
    return hmac.new(key.encode("utf-8"), colon(h).encode("ascii"), hashlib.sha256).hexdigest()


# -- the scanner -------------------------------------------------------------------------

_H = rb"[0-9a-f]"
#: Anything MAC-shaped, at every offset (overlapping: a MAC inside a longer hex string
#: is found too): pairs joined by `:`, `-` or `.` (mixed too), groups of four joined by
#: `.`, or 12 bare digits. Applied to lower-cased bytes.
_MAC_SHAPE = re.compile(rb"(?=(" + _H + rb"{2}(?:[:.\-]" + _H + rb"{2}){5}"
                        rb"|" + _H + rb"{4}\." + _H + rb"{4}\." + _H + rb"{4}"
                        rb"|" + _H + rb"{12}))")


def macs_in_text(data: bytes, macs: set[str]) -> set[str]:
    """The MACs of ``macs`` (12 hex digits) that ``data`` holds in any spelling, any case."""
    found = set()
    for m in _MAC_SHAPE.finditer(data.lower()):
        h = re.sub(rb"[^0-9a-f]", b"", m.group(1)).decode()
        if h in macs:
            found.add(h)
    return found


def macs_as_bytes(data: bytes, raw: dict[bytes, str]) -> set[str]:
    """The MACs whose 6 bytes (network order, or reversed as a little-endian integer)
    occur in ``data``."""
    return {h for b, h in raw.items() if b in data}


@dataclass
class Scan:
    files: dict[str, int] = field(default_factory=dict)      # kind -> files
    tables: dict[str, dict[str, int]] = field(default_factory=dict)  # Delta table -> kind -> files
    bytes: int = 0
    text_values: int = 0      # decoded string values searched (Parquet cells, stats, JSON)
    binary_values: int = 0    # decoded binary values searched
    int_values: int = 0       # decoded integers compared with the MACs as 48-bit numbers
    client_ids: set[str] = field(default_factory=set)  # 64-hex strings met in Parquet cells
    hits: list[tuple[str, str, str]] = field(default_factory=list)  # (file, how, mac)


def _kind(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if "/_delta_log/" in f"/{rel}":
        if re.fullmatch(r"\d{20}\.json", name):
            return "commit"
        if ".checkpoint" in name and name.endswith(".parquet"):
            return "checkpoint"
        if name.endswith(".crc"):
            return "crc"
        return "log-other"
    if name.endswith(".parquet"):
        return "data"
    if name.endswith(".crc"):
        return "crc"
    return "other"


def _leaves(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


class _Values:
    """Decoded values of one file, searched together."""

    def __init__(self, scan: Scan, rel: str, macs: set[str], raw: dict[bytes, str],
                 ints: dict[int, str]):
        self.scan, self.rel, self.macs, self.raw, self.ints = scan, rel, macs, raw, ints
        self.texts: list[bytes] = []

    def add(self, value) -> None:
        for v in _leaves(value):
            if isinstance(v, str):
                self.scan.text_values += 1
                self.texts.append(v.encode("utf-8"))
                if len(v) == 64 and re.fullmatch(r"[0-9a-f]{64}", v):
                    self.scan.client_ids.add(v)
                # A JSON document inside a string (Delta's `stats`): its values too.
                if v[:1] in "{[" and len(v) > 1:
                    try:
                        inner = json.loads(v)
                    except ValueError:
                        continue
                    self.add(inner)
            elif isinstance(v, (bytes, bytearray)):
                self.scan.binary_values += 1
                self.texts.append(bytes(v))
                for h in macs_as_bytes(bytes(v), self.raw):
                    self.scan.hits.append((self.rel, "binary value", h))
            elif isinstance(v, int) and not isinstance(v, bool):
                self.scan.int_values += 1
                if v in self.ints:
                    self.scan.hits.append((self.rel, "integer value", self.ints[v]))

    def close(self) -> None:
        for h in macs_in_text(b"\n".join(self.texts), self.macs):
            self.scan.hits.append((self.rel, "decoded value", h))


def _parquet_values(path: Path, values: _Values) -> None:
    pf = pq.ParquetFile(path)
    meta = pf.metadata
    values.add({k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                for k, v in (meta.metadata or {}).items()})
    for rg in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            st = meta.row_group(rg).column(c).statistics
            if st is not None and st.has_min_max:
                values.add([st.min, st.max])
    values.add(pf.read().to_pylist())


def scan(root: Path, macs: set[str], skip: tuple[str, ...] = ("bronze/quarantine",)) -> Scan:
    """Search every file below ``root`` (except the folders ``skip``) for ``macs``."""
    raw = {bytes.fromhex(h): h for h in macs} | {bytes.fromhex(h)[::-1]: h for h in macs}
    ints = {int(h, 16): h for h in macs}
    out = Scan()
    skipped = lambda rel: any(rel == s or rel.startswith(s + "/") for s in skip)  # noqa: E731
    tables = sorted((p.parent.relative_to(root).as_posix() for p in root.rglob("_delta_log")
                     if p.is_dir()), key=len, reverse=True)
    out.tables = {t: {} for t in tables if not skipped(t)}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if skipped(rel):
            continue
        kind = _kind(rel)
        table = next((t for t in tables if t == "." or rel.startswith(t + "/")), "(not a table)")
        out.files[kind] = out.files.get(kind, 0) + 1
        out.tables.setdefault(table, {})
        out.tables[table][kind] = out.tables[table].get(kind, 0) + 1
        data = path.read_bytes()
        out.bytes += len(data)
        for h in macs_in_text(rel.encode(), macs):
            out.hits.append((rel, "file name", h))
        layers = [data]
        if data[:2] == b"\x1f\x8b":
            layers.append(gzip.decompress(data))
        for layer in layers:
            for h in macs_in_text(layer, macs):
                out.hits.append((rel, "raw text", h))
            for h in macs_as_bytes(layer, raw):
                out.hits.append((rel, "raw bytes", h))
        values = _Values(out, rel, macs, raw, ints)
        if data[:4] == b"PAR1":
            _parquet_values(path, values)
        else:
            for line in data.splitlines():
                try:
                    values.add(json.loads(line))
                except ValueError:
                    pass
        values.close()
    return out


# -- the world and the two runs ----------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # bad_share 5 %: the quarantine holds a good number of MAC-bearing records.
    return generated_world(tmp_path_factory.mktemp("privacy"), start=START, days=DAYS, devices=8,
                           seed=11, storage=STORAGE_YAML, bad_share=0.05)


@pytest.fixture(scope="module")
def landing_macs(world) -> LandingMacs:
    return read_landing_macs(world / "landing")


@pytest.fixture(scope="module")
def keyed_run(spark, world):
    """The pipeline in-process, with FOOTFALL_HMAC_KEY set."""
    lake = world / "lake-keyed"
    cfg = load_config(world / "conf").with_storage(str(world / "landing"), str(lake))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(HMAC_KEY_ENV, TEST_KEY)
        summary = run.backfill(spark, cfg, START, END, now=NOW)
    return lake, summary


def _jobs(*args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != HMAC_KEY_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if key is not None:
        env[HMAC_KEY_ENV] = key
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


#: The tests of the command-line run (a second backfill in its own JVM, a Delta checkpoint
#: at every commit: minutes): `make test-heavy`. `make test` scans the in-process run.
cli = pytest.mark.heavy


@pytest.fixture(scope="module")
def cli_run(world):
    """``python -m jobs backfill`` without FOOTFALL_HMAC_KEY in its environment."""
    lake = world / "lake-cli"
    summary_json = world / "cli-summary.json"
    out = _jobs("backfill", "--from", str(START), "--to", str(END), "--conf", str(world / "conf"),
                "--landing", str(world / "landing"), "--lakehouse", str(lake),
                "--summary-json", str(summary_json))
    assert out.returncode == 0, out.stderr[-3000:]
    return lake, out, json.loads(summary_json.read_text())


def _client_ids(spark, lake: Path, table: str) -> set[str]:
    return {r.client_id for r in Lakehouse(spark, str(lake)).read(table)
            .select("client_id").distinct().collect()}


# -- the scanner itself ------------------------------------------------------------------

def test_the_scanner_finds_every_spelling_and_raw_bytes():
    mac = "0a1b2c3d4e5f"
    macs = {mac}
    for text in ["0a:1b:2c:3d:4e:5f", "0A:1B:2C:3D:4E:5F", "0a-1b-2c-3d-4e-5f", "0A-1B-2C-3D-4E-5F",
                 "0a1b2c3d4e5f", "0A1B2C3D4E5F", "0a1b.2c3d.4e5f", "0A1B.2C3D.4E5F",
                 "0a:1B-2c:3D-4e:5F"]:
        assert macs_in_text(f'{{"x": "{text}"}}'.encode(), macs) == macs, text
        # inside a longer hex string, at an odd offset
        assert macs_in_text(f"f{text}ab12".encode(), macs) == macs, text
    for miss in ["0a:1b:2c:3d:4e:5e", "0a1b2c3d4e", "1b:2c:3d:4e:5f", "0a 1b 2c 3d 4e 5f"]:
        assert macs_in_text(miss.encode(), macs) == set(), miss
    raw = {bytes.fromhex(mac): mac, bytes.fromhex(mac)[::-1]: mac}
    assert macs_as_bytes(b"\x00\x0a\x1b\x2c\x3d\x4e\x5f\x00", raw) == macs
    assert macs_as_bytes(int(mac, 16).to_bytes(8, "little"), raw) == macs
    assert macs_as_bytes(b"\x0a\x1b\x2c\x3d\x4e\x5e", raw) == set()


def test_the_landing_files_hold_macs_in_every_spelling(world, landing_macs):
    m = landing_macs
    assert m.records > 4000
    assert len(m.valid) >= 40 and m.valid < m.every  # and some multicast ones
    assert m.spellings == {":", "-", ".", "bare"}
    assert any(p.name.endswith(".gz") for p in (world / "landing").rglob("*"))
    # Control: the scanner finds every one of them in the landing files.
    s = scan(world / "landing", m.every, skip=())
    assert {h for _, _, h in s.hits} == m.every


# -- (a) no stored table outside the quarantine holds a MAC ------------------------------

def _assert_no_mac(s: Scan, landing_macs: LandingMacs) -> None:
    assert not s.hits, f"MACs found in the lakehouse: {sorted(set(s.hits))[:20]}"
    # The scan really looked: every Delta table but the quarantine, each with its data
    # files and its log, ...
    assert set(TABLES) <= set(s.tables) and "bronze/quarantine" not in s.tables, s.tables
    for t, kinds in s.tables.items():
        if t == "(not a table)":  # e.g. the run lock file
            continue
        assert kinds.get("data", 0) >= 1 and kinds.get("commit", 0) >= 1, (t, kinds)
    assert s.files["data"] >= 30 and s.files["commit"] >= 12 and s.files["crc"] >= 40, s.files
    assert s.bytes > 300_000
    # ... and some hundred thousand decoded values (gold alone has 28 x 7 rows a bucket),
    assert s.text_values > 100_000 and s.int_values > 100_000, (s.text_values, s.int_values)
    # ... and met the client ids, one per valid MAC (the values it searched are theirs).
    assert len(s.client_ids) >= len(landing_macs.valid)


def test_no_mac_outside_the_quarantine_in_process_run(spark, keyed_run, landing_macs):
    lake, _ = keyed_run
    s = scan(lake, landing_macs.every)
    _assert_no_mac(s, landing_macs)
    # Nor the key itself.
    assert not [p for p in lake.rglob("*") if p.is_file() and TEST_KEY.encode() in p.read_bytes()]


@cli
def test_no_mac_outside_the_quarantine_cli_run_with_checkpoints(cli_run, landing_macs):
    lake, _, _ = cli_run
    s = scan(lake, landing_macs.every)
    _assert_no_mac(s, landing_macs)
    assert s.files.get("checkpoint", 0) >= 5, s.files
    assert s.tables["bronze/probes"].get("checkpoint", 0) >= 1, s.tables["bronze/probes"]


def test_control_the_quarantine_holds_macs_and_the_scanner_finds_them(spark, keyed_run,
                                                                     landing_macs):
    lake, summary = keyed_run
    rejected_with_a_mac = sum(summary.rejected.get(r, 0)
                              for r in ("invalid_rssi", "invalid_ts", "unknown_sensor"))
    assert rejected_with_a_mac >= 50, summary.rejected
    s = scan(lake / QUARANTINE, landing_macs.every, skip=())
    found = {h for _, _, h in s.hits}
    assert len(found) >= 20, s.hits[:10]
    assert any(how == "decoded value" and _kind(f) == "data" for f, how, _ in s.hits)
    # The full scan of the same lakehouse, quarantine included, finds them too.
    assert {h for _, _, h in scan(lake, landing_macs.every, skip=()).hits} >= found


# -- (b) the HMAC key comes from the environment -----------------------------------------

def test_client_ids_are_the_hmac_of_the_normalised_mac_with_the_environment_key(
        spark, keyed_run, landing_macs):
    lake, summary = keyed_run
    got = _client_ids(spark, lake, BRONZE_PROBES)
    assert got == {expected_client_id(TEST_KEY, h) for h in landing_macs.valid}
    assert _client_ids(spark, lake, SESSIONS) <= got
    assert not got & {expected_client_id(DEV_HMAC_KEY, h) for h in landing_macs.valid}
    assert not [n for n in summary.notes if "HMAC" in n]


@cli
def test_a_run_without_the_key_uses_the_dev_key_and_says_so(spark, cli_run, keyed_run,
                                                            landing_macs):
    lake, out, summary = cli_run
    dev_ids = {expected_client_id(DEV_HMAC_KEY, h) for h in landing_macs.valid}
    assert _client_ids(spark, lake, BRONZE_PROBES) == dev_ids
    assert not dev_ids & _client_ids(spark, keyed_run[0], BRONZE_PROBES)
    # In the run summary (stdout and --summary-json) ...
    assert "note: client ids use the development HMAC key: set FOOTFALL_HMAC_KEY" in out.stdout
    assert any("development HMAC key" in n for n in summary["notes"])
    # ... and on stderr, before the run starts.
    assert "warning: FOOTFALL_HMAC_KEY is not set: client ids use the development-only" in out.stderr
    assert "require_hmac_key: true" in out.stderr


@cli
def test_the_command_line_reports_each_stage_on_stderr(cli_run):
    """Not privacy, but this module's command-line run shows it: progress as it goes."""
    _, out, summary = cli_run
    for name in summary["timings"]:
        assert f"] {name} …" in out.stderr and f"] {name} done in " in out.stderr, out.stderr[-2000:]
    assert f"  read {summary['records_read']} records: {summary['records_valid']} valid" in out.stderr


def _require_conf(world: Path, tmp_path: Path, value: str = "true") -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "objects.yaml").write_text((world / "conf" / "objects.yaml").read_text())
    (conf / "storage.yaml").write_text(f"require_hmac_key: {value}\n" + STORAGE_YAML)
    return conf


def test_require_hmac_key_stops_a_run_without_the_key_before_any_write(world, tmp_path):
    conf = _require_conf(world, tmp_path)
    lake = tmp_path / "lake"
    for key in (None, "", DEV_HMAC_KEY):
        out = _jobs("backfill", "--from", str(START), "--to", str(END), "--conf", str(conf),
                    "--landing", str(world / "landing"), "--lakehouse", str(lake), key=key)
        assert out.returncode == 2, (key, out.stderr[-2000:])
        assert "config error:" in out.stderr
        assert f"{conf / 'storage.yaml'}: require_hmac_key is true" in out.stderr
        assert "environment variable FOOTFALL_HMAC_KEY" in out.stderr
        assert "Traceback" not in out.stderr and out.stdout == ""
        assert not lake.exists()
    out = _jobs("nightly", "--date", str(END), "--conf", str(conf), "--landing",
                str(world / "landing"), "--lakehouse", str(lake))
    assert out.returncode == 2 and "FOOTFALL_HMAC_KEY" in out.stderr
    assert not lake.exists()


def test_require_hmac_key_in_process_and_with_the_key(spark, world, tmp_path, monkeypatch):
    conf = _require_conf(world, tmp_path)
    lake = tmp_path / "lake"
    cfg = load_config(conf).with_storage(str(world / "landing"), str(lake))
    assert cfg.storage.require_hmac_key is True
    monkeypatch.delenv(HMAC_KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match="require_hmac_key is true.*FOOTFALL_HMAC_KEY"):
        run.backfill(spark, cfg, START, END, now=NOW)
    assert not lake.exists()
    with pytest.raises(ConfigError, match="FOOTFALL_HMAC_KEY"):
        run.nightly(spark, cfg, END, now=NOW)
    assert not lake.exists()
    # With the key: no error, no warning.
    err = io.StringIO()
    assert client_id_key(cfg, {HMAC_KEY_ENV: TEST_KEY}) == (TEST_KEY.encode("utf-8"), False)
    assert check_hmac_key(cfg, {HMAC_KEY_ENV: TEST_KEY}, stream=err) is False
    assert err.getvalue() == ""


def test_the_embedded_default_keeps_the_dev_key_with_a_warning(world):
    cfg = load_config(ROOT / "conf")
    assert cfg.storage.require_hmac_key is False
    err = io.StringIO()
    assert client_id_key(cfg, {}) == (DEV_HMAC_KEY.encode("utf-8"), True)
    assert client_id_key(cfg, {HMAC_KEY_ENV: ""}) == (DEV_HMAC_KEY.encode("utf-8"), True)
    # The development key put into the variable is still the development key.
    assert client_id_key(cfg, {HMAC_KEY_ENV: DEV_HMAC_KEY}) == (DEV_HMAC_KEY.encode("utf-8"), True)
    assert client_id_key(cfg, {HMAC_KEY_ENV: "k"}) == (b"k", False)
    assert check_hmac_key(cfg, {}, stream=err) is True
    assert "FOOTFALL_HMAC_KEY is not set" in err.getvalue()
    assert load_config(world / "conf").storage.require_hmac_key is False  # not in storage.yaml


@pytest.mark.parametrize("value", ["1", "'true'", "maybe"])
def test_require_hmac_key_must_be_a_boolean(world, tmp_path, value):
    conf = _require_conf(world, tmp_path, value)
    with pytest.raises(ConfigError, match=r"storage\.yaml: require_hmac_key: expected true or false"):
        load_config(conf)

