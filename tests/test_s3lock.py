"""The run lock on S3 (jobs/s3lock.py through jobs.lock.exclusive), against moto's S3
server on loopback: one holder at a time, named to the run it stops; released on exit;
renewed while held; a killed holder's lease ends and the next run takes over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from jobs.lock import LOCK_FILE, LakehouseBusy, exclusive
from tests.helpers import ROOT


@pytest.fixture
def lake(s3_server, request):
    bucket = s3_server.bucket("locks")
    return f"{bucket}/{request.node.name.replace('_', '-')[:40]}/lakehouse"


def _object(s3_server, lake: str) -> dict | None:
    key = lake.split("/", 3)[3] + "/" + LOCK_FILE
    try:
        body = s3_server.client().get_object(Bucket="locks", Key=key)["Body"].read()
    except s3_server.client().exceptions.NoSuchKey:
        return None
    return json.loads(body)


def test_one_holder_at_a_time_named_to_the_other_and_released_on_exit(s3_server, lake):
    conf = s3_server.spark_conf()
    with exclusive(lake, "backfill --from 2016-01-04 --to 2016-01-05", spark_conf=conf):
        held = _object(s3_server, lake)
        assert held["command"] == "backfill --from 2016-01-04 --to 2016-01-05"
        assert held["pid"] == os.getpid()
        with pytest.raises(LakehouseBusy, match=r"busy: run `backfill --from 2016-01-04 --to "
                                                r"2016-01-05` \(pid \d+ on .*holds s3a://locks/"):
            with exclusive(lake, "nightly --date 2016-01-06", spark_conf=conf):
                pass
    assert _object(s3_server, lake) is None
    with exclusive(lake, "nightly --date 2016-01-06", spark_conf=conf):
        assert _object(s3_server, lake)["command"] == "nightly --date 2016-01-06"


def test_a_live_holder_renews_its_lease(s3_server, lake):
    conf = s3_server.spark_conf()
    with exclusive(lake, "long run", spark_conf=conf, lease_seconds=10):
        first = _object(s3_server, lake)["until"]
        time.sleep(12)  # past the first lease's end: only a renewal keeps it
        assert _object(s3_server, lake)["until"] > first
        with pytest.raises(LakehouseBusy, match="long run"):
            with exclusive(lake, "second", spark_conf=conf, lease_seconds=10):
                pass


def test_a_killed_holders_lease_ends_and_the_next_run_takes_over(s3_server, lake):
    conf = s3_server.spark_conf()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import json, sys, time\nfrom jobs.lock import exclusive\n"
         "with exclusive(sys.argv[1], 'doomed', spark_conf=json.loads(sys.argv[2]), lease_seconds=10):\n"
         "    print('held', flush=True); time.sleep(600)", lake, json.dumps(conf)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
    finally:
        holder.kill()  # SIGKILL: no cleanup, the lock object stays
        holder.wait()
        holder.stdout.close()
    assert _object(s3_server, lake)["command"] == "doomed"
    with pytest.raises(LakehouseBusy, match=r"run `doomed`.*lease ends at"):
        with exclusive(lake, "too early", spark_conf=conf):
            pass
    time.sleep(11)
    with exclusive(lake, "after the lease", spark_conf=conf):
        assert _object(s3_server, lake)["command"] == "after the lease"
    assert _object(s3_server, lake) is None
