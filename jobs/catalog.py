"""The BI catalog: the lakehouse's tables as named, documented tables of a Hive
metastore, so that SQL clients (the Spark Thrift Server of ``footfall sql``, BI tools)
browse ``footfall.group_datetime`` instead of a folder (docs/bi.md).

Registration is idempotent: ``CREATE … IF NOT EXISTS`` for the external Delta tables,
``CREATE OR REPLACE`` for the views, and a comment is written only where the table's
differs from :mod:`jobs.comments`. The run commands register at their end; the ``sql``
command at its start.

An embedded (Derby) metastore admits one process at a time: while ``footfall sql``
serves it, a run leaves the catalog as it is and says so in its summary (the tables
are external, so they already show the run's data).
"""

from __future__ import annotations

import hashlib
import os
from typing import Mapping

from pyspark.sql import SparkSession

from jobs import progress
from jobs.comments import RAW_TABLES, TABLES, VIEWS, TableDoc, ViewDoc
from jobs.config import Config
from jobs.lock import holder, local_folder
from jobs.objectstore import delta_rs_uri
from jobs.spark import rows_df
from jobs.spec import COMEBACK_COLUMNS, COMEBACK_WINDOWS, OBJECTS, REPORT_DEFAULTS
from jobs.storagefile import Catalog
from jobs.tables import SCHEMAS, Lakehouse

#: Held by ``footfall sql`` in an embedded metastore's folder while it serves it.
SERVER_LOCK = "_sql_server.lock"

def hive_conf(cat: Catalog) -> dict[str, str]:
    """Spark settings for a session whose catalog is this metastore."""
    conf = {"spark.sql.catalogImplementation": "hive"}
    if not cat.embedded:
        return {**conf, "spark.hadoop.hive.metastore.uris": cat.metastore}
    return {
        **conf,
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={cat.metastore}/metastore_db;create=true",
        "spark.sql.warehouse.dir": f"{cat.metastore}/warehouse",
        # A new Derby database gets the metastore's tables on first use.
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
    }


def server_holder(cat: Catalog) -> str | None:
    """Who serves the embedded metastore now (``footfall sql``), else None."""
    return holder(cat.metastore, SERVER_LOCK) if cat.embedded else None


def has_metastore(spark: SparkSession) -> bool:
    """True when ``spark``'s catalog is a Hive metastore (else Spark's in-memory one)."""
    return spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "hive"


# -- the statements -------------------------------------------------------------------

