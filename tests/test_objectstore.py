"""storage.yaml's S3A settings as delta-rs storage options (jobs/objectstore.py): the
Spark-free readers reach the object store the Spark jobs write."""

from __future__ import annotations

import pytest

from jobs.objectstore import delta_rs_options, delta_rs_uri

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
