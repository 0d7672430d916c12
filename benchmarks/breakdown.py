"""Where a run's time goes: its Spark jobs per stage and call site, its Delta commits and
file listings, read from Spark's event log after the run.

    python -m benchmarks.breakdown --out bench-out/breakdown -- backfill --from … --to … \\
        --conf DIR --landing DIR --lakehouse DIR

runs ``python -m jobs <arguments>`` with the event log on (a copy of ``--conf`` whose
storage.yaml adds it) and prints a table: per run stage (the summary's ``ingest``,
``sessions``, ``gold``, ``finish``; jobs outside them are ``setup``), how many Spark
jobs it ran and their seconds, the costliest call sites, and the Delta commits per
table. :func:`with_event_log` and :func:`summarise` serve ``benchmarks.pipeline`` too.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.common import ROOT


def with_event_log(conf: Path, events: Path) -> Path:
    """A copy of config folder ``conf`` whose runs write Spark's event log into ``events``."""
    target = events.parent / f"{conf.name}-eventlog"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(conf, target)
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    storage = yaml.safe_load((target / "storage.yaml").read_text()) or {}
    # storage.yaml resolves relative paths against the conf folder's parent: pin them.
    for key in ("landing", "lakehouse"):
        if key in storage and "://" not in storage[key] and not os.path.isabs(storage[key]):
            storage[key] = str((conf.parent / storage[key]).resolve())
    storage.setdefault("spark", {}).setdefault("conf", {}).update({
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": events.resolve().as_uri(),
        "spark.eventLog.compress": "false"})
    (target / "storage.yaml").write_text(yaml.safe_dump(storage, sort_keys=False))
    return target


def _call_site(job: dict) -> str:
    props = job.get("Properties") or {}
    site = props.get("callSite.short") or (job.get("Stage Infos") or [{}])[0].get("Stage Name", "?")
    # "collect at /…/jobs/stages.py:95" → "collect at stages.py:95"
    head, _, where = site.partition(" at ")
    return f"{head} at {os.path.basename(where)}" if where else site


def summarise(events: Path, stage_spans: dict[str, tuple[float, float]] | None = None) -> dict:
    """Spark jobs of the one event log in ``events``, grouped by the run stage whose span
    (epoch seconds, from the run summary) holds each job's start, then by call site."""
    # Spark 4 writes a folder of rolled files (events_1_…, events_2_…) per application.
    logs = sorted((p for p in events.rglob("*") if p.is_file() and p.name.startswith("events_")),
                  key=lambda p: [int(t) if t.isdigit() else t for t in p.name.split("_")])
    jobs: dict[int, dict] = {}
    for line in (line for log in logs for line in log.open()):
        e = json.loads(line)
        kind = e.get("Event")
        if kind == "SparkListenerJobStart":
            jobs[e["Job ID"]] = {"start": e["Submission Time"] / 1000, "site": _call_site(e),
                                 "tasks": sum(s.get("Number of Tasks", 0) for s in e.get("Stage Infos", []))}
        elif kind == "SparkListenerJobEnd" and e["Job ID"] in jobs:
            jobs[e["Job ID"]]["end"] = e["Completion Time"] / 1000
    spans = stage_spans or {}

    def stage_of(t: float) -> str:
        return next((name for name, (a, b) in spans.items() if a <= t <= b), "setup")

    per_stage: dict[str, dict] = collections.defaultdict(
        lambda: {"jobs": 0, "seconds": 0.0, "sites": collections.Counter(), "site_jobs": collections.Counter()})
    for j in jobs.values():
        s = per_stage[stage_of(j["start"])]
        secs = j.get("end", j["start"]) - j["start"]
        s["jobs"] += 1
        s["seconds"] += secs
        s["sites"][j["site"]] += secs
        s["site_jobs"][j["site"]] += 1
    return {name: {"jobs": s["jobs"], "job_seconds": round(s["seconds"], 1),
                   "top": [{"site": site, "jobs": s["site_jobs"][site], "seconds": round(secs, 1)}
                           for site, secs in s["sites"].most_common(6)]}
            for name, s in per_stage.items()}


def delta_commits(lake: Path, since: float) -> dict[str, int]:
    """Per table below ``lake``, how many Delta commits were written after ``since``."""
    out = {}
    for log in sorted(lake.rglob("_delta_log")):
        n = sum(1 for f in log.glob("*.json") if f.stat().st_mtime >= since)
        if n:
            out[str(log.parent.relative_to(lake))] = n
    return out


def render(breakdown: dict, commits: dict[str, int], timings: dict[str, float]) -> str:
    """The breakdown as a Markdown table."""
    lines = ["| stage | seconds | Spark jobs | job seconds | costliest call sites (jobs, s) |",
             "|---|---:|---:|---:|---|"]
    for name in [*timings, *(n for n in breakdown if n not in timings)]:
        b = breakdown.get(name, {"jobs": 0, "job_seconds": 0, "top": []})
        top = "; ".join(f"{t['site']} ({t['jobs']}, {t['seconds']})" for t in b["top"][:4])
        lines.append(f"| {name} | {timings.get(name, float('nan')):.1f} | {b['jobs']} | "
                     f"{b['job_seconds']} | {top} |")
    lines += ["", "Delta commits: " + (", ".join(f"{t} {n}" for t, n in commits.items()) or "none")
              + f" ({sum(commits.values())} in all)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "bench-out" / "breakdown"))
    p.add_argument("jobs_args", nargs=argparse.REMAINDER, help="-- then the arguments of python -m jobs")
    args = p.parse_args(argv)
    jobs_args = [a for a in args.jobs_args if a != "--"]
    out = Path(args.out)
    conf = Path(jobs_args[jobs_args.index("--conf") + 1]) if "--conf" in jobs_args else ROOT / "conf"
    lake = Path(jobs_args[jobs_args.index("--lakehouse") + 1]) if "--lakehouse" in jobs_args else ROOT / "data" / "lakehouse"
    events = out / "events"
    conf_copy = with_event_log(conf, events)
    rest = [a for i, a in enumerate(jobs_args) if a != "--conf" and (i == 0 or jobs_args[i - 1] != "--conf")]
    summary_file = out / "summary.json"
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "jobs", *rest, "--conf", str(conf_copy), "--quiet",
                    "--summary-json", str(summary_file)], check=True, cwd=ROOT)
    summary = json.loads(summary_file.read_text())
    table = render(summarise(events, summary["stage_spans"]), delta_commits(lake, t0), summary["timings"])
    (out / "breakdown.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
