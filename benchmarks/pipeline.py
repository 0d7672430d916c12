"""``make bench`` / ``python -m benchmarks.pipeline``: backfill throughput and memory by
data size, side by side with a DuckDB baseline, and the cost of a nightly run.

For each size it generates a world (cached under ``.cache/bench/``), runs the real
command line ``python -m jobs backfill`` in a fresh process on a fresh lakehouse with
the embedded default settings, samples the resident memory of the whole process tree
(Python driver + JVM) twice a second, and reports per stage: seconds, probes per
second and peak memory. Then, in the same run on the same machine:

- the DuckDB baseline (:mod:`benchmarks.duckdb_baseline`: the SPEC as DuckDB SQL in one
  process) on the same landing files, its gold compared with the product's row by row,
  and the ratio of the two times;
- after the first size's backfill, a nightly run of one new day (1,500 records of one
  mall) and then a nightly run with nothing new;
- unless ``--no-combos``, what the 28 × 7 combinations cost: the gold aggregation for
  all of them against the same aggregation for one (b, e) pair.

Benchmarks measure; they assert nothing. Results go to ``bench-out/`` (JSON and a
Markdown table); ``--write-docs`` also puts the tables into docs/performance.md
between its ``bench:`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.common import ROOT
from jobs.spec import (BOUNCED, CLIENT_DAYS, COMEBACK_WINDOWS, ENGAGED, HALF_ENGAGED, SESSIONS,
                       VISITOR)

START = dt.date(2016, 1, 4)
DAYS = 57


def _world(size: int, cache: Path) -> tuple[Path, Path, int]:
    from jobs.generate import generate
    from jobs.generate.world import make_objects, write_objects_yaml, write_pipeline_yaml

    folder = cache / f"world-{size}"
    marker = folder / "generated.json"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "conf").mkdir(parents=True)
        write_objects_yaml(folder / "conf" / "objects.yaml", make_objects())
        write_pipeline_yaml(folder / "conf" / "pipeline.yaml")
    # The embedded default's settings as they are now, also for a world generated before.
    shutil.copy(ROOT / "conf" / "storage.yaml", folder / "conf" / "storage.yaml")
    if not marker.exists():
        summary = generate(folder / "conf", folder / "landing", start=START, days=DAYS,
                           target_probes=size, seed=42)
        marker.write_text(json.dumps({"records": summary.records}))
    records = json.loads(marker.read_text())["records"]
    return folder / "conf", folder / "landing", records


def _process_name(p: psutil.Process) -> str:
    """'java: …Executor…' / 'python: -m jobs' — enough to tell the driver, executors and
    Python workers apart."""
    cmd = p.cmdline()
    main = next((c for c in cmd if c.startswith("org.apache.spark.")), None)
    if main is None and "-m" in cmd:
        main = "-m " + cmd[cmd.index("-m") + 1] if cmd.index("-m") + 1 < len(cmd) else "-m"
    return f"{p.name()}: {main or ' '.join(cmd[1:2])}"


class _Sampler(threading.Thread):
    """Samples the RSS of a process and all its children; ``samples`` holds (time, total
    bytes, the three largest processes as (name, pid, bytes)), so a peak can be explained."""

    def __init__(self, pid: int, period: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.period, self.samples = pid, period, []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root] + root.children(recursive=True)
                # On a cluster the executors are the workers' children, not ours.
                procs += [p for p in psutil.process_iter(["cmdline"])
                          if "CoarseGrainedExecutorBackend" in " ".join(p.info["cmdline"] or [])]
                sizes = []
                for p in procs:
                    try:
                        # A fork not yet exec'd (the JVM starting a shell command, a
                        # pyspark.daemon worker) shares its parent's pages: count them once.
                        if p.pid != self.pid and p.cmdline() == p.parent().cmdline():
                            continue
                        sizes.append((_process_name(p), p.pid, p.memory_info().rss))
                    except (psutil.Error, AttributeError):
                        pass
                top = sorted(sizes, key=lambda s: -s[2])[:3]
                self.samples.append((time.time(), sum(s[2] for s in sizes), top))
            except psutil.Error:
                pass
            self.stop.wait(self.period)


@dataclass
class _Run:
    """A command run by :func:`_sampled`: when it started (epoch s), its wall seconds,
    the memory samples of its process tree, its output and exit code."""

    started: float
    wall: float
    samples: list
    log: str
    code: int

    @property
    def peak_mb(self) -> float:
        return max((s[1] for s in self.samples), default=0) / 2**20


def _sampled(cmd: list[str]) -> _Run:
    """Run ``cmd`` from the checkout while sampling its process tree's memory."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = _Sampler(proc.pid)
    sampler.start()
    log, _ = proc.communicate()
    sampler.stop.set()
    sampler.join()
    return _Run(t0, time.time() - t0, sampler.samples, log, proc.returncode)


