"""The DAGs as Airflow parses them: every file imports, every DAG has tags, an owner,
retries and a UTC start date, and no cycle; footfall_nightly's tasks and their order
are the README's."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.airflow_env import use_airflow
from tests.helpers import ROOT

README_NIGHTLY_ORDER = ["nightly", "check_quality", "publish_gold"]


@pytest.fixture(scope="module")
def bag():
    use_airflow()
    from airflow.dag_processing.dagbag import BundleDagBag
    return BundleDagBag(dag_folder=ROOT / "dags", bundle_path=ROOT / "dags", bundle_name="dags-folder")


def test_every_dag_file_imports(bag):
    assert bag.import_errors == {}
    assert {"footfall_nightly", "footfall_backfill", "footfall_exports", "footfall_maintenance"} <= set(bag.dags)


def test_every_dag_has_tags_an_owner_retries_a_utc_start_and_no_cycle(bag):
    for dag_id, dag in bag.dags.items():
        assert dag.tags, dag_id
        assert dag.owner, dag_id
        assert dag.start_date is not None and dag.start_date.utcoffset() == dt.timedelta(0), dag_id
        assert str(dag.start_date.tzinfo) in ("UTC", "utc", "+00:00", "UTC+00:00"), (dag_id, dag.start_date.tzinfo)
        for t in dag.tasks:
            assert t.retries is not None and t.retries >= 0, (dag_id, t.task_id)
        assert dag.doc_md, dag_id
        dag.check_cycle()  # raises on a cycle
        assert dag.topological_sort()


def test_the_spark_tasks_retry_with_back_off_and_time_out(bag):
    for dag_id, task_id in (("footfall_nightly", "nightly"), ("footfall_backfill", "backfill"),
                            ("footfall_maintenance", "maintain")):
        t = bag.dags[dag_id].get_task(task_id)
        assert type(t).__name__ == "SparkSubmitOperator"
        assert t.retries >= 1 and t.retry_exponential_backoff and t.execution_timeout
        assert t._conn_id == "spark_default"
        assert t.application == str(ROOT / "jobs" / "entrypoint.py")
        assert "--master" not in t.application_args if isinstance(t.application_args, list) else True
        assert t.max_active_tis_per_dag == 1


def test_nightly_tasks_and_order_are_the_readmes(bag):
    from footfall_assets import GOLD_GROUP_DATETIME

    dag = bag.dags["footfall_nightly"]
    assert [t.task_id for t in dag.topological_sort()] == README_NIGHTLY_ORDER
    for upstream, downstream in zip(README_NIGHTLY_ORDER, README_NIGHTLY_ORDER[1:]):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    readme = (ROOT / "README.md").read_text()
    assert "`nightly` → `check_quality` → `publish_gold`" in readme
    assert dag.max_active_runs == 1
    assert dag.get_task("publish_gold").outlets == [GOLD_GROUP_DATETIME]
    assert dag.get_task("check_quality").retries == 0
    assert repr(dag.timetable) == "CronDataIntervalTimetable(expression='0 3 * * *', timezone='Europe/Moscow')"


def test_nightly_date_comes_from_the_logical_date_in_the_schedule_zone(bag):
    dag = bag.dags["footfall_nightly"]
    args = dag.get_task("nightly").application_args
    assert args[:2] == ["nightly", "--date"]
    assert args[2] == "{{ logical_date.in_timezone('Europe/Moscow').strftime('%Y-%m-%d') }}"
    from jobs.orchestration import local_date
    # 03:00 Moscow on D is D's logical date.
    assert local_date(dt.datetime(2016, 2, 29, 0, 0, tzinfo=dt.timezone.utc), "Europe/Moscow") == dt.date(2016, 2, 29)


def test_backfill_params(bag):
    dag = bag.dags["footfall_backfill"]
    assert set(dag.params) == {"from", "to", "malls"}
    assert [t.task_id for t in dag.topological_sort()] == ["validate_params", "backfill"]


def test_spark_runs_never_overlap_by_configuration(bag):
    """Issue 5 (concurrency): every task that writes the lakehouse, in every DAG, takes
    the one slot of the pool footfall_lakehouse, and no DAG runs twice at once."""
    writers = [(d.dag_id, t) for d in bag.dags.values() for t in d.tasks
               if type(t).__name__ == "SparkSubmitOperator"]
    assert {dag_id for dag_id, _ in writers} == {"footfall_nightly", "footfall_backfill", "footfall_maintenance"}
    for dag_id, t in writers:
        assert t.pool == "footfall_lakehouse", (dag_id, t.task_id)
        assert bag.dags[dag_id].max_active_runs == 1, dag_id
    makefile = (ROOT / "Makefile").read_text()
    assert "pools set footfall_lakehouse 1 " in makefile


def test_maintenance_runs_weekly_with_a_safe_retention(bag):
    dag = bag.dags["footfall_maintenance"]
    assert repr(dag.timetable).startswith("CronTriggerTimetable(expression='0 5 * * 0', timezone='Europe/Moscow'")
    args = dag.get_task("maintain").application_args
    assert args[:3] == ["maintain", "--retain-hours", "168"]
