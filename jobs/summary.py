"""The run summary: what a run read, rejected and wrote, and how long each stage took.

Printed at the end of ``footfall nightly|backfill``; ``--summary-json`` writes it for
schedulers (the Airflow data-quality check reads it) and benchmarks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from jobs import progress


@dataclass
class Summary:
    """What a run did; printed at its end."""

    command: str
    run_id: str
    files_seen: int = 0
    files_new: int = 0
    #: Landing files no feed and no known extension claims (relative paths).
    files_skipped: list[str] = field(default_factory=list)
    #: Capture frames read (every kind), probe requests among them, frames of other
    #: kinds (skipped, not errors) and unusable probe frames (quarantined).
    frames_read: int = 0
    frames_probes: int = 0
    frames_other: int = 0
    frames_unusable: int = 0
    records_read: int = 0
    records_valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    randomized_read: int = 0
    randomized_excluded: int = 0
    replayed_from_quarantine: int = 0
    session_dates: int = 0
    sessions_written: int = 0
    gold_buckets_dates: int = 0
    gold_rows_written: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    stage_spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, command: str) -> "Summary":
        """A new summary with a fresh run id (UTC time + a random suffix)."""
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        return cls(command=command, run_id=f"{now}-{uuid.uuid4().hex[:6]}")

    def reject(self, reason: str, n: int) -> None:
        """Count ``n`` records quarantined for ``reason``."""
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def to_json(self) -> str:
        """The summary as JSON (for schedulers, data-quality checks and benchmarks)."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    def render(self) -> str:
        """The summary as a few lines a person reads."""
        lines = [f"footfall {self.command} — run {self.run_id}"]
        lines.append(f"  landing files      {self.files_new} new of {self.files_seen}")
        if self.files_skipped:
            lines.append(f"  skipped            {len(self.files_skipped)} files of unknown format, e.g. "
                         + ", ".join(self.files_skipped[:3]))
        if self.frames_read:
            lines.append(f"  capture frames     {self.frames_read}: {self.frames_probes} probe requests, "
                         f"{self.frames_other} other frames skipped, {self.frames_unusable} unusable "
                         "(quarantined)")
        lines.append(f"  records read       {self.records_read}  (valid {self.records_valid})")
        rej = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"
        lines.append(f"  rejected           {sum(self.rejected.values())}  ({rej})")
        lines.append(f"  randomised MACs    {self.randomized_read} read, "
                     f"{self.randomized_excluded} probes excluded from sessions")
        if self.replayed_from_quarantine:
            lines.append(f"  replayed too_late  {self.replayed_from_quarantine}")
        lines.append(f"  sessions           {self.sessions_written} written for {self.session_dates} mall-dates")
        lines.append(f"  gold rows          {self.gold_rows_written} written "
                     f"(buckets over {self.gold_buckets_dates} mall-dates)")
        total = sum(self.timings.values())
        times = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        lines.append(f"  time               {total:.1f}s  ({times})")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


@contextlib.contextmanager
def stage(summary: Summary, name: str, spark=None) -> Iterator[None]:
    """Time the ``with`` block as stage ``name`` of the run: its seconds, and its span in
    epoch seconds, which the benchmark lines up with its memory samples. Reports its
    start and end as progress, with a heartbeat from ``spark`` while it runs."""
    t0, wall0 = time.perf_counter(), time.time()
    progress.step("%s …", name)
    try:
        with progress.Heartbeat(spark, name):
            yield
    finally:
        summary.timings[name] = time.perf_counter() - t0
        summary.stage_spans[name] = (wall0, time.time())
        progress.step("%s done in %.1fs", name, summary.timings[name])