def _text(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tables(cat: Catalog) -> tuple[TableDoc, ...]:
    """The catalog's tables: gold, silver and objects; bronze too with ``include_raw``."""
    return TABLES + (RAW_TABLES if cat.include_raw else ())


def table_statements(cat: Catalog, lakehouse: str) -> list[str]:
    """The database and one external Delta table per lakehouse table, if not there."""
    root = lakehouse.rstrip("/")
    out = [f"CREATE DATABASE IF NOT EXISTS {cat.database} COMMENT "
           + _text("Footfall analytics: WiFi footfall per mall, floor and zone (docs/bi.md)")]
    for t in tables(cat):
        out.append(f"CREATE TABLE IF NOT EXISTS {cat.database}.{t.name} USING DELTA "
                   f"LOCATION {_text(root + '/' + t.path)}")
    return out


def _view(db: str, doc: ViewDoc, body: str) -> str:
    cols = ",\n  ".join(f"`{c}` COMMENT {_text(text)}" for c, text in doc.columns.items())
    return (f"CREATE OR REPLACE VIEW {db}.{doc.name} (\n  {cols})\nCOMMENT {_text(doc.comment)}\n"
            f"AS {body}")


def view_statements(cat: Catalog) -> list[str]:
    """``report`` (gold, one comeback window per row) and ``daily_mall_summary``."""
    db = cat.database
    report, summary = VIEWS
    pairs = ", ".join(f"{_text(w.name)}, g.{w.column}" for w in COMEBACK_WINDOWS)
    gold_cols = [c for c in report.columns if c not in ("comeback", "count_comeback_client")]
    report_sql = (f"SELECT {', '.join('g.' + c for c in gold_cols)}, c.comeback, c.count_comeback_client\n"
                  f"FROM {db}.group_datetime g\n"
                  f"LATERAL VIEW stack({len(COMEBACK_WINDOWS)}, {pairs}) c AS comeback, count_comeback_client")
    b = int(REPORT_DEFAULTS["bounce_threshold"].split()[0])
    e = int(REPORT_DEFAULTS["engagement_threshold"].split()[0])
    comeback = COMEBACK_COLUMNS[REPORT_DEFAULTS["comeback"]]

    def of(user_type: str, metric: str, name: str) -> str:
        return f"max(CASE WHEN g.user_type = '{user_type}' THEN g.{metric} END) AS {name}"
    summary_sql = ("SELECT g.mall_id, o.name AS mall_name, g.bucket_date AS date,\n  " + ",\n  ".join([
        of("all", "count_client", "clients"), of("visitor", "count_client", "visitors"),
        of("passer", "count_client", "passers"), of("employee", "count_client", "employees"),
        of("bounced", "count_client", "bounced"), of("half engaged", "count_client", "half_engaged"),
        of("engaged", "count_client", "engaged"), of("visitor", "count_session", "visits"),
        of("visitor", "avg_session_duration", "avg_visit_minutes"),
        of("visitor", "sum_session_duration", "gross_shopping_hours"),
        of("visitor", comeback, "comeback_visitors_2_week")]) +
        f"\nFROM {db}.group_datetime g LEFT JOIN {db}.objects o ON o.object_id = g.mall_id\n"
        f"WHERE g.interval = 'daily' AND g.object_type = 'mall' AND g.bounce_threshold = {b} "
        f"AND g.engagement_threshold = {e}\nGROUP BY g.mall_id, o.name, g.bucket_date")
    return [_view(db, report, report_sql), _view(db, summary, summary_sql)]


def _delta_rs(path: str, options: Mapping[str, str] | None = None):
    """The Delta table at ``path`` through delta-rs (no Spark job), None when there is
    none. ``options``: delta-rs storage options for an object store (:mod:`jobs.objectstore`)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    folder = local_folder(path)
    if folder is not None:
        return DeltaTable(str(folder)) if (folder / "_delta_log").is_dir() else None
    try:
        return DeltaTable(delta_rs_uri(path), storage_options=dict(options or {}))
    except TableNotFoundError:
        return None


def open_tables(cfg: Config) -> dict[str, object]:
    """The catalog's Delta tables through delta-rs, by catalog name (None: not written
    yet). A registration opens them once and passes them on: on an object store each
    open is a few requests."""
    root = cfg.storage.lakehouse.rstrip("/")
    return {t.name: _delta_rs(f"{root}/{t.path}", cfg.storage.delta_rs_options)
            for t in tables(cfg.storage.catalog)}


def comment_statements(cat: Catalog, lakehouse: str,
                       opened: Mapping[str, object]) -> list[tuple[str, str]]:
    """The ``COMMENT ON TABLE`` / ``ALTER COLUMN … COMMENT`` statements that bring the
    comments kept in the Delta tables themselves to :mod:`jobs.comments`. The tables
    are named by path, so no metastore is needed; a table not written yet has none.

    :param opened: the tables as :func:`open_tables` gives them.
    :return: (catalog table name, statement) pairs; at most two per table.
    """
    out = []
    for t in tables(cat):
        path = f"{lakehouse.rstrip('/')}/{t.path}"
        table = opened.get(t.name)
        if table is None:
            continue
        name = f"delta.`{path}`"
        if (table.metadata().description or "") != t.comment:
            out.append((t.name, f"COMMENT ON TABLE {name} IS {_text(t.comment)}"))
        changes = [f"`{f.name}` COMMENT {_text(t.columns[f.name])}" for f in table.schema().fields
                   if f.name in t.columns and (f.metadata or {}).get("comment") != t.columns[f.name]]
        if changes:  # one commit for all of a table's columns
            out.append((t.name, f"ALTER TABLE {name} ALTER COLUMN {', '.join(changes)}"))
    return out


# -- registration ---------------------------------------------------------------------

def object_rows(cfg: Config) -> list[tuple]:
    """The objects dimension: one row per mall, floor and zone of the config."""
    by_id = {o.id: o for o in cfg.objects}
    malls = {m.id: m for m in cfg.malls}
    rows = []
    for o in cfg.objects:
        mall = malls[o.mall_id]
        floor = o if o.type == "floor" else by_id.get(o.parent_id) if o.type == "zone" else None
        zone = o if o.type == "zone" else None
        rows.append((o.id, o.type, o.name, o.mall_id, mall.name,
                     floor.id if floor else None, floor.name if floor else None,
                     zone.id if zone else None, zone.name if zone else None,
                     o.parent_id, mall.timezone))
    return sorted(rows)


def sync_objects(spark: SparkSession, lake: Lakehouse, cfg: Config) -> bool:
    """Write ``gold/objects`` from the config where it differs; True when written."""
    rows = object_rows(cfg)
    table = _delta_rs(lake.path(OBJECTS), cfg.storage.delta_rs_options)
    if table is not None:
        before = [tuple(r.values()) for r in table.to_pyarrow_table().to_pylist()]
        if sorted(before) == rows:
            return False
    lake.overwrite(OBJECTS, rows_df(spark, rows, SCHEMAS[OBJECTS]).coalesce(1))
    return True


def sync_lakehouse(spark: SparkSession, cfg: Config,
                   lake: Lakehouse) -> tuple[list[str], dict[str, object]]:
    """The catalog's part in the lakehouse: the objects table and the tables' comments,
    written only where they differ (under the run lock).

    :return: what was done, and the tables opened for it (:func:`open_tables`, after the
        objects table is written), for :func:`register` to use again.
    """
    cat = cfg.storage.catalog
    done = ["objects updated"] if sync_objects(spark, lake, cfg) else []
    opened = open_tables(cfg)
    # A comment adds a table version; the names and table ids that register uses stay.
    comments = comment_statements(cat, cfg.storage.lakehouse, opened)
    for _, sql in comments:
        spark.sql(sql)
    changed = list(dict.fromkeys(name for name, _ in comments))
    return done + ([f"comments of {', '.join(changed)} updated"] if changed else []), opened


def _fingerprint(cfg: Config, opened: Mapping[str, object] | None = None) -> str | None:
    """What the embedded metastore holds after a registration: the statements, the
    Derby database's identity (a new database has none of them), the Delta tables'
    ids (a table written anew has lost its comments) and the objects table's rows.
    None: no metastore yet. ``opened``: the tables (:func:`open_tables`) if at hand."""
    cat = cfg.storage.catalog
    service = os.path.join(cat.metastore, "metastore_db", "service.properties")
    try:
        ident = os.stat(service).st_ino
    except OSError:
        return None
    opened = open_tables(cfg) if opened is None else opened
    ids = [f"{name}={table.metadata().id if table is not None else '-'}"
           for name, table in opened.items()]
    text = "\n".join([str(ident), *ids, *table_statements(cat, cfg.storage.lakehouse),
                      *view_statements(cat), repr(object_rows(cfg))])
    return hashlib.sha256(text.encode()).hexdigest()


def _marker(cat: Catalog) -> str:
    return os.path.join(cat.metastore, "footfall-catalog.sha256")


def is_registered(cfg: Config) -> bool:
    """True when the embedded metastore holds this very catalog already (a remote
    metastore is never assumed to)."""
    cat = cfg.storage.catalog
    if not cat.embedded:
        return False
    try:
        with open(_marker(cat)) as fh:
            return fh.read().strip() == _fingerprint(cfg)
    except OSError:
        return False


def _location(spark: SparkSession, name: str) -> str:
    """Where the catalog's table ``name`` points ('' when that cannot be read)."""
    try:
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    except Exception:  # noqa: BLE001 - e.g. its old folder is gone: register it anew
        return ""
    where = next((r.data_type for r in rows if r.col_name == "Location"), "")
    return where.removeprefix("file://").removeprefix("file:").rstrip("/")


