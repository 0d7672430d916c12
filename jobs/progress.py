"""Progress of a run as it goes, on stderr: each stage's start and end (with its counts
and seconds), the steps inside it, and a heartbeat with Spark's task progress while a
step runs long, so that a slow run can be told from a hung one.

Lines go to the ``footfall.progress`` logger. The command line turns them on
(:func:`enable`; ``--quiet`` leaves them off, for schedulers that keep only the summary);
library callers and tests see nothing unless they attach a handler.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

log = logging.getLogger("footfall.progress")

#: Seconds of silence after which the heartbeat reports what Spark is doing.
HEARTBEAT_SECONDS = 20.0


def enable(stream=None) -> None:
    """Print progress lines to ``stream`` (default stderr), prefixed with the run's
    elapsed time."""
    handler = logging.StreamHandler(stream or sys.stderr)
    start = time.perf_counter()

    class _Elapsed(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"[{time.perf_counter() - start:7.1f}s] {record.getMessage()}"

    handler.setFormatter(_Elapsed())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def step(message: str, *args) -> None:
    """One line of progress (``%``-style arguments, as :mod:`logging`)."""
    log.info(message, *args)


def spark_tasks(spark) -> str | None:
    """What Spark runs now, e.g. ``2 stages, tasks 140/378``; None when it is idle."""
    tracker = spark.sparkContext.statusTracker()
    infos = [i for i in (tracker.getStageInfo(s) for s in tracker.getActiveStageIds()) if i]
    if not infos:
        return None
    done = sum(i.numCompletedTasks for i in infos)
    total = sum(i.numTasks for i in infos)
    return f"{len(infos)} Spark stage{'s' if len(infos) > 1 else ''}, tasks {done}/{total}"


class Heartbeat:
    """While open, report every :data:`HEARTBEAT_SECONDS` that stage ``name`` still
    runs, with Spark's task progress. Does nothing when progress is off."""

    def __init__(self, spark, name: str, every: float = HEARTBEAT_SECONDS):
        self.spark, self.name, self.every = spark, name, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Heartbeat":
        if log.isEnabledFor(logging.INFO) and self.spark is not None:
            self._thread = threading.Thread(target=self._run, name="footfall-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.wait(self.every):
            try:
                tasks = spark_tasks(self.spark)
            except Exception:  # noqa: BLE001 -- the session may be stopping; never fail a run
                tasks = None
            log.info("  %s running for %.0fs%s", self.name, time.perf_counter() - t0,
                     f" ({tasks})" if tasks else "")
