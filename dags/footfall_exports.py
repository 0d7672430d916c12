"""footfall_exports: after each nightly gold update, write the scheduled exports.

Thin: one task runs ``footfall reports export --conf <conf> --date D``, which writes what
``conf/exports.yaml`` lists (docs/api.md, "Scheduled exports"). It is scheduled on
the gold table's asset, so it runs once the nightly DAG has updated gold.

D is the nightly run's date. An asset-triggered run has no logical date in Airflow 3
(``{{ ds }}`` is undefined there), so D comes from the triggering event: its extra
``date`` (set by the nightly DAG), else the logical date of the run that emitted it, else
this run's own logical date (a manual run with a logical date).

The config folder is the jobs' (``$FOOTFALL_CONF``, else the project's ``conf/``); the
command is the installed ``footfall`` beside the Python that runs Airflow.
"""

from __future__ import annotations

import datetime as dt
import shlex
import sys
from pathlib import Path

from airflow.sdk import dag, task

from footfall_assets import GOLD_GROUP_DATETIME
from jobs.orchestration import conf_dir

FOOTFALL = str(Path(sys.executable).parent / "footfall")


def run_date(triggering_asset_events=None, logical_date=None) -> str:
    """The exports' date ``YYYY-MM-DD``, from the latest gold event (see the module doc)."""
    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    if events:
        latest = max(events, key=lambda e: e.timestamp)
        if (latest.extra or {}).get("date"):
            # Parsed, so that only a date ever reaches the shell.
            return dt.date.fromisoformat(str(latest.extra["date"])).isoformat()
        source = latest.source_dag_run
        if source is not None and source.logical_date is not None:
            return source.logical_date.strftime("%Y-%m-%d")
    if logical_date is not None:
        return logical_date.strftime("%Y-%m-%d")
    raise ValueError("no date for the exports: the gold event has no 'date' extra and no "
                     "logical date; trigger with a logical date or run `footfall reports export --date D`")


@dag(
    dag_id="footfall_exports",
    schedule=[GOLD_GROUP_DATETIME],
    start_date=dt.datetime(2016, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "footfall", "retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["footfall", "reports"],
    doc_md=__doc__,
)
def footfall_exports():
    @task.bash
    def export(triggering_asset_events=None, logical_date=None) -> str:
        date = run_date(triggering_asset_events, logical_date)
        return f"{shlex.quote(FOOTFALL)} reports export --conf {shlex.quote(conf_dir())} --date {date}"

    export()


exports_dag = footfall_exports()