def register(spark: SparkSession, cfg: Config, complete: bool = True,
             opened: Mapping[str, object] | None = None) -> tuple[list[str], list[str]]:
    """Create the database, its tables and views in ``spark``'s metastore (idempotent).
    A table no run has written yet is left out, and so is a view over it.

    :param complete: the lakehouse part (:func:`sync_lakehouse`) is done too: with
        nothing left out, mark the embedded metastore as holding this catalog.
    :param opened: the tables as :func:`sync_lakehouse` opened them; opened here if not.

    :return: the names registered, and those left out.
    """
    cat = cfg.storage.catalog
    derby = cat.embedded and has_metastore(spark)  # not Spark's in-memory catalog (tests)
    database, *creates = table_statements(cat, cfg.storage.lakehouse)
    spark.sql(database)
    done, missing = [], []
    root = cfg.storage.lakehouse.rstrip("/")
    opened = open_tables(cfg) if opened is None else opened
    for t, sql in zip(tables(cat), creates):
        path = f"{root}/{t.path}"
        if opened[t.name] is not None:
            name = f"{cat.database}.{t.name}"
            if spark.catalog.tableExists(name) and _location(spark, name) != path:
                spark.sql(f"DROP TABLE {name}")  # the lakehouse moved; external: no data goes
            spark.sql(sql)
            done.append(t.name)
        else:
            missing.append(t.name)
    for v, sql in zip(VIEWS, view_statements(cat)):
        if set(v.reads) & set(missing):
            missing.append(v.name)
        else:
            spark.sql(sql)
            done.append(v.name)
    if derby and complete and not missing:
        with open(_marker(cat), "w") as fh:
            fh.write(_fingerprint(cfg, opened) or "")
    return done, missing


