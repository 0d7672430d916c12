"""Two runs at once (issue 5): two backfills over overlapping ranges, started together on
one lakehouse through the real command line. One runs; the other stops at once with
exit code 3 and a message naming the run that holds the lakehouse, having read and
written nothing. Run again, it completes, and gold equals one backfill over the union
of both ranges. (The Airflow DAGs keep their runs apart by configuration, see
tests/test_dags.py::test_spark_runs_never_overlap_by_configuration.)
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import run
from jobs.config import load_config
from jobs.lock import LOCK_FILE, LakehouseBusy, exclusive
from jobs.tables import GROUP_DATETIME, Lakehouse
from tests.helpers import CLI_STORAGE_YAML, ROOT, generated_world

START = dt.date(2016, 3, 26)
RANGES = [(START, START + dt.timedelta(days=2)), (START + dt.timedelta(days=1), START + dt.timedelta(days=3))]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generated_world(tmp_path_factory.mktemp("concurrency"), start=START, days=4, devices=10,
                           seed=5, storage=CLI_STORAGE_YAML)


def _backfill(world: Path, lake: Path, start: dt.date, end: dt.date) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs", "backfill", "--from", str(start), "--to", str(end),
         "--conf", str(world / "conf"), "--landing", str(world / "landing"), "--lakehouse", str(lake)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _gold(spark, lake: Path) -> list:
    return sorted((tuple(r) for r in Lakehouse(spark, str(lake)).read(GROUP_DATETIME).collect()), key=repr)


@pytest.fixture(scope="module")
def raced(world):
    lake = world / "lake"
    procs = [_backfill(world, lake, *r) for r in RANGES]
    results = []
    for p, r in zip(procs, RANGES):
        out, err = p.communicate(timeout=1200)
        results.append({"range": r, "code": p.returncode, "stdout": out, "stderr": err})
    return lake, results


@pytest.mark.heavy
def test_one_runs_and_the_other_stops_cleanly_naming_the_holder(raced):
    _, results = raced
    codes = sorted(r["code"] for r in results)
    assert codes == [0, 3], [(r["code"], r["stderr"][-2000:]) for r in results]
    winner = next(r for r in results if r["code"] == 0)
    loser = next(r for r in results if r["code"] == 3)
    (a, b) = winner["range"]
    assert "is busy" in loser["stderr"]
    assert f"backfill --from {a} --to {b}" in loser["stderr"]  # the holder, by its command
    assert "Nothing was done" in loser["stderr"]
    assert "Traceback" not in loser["stderr"]


@pytest.mark.heavy
def test_the_stopped_run_completes_when_run_again_and_gold_is_right(spark, world, raced):
    lake, results = raced
    loser = next(r for r in results if r["code"] == 3)
    again = _backfill(world, lake, *loser["range"])
    out, err = again.communicate(timeout=1200)
    assert again.returncode == 0, err[-3000:]
    clean = world / "lake-clean"
    cfg = load_config(world / "conf").with_storage(str(world / "landing"), str(clean))
    run.backfill(spark, cfg, RANGES[0][0], RANGES[1][1])
    assert _gold(spark, lake) == _gold(spark, clean) != []


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    """flock: the kernel drops the lock with the process, kill -9 included."""
    lake = tmp_path / "lake"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jobs.lock import exclusive\n"
         "with exclusive(sys.argv[1], 'holder'):\n    print('held', flush=True); time.sleep(600)", str(lake)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LakehouseBusy, match=r"run `holder` \(pid \d+"):
            with exclusive(str(lake), "second"):
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with exclusive(str(lake), "third"):  # no stale lock after kill -9
        assert "third" in (lake / LOCK_FILE).read_text()
