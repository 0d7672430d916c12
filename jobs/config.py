"""The config folder (SPEC §1): objects.yaml and pipeline.yaml as pydantic models
(unknown keys are errors, defaults are written once, in the models; storage.yaml's are
in :mod:`jobs.storagefile`), and the typed, immutable :class:`Config` the jobs and the
report API use.

Every config error is a :class:`ConfigError` naming the file and the key path
(:func:`jobs.configfile.load_model`), raised before any job reads or writes data.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterator, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from jobs.configfile import (ConfigError, ConfigModel, Int, NullAsEmptyList, Number, TimeZone,
                             at_least, between, load_model, resolve_path)
from jobs.spec import RSSI_MAX, RSSI_MIN
from jobs.storagefile import Storage, default_metastore, load_storage

#: Environment variable holding the HMAC key for client ids (SPEC §2, privacy).
HMAC_KEY_ENV = "FOOTFALL_HMAC_KEY"
#: Development-only key; never use it with real MACs (docs/operations.md, "Privacy").
DEV_HMAC_KEY = "footfall-development-key-do-not-use-in-production"
#: What a run without FOOTFALL_HMAC_KEY prints on stderr (the run summary notes it too).
DEV_KEY_WARNING = (
    f"warning: {HMAC_KEY_ENV} is not set: client ids use the development-only default "
    f"HMAC key. Never run real data like this: set {HMAC_KEY_ENV} to the deployment's "
    "secret key (and keep it: a new key makes every client new); `require_hmac_key: true` "
    "in conf/storage.yaml turns this warning into an error.")


# ---------------------------------------------------------------------------- objects.yaml

#: A dBm value a sensor's RSSI can take (SPEC §2).
Rssi = Annotated[Int, between(RSSI_MIN, RSSI_MAX, "dBm")]


def _sensor_id(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)  # `id: 17` is sensor "17", as the probe files spell it
    if isinstance(v, str):
        v = v.strip()
        if not v:
            raise ValueError("empty sensor id")
    return v


class SensorEntry(ConfigModel):
    """A sensor of a zone; its own ``visitor_rssi_threshold`` overrides pipeline.yaml's."""

    id: Annotated[str, BeforeValidator(_sensor_id)]
    visitor_rssi_threshold: Rssi | None = None


class ZoneEntry(ConfigModel):
    """A zone of a floor, and its sensors."""

    id: Int
    name: str = ""
    sensors: Annotated[tuple[SensorEntry, ...], NullAsEmptyList] = ()


class FloorEntry(ConfigModel):
    """A floor of a mall, and its zones."""

    id: Int
    name: str = ""
    zones: Annotated[tuple[ZoneEntry, ...], NullAsEmptyList] = ()


class MallEntry(ConfigModel):
    """A mall: its IANA time zone (its floors and zones share it), and its floors."""

    id: Int
    name: str = ""
    timezone: TimeZone
    floors: Annotated[tuple[FloorEntry, ...], NullAsEmptyList] = ()


@dataclass(frozen=True)
class Sensor:
    """A sensor and the zone it belongs to (exactly one)."""

    id: str
    zone_id: int
    visitor_rssi_threshold: int | None


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
    """A mall and its time zone."""

    id: int
    name: str
    timezone: str


class ObjectsFile(ConfigModel):
    """objects.yaml: the mall → floor → zone tree. Object ids are unique across the
    tree, and a sensor belongs to one zone."""

    malls: Annotated[tuple[MallEntry, ...], Field(min_length=1)]

    def walk(self) -> Iterator[tuple[str, Obj, MallEntry | FloorEntry | ZoneEntry]]:
        """(key path, object, its entry) of every object, malls first, depth first."""
        for mi, m in enumerate(self.malls):
            yield f"malls[{mi}]", Obj(m.id, "mall", m.name, m.id, None), m
            for fi, f in enumerate(m.floors):
                where_f = f"malls[{mi}].floors[{fi}]"
                yield where_f, Obj(f.id, "floor", f.name, m.id, m.id), f
                for zi, z in enumerate(f.zones):
                    yield f"{where_f}.zones[{zi}]", Obj(z.id, "zone", z.name, m.id, f.id), z

    @model_validator(mode="after")
    def _unique(self) -> "ObjectsFile":
        seen_ids: dict[int, str] = {}
        seen_sensors: dict[str, str] = {}
        for where, obj, entry in self.walk():
            if obj.id in seen_ids:
                raise ValueError(f"duplicate object id {obj.id} ({seen_ids[obj.id]} and {where})")
            seen_ids[obj.id] = where
            for si, s in enumerate(getattr(entry, "sensors", ())):
                where_s = f"{where}.sensors[{si}]"
                if s.id in seen_sensors:
                    raise ValueError(f"sensor {s.id!r} is in two zones ({seen_sensors[s.id]} and {where_s})")
                seen_sensors[s.id] = where_s
        return self

    def flatten(self) -> tuple[tuple[Mall, ...], tuple[Obj, ...], tuple[Sensor, ...]]:
        """The malls, every object and every sensor, in file order."""
        objects = tuple(obj for _, obj, _ in self.walk())
        malls = tuple(Mall(m.id, m.name, m.timezone) for m in self.malls)
        sensors = tuple(Sensor(s.id, obj.id, s.visitor_rssi_threshold)
                        for _, obj, entry in self.walk() for s in getattr(entry, "sensors", ()))
        return malls, objects, sensors


