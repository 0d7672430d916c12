"""``make load-api`` / ``python -m benchmarks.loadscenario``: the report API under load while
a nightly run rewrites gold.

The scenario, end to end, with the real command lines:

1. a small generated world (the demo malls 215 and 1290) and one backfill
   (``python -m jobs backfill``);
2. ``python -m reports serve`` on loopback with a short gold refresh interval;
3. the answer ("before") to each request of :func:`benchmarks.loadtest.default_mix`;
4. a late landing file with new devices on an already processed date of both malls;
5. ``--clients`` clients for ``--seconds`` (longer if the nightly run is still going)
   while ``python -m jobs nightly`` ingests the file and replaces gold buckets of that
   date and of what depends on it;
6. the answers again ("after"), once the API has seen the new gold version.

Every answer during the load must be a 200 equal to the request's "before" or "after"
answer (none mixes two table versions), some requests must have changed, and some
answers must have been served during the nightly's gold stage. Results go to
``<out>/load-api.{json,md}``; the exit code is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from benchmarks import loadtest
from benchmarks.common import ROOT, ApiServer
TOKEN = "load-test-token"
START = dt.date(2016, 3, 1)
#: Spark settings of the scenario's runs: a small world needs few partitions, and the
#: API shares the machine with the nightly run's driver.
STORAGE_YAML = """\
spark:
  master: local[2]
  app_name: footfall-load-api
  conf:
    spark.driver.memory: 2g
    spark.sql.shuffle.partitions: 2
    spark.default.parallelism: 2
    spark.databricks.delta.snapshotPartitions: 1
    spark.ui.enabled: false
"""


@dataclass(frozen=True)
class World:
    root: Path
    conf: Path
    landing: Path
    lake: Path
    start: dt.date
    end: dt.date


def build_world(root: Path, days: int, devices: int, seed: int = 7) -> World:
    """Config (demo object tree, tokens, small Spark settings) and generated landing files."""
    from jobs.generate import generate
    from jobs.generate.world import make_objects, write_objects_yaml
    from reports.tokens import HEADER, digest

    conf = root / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    tree = make_objects()
    write_objects_yaml(conf / "objects.yaml", tree)
    (conf / "pipeline.yaml").write_text("")
    (conf / "storage.yaml").write_text(STORAGE_YAML)
    malls = ", ".join(str(m["id"]) for m in tree["malls"])
    (conf / "tokens.yaml").write_text(HEADER + f"tokens:\n  - name: load\n    sha256: {digest(TOKEN)}\n"
                                      f"    malls: [{malls}]\n")
    generate(conf, root / "landing", start=START, days=days, devices=devices, seed=seed)
    return World(root, conf, root / "landing", root / "lake", START, START + dt.timedelta(days=days - 1))


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def jobs_command(world: World, *args: str, summary: Path) -> list[str]:
    """``python -m jobs <args>`` on ``world``, its summary written to ``summary``."""
    return [sys.executable, "-m", "jobs", *args, "--conf", str(world.conf), "--landing", str(world.landing),
            "--lakehouse", str(world.lake), "--summary-json", str(summary)]


def run_jobs(world: World, *args: str, name: str) -> dict:
    """Run ``python -m jobs <args>`` to its end; its summary (stage_spans, timings)."""
    summary, log = world.root / f"{name}.json", world.root / f"{name}.log"
    with log.open("w") as out:
        code = subprocess.run(jobs_command(world, *args, summary=summary), cwd=ROOT, env=_env(),
                              stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"python -m jobs {' '.join(args)} failed ({code}):\n{log.read_text()[-3000:]}")
    return json.loads(summary.read_text())


def late_file(world: World, date: dt.date, devices: int = 10) -> Path:
    """New devices in each mall on ``date`` (local noon, 40 minutes at its first sensor, a
    strong signal): the nightly run must recompute that date's buckets and those after."""
    from jobs.config import load_config

    cfg = load_config(world.conf)
    lines = []
    for n, mall in enumerate(cfg.malls):
        zone = next(o.id for o in cfg.objects if o.mall_id == mall.id and o.type == "zone")
        sensor = next(s.id for s in cfg.sensors if s.zone_id == zone)
        noon = dt.datetime(date.year, date.month, date.day, 12, tzinfo=ZoneInfo(mall.timezone))
        for k in range(devices):
            mac = f"00:1b:63:{n:02x}:{k:02x}:01"  # universal, unicast: a real device
            for minute in range(0, 41, 2):
                ts = noon + dt.timedelta(minutes=3 * k + minute)
                lines.append(json.dumps({"sensor_id": sensor, "mac": mac, "ts": ts.isoformat(), "rssi": -50}))
    path = world.landing / "late" / f"late-{date.isoformat()}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def day_totals(url: str, date: dt.date, mall_ids) -> dict[str, dict]:
    """Per mall, the ``all`` row of its daily bucket ``date``: what the late file changes."""
    with httpx.Client(base_url=url, headers={"x-token": TOKEN}, timeout=60) as http:
        body = http.get(loadtest.PATH, params={"objects": ",".join(map(str, mall_ids)), "interval": "daily",
                                               "from": str(date), "to": str(date)}).raise_for_status().json()
    return {m: body[m]["all"][0] for m in body}


