"""What the benchmarks, the load tools and the tests share: free loopback ports,
latency percentiles, and the report API served on loopback for a ``with`` block."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import httpx

#: The checkout that holds the packages: the servers' and jobs' working folder.
ROOT = Path(__file__).resolve().parent.parent


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM ``proc``; SIGKILL it if it has not exited after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


class ApiServer:
    """``python -m reports serve`` on a free loopback port for a ``with`` block: the
    block starts once ``/health`` answers, and the server stops when it ends."""

    def __init__(self, conf: Path | str, lakehouse: Path | str, *,
                 refresh_seconds: float | None = None, log: Path | str | None = None,
                 start_timeout: float = 60, extra_args: Sequence[str] = ()):
        """``refresh_seconds``: the API's gold refresh interval (None: the server's
        default); ``log``: a file for the server's output (None: discarded);
        ``extra_args``: more ``reports serve`` options (``--no-warm-up``)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log) if log is not None else None
        self.start_timeout = start_timeout
        self.args = [sys.executable, "-m", "reports", "serve", "--port", str(self.port),
                     "--conf", str(conf), "--lakehouse", str(lakehouse)]
        if refresh_seconds is not None:
            self.args += ["--refresh-seconds", str(refresh_seconds)]
        self.args += list(extra_args)

    def __enter__(self) -> "ApiServer":
        self._out = self.log.open("w") if self.log is not None else subprocess.DEVNULL
        # The checkout on the path, whatever the caller's working folder.
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=self._out,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.__exit__()
                    tail = f":\n{self.log.read_text()[-3000:]}" if self.log is not None else ""
                    raise RuntimeError(f"the API server did not start{tail}") from None
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        stop_process(self.proc, 30)
        if self.log is not None:
            self._out.close()
