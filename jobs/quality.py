"""The nightly run's data-quality check (the footfall_nightly DAG's ``check_quality``).

:func:`check` is a pure function of the run's summary and the sessions per mall on the
run's date D and on D-7 (the same weekday a week earlier); it returns the problems, each
a sentence that says why. :func:`mall_sessions` reads those counts from
``silver/sessions`` with delta-rs, not through :mod:`jobs.tables`: the check runs in the
Airflow worker, which starts no Spark.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from jobs.objectstore import delta_rs_uri
from jobs.orchestration import Quality
from jobs.spec import SESSIONS

WHERE = "conf/airflow.yaml"


def quarantined_share(summary: Mapping[str, Any]) -> tuple[int, int, float]:
    """(quarantined, read, share) of the records the run read; share 0 when none read."""
    read = int(summary.get("records_read") or 0)
    rejected = sum(int(v) for v in (summary.get("rejected") or {}).values())
    return rejected, read, (rejected / read if read else 0.0)


def check(summary: Mapping[str, Any], sessions: Mapping[int, int], baseline: Mapping[int, int],
          date: dt.date, limits: Quality) -> list[str]:
    """The problems of a nightly run for ``date``; empty when it passes: landing files
    of no known format, too high a quarantined share, too deep a drop in sessions.

    :param summary: the run's summary (``python -m jobs … --summary-json``).
    :param sessions: mall id → mall-level sessions on ``date``.
    :param baseline: mall id → mall-level sessions on ``date - 7 days``; malls absent or
        under ``limits.min_baseline_sessions`` are not checked for a drop.
    """
    problems = []
    skipped = list(summary.get("files_skipped") or [])
    if skipped:
        # A file nobody reads is data lost in silence: a new sensor's format, a typo'd glob.
        problems.append(
            f"{len(skipped)} landing files of unknown format were skipped, e.g. "
            f"{', '.join(skipped[:3])}: give them a feed in conf/feeds.yaml (docs/operations.md, "
            "\"Feeds\"), move them out of the landing folder, or start their name with `_`")
    rejected, read, share = quarantined_share(summary)
    if share > limits.max_quarantined_share:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted((summary.get("rejected") or {}).items()))
        problems.append(
            f"{rejected} of the {read} records read ({share:.1%}) were quarantined ({reasons}); "
            f"the limit is {limits.max_quarantined_share:.1%} (quality.max_quarantined_share in "
            f"{WHERE}). Look at bronze/quarantine for this run's records")
    week_ago = date - dt.timedelta(days=7)
    for mall in sorted(baseline):
        before = int(baseline[mall])
        if before <= 0 or before < limits.min_baseline_sessions:
            continue
        now = int(sessions.get(mall, 0))
        drop = 1 - now / before
        if drop > limits.max_session_drop:
            problems.append(
                f"mall {mall}: {now} sessions on {date} ({date:%A}) against {before} on {week_ago}, "
                f"a drop of {drop:.0%}; the limit is {limits.max_session_drop:.0%} "
                f"(quality.max_session_drop in {WHERE}). Missing landing files or a sensor outage?")
    return problems


def mall_sessions(lakehouse: str, dates: list[dt.date],
                  storage_options: dict[str, str] | None = None) -> dict[dt.date, dict[int, int]]:
    """date → mall id → mall-level sessions in ``<lakehouse>/silver/sessions``.

    :param storage_options: delta-rs settings for an object store
        (:attr:`jobs.storagefile.Storage.delta_rs_options`)."""
    import polars as pl
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    path = f"{delta_rs_uri(lakehouse.rstrip('/'))}/{SESSIONS}"
    out: dict[dt.date, dict[int, int]] = {d: {} for d in dates}
    try:
        DeltaTable(path, storage_options=storage_options)
    except TableNotFoundError:
        return out
    counts = (pl.scan_delta(path, storage_options=storage_options)
              .filter(pl.col("date").is_in(dates) & (pl.col("object_type") == "mall"))
              .group_by("date", "mall_id").len().collect())
    for d, mall, n in counts.iter_rows():
        out[d][int(mall)] = int(n)
    return out
