"""`footfall sql` with real clients (heavy): the Spark Thrift Server over a small
backfilled world, queried with PyHive and with the beeline that ships with pyspark; its
numbers against the report API's; the catalog after several runs; docs/bi.md's Python
snippets, executed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyspark
import pytest
from fastapi.testclient import TestClient

from jobs import comments
from reports.api import create_app
from reports.tokens import digest
from benchmarks.common import free_port
from tests.helpers import ROOT, generated_world

pytestmark = pytest.mark.heavy

START, DAYS = dt.date(2016, 3, 26), 3  # Berlin's DST start on the Sunday
END = START + dt.timedelta(days=DAYS - 1)
BEELINE = Path(pyspark.__file__).parent / "bin" / "beeline"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def documented_tables() -> list[str]:
    """The catalog names of docs/bi.md's table in "What you get", but those that need
    ``include_raw``."""
    text = (ROOT / "docs" / "bi.md").read_text().split("## What you get", 1)[1].split("\n#", 1)[0]
    return sorted(m.group(1) for m in re.finditer(r"^\| `(\w+)`(?! \(only with)", text, flags=re.M))


def jobs(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=600, **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A generated world, backfilled and then run nightly twice by the command line."""
    root = generated_world(tmp_path_factory.mktemp("sql-world"), start=START, days=DAYS,
                           devices=12, seed=3, storage="landing: landing\nlakehouse: lake\n")
    conf = root / "conf"
    runs = [jobs("backfill", "--from", str(START), "--to", str(END), "--conf", str(conf))]
    marker = root / "metastore" / "footfall-catalog.sha256"
    assert marker.exists(), runs[0].stderr[-3000:]
    marker.unlink()  # the next run registers everything again, over what is there
    runs.append(jobs("nightly", "--date", str(END), "--conf", str(conf)))
    runs.append(jobs("nightly", "--date", str(END), "--conf", str(conf)))
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    (conf / "tokens.yaml").write_text("tokens:\n  - name: t\n    sha256: %s\n    malls: [215, 1290]\n"
                                      % digest("tok"))
    return root, conf, runs


@pytest.fixture(scope="module")
def server(world):
    root, conf, _ = world
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "jobs", "sql", "--conf", str(conf), "--port", str(port)],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, t0 = [], time.monotonic()
    for line in proc.stdout:  # until it says it is ready (or ends)
        out.append(line)
        if line.startswith("  DBeaver"):
            break
    assert proc.poll() is None, "".join(out)[-3000:]
    ready = time.monotonic() - t0
    yield port, "".join(out), ready, proc
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest[-3000:]
    assert "stopping the SQL server" in rest


def cursor(port: int):
    from pyhive import hive
    return hive.connect(host="127.0.0.1", port=port, database="footfall", username="analyst").cursor()


def test_runs_register_the_catalog_and_a_second_run_finds_it_there(world):
    root, conf, (backfill, again, nothing) = world
    assert "tables and views registered" in backfill.stderr
    assert "6 tables and views registered" in again.stderr  # registered over itself
    assert "tables and views registered" not in nothing.stderr  # the fingerprint says it is there


def test_the_server_says_how_to_connect(server):
    port, out, ready, _ = server
    assert f"jdbc:hive2://127.0.0.1:{port}/footfall" in out
    assert f"hive://127.0.0.1:{port}/footfall" in out
    print(f"\nSQL endpoint ready in {ready:.1f}s\n{out}")


def test_show_tables_lists_exactly_the_documented_tables(server):
    cur = cursor(server[0])
    cur.execute("SHOW TABLES IN footfall")
    assert sorted(r[1] for r in cur.fetchall()) == documented_tables() == [
        "client_days", "daily_mall_summary", "group_datetime", "objects", "report", "sessions"]


def test_describe_shows_the_comments(server):
    cur = cursor(server[0])
    for table, doc in [("group_datetime", comments.GOLD.columns), ("sessions", comments.SESSIONS_DOC.columns),
                       ("report", comments.REPORT_VIEW.columns)]:
        cur.execute(f"DESCRIBE {table}")
        got = {r[0]: r[2] for r in cur.fetchall() if r[0] and not r[0].startswith("#")}
        assert got == doc, table


REQUESTS = [  # (object type, interval, b, e, comeback)
    ("mall", "daily", 5, 20, "2 week"),
    ("zone", "hourly", 2, 45, "10 year"),
    ("floor", "weekly", 15, 15, "3 month"),
    ("mall", "weekend", 10, 30, "1 month"),
]


