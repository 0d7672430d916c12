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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from jobs.config import ConfigError
from jobs.paths import ENTRYPOINT, JAR_DIR, LOG_CONFIG, PROJECT_ROOT
#: The config folder the DAGs run the jobs with (default: the project's conf/).
CONF_ENV = "FOOTFALL_CONF"


@dataclass(frozen=True)
class Quality:
    max_quarantined_share: float = 0.05
    max_session_drop: float = 0.5
    min_baseline_sessions: int = 100


@dataclass(frozen=True)
class AirflowSettings:
    conf_dir: str
    schedule_time: dt.time = dt.time(3, 0)
    timezone: str = "Europe/Moscow"
    start_date: dt.date = dt.date(2016, 1, 1)
    quality: Quality = field(default_factory=Quality)
    retries: int = 2
    retry_delay: dt.timedelta = dt.timedelta(minutes=5)
    max_retry_delay: dt.timedelta = dt.timedelta(minutes=60)
    execution_timeout: dt.timedelta = dt.timedelta(minutes=240)
    pool: str | None = "footfall_lakehouse"
    conn_id: str = "spark_default"
    driver_memory: str | None = "6g"
    executor_memory: str | None = "2g"
    spark_conf: dict[str, str] = field(default_factory=dict)
    runs_dir: str = str(PROJECT_ROOT / "data" / "runs")
    maintenance_cron: str = "0 5 * * 0"
    maintenance_retain_hours: float = 168

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


def _number(raw: dict, key: str, default, kind, where: str, lo=None, hi=None):
    value = raw.get(key, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key}: expected a {kind.__name__}, got {value!r}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{where}: {key}: {value} is out of range [{lo}, {hi}]")
    return value


def load_airflow_settings(folder: str | os.PathLike | None = None) -> AirflowSettings:
    """Read and validate ``<conf>/airflow.yaml`` (optional; defaults apply)."""
    d = Path(folder or conf_dir()).resolve()
    path = d / "airflow.yaml"
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    where = str(path)
    sched = raw.get("schedule") or {}
    text = str(sched.get("time", "03:00"))
    if not re.fullmatch(r"\d{1,2}:\d{2}", text):
        raise ConfigError(f"{where}: schedule.time: expected HH:MM, got {text!r}")
    try:
        at = dt.time(*map(int, text.split(":")))
    except ValueError:
        raise ConfigError(f"{where}: schedule.time: {text!r} is not a time of day") from None
    tz = str(sched.get("timezone", "Europe/Moscow"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: schedule.timezone: unknown time zone {tz!r}") from None
    start = raw.get("start_date", dt.date(2016, 1, 1))
    try:
        start = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start))
    except ValueError:
        raise ConfigError(f"{where}: start_date: expected YYYY-MM-DD, got {start!r}") from None
    q = raw.get("quality") or {}
    quality = Quality(
        _number(q, "max_quarantined_share", 0.05, float, f"{where}: quality", 0, 1),
        _number(q, "max_session_drop", 0.5, float, f"{where}: quality", 0, 1),
        _number(q, "min_baseline_sessions", 100, int, f"{where}: quality", 0),
    )
    spark = raw.get("spark") or {}
    extra = spark.get("conf") or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"{where}: spark.conf must be a mapping")
    runs = str(raw.get("runs", "data/runs"))
    maint = raw.get("maintenance") or {}
    cron = str(maint.get("schedule", "0 5 * * 0"))
    if len(cron.split()) != 5:
        raise ConfigError(f"{where}: maintenance.schedule: expected a cron expression "
                          f"(5 fields), got {cron!r}")
    return AirflowSettings(
        conf_dir=str(d),
        schedule_time=at,
        timezone=tz,
        start_date=start,
        quality=quality,
        retries=_number(raw, "retries", 2, int, where, 0),
        retry_delay=dt.timedelta(minutes=_number(raw, "retry_delay_minutes", 5, float, where, 0)),
        max_retry_delay=dt.timedelta(minutes=_number(raw, "max_retry_delay_minutes", 60, float, where, 0)),
        execution_timeout=dt.timedelta(
            minutes=_number(raw, "execution_timeout_minutes", 240, float, where, 1)),
        pool=raw.get("pool", "footfall_lakehouse") or None,
        conn_id=str(spark.get("conn_id", "spark_default")),
        driver_memory=spark.get("driver_memory", "6g") or None,
        executor_memory=spark.get("executor_memory", "2g") or None,
        spark_conf={str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in extra.items()},
        # Relative to the folder holding conf/, as storage.yaml's paths are.
        runs_dir=runs if "://" in runs or os.path.isabs(runs) else str(d.parent / runs),
        maintenance_cron=cron,
        # The job refuses less than 168 h itself; here only the type is checked.
        maintenance_retain_hours=_number(maint, "retain_hours", 168, float, f"{where}: maintenance", 0),
    )


def submit_kwargs(settings: AirflowSettings, name: str) -> dict[str, Any]:
    """SparkSubmitOperator arguments shared by every Footfall Spark task (no master:
    that is the connection's). Every such task runs in the lakehouse pool (one slot) and
    one at a time per DAG, so no two Spark runs ever write the lakehouse together."""
    conf = {
        # The driver JVM is started by spark-submit: give it the jobs' quiet logging.
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG_CONFIG}",
        **settings.spark_conf,
    }
    jars = ",".join(sorted(str(p) for p in JAR_DIR.glob("*.jar")))
    return dict(
        conn_id=settings.conn_id,
        application=str(ENTRYPOINT),
        name=name,
        conf=conf,
        jars=jars or None,
        driver_memory=settings.driver_memory,
        executor_memory=settings.executor_memory,
        # The driver (local or client mode) runs this project's Python.
        env_vars={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable},
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
