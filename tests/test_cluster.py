"""The same jobs on a real Spark standalone cluster: a master and two workers started
from the installed Spark (bin/spark-cluster.sh, as `make cluster`), a tiny backfill with
``--master spark://127.0.0.1:PORT`` gives exactly the gold of local Spark.

Heavy (`make test-heavy`): it starts three JVMs. Set FOOTFALL_SKIP_CLUSTER=1 to skip it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from jobs import run
from jobs.config import load_config
from benchmarks.common import free_port
from tests.helpers import ROOT, TINY_DAYS as DAYS, TINY_START as START, gold_by_key as gold, write_tiny_world


pytestmark = [
    pytest.mark.heavy,  # three JVMs and a spark-submit: minutes; `make test-heavy`
    pytest.mark.timeout(900),
    pytest.mark.skipif(os.environ.get("FOOTFALL_SKIP_CLUSTER") == "1", reason="FOOTFALL_SKIP_CLUSTER=1"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master on a free loopback port and two workers (1 core, 1g); always stopped."""
    folder = tmp_path_factory.mktemp("cluster")
    port = free_port()
    env = {**os.environ, "CLUSTER_DIR": str(folder), "MASTER_PORT": str(port),
           "MASTER_WEBUI_PORT": str(free_port()), "WORKER_WEBUI_PORT": "0",
           "WORKERS": "2", "WORKER_CORES": "1", "WORKER_MEMORY": "1g", "PY": sys.executable}
    script = str(ROOT / "bin" / "spark-cluster.sh")
    try:
        out = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stdout + out.stderr
        yield f"spark://127.0.0.1:{port}", folder
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, text=True, timeout=120)


def test_a_backfill_on_the_standalone_cluster_gives_the_gold_of_local_spark(spark, cluster, tmp_path):
    master, folder = cluster
    conf = write_tiny_world(tmp_path, lakehouse="lake-cluster")
    end = START + dt.timedelta(days=DAYS - 1)
    out = subprocess.run(
        [sys.executable, "-m", "jobs", "backfill", "--from", str(START), "--to", str(end),
         "--conf", str(conf), "--master", master],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # The application really ran on the cluster: its executors ran in the workers' folders.
    apps = [p.name for w in folder.glob("work-*") for p in w.iterdir()]
    assert any(a.startswith("app-") for a in apps), apps
    on_cluster = gold(spark, tmp_path / "lake-cluster")

    cfg = load_config(conf).with_storage(lakehouse=str(tmp_path / "lake-local"))
    run.backfill(spark, cfg, START, end)
    local = gold(spark, tmp_path / "lake-local")
    assert len(local) > 1000
    assert on_cluster == local
