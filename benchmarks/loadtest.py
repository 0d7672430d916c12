"""``python -m benchmarks.loadtest``: many concurrent clients against
``GET /reports/group_datetime``, for a bounded time.

Each client is an asyncio task with its own keep-alive connection (httpx), sending one
request after another from a fixed list (each client starts at another place in it).
Every response is recorded: when it was sent (wall clock), its latency (send to last
body byte), its status and the SHA-256 of its body, so that a caller can tell which
state of the data each answer shows (:func:`classify`). The summary gives the count per
status, latency percentiles and requests per second, as JSON and Markdown.

The requests come from ``--requests-file`` (a JSON list of query-parameter objects) or
from :func:`default_mix` over a config's objects and a date range.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import httpx

from benchmarks.common import percentiles
from jobs.spec import INTERVALS

PATH = "/reports/group_datetime"


@dataclass(frozen=True)
class Sample:
    """One response (or transport failure, ``status`` 0)."""

    request: int  # index in the request list
    started: float  # wall clock (time.time()) when sent
    latency: float  # seconds, send to last body byte
    status: int
    digest: str  # SHA-256 hex of the body; "" for a transport failure
    size: int
    server: float = -1.0  # seconds the app itself took (its Server-Timing header); -1: none


def default_mix(cfg, start: dt.date, end: dt.date) -> list[dict]:
    """A mix of report requests over local dates [start, end]: every interval of each
    mall, other windows and thresholds, floors, zones, and both malls together (an
    answer from two partitions, the one that could mix two table versions)."""
    malls = [m.id for m in cfg.malls]
    of_type = {(m, t): [o.id for o in cfg.objects if o.mall_id == m and o.type == t]
               for m in malls for t in ("floor", "zone")}
    span = {"from": start.isoformat(), "to": end.isoformat()}
    out: list[dict] = []
    for m in malls:
        for interval in INTERVALS:
            out.append({"objects": str(m), "interval": interval, **span})
        out.append({"objects": str(m), "interval": "daily", "comeback": "1 month",
                    "bounce_threshold": "10 minute", "engagement_threshold": "30 minute", **span})
        out.append({"objects": ",".join(map(str, of_type[m, "floor"])), "interval": "daily", **span})
        out.append({"objects": ",".join(map(str, of_type[m, "zone"][:5])), "interval": "hourly", **span})
    both = ",".join(map(str, malls))
    out += [{"objects": both, "interval": "daily", **span},
            {"objects": both, "interval": "hourly", **span},
            {"objects": both, "interval": "monthly", "comeback": "2 month", **span},
            {"objects": ",".join(str(f) for m in malls for f in of_type[m, "floor"]),
             "interval": "daily", "bounce_threshold": "2 minute", **span}]
    return out


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _server_seconds(header: str | None) -> float:
    """``app;dur=12.3`` (ms) → 0.0123; -1 when absent. The rest of a latency is queueing
    (in the server's thread pool and the client's event loop) and the network."""
    try:
        return float(header.split("dur=")[1].split(",")[0]) / 1000 if header else -1.0
    except (IndexError, ValueError):
        return -1.0


def fetch_all(url: str, token: str, requests: Sequence[dict], timeout: float = 60) -> list[tuple[int, str]]:
    """(status, body digest) of each request, one after another."""
    with httpx.Client(base_url=url, headers={"x-token": token}, timeout=timeout) as http:
        out = []
        for params in requests:
            r = http.get(PATH, params=params)
            out.append((r.status_code, _digest(r.content)))
        return out


async def _client(k: int, url: str, token: str, requests: Sequence[dict], samples: list[Sample],
                  stop: asyncio.Event, timeout: float) -> None:
    # One connection per client, kept alive: 50 clients are 50 sockets, as 50 users would be.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, headers={"x-token": token}, timeout=timeout,
                                 limits=limits) as http:
        i = k
        while not stop.is_set():
            n = i % len(requests)
            i += 1
            started, t0 = time.time(), time.perf_counter()
            try:
                r = await http.get(PATH, params=requests[n])
                status, body = r.status_code, r.content
                server = _server_seconds(r.headers.get("server-timing"))
            except httpx.HTTPError:
                status, body, server = 0, b"", -1.0
            samples.append(Sample(n, started, time.perf_counter() - t0, status,
                                  _digest(body) if status else "", len(body), server))


async def _load(url: str, token: str, requests: Sequence[dict], clients: int, seconds: float,
                hold: threading.Event | None, max_seconds: float,
                timeout: float) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    stop = asyncio.Event()
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(_client(k, url, token, requests, samples, stop, timeout))
             for k in range(clients)]
    # Run at least `seconds`, then until `hold` is set (e.g. a concurrent job finished),
    # never past `max_seconds`: the load must cover the whole event it is measured against.
    while True:
        await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        if elapsed >= max_seconds or (elapsed >= seconds and (hold is None or hold.is_set())):
            break
    stop.set()
    await asyncio.gather(*tasks)  # each finishes its request in flight: nothing is cut off
    return samples, time.perf_counter() - t0


def run_load(url: str, token: str, requests: Sequence[dict], clients: int, seconds: float, *,
             hold: threading.Event | None = None, max_seconds: float | None = None,
             timeout: float = 60) -> tuple[list[Sample], float]:
    """``clients`` concurrent clients for ``seconds`` (and, with ``hold``, until it is
    set, at most ``max_seconds``). Returns the samples and the wall time of the run."""
    if not requests:
        raise ValueError("no requests")
    return asyncio.run(_load(url, token, requests, clients, seconds, hold,
                             max_seconds if max_seconds is not None else seconds, timeout))


def latency_stats(samples: Sequence[Sample], server: bool = False) -> dict:
    """p50, p90, p99, max and mean latency (ms) of ``samples`` (``server``: the app's own
    share, from Server-Timing)."""
    ms = [(s.server if server else s.latency) * 1000 for s in samples if not server or s.server >= 0]
    if not ms:
        return {"n": 0}
    q = percentiles(ms, 50, 90, 99)
    return {"n": len(ms), "p50_ms": round(q[50], 1), "p90_ms": round(q[90], 1),
            "p99_ms": round(q[99], 1), "max_ms": round(max(ms), 1),
            "mean_ms": round(statistics.fmean(ms), 1)}


def summarize(samples: Sequence[Sample], seconds: float, clients: int) -> dict:
    """Counts per status, latency percentiles, throughput."""
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    return {"clients": clients, "seconds": round(seconds, 1), "requests": len(samples),
            "req_per_s": round(len(samples) / seconds, 1) if seconds else 0.0,
            "by_status": dict(sorted(statuses.items())),
            "server_errors": sum(1 for s in samples if s.status >= 500),
            "transport_errors": sum(1 for s in samples if s.status == 0),
            "latency": latency_stats(samples),
            "server_latency": latency_stats(samples, server=True),
            "bytes": sum(s.size for s in samples)}


def classify(samples: Sequence[Sample], before: Sequence[str], after: Sequence[str]) -> dict:
    """Each 200 answer's body against the request's body before and after a change:
    ``before``, ``after`` (equal to one of them) or ``torn`` (neither). For a request the
    change did not touch (same body before and after) the answer counts as ``unchanged``."""
    counts = {"before": 0, "after": 0, "unchanged": 0, "torn": 0}
    torn = []
    for s in samples:
        if s.status != 200:
            continue
        b, a = before[s.request], after[s.request]
        if b == a:
            kind = "unchanged" if s.digest == b else "torn"
        else:
            kind = "before" if s.digest == b else "after" if s.digest == a else "torn"
        counts[kind] += 1
        if kind == "torn":
            torn.append({"request": s.request, "started": s.started, "digest": s.digest})
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    return {**counts, "requests_changed": len(changed), "requests": len(before),
            "changed_requests": changed, "torn_samples": torn[:20]}


def markdown(rows: Sequence[tuple[str, dict]]) -> str:
    """Summaries of :func:`summarize`, one table row each: ``(name, summary)``."""
    out = ["| window | clients | seconds | requests | req/s | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | "
           "of which server p50 / p99 (ms) | by status |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, sm in rows:
        lat, app = sm["latency"], sm["server_latency"]
        statuses = ", ".join(f"{k}: {v:,}" for k, v in sm["by_status"].items()) or "–"
        out.append(f"| {name} | {sm['clients']} | {sm['seconds']:.1f} | {sm['requests']:,} | "
                   f"{sm['req_per_s']:.1f} | {lat.get('p50_ms', 0):.1f} | {lat.get('p90_ms', 0):.1f} | "
                   f"{lat.get('p99_ms', 0):.1f} | {lat.get('max_ms', 0):.1f} | "
                   f"{app.get('p50_ms', 0):.1f} / {app.get('p99_ms', 0):.1f} | {statuses} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadtest",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the API's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--token", required=True, help="an API token (x-token)")
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (default: 50)")
    p.add_argument("--seconds", type=float, default=60, help="how long (default: 60)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--requests-file", help="JSON list of query-parameter objects")
    src.add_argument("--conf", help="config folder: use the built-in mix over its objects "
                     "(with --from, --to)")
    p.add_argument("--from", dest="start", type=dt.date.fromisoformat, help="first local date of the mix")
    p.add_argument("--to", dest="end", type=dt.date.fromisoformat, help="last local date of the mix")
    p.add_argument("--json", help="also write the summary (and every sample) as JSON to this file")
    p.add_argument("--md", help="also write the Markdown summary to this file")
    args = p.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        p.error("--clients and --seconds must be positive")
    if args.requests_file:
        requests = json.loads(Path(args.requests_file).read_text())
        if not isinstance(requests, list) or not requests or not all(isinstance(r, dict) for r in requests):
            p.error("--requests-file: expected a non-empty JSON list of objects")
    else:
        if not (args.start and args.end):
            p.error("--conf needs --from and --to")
        from jobs.config import load_config
        requests = default_mix(load_config(args.conf), args.start, args.end)
    samples, seconds = run_load(args.url.rstrip("/"), args.token, requests, args.clients, args.seconds)
    summary = summarize(samples, seconds, args.clients)
    text = markdown([("whole run", summary)])
    print(text)
    if args.md:
        Path(args.md).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "requests": requests,
                                               "samples": [asdict(s) for s in samples]}))
    return 1 if summary["server_errors"] or summary["transport_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
