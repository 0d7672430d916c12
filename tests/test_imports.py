"""What the packages import: the report API and the Spark-free parts of ``jobs`` load
without Spark or Delta (the API server and the DAG files must start without a JVM), and
no product package imports the benchmarks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPARK_FREE = ("reports.api", "reports.query", "reports.buckets", "reports.params", "reports.tokens",
              "reports.exports", "reports.__main__", "jobs.spec", "jobs.paths", "jobs.config",
              "jobs.storagefile", "jobs.orchestration", "jobs.quality", "jobs.shipping",
              "jobs.objectstore", "jobs.s3lock", "jobs.lock")
PRODUCT_PACKAGES = ("jobs", "reports", "dags")


def test_the_api_and_the_spark_free_modules_import_neither_pyspark_nor_delta():
    # A fresh interpreter: this test session has Spark loaded already.
    code = ("import importlib, json, sys\n"
            f"for name in {SPARK_FREE!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.splitlines()[-1])
    assert set(SPARK_FREE) <= set(loaded)
    heavy = [m for m in loaded if m in ("pyspark", "delta") or m.startswith(("pyspark.", "delta."))]
    assert heavy == []


def test_no_product_module_imports_the_benchmarks():
    imports = re.compile(r"^\s*(from\s+benchmarks(\.|\s)|import\s+benchmarks\b)", re.MULTILINE)
    files = [f for package in PRODUCT_PACKAGES for f in sorted((ROOT / package).rglob("*.py"))]
    assert files
    offenders = [str(f.relative_to(ROOT)) for f in files if imports.search(f.read_text())]
    assert offenders == []
