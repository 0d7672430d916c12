"""Landing and lakehouse on S3 (issue 12), end to end against moto's S3 + DynamoDB server
on loopback, through the real command line: the same commands on a local lakehouse and on
S3 must leave the same tables, row for row.

On S3, one bad night is played: a backfill, and an overlapping one started meanwhile
(it stops with exit code 3 naming the holder; the first finishes); a nightly run killed
with SIGKILL before gold (its lock still held at once: the dead run's lease); its rerun
after the lease ends. Locally the same backfill and nightly run, once each (in this
process: the command line is the S3 side's to show). Then gold, the
sessions and the nightly quality check's counts read both lakehouses through delta-rs and
must agree. (The report API and the exports on S3: tests/test_objectstore.py.)
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from jobs import run
from jobs.config import load_config
from jobs.lock import LakehouseBusy, exclusive
from jobs.objectstore import delta_rs_options, delta_rs_uri
from jobs.quality import mall_sessions
from jobs.spec import GROUP_DATETIME, SESSIONS
from tests.helpers import CLI_STORAGE_YAML, ROOT, generated_world

pytestmark = pytest.mark.heavy
D1 = dt.date(2016, 3, 7)  # a Monday; four days: backfills of D1–D3, a nightly run of D4
D = [D1 + dt.timedelta(days=i) for i in range(4)]
LEASE = 10
RUN_COLUMNS = ["run_id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, s3_server):
    s3 = "".join(f"    {k}: {v}\n" for k, v in s3_server.spark_conf().items())
    root = generated_world(tmp_path_factory.mktemp("s3-world"), start=D1, days=len(D), devices=12,
                           seed=23, storage=CLI_STORAGE_YAML + s3 + f"run_lock:\n  lease_seconds: {LEASE}\n")
    s3_server.bucket("footfall")
    assert s3_server.upload(root / "landing", "footfall", "landing") > 0
    return root


def _jobs(world: Path, lake: str, landing: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "jobs", *args, "--conf", str(world / "conf"),
            "--landing", landing, "--lakehouse", lake]


def _backfill(world, lake, landing, start, end) -> list[str]:
    return _jobs(world, lake, landing, "backfill", "--from", str(start), "--to", str(end))


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _lock_held(s3_server, key: str) -> bool:
    return s3_server.client().list_objects_v2(Bucket="footfall", Prefix=key).get("KeyCount", 0) > 0


@pytest.fixture(scope="module")
def played(world, s3_server, spark):
    """Both lakehouses after their commands; what the S3 commands printed, by step."""
    local_lake, local_landing = str(world / "lake"), str(world / "landing")
    lake, landing = "s3a://footfall/lake", "s3a://footfall/landing"
    out: dict[str, subprocess.CompletedProcess | dict] = {}
    t0 = time.monotonic()
    local = load_config(world / "conf").with_storage(local_landing, local_lake)
    run.backfill(spark, local, D[0], D[2])
    run.nightly(spark, local, D[3])
    local_seconds = time.monotonic() - t0

    # The union backfill; a second, overlapping one starts once the union holds the lock
    # and must stop; the union finishes.
    t0 = time.monotonic()
    union = _start(_backfill(world, lake, landing, D[0], D[2]))
    deadline = time.monotonic() + 300
    while not _lock_held(s3_server, "lake/_footfall.lock") and union.poll() is None:
        assert time.monotonic() < deadline, "the backfill never took the lock"
        time.sleep(0.2)
    out["second"] = _run(_backfill(world, lake, landing, D[1], D[2]))
    out["union"] = {"rc": union.wait(timeout=900), "output": union.stdout.read()}
    union.stdout.close()

    # The nightly run, killed (SIGKILL, the whole process group) once it computes
    # sessions, before gold is written; its lease holds the lock until it ends.
    nightly = _jobs(world, lake, landing, "nightly", "--date", str(D[3]))
    doomed = _start(nightly)
    lines = []
    for line in doomed.stdout:
        lines.append(line)
        if any(m in line for m in ("bronze/probes: merged", "sessions …", "silver/sessions:")):
            os.killpg(doomed.pid, signal.SIGKILL)
            break
    doomed.wait()
    doomed.stdout.close()
    out["killed"] = {"rc": doomed.returncode, "output": "".join(lines)}
    # At once (a run's Spark start would outlast the short test lease): the lock itself.
    try:
        with exclusive(lake, "at once", spark_conf=s3_server.spark_conf(), lease_seconds=LEASE):
            out["at once"] = "taken"
    except LakehouseBusy as exc:
        out["at once"] = str(exc)
    time.sleep(LEASE + 1)
    out["rerun"] = _run(nightly)
    s3_seconds = time.monotonic() - t0
    print(f"\nlocal: backfill + nightly {local_seconds:.0f} s; S3: the whole night {s3_seconds:.0f} s")
    return {"local": local_lake, "s3": lake, "out": out}


def _table(lake: str, table: str, options: dict) -> pl.DataFrame:
    df = pl.from_arrow(DeltaTable(f"{delta_rs_uri(lake)}/{table}", storage_options=options)
                       .to_pyarrow_table())
    df = df.drop([c for c in RUN_COLUMNS if c in df.columns])
    return df.sort(df.columns)


def _options(world) -> dict:
    return delta_rs_options(load_config(world / "conf").storage.spark_conf)


def test_every_command_on_s3_ends_as_expected(played):
    out = played["out"]
    assert out["rerun"].returncode == 0, f"{out['rerun'].stdout}\n{out['rerun'].stderr}"
    assert out["union"]["rc"] == 0, out["union"]["output"]
    assert out["killed"]["rc"] == -signal.SIGKILL, out["killed"]["output"]


def test_the_overlapping_backfill_stops_with_3_naming_the_holder(played):
    second = played["out"]["second"]
    assert second.returncode == 3, second.stderr
    assert f"holds s3a://footfall/lake/_footfall.lock" in second.stderr
    assert f"run `backfill --from {D[0]} --to {D[2]} --malls" in second.stderr


def test_a_killed_runs_lease_holds_until_it_ends_then_the_rerun_completes(played):
    at_once = played["out"]["at once"]
    assert f"run `nightly --date {D[3]}`" in at_once
    assert "lease ends at" in at_once
    assert played["out"]["rerun"].returncode == 0


@pytest.mark.parametrize("table", [GROUP_DATETIME, SESSIONS])
def test_s3_tables_equal_the_local_ones_row_for_row(played, world, table):
    local = _table(played["local"], table, {})
    on_s3 = _table(played["s3"], table, _options(world))
    assert local.height > 0
    assert on_s3.equals(local)


def test_the_quality_check_reads_the_same_counts(played, world):
    days = [D[3], D[3] - dt.timedelta(days=7), D[0]]
    assert mall_sessions(played["s3"], days, _options(world)) == mall_sessions(played["local"], days)
    assert sum(mall_sessions(played["local"], days)[D[0]].values()) > 0
