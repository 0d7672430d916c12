"""``make bench`` / ``python -m benchmarks.pipeline``: backfill throughput and memory by data size.

For each size it generates a world (cached under ``.cache/bench/``), runs the real
command line ``python -m jobs backfill`` in a fresh process on a fresh lakehouse with
the embedded default settings, samples the resident memory of the whole process tree
(Python driver + JVM) twice a second, and reports per stage: seconds, probes per
second and peak memory. It then measures what the 28 × 7 combinations cost: the gold
aggregation for all of them against the same aggregation for one (b, e) pair.

Benchmarks measure; they assert nothing. Results go to ``bench-out/`` (JSON and a
Markdown table) and are summarised in docs/performance.md by hand.
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
        shutil.copy(ROOT / "conf" / "storage.yaml", folder / "conf" / "storage.yaml")
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


def _backfill(conf: Path, landing: Path, lake: Path, out: Path, master: str | None) -> dict:
    shutil.rmtree(lake, ignore_errors=True)
    summary_file = out / f"{lake.name}.summary.json"
    cmd = [sys.executable, "-m", "jobs", "backfill", "--from", str(START),
           "--to", str(START + dt.timedelta(days=DAYS - 1)), "--conf", str(conf),
           "--landing", str(landing), "--lakehouse", str(lake), "--summary-json", str(summary_file)]
    if master:
        cmd += ["--master", master]
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = _Sampler(proc.pid)
    sampler.start()
    log, _ = proc.communicate()
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"backfill failed:\n{log[-3000:]}")
    summary = json.loads(summary_file.read_text())
    stages = {}
    for name, (a, b) in summary["stage_spans"].items():
        peak = max((s for s in sampler.samples if a <= s[0] <= b), key=lambda s: s[1], default=None)
        stages[name] = {"seconds": b - a, "peak_rss_mb": peak[1] / 2**20 if peak else 0,
                        "peak_processes": [{"process": n, "pid": pid, "rss_mb": round(r / 2**20)}
                                           for n, pid, r in peak[2]] if peak else []}
    return {"wall_seconds": time.time() - t0, "summary": summary, "stages": stages,
            "peak_rss_mb": max((s[1] for s in sampler.samples), default=0) / 2**20,
            "rss_timeline_mb": [(round(t - t0, 1), round(r / 2**20)) for t, r, _ in sampler.samples[::10]]}


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
    p.add_argument("--sizes", default="1000000,2000000,4000000",
                   help="target probe counts, comma-separated (default: 1M, 2M, 4M)")
    p.add_argument("--out", default=str(ROOT / "bench-out"))
    p.add_argument("--cache", default=str(ROOT / ".cache" / "bench"))
    p.add_argument("--master", help="Spark master URL (default: conf/storage.yaml's)")
    p.add_argument("--no-combos", action="store_true", help="skip the 28 × 7 cost measurement")
    p.add_argument("--executor-memory", default="2500m",
                   help="with --master spark://…: memory per executor (make cluster's workers have 3g)")
    args = p.parse_args(argv)
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                           "python": platform.python_version(), "platform": platform.platform()},
               "runs": []}
    for size in [int(x) for x in args.sizes.split(",")]:
        conf, landing, records = _world(size, cache)
        if args.master and not args.master.startswith("local"):
            conf = _cluster_conf(conf, args.executor_memory)
        lake = cache / f"lake-{size}"
        r = _backfill(conf, landing, lake, out, args.master)
        r.update({"target": size, "records": records})
        if not args.no_combos:
            r["combos"] = combos_cost(lake, conf)
        results["runs"].append(r)
        print(_row(r), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = _table(results)
    (out / "results.md").write_text(table)
    print(table)
    return 0


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
