"""
### footfall_maintenance — weekly Delta maintenance

Once a week (`maintenance.schedule` in `conf/airflow.yaml`; default Sundays 05:00 in
`schedule.timezone`, after that night's nightly run): `spark-submit <jobs package>/entrypoint.py
maintain --retain-hours H --conf …`, which compacts every table (gold: one sorted file
per partition; silver sessions: Z-order by object; the rest: OPTIMIZE) and then VACUUMs
files that no table version of the last `retain_hours` (default and minimum 168 h)
references. Reads give the same rows before and after.

It runs in the pool `footfall_lakehouse`, as the nightly and backfill runs do, so it
never overlaps one of them; the job also holds the lakehouse's run lock.
"""

from __future__ import annotations

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import CronTriggerTimetable, dag

from jobs.orchestration import load_airflow_settings, submit_kwargs
from jobs.shipping import job_args

SETTINGS = load_airflow_settings()


@dag(
    dag_id="footfall_maintenance",
    schedule=CronTriggerTimetable(SETTINGS.maintenance_cron, timezone=SETTINGS.timezone),
    start_date=pendulum.datetime(SETTINGS.start_date.year, SETTINGS.start_date.month,
                                 SETTINGS.start_date.day, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=SETTINGS.default_args(),
    tags=["footfall", "spark", "maintenance"],
    doc_md=__doc__,
)
def footfall_maintenance():
    SparkSubmitOperator(
        task_id="maintain",
        application_args=job_args(SETTINGS, ["maintain", "--retain-hours",
                                             f"{SETTINGS.maintenance_retain_hours:g}",
                                             "--conf", SETTINGS.conf_dir]),
        **submit_kwargs(SETTINGS, "footfall-maintenance"),
    )


maintenance_dag = footfall_maintenance()
