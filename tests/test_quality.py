"""The nightly data-quality check (jobs/quality.py), conf/airflow.yaml and the backfill
DAG's parameter check (jobs/orchestration.py), the spark-submit entry point."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.config import ConfigError
from jobs.entrypoint import with_master
from jobs.orchestration import Quality, backfill_args, load_airflow_settings
from jobs.quality import check, quarantined_share
from tests.helpers import ROOT, write_conf

D = dt.date(2016, 2, 29)  # a Monday
LIMITS = Quality(max_quarantined_share=0.05, max_session_drop=0.5, min_baseline_sessions=100)


def _summary(read: int, **rejected: int) -> dict:
    return {"records_read": read, "rejected": rejected}


def test_a_normal_night_passes():
    assert check(_summary(1000, malformed=10), {1: 900}, {1: 1000}, D, LIMITS) == []


def test_the_quarantined_share_at_and_over_the_limit():
    assert check(_summary(1000, malformed=30, invalid_mac=20), {}, {}, D, LIMITS) == []   # 5.0 %
    [problem] = check(_summary(1000, malformed=31, invalid_mac=20), {}, {}, D, LIMITS)    # 5.1 %
    assert problem.startswith("51 of the 1000 records read (5.1%) were quarantined "
                              "(invalid_mac 20, malformed 31); the limit is 5.0%")
    assert "quality.max_quarantined_share" in problem
    assert quarantined_share(_summary(0)) == (0, 0, 0.0)


def test_a_skipped_landing_file_fails_the_night():
    summary = {**_summary(1000), "files_skipped": ["a/x.pcap", "b.txt", "c.xml", "d.bin"]}
    [problem] = check(summary, {}, {}, D, LIMITS)
    assert problem.startswith("4 landing files of unknown format were skipped, e.g. a/x.pcap, "
                              "b.txt, c.xml: give them a feed in conf/feeds.yaml")
    assert check({**_summary(1000), "files_skipped": []}, {}, {}, D, LIMITS) == []


def test_the_session_drop_against_the_same_weekday_a_week_earlier():
    assert check(_summary(0), {1: 500}, {1: 1000}, D, LIMITS) == []          # exactly 50 %
    [problem] = check(_summary(0), {1: 499, 2: 10}, {1: 1000, 2: 10}, D, LIMITS)
    assert problem.startswith("mall 1: 499 sessions on 2016-02-29 (Monday) against 1000 on "
                              "2016-02-22, a drop of 50%; the limit is 50%")
    # A mall with no sessions at all on D (a sensor outage) fails …
    assert check(_summary(0), {}, {1: 1000}, D, LIMITS)[0].startswith("mall 1: 0 sessions")
    # … one with too small a baseline, or none, is not judged.
    assert check(_summary(0), {1: 0}, {1: 99}, D, LIMITS) == []
    assert check(_summary(0), {1: 0}, {}, D, LIMITS) == []


def test_airflow_yaml_defaults_and_errors(tmp_path):
    s = load_airflow_settings(tmp_path)
    assert (s.cron, s.timezone, s.quality) == ("0 3 * * *", "Europe/Moscow", Quality())
    assert s.runs_dir == str(tmp_path.parent / "data" / "runs")
    (tmp_path / "airflow.yaml").write_text("schedule: {time: '25:00'}\n")
    with pytest.raises(ConfigError, match=r"schedule.time: '25:00' is not a time of day"):
        load_airflow_settings(tmp_path)
    (tmp_path / "airflow.yaml").write_text("schedule: {timezone: Mars/Olympus}\n")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        load_airflow_settings(tmp_path)
    (tmp_path / "airflow.yaml").write_text("quality: {max_session_drop: 1.5}\n")
    with pytest.raises(ConfigError, match=r"max_session_drop: 1.5 is out of range"):
        load_airflow_settings(tmp_path)


def test_the_repo_airflow_yaml_is_valid():
    s = load_airflow_settings(ROOT / "conf")
    assert s.schedule_time == dt.time(3, 0) and s.pool == "footfall_lakehouse"


def test_backfill_params_are_checked_against_the_config(tmp_path):
    conf = str(write_conf(tmp_path / "conf"))
    assert backfill_args({"from": "2016-02-01", "to": "2016-02-03", "malls": ""}, conf) == [
        "backfill", "--from", "2016-02-01", "--to", "2016-02-03", "--conf", conf]
    assert backfill_args({"from": "2016-02-01", "to": "2016-02-01", "malls": " 2, 1"}, conf)[-2:] == [
        "--malls", "1,2"]
    for params, message in [
        ({"to": "2016-02-01"}, "param 'from' is required"),
        ({"from": "2016-02-31", "to": "2016-03-01"}, "param 'from': expected a date YYYY-MM-DD"),
        ({"from": "2016-02-03", "to": "2016-02-01"}, "param 'from' (2016-02-03) is after 'to' (2016-02-01)"),
        ({"from": "2016-02-01", "to": "2016-02-01", "malls": "1;rm"}, "param 'malls': expected mall ids"),
        ({"from": "2016-02-01", "to": "2016-02-01", "malls": "1,99"}, "unknown mall id(s) 99; the config has 1, 2"),
    ]:
        with pytest.raises(ValueError) as err:
            backfill_args(params, conf)
        assert message in str(err.value)


def test_the_entry_point_passes_spark_submits_master_on():
    assert with_master(["nightly", "--date", "2016-02-01"], "spark://h:7077") == [
        "nightly", "--date", "2016-02-01", "--master", "spark://h:7077"]
    assert with_master(["backfill", "--master", "yarn"], "local[*]") == ["backfill", "--master", "yarn"]
    assert with_master(["generate", "--days", "1"], "local[*]") == ["generate", "--days", "1"]
    assert with_master(["nightly"], None) == ["nightly"]
