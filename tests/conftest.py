"""Shared fixtures: one SparkSession for the whole run (local[2], 2 shuffle
partitions, UI off, session time zone UTC), and small config folders."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from jobs.config import load_config
from jobs.spark import build_spark

TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.driver.memory": "2g",
}

#: storage.yaml for a test that runs the command line (``python -m jobs …``) in a
#: subprocess: small Spark, as the session fixture's.
CLI_STORAGE_YAML = """\
spark:
  master: local[2]
  conf:
    spark.driver.memory: 1g
    spark.sql.shuffle.partitions: 2
    spark.default.parallelism: 2
    spark.ui.enabled: false
    spark.databricks.delta.snapshotPartitions: 1
"""

#: A small object tree: mall 1 in Moscow (no DST), mall 2 in Berlin (DST).
OBJECTS_YAML = """\
malls:
  - id: 1
    name: Mega
    timezone: Europe/Moscow
    floors:
      - id: 11
        name: Ground floor
        zones:
          - id: 111
            name: Food court
            sensors:
              - id: s-1
              - id: s-2
                visitor_rssi_threshold: -65
          - id: 112
            name: Shops
            sensors:
              - id: s-3
      - id: 12
        name: First floor
        zones:
          - id: 121
            name: Cinema
            sensors:
              - id: s-4
  - id: 2
    name: Alexa
    timezone: Europe/Berlin
    floors:
      - id: 21
        name: Ground floor
        zones:
          - id: 211
            name: Entrance
            sensors:
              - id: b-1
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "heavy: runs the command line in subprocesses for minutes (crash, two runs at "
        "once, the API under load): `make test-heavy`, not `make test`; CI runs both")


@pytest.fixture(scope="session")
def spark():
    session = build_spark("local[2]", "footfall-tests", TEST_SPARK_CONF)
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" from __del__ at interpreter exit,
    # after pytest has closed the stream its handler writes to: keep that line unsaid.
    logging.getLogger("py4j").setLevel(logging.WARNING)


def generated_world(root: Path, *, start, days: int, devices: int, seed: int,
                    storage: str | None = None, **generate_options) -> Path:
    """A small generated world under ``root``: ``conf/`` (the generator's object tree, an
    empty pipeline.yaml, and ``storage`` as storage.yaml when given) and ``landing/``.
    :return: ``root``."""
    from jobs.generate import generate
    from jobs.generate.world import make_objects, write_objects_yaml

    conf = root / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    write_objects_yaml(conf / "objects.yaml", make_objects())
    (conf / "pipeline.yaml").write_text("")
    if storage is not None:
        (conf / "storage.yaml").write_text(storage)
    generate(conf, root / "landing", start=start, days=days, devices=devices, seed=seed,
             **generate_options)
    return root


def write_conf(folder: Path, objects: str = OBJECTS_YAML, pipeline: str = "") -> Path:
    """A config folder with the given objects.yaml and pipeline.yaml texts."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objects.yaml").write_text(textwrap.dedent(objects))
    (folder / "pipeline.yaml").write_text(textwrap.dedent(pipeline))
    return folder


@pytest.fixture
def conf_dir(tmp_path) -> Path:
    return write_conf(tmp_path / "conf")


@pytest.fixture
def cfg(conf_dir):
    return load_config(conf_dir)