def api_rows(conf: Path, lake: Path, ids, interval, b, e, comeback) -> dict:
    with TestClient(create_app(conf, str(lake), warm=False)) as c:
        r = c.get(f"/reports/group_datetime?objects={','.join(map(str, ids))}&interval={interval}"
                  f"&from={START}&to={END}&comeback={comeback}&bounce_threshold={b}+minute"
                  f"&engagement_threshold={e}+minute", headers={"x-token": "tok"})
    assert r.status_code == 200, r.text
    return {(int(o), row["datetime"], t): {m: row[m] for m in METRICS}
            for o, types in r.json().items() for t, rows in types.items() for row in rows}


def assert_same_numbers(sql: dict, api: dict) -> None:
    """Every row of the view is the API's row for its key; every API row with sessions is
    a row of the view (the API's other rows are buckets gold has no row for: zeros)."""
    assert sql and {k: api.get(k) for k in sql} == sql
    assert {k for k, v in api.items() if v["count_session"]} <= sql.keys()


def first_day(interval: str) -> dt.date:
    """The first day of the bucket that holds START: the API answers every bucket that
    overlaps the range, whole (docs/bi.md)."""
    if interval == "weekly":
        return START - dt.timedelta(days=START.weekday())
    return START.replace(day=1) if interval == "monthly" else START


def report_sql(ids, interval, b, e, comeback) -> str:
    return (f"SELECT object_id, datetime, user_type, count_session, count_client, avg_session_duration, "
            f"count_comeback_client, sum_session_duration FROM footfall.report "
            f"WHERE object_id IN ({','.join(map(str, ids))}) AND interval = '{interval}' "
            f"AND bucket_date BETWEEN '{first_day(interval)}' AND '{END}' AND bounce_threshold = {b} "
            f"AND engagement_threshold = {e} AND comeback = '{comeback}'")


METRICS = ("count_session", "count_client", "avg_session_duration", "count_comeback_client",
           "sum_session_duration")


def ids_of(conf: Path, otype: str) -> list[int]:
    from jobs.config import load_config
    return [o.id for o in load_config(conf).objects if o.type == otype]


@pytest.mark.parametrize("otype, interval, b, e, comeback", REQUESTS)
def test_pyhive_numbers_equal_the_apis(world, server, otype, interval, b, e, comeback):
    root, conf, _ = world
    ids = ids_of(conf, otype)
    want = api_rows(conf, root / "lake", ids, interval, b, e, comeback)
    cur = cursor(server[0])
    cur.execute(report_sql(ids, interval, b, e, comeback))
    assert_same_numbers({(r[0], r[1], r[2]): dict(zip(METRICS, r[3:])) for r in cur.fetchall()}, want)


def test_beeline_numbers_equal_the_apis(world, server):
    root, conf, _ = world
    otype, interval, b, e, comeback = REQUESTS[0]
    ids = ids_of(conf, otype)
    want = api_rows(conf, root / "lake", ids, interval, b, e, comeback)
    r = subprocess.run([str(BEELINE), "-u", f"jdbc:hive2://127.0.0.1:{server[0]}/footfall", "-n", "analyst",
                        "--silent=true", "--outputformat=csv2", "-e", report_sql(ids, interval, b, e, comeback)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    # beeline echoes its prompt ("0: jdbc:hive2://…> ") before the header and after the rows.
    text = r.stdout[r.stdout.index("object_id,"):]
    rows = list(csv.DictReader(io.StringIO("\n".join(
        line for line in text.splitlines() if line and not re.match(r"\d+: jdbc:", line)))))
    got = {(int(x["object_id"]), x["datetime"], x["user_type"]):
           {m: (float(x[m]) if m == "sum_session_duration" else int(x[m])) for m in METRICS} for x in rows}
    assert_same_numbers(got, want)


def test_a_run_while_the_server_holds_the_metastore_succeeds(world, server):
    root, conf, _ = world
    r = jobs("nightly", "--date", str(END), "--conf", str(conf))
    assert r.returncode == 0, r.stderr[-3000:]


def test_a_second_server_on_the_same_metastore_stops_naming_the_first(world, server):
    root, conf, _ = world
    r = jobs("sql", "--conf", str(conf), "--port", str(free_port()))
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"sql --host 127.0.0.1 --port {server[0]}" in r.stderr


def python_snippets() -> list[str]:
    text = (ROOT / "docs" / "bi.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_python_snippets_of_bi_md_run(world, server, tmp_path):
    root, *_ = world
    snippets = python_snippets()
    assert len(snippets) == 3
    for code in snippets:
        code = code.replace("data/lakehouse", str(root / "lake")).replace("10000", str(server[0]))
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=tmp_path, timeout=180)
        assert r.returncode == 0 and r.stdout.strip(), code + r.stderr[-3000:]
