"""The BI catalog (jobs/catalog.py, jobs/comments.py) on the session's Spark, whose
in-memory catalog takes the same statements a Hive metastore does; the SQL endpoint
itself, with real clients, is tests/test_sql_endpoint.py (heavy).

The gold is tests/report_world.py's hand-made one, so the views' numbers are known."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from jobs import catalog, comments
from jobs.config import ConfigError, load_config
from jobs.sqlserver import SqlServerError, check_exposure
from jobs.tables import SCHEMAS
from jobs.tables import Lakehouse
from reports.params import parse, resolve_objects
from reports.query import Gold, report
from tests.helpers import write_conf
from tests.report_world import make_world


def with_catalog(cfg, **changes):
    st = cfg.storage
    return dataclasses.replace(cfg, storage=dataclasses.replace(
        st, catalog=dataclasses.replace(st.catalog, **changes)))


@pytest.fixture(scope="module")
def registered(spark, tmp_path_factory):
    """report_world's gold registered as database ``bi_test`` (twice: idempotent)."""
    conf, lake = make_world(tmp_path_factory.mktemp("catalog-world"))
    cfg = with_catalog(load_config(conf).with_storage(lakehouse=str(lake)), database="bi_test")
    first, _ = catalog.sync_lakehouse(spark, cfg, Lakehouse(spark, str(lake)))
    catalog.register(spark, cfg)
    second, opened = catalog.sync_lakehouse(spark, cfg, Lakehouse(spark, str(lake)))
    names = catalog.register(spark, cfg, opened=opened)
    yield cfg, lake, first, second, names
    spark.sql("DROP DATABASE IF EXISTS bi_test CASCADE")


def test_statements_register_gold_silver_and_objects_by_location(cfg):
    assert catalog.table_statements(cfg.storage.catalog, "/lake/") == [
        "CREATE DATABASE IF NOT EXISTS footfall COMMENT 'Footfall analytics: WiFi footfall per "
        "mall, floor and zone (docs/bi.md)'",
        "CREATE TABLE IF NOT EXISTS footfall.group_datetime USING DELTA LOCATION '/lake/gold/group_datetime'",
        "CREATE TABLE IF NOT EXISTS footfall.sessions USING DELTA LOCATION '/lake/silver/sessions'",
        "CREATE TABLE IF NOT EXISTS footfall.client_days USING DELTA LOCATION '/lake/silver/client_days'",
        "CREATE TABLE IF NOT EXISTS footfall.objects USING DELTA LOCATION '/lake/gold/objects'",
    ]


def test_raw_tables_only_when_a_setting_puts_them_in(cfg):
    assert [t.name for t in catalog.tables(cfg.storage.catalog)] == [
        "group_datetime", "sessions", "client_days", "objects"]
    raw = with_catalog(cfg, include_raw=True).storage.catalog
    assert [t.name for t in catalog.tables(raw)][-2:] == ["probes", "quarantine"]


def test_every_column_of_every_table_has_a_comment():
    for doc in comments.TABLES + comments.RAW_TABLES:
        assert list(doc.columns) == SCHEMAS[doc.path].fieldNames(), doc.name
        assert all(doc.columns.values()) and doc.comment


def test_the_catalog_holds_each_table_once_after_two_registrations(spark, registered):
    cfg, lake, first, second, (names, missing) = registered
    # report_world has gold only: the silver tables wait for a run to write them.
    assert names == ["group_datetime", "objects", "report", "daily_mall_summary"]
    assert missing == ["sessions", "client_days"]
    shown = sorted(r.tableName for r in spark.sql("SHOW TABLES IN bi_test").collect())
    assert shown == sorted(names)
    # Written once: the second registration found objects and comments as they should be.
    assert first == ["objects updated", "comments of group_datetime, objects updated"]
    assert second == []


