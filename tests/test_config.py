"""SPEC §1: the config folder, and errors that name the file and the setting. Every config
file (objects, pipeline, storage, airflow, exports, tokens) rejects an unknown key and a
value of the wrong type, naming the file and the key path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.config import ConfigError, load_config
from jobs.orchestration import load_airflow_settings
from reports.exports import load_exports
from reports.tokens import load_tokens
from tests.helpers import OBJECTS_YAML, ROOT, write_conf

#: SPEC §1's pipeline.yaml defaults.
SPEC_DEFAULTS = {"session_gap_minutes": 15, "visitor_rssi_threshold": -70, "employee_window_days": 14,
                 "employee_min_days": 5, "employee_min_daily_minutes": 240,
                 "randomized_macs": "exclude", "max_lateness_days": 31}

EXPORT = "exports:\n  - name: daily\n    objects: [1]\n    interval: daily\n    range: last 7 days\n"
TOKEN = f"tokens:\n  - name: ops\n    sha256: {'a' * 64}\n    malls: [1]\n"


def test_loads_the_tree_sensors_and_defaults(conf_dir):
    cfg = load_config(conf_dir)
    assert [m.id for m in cfg.malls] == [1, 2]
    assert cfg.mall(2).timezone == "Europe/Berlin"
    assert ("s-2", 111, 11, 1, -65) in cfg.sensor_rows()
    assert ("s-1", 111, 11, 1, -70) in cfg.sensor_rows()
    assert cfg.settings.session_gap_minutes == 15
    assert cfg.settings.randomized_macs == "exclude"
    assert cfg.settings.model_dump() == SPEC_DEFAULTS
    assert cfg.storage.lakehouse.endswith("data/lakehouse")


def test_the_repo_config_folder_is_valid():
    conf = ROOT / "conf"
    cfg = load_config(conf)
    assert cfg.settings.model_dump() == SPEC_DEFAULTS
    assert cfg.storage.spark_conf["spark.ui.enabled"] == "false"
    assert load_airflow_settings(conf).maintenance_cron == "0 5 * * 0"
    assert [e.name for e in load_exports(conf / "exports.yaml", cfg)]
    assert [t.name for t in load_tokens(conf / "tokens.yaml", cfg)] == ["development"]


@pytest.mark.parametrize("objects, message", [
    (OBJECTS_YAML.replace("Europe/Berlin", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (OBJECTS_YAML.replace("id: 121", "id: 111"), "duplicate object id 111"),
    (OBJECTS_YAML.replace("id: b-1", "id: s-1"), "sensor 's-1' is in two zones"),
    (OBJECTS_YAML.replace("visitor_rssi_threshold: -65", "visitor_rssi_threshold: 5"),
     "visitor_rssi_threshold: 5 is out of range"),
    ("malls: []\n", "'malls' must be a non-empty list"),
])
def test_bad_objects_name_the_problem(tmp_path, objects, message):
    folder = write_conf(tmp_path / "conf", objects=objects)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(folder)
    assert "objects.yaml" in str(err.value)


@pytest.mark.parametrize("pipeline, message", [
    ("visitor_rssi_threshold: -130\n", "visitor_rssi_threshold: -130 is out of range"),
    ("randomized_macs: maybe\n", "randomized_macs: expected 'exclude' or 'include'"),
    ("session_gap_minutes: 0\n", "session_gap_minutes: expected a positive number"),
    ("employee_min_days: 20\n", "employee_min_days: must be between 1 and employee_window_days"),
    ("max_lateness_days: -1\n", "max_lateness_days: must be >= 0"),
])
def test_bad_settings_name_the_setting(tmp_path, pipeline, message):
    folder = write_conf(tmp_path / "conf", pipeline=pipeline)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(folder)
    assert "pipeline.yaml" in str(err.value)


def test_missing_folder_and_storage_overrides(tmp_path, conf_dir):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope")
    cfg = load_config(conf_dir).with_storage(landing="s3a://bucket/landing", lakehouse=str(tmp_path / "lh"),
                                             master="spark://127.0.0.1:7077")
    assert cfg.storage.landing == "s3a://bucket/landing"
    assert cfg.storage.lakehouse == str(tmp_path / "lh")
    assert cfg.storage.spark_master == "spark://127.0.0.1:7077"


# ---------------------------------------------------------------------------- every file

def _load(folder: Path, file: str) -> None:
    """Load ``file`` of ``folder`` with the loader that reads it."""
    if file == "airflow.yaml":
        load_airflow_settings(folder)
    elif file == "exports.yaml":
        load_exports(folder / file, load_config(folder))
    elif file == "tokens.yaml":
        load_tokens(folder / file, load_config(folder))
    else:
        load_config(folder)


def _error(tmp_path: Path, file: str, text: str) -> str:
    folder = write_conf(tmp_path / "conf")
    (folder / file).write_text(text)
    with pytest.raises(ConfigError) as err:
        _load(folder, file)
    return str(err.value)


@pytest.mark.parametrize("file, text, message", [
    ("pipeline.yaml", "session_gap_minute: 10\n",
     "pipeline.yaml: unknown key 'session_gap_minute' (the keys are: employee_min_daily_minutes, "
     "employee_min_days, employee_window_days, max_lateness_days, randomized_macs, "
     "session_gap_minutes, visitor_rssi_threshold)"),
    ("objects.yaml", OBJECTS_YAML.replace("visitor_rssi_threshold: -65", "visitor_rssi_treshold: -65"),
     "objects.yaml: malls[0].floors[0].zones[0].sensors[1]: unknown key 'visitor_rssi_treshold' "
     "(the keys are: id, visitor_rssi_threshold)"),
    ("objects.yaml", OBJECTS_YAML.replace("timezone: Europe/Berlin", "timezone: Europe/Berlin\n    tz: UTC"),
     "objects.yaml: malls[1]: unknown key 'tz' (the keys are: floors, id, name, timezone)"),
    ("objects.yaml", "malls: []\nstores: []\n", "objects.yaml: unknown key 'stores' (the keys are: malls)"),
    ("storage.yaml", "spark:\n  mastr: local[2]\n",
     "storage.yaml: spark: unknown key 'mastr' (the keys are: app_name, conf, master)"),
    ("storage.yaml", "lakehous: /data/lake\n", "storage.yaml: unknown key 'lakehous' (the keys are: "),
    ("airflow.yaml", "quality:\n  max_sesion_drop: 0.4\n",
     "airflow.yaml: quality: unknown key 'max_sesion_drop' (the keys are: max_quarantined_share, "
     "max_session_drop, min_baseline_sessions)"),
    ("airflow.yaml", "maintenance:\n  retain_hour: 200\n",
     "airflow.yaml: maintenance: unknown key 'retain_hour' (the keys are: retain_hours, schedule)"),
    ("exports.yaml", EXPORT + "    colour: red\n",
     "exports.yaml: exports[0] (daily): unknown key 'colour' (the keys are: bounce_threshold, "),
    ("exports.yaml", "outputs: out\n" + EXPORT, "exports.yaml: unknown key 'outputs' (the keys are: exports, output)"),
    ("tokens.yaml", TOKEN + "    notes: for ops\n",
     "tokens.yaml: tokens[0] (ops): unknown key 'notes' (the keys are: created, malls, name, note, sha256)"),
])
def test_an_unknown_key_is_rejected_in_every_file(tmp_path, file, text, message):
    assert message in _error(tmp_path, file, text)


@pytest.mark.parametrize("file, text, message", [
    ("pipeline.yaml", "employee_window_days: '14'\n", "pipeline.yaml: employee_window_days: expected an integer, got '14'"),
    ("pipeline.yaml", "max_lateness_days: true\n", "pipeline.yaml: max_lateness_days: expected an integer, got True"),
    ("pipeline.yaml", "session_gap_minutes: '15'\n", "pipeline.yaml: session_gap_minutes: expected a number, got '15'"),
    ("objects.yaml", OBJECTS_YAML.replace("id: 121", "id: '121'"),
     "objects.yaml: malls[0].floors[1].zones[0].id: expected an integer, got '121'"),
    ("objects.yaml", OBJECTS_YAML.replace("visitor_rssi_threshold: -65", "visitor_rssi_threshold: '-65'"),
     "objects.yaml: malls[0].floors[0].zones[0].sensors[1].visitor_rssi_threshold: expected an integer, got '-65'"),
    ("objects.yaml", OBJECTS_YAML.replace("name: Mega", "name: [Mega]"),
     "objects.yaml: malls[0].name: expected text, got ['Mega']"),
    ("objects.yaml", OBJECTS_YAML.replace("- id: s-4", "- {}"), "objects.yaml: malls[0].floors[1].zones[0].sensors[0]: id is required"),
    ("storage.yaml", "require_hmac_key: 'yes'\n", "storage.yaml: require_hmac_key: expected true or false, got 'yes'"),
    ("storage.yaml", "spark:\n  conf: [a]\n", "storage.yaml: spark.conf: expected a mapping, got ['a']"),
    ("airflow.yaml", "retries: true\n", "airflow.yaml: retries: expected a number, got True"),
    ("airflow.yaml", "quality: 0.5\n", "airflow.yaml: quality: expected a mapping, got 0.5"),
    ("exports.yaml", EXPORT.replace("[1]", "[1, '11']"),
     "exports.yaml: exports[0] (daily): objects[1]: expected an integer, got '11'"),
    ("tokens.yaml", TOKEN.replace("[1]", "[1, '2']"), "tokens.yaml: tokens[0] (ops): malls[1]: expected an integer, got '2'"),
])
def test_a_wrong_type_names_the_key_path(tmp_path, file, text, message):
    assert message in _error(tmp_path, file, text)


@pytest.mark.parametrize("file", ["objects.yaml", "pipeline.yaml", "storage.yaml", "airflow.yaml",
                                  "exports.yaml", "tokens.yaml"])
@pytest.mark.parametrize("text, message", [
    ("- a list\n", "expected a mapping at the top level"),
    ("a: [\n", "not valid YAML"),
])
def test_every_file_must_be_a_yaml_mapping(tmp_path, file, text, message):
    folder = write_conf(tmp_path / "conf")
    (folder / file).write_text(text)
    with pytest.raises(ConfigError) as err:
        _load(folder, file)
    assert str(err.value).startswith(f"{folder / file}: {message}")


def test_a_typo_in_pipeline_yaml_stops_the_command_line_before_any_write(tmp_path):
    conf = write_conf(tmp_path / "conf", pipeline="session_gap_minute: 10\n")
    (tmp_path / "landing").mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "jobs", "backfill", "--from", "2016-01-01", "--to", "2016-01-02",
         "--conf", str(conf), "--landing", str(tmp_path / "landing"), "--lakehouse", str(tmp_path / "lake")],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "pipeline.yaml" in out.stderr and "session_gap_minute" in out.stderr
    assert not (tmp_path / "lake").exists()
