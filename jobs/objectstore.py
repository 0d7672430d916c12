"""One place that turns storage.yaml's Spark settings into what delta-rs needs, so that
every reader without Spark (the report API and exports, the nightly quality check, the
BI catalog's comment check) reaches the same object store as the Spark jobs.

Spark-free: the API and the Airflow worker import it.
"""

from __future__ import annotations

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
