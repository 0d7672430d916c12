"""One writer at a time per lakehouse: the run lock.

Every run that writes (nightly, backfill, maintain) holds ``<lakehouse>/_footfall.lock``
for its whole life. A second run started meanwhile stops at once, before any read or
write, with a message naming the holder; it is safe to start it again later.

On a local disk the lock is an ``flock``, so the kernel releases it when its holder
dies, however it dies (``kill -9`` included): a crashed run never leaves a stale lock.
On S3 (``s3a://``) it is a lease object taken with a conditional put
(:mod:`jobs.s3lock`): a killed holder's lease ends after ``run_lock.lease_seconds``
(storage.yaml). Other object stores (``abfss://`` …) have no lock here; there, Delta's
optimistic concurrency makes the later of two conflicting commits fail (see
:class:`ConcurrentRunError`) and the Airflow pool ``footfall_lakehouse`` keeps
scheduled runs apart (docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import urlparse

LOCK_FILE = "_footfall.lock"


class LakehouseBusy(RuntimeError):
    """Another run holds the lakehouse's lock; nothing was read or written."""


class ConcurrentRunError(RuntimeError):
    """Delta refused a commit because another writer changed the table meanwhile; the
    tables hold either the state before this run's step or the other run's."""


def local_folder(root: str) -> Path | None:
    """The local folder of a lakehouse root (a path or ``file:`` URI), else None."""
    parsed = urlparse(root)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else root)
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return Path(root)
    return None


@contextlib.contextmanager
def exclusive(root: str, command: str, lock_file: str = LOCK_FILE, what: str = "lakehouse",
              spark_conf: Mapping[str, str] | None = None, lease_seconds: int = 300) -> Iterator[None]:
    """Hold the run lock of the lakehouse at ``root`` while the block runs.

    :param command: what the run is (``nightly --date …``), shown to a run that waits.
    :param lock_file, what: another lock of the same kind (the SQL server's on its
        metastore folder) and what the message calls its folder.
    :param spark_conf, lease_seconds: on S3, the S3A settings that reach the bucket and
        how long a lease lasts unless renewed.
    :raises LakehouseBusy: another run holds it.
    """
    folder = local_folder(root)
    if folder is None:
        if urlparse(root).scheme == "s3a":
            from jobs.s3lock import lease
            with lease(root, command, spark_conf or {}, lease_seconds, lock_file, what, LakehouseBusy):
                yield
        else:
            yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / lock_file
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LakehouseBusy(f"{what} {root} is busy: {_holder(path)} holds {path}. "
                                "Nothing was done; run again when it has finished") from None
        holder = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


#: Lakehouses whose lock this process holds for its whole run (:func:`held_for_run`).
_HELD_FOR_RUN: set[str] = set()


def lakehouse_lock(storage, command: str):
    """:func:`exclusive` on the lakehouse of ``storage`` (a :class:`jobs.storagefile.Storage`),
    with its object-store settings and lease; nothing more inside :func:`held_for_run`,
    which holds it already."""
    if storage.lakehouse in _HELD_FOR_RUN:
        return contextlib.nullcontext()
    return exclusive(storage.lakehouse, command, spark_conf=storage.spark_conf,
                     lease_seconds=storage.lease_seconds)


@contextlib.contextmanager
def held_for_run(storage, command: str) -> Iterator[None]:
    """Hold the lakehouse's lock for a whole command, from before Spark starts: a busy
    lakehouse is reported at once rather than after Spark's start-up. The run's own
    :func:`lakehouse_lock` inside the block then takes nothing more (a second flock of
    the same file by the same process would find it busy).

    A local lakehouse that does not exist yet is not created for this: a run stopped by
    bad input must leave nothing behind, so its lock waits for its first write.

    :raises LakehouseBusy: another run holds it.
    """
    folder = local_folder(storage.lakehouse)
    if folder is not None and not folder.is_dir():
        yield
        return
    with lakehouse_lock(storage, command):
        _HELD_FOR_RUN.add(storage.lakehouse)
        try:
            yield
        finally:
            _HELD_FOR_RUN.discard(storage.lakehouse)


def holder(root: str, lock_file: str = LOCK_FILE) -> str | None:
    """Who holds the lock ``lock_file`` under the local folder ``root`` now; None when
    nobody does (or ``root`` is not local)."""
    folder = local_folder(root)
    path = folder / lock_file if folder else None
    if path is None or not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _holder(path)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text() or "{}")
        return f"run `{h['command']}` (pid {h['pid']} on {h['host']}, since {h['since']})"
    except (OSError, ValueError, KeyError):
        return "another run"
