"""``python -m reports group-datetime`` prints exactly the API's JSON (or a flat CSV), with
the API's checks; ``python -m reports token create`` prints a token once and stores only
its hash."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's note that TestClient will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from reports.__main__ import main
from reports.api import create_app
from reports.tokens import digest, load_tokens
from tests.helpers import ROOT
from tests.report_world import TOKEN_ALL, USER_TYPES, make_world



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("cli-world"))


def _reports(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "reports", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def _api(conf: Path, lake: Path, query: str) -> bytes:
    with TestClient(create_app(conf, str(lake))) as c:
        r = c.get(f"/reports/group_datetime?{query}", headers={"x-token": TOKEN_ALL})
        assert r.status_code == 200
        return r.content


def test_json_is_the_apis_body_byte_for_byte(world):
    conf, lake = world
    out = _reports("group-datetime", "--objects", "2,1", "--interval", "daily", "--from", "2016-02-01",
                   "--to", "2016-02-03", "--comeback", "1 month", "--bounce-threshold", "10 minute",
                   "--engagement-threshold", "30 minute", "--conf", str(conf), "--lakehouse", str(lake))
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("\n")
    assert out.stdout[:-1].encode() == _api(conf, lake, (
        "objects=2,1&interval=daily&from=2016-02-01&to=2016-02-03&comeback=1+month"
        "&bounce_threshold=10+minute&engagement_threshold=30+minute"))


def test_csv_is_one_line_per_row_in_the_same_order(world, capsys):
    conf, lake = world
    code = main(["group-datetime", "--objects", "1", "--interval", "daily", "--from", "2016-02-01",
                 "--to", "2016-02-02", "--format", "csv", "--conf", str(conf), "--lakehouse", str(lake)])
    assert code == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["object_id", "datetime", "count_session", "count_client", "avg_session_duration",
                       "count_comeback_client", "sum_session_duration", "user_type"]
    assert len(rows) == 1 + 7 * 2
    assert rows[1] == ["1", "2016-02-01T00:00:00+03:00", "20", "19", "25", "120", "81725.23", "all"]
    assert rows[2] == ["1", "2016-02-02T00:00:00+03:00", "0", "0", "0", "0", "0.0", "all"]
    assert [r[7] for r in rows[1::2]] == list(USER_TYPES)
    assert rows[14] == ["1", "2016-02-02T00:00:00+03:00", "0", "0", "0", "0", "0.0", "visitor"]


@pytest.mark.parametrize("args, message", [
    ([], "error (missing_parameter): --from: missing (required)"),
    (["--from", "2016-02-01"], "error (missing_parameter): --to: missing (required)"),
    (["--from", "2016-02-01", "--to", "2016-02-01", "--objects", "1", "--interval", "daily",
      "--bounce-threshold", "7 minute"],
     "error (invalid_parameter): --bounce-threshold: expected one of '2 minute', '5 minute', "
     "'10 minute', '15 minute', '20 minute', '30 minute', '45 minute'; got '7 minute'"),
    (["--from", "2016-02-01", "--to", "2016-02-01", "--objects", "1,11", "--interval", "daily"],
     "error (mixed_object_types): --objects: objects must all be of one type"),
    (["--from", "2016-02-02", "--to", "2016-02-01", "--objects", "1", "--interval", "daily"],
     "error (invalid_range): --from: 2016-02-02 is after to (2016-02-01)"),
    (["--from", "2016-02-01", "--to", "2016-02-01", "--objects", "7", "--interval", "daily"],
     "error (unknown_object): --objects: unknown object 7"),
])
def test_errors_exit_2_naming_the_option(world, capsys, args, message):
    conf, lake = world
    assert main(["group-datetime", *args, "--conf", str(conf), "--lakehouse", str(lake)]) == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err.startswith(message)


def test_unreadable_gold_exits_1(world, tmp_path, capsys):
    conf, _ = world
    assert main(["group-datetime", "--from", "2016-02-01", "--to", "2016-02-01", "--objects", "1",
                 "--interval", "daily", "--conf", str(conf), "--lakehouse", str(tmp_path)]) == 1
    assert "error (gold_unavailable)" in capsys.readouterr().err


def test_token_create_prints_the_token_once_and_stores_its_hash(tmp_path):
    conf, lake = make_world(tmp_path)
    out = _reports("token", "create", "--malls", "2", "--name", "acme", "--conf", str(conf))
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("ff_") and len(token) > 40 and out.stdout.count("\n") == 1
    assert "not shown again" in out.stderr and token not in out.stderr
    text = (conf / "tokens.yaml").read_text()
    assert token not in text and digest(token) in text
    stored = {t.name: t for t in load_tokens(conf / "tokens.yaml")}
    assert set(stored) == {"everything", "mall-one", "acme"}  # the others are kept
    assert stored["acme"].malls == {2} and stored["acme"].created
    with TestClient(create_app(conf, str(lake))) as c:
        ok = c.get("/reports/group_datetime?objects=2&interval=daily&from=2016-02-01&to=2016-02-01",
                   headers={"x-token": token})
        assert ok.status_code == 200
        no = c.get("/reports/group_datetime?objects=1&interval=daily&from=2016-02-01&to=2016-02-01",
                   headers={"x-token": token})
        assert no.status_code == 403


@pytest.mark.parametrize("args, message", [
    (["--malls", "3", "--name", "x"], "--malls: 3 is not a mall of"),
    (["--malls", "1", "--name", "mall-one"], "a token named 'mall-one' exists already"),
    (["--malls", "1", "--name", "a b"], "token name must be"),
])
def test_token_create_refuses_bad_input(tmp_path, capsys, args, message):
    conf, _ = make_world(tmp_path)
    before = (conf / "tokens.yaml").read_text()
    assert main(["token", "create", *args, "--conf", str(conf)]) == 2
    assert message in capsys.readouterr().err
    assert (conf / "tokens.yaml").read_text() == before


def test_a_broken_tokens_file_stops_serve_with_a_message(tmp_path):
    conf, lake = make_world(tmp_path)
    (conf / "tokens.yaml").write_text("tokens:\n  - name: x\n    sha256: abc\n    malls: [1]\n")
    out = _reports("serve", "--port", "1", "--conf", str(conf), "--lakehouse", str(lake))
    assert out.returncode == 2
    assert "tokens.yaml: tokens[0] (x): sha256 must be 64 lower-case hex digits" in out.stderr
