"""conf/storage.yaml: where the data lives, how Spark starts, the BI catalog and the run
lock's lease, as pydantic models (:class:`StorageFile`), and the resolved, immutable
:class:`Storage` a run uses (:func:`load_storage`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from jobs.configfile import (Bool, ConfigModel, Int, Location, NullAsEmptyMapping, SparkConf,
                             between, load_model, resolve_path)

class SparkSection(ConfigModel):
    """storage.yaml ``spark``: how the jobs start Spark."""

    master: str = "local[*]"
    app_name: str = "footfall"
    conf: SparkConf = {}


def _database_name(v: str) -> str:
    if not v or not v.replace("_", "a").isalnum() or not v.isascii() or v[0].isdigit():
        raise ValueError(f"expected a SQL name (letters, digits, _), got {v!r}")
    return v.lower()


class SqlServer(ConfigModel):
    """storage.yaml ``catalog.server``: where ``footfall sql`` listens (docs/bi.md)."""

    host: str = "127.0.0.1"
    port: Annotated[Int, between(1, 65535)] = 10000
    #: HiveServer2 settings (``hive.server2.authentication`` …); required off loopback.
    conf: SparkConf = {}


class RunLockSection(ConfigModel):
    """storage.yaml ``run_lock``: the lease of the run lock on S3 (:mod:`jobs.s3lock`)."""

    #: A run that dies without cleanup blocks the next one for at most this long; a live
    #: run renews its lease every third of it.
    lease_seconds: Annotated[Int, between(10, 86400)] = 300


class CatalogSection(ConfigModel):
    """storage.yaml ``catalog``: the BI catalog over the lakehouse (docs/bi.md)."""

    #: Register the tables at the end of every nightly and backfill run.
    update_on_run: Bool = True
    database: Annotated[str, AfterValidator(_database_name)] = "footfall"
    #: A folder for an embedded Derby metastore, or a Hive metastore URI (thrift://…).
    #: Default: ``metastore`` beside a local lakehouse, else one under ``data/metastores/``.
    metastore: Annotated[str | None, AfterValidator(lambda v: v or None)] = None
    #: Put bronze/probes and the quarantine (raw text: raw MACs) in the catalog too.
    include_raw: Bool = False
    server: Annotated[SqlServer, NullAsEmptyMapping] = Field(default_factory=SqlServer)


@dataclass(frozen=True)
class Catalog:
    """The catalog settings a run uses: storage.yaml's, the metastore resolved."""

    register: bool
    database: str
    metastore: str
    include_raw: bool
    host: str
    port: int
    server_conf: dict[str, str]

    @property
    def embedded(self) -> bool:
        """True when the metastore is an embedded Derby database (one process at a time)."""
        return "://" not in self.metastore


class StorageFile(ConfigModel):
    """storage.yaml: where data lives (relative paths: against the folder holding conf/)
    and how Spark runs."""

    landing: Location = "data/landing"
    lakehouse: Location = "data/lakehouse"
    #: A run without FOOTFALL_HMAC_KEY fails instead of falling back to the development
    #: key (set it in production).
    require_hmac_key: Bool = False
    spark: Annotated[SparkSection, NullAsEmptyMapping] = Field(default_factory=SparkSection)
    catalog: Annotated[CatalogSection, NullAsEmptyMapping] = Field(default_factory=CatalogSection)
    run_lock: Annotated[RunLockSection, NullAsEmptyMapping] = Field(default_factory=RunLockSection)


@dataclass(frozen=True)
class Storage:
    """The storage settings a run uses: storage.yaml's, paths resolved, and the command
    line's overrides (:meth:`Config.with_storage`)."""

    landing: str
    lakehouse: str
    spark_master: str
    spark_app_name: str
    spark_conf: dict[str, str]
    require_hmac_key: bool
    catalog: Catalog
    lease_seconds: int = 300

    @property
    def delta_rs_options(self) -> dict[str, str]:
        """delta-rs ``storage_options`` for the lakehouse (:mod:`jobs.objectstore`)."""
        from jobs.objectstore import delta_rs_options
        return delta_rs_options(self.spark_conf)


def load_storage(path: Path, base: str | os.PathLike) -> tuple[Storage, bool]:
    """Load and validate storage.yaml at ``path`` (optional; defaults apply), its relative
    paths resolved against ``base``. Also returns whether it names the metastore (else the
    metastore follows a ``--lakehouse`` override)."""
    st = load_model(path, StorageFile)
    lakehouse = resolve_path(st.lakehouse, base)
    c = st.catalog
    catalog = Catalog(register=c.update_on_run, database=c.database,
                      metastore=resolve_path(c.metastore, base) if c.metastore
                      else default_metastore(lakehouse, base),
                      include_raw=c.include_raw, host=c.server.host, port=c.server.port,
                      server_conf=dict(c.server.conf))
    storage = Storage(landing=resolve_path(st.landing, base), lakehouse=lakehouse,
                      spark_master=st.spark.master, spark_app_name=st.spark.app_name,
                      spark_conf=dict(st.spark.conf), require_hmac_key=st.require_hmac_key,
                      catalog=catalog, lease_seconds=st.run_lock.lease_seconds)
    return storage, c.metastore is not None


def default_metastore(lakehouse: str, base: str | os.PathLike) -> str:
    """The embedded metastore's folder when storage.yaml names none: ``metastore`` beside
    a local lakehouse (``data/lakehouse`` → ``data/metastore``), else one folder per
    remote lakehouse under ``data/metastores/`` (``s3a://b/lake`` → ``data/metastores/s3a-b-lake``)."""
    if "://" in lakehouse and not lakehouse.startswith("file:"):
        name = "-".join(p for p in re.split(r"[^A-Za-z0-9_.]+", lakehouse) if p)
        return resolve_path(f"data/metastores/{name}", base)
    return os.path.join(os.path.dirname(lakehouse.removeprefix("file://").rstrip("/")), "metastore")