def _backfill(conf: Path, landing: Path, lake: Path, out: Path, master: str | None) -> dict:
    shutil.rmtree(lake, ignore_errors=True)
    summary_file = out / f"{lake.name}.summary.json"
    cmd = [sys.executable, "-m", "jobs", "backfill", "--from", str(START),
           "--to", str(START + dt.timedelta(days=DAYS - 1)), "--conf", str(conf),
           "--landing", str(landing), "--lakehouse", str(lake), "--summary-json", str(summary_file)]
    if master:
        cmd += ["--master", master]
    run = _sampled(cmd)
    if run.code != 0:
        raise RuntimeError(f"backfill failed:\n{run.log[-3000:]}")
    summary = json.loads(summary_file.read_text())
    stages = {}
    for name, (a, b) in summary["stage_spans"].items():
        peak = max((s for s in run.samples if a <= s[0] <= b), key=lambda s: s[1], default=None)
        stages[name] = {"seconds": b - a, "peak_rss_mb": peak[1] / 2**20 if peak else 0,
                        "peak_processes": [{"process": n, "pid": pid, "rss_mb": round(r / 2**20)}
                                           for n, pid, r in peak[2]] if peak else []}
    return {"wall_seconds": run.wall, "summary": summary, "stages": stages, "peak_rss_mb": run.peak_mb,
            "rss_timeline_mb": [(round(t - run.started, 1), round(r / 2**20)) for t, r, _ in run.samples[::10]]}


def duckdb_baseline(conf: Path, landing: Path, lake: Path, out: Path) -> dict:
    """The DuckDB baseline on the same files, compared with the product's gold."""
    summary_file = out / f"{lake.name}.duckdb.json"
    run = _sampled([sys.executable, "-m", "benchmarks.duckdb_baseline", "--conf", str(conf),
                    "--landing", str(landing), "--lakehouse", str(lake), "--summary-json", str(summary_file)])
    if not summary_file.exists():
        raise RuntimeError(f"duckdb baseline failed:\n{run.log[-3000:]}")
    r = json.loads(summary_file.read_text())
    return {"seconds": r["seconds"], "wall_seconds": run.wall, "peak_rss_mb": run.peak_mb,
            "gold_rows": r["gold_rows"], "mismatches": r["mismatches"]}


NIGHTLY_DATE = START + dt.timedelta(days=DAYS)
NIGHTLY_RECORDS = 1500


def _day_file(conf: Path, path: Path) -> None:
    """One day of a mall's records as a sensor uploads them (NDJSON), for the nightly run."""
    import random

    from jobs.config import load_config
    cfg = load_config(conf)
    sensors = [r[0] for r in cfg.sensor_rows() if r[3] == cfg.malls[0].id]
    rng = random.Random(7)
    t0 = int(dt.datetime.combine(NIGHTLY_DATE, dt.time(6), dt.timezone.utc).timestamp() * 1000)
    macs = [f"{rng.choice(['a4', '3c', '02'])}{rng.randrange(16 ** 10):010x}" for _ in range(150)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"sensor_id": rng.choice(sensors), "mac": rng.choice(macs),
                                        "ts": t0 + rng.randrange(12 * 3600 * 1000), "rssi": rng.randint(-90, -40)}) + "\n"
                            for _ in range(NIGHTLY_RECORDS)))


def _nightly_folder(landing: Path) -> Path:
    """Where the nightly day's file goes; never left in the cached world (removed here
    first in case a bench run was killed)."""
    folder = landing / f"bench-nightly-{NIGHTLY_DATE}"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def nightly_runs(conf: Path, landing: Path, lake: Path, out: Path) -> dict:
    """A nightly run of one new day on a backfilled lakehouse, then one with nothing new.
    The day's file is removed from the (cached) world afterwards."""
    visible = _nightly_folder(landing)
    _day_file(conf, visible / f"{NIGHTLY_DATE}.ndjson")
    runs = {}
    try:
        for name in ("one_day", "nothing_new"):
            summary_file = out / f"nightly-{name}.summary.json"
            run = _sampled([
                sys.executable, "-m", "jobs", "nightly", "--date", str(NIGHTLY_DATE), "--conf", str(conf),
                "--landing", str(landing), "--lakehouse", str(lake), "--quiet", "--summary-json", str(summary_file)])
            if run.code != 0:
                raise RuntimeError(f"nightly failed:\n{run.log[-3000:]}")
            summary = json.loads(summary_file.read_text())
            runs[name] = {"wall_seconds": run.wall, "pipeline_seconds": sum(summary["timings"].values()),
                          "timings": summary["timings"], "records": summary["records_read"],
                          "peak_rss_mb": run.peak_mb}
    finally:
        shutil.rmtree(visible, ignore_errors=True)
    return runs


