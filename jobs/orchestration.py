"""What the Airflow DAGs need from the project, kept out of ``dags/`` so that the DAGs
stay thin: ``conf/airflow.yaml`` (schedule, quality thresholds, task policy, spark-submit
settings), the spark-submit arguments of a run, and the backfill DAG's parameter check.

Cheap to import (no pyspark, no Airflow): the DAG files import it at parse time.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field

from jobs.configfile import (Bool, ConfigModel, LaxInt, LaxNumber, Location,
                             NullAsEmptyMapping, OptionalText, SparkConf, TimeZone, at_least,
                             between, load_model, resolve_path)
from jobs.paths import PROJECT_ROOT, driver_java_options, jars
from jobs.shipping import DRIVER_JAVA_OPTIONS, PYTHON_RUNNER, code_files

#: The config folder the DAGs run the jobs with (default: the project's conf/).
CONF_ENV = "FOOTFALL_CONF"

Share = Annotated[LaxNumber, between(0, 1)]


def _clock(v: Any) -> Any:
    if isinstance(v, dt.time):
        return v
    # YAML 1.1 reads an unquoted 3:00 as the number 180 (base 60): quotes keep the text.
    if not isinstance(v, str) or not re.fullmatch(r"\d{1,2}:\d{2}", v):
        raise ValueError(f"expected HH:MM (quoted), got {v!r}")
    try:
        return dt.time(*map(int, v.split(":")))
    except ValueError:
        raise ValueError(f"{v!r} is not a time of day") from None


def _iso_date(v: Any) -> Any:
    if isinstance(v, dt.date):  # YAML reads 2016-01-01 as a date already
        return v
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:
        raise ValueError(f"expected YYYY-MM-DD, got {v!r}") from None


def _cron(v: str) -> str:
    if len(v.split()) != 5:
        raise ValueError(f"expected a cron expression (5 fields), got {v!r}")
    return v


def _optional(v: Any) -> Any:
    return v or None  # `pool: ""` as `pool: null`: none


class Schedule(ConfigModel):
    """airflow.yaml ``schedule``: footfall_nightly runs daily at ``time`` in ``timezone``."""

    time: Annotated[dt.time, BeforeValidator(_clock)] = dt.time(3, 0)
    timezone: TimeZone = "Europe/Moscow"


class Quality(ConfigModel):
    """airflow.yaml ``quality``: when the data-quality task fails a nightly run."""

    max_quarantined_share: Share = 0.05
    max_session_drop: Share = 0.5
    min_baseline_sessions: Annotated[LaxInt, at_least(0)] = 100


class SparkSubmit(ConfigModel):
    """airflow.yaml ``spark``: the spark-submit settings of the Spark tasks."""

    conn_id: str = "spark_default"
    driver_memory: Annotated[OptionalText, BeforeValidator(_optional)] = "4g"
    executor_memory: Annotated[OptionalText, BeforeValidator(_optional)] = "2g"
    conf: SparkConf = {}
    #: installed: the driver's Python has the footfall package (make setup, or the image);
    #: artifact: every run ships the package built by `make dist` (``--py-files``).
    code: Literal["installed", "artifact"] = "installed"
    artifact: Location = "dist"
    #: null: the connection's (its extra ``deploy-mode``), else client.
    deploy_mode: Literal["client", "cluster"] | None = None
    #: The Python of the driver and its workers; null: this interpreter (client mode) or
    #: the cluster's own (cluster mode).
    python: Annotated[OptionalText, BeforeValidator(_optional)] = None
    #: true: the connection's master is a Spark standalone one (spark://…). With
    #: deploy_mode cluster the driver then starts through Spark's PythonRunner.
    standalone_master: Bool = False


class Maintenance(ConfigModel):
    """airflow.yaml ``maintenance``: when footfall_maintenance runs, what VACUUM keeps."""

    schedule: Annotated[str, AfterValidator(_cron)] = "0 5 * * 0"
    # The job refuses less than 168 h itself; here only the type is checked.
    retain_hours: Annotated[LaxNumber, at_least(0)] = 168.0


class AirflowFile(ConfigModel):
    """conf/airflow.yaml; every key is optional (these are the defaults)."""

    schedule: Annotated[Schedule, NullAsEmptyMapping] = Field(default_factory=Schedule)
    start_date: Annotated[dt.date, BeforeValidator(_iso_date)] = dt.date(2016, 1, 1)
    quality: Annotated[Quality, NullAsEmptyMapping] = Field(default_factory=Quality)
    retries: Annotated[LaxInt, at_least(0)] = 2
    retry_delay_minutes: Annotated[LaxNumber, at_least(0)] = 5.0
    max_retry_delay_minutes: Annotated[LaxNumber, at_least(0)] = 60.0
    execution_timeout_minutes: Annotated[LaxNumber, at_least(1)] = 240.0
    pool: Annotated[OptionalText, BeforeValidator(_optional)] = "footfall_lakehouse"
    spark: Annotated[SparkSubmit, NullAsEmptyMapping] = Field(default_factory=SparkSubmit)
    runs: str = "data/runs"
    maintenance: Annotated[Maintenance, NullAsEmptyMapping] = Field(default_factory=Maintenance)


@dataclass(frozen=True)
class AirflowSettings:
    """conf/airflow.yaml as the DAGs use it: durations as timedeltas, paths resolved."""

    conf_dir: str
    schedule_time: dt.time
    timezone: str
    start_date: dt.date
    quality: Quality
    retries: int
    retry_delay: dt.timedelta
    max_retry_delay: dt.timedelta
    execution_timeout: dt.timedelta
    pool: str | None
    conn_id: str
    driver_memory: str | None
    executor_memory: str | None
    spark_conf: dict[str, str]
    code: str
    artifact_dir: str
    deploy_mode: str | None
    python: str | None
    standalone_master: bool
    runs_dir: str
    maintenance_cron: str
    maintenance_retain_hours: float

    @property
    def python_runner(self) -> bool:
        """Whether the driver starts through Spark's PythonRunner: cluster deploy mode on a
        standalone master, where spark-submit refuses a Python application."""
        return self.standalone_master and self.deploy_mode == "cluster"

    @property
    def cron(self) -> str:
        """The nightly schedule as a cron expression (in ``timezone``)."""
        return f"{self.schedule_time.minute} {self.schedule_time.hour} * * *"

    def default_args(self) -> dict[str, Any]:
        """Task defaults every footfall DAG shares: owner, retries with back-off, timeout."""
        return {
            "owner": "footfall",
            "retries": self.retries,
            "retry_delay": self.retry_delay,
            "retry_exponential_backoff": True,
            "max_retry_delay": self.max_retry_delay,
            "execution_timeout": self.execution_timeout,
        }

    def summary_path(self, kind: str, name: str) -> str:
        """Where a run of ``kind`` (nightly, backfill) writes its summary JSON."""
        return str(Path(self.runs_dir) / kind / f"{name}.json")


def conf_dir() -> str:
    """The config folder: ``$FOOTFALL_CONF`` or the project's ``conf/``."""
    return str(Path(os.environ.get(CONF_ENV) or PROJECT_ROOT / "conf").resolve())


