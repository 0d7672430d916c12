"""
### footfall_nightly — the nightly run

One run per local date **D**, at `schedule.time` on D+1 in `schedule.timezone`
(`conf/airflow.yaml`; default 03:00 Europe/Moscow). The run's logical date is D at that
time (the data interval D → D+1), so `{{ logical_date }}` in that zone gives D.

Tasks, in order:

1. **`nightly`** — `spark-submit <jobs package>/entrypoint.py nightly --date D --conf … --summary-json …`
   through the Spark connection `spark_default` (`local[*]` by default; point it at
   `spark://…`, YARN or Kubernetes to run on a cluster). Ingests every new landing file
   and recomputes what it touches up to D (docs/operations.md).
2. **`check_quality`** — fails the run, saying why, when the share of quarantined records
   of this run or the drop of a mall's sessions on D against D-7 passes the thresholds in
   `conf/airflow.yaml` (`quality:`). Not retried.
3. **`publish_gold`** — emits the gold table's asset event (extra `{"date": "D"}`), which
   starts `footfall_exports`. After a quality failure that a person has judged fine, clear
   `publish_gold` to publish.

Backfills: `airflow backfill create --dag-id footfall_nightly --from-date D1 --to-date D2
--max-active-runs 1` (one run per date, as the nightly), or the `footfall_backfill` DAG
(one Spark application over the range).
"""

from __future__ import annotations

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import CronDataIntervalTimetable, dag, task

from footfall_assets import GOLD_GROUP_DATETIME
from jobs.orchestration import load_airflow_settings, local_date, run_date_template, submit_kwargs
from jobs.shipping import job_args

SETTINGS = load_airflow_settings()
RUN_DATE = run_date_template(SETTINGS)
SUMMARY = SETTINGS.summary_path("nightly", RUN_DATE)


@dag(
    dag_id="footfall_nightly",
    schedule=CronDataIntervalTimetable(SETTINGS.cron, timezone=SETTINGS.timezone),
    start_date=pendulum.datetime(SETTINGS.start_date.year, SETTINGS.start_date.month,
                                 SETTINGS.start_date.day, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=SETTINGS.default_args(),
    tags=["footfall", "spark", "nightly"],
    doc_md=__doc__,
)
def footfall_nightly():
    nightly = SparkSubmitOperator(
        task_id="nightly",
        application_args=job_args(SETTINGS, ["nightly", "--date", RUN_DATE, "--conf", SETTINGS.conf_dir,
                                             "--summary-json", SUMMARY]),
        **submit_kwargs(SETTINGS, "footfall-nightly"),
    )

    @task(retries=0)
    def check_quality(logical_date=None) -> str:
        """Fail the run when landing files were skipped as of unknown format, or the
        quarantined share or the session drop passes the limits."""
        import datetime as dt
        import json

        from airflow.sdk.exceptions import AirflowFailException

        from jobs.config import load_config
        from jobs.quality import check, mall_sessions, quarantined_share

        day = local_date(logical_date, SETTINGS.timezone)
        path = SETTINGS.summary_path("nightly", day.isoformat())
        with open(path) as fh:
            summary = json.load(fh)
        storage = load_config(SETTINGS.conf_dir).storage
        week_ago = day - dt.timedelta(days=7)
        counts = mall_sessions(storage.lakehouse, [day, week_ago], storage.delta_rs_options)
        rejected, read, share = quarantined_share(summary)
        print(f"run {summary.get('run_id')}: {rejected} of {read} records quarantined ({share:.2%}); "
              f"mall sessions on {day}: {counts[day]}, on {week_ago}: {counts[week_ago]}")
        problems = check(summary, counts[day], counts[week_ago], day, SETTINGS.quality)
        if problems:
            raise AirflowFailException("data quality check failed for " + day.isoformat() + ":\n- "
                                       + "\n- ".join(problems))
        return day.isoformat()

    @task(outlets=[GOLD_GROUP_DATETIME])
    def publish_gold(day: str, *, outlet_events=None) -> str:
        """Emit the gold table's asset event for D (footfall_exports runs on it)."""
        outlet_events[GOLD_GROUP_DATETIME].extra = {"date": day}
        return day

    checked = check_quality()
    nightly >> checked
    publish_gold(checked)


nightly_dag = footfall_nightly()
