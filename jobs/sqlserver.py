"""``footfall sql``: a SQL endpoint for BI tools over the lakehouse (docs/bi.md).

The Spark Thrift Server (HiveServer2 protocol: JDBC and ODBC) that ships with pyspark,
started inside this process's Spark session with Delta and the BI catalog
(:mod:`jobs.catalog`), in the foreground until Ctrl-C or SIGTERM.

Why in-process (``HiveThriftServer2.startWithContext``) and Delta on the driver class
path: the server's statement threads do not see JARs added with ``spark.jars``
(``NoClassDefFoundError: …/RowTracking$`` on the first query of a Delta table); the
driver class path is what every thread's class loader sees.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from jobs import catalog
from jobs.config import Config
from jobs.lock import LakehouseBusy, exclusive, lakehouse_lock
from jobs.storagefile import Catalog
from jobs.tables import Lakehouse

#: HiveServer2 authentication modes that check nobody.
_NO_AUTH = {"", "NONE", "NOSASL"}


class SqlServerError(RuntimeError):
    """The server cannot start (a setting, the port); nothing was started."""


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, server_conf: dict[str, str]) -> None:
    """Refuse a host beyond loopback unless HiveServer2 authentication is configured.

    :raises SqlServerError: naming the setting that is missing.
    """
    auth = server_conf.get("hive.server2.authentication", "NONE").strip().upper()
    if not is_loopback(host) and auth in _NO_AUTH:
        raise SqlServerError(
            f"refusing to serve the lakehouse on {host}: beyond loopback every client must "
            "authenticate, and hive.server2.authentication is "
            f"{auth or 'NONE'}. Set it (LDAP, KERBEROS, PAM or CUSTOM, with its settings) under "
            "catalog.server.conf in conf/storage.yaml (docs/bi.md, 'Beyond this machine'), "
            "or serve on 127.0.0.1")


def check_port(host: str, port: int) -> None:
    """:raises SqlServerError: when ``host:port`` cannot be listened on."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))
    except OSError as exc:
        raise SqlServerError(f"cannot listen on {host}:{port} ({exc.strerror}): "
                             "another server uses it? Choose one with --port") from None


def _wait_listening(host: str, port: int, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def connect_text(cat: Catalog, host: str, port: int, names: list[str], seconds: float) -> str:
    """What the command prints once the server listens: how to connect."""
    import pyspark
    beeline = Path(pyspark.__file__).parent / "bin" / "beeline"
    url = f"jdbc:hive2://{host}:{port}/{cat.database}"
    return "\n".join([
        f"Footfall SQL endpoint (Spark Thrift Server, HiveServer2 protocol) on {host}:{port}, "
        f"ready in {seconds:.0f}s",
        f"  catalog     {cat.database}: {', '.join(names)}",
        f"  JDBC        {url}",
        f"  beeline     {beeline} -u {url}",
        f"  Python      pyhive.hive.connect(host='{host}', port={port}, database='{cat.database}')",
        f"  SQLAlchemy  hive://{host}:{port}/{cat.database}   (Superset)",
        "  DBeaver, Tableau, Power BI, Metabase: docs/bi.md. Ctrl-C stops the server.",
    ])


def serve(cfg: Config, host: str | None = None, port: int | None = None) -> int:
    """Start the endpoint, register the catalog, print how to connect, serve until
    SIGINT or SIGTERM. Returns the exit code.

    :raises SqlServerError: a setting or the port forbids the start.
    :raises LakehouseBusy: another ``footfall sql`` serves the embedded metastore.
    """
    from jobs.spark import build_spark, session_jars

    cat = cfg.storage.catalog
    host, port = host or cat.host, port or cat.port
    check_exposure(host, cat.server_conf)
    check_port(host, port)
    t0 = time.perf_counter()
    lock = (exclusive(cat.metastore, f"sql --host {host} --port {port}", catalog.SERVER_LOCK,
                      "metastore") if cat.embedded else contextlib.nullcontext())
    with lock:
        st = cfg.storage
        server = {"hive.server2.thrift.bind.host": host, "hive.server2.thrift.port": str(port),
                  **cat.server_conf}
        spark = build_spark(st.spark_master, "footfall-sql", {
            **st.spark_conf, **catalog.hive_conf(cat),
            "spark.driver.extraClassPath": ":".join(session_jars()),
            "spark.ui.enabled": "false",
            # Hadoop settings reach the server's HiveConf; spark-submit drops bare hive.* keys.
            **{f"spark.hadoop.{k}": v for k, v in server.items()}})
        try:
            catalog.open_metastore(spark, cfg)
            notes, opened = _update(spark, cfg)
            # Without the lakehouse part, the next run must not take the catalog as done.
            names, missing = catalog.register(spark, cfg, complete=not notes, opened=opened)
            if missing:
                notes.append(f"not registered yet (no run has written them): {', '.join(missing)}")
            jvm = spark._jvm
            jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
                spark._jsparkSession.sqlContext())
            if not _wait_listening(host, port):
                print(f"error: the SQL server did not listen on {host}:{port} within 120 s "
                      "(see the log above)", file=sys.stderr)
                return 1
            print(connect_text(cat, host, port, names, time.perf_counter() - t0), flush=True)
            for note in notes:
                print(f"  note: {note}", flush=True)
            _wait()
            print("stopping the SQL server", flush=True)
            return 0
        finally:
            try:
                spark.stop()
            except Exception:  # noqa: BLE001 - Ctrl-C may have stopped the JVM first
                pass


def _update(spark, cfg: Config) -> tuple[list[str], dict | None]:
    """The catalog's lakehouse part (objects table, comments) when no run holds the
    lakehouse, and the tables it opened (None: :func:`catalog.register` opens them);
    a note otherwise (the next registration does it)."""
    try:
        with lakehouse_lock(cfg.storage, "sql (catalog update)"):
            lake = Lakehouse(spark, cfg.storage.lakehouse, cfg.storage.delta_rs_options)
            _, opened = catalog.sync_lakehouse(spark, cfg, lake)
    except LakehouseBusy as exc:
        return [f"objects table and comments left as they are: {exc}"], None
    return [], opened


def _wait() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        pass
