"""``make bench-api`` / ``python -m benchmarks.api``: latency of the report API against a
year of gold, and the same requests answered by Spark SQL.

The table: a demo-shaped world of 2 malls (Moscow, Berlin) × 2 floors × 6 zones = 30
objects, every object with sessions in every open hour (08:00–24:00 local) of 2016, so
every bucket has its 28 × 7 rows: ~37 million rows, written by Spark with the pipeline's
settings (``jobs.spark.build_spark``: row groups of 100,000 rows), partitioned by
``jobs.spec.GOLD_PARTITIONS``. Three layouts of the same rows:

* ``unsorted`` — the first layout, one file per partition: rows of a bucket together
  but buckets in no particular order, so row-group statistics skip little;
* ``clustered`` — the second, one file per partition sorted by ``jobs.spec.GOLD_SORT``
  (object, thresholds, bucket start), so that the row groups' statistics let a request
  skip what it does not need (docs/decisions.md, "Report API");
* ``periods`` — the layout the pipeline writes now (``jobs.layout``): the same order, one
  file per partition and period (a month of hourly buckets, a year of the others').

The requests (varied between repetitions: objects, months, threshold pairs, windows):
a daily year for 10 zones; an hourly month for 5 zones; a monthly year for 20 zones. The
API runs as ``python -m reports serve`` (uvicorn) on loopback; the client measures each
request end to end (one client, keep-alive), then throughput with 4 clients. Before
that, the first 100 requests after the server starts, with its start-up warm-up and
without (``--no-warm-up``), for the scenarios in turn and for a dashboard's month
(:func:`first_mixes`). Spark SQL
answers the same filters on the same table in a local[2] session (rows collected to the
driver, no zero-filling or JSON: a lower bound of its cost).

Spark is imported lazily, to write the table and to compare. Benchmarks measure; they
assert nothing. Results go to ``bench-out/api-results.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from benchmarks.common import ROOT, ApiServer, percentiles
from jobs.spec import (COMEBACK_COLUMNS, COMEBACK_WINDOWS, GOLD_PARTITIONS, GOLD_SORT,
                       GROUP_DATETIME, GSH_INTERVALS, INTERVALS, THRESHOLD_PAIRS, USER_TYPES)

YEAR = (dt.date(2016, 1, 1), dt.date(2016, 12, 31))
OPEN_HOURS = range(8, 24)
MALLS = [(215, "Galereya", "Europe/Moscow"), (1290, "Alexa", "Europe/Berlin")]
TOKEN = "bench-token"
PAIRS = [(5, 20), (2, 45), (10, 30), (15, 15), (5, 10)]
WINDOWS = ["2 week", "1 month", "3 month", "1 year"]
LAYOUTS = ("unsorted", "clustered", "periods")


def bench_conf(folder: Path) -> Path:
    """The bench world's config folder: objects.yaml (30 objects) and tokens.yaml."""
    from reports.tokens import digest

    folder.mkdir(parents=True, exist_ok=True)
    malls = []
    for mall_id, name, tz in MALLS:
        floors = []
        for f in range(2):
            floor_id = mall_id * 10 + f + 1
            zones = [{"id": floor_id * 10 + z + 1, "name": f"Zone {z + 1}",
                      "sensors": [{"id": f"s-{floor_id * 10 + z + 1}"}]} for z in range(6)]
            floors.append({"id": floor_id, "name": f"Floor {f}", "zones": zones})
        malls.append({"id": mall_id, "name": name, "timezone": tz, "floors": floors})
    (folder / "objects.yaml").write_text(yaml.safe_dump({"malls": malls}, sort_keys=False))
    (folder / "tokens.yaml").write_text(yaml.safe_dump({"tokens": [
        {"name": "bench", "sha256": digest(TOKEN), "malls": [m[0] for m in MALLS]}]}))
    return folder