def test_describe_shows_the_comments(spark, registered):
    described = {r.col_name: r.comment for r in spark.sql("DESCRIBE TABLE bi_test.group_datetime").collect()
                 if r.col_name and not r.col_name.startswith("#")}
    assert described == comments.GOLD.columns
    view = {r.col_name: r.comment for r in spark.sql("DESCRIBE TABLE bi_test.report").collect()}
    assert view == comments.REPORT_VIEW.columns
    detail = spark.sql("DESCRIBE DETAIL bi_test.group_datetime").first()
    assert detail.description == comments.GOLD.comment


def test_objects_is_the_tree_of_the_config(spark, registered):
    rows = {r.object_id: tuple(r) for r in spark.sql("SELECT * FROM bi_test.objects").collect()}
    assert rows[1] == (1, "mall", "Mega", 1, "Mega", None, None, None, None, None, "Europe/Moscow")
    assert rows[12] == (12, "floor", "First floor", 1, "Mega", 12, "First floor", None, None, 1, "Europe/Moscow")
    assert rows[211] == (211, "zone", "Entrance", 2, "Alexa", 21, "Ground floor", 211, "Entrance", 21,
                         "Europe/Berlin")
    assert sorted(rows) == [1, 2, 11, 12, 21, 111, 112, 121, 211]


@pytest.mark.parametrize("query", [
    "objects=11,12&interval=daily&from=2016-02-01&to=2016-02-03",
    "objects=1,2&interval=daily&from=2016-02-01&to=2016-02-03",
    "objects=1&interval=daily&from=2016-02-01&to=2016-02-03&bounce_threshold=10 minute"
    "&engagement_threshold=30 minute&comeback=1 year",
    "objects=2&interval=hourly&from=2016-10-30&to=2016-10-30&comeback=10 year",
    "objects=1&interval=weekly&from=2016-02-01&to=2016-02-07&comeback=3 month",
])
def test_the_report_view_gives_the_apis_numbers(spark, registered, query):
    cfg, lake, *_ = registered
    request = parse({k: [v] for k, v in (p.split("=", 1) for p in query.split("&"))})
    api = report(Gold(str(lake), refresh_seconds=0), cfg, resolve_objects(cfg, request), request)
    metrics = ("count_session", "count_client", "avg_session_duration", "count_comeback_client",
               "sum_session_duration")
    api_rows = {(int(r["object_id"]), r["datetime"], r["user_type"]): {m: r[m] for m in metrics}
                for r in api.frame.to_dicts()}
    comeback = dict(p.split("=", 1) for p in query.split("&")).get("comeback", "2 week")
    sql = spark.sql(f"""
        SELECT object_id, datetime, user_type, {', '.join(metrics)}
        FROM bi_test.report
        WHERE object_id IN ({','.join(map(str, request.objects))}) AND interval = '{request.interval}'
          AND bucket_date BETWEEN DATE'{request.start}' AND DATE'{request.end}'
          AND bounce_threshold = {request.bounce} AND engagement_threshold = {request.engagement}
          AND comeback = '{comeback}'""").collect()
    sql_rows = {(r.object_id, r.datetime, r.user_type): {m: r[m] for m in metrics} for r in sql}
    # Each view row is the API's; each API row with sessions is a view row (the API's
    # other rows are buckets gold holds no row for, answered with zeros).
    assert sql_rows and {k: api_rows.get(k) for k in sql_rows} == sql_rows
    assert {k for k, v in api_rows.items() if v["count_session"]} <= sql_rows.keys()


def test_daily_mall_summary_at_the_default_thresholds(spark, registered):
    got = [tuple(r) for r in spark.sql(
        "SELECT * FROM bi_test.daily_mall_summary ORDER BY mall_id, date").collect()]
    # report_world: user type k of a bucket with base B has count_session B + 10k, clients
    # B + 10k - 1, average B + 10k + 5, 2-week comeback B + 10k + 100, GSH gsh + k
    # (k: all 0, bounced 1, employee 2, engaged 3, half engaged 4, passer 5, visitor 6).
    def day(mall, name, date, b, gsh):
        return (mall, name, date, b - 1, b + 59, b + 49, b + 19, b + 9, b + 39, b + 29, b + 60,
                b + 65, round(gsh + 6, 2), b + 160)
    assert got == [
        day(1, "Mega", dt.date(2016, 2, 1), 20, 81725.23),
        day(1, "Mega", dt.date(2016, 2, 3), 40, 12.5),
        day(2, "Alexa", dt.date(2016, 2, 1), 960, 2.5),
        day(2, "Alexa", dt.date(2016, 10, 30), 950, 7.77),
    ]


