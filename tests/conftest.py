"""Fixtures and hooks only: one SparkSession for the whole run (local[2], 2 shuffle
partitions, UI off, session time zone UTC), small config folders, an S3 server on
loopback, the ``heavy`` marker.
Shared helpers that are not fixtures are in tests/helpers.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from jobs.config import load_config
from jobs.spark import build_spark
from benchmarks import s3server
from tests.helpers import TEST_SPARK_CONF, write_conf


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "heavy: runs for minutes (crash and rerun, two runs at once, the API under "
        "load, Airflow dag.test() with spark-submit, the standalone cluster, every fuzz example, "
        "the later nights of the end-to-end world, the command-line privacy run): `make test-heavy`, "
        "not `make test`; CI runs both")


@pytest.fixture(scope="session")
def spark():
    session = build_spark("local[2]", "footfall-tests", TEST_SPARK_CONF)
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" from __del__ at interpreter exit,
    # after pytest has closed the stream its handler writes to: keep that line unsaid.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture
def conf_dir(tmp_path) -> Path:
    return write_conf(tmp_path / "conf")


@pytest.fixture
def cfg(conf_dir):
    return load_config(conf_dir)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 + DynamoDB server on a free 127.0.0.1 port, with its test credentials in
    this process's environment (the subprocesses a test starts inherit them)."""
    import os

    server = s3server.start()
    saved = {k: os.environ.get(k) for k in s3server.CREDENTIALS}
    os.environ.update(s3server.CREDENTIALS)
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    s3server.stop(server)
