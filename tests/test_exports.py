"""Scheduled exports: relative ranges, exports.yaml checks, every format written for a
small world (the PNG a valid image of the expected size), reruns that overwrite the same
day's files and nothing else, and the footfall_exports DAG."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from jobs.config import ConfigError, load_config
from reports import exports
from reports.__main__ import main
from reports.params import parse, resolve_objects
from reports.query import Gold, report
from tests.helpers import ROOT
from tests.report_world import make_world

D = dt.date


@pytest.mark.parametrize("text, date, expected", [
    ("last 7 days", D(2016, 2, 29), (D(2016, 2, 23), D(2016, 2, 29))),
    ("last 1 day", D(2016, 3, 1), (D(2016, 3, 1), D(2016, 3, 1))),
    ("last 2 weeks", D(2016, 2, 14), (D(2016, 2, 1), D(2016, 2, 14))),  # a Sunday ends its week
    ("previous week", D(2016, 2, 14), (D(2016, 2, 8), D(2016, 2, 14))),
    ("previous week", D(2016, 2, 15), (D(2016, 2, 8), D(2016, 2, 14))),  # Monday: last week
    ("previous week", D(2016, 2, 13), (D(2016, 2, 1), D(2016, 2, 7))),
    ("previous month", D(2016, 2, 29), (D(2016, 2, 1), D(2016, 2, 29))),  # the month's last day
    ("previous month", D(2016, 3, 1), (D(2016, 2, 1), D(2016, 2, 29))),
    ("previous month", D(2016, 1, 15), (D(2015, 12, 1), D(2015, 12, 31))),
    ("last 3 months", D(2016, 2, 10), (D(2015, 11, 1), D(2016, 1, 31))),
    ("last 14 months", D(2016, 2, 29), (D(2015, 1, 1), D(2016, 2, 29))),
    ("week to date", D(2016, 2, 10), (D(2016, 2, 8), D(2016, 2, 10))),
    ("month to date", D(2016, 2, 10), (D(2016, 2, 1), D(2016, 2, 10))),
    ("year to date", D(2016, 2, 10), (D(2016, 1, 1), D(2016, 2, 10))),
])
def test_relative_ranges(text, date, expected):
    assert exports.resolve_range(text, date) == expected


@pytest.mark.parametrize("text", ["last 0 days", "last week", "previous year", "7 days", "last -1 days", ""])
def test_bad_ranges(text):
    with pytest.raises(ValueError):
        exports.resolve_range(text, D(2016, 2, 29))


def test_when_an_export_is_due():
    assert exports.is_due("daily", D(2016, 2, 10))
    assert exports.is_due("weekly", D(2016, 2, 14)) and not exports.is_due("weekly", D(2016, 2, 15))
    assert exports.is_due("monthly", D(2016, 2, 29)) and not exports.is_due("monthly", D(2016, 2, 28))


EXPORTS_YAML = """\
output: {output}
exports:
  - name: malls-week
    title: Malls, last 7 days
    objects: [1, 2]
    interval: daily
    range: last 7 days
    formats: [csv, json, png]
  - name: floors-month
    objects: [11, 12]
    interval: weekly
    range: previous month
    when: monthly
    comeback: 1 month
    bounce_threshold: 10 minute
    engagement_threshold: 30 minute
    metric: sum_session_duration
    formats: [png, csv]
  - name: mall-hours
    objects: [2]
    interval: hourly
    range: last 2 days
    formats: [json, png]
    output: {other}
