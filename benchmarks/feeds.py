"""Ingest rate per landing format on the same records (``make bench-feeds``).

Writes one set of records (one sensor, a day's worth per file) as SPEC CSV, SPEC JSON
lines, pcap, pcapng and a vendor CSV feed (conf/feeds.yaml's shape), then times what
the ingest does with each before it writes bronze: read the files, parse them into
record fields, validate and pseudonymise (:func:`jobs.formats.read_fields` and the
stage's ``_parse``), ending in a count of the valid records. One Spark session; each
format is read once to warm up, then timed ``--repeat`` times (the median counts).
Prints a table and writes ``bench-out/feeds.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from jobs import formats, landing, stages
from jobs.config import hmac_key, load_config
from jobs.feeds import Feed
from jobs.generate.captures import capture_file
from jobs.generate.vendorcsv import csv_file
from jobs.spark import build_spark
from jobs.summary import Summary
from tests.helpers import write_conf

SENSOR = "s-1"
VENDOR = Feed(path="vendor/*.csv", format="csv", delimiter=";", sensor_id_column="Sniffer",
              columns={"mac": "Source MAC", "ts": "Local time", "rssi": "Signal (dBm)"},
              timezone="Europe/Moscow", ts_format="dd.MM.yyyy HH:mm:ss[.SSS]")
FEEDS_YAML = """\
feeds:
  - {path: "pcap/*.pcap", format: pcap, sensor_id: s-1}
  - {path: "pcapng/*.pcapng", format: pcapng, sensor_id: s-1}
  - path: "vendor/*.csv"
    format: csv
    delimiter: ";"
    columns: {mac: "Source MAC", ts: "Local time", rssi: "Signal (dBm)"}
    sensor_id_column: Sniffer
    timezone: Europe/Moscow
    ts_format: "dd.MM.yyyy HH:mm:ss[.SSS]"
"""
FORMATS = ("spec-csv", "spec-json", "pcap", "pcapng", "vendor-csv")


def write_landing(root: Path, records: int, files: int, seed: int = 1) -> None:
    """The same records in every format, ``files`` files each."""
    rng = np.random.default_rng(seed)
    day0 = int(dt.datetime(2016, 2, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    for f in range(files):
        n = records // files
        ts = np.sort(day0 + f * 86_400_000 + rng.integers(0, 86_400_000, n))
        # Universally administered unicast: the multicast and local bits clear.
        mac = rng.integers(0, 1 << 48, n, dtype=np.int64) & ~np.int64(3 << 40)
        rssi = rng.integers(-95, -30, n)
        macs = [":".join(f"{m:012x}"[i:i + 2] for i in range(0, 12, 2)) for m in mac.tolist()]
        out = {
            f"spec-csv/{f}.csv": "sensor_id,mac,ts,rssi\n" + "".join(
                f"{SENSOR},{m},{t},{r}\n" for m, t, r in zip(macs, ts.tolist(), rssi.tolist())),
            f"spec-json/{f}.ndjson": "".join(
                json.dumps({"sensor_id": SENSOR, "mac": m, "ts": t, "rssi": r}) + "\n"
                for m, t, r in zip(macs, ts.tolist(), rssi.tolist())),
        }
        for path, text in out.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        for fmt in ("pcap", "pcapng"):
            (root / fmt).mkdir(exist_ok=True)
            (root / fmt / f"{f}.{fmt}").write_bytes(capture_file(fmt, mac, ts, rssi, rng)[0])
        (root / "vendor").mkdir(exist_ok=True)
        (root / "vendor" / f"{f}.csv").write_bytes(csv_file(VENDOR, [SENSOR] * n, mac, ts, rssi, rng))


def _folder(fmt: str) -> str:
    return {"spec-csv": "spec-csv", "spec-json": "spec-json", "vendor-csv": "vendor"}.get(fmt, fmt)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="bench-out/feeds")
    p.add_argument("--formats", default=",".join(FORMATS),
                   help=f"comma-separated, of {', '.join(FORMATS)} (spec-csv is the baseline)")
    a = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="footfall-bench-feeds-"))
    conf = write_conf(root / "conf")
    (conf / "feeds.yaml").write_text(FEEDS_YAML)
    t0 = time.perf_counter()
    write_landing(root / "landing", a.records, a.files)
    print(f"wrote {a.records:,} records x {len(FORMATS)} formats in {time.perf_counter() - t0:.0f}s")
    cfg = load_config(conf).with_storage(str(root / "landing"), str(root / "lake"))
    spark = build_spark(cfg.storage.spark_master)
    key, now = hmac_key()[0], dt.datetime(2016, 3, 1, tzinfo=dt.timezone.utc)
    results = {}
    listing = landing.list_landing(spark, cfg.storage.landing, cfg.feeds)
    chosen = ["spec-csv"] + [f for f in a.formats.split(",") if f in FORMATS and f != "spec-csv"]
    for fmt in chosen:
        files = [f for f in listing if f"/landing/{_folder(fmt)}/" in f.path]
        times, valid = [], 0
        for i in range(a.repeat + 1):
            summary = Summary("bench", "bench")
            t = time.perf_counter()
            fields, _, cached = formats.read_fields(spark, files, cfg.feeds, summary)
            valid = stages._parse(fields, spark, cfg, key, now).where("reason IS NULL").count()
            if i:
                times.append(time.perf_counter() - t)
            for df in cached:
                df.unpersist()
        med = statistics.median(times)
        results[fmt] = {"seconds": med, "valid": valid, "records_per_s": valid / med,
                        "bytes": sum(f.size for f in files)}
        print(f"{fmt:11s} {valid:>10,} valid  {med:6.1f}s  {valid / med:>10,.0f} records/s")
    spark.stop()
    base = results["spec-csv"]["seconds"]
    lines = ["| format | files MB | valid records | seconds (median) | records/s | × SPEC CSV time |",
             "|---|---:|---:|---:|---:|---:|"]
    for fmt, r in results.items():
        lines.append(f"| {fmt} | {r['bytes'] / 1e6:.1f} | {r['valid']:,} | {r['seconds']:.1f} | "
                     f"{r['records_per_s']:,.0f} | {r['seconds'] / base:.2f} |")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
