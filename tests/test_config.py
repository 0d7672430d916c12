"""SPEC §1: the config folder, and errors that name the file and the setting."""

from __future__ import annotations

import pytest

from jobs.config import ConfigError, load_config
from tests.conftest import OBJECTS_YAML, write_conf


def test_loads_the_tree_sensors_and_defaults(conf_dir):
    cfg = load_config(conf_dir)
    assert [m.id for m in cfg.malls] == [1, 2]
    assert cfg.mall(2).timezone == "Europe/Berlin"
    assert ("s-2", 111, 11, 1, -65) in cfg.sensor_rows()
    assert ("s-1", 111, 11, 1, -70) in cfg.sensor_rows()
    assert cfg.settings.session_gap_minutes == 15
    assert cfg.settings.randomized_macs == "exclude"
    assert cfg.storage.lakehouse.endswith("data/lakehouse")


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
