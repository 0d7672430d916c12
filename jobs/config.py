"""Load and validate the config folder (SPEC §1) into typed, immutable objects.

Every config error is raised here, as :class:`ConfigError`, naming the file and the
setting, before any job reads or writes data.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

RSSI_MIN, RSSI_MAX = -120, 0

#: SPEC §1 defaults for pipeline.yaml.
PIPELINE_DEFAULTS: dict[str, Any] = {
    "session_gap_minutes": 15,
    "visitor_rssi_threshold": -70,
    "employee_window_days": 14,
    "employee_min_days": 5,
    "employee_min_daily_minutes": 240,
    "randomized_macs": "exclude",
    "max_lateness_days": 31,
}

STORAGE_DEFAULTS: dict[str, Any] = {
    "landing": "data/landing",
    "lakehouse": "data/lakehouse",
    "spark": {"master": "local[*]", "app_name": "footfall", "conf": {}},
    "require_hmac_key": False,
}

#: Environment variable holding the HMAC key for client ids (SPEC §2, privacy).
HMAC_KEY_ENV = "FOOTFALL_HMAC_KEY"
#: Development-only key; never use it with real MACs (see README, Privacy).
DEV_HMAC_KEY = "footfall-development-key-do-not-use-in-production"
#: What a run without FOOTFALL_HMAC_KEY prints on stderr (the run summary notes it too).
DEV_KEY_WARNING = (
    f"warning: {HMAC_KEY_ENV} is not set: client ids use the development-only default "
    f"HMAC key. Never run real data like this: set {HMAC_KEY_ENV} to the deployment's "
    "secret key (and keep it: a new key makes every client new); `require_hmac_key: true` "
    "in conf/storage.yaml turns this warning into an error.")


class ConfigError(ValueError):
    """A config file or setting is wrong; the message names which."""


@dataclass(frozen=True)
class Sensor:
    id: str
    zone_id: int
    visitor_rssi_threshold: int | None = None


@dataclass(frozen=True)
class Obj:
    """One object of the tree: a mall, a floor or a zone."""

    id: int
    type: str  # mall | floor | zone
    name: str
    mall_id: int
    parent_id: int | None


@dataclass(frozen=True)
class Mall:
    id: int
    name: str
    timezone: str


@dataclass(frozen=True)
class Settings:
    session_gap_minutes: float
    visitor_rssi_threshold: int
    employee_window_days: int
    employee_min_days: int
    employee_min_daily_minutes: float
    randomized_macs: str
    max_lateness_days: int


@dataclass(frozen=True)
class Storage:
    landing: str
    lakehouse: str
    spark_master: str
    spark_app_name: str
    spark_conf: dict[str, str] = field(default_factory=dict)
    #: storage.yaml ``require_hmac_key``: a run without FOOTFALL_HMAC_KEY fails
    #: instead of falling back to the development key (set it in production).
    require_hmac_key: bool = False


@dataclass(frozen=True)
class Config:
    """The whole validated config: object tree, sensors, settings, storage."""

    conf_dir: str
    malls: tuple[Mall, ...]
    objects: tuple[Obj, ...]
    sensors: tuple[Sensor, ...]
    settings: Settings
    storage: Storage

    def mall(self, mall_id: int) -> Mall:
        """The mall with this id (KeyError if none)."""
        for m in self.malls:
            if m.id == mall_id:
                return m
        raise KeyError(mall_id)

    def sensor_rows(self) -> list[tuple[str, int, int, int, int]]:
        """(sensor_id, zone_id, floor_id, mall_id, threshold) per sensor: the lookup
        table that maps a probe to the objects it counts at (SPEC §3)."""
        by_id = {o.id: o for o in self.objects}
        rows = []
        for s in self.sensors:
            zone = by_id[s.zone_id]
            floor = by_id[zone.parent_id]
            threshold = (
                s.visitor_rssi_threshold
                if s.visitor_rssi_threshold is not None
                else self.settings.visitor_rssi_threshold
            )
            rows.append((s.id, zone.id, floor.id, zone.mall_id, threshold))
        return rows

    def with_storage(self, landing: str | None = None, lakehouse: str | None = None,
                     master: str | None = None) -> "Config":
        """A copy whose storage settings are overridden where a value is given."""
        st = self.storage
        st = dataclasses.replace(
            st,
            landing=_resolve(landing, os.getcwd()) if landing else st.landing,
            lakehouse=_resolve(lakehouse, os.getcwd()) if lakehouse else st.lakehouse,
            spark_master=master or st.spark_master,
        )
        return dataclasses.replace(self, storage=st)


def _read_yaml(path: Path, required: bool) -> dict:
    if not path.exists():
        if required:
            raise ConfigError(f"{path}: file not found")
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return value


def _threshold(value: Any, where: str) -> int:
    v = _int(value, where)
    if not RSSI_MIN <= v <= RSSI_MAX:
        raise ConfigError(f"{where}: {v} is out of range [{RSSI_MIN}, {RSSI_MAX}] dBm")
    return v


def _is_uri(path: str) -> bool:
    return "://" in path


def _resolve(path: str, base: str) -> str:
    if _is_uri(path) or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


def load_settings(path: Path) -> Settings:
    """Read pipeline.yaml (missing keys take SPEC's defaults) and check each value."""
    raw = _read_yaml(path, required=False)
    # SPEC §1: "more keys may be added" — keys other jobs read (e.g. the Airflow
    # data-quality thresholds) are passed over here, not rejected.
    v = {**PIPELINE_DEFAULTS, **{k: raw[k] for k in raw if k in PIPELINE_DEFAULTS}}
    where = lambda k: f"{path}: {k}"  # noqa: E731
    gap = v["session_gap_minutes"]
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or gap <= 0:
        raise ConfigError(f"{where('session_gap_minutes')}: expected a positive number, got {gap!r}")
    window = _int(v["employee_window_days"], where("employee_window_days"))
    if window < 1:
        raise ConfigError(f"{where('employee_window_days')}: must be at least 1, got {window}")
    min_days = _int(v["employee_min_days"], where("employee_min_days"))
    if not 1 <= min_days <= window:
        raise ConfigError(f"{where('employee_min_days')}: must be between 1 and "
                          f"employee_window_days ({window}), got {min_days}")
    minutes = v["employee_min_daily_minutes"]
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= 1440:
        raise ConfigError(f"{where('employee_min_daily_minutes')}: expected a number in (0, 1440], got {minutes!r}")
    if v["randomized_macs"] not in ("exclude", "include"):
        raise ConfigError(f"{where('randomized_macs')}: expected 'exclude' or 'include', got {v['randomized_macs']!r}")
    lateness = _int(v["max_lateness_days"], where("max_lateness_days"))
    if lateness < 0:
        raise ConfigError(f"{where('max_lateness_days')}: must be >= 0, got {lateness}")
    return Settings(
        session_gap_minutes=gap,
        visitor_rssi_threshold=_threshold(v["visitor_rssi_threshold"], where("visitor_rssi_threshold")),
        employee_window_days=window,
        employee_min_days=min_days,
        employee_min_daily_minutes=minutes,
        randomized_macs=v["randomized_macs"],
        max_lateness_days=lateness,
    )


def load_objects(path: Path) -> tuple[tuple[Mall, ...], tuple[Obj, ...], tuple[Sensor, ...]]:
    """Read objects.yaml: the mall → floor → zone tree and each zone's sensors."""
    raw = _read_yaml(path, required=True)
    malls_raw = raw.get("malls")
    if not isinstance(malls_raw, list) or not malls_raw:
        raise ConfigError(f"{path}: 'malls' must be a non-empty list")
    malls: list[Mall] = []
    objects: list[Obj] = []
    sensors: list[Sensor] = []
    seen_ids: dict[int, str] = {}
    seen_sensors: dict[str, str] = {}

    def take_id(node: Any, kind: str, where: str) -> int:
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: {where}: expected a mapping")
        if "id" not in node:
            raise ConfigError(f"{path}: {where}: {kind} has no 'id'")
        oid = _int(node["id"], f"{path}: {where}.id")
        if oid in seen_ids:
            raise ConfigError(f"{path}: duplicate object id {oid} ({seen_ids[oid]} and {where})")
        seen_ids[oid] = where
        return oid

    def name_of(node: dict, where: str) -> str:
        name = node.get("name", "")
        if not isinstance(name, str):
            raise ConfigError(f"{path}: {where}.name: expected text, got {name!r}")
        return name

    for mi, m in enumerate(malls_raw):
        where_m = f"malls[{mi}]"
        mall_id = take_id(m, "mall", where_m)
        tz = m.get("timezone")
        if not isinstance(tz, str) or not tz:
            raise ConfigError(f"{path}: {where_m} (mall {mall_id}): 'timezone' is required")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"{path}: {where_m} (mall {mall_id}): unknown time zone {tz!r}") from exc
        malls.append(Mall(mall_id, name_of(m, where_m), tz))
        objects.append(Obj(mall_id, "mall", name_of(m, where_m), mall_id, None))
        for fi, f in enumerate(m.get("floors") or []):
            where_f = f"{where_m}.floors[{fi}]"
            floor_id = take_id(f, "floor", where_f)
            objects.append(Obj(floor_id, "floor", name_of(f, where_f), mall_id, mall_id))
            for zi, z in enumerate(f.get("zones") or []):
                where_z = f"{where_f}.zones[{zi}]"
                zone_id = take_id(z, "zone", where_z)
                objects.append(Obj(zone_id, "zone", name_of(z, where_z), mall_id, floor_id))
                for si, s in enumerate(z.get("sensors") or []):
                    where_s = f"{where_z}.sensors[{si}]"
                    if not isinstance(s, dict) or "id" not in s:
                        raise ConfigError(f"{path}: {where_s}: a sensor needs an 'id'")
                    sid = str(s["id"]).strip()
                    if not sid:
                        raise ConfigError(f"{path}: {where_s}: empty sensor id")
                    if sid in seen_sensors:
                        raise ConfigError(f"{path}: sensor {sid!r} is in two zones "
                                          f"({seen_sensors[sid]} and {where_s})")
                    seen_sensors[sid] = where_s
                    thr = s.get("visitor_rssi_threshold")
                    if thr is not None:
                        thr = _threshold(thr, f"{path}: {where_s}.visitor_rssi_threshold")
                    sensors.append(Sensor(sid, zone_id, thr))
    return tuple(malls), tuple(objects), tuple(sensors)


