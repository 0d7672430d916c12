"""An S3 + DynamoDB server on 127.0.0.1 for the object-storage tests and ``make bench-s3``:
moto's standalone server, started on a free port and stopped by the fixture ``s3_server``
(tests/conftest.py) or the benchmark. Nothing real is reached: the credentials are moto's
test ones, the endpoint is loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from benchmarks.common import free_port, stop_process

#: What a process needs in its environment to reach the server (and nothing beyond it).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass
class S3Server:
    """A running moto server; ``endpoint`` is its URL."""

    port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spark_conf(self) -> dict[str, str]:
        """The storage.yaml ``spark.conf`` keys that reach this server through S3A."""
        return {"spark.hadoop.fs.s3a.endpoint": self.endpoint,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": "false"}

    def client(self, service: str = "s3"):
        import boto3
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def bucket(self, name: str) -> str:
        """Create the bucket ``name`` (if new); return its ``s3a://`` root."""
        s3 = self.client()
        if name not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=name)
        return f"s3a://{name}"

    def upload(self, folder, bucket: str, prefix: str) -> int:
        """Copy every file under the local ``folder`` to ``s3://bucket/prefix/…``."""
        s3, n = self.client(), 0
        for d, _, files in os.walk(folder):
            for f in files:
                path = os.path.join(d, f)
                s3.upload_file(path, bucket, f"{prefix}/{os.path.relpath(path, folder)}")
                n += 1
        return n


def start(timeout: float = 60) -> S3Server:
    """Start moto's server on a free loopback port and wait until it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).close()
            return S3Server(port, proc)
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"moto's server exited with code {proc.returncode}")
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"moto's server did not answer on port {port} within {timeout} s")


def stop(server: S3Server) -> None:
    stop_process(server.process, 10)
