"""SPEC §10 contract of ``GET /reports/group_datetime``: through real HTTP (uvicorn started
by ``python -m reports serve``) and, for the many cases, through TestClient; on a gold
table of hand-made rows (tests/report_world.py) and on one built by the real pipeline."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import polars as pl
import pytest
from deltalake import DeltaTable

with warnings.catch_warnings():  # starlette's note that TestClient will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from reports.api import create_app, warm_up
from reports.params import MAX_OBJECT_BUCKETS
from reports.query import Gold
from reports.tokens import create as create_token, digest
from jobs.config import load_config
from jobs.spec import GROUP_DATETIME
from benchmarks.common import free_port
from tests.helpers import ROOT
from tests.report_world import (TOKEN_ALL, TOKEN_MALL1, USER_TYPES, bucket_rows, expected_row,
                                make_world, write_gold, write_tokens)

PATH = "/reports/group_datetime"
ROW_KEYS = ["datetime", "count_session", "count_client", "avg_session_duration",
            "count_comeback_client", "sum_session_duration", "user_type"]
# The original page's example request, as written there (with `+` for spaces).
PAGE_QUERY = ("objects=1,2&interval=monthly&from=2016-02-01&to=2016-02-14&comeback=2+week"
              "&bounce_threshold=5+minute&engagement_threshold=20+minute")

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("report-world"))


@pytest.fixture(scope="module")
def client(world):
    conf, lake = world
    with TestClient(create_app(conf, str(lake), refresh_seconds=0)) as c:
        yield c


def get(client, query: str, token: str | None = TOKEN_ALL):
    return client.get(f"{PATH}?{query}", headers={"x-token": token} if token is not None else {})


def error_of(response) -> tuple[int, str, str]:
    body = response.json()
    assert list(body) == ["error"] and list(body["error"]) == ["code", "message"]
    return response.status_code, body["error"]["code"], body["error"]["message"]


# ---------------------------------------------------------------------------- real HTTP

@pytest.fixture(scope="module")
def server(world):
    """``python -m reports serve`` on a free loopback port: the real command line."""
    conf, lake = world
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "reports", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--conf", str(conf), "--lakehouse", str(lake)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start:\n" + proc.stdout.read().decode())
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_the_page_example_over_real_http(server, client):
    with httpx.Client(base_url=server) as http:
        r = http.get(f"{PATH}?{PAGE_QUERY}", headers={"x-token": TOKEN_ALL})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.headers["server-timing"].startswith("app;dur=")  # the server's share of the time
        body = r.json()
        assert list(body) == ["1", "2"]
        for key in body:
            assert list(body[key]) == list(USER_TYPES)
        # February, reported whole although the range stops on the 14th.
        assert body["1"]["all"] == [expected_row("2016-02-01T00:00:00+03:00", 300, 0, gsh=4000.99)]
        assert body["2"]["visitor"] == [expected_row("2016-02-01T00:00:00+01:00", None, 6)]
        assert r.content == get(client, PAGE_QUERY).content  # the same bytes as in-process

        assert error_of(http.get(f"{PATH}?{PAGE_QUERY}")) == (
            401, "missing_token", "x-token: missing; send an API token in the x-token header")
        status, code, message = error_of(http.get(f"{PATH}?{PAGE_QUERY.replace('monthly', 'yearly')}",
                                                  headers={"x-token": TOKEN_ALL}))
        assert (status, code) == (400, "invalid_parameter") and message.startswith("interval: ")
        assert http.get("/docs").status_code == 200


# ---------------------------------------------------------------------------- shape and numbers

def test_exact_response_with_a_zero_filled_day(client):
    r = get(client, "objects=1&interval=daily&from=2016-02-01&to=2016-02-03")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["1"] and list(body["1"]) == list(USER_TYPES)
    for k, t in enumerate(USER_TYPES):
        assert body["1"][t] == [
            expected_row("2016-02-01T00:00:00+03:00", 20, k, gsh=81725.23),
            expected_row("2016-02-02T00:00:00+03:00", None, k),  # no gold rows: zeros
            expected_row("2016-02-03T00:00:00+03:00", 40, k, gsh=12.5),
        ]
        for row in body["1"][t]:
            assert list(row) == ROW_KEYS
    # Numbers as JSON numbers; Gross Shopping Hours with at most 2 decimals.
    assert ('{"datetime":"2016-02-01T00:00:00+03:00","count_session":20,"count_client":19,'
            '"avg_session_duration":25,"count_comeback_client":120,"sum_session_duration":81725.23,'
            '"user_type":"all"}') in r.text
    assert '"sum_session_duration":0.0,' in r.text


@pytest.mark.parametrize("k, window", list(enumerate(["2 week", "1 month", "2 month", "3 month", "6 month",
                                                  "1 year", "10 year"])))
def test_each_comeback_window_reads_its_column(client, k, window):
    body = get(client, f"objects=1&interval=daily&from=2016-02-01&to=2016-02-01&comeback={window}").json()
    assert body["1"]["engaged"][0]["count_comeback_client"] == 20 + 30 + 100 + k


def test_thresholds_choose_the_pair_and_defaults_are_the_pages(client):
    default = get(client, "objects=1&interval=daily&from=2016-02-01&to=2016-02-01")
    explicit = get(client, "objects=1&interval=daily&from=2016-02-01&to=2016-02-01&comeback=2%20week"
                           "&bounce_threshold=5%20minute&engagement_threshold=20%20minute")
    assert default.content == explicit.content
    other = get(client, "objects=1&interval=daily&from=2016-02-01&to=2016-02-01"
                        "&bounce_threshold=10+minute&engagement_threshold=30+minute").json()
    assert other["1"]["bounced"] == [expected_row("2016-02-01T00:00:00+03:00", 20, 1, gsh=81725.23, pair=1)]
    none = get(client, "objects=1&interval=daily&from=2016-02-01&to=2016-02-01"
                       "&bounce_threshold=2+minute&engagement_threshold=45+minute").json()
    assert none["1"]["all"] == [expected_row("2016-02-01T00:00:00+03:00", None, 0)]


def test_engagement_equal_to_bounce_is_allowed(client):
    assert get(client, "objects=1&interval=daily&from=2016-02-01&to=2016-02-01"
                       "&bounce_threshold=20+minute&engagement_threshold=20+minute").status_code == 200


def test_objects_keep_request_order_and_a_repeated_id_once(client):
    body = get(client, "objects=12,11,12&interval=daily&from=2016-02-01&to=2016-02-01").json()
    assert list(body) == ["12", "11"]
    assert body["11"]["all"] == [expected_row("2016-02-01T00:00:00+03:00", 60, 0, gsh=3.07)]
    assert body["12"]["passer"] == [expected_row("2016-02-01T00:00:00+03:00", 80, 5, gsh=1.1)]


def test_objects_of_two_malls_each_in_its_own_time_zone(client):
    body = get(client, "objects=2,1&interval=daily&from=2016-02-01&to=2016-02-01").json()
    assert list(body) == ["2", "1"]
    assert body["2"]["all"] == [expected_row("2016-02-01T00:00:00+01:00", 960, 0, gsh=2.5)]
    assert body["1"]["all"] == [expected_row("2016-02-01T00:00:00+03:00", 20, 0, gsh=81725.23)]


@pytest.mark.parametrize("interval, start, end, labels, at, base", [
    # A partial week and a partial month are reported whole, under their start's label;
    # `at` is the bucket that has gold rows (`base`), the others are zero-filled.
    ("weekly", "2016-02-03", "2016-02-04", ["2016-02-01T00:00:00+03:00"], 0, 200),
    ("weekly", "2016-02-07", "2016-02-08", ["2016-02-01T00:00:00+03:00", "2016-02-08T00:00:00+03:00"], 0, 200),
    ("monthly", "2016-02-10", "2016-02-12", ["2016-02-01T00:00:00+03:00"], 0, 300),
    ("monthly", "2016-01-31", "2016-02-01", ["2016-01-01T00:00:00+03:00", "2016-02-01T00:00:00+03:00"], 1, 300),
    # Friday to Sunday: Monday's weekday bucket (Mon-Fri) and Saturday's weekend bucket.
    ("weekday", "2016-02-05", "2016-02-07", ["2016-02-01T00:00:00+03:00"], 0, 400),
    ("weekend", "2016-02-05", "2016-02-07", ["2016-02-06T00:00:00+03:00"], 0, 500),
    ("weekend", "2016-02-07", "2016-02-07", ["2016-02-06T00:00:00+03:00"], 0, 500),  # a Sunday
    ("weekend", "2016-02-01", "2016-02-05", [], None, None),  # Monday to Friday holds no weekend
    ("weekday", "2016-02-06", "2016-02-07", [], None, None),
    ("weekday", "2016-02-06", "2016-02-08", ["2016-02-08T00:00:00+03:00"], None, None),
])
def test_buckets_overlapping_the_range_are_reported_whole(client, interval, start, end, labels, at, base):
    body = get(client, f"objects=1&interval={interval}&from={start}&to={end}").json()
    assert [r["datetime"] for r in body["1"]["all"]] == labels
    gsh = {"weekly": 900.01, "monthly": 4000.99}.get(interval, 0.0)
    for k, t in enumerate(USER_TYPES):
        assert body["1"][t] == [expected_row(label, base if i == at else None, k, gsh=gsh)
                                for i, label in enumerate(labels)]


def test_hourly_labels_of_a_day_and_its_zero_filled_hours(client):
    rows = get(client, "objects=1&interval=hourly&from=2016-02-01&to=2016-02-01").json()["1"]["all"]
    assert [r["datetime"] for r in rows] == [f"2016-02-01T{h:02d}:00:00+03:00" for h in range(24)]
    assert rows[10] == expected_row("2016-02-01T10:00:00+03:00", 600, 0)
    assert all(r["count_session"] == 0 for i, r in enumerate(rows) if i != 10)


def test_dst_end_day_has_25_hours_with_02_00_twice(client):
    rows = get(client, "objects=2&interval=hourly&from=2016-10-30&to=2016-10-30").json()["2"]["visitor"]
    labels = [r["datetime"] for r in rows]
    assert labels == ([f"2016-10-30T{h:02d}:00:00+02:00" for h in range(3)]
                      + [f"2016-10-30T{h:02d}:00:00+01:00" for h in range(2, 24)])
    assert rows[2] == expected_row("2016-10-30T02:00:00+02:00", 700, 6)
    assert rows[3] == expected_row("2016-10-30T02:00:00+01:00", 800, 6)


def test_objects_of_two_malls_on_a_dst_day_have_their_own_hours(client):
    # Mall 2's zone changes offset that night (25 hours), mall 1's does not (24): the
    # lists of one answer differ in length, object by object.
    body = get(client, "objects=2,1&interval=hourly&from=2016-10-30&to=2016-10-30").json()
    assert list(body) == ["2", "1"]
    assert [len(body["2"][t]) for t in USER_TYPES] == [25] * len(USER_TYPES)
    assert [len(body["1"][t]) for t in USER_TYPES] == [24] * len(USER_TYPES)
    assert body["2"]["visitor"][3] == expected_row("2016-10-30T02:00:00+01:00", 800, 6)
    assert body["1"]["all"][23] == expected_row("2016-10-30T23:00:00+03:00", None, 0)


def test_dst_start_day_has_23_hours_without_02_00(client):
    rows = get(client, "objects=2&interval=hourly&from=2016-03-27&to=2016-03-27").json()["2"]["all"]
    labels = [r["datetime"] for r in rows]
    assert labels == (["2016-03-27T00:00:00+01:00", "2016-03-27T01:00:00+01:00"]
                      + [f"2016-03-27T{h:02d}:00:00+02:00" for h in range(3, 24)])
    assert rows[2] == expected_row("2016-03-27T03:00:00+02:00", 900, 0)


def test_daily_labels_carry_the_offset_of_local_midnight(client):
    rows = get(client, "objects=2&interval=daily&from=2016-10-29&to=2016-10-31").json()["2"]["all"]
    assert [r["datetime"] for r in rows] == ["2016-10-29T00:00:00+02:00", "2016-10-30T00:00:00+02:00",
                                             "2016-10-31T00:00:00+01:00"]
    assert rows[1] == expected_row("2016-10-30T00:00:00+02:00", 950, 0, gsh=7.77)


def test_a_range_without_data_is_all_zeros(client):
    body = get(client, "objects=111,112&interval=weekly&from=2017-01-01&to=2017-01-09").json()
    assert [r["datetime"] for r in body["112"]["engaged"]] == [
        "2016-12-26T00:00:00+03:00", "2017-01-02T00:00:00+03:00", "2017-01-09T00:00:00+03:00"]
    assert all(r["count_session"] == 0 and r["sum_session_duration"] == 0
               for o in body.values() for rows in o.values() for r in rows)


# ---------------------------------------------------------------------------- errors

VALID = {"objects": "1", "interval": "daily", "from": "2016-02-01", "to": "2016-02-03"}


def _query(**changes) -> str:
    params = {**VALID, **changes}
    return "&".join(f"{k}={v}" for k, v in params.items() if v is not None)


@pytest.mark.parametrize("name", ["from", "to", "objects", "interval"])
def test_each_required_parameter_missing(client, name):
    assert error_of(get(client, _query(**{name: None}))) == (
        400, "missing_parameter", f"{name}: missing (required)")


@pytest.mark.parametrize("name, value", [
    ("from", "2016-02-30"), ("from", "20160201"), ("from", "2016-2-1"), ("from", ""), ("from", "1969-12-31"),
    ("to", "2016-02-01T00:00"), ("to", "tomorrow"),
    ("objects", ""), ("objects", "1,,2"), ("objects", "1,"), ("objects", "a"), ("objects", "1;2"),
    ("objects", "-1"), ("objects", "1 2"),
    ("interval", "yearly"), ("interval", "Daily"), ("interval", ""),
    ("comeback", "2 weeks"), ("comeback", "2%2Bweek"), ("comeback", "14 day"), ("comeback", ""),
    ("bounce_threshold", "5 minutes"), ("bounce_threshold", "7 minute"), ("bounce_threshold", "5"),
    ("engagement_threshold", "60 minute"), ("engagement_threshold", "20minute"),
])
def test_each_invalid_value_names_its_parameter(client, name, value):
    status, code, message = error_of(get(client, _query(**{name: value})))
    assert (status, code) == (400, "invalid_parameter")
    assert message.startswith(f"{name}: ")


def test_every_allowed_value_is_accepted(client):
    for interval in ["hourly", "daily", "weekly", "monthly", "weekday", "weekend"]:
        assert get(client, _query(interval=interval)).status_code == 200
    for window in ["2 week", "1 month", "2 month", "3 month", "6 month", "1 year", "10 year"]:
        assert get(client, _query(comeback=window)).status_code == 200
    minutes = [2, 5, 10, 15, 20, 30, 45]
    for b in minutes:
        for e in minutes:
            r = get(client, _query(bounce_threshold=f"{b} minute", engagement_threshold=f"{e} minute"))
            assert r.status_code == (200 if e >= b else 400)


@pytest.mark.parametrize("query, expected", [
    (_query(bounce_threshold="20+minute", engagement_threshold="10+minute"),
     (400, "invalid_thresholds", "engagement_threshold: 10 minute is less than bounce_threshold (20 minute)")),
    (_query(bounce_threshold="10+minute"),  # against the default engagement of 20: fine
     None),
    (_query(bounce_threshold="30+minute"),  # against the default engagement of 20
     (400, "invalid_thresholds", "engagement_threshold: 20 minute is less than bounce_threshold (30 minute)")),
    (_query(**{"from": "2016-02-04", "to": "2016-02-03"}),
     (400, "invalid_range", "from: 2016-02-04 is after to (2016-02-03)")),
    (_query(objects="1,11"),
     (400, "mixed_object_types", "objects: objects must all be of one type (only malls, only floors "
                                 "or only zones); got mall 1, floor 11")),
    (_query(objects="111,2"),
     (400, "mixed_object_types", "objects: objects must all be of one type (only malls, only floors "
                                 "or only zones); got zone 111, mall 2")),
    (_query(objects="1,999,998"), (400, "unknown_object", "objects: unknown object 999 (and 1 more)")),
    (_query() + "&foo=1", (400, "unknown_parameter", "foo: unknown parameter; the parameters are from, "
                           "to, objects, interval, comeback, bounce_threshold, engagement_threshold")),
    (_query() + "&interval=daily", (400, "invalid_parameter", "interval: given more than once")),
    (_query(objects=",".join(str(i) for i in range(1, 102))),
     (400, "invalid_parameter", "objects: at most 100 objects per request; got 101")),
])
def test_request_level_errors(client, query, expected):
    r = get(client, query)
    if expected is None:
        assert r.status_code == 200
    else:
        assert error_of(r) == expected


def test_a_too_large_report_is_refused(client):
    # 1 object × hourly buckets of 2,084 days = 50,016 object-buckets > 50,000.
    status, code, message = error_of(get(client, _query(interval="hourly", to="2021-10-15")))
    assert (status, code) == (400, "range_too_large") and message.startswith("to: ")
    assert MAX_OBJECT_BUCKETS == 50_000
    assert get(client, _query(interval="daily", to="2026-02-01")).status_code == 200


# ---------------------------------------------------------------------------- tokens

def test_missing_and_unknown_tokens_are_401_before_any_parameter_check(client):
    assert error_of(get(client, _query(interval="yearly"), token=None))[:2] == (401, "missing_token")
    assert error_of(get(client, _query(), token=""))[:2] == (401, "missing_token")
    assert error_of(get(client, _query(interval="yearly"), token="nope")) == (
        401, "invalid_token", "x-token: not a known token")
    assert error_of(get(client, _query(), token=TOKEN_ALL + " "))[:2] == (401, "invalid_token")


def test_a_token_sees_only_its_malls(client):
    assert get(client, _query(objects="1"), token=TOKEN_MALL1).status_code == 200
    assert get(client, _query(objects="111,121"), token=TOKEN_MALL1).status_code == 200
    assert error_of(get(client, _query(objects="211"), token=TOKEN_MALL1)) == (
        403, "forbidden_object", "objects: this token may not see object 211 (mall 2)")
    assert error_of(get(client, _query(objects="1,2"), token=TOKEN_MALL1))[:2] == (403, "forbidden_object")
    # An unknown object is a bad request whoever asks.
    assert error_of(get(client, _query(objects="999"), token=TOKEN_MALL1))[:2] == (400, "unknown_object")


def test_a_new_token_works_without_a_restart_and_only_its_hash_is_stored(tmp_path):
    conf, lake = make_world(tmp_path)
    with TestClient(create_app(conf, str(lake))) as c:
        assert get(c, _query(objects="2"), token="later").status_code == 401
        token = create_token(conf, "acme", [2], load_config(conf))
        assert token not in (conf / "tokens.yaml").read_text()
        assert get(c, _query(objects="2"), token=token).status_code == 200
        assert get(c, _query(objects="1"), token=token).status_code == 403
        write_tokens(conf)  # acme's entry deleted: revoked
        assert get(c, _query(objects="2"), token=token).status_code == 401


def test_unknown_gold_table_is_503(tmp_path):
    conf, _ = make_world(tmp_path)
    with TestClient(create_app(conf, str(tmp_path / "nowhere"))) as c:
        assert error_of(get(c, _query()))[:2] == (503, "gold_unavailable")


def test_other_paths_and_methods_answer_in_the_error_shape(client):
    assert error_of(client.get("/reports/nope"))[:2] == (404, "not_found")
    assert error_of(client.post(f"{PATH}?{_query()}", headers={"x-token": TOKEN_ALL}))[:2] == (
        405, "method_not_allowed")


# ---------------------------------------------------------------------------- OpenAPI

def test_openapi_documents_every_parameter_and_error(client):
    doc = client.get("/openapi.json").json()
    op = doc["paths"][PATH]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert list(params) == ["from", "to", "objects", "interval", "comeback", "bounce_threshold",
                            "engagement_threshold"]
    assert [n for n, p in params.items() if p["required"]] == ["from", "to", "objects", "interval"]
    assert params["interval"]["schema"]["enum"] == ["hourly", "daily", "weekly", "monthly", "weekday", "weekend"]
    assert params["comeback"]["schema"] == {"type": "string", "default": "2 week", "enum": [
        "2 week", "1 month", "2 month", "3 month", "6 month", "1 year", "10 year"]}
    minutes = [f"{m} minute" for m in (2, 5, 10, 15, 20, 30, 45)]
    assert params["bounce_threshold"]["schema"]["enum"] == minutes
    assert params["bounce_threshold"]["schema"]["default"] == "5 minute"
    assert params["engagement_threshold"]["schema"]["enum"] == minutes
    assert params["engagement_threshold"]["schema"]["default"] == "20 minute"
    assert params["from"]["schema"]["format"] == "date"
    assert set(op["responses"]) >= {"200", "400", "401", "403"}
    for status, codes in {"400": ["missing_parameter", "invalid_parameter", "unknown_parameter",
                                  "invalid_range", "invalid_thresholds", "unknown_object",
                                  "mixed_object_types", "range_too_large"],
                          "401": ["missing_token", "invalid_token"], "403": ["forbidden_object"]}.items():
        for code in codes:
            assert f"`{code}`" in op["responses"][status]["description"]
    assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "x-token",
        "description": "An API token (`python -m reports token create`)."}
    row = doc["components"]["schemas"]["Row"]["properties"]
    assert list(row) == ROW_KEYS
    assert list(doc["components"]["schemas"]["ObjectReport"]["properties"]) == list(USER_TYPES)
    assert "swagger-ui" in client.get("/docs").text


# ---------------------------------------------------------------------------- against the pipeline

START, DAYS = dt.date(2016, 3, 26), 3  # Saturday, Sunday (Berlin's DST start), Monday


@pytest.fixture(scope="module")
def pipeline_world(spark, tmp_path_factory):
    """A tiny generated world run once through the real pipeline (Spark)."""
    from jobs import run
    from tests.helpers import generated_world

    root = generated_world(tmp_path_factory.mktemp("pipeline-world"), start=START, days=DAYS,
                           devices=12, seed=3)
    conf = root / "conf"
    cfg = load_config(conf).with_storage(str(root / "landing"), str(root / "lake"))
    run.backfill(spark, cfg, START, START + dt.timedelta(days=DAYS - 1),
                 now=dt.datetime(2016, 4, 20, tzinfo=dt.timezone.utc))
    malls = [m.id for m in cfg.malls]
    (conf / "tokens.yaml").write_text(f"tokens:\n  - name: t\n    sha256: {digest('tok')}\n"
                                      f"    malls: {malls}\n")
    return conf, root / "lake", cfg


@pytest.mark.parametrize("interval", ["hourly", "daily", "weekly", "monthly", "weekday", "weekend"])
def test_api_numbers_equal_the_gold_rows(pipeline_world, interval):
    conf, lake, cfg = pipeline_world
    # Read gold independently of the API: delta-rs → pyarrow, no polars.
    gold = DeltaTable(str(lake / "gold" / "group_datetime")).to_pyarrow_table(
        filters=[("interval", "=", interval)]).to_pylist()
    assert gold, "the pipeline wrote no gold rows"
    pairs = [(5, 20), (2, 45), (15, 15)]
    windows = {"2 week": "2_week", "3 month": "3_month"}
    with TestClient(create_app(conf, str(lake))) as c:
        for otype in ["mall", "floor", "zone"]:
            ids = [o.id for o in cfg.objects if o.type == otype]
            for (b, e), (window, suffix) in zip(pairs, [*windows.items(), ("10 year", "10_year")]):
                r = c.get(f"{PATH}?objects={','.join(map(str, ids))}&interval={interval}&from={START}"
                          f"&to={START + dt.timedelta(days=DAYS - 1)}&comeback={window}"
                          f"&bounce_threshold={b}+minute&engagement_threshold={e}+minute",
                          headers={"x-token": "tok"})
                assert r.status_code == 200, r.text
                got = {(int(o), row["datetime"], t): row
                       for o, types in r.json().items() for t, rows in types.items() for row in rows}
                want = {(g["object_id"], g["datetime"], g["user_type"]): g for g in gold
                        if g["object_type"] == otype and g["bounce_threshold"] == b
                        and g["engagement_threshold"] == e}
                assert set(want) <= set(got), "a gold row is missing from the answer"
                for key, row in got.items():
                    g = want.get(key)
                    expected = ({"datetime": key[1], "count_session": g["count_session"],
                                 "count_client": g["count_client"],
                                 "avg_session_duration": g["avg_session_duration"],
                                 "count_comeback_client": g[f"count_comeback_client_{suffix}"],
                                 "sum_session_duration": g["sum_session_duration"], "user_type": key[2]}
                                if g else expected_row(key[1], None, USER_TYPES.index(key[2])))
                    assert row == expected, key
                if interval == "hourly":  # every local hour, Berlin's DST start day has 23
                    mall_of = {o.id: o.mall_id for o in cfg.objects}
                    for o in ids:
                        per_day = {}
                        for (oid, label, t) in got:
                            if t == "all" and oid == o:
                                per_day[label[:10]] = per_day.get(label[:10], 0) + 1
                        berlin = cfg.mall(mall_of[o]).timezone == "Europe/Berlin"
                        assert per_day == {"2016-03-26": 24, "2016-03-27": 23 if berlin else 24,
                                           "2016-03-28": 24}


def test_a_spark_written_gold_with_deletion_vectors(spark, tmp_path):
    """Gold as Spark writes it (INT96 timestamps, partition columns), with deletion vectors:
    deleted rows must not come back (polars reads through delta-rs there)."""
    from delta.tables import DeltaTable as SparkDeltaTable

    from jobs.tables import GROUP_DATETIME, SCHEMAS
    from tests.report_world import gold_rows

    conf, _ = make_world(tmp_path)
    rows = [r for r in gold_rows() if r["mall_id"] == 1 and r["interval"] == "daily"]
    for r in rows:
        r["bucket_start"] = r["bucket_start"].replace(tzinfo=None)  # Spark's session zone is UTC
    spark_path = str(tmp_path / "spark-lake" / "gold" / "group_datetime")
    (spark.createDataFrame(rows, SCHEMAS[GROUP_DATETIME]).write.format("delta")
     .partitionBy("mall_id", "interval").option("delta.enableDeletionVectors", "true")
     .mode("overwrite").save(spark_path))
    SparkDeltaTable.forPath(spark, spark_path).delete("object_id = 1 AND bucket_date = DATE'2016-02-03'")
    assert "deletionVectors" in (DeltaTable(spark_path).protocol().reader_features or [])
    assert len(pl.DataFrame(DeltaTable(spark_path).deletion_vectors())) == 1  # not a rewrite
    with TestClient(create_app(conf, str(tmp_path / "spark-lake"))) as c:
        body = get(c, "objects=1&interval=daily&from=2016-02-01&to=2016-02-03").json()
    assert body["1"]["engaged"] == [
        expected_row("2016-02-01T00:00:00+03:00", 20, 3, gsh=81725.23),
        expected_row("2016-02-02T00:00:00+03:00", None, 3),
        expected_row("2016-02-03T00:00:00+03:00", None, 3),  # deleted
    ]


def test_warm_up_answers_one_report_per_interval_of_gold(world, tmp_path):
    conf, lake = world
    cfg = load_config(conf)
    stored = DeltaTable(str(lake / GROUP_DATETIME)).to_pyarrow_table(columns=["interval"])
    intervals = set(stored.column("interval").to_pylist())
    assert len(intervals) >= 2
    assert warm_up(Gold(str(lake), refresh_seconds=0), cfg) == len(intervals)
    # No gold yet: the server still starts; the first request answers 503.
    assert warm_up(Gold(str(tmp_path / "nowhere")), cfg) == 0


def test_a_failing_warm_up_does_not_stop_the_server(tmp_path, caplog):
    conf, lake = make_world(tmp_path)
    write_gold(lake, bucket_rows(111, "daily", "2016-01-31T21:00:00", "2016-02-01T00:00:00+03:00", 20))
    for f in (lake / GROUP_DATETIME).rglob("*.parquet"):
        f.write_bytes(b"not parquet")  # damaged files: every read of gold fails
    with caplog.at_level("ERROR", logger="uvicorn.error"), TestClient(create_app(conf, str(lake))) as c:
        assert get(c, "").status_code == 400  # the server answers
    assert "warm-up failed" in caplog.text
