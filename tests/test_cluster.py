"""The same jobs on a real Spark standalone cluster: a master and two workers started
from the installed Spark (bin/spark-cluster.sh, as `make cluster`), a tiny backfill with
``--master spark://127.0.0.1:PORT`` gives exactly the gold of local Spark, and so does the
artifact of `make dist` submitted from a folder that holds only it and conf/, its driver in
cluster deploy mode (through Spark's PythonRunner; client mode submits the same files).

Heavy (`make test-heavy`): it starts three JVMs. Set FOOTFALL_SKIP_CLUSTER=1 to skip it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import venv
from pathlib import Path

import pytest

from jobs import run
from jobs.config import load_config
from jobs.orchestration import backfill_args, load_airflow_settings, submit_kwargs
from jobs.shipping import DRIVER_JAVA_OPTIONS, PYTHON_RUNNER, job_args
from benchmarks.common import free_port
from tests.helpers import ROOT, TINY_DAYS as DAYS, TINY_START as START, gold_by_key as gold, write_tiny_world
from tests.airflow_env import use_airflow

END = START + dt.timedelta(days=DAYS - 1)

pytestmark = [
    pytest.mark.heavy,  # three JVMs and a spark-submit: minutes; `make test-heavy`
    pytest.mark.timeout(900),
    pytest.mark.skipif(os.environ.get("FOOTFALL_SKIP_CLUSTER") == "1", reason="FOOTFALL_SKIP_CLUSTER=1"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master on a free loopback port (and its REST server, which the operator asks
    for a cluster-mode driver's state) and two workers (1 core, 1g); always stopped.
    :return: the master URL, the cluster's folder, the REST port."""
    folder = tmp_path_factory.mktemp("cluster")
    port, rest = free_port(), free_port()
    # No PYTHONPATH: a driver the workers start sees only the footfall its submission ships.
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "CLUSTER_DIR": str(folder),
           "MASTER_PORT": str(port), "MASTER_WEBUI_PORT": str(free_port()), "MASTER_REST_PORT": str(rest),
           "WORKER_WEBUI_PORT": "0", "WORKERS": "2", "WORKER_CORES": "1", "WORKER_MEMORY": "1g",
           "PY": sys.executable}
    script = str(ROOT / "bin" / "spark-cluster.sh")
    try:
        out = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stdout + out.stderr
        yield f"spark://127.0.0.1:{port}", folder, rest
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tiny(spark, tmp_path_factory):
    """The tiny world (its conf folder) and the gold of local Spark over it."""
    root = tmp_path_factory.mktemp("tiny")
    conf = write_tiny_world(root, lakehouse="lake-cluster")
    run.backfill(spark, load_config(conf).with_storage(lakehouse=str(root / "lake-local")), START, END)
    local = gold(spark, root / "lake-local")
    assert len(local) > 1000
    return conf, local


def _apps(folder) -> set[str]:
    """The applications whose executors ran in the workers' folders."""
    return {p.name for w in folder.glob("work-*") for p in w.iterdir() if p.name.startswith("app-")}


