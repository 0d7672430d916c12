"""The code that travels with a Spark run: `make dist` (build/dist.py) and
conf/airflow.yaml's ``spark.code``, ``spark.artifact``, ``spark.deploy_mode``,
``spark.python`` and ``spark.standalone_master`` as submit_kwargs and job_args hand them
to the SparkSubmitOperator. No Spark here; tests/test_cluster.py (heavy) runs the artifact
on a standalone cluster, in client and in cluster deploy mode."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from jobs.configfile import ConfigError
from jobs.orchestration import load_airflow_settings, submit_kwargs
from jobs.shipping import DRIVER_JAVA_OPTIONS, PYTHON_RUNNER, job_args
from jobs.paths import ENTRYPOINT, LOG_CONFIG
from tests.helpers import ROOT


def _settings(tmp_path: Path, spark: str):
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "airflow.yaml").write_text(f"spark:\n{spark}")
    return load_airflow_settings(conf)


def _fake_dist(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("footfall-0.4.0.zip", "entrypoint.py", "log4j2.properties", "driver.jar"):
        (folder / name).write_text("")
    return folder


def test_by_default_the_installed_package_runs_as_before(tmp_path):
    kw = submit_kwargs(_settings(tmp_path, "  conn_id: spark_default\n"), "footfall-nightly")
    assert kw["application"] == str(ENTRYPOINT)
    assert "py_files" not in kw and "deploy_mode" not in kw
    assert kw["env_vars"] == {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    assert kw["conf"]["spark.driver.extraJavaOptions"].startswith(
        f"-Dlog4j2.configurationFile=file:{LOG_CONFIG}")


def test_the_artifact_is_submitted_with_py_files_and_its_own_entry_script(tmp_path):
    dist = _fake_dist(tmp_path / "dist")
    s = _settings(tmp_path, "  code: artifact\n  python: /opt/py/bin/python\n  deploy_mode: client\n")
    assert s.artifact_dir == str(dist)  # relative to the folder holding conf/
    kw = submit_kwargs(s, "footfall-backfill")
    assert kw["application"] == str(dist / "entrypoint.py")
    assert kw["py_files"] == str(dist / "footfall-0.4.0.zip")
    assert kw["deploy_mode"] == "client"
    assert kw["env_vars"] == {"PYSPARK_PYTHON": "/opt/py/bin/python", "PYSPARK_DRIVER_PYTHON": "/opt/py/bin/python"}
    assert kw["conf"]["spark.driver.extraJavaOptions"].startswith(
        f"-Dlog4j2.configurationFile=file:{dist / 'log4j2.properties'}")
    assert "java_class" not in kw and "files" not in kw
    assert job_args(s, ["show"]) == ["show"]


def test_cluster_deploy_mode_passes_the_python_as_spark_settings_not_environment(tmp_path):
    _fake_dist(tmp_path / "elsewhere")
    s = _settings(tmp_path, "  code: artifact\n  artifact: elsewhere\n  deploy_mode: cluster\n"
                            "  python: /opt/py/bin/python\n  conf: {spark.cores.max: 2}\n")
    kw = submit_kwargs(s, "footfall-nightly")
    assert kw["deploy_mode"] == "cluster"
    # The provider refuses env_vars for a standalone cluster, and a remote driver has no
    # such log file: neither is passed.
    assert "env_vars" not in kw
    assert kw["conf"] == {"spark.pyspark.python": "/opt/py/bin/python",
                          "spark.pyspark.driver.python": "/opt/py/bin/python", "spark.cores.max": "2"}


def test_cluster_mode_on_a_standalone_master_starts_the_driver_through_pythonrunner(tmp_path):
    """spark-submit refuses a Python application in cluster mode on a standalone master:
    the driver is then Spark's PythonRunner in an empty JAR, the script and the zip first
    in its arguments."""
    dist = _fake_dist(tmp_path / "dist")
    s = _settings(tmp_path, "  code: artifact\n  deploy_mode: cluster\n  standalone_master: true\n"
                            "  python: /opt/py/bin/python\n  conf: {spark.cores.max: 2}\n")
    assert s.python_runner
    kw = submit_kwargs(s, "footfall-backfill")
    zip_ = str(dist / "footfall-0.4.0.zip")
    assert kw["application"] == str(dist / "driver.jar")
    assert kw["java_class"] == PYTHON_RUNNER == "org.apache.spark.deploy.PythonRunner"
    assert kw["py_files"] == kw["files"] == zip_  # the executors' Python path
    assert kw["deploy_mode"] == "cluster" and "env_vars" not in kw
    assert kw["conf"] == {
        "spark.driver.extraJavaOptions": f"{DRIVER_JAVA_OPTIONS} -Dlog4j2.configurationFile=file:"
                                         f"{dist / 'log4j2.properties'}",
        "spark.pyspark.python": "/opt/py/bin/python", "spark.pyspark.driver.python": "/opt/py/bin/python",
        "spark.cores.max": "2"}
    assert "--add-opens=java.base/java.nio=ALL-UNNAMED" in DRIVER_JAVA_OPTIONS  # Arrow's
    assert job_args(s, ["backfill", "--from", "2016-01-04"]) == [
        str(dist / "entrypoint.py"), zip_, "backfill", "--from", "2016-01-04"]
    # The switch alone changes nothing in client mode (nor on YARN or Kubernetes, which
    # leave it false).
    client = _settings(tmp_path, "  code: artifact\n  deploy_mode: client\n  standalone_master: true\n")
    assert not client.python_runner and "java_class" not in submit_kwargs(client, "x")
    assert job_args(client, ["show"]) == ["show"]


@pytest.mark.parametrize("spark, message", [
    ("  deploy_mode: cluster\n  standalone_master: true\n",
     "airflow.yaml: spark.standalone_master with deploy_mode cluster needs code: artifact"),
    ("  code: artifact\n  deploy_mode: cluster\n  standalone_master: true\n",
     "must hold what `make dist` writes (one footfall-<version>.zip and entrypoint.py and driver.jar); "
     "found: entrypoint.py, footfall-0.4.0.zip"),
])
def test_pythonrunner_needs_the_artifact_and_its_driver_jar(tmp_path, spark, message):
    dist = _fake_dist(tmp_path / "dist")
    (dist / "driver.jar").unlink()
    (dist / "log4j2.properties").unlink()
    with pytest.raises(ConfigError) as err:
        submit_kwargs(_settings(tmp_path, spark), "footfall-nightly")
    assert message in str(err.value)


def test_a_missing_artifact_says_what_make_dist_writes(tmp_path):
    s = _settings(tmp_path, "  code: artifact\n")
    with pytest.raises(ConfigError, match=r"spark.artifact: .*/dist must hold what `make dist` writes "
                                          r"\(one footfall-<version>.zip and entrypoint.py\); found: no folder"):
        submit_kwargs(s, "footfall-nightly")


@pytest.mark.parametrize("spark, message", [
    ("  code: wheel\n", "airflow.yaml: spark.code: expected 'installed' or 'artifact', got 'wheel'"),
    ("  deploy_mode: local\n", "airflow.yaml: spark.deploy_mode: expected 'client' or 'cluster', got 'local'"),
    ("  py_files: dist/x.zip\n", "airflow.yaml: spark: unknown key 'py_files' (the keys are: artifact, code, "
                                 "conf, conn_id, deploy_mode, driver_memory, executor_memory, python, "
                                 "standalone_master)"),
    ("  standalone_master: yes please\n", "airflow.yaml: spark.standalone_master: expected true or false"),
    ("  artifact: ''\n", "airflow.yaml: spark.artifact: expected a path or URI, got ''"),
])
def test_bad_code_settings_name_the_key(tmp_path, spark, message):
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, spark)
    assert message in str(err.value)


def test_make_dist_zips_the_listed_packages_and_the_zip_runs_away_from_the_checkout(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "build" / "dist.py"), "--out", str(tmp_path / "dist"),
                          "--no-wheel"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    dist = tmp_path / "dist"
    assert sorted(p.name for p in dist.iterdir()) == ["driver.jar", "entrypoint.py", "footfall-0.4.0.zip",
                                                      "log4j2.properties"]
    assert zipfile.ZipFile(dist / "driver.jar").namelist() == ["META-INF/MANIFEST.MF"]
    names = set(zipfile.ZipFile(dist / "footfall-0.4.0.zip").namelist())
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert {n.rsplit("/", 1)[0].replace("/", ".") for n in names} == set(packages)
    assert "jobs/log4j2.properties" in names and "jobs/orchestration.py" in names
    assert not any("__pycache__" in n for n in names)
    # Imported from the zip, in a folder with no checkout: the log settings become a real
    # file for the JVM, and the project folder is the working directory.
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import jobs.paths as p, jobs.orchestration; "
             "print(p.__file__); print(p.IN_ZIP, p.LOG_CONFIG.is_file(), p.PROJECT_ROOT)")
    out = subprocess.run([sys.executable, "-c", probe, str(dist / "footfall-0.4.0.zip")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    where, facts = out.stdout.splitlines()
    assert where.startswith(str(dist / "footfall-0.4.0.zip"))
    assert facts == f"True True {tmp_path.resolve()}"
