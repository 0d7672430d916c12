"""SPEC §11 command line: bad config or a missing landing folder stops before any write,
with a message that names the problem."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import OBJECTS_YAML, ROOT, write_conf



def _jobs(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.mark.parametrize("objects, message", [
    (OBJECTS_YAML.replace("Europe/Berlin", "Europe/Atlantis"), "unknown time zone 'Europe/Atlantis'"),
    (OBJECTS_YAML.replace("id: b-1", "id: s-3"), "sensor 's-3' is in two zones"),
])
def test_bad_config_stops_before_any_write(tmp_path, objects, message):
    conf = write_conf(tmp_path / "conf", objects=objects)
    (tmp_path / "landing").mkdir()
    out = _jobs("nightly", "--date", "2016-02-01", "--conf", str(conf),
                "--landing", str(tmp_path / "landing"), "--lakehouse", str(tmp_path / "lake"))
    assert out.returncode == 2
    assert message in out.stderr and "objects.yaml" in out.stderr
    assert not (tmp_path / "lake").exists()


def test_missing_landing_and_unknown_mall_stop_before_any_write(tmp_path):
    conf = write_conf(tmp_path / "conf")
    out = _jobs("backfill", "--from", "2016-02-01", "--to", "2016-02-02", "--conf", str(conf),
                "--landing", str(tmp_path / "nowhere"), "--lakehouse", str(tmp_path / "lake"))
    assert out.returncode == 2
    assert f"landing folder {tmp_path / 'nowhere'} does not exist" in out.stderr
    assert not (tmp_path / "lake").exists()
    assert "s] starting Spark (" in out.stderr  # progress, on stderr

    (tmp_path / "landing").mkdir()
    out = _jobs("backfill", "--from", "2016-02-01", "--to", "2016-02-02", "--malls", "1,99",
                "--conf", str(conf), "--landing", str(tmp_path / "landing"),
                "--lakehouse", str(tmp_path / "lake"), "--quiet")
    assert out.returncode == 2
    assert "--malls: unknown mall id(s) 99" in out.stderr
    assert not (tmp_path / "lake").exists()
    assert "starting Spark" not in out.stderr  # --quiet: no progress


def test_bad_date_is_a_usage_error():
    out = _jobs("nightly", "--date", "2016-02-30")
    assert out.returncode == 2
    assert "expected a date YYYY-MM-DD, got '2016-02-30'" in out.stderr


def test_a_bucket_that_does_not_exist_stops_the_run_before_spark_with_one_line(tmp_path, s3_server):
    conf = write_conf(tmp_path / "conf")
    (conf / "storage.yaml").write_text("spark:\n  conf:\n" + "".join(
        f"    {k}: {v}\n" for k, v in s3_server.spark_conf().items()))
    (tmp_path / "landing").mkdir()
    out = _jobs("nightly", "--date", "2016-02-01", "--conf", str(conf), "--landing",
                str(tmp_path / "landing"), "--lakehouse", "s3a://no-such-bucket/lake", "--quiet")
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1] == (
        "config error: --lakehouse s3a://no-such-bucket/lake: the bucket 'no-such-bucket' does "
        f"not exist at {s3_server.endpoint}")
    assert "Traceback" not in out.stderr
    assert "starting Spark" not in out.stdout + out.stderr


def test_a_busy_lakehouse_is_reported_before_spark_starts(tmp_path):
    from jobs.lock import exclusive

    conf = write_conf(tmp_path / "conf")
    (tmp_path / "landing").mkdir()
    (tmp_path / "lake").mkdir()
    with exclusive(str(tmp_path / "lake"), "backfill --from 2016-01-04 --to 2016-01-10"):
        out = _jobs("nightly", "--date", "2016-02-01", "--conf", str(conf), "--landing",
                    str(tmp_path / "landing"), "--lakehouse", str(tmp_path / "lake"))
    assert out.returncode == 3
    assert "is busy: run `backfill --from 2016-01-04 --to 2016-01-10` (pid " in out.stderr
    assert "starting Spark" not in out.stderr
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["_footfall.lock"]