def load_storage(path: Path, base: str) -> Storage:
    """Read storage.yaml: landing and lakehouse locations and Spark settings."""
    raw = _read_yaml(path, required=False)
    spark = {**STORAGE_DEFAULTS["spark"], **(raw.get("spark") or {})}
    conf = spark.get("conf") or {}
    if not isinstance(conf, dict):
        raise ConfigError(f"{path}: spark.conf must be a mapping")
    landing = raw.get("landing", STORAGE_DEFAULTS["landing"])
    lakehouse = raw.get("lakehouse", STORAGE_DEFAULTS["lakehouse"])
    for key, value in (("landing", landing), ("lakehouse", lakehouse)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: {key}: expected a path or URI")
    require = raw.get("require_hmac_key", STORAGE_DEFAULTS["require_hmac_key"])
    if not isinstance(require, bool):
        raise ConfigError(f"{path}: require_hmac_key: expected true or false, got {require!r}")
    return Storage(
        landing=_resolve(landing, base),
        lakehouse=_resolve(lakehouse, base),
        spark_master=str(spark["master"]),
        spark_app_name=str(spark.get("app_name", "footfall")),
        spark_conf={str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()},
        require_hmac_key=require,
    )


def load_config(conf_dir: str | os.PathLike = "conf") -> Config:
    """Load and validate ``conf_dir``: objects.yaml (required), pipeline.yaml and
    storage.yaml (optional; defaults apply). Raises ConfigError naming the problem."""
    d = Path(conf_dir).resolve()
    if not d.is_dir():
        raise ConfigError(f"config folder {d} does not exist")
    malls, objects, sensors = load_objects(d / "objects.yaml")
    settings = load_settings(d / "pipeline.yaml")
    storage = load_storage(d / "storage.yaml", base=str(d.parent))
    return Config(str(d), malls, objects, sensors, settings, storage)


def hmac_key(environ: os._Environ | dict | None = None) -> tuple[bytes, bool]:
    """The HMAC key for client ids and whether it is the development default (also
    when FOOTFALL_HMAC_KEY holds that very key)."""
    env = os.environ if environ is None else environ
    key = env.get(HMAC_KEY_ENV)
    if key and key != DEV_HMAC_KEY:
        return key.encode("utf-8"), False
    return DEV_HMAC_KEY.encode("utf-8"), True


def client_id_key(cfg: Config, environ: os._Environ | dict | None = None) -> tuple[bytes, bool]:
    """The HMAC key a run uses for client ids (SPEC §2, privacy) and whether it is the
    development default: ``FOOTFALL_HMAC_KEY`` when set and not empty, else the
    development key — unless ``storage.yaml`` says ``require_hmac_key: true``, which
    makes that a ConfigError."""
    key, is_dev = hmac_key(environ)
    if is_dev and cfg.storage.require_hmac_key:
        raise ConfigError(
            f"{Path(cfg.conf_dir) / 'storage.yaml'}: require_hmac_key is true, but the "
            f"environment variable {HMAC_KEY_ENV} is not set (or empty, or the development "
            f"key): set {HMAC_KEY_ENV} to the deployment's secret key (the run will not "
            "fall back to the development key)")
    return key, is_dev


def check_hmac_key(cfg: Config, environ: os._Environ | dict | None = None, stream=None) -> bool:
    """Before a run: raise ConfigError as :func:`client_id_key` does, or print
    :data:`DEV_KEY_WARNING` on ``stream`` (stderr) when the development key will be
    used. Returns whether it will be."""
    _, is_dev = client_id_key(cfg, environ)
    if is_dev:
        print(DEV_KEY_WARNING, file=sys.stderr if stream is None else stream, flush=True)
    return is_dev