def _during(samples, span) -> list:
    """Samples in flight at some moment of ``span`` (wall-clock start, end)."""
    lo, hi = span
    return [s for s in samples if s.started <= hi and s.started + s.latency >= lo]


def run_scenario(root: Path, *, clients: int = 50, seconds: float = 60, days: int = 7, devices: int = 30,
                 refresh_seconds: float = 0.5, warmup: float = 10.0, late_devices: int = 10,
                 log=print, backfill: Callable[[World], dict] | None = None) -> dict:
    """The whole scenario under ``root`` (a fresh folder); the results (see module doc).
    ``backfill``: the step 1 backfill, given the world, returning its stage timings (a test
    runs it on its own SparkSession and spares a JVM start); the command line if None."""
    t_all = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)  # what the machine did before this run
    world = build_world(root, days, devices)
    late_date = world.start + dt.timedelta(days=1)
    log(f"world: {world.start} … {world.end}, {devices} devices a mall a day; backfill …")
    if backfill is None:
        backfill_timings = run_jobs(world, "backfill", "--from", str(world.start), "--to", str(world.end),
                                    name="backfill")["timings"]
    else:
        backfill_timings = backfill(world)
    log(f"backfill {sum(backfill_timings.values()):.0f} s; starting the API")
    from jobs.config import load_config
    cfg = load_config(world.conf)
    requests = loadtest.default_mix(cfg, world.start, world.end)
    malls = [m.id for m in cfg.malls]
    with ApiServer(world.conf, world.lake, refresh_seconds=refresh_seconds,
                   log=world.root / "serve.log") as server:
        before = loadtest.fetch_all(server.url, TOKEN, requests)
        day_before = day_totals(server.url, late_date, malls)
        if any(status != 200 for status, _ in before):
            raise RuntimeError(f"a request failed before the load: {before}")
        late_file(world, late_date, late_devices)
        done = threading.Event()
        box: dict = {}

        def load() -> None:
            try:
                box["samples"], box["seconds"] = loadtest.run_load(
                    server.url, TOKEN, requests, clients, seconds, hold=done, max_seconds=seconds + 1800)
            except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
                box["error"] = exc

        loader = threading.Thread(target=load, name="load")
        load_at_load = round(os.getloadavg()[0], 2)
        load_t0 = time.time()
        loader.start()
        try:
            time.sleep(warmup)  # the load is steady before the nightly run starts
            log(f"{clients} clients for at least {seconds:.0f} s; nightly --date {world.end} "
                f"(late records on {late_date}) …")
            nightly_t0 = time.time()
            nightly = run_jobs(world, "nightly", "--date", str(world.end), name="nightly")
            nightly_end = time.time()
            # The API must see the new version while the load still runs.
            time.sleep(refresh_seconds + 1.0)
        finally:
            done.set()
            loader.join()
        if "error" in box:
            raise box["error"]
        time.sleep(refresh_seconds + 0.1)
        after = loadtest.fetch_all(server.url, TOKEN, requests)
        day_after = day_totals(server.url, late_date, malls)
    samples, load_seconds = box["samples"], box["seconds"]
    summary = loadtest.summarize(samples, load_seconds, clients)
    classes = loadtest.classify(samples, [d for _, d in before], [d for _, d in after])
    gold_span = tuple(nightly["stage_spans"]["gold"])
    in_gold = _during(samples, gold_span)
    nightly_span = (nightly_t0, nightly_end)  # the process: JVM start to exit
    after_times = sorted(s.started + s.latency for s in samples if s.status == 200
                         and before[s.request][1] != after[s.request][1] and s.digest == after[s.request][1])
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    # 1-minute load average: at the start, when the clients start (after
                    # the backfill), at the end (this run's own processes included).
                    "load_average": {"start": load_before, "load_start": load_at_load,
                                     "end": round(os.getloadavg()[0], 2)}},
        "world": {"start": str(world.start), "end": str(world.end), "devices": devices,
                  "late_date": str(late_date), "late_devices_per_mall": late_devices},
        "refresh_seconds": refresh_seconds,
        "requests": requests,
        "after_status": [status for status, _ in after],
        "late_date_all": {m: {"before": day_before[m], "after": day_after[m]} for m in day_before},
        "backfill_timings": backfill_timings,
        "nightly": {"timings": nightly["timings"], "gold_rows_written": nightly["gold_rows_written"],
                    "stage_spans_from_load_start": {k: [round(v[0] - load_t0, 1), round(v[1] - load_t0, 1)]
                                                    for k, v in nightly["stage_spans"].items()},
                    "process_from_load_start": [round(nightly_t0 - load_t0, 1),
                                                round(nightly_end - load_t0, 1)]},
        "load": summary,
        "classes": classes,
        "during_gold_stage": {**loadtest.summarize(in_gold, gold_span[1] - gold_span[0], clients),
                              **{k: v for k, v in loadtest.classify(in_gold, [d for _, d in before],
                                                                    [d for _, d in after]).items()
                                 if k in ("before", "after", "unchanged", "torn")}},
        "before_nightly": loadtest.summarize([s for s in samples if s.started + s.latency < nightly_t0],
                                             nightly_t0 - load_t0, clients),
        "during_nightly": loadtest.summarize(_during(samples, nightly_span),
                                             nightly_span[1] - nightly_span[0], clients),
        # How long after the gold stage ended the first new answer was complete.
        "first_after_answer_s": round(after_times[0] - gold_span[1], 2) if after_times else None,
        "total_seconds": round(time.perf_counter() - t_all, 1),
    }
    results["checks"] = checks(results)
    return results


