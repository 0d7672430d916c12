"""storage.yaml's S3A settings as delta-rs storage options (jobs/objectstore.py): the
Spark-free readers reach the object store the Spark jobs write."""

from __future__ import annotations

import pytest

from jobs.objectstore import delta_rs_options, delta_rs_uri, location_problem

S3A = "spark.hadoop.fs.s3a."


@pytest.mark.parametrize("location, expected", [
    ("s3a://bucket/footfall/lakehouse", "s3://bucket/footfall/lakehouse"),
    ("s3://bucket/x", "s3://bucket/x"),
    ("file:/data/lakehouse", "/data/lakehouse"),
    ("file:///data/lake%20house", "/data/lake%20house"),
    ("/data/lakehouse", "/data/lakehouse"),
    ("abfss://c@a.dfs.core.windows.net/lake", "abfss://c@a.dfs.core.windows.net/lake"),
])
def test_locations_as_delta_rs_opens_them(location, expected):
    assert delta_rs_uri(location) == expected


@pytest.mark.parametrize("conf, expected", [
    ({}, {}),
    ({S3A + "endpoint": "http://127.0.0.1:9000", S3A + "path.style.access": "true"},
     {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true",
      "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false", "AWS_REGION": "us-east-1"}),
    # A bare host: S3A's scheme follows connection.ssl.enabled (default true).
    ({S3A + "endpoint": "minio.local:9000", S3A + "connection.ssl.enabled": "false"},
     {"AWS_ENDPOINT_URL": "http://minio.local:9000", "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1"}),
    ({S3A + "endpoint": "s3.eu-central-1.amazonaws.com", S3A + "endpoint.region": "eu-central-1"},
     {"AWS_ENDPOINT_URL": "https://s3.eu-central-1.amazonaws.com", "AWS_REGION": "eu-central-1"}),
    ({S3A + "path.style.access": "false"}, {"AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true"}),
    # Credentials never travel through the options: both sides read the environment.
    ({S3A + "access.key": "AKIA…", S3A + "secret.key": "…"}, {}),
])
def test_s3a_settings_as_storage_options(conf, expected):
    assert delta_rs_options(conf) == expected


# -- a storage URI that cannot work stops the run before Spark starts ----------------------

JARS = ["/x/.cache/jars/delta-spark_4.2_2.13-4.4.0.jar", "/x/.cache/s3-jars/hadoop-aws-3.5.0.jar"]


def test_a_local_path_or_another_scheme_is_left_to_its_own_checks():
    assert location_problem("lakehouse", "/data/lakehouse", {}, []) is None
    assert location_problem("lakehouse", "abfss://c@a.dfs.core.windows.net/lake", {}, []) is None


def test_s3_without_the_a_is_named():
    assert location_problem("--lakehouse", "s3://bucket/lake", {}, JARS) == (
        "--lakehouse s3://bucket/lake: Spark's Hadoop reaches S3 through the s3a:// scheme; "
        "write s3a://bucket/lake")


def test_a_missing_connector_is_named_before_anything_else():
    problem = location_problem("lakehouse (storage.yaml)", "s3a://bucket/lake", {}, JARS[:1])
    assert problem.startswith("lakehouse (storage.yaml) s3a://bucket/lake: the S3 connector "
                              "(hadoop-aws and the AWS SDK) is not among the session's JARs")
    assert "make setup" in problem


def test_missing_credentials_are_named(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    problem = location_problem("landing (storage.yaml)", "s3a://bucket/landing",
                               {S3A + "endpoint": "http://127.0.0.1:9"}, JARS)
    assert problem.startswith("landing (storage.yaml) s3a://bucket/landing: no S3 credentials: "
                              "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


def test_an_endpoint_that_does_not_answer_is_named(s3_server):
    from benchmarks.common import free_port
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    conf = {**s3_server.spark_conf(), S3A + "endpoint": endpoint}
    assert location_problem("lakehouse (storage.yaml)", "s3a://bucket/lake", conf, JARS) == (
        f"lakehouse (storage.yaml) s3a://bucket/lake: the S3 endpoint {endpoint} does not "
        "answer (spark.hadoop.fs.s3a.endpoint in storage.yaml)")


def test_a_bucket_that_does_not_exist_is_named_and_one_that_does_passes(s3_server):
    conf = s3_server.spark_conf()
    assert location_problem("--lakehouse", "s3a://no-such-bucket/lake", conf, JARS) == (
        f"--lakehouse s3a://no-such-bucket/lake: the bucket 'no-such-bucket' does not exist "
        f"at {s3_server.endpoint}")
    s3_server.bucket("there")
    assert location_problem("--lakehouse", "s3a://there/lake", conf, JARS) is None


# -- the readers without Spark reach gold on S3 with storage.yaml's settings alone ---------

PAGE_QUERY = ("/reports/group_datetime?objects=1,2&interval=daily&from=2016-02-01&to=2016-02-14"
              "&comeback=2+week&bounce_threshold=5+minute&engagement_threshold=20+minute")


@pytest.fixture
def gold_on_s3(s3_server, tmp_path):
    """The API tests' hand-made gold, on local disk and uploaded to S3; a storage.yaml that
    names the S3 server only through S3A settings."""
    from tests.report_world import make_world

    conf, lake = make_world(tmp_path)
    (conf / "storage.yaml").write_text("spark:\n  conf:\n" + "".join(
        f"    {k}: {v}\n" for k, v in s3_server.spark_conf().items()))
    s3_server.bucket("reports")
    s3_server.upload(lake, "reports", "lake")
    return conf, str(lake), "s3a://reports/lake"


def test_the_report_api_answers_from_gold_on_s3_as_from_local_disk(gold_on_s3):
    import warnings

    from reports.api import create_app
    from tests.report_world import TOKEN_ALL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    conf, local, s3 = gold_on_s3
    answers = []
    for lake in (local, s3):
        with TestClient(create_app(conf, lake, refresh_seconds=0, warm=False)) as client:
            response = client.get(PAGE_QUERY, headers={"x-token": TOKEN_ALL})
            assert response.status_code == 200, response.text
            answers.append(response.json())
    assert answers[0] == answers[1]
    assert sum(row["count_session"] for obj in answers[0].values() for row in obj["all"]) > 0


def test_the_exports_write_the_same_files_from_gold_on_s3(gold_on_s3, tmp_path):
    import datetime as dt

    from jobs.config import load_config
    from reports import exports

    conf, local, s3 = gold_on_s3
    files = []
    for name, lake in (("local", local), ("s3", s3)):
        out = tmp_path / "out" / name
        (conf / "exports.yaml").write_text(
            f"output: {out}\nexports:\n  - name: malls\n    objects: [1, 2]\n"
            "    interval: daily\n    range: last 7 days\n    formats: [csv, json]\n")
        outcomes = exports.run(load_config(conf).with_storage(lakehouse=lake), dt.date(2016, 2, 8),
                               say=lambda _: None)
        assert [o.error for o in outcomes] == [None]
        files.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert files[0] == files[1] and len(files[0]) == 2