def _bucket_rows(cfg) -> list[tuple]:
    """(mall_id, object_id, object_type, interval, start epoch s, bucket_date, label) of
    every bucket of the year in which the bench world has sessions."""
    from reports.buckets import buckets

    rows = []
    for mall in cfg.malls:
        objs = [o for o in cfg.objects if o.mall_id == mall.id]
        for interval in INTERVALS:
            for b in buckets(interval, *YEAR, mall.timezone):
                if interval == "hourly" and int(b.label[11:13]) not in OPEN_HOURS:
                    continue
                for o in objs:
                    rows.append((mall.id, o.id, o.type, interval, b.start, b.date, b.label))
    return rows


def write_table(spark, cfg, path: Path, layout: str) -> int:
    """Write the year of gold rows under ``path`` in ``layout``; the number of rows."""
    from pyspark.sql import functions as F

    from jobs.tables import SCHEMAS

    schema = ("mall_id long, object_id long, object_type string, interval string, start long, "
              "bucket_date date, datetime string")
    bucket_rows = _bucket_rows(cfg)
    b = spark.createDataFrame(bucket_rows, schema)
    combos = spark.createDataFrame([(x, y, t) for x, y in THRESHOLD_PAIRS for t in USER_TYPES],
                                   "bounce_threshold int, engagement_threshold int, user_type string")
    h = F.xxhash64("object_id", "start", "bounce_threshold", "engagement_threshold", "user_type")
    sessions = F.pmod(h, 4000)
    gsh = F.when(F.col("interval").isin(*GSH_INTERVALS),
                 F.round(F.pmod(h, 1_000_000) / 100.0, 2)).otherwise(0.0)
    df = (b.orderBy(F.rand(7))  # buckets in no particular order, as the aggregation leaves them
          .crossJoin(F.broadcast(combos))
          .select("object_id", "object_type", "mall_id", "interval",
                  F.timestamp_seconds("start").alias("bucket_start"), "bucket_date", "datetime",
                  "bounce_threshold", "engagement_threshold", "user_type",
                  sessions.alias("count_session"), (sessions * 3 / 4).cast("long").alias("count_client"),
                  F.pmod(h, 90).alias("avg_session_duration"), gsh.alias("sum_session_duration"),
                  *[(sessions / (k + 4)).cast("long").alias(w.column)
                    for k, w in enumerate(COMEBACK_WINDOWS)])
          .select(*SCHEMAS[GROUP_DATETIME].fieldNames()))
    if layout == "periods":
        from jobs.layout import gold_files
        from jobs.spec import gold_file_start
        writer = gold_files(df, {(m, i, gold_file_start(i, d)) for m, _, _, i, _, d, _ in bucket_rows})
    else:
        writer = df.repartition(*GOLD_PARTITIONS)
    if layout == "clustered":
        # Partition columns first, as the pipeline sorts: the writer keeps this order.
        writer = writer.sortWithinPartitions(*GOLD_PARTITIONS, *GOLD_SORT)
    (writer.write.format("delta").partitionBy(*GOLD_PARTITIONS).mode("overwrite")
     .option("optimizeWrite", "false").save(str(path)))
    return spark.read.format("delta").load(str(path)).count()


# ---------------------------------------------------------------------------- the requests

def scenarios(cfg) -> dict[str, list[dict]]:
    """Per scenario, a rotation of query-parameter sets (objects, dates, thresholds vary)."""
    zones = {m.id: [o.id for o in cfg.objects if o.mall_id == m.id and o.type == "zone"] for m in cfg.malls}
    z215, z1290 = zones[215], zones[1290]
    months = [(dt.date(2016, m, 1), (dt.date(2016, m + 1, 1) if m < 12 else dt.date(2017, 1, 1))
               - dt.timedelta(days=1)) for m in range(1, 13)]
    out: dict[str, list[dict]] = {"daily year, 10 objects": [], "hourly month, 5 objects": [],
                                  "monthly year, 20 objects": []}
    for i in range(12):
        b, e = PAIRS[i % len(PAIRS)]
        common = {"comeback": WINDOWS[i % len(WINDOWS)], "bounce_threshold": f"{b} minute",
                  "engagement_threshold": f"{e} minute"}
        ten = (z215 + z1290)[i % 4: i % 4 + 10]
        five = (z1290 if i % 2 else z215)[i % 3: i % 3 + 5]
        twenty = (z215 + z1290)[i % 5: i % 5 + 20]
        out["daily year, 10 objects"].append(
            {"objects": ten, "interval": "daily", "from": YEAR[0], "to": YEAR[1], **common})
        out["hourly month, 5 objects"].append(
            {"objects": five, "interval": "hourly", "from": months[i][0], "to": months[i][1], **common})
        out["monthly year, 20 objects"].append(
            {"objects": twenty, "interval": "monthly", "from": YEAR[0], "to": YEAR[1], **common})
    return out