def test_a_backfill_on_the_standalone_cluster_gives_the_gold_of_local_spark(spark, cluster, tiny):
    master, folder, _ = cluster
    conf, local = tiny
    out = subprocess.run(
        [sys.executable, "-m", "jobs", "backfill", "--from", str(START), "--to", str(END),
         "--conf", str(conf), "--master", master],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # The application really ran on the cluster: its executors ran in the workers' folders.
    assert _apps(folder)
    assert gold(spark, conf.parent / "lake-cluster") == local


def _image_python(folder: Path) -> str:
    """A Python with the dependencies (this venv's site-packages) but not the footfall
    package: the image of a machine that has never seen this repo."""
    venv.create(folder, with_pip=False)
    site = next(folder.glob("lib/python3*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(folder / "bin" / "python")
    assert subprocess.run([python, "-c", "import pyspark, pydantic, yaml, pyarrow"], cwd=folder).returncode == 0
    assert subprocess.run([python, "-c", "import jobs"], cwd=folder, capture_output=True).returncode == 1
    return python


def _scratch(tmp_path: Path, conf: Path, spark_yaml: str, master: str, rest: int, monkeypatch):
    """A scratch folder holding only `make dist`'s dist/ and a copy of ``conf`` (landing at
    the tiny world's), whose airflow.yaml has ``spark_yaml`` (a Python without footfall as
    ``{python}``), the connection footfall_cluster on ``master``, and it as the working
    directory. :return: the folder and the Airflow settings."""
    scratch = tmp_path / "scratch"
    out = subprocess.run([sys.executable, str(ROOT / "build" / "dist.py"), "--out", str(scratch / "dist"),
                          "--no-wheel"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shutil.copytree(conf, scratch / "conf")
    storage = scratch / "conf" / "storage.yaml"
    storage.write_text(storage.read_text().replace("landing: landing", f"landing: {conf.parent / 'landing'}"))
    python = _image_python(tmp_path / "image")
    (scratch / "conf" / "airflow.yaml").write_text(
        "pool: null\nspark:\n  conn_id: footfall_cluster\n  code: artifact\n  artifact: dist\n"
        f"  python: {python}\n  driver_memory: 1g\n  executor_memory: 1g\n"
        + textwrap.indent(textwrap.dedent(spark_yaml), "  "))
    monkeypatch.setenv("AIRFLOW_CONN_FOOTFALL_CLUSTER", json.dumps(
        {"conn_type": "spark", "host": master.rsplit(":", 1)[0], "port": int(master.rsplit(":", 1)[1]),
         "extra": {"rest-port": rest}}))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the zip is the driver's only footfall
    monkeypatch.chdir(scratch)
    assert sorted(p.name for p in scratch.iterdir()) == ["conf", "dist"]
    return scratch, load_airflow_settings(scratch / "conf")


def _drivers(folder) -> set[Path]:
    """The folders of the drivers the workers ran (cluster deploy mode)."""
    return {p for w in folder.glob("work-*") for p in w.iterdir() if p.name.startswith("driver-")}


def test_the_artifact_runs_in_cluster_deploy_mode_on_the_standalone_master(
        spark, cluster, tiny, tmp_path, monkeypatch):
    """``deploy_mode: cluster`` with ``standalone_master: true``: Spark refuses a Python
    application in cluster mode on a standalone master, so the driver is Spark's
    PythonRunner in dist/driver.jar. A worker starts it in its own folder, on a Python
    without footfall; the operator follows it through the master's REST server until it
    finishes. The same gold as local Spark."""
    use_airflow()
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    master, folder, rest = cluster
    conf, local = tiny
    # The driver JVM's options are the ones spark-submit gives a driver of this Spark.
    assert spark._jvm.org.apache.spark.launcher.JavaModuleOptions.defaultModuleOptions() == DRIVER_JAVA_OPTIONS
    scratch, settings = _scratch(tmp_path, conf, "deploy_mode: cluster\nstandalone_master: true\n",
                                 master, rest, monkeypatch)
    dist = scratch / "dist"
    kwargs = submit_kwargs(settings, "footfall-dist-cluster")
    args = job_args(settings, backfill_args({"from": str(START), "to": str(END)}, settings.conf_dir))
    assert (kwargs["application"], kwargs["java_class"]) == (str(dist / "driver.jar"), PYTHON_RUNNER)
    assert args[:2] == [str(dist / "entrypoint.py"), str(dist / "footfall-0.4.0.zip")]

    # Spark itself refuses the script as the application, before it contacts the master.
    out = subprocess.run([str(Path(sys.executable).parent / "spark-submit"), "--master", master,
                          "--deploy-mode", "cluster", "--py-files", kwargs["py_files"], *args],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert ("Cluster deploy mode is currently not supported for python applications on standalone "
            "clusters.") in out.stderr

    before, apps = _drivers(folder), _apps(folder)
    op = SparkSubmitOperator(task_id="backfill", application_args=args, **kwargs)
    started = time.monotonic()
    op.execute(context={})  # polls the driver's state until FINISHED; else it raises
    print(f"artifact backfill in cluster deploy mode: {time.monotonic() - started:.1f} s")
    (driver,) = _drivers(folder) - before
    assert _apps(folder) - apps
    # A worker ran the driver in its folder: PythonRunner on the Python without footfall,
    # from dist/ (its stdout has the run's summary).
    launch = (driver / "stderr").read_text().split("=" * 40)[0]
    assert f'"{PYTHON_RUNNER}" "{dist / "entrypoint.py"}" "{dist / "footfall-0.4.0.zip"}" "backfill"' in launch
    assert f'"-Dspark.pyspark.driver.python={settings.python}"' in launch
    assert f"footfall backfill --from {START} --to {END}" in (driver / "stdout").read_text()
    assert gold(spark, scratch / "lake-cluster") == local
