"""Airflow end to end: ``dag.test()`` of footfall_nightly for one date and of
footfall_backfill over three dates, each running the real spark-submit on local[2],
on a tiny generated world; their gold equals the pipeline's own backfill. Those two are
heavy (`make test-heavy`); the backfill DAG's parameter check, which stops before Spark,
runs in `make test`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from jobs import run
from jobs.config import load_config
from tests.airflow_env import migrate_db
from tests.helpers import ROOT, TINY_DAYS as DAYS, TINY_START as START, gold_by_key as gold, write_tiny_world

pytestmark = pytest.mark.timeout(900)
#: The two tests that run spark-submit under ``dag.test()`` (minutes each): `make test-heavy`.
spark_submit = pytest.mark.heavy


@pytest.fixture(scope="module")
def world(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("airflow-world")
    conf = write_tiny_world(root)
    migrate_db()
    monkeypatch_module.setenv("FOOTFALL_CONF", str(conf))
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def load_dag(dag_id: str):
    """Parse dags/ as Airflow does (FOOTFALL_CONF is read at parse time)."""
    from airflow.dag_processing.dagbag import BundleDagBag
    bag = BundleDagBag(dag_folder=ROOT / "dags", bundle_path=ROOT / "dags", bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def reference_backfill(spark, world: Path, start: dt.date, end: dt.date) -> dict:
    """The pipeline's own backfill of start … end (in this process), from scratch: one
    reference lakehouse serves both tests (a backfill over a lakehouse equals one from
    scratch, SPEC §9), which spares the second test the ingestion."""
    lake = world / "lake-reference"
    cfg = load_config(world / "conf").with_storage(str(world / "landing"), str(lake))
    run.backfill(spark, cfg, start, end)
    return gold(spark, lake)


def states(dagrun) -> dict:
    return {ti.task_id: str(ti.state) for ti in dagrun.get_task_instances()}


@spark_submit
def test_nightly_dag_run_gives_the_gold_of_a_backfill_of_its_date(spark, world):
    from airflow.sdk import DagRunState

    dag = load_dag("footfall_nightly")
    # D = START: the logical date is D at 03:00 Moscow (= D 00:00 UTC).
    dr = dag.test(logical_date=dt.datetime(START.year, START.month, START.day, tzinfo=dt.timezone.utc))
    assert dr.state == DagRunState.SUCCESS, states(dr)
    assert states(dr) == {"nightly": "success", "check_quality": "success", "publish_gold": "success"}
    summary = json.loads((world / "runs" / "nightly" / f"{START}.json").read_text())
    assert summary["command"] == f"nightly --date {START}" and summary["records_read"] > 0

    got = gold(spark, world / "lake-airflow")
    assert any(k[1] == "daily" and v["bucket_date"] == START for k, v in got.items())
    expected = reference_backfill(spark, world, START, START)
    assert got == expected


@spark_submit
def test_backfill_dag_run_over_three_dates_gives_the_gold_of_the_pipeline(spark, world):
    from airflow.sdk import DagRunState

    end = START + dt.timedelta(days=DAYS - 1)
    dag = load_dag("footfall_backfill")
    lake = world / "lake-airflow"
    dr = dag.test(run_conf={"from": START.isoformat(), "to": end.isoformat(), "malls": ""},
                  logical_date=None)
    assert dr.state == DagRunState.SUCCESS, states(dr)
    got = gold(spark, lake)
    assert {v["bucket_date"] for k, v in got.items() if k[1] == "daily"} == {
        START + dt.timedelta(days=i) for i in range(DAYS)}
    expected = reference_backfill(spark, world, START, end)
    assert got == expected


def test_backfill_dag_rejects_bad_params_before_spark(world):
    from airflow.sdk import DagRunState

    dag = load_dag("footfall_backfill")
    dr = dag.test(run_conf={"from": "2016-03-09", "to": "2016-03-07", "malls": "99"}, logical_date=None)
    assert dr.state == DagRunState.FAILED
    assert states(dr) == {"validate_params": "failed", "backfill": "upstream_failed"}