"""


@pytest.fixture
def world(tmp_path):
    conf, lake = make_world(tmp_path)
    (conf / "exports.yaml").write_text(EXPORTS_YAML.format(output="out", other=tmp_path / "elsewhere"))
    return conf, lake, tmp_path


def _files(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_every_format_is_written_and_equals_the_report(world):
    conf, lake, root = world
    cfg = load_config(conf).with_storage(lakehouse=str(lake))
    outcomes = exports.run(cfg, D(2016, 2, 29), say=lambda _: None)
    assert [(o.name, o.skipped, o.error) for o in outcomes] == [
        ("malls-week", None, None), ("floors-month", None, None), ("mall-hours", None, None)]
    out = root / "out"  # relative to the folder holding conf/
    assert sorted(_files(out)) == [
        "floors-month/floors-month_2016-02-29.csv", "floors-month/floors-month_2016-02-29.png",
        "malls-week/malls-week_2016-02-29.csv", "malls-week/malls-week_2016-02-29.json",
        "malls-week/malls-week_2016-02-29.png"]
    assert sorted(_files(root / "elsewhere")) == ["mall-hours/mall-hours_2016-02-29.json",
                                                  "mall-hours/mall-hours_2016-02-29.png"]

    # JSON: the API's body for the resolved range; CSV: the CLI's.
    req = parse({"objects": ["1,2"], "interval": ["daily"], "from": ["2016-02-23"], "to": ["2016-02-29"]})
    expected = report(Gold(str(lake)), cfg, resolve_objects(cfg, req), req)
    body = (out / "malls-week/malls-week_2016-02-29.json").read_bytes()
    assert body == expected.json_bytes()
    assert list(json.loads(body)) == ["1", "2"]
    assert (out / "malls-week/malls-week_2016-02-29.csv").read_text() == expected.csv_text()
    floors = (out / "floors-month/floors-month_2016-02-29.csv").read_text().splitlines()
    assert floors[1] == "11,2016-02-01T00:00:00+03:00,0,0,0,0,0.0,all"  # weeks of February, no weekly rows
    assert len(floors) == 1 + 2 * 7 * 5  # 5 ISO weeks overlap February 2016 (Feb 1 … Feb 29)

    hours = json.loads((root / "elsewhere/mall-hours/mall-hours_2016-02-29.json").read_text())
    assert len(hours["2"]["all"]) == 48

    # PNG: a real image, of the size the chart promises.
    for path, n in [(out / "malls-week/malls-week_2016-02-29.png", 2),
                    (out / "floors-month/floors-month_2016-02-29.png", 2),
                    (root / "elsewhere/mall-hours/mall-hours_2016-02-29.png", 1)]:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size == exports.chart_size(n)
            assert len(img.getcolors(1_000_000) or []) > 20  # lines and text, not a blank page
    assert exports.chart_size(2) == (1200, 860)


def test_a_rerun_overwrites_that_days_files_and_nothing_else(world, capsys):
    conf, lake, root = world
    args = ["export", "--conf", str(conf), "--lakehouse", str(lake)]
    assert main([*args, "--date", "2016-02-28"]) == 0
    first = _files(root / "out")
    assert sorted(first) == ["malls-week/malls-week_2016-02-28.csv", "malls-week/malls-week_2016-02-28.json",
                             "malls-week/malls-week_2016-02-28.png"]  # floors-month: not a month end
    assert "floors-month: skipped (when: monthly, not due on 2016-02-28)" in capsys.readouterr().out
    content = (root / "out/malls-week/malls-week_2016-02-28.json").read_bytes()

    assert main([*args, "--date", "2016-02-29"]) == 0
    second = _files(root / "out")
    assert {k: second[k] for k in first} == first  # the 28th's files are untouched
    assert len(second) == len(first) + 5

    assert main([*args, "--date", "2016-02-28"]) == 0
    third = _files(root / "out")
    assert set(third) == set(second)  # nothing new …
    assert all(third[k] > second[k] for k in first)  # … the 28th's files rewritten
    assert all(third[k] == second[k] for k in second if k not in first)
    assert (root / "out/malls-week/malls-week_2016-02-28.json").read_bytes() == content
    assert not [p for p in (root / "out").rglob(".*")]  # no temporary files left


def test_only_named_exports(world):
    conf, lake, root = world
    assert main(["export", "--conf", str(conf), "--lakehouse", str(lake), "--date", "2016-02-29",
                 "--name", "floors-month"]) == 0
    assert sorted(_files(root / "out")) == ["floors-month/floors-month_2016-02-29.csv",
                                            "floors-month/floors-month_2016-02-29.png"]
    assert main(["export", "--conf", str(conf), "--lakehouse", str(lake), "--name", "nope"]) == 2


def test_a_failing_export_does_not_stop_the_others(world, capsys):
    conf, lake, root = world
    # A 2,000-day hourly export is too large for one report.
    (conf / "exports.yaml").write_text(EXPORTS_YAML.format(output="out", other="other").replace(
        "range: last 2 days", "range: last 2100 days"))
    assert main(["export", "--conf", str(conf), "--lakehouse", str(lake), "--date", "2016-02-29"]) == 1
    out = capsys.readouterr().out
    assert "mall-hours: FAILED: to: the report would hold" in out
    assert "5 files written, 1 failed" in out


@pytest.mark.parametrize("entry, message", [
    ("objects: [1, 11]\n    interval: daily\n    range: last 7 days",
     "exports[0] (x): objects: objects must all be of one type"),
    ("objects: [999]\n    interval: daily\n    range: last 7 days", "exports[0] (x): objects: unknown object 999"),
    ("objects: [1]\n    interval: yearly\n    range: last 7 days", "exports[0] (x): interval: expected one of"),
    ("objects: [1]\n    interval: daily\n    range: last week", "exports[0] (x): range: expected 'last N days"),
    ("objects: [1]\n    interval: daily", "exports[0] (x): range is required"),
    ("objects: [1]\n    interval: daily\n    range: last 7 days\n    formats: [pdf]", "formats must be"),
    ("objects: [1]\n    interval: daily\n    range: last 7 days\n    metric: visits", "metric must be"),
    ("objects: [1]\n    interval: daily\n    range: last 7 days\n    when: hourly", "when must be"),
    ("objects: [1]\n    interval: daily\n    range: last 7 days\n    colour: red", "unknown key 'colour'"),
    ("objects: [1]\n    interval: daily\n    range: last 7 days\n    bounce_threshold: 30 minute",
     "engagement_threshold: 20 minute is less than bounce_threshold (30 minute)"),
])
def test_exports_yaml_errors_name_the_export_and_setting(tmp_path, entry, message):
    conf, _ = make_world(tmp_path)
    (conf / "exports.yaml").write_text(f"exports:\n  - name: x\n    {entry}\n")
    with pytest.raises(ConfigError, match="exports.yaml") as err:
        exports.load_exports(conf / "exports.yaml", load_config(conf))
    assert message in str(err.value)


def test_the_demo_exports_yaml_is_valid():
    cfg = load_config(ROOT / "conf")
    names = [e.name for e in exports.load_exports(ROOT / "conf" / "exports.yaml", cfg)]
    assert names == ["malls-last-7-days", "galereya-floors-monthly"]


# ---------------------------------------------------------------------------- the DAG

@pytest.fixture(scope="module")
def dag_module():
    from tests.airflow_env import use_airflow

    use_airflow()
    sys.path.insert(0, str(ROOT / "dags"))
    try:
        yield importlib.import_module("footfall_exports")
    finally:
        sys.path.remove(str(ROOT / "dags"))


def test_the_dag_runs_the_export_command_on_each_gold_update(dag_module):
    from airflow.sdk import Asset

    dag = dag_module.exports_dag
    assert dag.dag_id == "footfall_exports"
    assert list(dag.timetable.asset_condition.objects) == [
        Asset(name="footfall-gold-group_datetime", uri="footfall://lakehouse/gold/group_datetime")]
    assert [t.task_id for t in dag.tasks] == ["export"]
    command = dag.get_task("export").python_callable
    t0 = dt.datetime(2016, 3, 1, 2, tzinfo=dt.timezone.utc)
    gold = dag_module.GOLD_GROUP_DATETIME
    older = SimpleNamespace(extra={"date": "2016-02-28"}, timestamp=t0, source_dag_run=None)
    newer = SimpleNamespace(extra={"date": "2016-02-29"}, timestamp=t0 + dt.timedelta(hours=1),
                            source_dag_run=None)
    assert command(triggering_asset_events={gold: [older, newer]}) == (
        f"{dag_module.FOOTFALL} reports export --conf {dag_module.conf_dir()} --date 2016-02-29")
    from_run = SimpleNamespace(extra={}, timestamp=t0, source_dag_run=SimpleNamespace(
        logical_date=dt.datetime(2016, 2, 27, tzinfo=dt.timezone.utc)))
    assert command(triggering_asset_events={gold: [from_run]}).endswith("--date 2016-02-27")
    assert command(logical_date=dt.datetime(2016, 2, 26, tzinfo=dt.timezone.utc)).endswith("--date 2016-02-26")
    with pytest.raises(ValueError):
        command(triggering_asset_events={gold: [SimpleNamespace(
            extra={"date": "2016-02-29; rm -rf /"}, timestamp=t0, source_dag_run=None)]})
    assert textwrap.dedent(dag_module.__doc__).startswith("footfall_exports:")