@pytest.mark.parametrize("host, conf, refused", [
    ("127.0.0.1", {}, False),
    ("localhost", {}, False),
    ("::1", {}, False),
    ("127.0.0.2", {}, False),
    ("0.0.0.0", {}, True),
    ("10.1.2.3", {"hive.server2.authentication": "NONE"}, True),
    ("10.1.2.3", {"hive.server2.authentication": "nosasl"}, True),
    ("10.1.2.3", {"hive.server2.authentication": "LDAP"}, False),
    ("sql.example.internal", {"hive.server2.authentication": "KERBEROS"}, False),
])
def test_beyond_loopback_only_with_authentication(host, conf, refused):
    if refused:
        with pytest.raises(SqlServerError, match="hive.server2.authentication"):
            check_exposure(host, conf)
    else:
        check_exposure(host, conf)


def test_catalog_settings_are_validated(tmp_path):
    conf = write_conf(tmp_path / "conf")
    (conf / "storage.yaml").write_text("catalog:\n  database: 'foot fall'\n  servr: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    assert "storage.yaml" in str(err.value) and "catalog.database" in str(err.value)
    assert "catalog: unknown key 'servr'" in str(err.value)


def test_the_embedded_metastore_sits_beside_the_lakehouse(tmp_path):
    conf = write_conf(tmp_path / "conf")
    cfg = load_config(conf)
    assert cfg.storage.catalog.metastore == str(tmp_path / "data" / "metastore")
    assert cfg.storage.catalog.embedded
    moved = cfg.with_storage(lakehouse=str(tmp_path / "elsewhere" / "lake"))
    assert moved.storage.catalog.metastore == str(tmp_path / "elsewhere" / "metastore")
    # A lakehouse on an object store: one embedded metastore per lakehouse, in the project.
    for lake, folder in (("s3a://footfall/lake", "s3a-footfall-lake"), ("s3a://footfall/other", "s3a-footfall-other")):
        assert (cfg.with_storage(lakehouse=lake).storage.catalog.metastore
                == str(tmp_path / "data" / "metastores" / folder))
    (conf / "storage.yaml").write_text("catalog:\n  metastore: thrift://hms.internal:9083\n")
    remote = load_config(conf).with_storage(lakehouse=str(tmp_path / "x"))
    assert remote.storage.catalog.metastore == "thrift://hms.internal:9083"
    assert not remote.storage.catalog.embedded


def test_a_moved_lakehouse_is_registered_at_its_new_place(spark, registered, tmp_path):
    import shutil
    cfg, lake, *_ = registered
    moved = tmp_path / "moved-lake"
    shutil.copytree(lake, moved)
    catalog.register(spark, cfg.with_storage(lakehouse=str(moved)))
    locations = {r.col_name: r.data_type for r in
                 spark.sql("DESCRIBE TABLE EXTENDED bi_test.group_datetime").collect()}
    assert locations["Location"].removeprefix("file:") == f"{moved}/gold/group_datetime"
    assert sorted(r.tableName for r in spark.sql("SHOW TABLES IN bi_test").collect()) == [
        "daily_mall_summary", "group_datetime", "objects", "report"]


def test_sql_refuses_a_public_address_without_authentication(conf_dir):
    import subprocess
    import sys
    from tests.helpers import ROOT
    r = subprocess.run([sys.executable, "-m", "jobs", "sql", "--conf", str(conf_dir), "--host", "0.0.0.0"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert "refusing to serve the lakehouse on 0.0.0.0" in r.stderr
    assert "hive.server2.authentication" in r.stderr
