"""The three writing commands (SPEC §11) as short lists of stages (:mod:`jobs.stages`).

Each holds the lakehouse's run lock while it writes, resolves the HMAC key for client
ids once, and returns its :class:`~jobs.summary.Summary` (or maintenance's report).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time

from delta.exceptions import DeltaConcurrentModificationException
from pyspark.sql import SparkSession

from jobs import catalog, stages
from jobs.config import Config, client_id_key
from jobs.landing import check_landing
from jobs.lock import ConcurrentRunError, lakehouse_lock
from jobs.scope import DateRanges, by_mall
from jobs.spec import PENDING_DATES
from jobs.summary import Summary, stage
from jobs.tables import Lakehouse


class RunError(RuntimeError):
    """The run cannot start (bad arguments); nothing was written."""


@contextlib.contextmanager
def writing(cfg: Config, command: str):
    """Hold the lakehouse's run lock (:mod:`jobs.lock`) while a run writes, and turn a
    Delta conflict with another writer into :class:`ConcurrentRunError`."""
    with lakehouse_lock(cfg.storage, command):
        try:
            yield
        except DeltaConcurrentModificationException as exc:
            first = str(exc).strip().splitlines()[0][:400]
            raise ConcurrentRunError(
                f"another writer changed the lakehouse {cfg.storage.lakehouse} during this run "
                f"({type(exc).__name__}: {first}). Every table is as one of the two runs left "
                "it; run this one again") from None


def nightly_command(date: dt.date) -> str:
    """How a nightly run names itself to a run it keeps waiting (the lock's holder)."""
    return f"nightly --date {date}"


def backfill_malls(cfg: Config, malls: list[int] | None) -> list[int]:
    """The malls a backfill covers: those named, every mall of the config when none.

    :raises RunError: a named mall is not in the config.
    """
    known = {m.id for m in cfg.malls}
    malls = malls or sorted(known)
    unknown = sorted(set(malls) - known)
    if unknown:
        raise RunError(f"--malls: unknown mall id(s) {', '.join(map(str, unknown))}; "
                       f"config has {', '.join(map(str, sorted(known)))}")
    return malls


def backfill_command(cfg: Config, start: dt.date, end: dt.date, malls: list[int] | None) -> str:
    """How a backfill names itself (:func:`backfill_malls` gives its malls)."""
    return f"backfill --from {start} --to {end} --malls {','.join(map(str, backfill_malls(cfg, malls)))}"


def maintain_command(retain_hours: float) -> str:
    """How a maintenance run names itself."""
    return f"maintain --retain-hours {retain_hours:g}"


def _start(spark: SparkSession, cfg: Config, command: str) -> tuple[Summary, Lakehouse, bytes]:
    """Checks before any write (landing folder, HMAC key), a new summary, the lakehouse,
    and the HMAC key this run uses."""
    check_landing(spark, cfg.storage.landing)
    # ConfigError when storage.yaml requires FOOTFALL_HMAC_KEY and it is unset.
    key, is_dev_key = client_id_key(cfg)
    summary = Summary.start(command)
    if is_dev_key:
        summary.notes.append("client ids use the development HMAC key: set FOOTFALL_HMAC_KEY "
                             "for real data")
    return summary, Lakehouse(spark, cfg.storage.lakehouse, cfg.storage.delta_rs_options), key


def _recompute(spark: SparkSession, lake: Lakehouse, cfg: Config, summary: Summary,
               ranges: DateRanges, sensors) -> None:
    if not ranges:
        return
    with stage(summary, "sessions", spark):
        stages.build_sessions(lake, cfg, summary, ranges, sensors)
    with stage(summary, "gold", spark):
        stages.build_gold(spark, lake, cfg, summary, stages.gold_scope(lake, cfg, ranges))


def _catalog(spark: SparkSession, cfg: Config, lake: Lakehouse, summary: Summary) -> None:
    note = catalog.after_run(spark, cfg, lake)
    if note:
        summary.notes.append(note)


def nightly(spark: SparkSession, cfg: Config, date: dt.date,
            now: dt.datetime | None = None) -> Summary:
    """Ingest new files, then recompute every bucket up to local date ``date`` that new
    data touches (SPEC §11). Records dated before ``date - max_lateness_days`` are
    quarantined as ``too_late``; records after ``date`` wait for their own run.

    :raises LakehouseBusy: another run holds the lakehouse (nothing was done).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    summary, lake, key = _start(spark, cfg, nightly_command(date))
    with writing(cfg, summary.command):
        sensors = stages.sync_sensors(spark, lake, cfg, now.date())
        with stage(summary, "ingest", spark):
            cutoff = date - dt.timedelta(days=cfg.settings.max_lateness_days)
            stages.ingest_new_files(spark, lake, cfg, summary, key, now, too_late_before=cutoff)
        malls = {m.id for m in cfg.malls}
        pending = by_mall((m, d) for m, d in lake.rows(PENDING_DATES) if d <= date and m in malls)
        _recompute(spark, lake, cfg, summary, pending, sensors)
        with stage(summary, "finish", spark):
            if pending:
                stages.clear_pending(lake, pending)
            _catalog(spark, cfg, lake, summary)
    return summary


def backfill(spark: SparkSession, cfg: Config, start: dt.date, end: dt.date,
             malls: list[int] | None = None, now: dt.datetime | None = None) -> Summary:
    """Ingest new files, bring in the quarantined records of the range that a backfill
    replays (``too_late``; ``unknown_sensor`` of sensors added since), then recompute
    ``start`` … ``end`` (and what depends on it) from the stored probes.

    :raises LakehouseBusy: another run holds the lakehouse (nothing was done).
    """
    if start > end:
        raise RunError(f"--from {start} is after --to {end}")
    malls = backfill_malls(cfg, malls)
    now = now or dt.datetime.now(dt.timezone.utc)
    summary, lake, key = _start(spark, cfg, backfill_command(cfg, start, end, malls))
    ranges: DateRanges = {m: [(start, end)] for m in malls}
    with writing(cfg, summary.command):
        sensors = stages.sync_sensors(spark, lake, cfg, now.date())
        with stage(summary, "ingest", spark):
            stages.ingest_new_files(spark, lake, cfg, summary, key, now, too_late_before=None)
            stages.replay_quarantine(spark, lake, cfg, summary, key, now, ranges)
        _recompute(spark, lake, cfg, summary, ranges, sensors)
        with stage(summary, "finish", spark):
            stages.clear_pending(lake, ranges)
            _catalog(spark, cfg, lake, summary)
    return summary


def maintain(spark: SparkSession, cfg: Config, retain_hours: float) -> str:
    """The weekly maintenance (:mod:`jobs.maintenance`) under the run lock; its report."""
    from jobs.maintenance import maintain as maintain_tables
    lake = Lakehouse(spark, cfg.storage.lakehouse, cfg.storage.delta_rs_options)
    t0 = time.perf_counter()
    with writing(cfg, maintain_command(retain_hours)):
        reports = maintain_tables(spark, lake, retain_hours)
    lines = [f"footfall maintain — {cfg.storage.lakehouse} ({time.perf_counter() - t0:.1f}s)"]
    return "\n".join(lines + [r.render() for r in reports])