def load_airflow_settings(folder: str | os.PathLike | None = None) -> AirflowSettings:
    """Read and validate ``<conf>/airflow.yaml`` (optional; defaults apply)."""
    d = Path(folder or conf_dir()).resolve()
    f = load_model(d / "airflow.yaml", AirflowFile)
    return AirflowSettings(
        conf_dir=str(d),
        schedule_time=f.schedule.time,
        timezone=f.schedule.timezone,
        start_date=f.start_date,
        quality=f.quality,
        retries=f.retries,
        retry_delay=dt.timedelta(minutes=f.retry_delay_minutes),
        max_retry_delay=dt.timedelta(minutes=f.max_retry_delay_minutes),
        execution_timeout=dt.timedelta(minutes=f.execution_timeout_minutes),
        pool=f.pool,
        conn_id=f.spark.conn_id,
        driver_memory=f.spark.driver_memory,
        executor_memory=f.spark.executor_memory,
        spark_conf=dict(f.spark.conf),
        code=f.spark.code,
        artifact_dir=resolve_path(f.spark.artifact, d.parent),
        deploy_mode=f.spark.deploy_mode,
        python=f.spark.python,
        standalone_master=f.spark.standalone_master,
        # Relative to the folder holding conf/, as storage.yaml's paths are.
        runs_dir=resolve_path(f.runs, d.parent),
        maintenance_cron=f.maintenance.schedule,
        maintenance_retain_hours=f.maintenance.retain_hours,
    )


