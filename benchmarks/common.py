"""What the benchmarks, the load tools and the tests share: free loopback ports,
latency percentiles, and the report API served on loopback for a ``with`` block."""

from __future__ import annotations

import socket
import statistics
from typing import Iterable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values_ms: Iterable[float], *points: int) -> dict[int, float]:
    """The inclusive percentiles ``points`` (e.g. 50, 90, 99) of ``values_ms``; with one
    value, that value for every point. Empty input: an empty dict."""
    ms = sorted(values_ms)
    if not ms:
        return {}
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {p: q[p - 1] for p in points}
