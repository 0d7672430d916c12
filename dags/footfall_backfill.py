"""
### footfall_backfill — recompute a date range in one Spark application

Trigger it with params (UI: *Trigger* → form; CLI:
`airflow dags trigger footfall_backfill -c '{"from": "2016-01-04", "to": "2016-02-29", "malls": "215"}'`):

| param | meaning |
|---|---|
| `from`, `to` | the local date range, `YYYY-MM-DD`, inclusive |
| `malls` | comma-separated mall ids; empty: every mall of `conf/objects.yaml` |

Tasks, in order:

1. **`validate_params`** — checks the dates (`from` ≤ `to`) and the mall ids against the
   config; a bad value fails the run here, before Spark starts.
2. **`backfill`** — `spark-submit <jobs package>/entrypoint.py backfill --from … --to … [--malls …]`
   through the Spark connection `spark_default`, as `python -m jobs backfill` does from the
   command line: ingest new files, bring back the range's `too_late` records, recompute the
   range and what depends on it. Gives exactly the gold a run from scratch gives.

For one run per date, as the nightly would, use
`airflow backfill create --dag-id footfall_nightly …` instead.
"""

from __future__ import annotations

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Param, dag, task

from jobs.orchestration import backfill_args, load_airflow_settings, submit_kwargs
from jobs.shipping import job_args

SETTINGS = load_airflow_settings()


@dag(
    dag_id="footfall_backfill",
    schedule=None,
    start_date=pendulum.datetime(SETTINGS.start_date.year, SETTINGS.start_date.month,
                                 SETTINGS.start_date.day, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=SETTINGS.default_args(),
    params={
        "from": Param(type="string", format="date", title="From",
                      description="first local date of the range (YYYY-MM-DD)"),
        "to": Param(type="string", format="date", title="To",
                    description="last local date of the range (YYYY-MM-DD), inclusive"),
        "malls": Param("", type="string", title="Malls", pattern=r"^\s*(\d+\s*(,\s*\d+\s*)*)?$",
                       description="comma-separated mall ids, e.g. 215,1290; empty: all malls"),
    },
    tags=["footfall", "spark", "backfill"],
    doc_md=__doc__,
)
def footfall_backfill():
    @task(retries=0)
    def validate_params(params=None) -> list[str]:
        """The job's arguments, once the params are checked against the config."""
        from airflow.sdk.exceptions import AirflowFailException

        try:
            return job_args(SETTINGS, backfill_args(params or {}, SETTINGS.conf_dir))
        except ValueError as exc:
            raise AirflowFailException(f"invalid params: {exc}") from None

    SparkSubmitOperator(
        task_id="backfill",
        application_args=validate_params(),
        **submit_kwargs(SETTINGS, "footfall-backfill"),
    )


backfill_dag = footfall_backfill()