def submit_kwargs(settings: AirflowSettings, name: str) -> dict[str, Any]:
    """SparkSubmitOperator arguments shared by every Footfall Spark task (no master:
    that is the connection's). Every such task runs in the lakehouse pool (one slot) and
    one at a time per DAG, so no two Spark runs ever write the lakehouse together.
    The tasks' ``application_args`` come from :func:`job_args`."""
    code = code_files(settings)
    cluster = settings.deploy_mode == "cluster"
    runner = settings.python_runner
    if not cluster:
        # In client mode spark-submit starts the driver JVM here: give it the jobs' quiet
        # logging, and the class archive of `make setup` if this machine has one.
        conf = {"spark.driver.extraJavaOptions": driver_java_options(code.log_config)}
    elif runner:
        # A standalone worker starts the driver JVM with none of spark-submit's options. It
        # reads dist/ where this machine does (the script and the zip too), so the log file.
        conf = {"spark.driver.extraJavaOptions":
                f"{DRIVER_JAVA_OPTIONS} -Dlog4j2.configurationFile=file:{code.log_config}"}
    else:
        conf = {}  # YARN or Kubernetes: that log file is not on the driver's machine.
    if cluster and settings.python:
        # The provider passes no environment to a remote driver: Spark's settings instead.
        conf.update({"spark.pyspark.python": settings.python,
                     "spark.pyspark.driver.python": settings.python})
    conf.update(settings.spark_conf)
    python = settings.python or sys.executable
    return dict(
        conn_id=settings.conn_id,
        # PythonRunner: spark-submit runs a JAR's main class, and job_args puts the script
        # and the zip first. --py-files ships the zip to the executors, and --files puts it
        # where pyspark adds it to their Python path (--py-files alone names it as a file://
        # URI that pyspark cannot copy: "Failed to add file … to Python path").
        application=code.driver_jar if runner else code.entry,
        **({"java_class": PYTHON_RUNNER, "files": code.py_files} if runner else {}),
        name=name,
        conf=conf,
        jars=",".join(jars()) or None,
        driver_memory=settings.driver_memory,
        executor_memory=settings.executor_memory,
        **({"py_files": code.py_files} if code.py_files else {}),
        **({"deploy_mode": settings.deploy_mode} if settings.deploy_mode else {}),
        # A local or client-mode driver runs this Python (or spark.python) and its workers too.
        **({} if cluster else {"env_vars": {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}}),
        max_active_tis_per_dag=1,
        **({"pool": settings.pool} if settings.pool else {}),
    )


def run_date_template(settings: AirflowSettings) -> str:
    """Jinja for the run's date D: the logical date's local date in the schedule's zone."""
    return ("{{ logical_date.in_timezone('%s').strftime('%%Y-%%m-%%d') }}" % settings.timezone)


def local_date(logical_date: dt.datetime | None, timezone: str) -> dt.date:
    """The run's date D from its logical date (see :func:`run_date_template`)."""
    if logical_date is None:
        raise ValueError("this run has no logical date: trigger footfall_nightly with a logical "
                         "date (the local date D to process), or use footfall_backfill")
    return logical_date.astimezone(ZoneInfo(timezone)).date()


_MALLS = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*$")


def backfill_args(params: dict[str, Any], folder: str, max_days: int | None = None) -> list[str]:
    """Validate the footfall_backfill DAG's params (``from``, ``to``, ``malls``) against
    the config and return the job's arguments; ValueError names what is wrong."""
    from jobs.config import load_config

    def day(key: str) -> dt.date:
        value = params.get(key)
        if value in (None, ""):
            raise ValueError(f"param {key!r} is required (a local date YYYY-MM-DD)")
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"param {key!r}: expected a date YYYY-MM-DD, got {value!r}") from None

    start, end = day("from"), day("to")
    if start > end:
        raise ValueError(f"param 'from' ({start}) is after 'to' ({end})")
    if max_days is not None and (end - start).days + 1 > max_days:
        raise ValueError(f"the range {start} … {end} has more than {max_days} days")
    cfg = load_config(folder)
    known = sorted(m.id for m in cfg.malls)
    malls_text = str(params.get("malls") or "").strip()
    args = ["backfill", "--from", start.isoformat(), "--to", end.isoformat(), "--conf", folder]
    if malls_text:
        if not _MALLS.match(malls_text):
            raise ValueError(f"param 'malls': expected mall ids like 215,1290, got {malls_text!r}")
        malls = sorted({int(x) for x in malls_text.split(",")})
        unknown = [m for m in malls if m not in known]
        if unknown:
            raise ValueError(f"param 'malls': unknown mall id(s) {', '.join(map(str, unknown))}; "
                             f"the config has {', '.join(map(str, known))}")
        args += ["--malls", ",".join(map(str, malls))]
    return args