def checks(r: dict) -> dict[str, bool]:
    """What the scenario must show; all true for a pass."""
    return {
        "no 5xx": r["load"]["server_errors"] == 0,
        "no transport error": r["load"]["transport_errors"] == 0,
        "every answer 200": set(r["load"]["by_status"]) == {"200"},
        "no torn answer": r["classes"]["torn"] == 0,
        "the nightly changed some answers": r["classes"]["requests_changed"] > 0,
        "new answers served under load": r["classes"]["after"] > 0,
        "answers served during the gold stage": r["during_gold_stage"]["requests"] > 0,
    }


def markdown(r: dict) -> str:
    """The results of :func:`run_scenario` as the Markdown of ``load-api.md``."""
    c, g, n, m = r["classes"], r["during_gold_stage"], r["nightly"], r["machine"]
    spans = ", ".join(f"{k} {v[0]:.0f}–{v[1]:.0f} s" for k, v in n["stage_spans_from_load_start"].items())
    la = m["load_average"]
    lines = [
        f"## API under load during a nightly run ({dt.date.today()})", "",
        f"Machine: {m['cpus']} cores, Python {m['python']}; 1-minute load average {la['start']} at "
        f"the start, {la['load_start']} when the clients started, {la['end']} at the end (this run "
        f"included). World {r['world']['start']} … {r['world']['end']}, {r['world']['devices']} devices "
        f"a mall a day; late records on {r['world']['late_date']}. "
        f"API refresh interval {r['refresh_seconds']} s; {len(r['requests'])} distinct requests, "
        f"{c['requests_changed']} of them changed by the nightly run.", "",
        f"Nightly run: {', '.join(f'{k} {v:.1f} s' for k, v in n['timings'].items())}; "
        f"{n['gold_rows_written']:,} gold rows written. From the start of the load: process "
        f"{n['process_from_load_start'][0]:.0f}–{n['process_from_load_start'][1]:.0f} s, {spans}.", "",
        loadtest.markdown([("whole load", r["load"]), ("before the nightly run", r["before_nightly"]),
                           ("during the nightly run", r["during_nightly"]),
                           ("during its gold stage", g)]).rstrip(), "",
        "| answers (200) | before | after | unchanged request | torn |", "|---:|---:|---:|---:|---:|",
        f"| whole load | {c['before']:,} | {c['after']:,} | {c['unchanged']:,} | {c['torn']} |",
        f"| during the gold stage | {g['before']:,} | {g['after']:,} | {g['unchanged']:,} | "
        f"{g['torn']} |", "",
        "Daily bucket of the late date, user type `all`, before → after: " + "; ".join(
            f"mall {m}: sessions {v['before']['count_session']} → {v['after']['count_session']}, clients "
            f"{v['before']['count_client']} → {v['after']['count_client']}"
            for m, v in r["late_date_all"].items())
        + ".", "",
        f"First new answer complete {r['first_after_answer_s']} s after the end of the gold stage "
        "(negative: before it; the stage ends after its commit, with the run's metrics).", "",
        "Checks: " + ", ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in r["checks"].items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadscenario",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (default: 50)")
    p.add_argument("--seconds", type=float, default=60, help="least load duration (default: 60)")
    p.add_argument("--days", type=int, default=7, help="days of the generated world (default: 7)")
    p.add_argument("--devices", type=int, default=30, help="devices a mall a day (default: 30)")
    p.add_argument("--refresh-seconds", type=float, default=0.5, help="API gold refresh (default: 0.5)")
    p.add_argument("--warmup", type=float, default=10,
                   help="seconds of load before the nightly run starts: the baseline (default: 10)")
    p.add_argument("--workdir", default=str(ROOT / ".cache" / "load-api"), help="scratch folder (emptied)")
    p.add_argument("--out", default=str(ROOT / "bench-out"))
    args = p.parse_args(argv)
    import shutil
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    results = run_scenario(work, clients=args.clients, seconds=args.seconds, days=args.days,
                           devices=args.devices, refresh_seconds=args.refresh_seconds, warmup=args.warmup)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "load-api.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (out / "load-api.md").write_text(text)
    print(text)
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
