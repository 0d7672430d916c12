"""The run lock on S3: an object beside the tables, taken with a conditional put.

S3 has no ``flock``, but it refuses a put with ``If-None-Match: *`` when the key exists,
and one with ``If-Match: <ETag>`` when the object has changed since: enough for a lease.
The holder writes who it is and when its lease ends, renews the lease from a thread every
third of its length, and deletes the object on exit. A holder killed without cleanup
(``kill -9``, a lost machine) keeps the lock until its lease ends; the next run then takes
it over with a put conditional on the dead holder's ETag, so of two runs that find the
same stale lease only one wins. Lease ends are compared across machines: keep their
clocks synchronised (NTP), as any lease needs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import threading
import uuid
from typing import Iterator, Mapping

from jobs.objectstore import bucket_and_key, s3_client

_REFUSED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


@contextlib.contextmanager
def lease(root: str, command: str, spark_conf: Mapping[str, str], lease_seconds: int,
          lock_file: str, what: str, busy: type[Exception]) -> Iterator[None]:
    """Hold the lock object ``<root>/<lock_file>`` while the block runs.

    :raises busy: another run holds a lease that has not ended.
    """
    from botocore.exceptions import ClientError

    client = s3_client(spark_conf)
    bucket, prefix = bucket_and_key(root)
    key = f"{prefix}/{lock_file}" if prefix else lock_file
    where = f"s3a://{bucket}/{key}"
    me = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
          "since": _now().isoformat(timespec="seconds"), "token": uuid.uuid4().hex}

    def body() -> bytes:
        until = _now() + dt.timedelta(seconds=lease_seconds)
        return json.dumps({**me, "until": until.isoformat(timespec="seconds")}).encode()

    try:
        etag = client.put_object(Bucket=bucket, Key=key, Body=body(), IfNoneMatch="*")["ETag"]
    except ClientError as exc:
        if _code(exc) not in _REFUSED:
            raise
        etag = _take_over(client, bucket, key, body, root, where, what, busy)

    state = {"etag": etag, "lost": None}
    stop = threading.Event()

    def renew() -> None:
        warned = False
        while not stop.wait(lease_seconds / 3):
            try:
                state["etag"] = client.put_object(Bucket=bucket, Key=key, Body=body(),
                                                  IfMatch=state["etag"])["ETag"]
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                if _code(exc) in _REFUSED + ("NoSuchKey", "404"):
                    state["lost"] = exc  # another run took it over: it is not ours to renew
                    print(f"warning: the run lock {where} was taken over by another run "
                          f"({exc}); Delta still refuses a conflicting commit", file=sys.stderr)
                    return
                if not warned:  # the store did not answer: try again at the next third
                    print(f"warning: the run lock {where} could not be renewed ({exc}); "
                          "trying again", file=sys.stderr)
                    warned = True

    renewer = threading.Thread(target=renew, name="footfall-lock-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        if state["lost"] is None:
            with contextlib.suppress(ClientError):
                client.delete_object(Bucket=bucket, Key=key, IfMatch=state["etag"])


def _take_over(client, bucket, key, body, root, where, what, busy) -> str:
    """Take the lock from a holder whose lease has ended; raise ``busy`` otherwise."""
    from botocore.exceptions import ClientError

    try:
        current = client.get_object(Bucket=bucket, Key=key)
        held = json.loads(current["Body"].read() or b"{}")
        until = dt.datetime.fromisoformat(held["until"])
    except client.exceptions.NoSuchKey:
        # Released between our put and our read: try once more from scratch.
        held, until, current = {}, _now(), None
    except (ValueError, KeyError):
        held, until = {}, _now()  # not ours to read: an unreadable lock is a stale one
    if until > _now():
        who = (f"run `{held.get('command')}` (pid {held.get('pid')} on {held.get('host')}, "
               f"since {held.get('since')})")
        raise busy(f"{what} {root} is busy: {who} holds {where} (its lease ends at "
                   f"{until.isoformat(timespec='seconds')} unless renewed). Nothing was done; "
                   "run again when it has finished")
    try:
        if current is None:
            return client.put_object(Bucket=bucket, Key=key, Body=body(), IfNoneMatch="*")["ETag"]
        return client.put_object(Bucket=bucket, Key=key, Body=body(), IfMatch=current["ETag"])["ETag"]
    except ClientError as exc:
        if _code(exc) not in _REFUSED:
            raise
        raise busy(f"{what} {root} is busy: another run took over the ended lease of "
                   f"{where} just now. Nothing was done; run again when it has finished") from None
