"""The installed environment: pyspark (not a pyspark-client mix), Delta's JARs for this
Spark minor, the driver's class archive, and a real Delta write/read/MERGE through
build_spark()."""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import subprocess
import sys
from pathlib import Path

import pyspark
from chispa import assert_df_equality
from delta.tables import DeltaTable

from jobs import paths
from jobs.spark import JAR_DIR, session_jars


def test_pyspark_and_pyspark_client_are_one_version_with_its_jars():
    assert md.version("pyspark") == pyspark.__version__
    assert md.version("pyspark-client") == pyspark.__version__
    jars = Path(pyspark.__file__).parent / "jars"
    assert any(j.name.startswith("spark-core_2.13-") for j in jars.iterdir()), \
        "pyspark/jars is missing: pyspark-client overwrote pyspark (run make setup)"


def test_session_jars_match_the_pip_package_and_the_spark_minor():
    minor = ".".join(pyspark.__version__.split(".")[:2])
    names = [Path(j).name for j in session_jars()]
    assert f"delta-spark_{minor}_2.13-{md.version('delta-spark')}.jar" in names
    assert f"delta-storage-{md.version('delta-spark')}.jar" in names
    assert JAR_DIR.is_dir()


def test_the_s3_connector_is_the_hadoop_pyspark_bundles():
    bundled = next(Path(pyspark.__file__).parent.joinpath("jars").glob("hadoop-client-api-*.jar"))
    hadoop = bundled.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    names = [Path(j).name for j in session_jars()]
    assert f"hadoop-aws-{hadoop}.jar" in names
    # The few SDK modules S3A loads, not the 650 MB bundle of every AWS service.
    assert any(n.startswith("s3-2.") for n in names)
    assert not any(n.startswith("bundle-") for n in names)


def test_spark_submit_is_the_installed_pyspark():
    bin_dir = Path(pyspark.__file__).parent / "bin"
    out = subprocess.run([str(bin_dir / "spark-submit"), "--version"], capture_output=True, text=True,
                         env={**os.environ, "SPARK_HOME": str(bin_dir.parent)}, timeout=120)
    assert f"version {pyspark.__version__}" in out.stdout + out.stderr


def test_the_session_jvm_maps_the_class_archive_of_make_setup(spark):
    # The JVM keeps an archive it cannot use quietly: only its mapped size shows it is in
    # use (the JDK's own base archive alone is a few dozen MB; ours is ~240 MB).
    assert paths.JVM_ARCHIVE.is_file(), "no class archive: run make setup"
    jvm = spark.sparkContext._jvm
    pid = jvm.java.lang.ProcessHandle.current().pid()
    jcmd = Path(jvm.java.lang.System.getProperty("java.home")) / "bin" / "jcmd"
    info = subprocess.run([str(jcmd), str(pid), "VM.info"], capture_output=True, text=True,
                          timeout=60).stdout
    mapped = re.search(r"CDS archive\(s\) mapped at: .*?size (\d+)", info)
    assert mapped and int(mapped.group(1)) > paths.JVM_ARCHIVE.stat().st_size


def test_a_driver_without_the_archive_starts_with_the_log_settings_alone(monkeypatch, tmp_path):
    log = tmp_path / "log4j2.properties"
    monkeypatch.setattr(paths, "JVM_ARCHIVE", tmp_path / "absent.jsa")
    assert paths.driver_java_options(log) == f"-Dlog4j2.configurationFile=file:{log}"
    monkeypatch.setattr(paths, "JVM_ARCHIVE", log)
    log.write_text("")
    assert paths.driver_java_options(log) == (
        f"-Dlog4j2.configurationFile=file:{log} -XX:SharedArchiveFile={log} "
        "-Xlog:cds=off -Xlog:cds+dynamic=off")


def test_python_workers_run_this_interpreter_whatever_path_says(spark):
    # Capture files are decoded in Python workers that need this environment's pyarrow;
    # PySpark would otherwise start `python3` from PATH (a venv used without activation).
    assert spark.sparkContext.pythonExec == sys.executable
    worker = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").prefix).collect()
    assert worker == [sys.prefix]


def test_a_delta_table_round_trip(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.createDataFrame([(1, "a"), (2, "b")], "id long, v string").write.format("delta").save(path)
    source = spark.createDataFrame([(2, "B"), (3, "c")], "id long, v string")
    (DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), "t.id = s.id")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    expected = spark.createDataFrame([(1, "a"), (2, "B"), (3, "c")], "id long, v string")
    assert_df_equality(spark.read.format("delta").load(path), expected, ignore_row_order=True)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_airflow_the_spark_provider_and_pyspark_import_together_and_spark_submit_matches():
    import shutil
    import sys

    from tests.airflow_env import use_airflow
    use_airflow()
    import airflow
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk import Asset, dag, task  # noqa: F401

    assert airflow.__version__.startswith("3.")
    assert SparkSubmitOperator.__name__ == "SparkSubmitOperator"
    assert md.version("apache-airflow-providers-apache-spark")
    # The provider runs `spark-submit` from PATH: in this environment it is pyspark's.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    binary = shutil.which("spark-submit", path=path)
    assert binary and Path(binary).parent == Path(sys.executable).parent
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": path})
    assert f"version {pyspark.__version__}" in out.stdout + out.stderr
