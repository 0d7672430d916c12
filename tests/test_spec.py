"""The contract's vocabulary (jobs/spec.py): counts and the one rule written there."""

from __future__ import annotations

import pytest

from jobs import spec


def test_28_threshold_pairs_and_7_windows():
    assert len(spec.THRESHOLD_PAIRS) == 28 and all(b <= e for b, e in spec.THRESHOLD_PAIRS)
    assert [w.column for w in spec.COMEBACK_WINDOWS][::6] == [
        "count_comeback_client_2_week", "count_comeback_client_10_year"]


@pytest.mark.parametrize("minutes, b, e, expected", [
    (4.999, 5, 20, "bounced"),
    (5, 5, 20, "half engaged"),        # duration exactly b
    (19.999, 5, 20, "half engaged"),
    (20, 5, 20, "engaged"),            # duration exactly e
    (0, 2, 2, "bounced"),
    (2, 2, 2, "engaged"),              # b = e: nobody is half engaged
])
def test_visitor_class_by_duration(minutes, b, e, expected):
    assert spec.visitor_class(minutes, b, e) == expected


@pytest.mark.parametrize("name, expected", [
    ("a/b/x.ndjson", "json"), ("x.JSONL.GZ", "json"), ("x.json", "json"),
    ("x.csv.gz", "csv"), ("x.csv.bz2", None), ("x.txt", None), ("x.gz", None),
])
def test_file_format_by_extension(name, expected):
    assert spec.file_format(name) == expected