# ---------------------------------------------------------------------------- pipeline.yaml

def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError(f"expected a positive number, got {v!r}")
    return v


def _minutes_of_a_day(v: float) -> float:
    if not 0 < v <= 1440:
        raise ValueError(f"expected a number in (0, 1440], got {v!r}")
    return v


class Settings(ConfigModel):
    """pipeline.yaml: the pipeline's settings; every key is optional, and the defaults
    are SPEC §1's."""

    session_gap_minutes: Annotated[Number, AfterValidator(_positive)] = 15.0
    visitor_rssi_threshold: Rssi = -70
    employee_window_days: Annotated[Int, at_least(1)] = 14
    employee_min_days: Int = 5
    employee_min_daily_minutes: Annotated[Number, AfterValidator(_minutes_of_a_day)] = 240.0
    randomized_macs: Literal["exclude", "include"] = "exclude"
    max_lateness_days: Annotated[Int, at_least(0)] = 31

    @model_validator(mode="after")
    def _min_days_fit_the_window(self) -> "Settings":
        if not 1 <= self.employee_min_days <= self.employee_window_days:
            raise ValueError(f"employee_min_days: must be between 1 and employee_window_days "
                             f"({self.employee_window_days}), got {self.employee_min_days}")
        return self


# ---------------------------------------------------------------------------- the folder

@dataclass(frozen=True)
class Config:
    """The whole validated config: object tree, sensors, settings, storage."""

    conf_dir: str
    malls: tuple[Mall, ...]
    objects: tuple[Obj, ...]
    sensors: tuple[Sensor, ...]
    settings: Settings
    storage: Storage
    #: conf/feeds.yaml: how files of other shapes are read (none without the file).
    feeds: "FeedsFile" = dataclasses.field(default=None, repr=False)
    #: storage.yaml names the metastore (else it follows a --lakehouse override).
    _metastore_configured: bool = dataclasses.field(default=False, repr=False)

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
            landing=resolve_path(landing, os.getcwd()) if landing else st.landing,
            lakehouse=resolve_path(lakehouse, os.getcwd()) if lakehouse else st.lakehouse,
            spark_master=master or st.spark_master,
        )
        if lakehouse and not self._metastore_configured:
            st = dataclasses.replace(st, catalog=dataclasses.replace(
                st.catalog, metastore=default_metastore(st.lakehouse, Path(self.conf_dir).parent)))
        return dataclasses.replace(self, storage=st)


def load_config(conf_dir: str | os.PathLike = "conf") -> Config:
    """Load and validate ``conf_dir``: objects.yaml (required), pipeline.yaml and
    storage.yaml (optional; defaults apply). Raises ConfigError naming the problem."""
    d = Path(conf_dir).resolve()
    if not d.is_dir():
        raise ConfigError(f"config folder {d} does not exist")
    malls, objects, sensors = load_model(d / "objects.yaml", ObjectsFile, required=True).flatten()
    settings = load_model(d / "pipeline.yaml", Settings)
    # storage.yaml's relative paths are the project's, not conf/'s
    storage, metastore_configured = load_storage(d / "storage.yaml", d.parent)
    from jobs.feeds import load_feeds
    return Config(str(d), malls, objects, sensors, settings, storage, feeds=load_feeds(d),
                  _metastore_configured=metastore_configured)


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