def _query(p: dict) -> dict:
    return {**p, "objects": ",".join(map(str, p["objects"])), "from": str(p["from"]), "to": str(p["to"])}


def _stats(seconds: list[float]) -> dict:
    """n, p50, p99 and max (ms) of latencies given in seconds."""
    ms = [s * 1000 for s in seconds]
    q = percentiles(ms, 50, 99)
    return {"n": len(ms), "p50_ms": round(q[50], 1), "p99_ms": round(q[99], 1), "max_ms": round(max(ms), 1)}


def measure_api(conf: Path, lake: Path, cases: dict[str, list[dict]], repeat: int, clients: int) -> dict:
    """Start ``python -m reports serve`` on loopback and time every scenario."""
    with ApiServer(conf, lake) as server:
        url = f"{server.url}/reports/group_datetime"
        results = {}
        headers = {"x-token": TOKEN}
        for name, params in cases.items():
            with httpx.Client(headers=headers, timeout=60) as http:
                for p in params[:3]:  # warm-up: first reads of the files, imports
                    http.get(url, params=_query(p)).raise_for_status()
                lat, app, size = [], [], 0
                t_all = time.perf_counter()
                for i in range(repeat):
                    t0 = time.perf_counter()
                    r = http.get(url, params=_query(params[i % len(params)]))
                    lat.append(time.perf_counter() - t0)
                    r.raise_for_status()
                    size = len(r.content)
                    app.append(float(r.headers["server-timing"].split("dur=")[1]) / 1000)
                one_client = repeat / (time.perf_counter() - t_all)
            # Throughput: `clients` threads, each with its own connection.
            done = []

            def worker(k: int) -> None:
                with httpx.Client(headers=headers, timeout=60) as h:
                    for i in range(repeat // clients):
                        h.get(url, params=_query(params[(i + k) % len(params)])).raise_for_status()
                        done.append(1)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            results[name] = {**_stats(lat), "server_p50_ms": _stats(app)["p50_ms"],
                             "server_p99_ms": _stats(app)["p99_ms"], "rps_1_client": round(one_client, 1),
                             f"rps_{clients}_clients": round(len(done) / (time.perf_counter() - t0), 1),
                             "response_bytes": size}
            print(f"  api   {name:<26} p50 {results[name]['p50_ms']:7.1f} ms  p99 "
                  f"{results[name]['p99_ms']:7.1f} ms  {one_client:6.1f} req/s  (server p50 "
                  f"{results[name]['server_p50_ms']:.1f} ms)", flush=True)
        return results


def first_mixes(cfg, cases: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The request mixes of :func:`measure_first`, as query parameters: the scenarios in
    turn, and a dashboard's month (``benchmarks.loadtest.default_mix`` over March: every
    interval of each mall, floors, zones, both malls; answers of 1 kB to 4.7 MB)."""
    from benchmarks.loadtest import default_mix

    return {"scenarios in turn": [_query(p) for turn in zip(*cases.values()) for p in turn],
            "a dashboard month": default_mix(cfg, dt.date(2016, 3, 1), dt.date(2016, 3, 31))}


def measure_first(conf: Path, lake: Path, mixes: dict[str, list[dict]], n: int = 100) -> dict:
    """The first ``n`` requests after ``reports serve`` starts (each mix's requests in
    turn, one client, a fresh server per mix), with the server's start-up warm-up and
    with ``--no-warm-up``."""
    results = {}
    for start, extra in (("warm-up", []), ("no warm-up", ["--no-warm-up"])):
        for mix_name, mix in mixes.items():
            with ApiServer(conf, lake, extra_args=extra) as server:
                lat, largest = [], 0
                with httpx.Client(headers={"x-token": TOKEN}, timeout=60) as http:
                    for i in range(n):
                        t0 = time.perf_counter()
                        r = http.get(f"{server.url}/reports/group_datetime", params=mix[i % len(mix)])
                        lat.append(time.perf_counter() - t0)
                        r.raise_for_status()
                        largest = max(largest, len(r.content))
            name = f"{start}, {mix_name}"
            results[name] = {**_stats(lat), "first_ms": round(lat[0] * 1000, 1), "largest_bytes": largest}
            print(f"  first {n} requests, {name:<32} first {results[name]['first_ms']:7.1f} ms  p50 "
                  f"{results[name]['p50_ms']:7.1f} ms  p99 {results[name]['p99_ms']:7.1f} ms", flush=True)
    return results


def measure_spark(spark, cfg, lake: Path, cases: dict[str, list[dict]], repeat: int) -> dict:
    """The same filters as Spark SQL on the same table, rows collected to the driver."""
    mall_of = {o.id: o.mall_id for o in cfg.objects}
    spark.read.format("delta").load(str(lake / GROUP_DATETIME)).createOrReplaceTempView("gold")
    results = {}
    for name, params in cases.items():
        def sql(p: dict) -> str:
            b, e = (int(p[k].split()[0]) for k in ("bounce_threshold", "engagement_threshold"))
            malls = sorted({mall_of[o] for o in p["objects"]})
            return (f"SELECT object_id, datetime, user_type, count_session, count_client, "
                    f"avg_session_duration, {COMEBACK_COLUMNS[p['comeback']]} AS count_comeback_client, "
                    f"sum_session_duration FROM gold WHERE mall_id IN ({','.join(map(str, malls))}) "
                    f"AND `interval` = '{p['interval']}' "
                    f"AND object_id IN ({','.join(map(str, p['objects']))}) "
                    f"AND bounce_threshold = {b} AND engagement_threshold = {e} "
                    f"AND bucket_date BETWEEN DATE'{p['from']}' AND DATE'{p['to']}' "
                    f"ORDER BY object_id, user_type, bucket_start")
        for p in params[:2]:
            spark.sql(sql(p)).collect()
        lat = []
        for i in range(repeat):
            t0 = time.perf_counter()
            spark.sql(sql(params[i % len(params)])).collect()
            lat.append(time.perf_counter() - t0)
        results[name] = _stats(lat)
        print(f"  spark {name:<26} p50 {results[name]['p50_ms']:7.1f} ms  p99 "
              f"{results[name]['p99_ms']:7.1f} ms", flush=True)
    return results


def _table(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['cpus']} cores, {m['memory_gb']} GiB, Python {m['python']}; "
             f"load average at start {m['load_at_start']}", ""]
    for layout, r in results["layouts"].items():
        lines += [f"Layout `{layout}`: {r['rows']:,} gold rows, {r['files']} files, {r['mib']:.0f} MiB", "",
                  "| request | API p50 (ms) | API p99 (ms) | server p50 / p99 (ms) | req/s, 1 client | "
                  "req/s, 4 clients | response | Spark SQL p50 (ms) | Spark SQL p99 (ms) | Spark p50 / API p50 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, a in r["api"].items():
            s = r.get("spark", {}).get(name)
            lines.append(
                f"| {name} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} | {a['server_p50_ms']:.1f} / "
                f"{a['server_p99_ms']:.1f} | {a['rps_1_client']:.1f} | "
                f"{a['rps_4_clients']:.1f} | {a['response_bytes'] / 1024:,.0f} KiB | "
                + (f"{s['p50_ms']:.0f} | {s['p99_ms']:.0f} | {s['p50_ms'] / a['p50_ms']:.0f}× |"
                   if s else "– | – | – |"))
        lines.append("")
        if "first" in r:
            lines += [f"The first requests after `reports serve` starts (layout `{layout}`, one "
                      "client, a fresh server per line):", "",
                      "| server start, requests | first request (ms) | p50 (ms) | p99 (ms) | max (ms) "
                      "| largest answer |",
                      "|---|---:|---:|---:|---:|---:|"]
            lines += [f"| {name} ({f['n']}) | {f['first_ms']:.1f} | {f['p50_ms']:.1f} | "
                      f"{f['p99_ms']:.1f} | {f['max_ms']:.1f} | {f['largest_bytes'] / 1024:,.0f} KiB |"
                      for name, f in r["first"].items()]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.api",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", default=str(ROOT / ".cache" / "bench-api"), help="where the tables are kept")
    p.add_argument("--out", default=str(ROOT / "bench-out"))
    p.add_argument("--layouts", default=",".join(LAYOUTS), help="unsorted,clustered,periods (default: all)")
    p.add_argument("--repeat", type=int, default=200, help="API requests per scenario (default: 200)")
    p.add_argument("--spark-repeat", type=int, default=20,
                   help="Spark SQL queries per scenario (default: 20)")
    p.add_argument("--no-spark", action="store_true", help="skip the Spark SQL comparison")
    p.add_argument("--rebuild", action="store_true", help="write the tables again")
    args = p.parse_args(argv)
    layouts = [x for x in args.layouts.split(",") if x]
    if not layouts or set(layouts) - set(LAYOUTS):
        p.error(f"--layouts: one or more of {','.join(LAYOUTS)}")

    from jobs.config import load_config

    cache, out = Path(args.cache), Path(args.out)
    conf = bench_conf(cache / "conf")
    cfg = load_config(conf)
    cases = scenarios(cfg)
    import psutil

    memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    results = {"machine": {"cpus": os.cpu_count(), "memory_gb": memory_gb,
                           "python": platform.python_version(), "platform": platform.platform(),
                           "load_at_start": round(os.getloadavg()[0], 2)},
               "objects": len(cfg.objects), "year": [str(YEAR[0]), str(YEAR[1])], "layouts": {}}
    spark = None
    need = [x for x in layouts if args.rebuild or not (cache / x / "built.json").exists()]
    if need or not args.no_spark:
        from jobs.spark import build_spark
        spark = build_spark("local[2]", "footfall-bench-api", {
            "spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false",
            "spark.databricks.delta.snapshotPartitions": "2"})
    for layout in layouts:
        lake = cache / layout
        marker = lake / "built.json"
        if layout in need:
            shutil.rmtree(lake, ignore_errors=True)
            t0 = time.perf_counter()
            rows = write_table(spark, cfg, lake / GROUP_DATETIME, layout)
            marker.write_text(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}))
            print(f"wrote {layout}: {rows:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        files = list((lake / GROUP_DATETIME).rglob("*.parquet"))
        results["layouts"][layout] = {"rows": json.loads(marker.read_text())["rows"], "files": len(files),
                                      "mib": sum(f.stat().st_size for f in files) / 2**20}
    if spark is not None and not args.no_spark:
        for layout in layouts:
            print(f"Spark SQL, layout {layout}:", flush=True)
            results["layouts"][layout]["spark"] = measure_spark(spark, cfg, cache / layout, cases,
                                                                args.spark_repeat)
    if spark is not None:
        spark.stop()  # no JVM beside the API while it is measured
    for layout in layouts:
        print(f"API, layout {layout}:", flush=True)
        results["layouts"][layout]["first"] = measure_first(conf, cache / layout, first_mixes(cfg, cases))
        results["layouts"][layout]["api"] = measure_api(conf, cache / layout, cases, args.repeat, 4)
    out.mkdir(parents=True, exist_ok=True)
    (out / "api-results.json").write_text(json.dumps(results, indent=2))
    table = _table(results)
    (out / "api-results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
