"""What several test modules share that is not a fixture: the project folder, the small
config texts, a config folder writer, small generated worlds, reading gold by its key,
and the case-table assertion. Fixtures and hooks live in conftest.py; no test module
imports another test module.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

#: The checkout: conf/, dags/, bin/, README.md, Makefile.
ROOT = Path(__file__).resolve().parent.parent

#: The session fixture's Spark: local[2], 2 shuffle partitions, UI off, UTC.
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.driver.memory": "2g",
    # Delta's VACUUM lists files with this many tasks (Spark's default: 10000, some 30 s a
    # table on local[2] whatever its size): test_maintenance's 8 tables, 5 minutes → 30 s.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
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
    spark.sql.sources.parallelPartitionDiscovery.parallelism: 2
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

#: The key of a gold row (SPEC §8: one row per object, interval, bucket, b, e, user type).
GOLD_KEY = ("object_id", "interval", "bucket_start", "bounce_threshold", "engagement_threshold",
            "user_type")


def write_conf(folder: Path, objects: str = OBJECTS_YAML, pipeline: str = "") -> Path:
    """A config folder with the given objects.yaml and pipeline.yaml texts."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objects.yaml").write_text(textwrap.dedent(objects))
    (folder / "pipeline.yaml").write_text(textwrap.dedent(pipeline))
    return folder


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


# -- the tiny world of the Airflow and standalone-cluster tests ---------------------------

#: A Monday; three days of a tiny generated world.
TINY_START = dt.date(2016, 3, 7)
TINY_DAYS = 3


def write_tiny_world(root: Path, lakehouse: str = "lake-airflow") -> Path:
    """A tiny world under ``root``: conf/ (objects, storage, airflow.yaml) and landing/.
    :return: the conf folder."""
    conf = generated_world(root, start=TINY_START, days=TINY_DAYS, devices=10, seed=7,
                           storage=textwrap.dedent(f"""\
        landing: landing
        lakehouse: {lakehouse}
        spark:
          # Unreachable on purpose: under spark-submit the master is the Airflow connection's
          # (local[2]); a job that used this one would fail.
          master: spark://127.0.0.1:1
          conf:
            spark.sql.shuffle.partitions: 2
            spark.default.parallelism: 2
            spark.databricks.delta.snapshotPartitions: 1
            spark.ui.enabled: false
        """)) / "conf"
    (conf / "airflow.yaml").write_text(textwrap.dedent("""\
        schedule: {time: "03:00", timezone: Europe/Moscow}
        quality: {max_quarantined_share: 0.5, max_session_drop: 0.9, min_baseline_sessions: 1}
        retries: 0
        pool: null
        spark: {driver_memory: 1g, executor_memory: 1g}
        runs: runs
        """))
    return conf


# -- reading and comparing ------------------------------------------------------------------

def gold_by_key(spark, lake: Path) -> dict[tuple, dict]:
    """The gold table under ``lake`` as {GOLD_KEY values: row dict}, ``bucket_start`` as
    an aware UTC datetime (as tests/reference.py gives it)."""
    from jobs.tables import GROUP_DATETIME, Lakehouse

    rows = {}
    for r in Lakehouse(spark, str(lake)).read(GROUP_DATETIME).collect():
        d = r.asDict()
        d["bucket_start"] = d["bucket_start"].replace(tzinfo=dt.timezone.utc)
        rows[tuple(d[k] for k in GOLD_KEY)] = d
    return rows


def assert_cases(df, got: str = "got", expected: str = "expected", case: str = "case") -> None:
    """A case table: each row of ``df`` is one case of a rule, with the code's answer in
    column ``got`` and the hand-written one in ``expected``. chispa compares the two
    columns row by row; each side carries the row's ``case`` label, so a failure names
    the case."""
    from chispa import assert_column_equality
    from pyspark.sql import functions as F

    table = df.select(F.struct(F.col(case).alias("case"), F.col(got).alias("value")).alias(got),
                      F.struct(F.col(case).alias("case"), F.col(expected).alias("value")).alias(expected))
    assert_column_equality(table, got, expected)
