"""Delta commits on S3 by put-if-absent (jvm/footfall/delta/ConditionalPutLogStore.java),
against moto's S3 server on loopback: a version is written once, a second writer of it
gets the error Delta retries on, and writers in one driver or in two never lose a commit."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from py4j.protocol import Py4JJavaError

from jobs.spark import BASE_CONF
from tests.helpers import ROOT

BUCKET = "commits"


@pytest.fixture(scope="module")
def s3a(spark, s3_server):
    """The session's Hadoop settings for the bucket ``commits`` on moto (per bucket, so
    nothing else the session reads changes); returns its ``s3a://`` root."""
    hconf = spark._jsc.hadoopConfiguration()
    for key, value in {"endpoint": s3_server.endpoint, "path.style.access": "true",
                       "connection.ssl.enabled": "false", "access.key": "testing",
                       "secret.key": "testing"}.items():
        hconf.set(f"fs.s3a.bucket.{BUCKET}.{key}", value)
    return s3_server.bucket(BUCKET)


def _write(spark, path: str, lines: list[str], overwrite: bool) -> None:
    jvm = spark._jvm
    hconf = spark._jsc.hadoopConfiguration()
    store = jvm.footfall.delta.ConditionalPutLogStore(hconf)
    actions = jvm.java.util.ArrayList()
    for line in lines:
        actions.add(line)
    store.write(jvm.org.apache.hadoop.fs.Path(path), actions.iterator(), overwrite, hconf)


def _read(s3_server, path: str) -> bytes:
    key = path.split("/", 3)[3]
    return s3_server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_s3a_tables_commit_through_the_conditional_store():
    assert BASE_CONF["spark.delta.logStore.s3a.impl"] == "footfall.delta.ConditionalPutLogStore"


def test_a_version_is_written_once_and_a_second_writer_gets_file_already_exists(spark, s3a, s3_server):
    path = f"{s3a}/once/_delta_log/00000000000000000000.json"
    _write(spark, path, ['{"commitInfo":{"by":"a"}}'], overwrite=False)
    with pytest.raises(Py4JJavaError) as lost:
        _write(spark, path, ['{"commitInfo":{"by":"b"}}'], overwrite=False)
    # java.nio's exception: the one Delta's commit catches to re-read the log and retry.
    assert lost.value.java_exception.getClass().getName() == "java.nio.file.FileAlreadyExistsException"
    assert _read(s3_server, path) == b'{"commitInfo":{"by":"a"}}\n'


def test_the_same_bytes_again_are_the_writers_own_commit_not_a_conflict(spark, s3a, s3_server):
    # What an S3A retry of a put whose answer was lost looks like: the object is there,
    # with exactly this writer's bytes. A conflict here would make Delta commit twice.
    path = f"{s3a}/retry/_delta_log/00000000000000000000.json"
    _write(spark, path, ['{"add":1}', '{"commitInfo":{}}'], overwrite=False)
    _write(spark, path, ['{"add":1}', '{"commitInfo":{}}'], overwrite=False)
    assert _read(s3_server, path) == b'{"add":1}\n{"commitInfo":{}}\n'


def test_overwrite_replaces_the_file(spark, s3a, s3_server):
    path = f"{s3a}/over/_delta_log/_last_checkpoint"
    _write(spark, path, ['{"version":1}'], overwrite=True)
    _write(spark, path, ['{"version":2}'], overwrite=True)
    assert _read(s3_server, path) == b'{"version":2}\n'


def test_writers_in_one_driver_lose_no_commit(spark, s3a):
    # The store holds no lock in the JVM: S3 alone settles which thread made each version.
    table = f"{s3a}/threads"
    spark.createDataFrame([("init", 0)], "who string, i int").write.format("delta").save(table)
    errors: list[BaseException] = []

    def append(who: str) -> None:
        try:
            for i in range(3):
                spark.createDataFrame([(who, i)], "who string, i int") \
                    .write.format("delta").mode("append").save(table)
        except BaseException as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=append, args=(w,)) for w in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = sorted(tuple(r) for r in spark.read.format("delta").load(table).collect())
    assert rows == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2), ("init", 0)]
    versions = [r.version for r in spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()]
    assert sorted(versions) == list(range(7))


WRITER = """
import sys
from jobs.spark import build_spark
endpoint, table, who = sys.argv[1:4]
spark = build_spark("local[1]", "writer-" + who, {
    "spark.hadoop.fs.s3a.endpoint": endpoint, "spark.hadoop.fs.s3a.path.style.access": "true",
    "spark.hadoop.fs.s3a.connection.ssl.enabled": "false"})
for i in range(6):
    spark.createDataFrame([(who, i)], "who string, i int").write.format("delta").mode("append").save(table)
"""


@pytest.mark.heavy
def test_two_drivers_appending_to_one_table_lose_no_commit(spark, s3a, s3_server):
    """Two Spark drivers (two processes, as two clusters would be) append to one table at
    once; every append is in it, one per version."""
    table = f"{s3a}/drivers"
    spark.createDataFrame([("init", 0)], "who string, i int").write.format("delta").save(table)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, s3_server.endpoint, table, who],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for who in "ab"]
    outputs = [w.communicate(timeout=600)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    rows = sorted(tuple(r) for r in spark.read.format("delta").load(table).collect())
    assert rows == sorted([("init", 0)] + [(w, i) for w in "ab" for i in range(6)])
    versions = [r.version for r in spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()]
    assert sorted(versions) == list(range(13))
