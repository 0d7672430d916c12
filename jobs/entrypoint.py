"""The jobs' entry point for ``spark-submit`` (which cannot run ``python -m jobs``).

    spark-submit --master URL [--conf …] <jobs package>/entrypoint.py nightly --date D --conf DIR …

The driver's Python must have the project installed (``make setup``; the DAGs pass their
own interpreter as ``PYSPARK_PYTHON``), or the package comes with ``--py-files``:
``make dist`` copies this script beside ``footfall-<version>.zip``.

Runs ``jobs.__main__.main(argv)`` with the same arguments as ``python -m jobs``. One
difference: under spark-submit the master is spark-submit's ``--master`` (Airflow's
Spark connection), not ``conf/storage.yaml``'s ``spark.master``. ``build_spark()`` sets
the master on the session builder, and a builder setting wins over spark-submit's, so
this script reads the master spark-submit gave the driver JVM and passes it on as
``--master`` (unless the arguments already hold one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _fix_path() -> None:
    # Run as a script, sys.path[0] is jobs/ itself: keep jobs/spark.py etc. from shadowing
    # top-level modules (the installed `jobs` package is imported instead).
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]


def submit_master() -> str | None:
    """The master spark-submit launched this driver with; None outside spark-submit."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None
    from pyspark import SparkContext
    SparkContext._ensure_initialized()
    return SparkContext._jvm.java.lang.System.getProperty("spark.master")


def with_master(argv: list[str], master: str | None) -> list[str]:
    """``argv`` plus ``--master master`` for the run commands, unless it has one."""
    if not master or not argv or argv[0] not in ("nightly", "backfill", "maintain", "show"):
        return list(argv)
    if any(a == "--master" or a.startswith("--master=") for a in argv):
        return list(argv)
    return [*argv, "--master", master]


def _summary_folder(argv: list[str]) -> None:
    """Create the folder of ``--summary-json FILE`` (a run's first summary in a new folder)."""
    for i, a in enumerate(argv):
        path = argv[i + 1] if a == "--summary-json" and i + 1 < len(argv) else (
            a.split("=", 1)[1] if a.startswith("--summary-json=") else None)
        if path and "://" not in path:
            Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _summary_folder(argv)
    from jobs.__main__ import main as jobs_main
    return jobs_main(with_master(argv, submit_master()))


if __name__ == "__main__":
    _fix_path()
    sys.exit(main())
