"""Progress on stderr: a stage reports its start and end, and a heartbeat with Spark's
task progress while it runs long (issue: a slow run must not look hung)."""

from __future__ import annotations

import io
import logging
import re

import pytest

from jobs import progress
from jobs.summary import Summary, stage


@pytest.fixture
def lines():
    out = io.StringIO()
    progress.enable(out)
    yield lambda: [re.sub(r"^\[\s*[0-9.]+s\] ", "", line) for line in out.getvalue().splitlines()]
    progress.log.handlers.clear()
    progress.log.setLevel(logging.NOTSET)


def test_stage_reports_start_and_end_with_seconds(lines):
    summary = Summary.start("test")
    with stage(summary, "ingest"):
        progress.step("  read %d records", 12)
    assert lines()[0] == "ingest …"
    assert lines()[1] == "  read 12 records"
    assert re.fullmatch(r"ingest done in \d+\.\ds", lines()[2])
    assert summary.timings["ingest"] >= 0


def test_heartbeat_reports_spark_tasks_while_a_stage_runs(spark, lines):
    def slow(rows):
        import time
        time.sleep(1.5)
        return rows
    with progress.Heartbeat(spark, "gold", every=0.5):
        spark.sparkContext.parallelize(range(2), 2).mapPartitions(slow).count()
    beats = [line for line in lines() if line.startswith("  gold running for")]
    assert beats, lines()
    assert any(re.search(r"\(1 Spark stage, tasks [0-2]/2\)", b) for b in beats), beats


def test_nothing_is_printed_unless_enabled(capsys):
    progress.log.handlers.clear()
    with stage(Summary.start("test"), "gold"):
        pass
    assert capsys.readouterr().err == ""
