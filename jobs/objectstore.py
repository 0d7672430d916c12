"""One place that turns storage.yaml's Spark settings into what the readers without
Spark need (delta-rs options for the report API and exports, the nightly quality check,
the BI catalog's comment check; a boto3 client for the run lock), so that they reach the
same object store as the Spark jobs; and the check that a storage URI is usable before a
run starts.

Spark-free: the API and the Airflow worker import it.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Mapping

_S3A = "spark.hadoop.fs.s3a."


def delta_rs_uri(location: str) -> str:
    """A lakehouse or table location as delta-rs opens it: ``s3a://`` (Hadoop's name) is
    ``s3://`` there, and a ``file:`` URI is its path."""
    if location.startswith("s3a://"):
        return "s3://" + location[len("s3a://"):]
    if location.startswith("file:"):
        return urllib.parse.urlparse(location).path
    return location


def delta_rs_options(spark_conf: Mapping[str, str]) -> dict[str, str]:
    """delta-rs ``storage_options`` from Spark's S3A settings (``spark.hadoop.fs.s3a.*``
    under ``spark.conf`` in storage.yaml): the endpoint, plain HTTP, path-style access and
    the region. Credentials are not copied: both sides read them from the standard
    environment variables (``AWS_ACCESS_KEY_ID`` …) or the machine's role."""
    out: dict[str, str] = {}
    endpoint = spark_conf.get(_S3A + "endpoint")
    ssl = str(spark_conf.get(_S3A + "connection.ssl.enabled", "true")).lower() != "false"
    if endpoint:
        if "://" not in endpoint:  # S3A takes a bare host; its scheme follows the SSL setting
            endpoint = ("https://" if ssl else "http://") + endpoint
        out["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            out["AWS_ALLOW_HTTP"] = "true"
    path_style = spark_conf.get(_S3A + "path.style.access")
    if path_style is not None:
        out["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false" if str(path_style).lower() == "true" else "true"
    region = spark_conf.get(_S3A + "endpoint.region")
    if region:
        out["AWS_REGION"] = region
    elif endpoint:
        # A custom endpoint (MinIO, moto, Ceph) ignores the region, but the signer needs one.
        out["AWS_REGION"] = "us-east-1"
    return out


def bucket_and_key(location: str) -> tuple[str, str]:
    """``s3a://bucket/some/prefix`` → ``("bucket", "some/prefix")``."""
    parsed = urllib.parse.urlparse(location)
    return parsed.netloc, parsed.path.strip("/")


def s3_client(spark_conf: Mapping[str, str]):
    """A boto3 S3 client for the endpoint storage.yaml gives Spark (credentials from the
    environment or the machine's role, as for Spark). Quick to give up: it checks and
    locks, it does not move data."""
    import boto3
    from botocore.config import Config as BotoConfig

    opts = delta_rs_options(spark_conf)
    path_style = opts.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST") == "false"
    return boto3.client(
        "s3", endpoint_url=opts.get("AWS_ENDPOINT_URL"), region_name=opts.get("AWS_REGION"),
        config=BotoConfig(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3},
                          s3={"addressing_style": "path" if path_style else "auto"}))


def location_problem(setting: str, location: str, spark_conf: Mapping[str, str],
                     jars: list[str]) -> str | None:
    """Why Spark could not use ``location`` (named ``setting`` in the message), found
    before any read or write: ``s3://`` where Hadoop needs ``s3a://``, the S3 connector
    missing from ``jars``, no credentials, an endpoint that does not answer, a bucket
    that does not exist or refuses us. None when nothing is wrong, or for a local path or
    another scheme (that connector's own error stands)."""
    scheme = urllib.parse.urlparse(location).scheme
    if scheme in ("s3", "s3n"):
        return (f"{setting} {location}: Spark's Hadoop reaches S3 through the s3a:// scheme; "
                f"write s3a://{location.split('://', 1)[1]}")
    if scheme != "s3a":
        return None
    if not any(os.path.basename(j).startswith("hadoop-aws-") for j in jars):
        return (f"{setting} {location}: the S3 connector (hadoop-aws and the AWS SDK) is not "
                "among the session's JARs: run `make setup` (it resolves them into .cache/s3-jars)")
    import boto3
    import botocore.exceptions as bx

    endpoint = spark_conf.get(_S3A + "endpoint") or "AWS's default endpoint"
    bucket, _ = bucket_and_key(location)
    client = s3_client(spark_conf)
    if boto3.session.Session().get_credentials() is None:
        return (f"{setting} {location}: no S3 credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones) in the "
                "environment, or run where the machine's role grants access")
    try:
        client.head_bucket(Bucket=bucket)
    except bx.EndpointConnectionError:
        return (f"{setting} {location}: the S3 endpoint {endpoint} does not answer "
                f"(spark.hadoop.fs.s3a.endpoint in storage.yaml)")
    except bx.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            return f"{setting} {location}: the bucket {bucket!r} does not exist at {endpoint}"
        if code in ("403", "AccessDenied", "Forbidden"):
            return (f"{setting} {location}: access to the bucket {bucket!r} at {endpoint} is "
                    "denied to these credentials (AWS_ACCESS_KEY_ID …)")
        return f"{setting} {location}: {endpoint} answered {code}: {exc}"
    except bx.BotoCoreError as exc:
        return f"{setting} {location}: {exc} (spark.hadoop.fs.s3a.endpoint in storage.yaml: {endpoint})"
    return None