def open_metastore(spark: SparkSession, cfg: Config) -> None:
    """Before the first use of an embedded metastore: its folder, and Derby's log in it
    (Derby starts on first use and would write ``derby.log`` to the working folder)."""
    cat = cfg.storage.catalog
    if cat.embedded and has_metastore(spark):
        os.makedirs(cat.metastore, exist_ok=True)
        spark._jvm.java.lang.System.setProperty("derby.stream.error.file",
                                                os.path.join(cat.metastore, "derby.log"))


def session_conf(cfg: Config) -> dict[str, str]:
    """The Hive settings a run's session needs to register the catalog at its end;
    none when registration is off, already done, or a SQL server holds the embedded
    metastore (Derby admits one process)."""
    cat = cfg.storage.catalog
    if not cat.register or is_registered(cfg) or server_holder(cat):
        return {}
    return hive_conf(cat)


def after_run(spark: SparkSession, cfg: Config, lake: Lakehouse) -> str | None:
    """A run's last step (it holds the run lock), when its session has the metastore
    (:func:`session_conf`): the objects table and the comments, then the metastore's
    entries. Returns a note for the summary when the catalog is left as it is; None when
    done, already done, or off.

    The run's data are committed by then: a metastore that cannot be reached costs the
    catalog's update, not the run."""
    cat = cfg.storage.catalog
    if not cat.register:
        return None
    try:
        if not has_metastore(spark):
            who = None if is_registered(cfg) else server_holder(cat)
            if who:
                return (f"BI catalog not registered: {who} serves the embedded metastore "
                        f"{cat.metastore}; it registers the tables itself")
            return None  # registered already, or a session without a metastore (tests)
        open_metastore(spark, cfg)
        done, opened = sync_lakehouse(spark, cfg, lake)
        names, _ = register(spark, cfg, opened=opened)
        done.insert(0, f"{len(names)} tables and views registered")
    except Exception as exc:  # noqa: BLE001 - any metastore failure; the data are written
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return (f"BI catalog not updated ({type(exc).__name__}: {first}); `footfall sql` "
                "registers it when it starts")
    if done:
        progress.step("BI catalog %s: %s", cat.database, ", ".join(done))
    return None
