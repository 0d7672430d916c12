"""The same small backfill on local disk and on an S3 server (``make bench-s3``).

Generates a small world, starts moto's S3 server on loopback (benchmarks/s3server.py),
copies the landing files there, and runs ``python -m jobs backfill`` twice from a fresh
lakehouse: landing and lakehouse on local disk, then both on ``s3a://``. Prints each run's
wall time and stage times side by side and writes ``bench-out/s3.{json,md}``. moto keeps
objects in memory and answers on loopback: the figures show the cost of going through
S3A and the object-store protocol, not a real network's latency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import s3server
from tests.helpers import CLI_STORAGE_YAML, ROOT, generated_world

START = dt.date(2016, 3, 7)


def _backfill(conf: Path, landing: str, lake: str, days: int, out: Path) -> dict:
    end = START + dt.timedelta(days=days - 1)
    cmd = [sys.executable, "-m", "jobs", "backfill", "--from", str(START), "--to", str(end),
           "--conf", str(conf), "--landing", landing, "--lakehouse", lake, "--quiet",
           "--summary-json", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    summary = json.loads(out.read_text())
    return {"wall_s": round(time.perf_counter() - t0, 1), "records": summary["records_read"],
            "gold_rows": summary["gold_rows_written"], "stages_s": summary["timings"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--devices", type=int, default=12)
    p.add_argument("--out", type=Path, default=ROOT / "bench-out")
    args = p.parse_args(argv)
    server = s3server.start()
    os.environ.update(s3server.CREDENTIALS)
    try:
        with tempfile.TemporaryDirectory(prefix="footfall-bench-s3-") as tmp:
            root = Path(tmp)
            s3 = "".join(f"    {k}: {v}\n" for k, v in server.spark_conf().items())
            generated_world(root, start=START, days=args.days, devices=args.devices, seed=23,
                            storage=CLI_STORAGE_YAML + s3)
            server.bucket("bench")
            files = server.upload(root / "landing", "bench", "landing")
            runs = {
                "local disk": _backfill(root / "conf", str(root / "landing"), str(root / "lake"),
                                        args.days, root / "local.json"),
                "S3 (moto)": _backfill(root / "conf", "s3a://bench/landing", "s3a://bench/lake",
                                       args.days, root / "s3.json"),
            }
    finally:
        s3server.stop(server)
    base = runs["local disk"]["wall_s"]
    stages = list(runs["local disk"]["stages_s"])
    lines = [f"Backfill of {args.days} days, {args.devices} devices ({files} landing files, "
             f"{runs['local disk']['records']:,} records), one run each:", "",
             "| run | wall s | vs local | " + " | ".join(f"{s} s" for s in stages) + " |",
             "|---|---:|---:|" + "---:|" * len(stages)]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['wall_s']:.1f} | {r['wall_s'] / base:.2f} | "
                     + " | ".join(f"{r['stages_s'].get(s, 0):.1f}" for s in stages) + " |")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "s3.md").write_text(text + "\n")
    (args.out / "s3.json").write_text(json.dumps(runs, indent=2) + "\n")
    assert runs["local disk"]["gold_rows"] == runs["S3 (moto)"]["gold_rows"], "gold differs"
    return 0


if __name__ == "__main__":
    sys.exit(main())