def _cluster_conf(conf: Path, executor_memory: str) -> Path:
    """A copy of the world's config whose storage.yaml sizes the cluster's executors."""
    import yaml

    target = conf.parent / "conf-cluster"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(conf, target)
    storage = yaml.safe_load((target / "storage.yaml").read_text()) or {}
    storage.setdefault("spark", {}).setdefault("conf", {})["spark.executor.memory"] = executor_memory
    (target / "storage.yaml").write_text(yaml.safe_dump(storage, sort_keys=False))
    return target


def combos_cost(lake: Path, conf: Path) -> dict:
    """Time the gold aggregation for all 28 × 7 combinations against the same pipeline
    for one (b, e) pair, both on the same classified sessions, written to a no-op sink."""
    from pyspark.sql import functions as F

    from jobs import classify, metrics
    from jobs.config import load_config
    from jobs.stages import malls_df
    from jobs.spark import build_spark
    from jobs.tables import Lakehouse

    cfg = load_config(conf)
    spark = build_spark(cfg.storage.spark_master, "footfall-bench", cfg.storage.spark_conf)
    lake_ = Lakehouse(spark, str(lake))
    s = cfg.settings
    days = lake_.read(CLIENT_DAYS)
    employees = classify.employee_days(days.where("object_type = 'mall'"), s.employee_window_days,
                                       s.employee_min_days, s.employee_min_daily_minutes)
    classified = classify.classify(lake_.read(SESSIONS), employees,
                                   classify.previous_visits(days)).persist()
    classified.count()
    malls = malls_df(spark, cfg)

    def timed(df) -> float:
        t = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        return time.perf_counter() - t

    all_combos = timed(metrics.group_datetime(classified, malls))
    # One pair (b=5, e=20): a plain groupBy per user type, counts and distinct clients.
    k = F.col("duration_ms")
    user_type = (F.when(F.col("base_class") != VISITOR, F.col("base_class"))
                 .when(k < 5 * 60_000, BOUNCED).when(k < 20 * 60_000, HALF_ENGAGED).otherwise(ENGAGED))
    keys = ["mall_id", "object_id", "object_type", "interval", "bucket_start", "bucket_date"]
    one = (metrics.add_buckets(classified, malls).withColumn("user_type", user_type)
           .groupBy(*keys, "user_type")
           .agg(F.count(F.lit(1)).alias("n"), F.sum("duration_ms").alias("ms"),
                F.countDistinct("client_id").alias("clients"),
                *[F.countDistinct(F.when(F.col("comeback").bitwiseAND(1 << i) != 0, F.col("client_id")))
                  .alias(f"cb{i}") for i in range(len(COMEBACK_WINDOWS))]))
    one_pair = timed(one)
    spark.stop()
    return {"all_28x7_seconds": all_combos, "one_pair_seconds": one_pair}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000000,2000000,5000000",
                   help="target probe counts, comma-separated (default: 1M, 2M, 5M)")
    p.add_argument("--out", default=str(ROOT / "bench-out"))
    p.add_argument("--cache", default=str(ROOT / ".cache" / "bench"))
    p.add_argument("--master", help="Spark master URL (default: conf/storage.yaml's)")
    p.add_argument("--no-combos", action="store_true", help="skip the 28 × 7 cost measurement")
    p.add_argument("--no-baseline", action="store_true", help="skip the DuckDB baseline and the nightly runs")
    p.add_argument("--write-docs", action="store_true",
                   help="put the tables into docs/performance.md between its bench: markers")
    p.add_argument("--executor-memory", default="2500m",
                   help="with --master spark://…: memory per executor (make cluster's workers have 3g)")
    args = p.parse_args(argv)
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                           "python": platform.python_version(), "platform": platform.platform()},
               "runs": []}
    for i, size in enumerate(int(x) for x in args.sizes.split(",")):
        conf, landing, records = _world(size, cache)
        _nightly_folder(landing)
        if args.master and not args.master.startswith("local"):
            conf = _cluster_conf(conf, args.executor_memory)
        lake = cache / f"lake-{size}"
        r = _backfill(conf, landing, lake, out, args.master)
        r.update({"target": size, "records": records})
        if not args.no_baseline:
            r["duckdb"] = duckdb_baseline(conf, landing, lake, out)
            if i == 0:
                results["nightly"] = nightly_runs(conf, landing, lake, out)
        if not args.no_combos:
            r["combos"] = combos_cost(lake, conf)
        results["runs"].append(r)
        print(_row(r), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = _table(results)
    (out / "results.md").write_text(table)
    print(table)
    if args.write_docs:
        _write_docs(table)
    return 0


DOCS = ROOT / "docs" / "performance.md"
MARKERS = ("<!-- bench:start (written by make bench) -->", "<!-- bench:end -->")


def _write_docs(table: str) -> None:
    text = DOCS.read_text()
    head, _, rest = text.partition(MARKERS[0])
    _, _, tail = rest.partition(MARKERS[1])
    if not rest:
        raise SystemExit(f"{DOCS}: no line {MARKERS[0]!r}: nothing written")
    today = dt.date.today().isoformat()
    DOCS.write_text(f"{head}{MARKERS[0]}\nMeasured {today} by `make bench`.\n\n{table}{MARKERS[1]}{tail}")


def _row(r: dict) -> str:
    return (f"{r['records']:>11,} records: {r['wall_seconds']:.0f}s wall, "
            f"{r['records'] / r['wall_seconds']:,.0f} records/s, peak {r['peak_rss_mb']:,.0f} MB")


def _table(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['cpus']} cores, {m['memory_gb']} GiB, Python {m['python']}", "",
             "| records | stage | seconds | records/s | peak RSS (MB) | largest processes at the peak (MB) |",
             "|---:|---|---:|---:|---:|---|"]
    for r in results["runs"]:
        n = r["records"]
        for name, st in r["stages"].items():
            top = ", ".join(f"{p['process']} {p['rss_mb']:,}" for p in st.get("peak_processes", []))
            lines.append(f"| {n:,} | {name} | {st['seconds']:.1f} | {n / st['seconds']:,.0f} | "
                         f"{st['peak_rss_mb']:,.0f} | {top} |")
        lines.append(f"| {n:,} | **whole run** (incl. JVM start) | {r['wall_seconds']:.1f} | "
                     f"{n / r['wall_seconds']:,.0f} | {r['peak_rss_mb']:,.0f} | |")
    if any("duckdb" in r for r in results["runs"]):
        lines += ["", "Side by side with the DuckDB baseline (the SPEC as DuckDB SQL in one process, same files):", "",
                  "| records | footfall backfill (s) | DuckDB (s) | ratio | peak RSS footfall (MB) | "
                  "peak RSS DuckDB, with the comparison (MB) | gold rows | rows that differ |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["runs"]:
            d = r.get("duckdb")
            if d:
                lines.append(f"| {r['records']:,} | {r['wall_seconds']:.1f} | {d['seconds']:.1f} | "
                             f"{r['wall_seconds'] / d['seconds']:.1f}× | {r['peak_rss_mb']:,.0f} | "
                             f"{d['peak_rss_mb']:,.0f} | {d['gold_rows']:,} | {d['mismatches']} |")
    if results.get("nightly"):
        lines += ["", f"Nightly run of {NIGHTLY_DATE} on the first backfilled lakehouse:", "",
                  "| run | records | pipeline s (summary) | wall s (incl. JVM) | stages (s) | peak RSS (MB) |",
                  "|---|---:|---:|---:|---|---:|"]
        for name, n in results["nightly"].items():
            stages = ", ".join(f"{k} {v:.1f}" for k, v in n["timings"].items())
            lines.append(f"| {name.replace('_', ' ')} | {n['records']:,} | {n['pipeline_seconds']:.1f} | "
                         f"{n['wall_seconds']:.1f} | {stages} | {n['peak_rss_mb']:,.0f} |")
    if any("combos" in r for r in results["runs"]):
        lines += ["", "| records | gold, all 28 × 7 (s) | gold, one (b, e) pair (s) | extra for 28 × 7 | share of whole run |",
                  "|---:|---:|---:|---:|---:|"]
        for r in results["runs"]:
            c = r.get("combos")
            if c:
                extra = c["all_28x7_seconds"] - c["one_pair_seconds"]
                lines.append(f"| {r['records']:,} | {c['all_28x7_seconds']:.1f} | {c['one_pair_seconds']:.1f} | "
                             f"{extra:+.1f} s | {extra / r['wall_seconds']:.0%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
