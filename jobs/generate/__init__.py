"""Synthetic footfall data: a seeded simulator that writes SPEC-shaped config
(``objects.yaml``, ``pipeline.yaml``) and landing files (SPEC §2).

Public API::

    make_objects(malls=None, seed=42) -> dict
    write_objects_yaml(path, tree) -> Path
    write_pipeline_yaml(path) -> Path
    generate(conf_dir, landing_dir, *, start, days, devices=None, target_probes=None,
             seed=42, bad_share=0.01, ..., feeds=None) -> Summary
    estimate_probes(conf_dir, *, start, days, devices, seed=42, ...) -> int
    devices_for_target(conf_dir, *, start, days, target_probes, seed=42, ...) -> int
    main(argv) -> int        # the `generate` command line

With ``feeds`` (a conf/feeds.yaml ``FeedsFile``; ``--feeds``), some sensors' records are
written as those feeds' pcap, pcapng or vendor CSV files instead (jobs/generate/feedfiles.py).

Same arguments => byte-identical files (numpy ``Generator(PCG64)`` streams keyed
by seed, mall id and day; gzip written with mtime 0).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .feedfiles import FeedRouting
from .traffic import Behaviour, iter_mall_days
from .world import (World, load_world, make_objects, world_from_tree,
                    write_objects_yaml, write_pipeline_yaml)
from .writer import REASONS, LandingWriter

__all__ = [
    "make_objects", "write_objects_yaml", "write_pipeline_yaml", "generate",
    "estimate_probes", "devices_for_target", "Summary", "main", "DEFAULT_DEVICES",

]

# Mean devices per mall per weekday of the default demo: ~1.2 M records over
# 2016-01-04 … 2016-02-29 for the two demo malls.
DEFAULT_DEVICES = 600
DEFAULT_START = date(2016, 1, 4)
DEFAULT_DAYS = 57


@dataclass
class Summary:
    landing_dir: str
    start: date
    days: int
    malls: list
    devices: int
    seed: int
    probes: int = 0                 # valid probe records (first deliveries, dup copies excluded)
    records: int = 0                # every record line, probe frame, CSV row; copies included
    files: int = 0                  # every file, feed files and re-delivered copies included
    bytes: int = 0
    duplicates: int = 0             # extra exact-duplicate records
    duplicates_other_rssi: int = 0  # … of which carry another RSSI
    bad: dict = field(default_factory=dict)        # reason -> records
    bad_kinds: dict = field(default_factory=dict)  # "reason/kind" -> records
    late_files: int = 0
    late_records: int = 0
    redelivered_files: int = 0
    redelivered_records: int = 0
    randomised_stays: int = 0       # stays with a fresh randomised MAC
    randomised_probes: int = 0
    employees: int = 0              # employee pool, all malls
    employee_days: int = 0
    visitor_stays: int = 0
    passer_stays: int = 0
    returning_stays: int = 0        # visitor + passer stays of persistent-pool devices
    distinct_devices: int = 0       # distinct non-randomised MACs
    formats: dict = field(default_factory=dict)    # ext -> SPEC files (first deliveries)
    feed_files: int = 0             # of files: the feeds' (--feeds), copies included
    feed_records: int = 0           # of records: probe frames and CSV rows in feed files
    other_frames: int = 0           # beacons and data frames in capture files (not records)
    feed_formats: dict = field(default_factory=dict)  # "pcap", "csv.gz", … -> first deliveries
    feeds: list = field(default_factory=list)  # per feed: path, format, sensors, files, records
    seconds: float = 0.0

    @property
    def bad_total(self) -> int:
        return sum(self.bad.values())

    def text(self) -> str:
        end = date.fromordinal(self.start.toordinal() + self.days - 1)
        rate = self.records / self.seconds if self.seconds else 0.0
        bad = ", ".join(f"{r} {self.bad.get(r, 0)}" for r in REASONS)
        return "\n".join([
            f"generated {self.landing_dir}: malls {','.join(map(str, self.malls))}, "
            f"{self.start}..{end} ({self.days} days), {self.devices} devices/mall/day, seed {self.seed}",
            f"  records {self.records:,} in {self.files:,} files ({self.bytes / 1e6:,.1f} MB), "
            f"valid probes {self.probes:,}",
            f"  duplicates {self.duplicates:,} ({self.duplicates_other_rssi:,} with another rssi); "
            f"bad {self.bad_total:,}: {bad}",
            f"  late files {self.late_files} ({self.late_records:,} records), "
            f"re-delivered copies {self.redelivered_files} ({self.redelivered_records:,} records)",
            f"  stays: visitors {self.visitor_stays:,} (returning+commuters {self.returning_stays:,}), "
            f"passers {self.passer_stays:,}, randomised {self.randomised_stays:,}; "
            f"employees {self.employees} ({self.employee_days:,} work days); "
            f"distinct devices {self.distinct_devices:,}",
            *self._feed_lines(),
            f"  {self.seconds:.1f} s, {rate:,.0f} records/s",
        ])

    def _feed_lines(self) -> list[str]:
        if not self.feeds:
            return []
        formats = ", ".join(f"{k} {v}" for k, v in sorted(self.feed_formats.items()))
        out = [f"  feeds: {self.feed_files:,} files with copies (first deliveries: {formats}), "
               f"{self.feed_records:,} records, {self.other_frames:,} beacon/data frames"]
        for f in self.feeds:
            sensors = ", ".join(f["sensors"]) or "no sensor of objects.yaml"
            out.append(f"    {f['path']} ({f['format']}): {sensors}: {f['files']:,} files, "
                       f"{f['records']:,} records")
        return out

    __str__ = text


def _world(conf) -> World:
    if isinstance(conf, World):
        return conf
    if isinstance(conf, dict):
        return world_from_tree(conf)
    return load_world(conf)


def _start_day(start: date) -> int:
    return start.toordinal() - date(1970, 1, 1).toordinal()


def estimate_probes(conf, *, start: date = DEFAULT_START, days: int = DEFAULT_DAYS,
                    devices: float = DEFAULT_DEVICES, seed: int = 42, bad_share: float = 0.01,
                    dup_share: float = 0.005, behaviour: Behaviour | None = None) -> int:
    """Records that ``generate`` would write in first deliveries (valid probes +
    duplicates + bad records; re-delivered copies add ~2 % more). Runs the
    simulation without writing anything; ``conf`` is a conf folder or a tree dict."""
    world = _world(conf)
    n = 0
    for _, _, p in iter_mall_days(world, _start_day(start), days, devices, seed,
                                  behaviour or Behaviour()):
        n += len(p)
    n = n * (1 + dup_share)
    return int(round(n / (1 - bad_share)))


def devices_for_target(conf, *, start: date = DEFAULT_START, days: int = DEFAULT_DAYS,
                       target_probes: int, seed: int = 42, bad_share: float = 0.01,
                       dup_share: float = 0.005, behaviour: Behaviour | None = None) -> int:
    """The ``devices`` value whose output is closest to ``target_probes`` records
    (first deliveries). Two or three simulation passes, no writing."""
    world = _world(conf)
    kw = dict(start=start, days=days, seed=seed, bad_share=bad_share, dup_share=dup_share,
              behaviour=behaviour)
    d = max(1.0, target_probes / (22.0 * days * len(world.malls)))
    for _ in range(3):
        est = estimate_probes(world, devices=d, **kw)
        if est <= 0:
            break
        ratio = target_probes / est
        if abs(ratio - 1) < 0.03:
            break
        d = max(1.0, d * ratio)
    return max(1, int(round(d)))


def _clean(landing: Path) -> None:
    landing = landing.resolve()
    if landing == Path(landing.anchor) or landing == Path.home().resolve():
        raise ValueError(f"refusing to clean {landing}")
    if landing.exists():
        for child in landing.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def generate(conf_dir, landing_dir, *, start: date = DEFAULT_START, days: int = DEFAULT_DAYS,
             devices: int | None = None, target_probes: int | None = None, seed: int = 42,
             bad_share: float = 0.01, dup_share: float = 0.005, gz_share: float = 0.4,
             late_share: float = 0.02, redeliver_share: float = 0.02,
             max_file_records: int = 200_000, clean: bool = False,
             behaviour: Behaviour | None = None, feeds=None) -> Summary:
    """Simulate traffic over ``conf_dir/objects.yaml`` and write landing files.

    ``devices``: mean devices per mall per weekday (weekends x1.5): ~80 % passers,
    ~17 % visitors, a 2 % employee pool (at least 3). Without ``devices``,
    ``target_probes`` picks it (records in first deliveries, ±5 %); with neither,
    ``DEFAULT_DEVICES``. ``clean`` empties ``landing_dir`` first.

    ``feeds`` (a ``jobs.feeds.FeedsFile``): the records of the feeds' sensors go to
    their pcap, pcapng or CSV files (jobs/generate/feedfiles.py), the rest as without
    it; a feed the generator cannot follow raises ValueError before anything is written.
    """
    t0 = time.perf_counter()
    if days < 1:
        raise ValueError("days must be >= 1")
    world = _world(conf_dir)
    B = behaviour or Behaviour()
    if devices is None:
        if target_probes is not None:
            devices = devices_for_target(world, start=start, days=days, target_probes=target_probes,
                                         seed=seed, bad_share=bad_share, dup_share=dup_share,
                                         behaviour=B)
        else:
            devices = DEFAULT_DEVICES
    sd = _start_day(start)
    routing = None
    if feeds is not None:  # before --clean: a feed it cannot follow must not cost the landing
        routing = FeedRouting(world, feeds, seed=seed, gz_share=gz_share,
                              sample_day=start.isoformat())
    landing = Path(landing_dir)
    if clean:
        _clean(landing)
    landing.mkdir(parents=True, exist_ok=True)
    writer = LandingWriter(world, landing, start_day=sd, days=days, seed=seed,
                           bad_share=bad_share, dup_share=dup_share, gz_share=gz_share,
                           late_share=late_share, redeliver_share=redeliver_share,
                           max_file_records=max_file_records, routing=routing)
    mstats: dict = {}
    for mw, d, probes in iter_mall_days(world, sd, days, devices, seed, B, mstats):
        writer.add_day(mw, d, probes)
    ws = writer.stats
    s = Summary(landing_dir=str(landing_dir), start=start, days=days,
                malls=[m.id for m in world.malls], devices=int(devices), seed=seed,
                probes=ws.probes, records=ws.records, files=ws.files, bytes=ws.bytes,
                duplicates=ws.duplicates, duplicates_other_rssi=ws.duplicates_other_rssi,
                bad=dict(ws.bad), bad_kinds=dict(sorted(ws.bad_kinds.items())),
                late_files=ws.late_files, late_records=ws.late_records,
                redelivered_files=ws.redelivered_files, redelivered_records=ws.redelivered_records,
                randomised_probes=ws.randomised_probes, formats=dict(sorted(ws.formats.items())),
                feed_files=ws.feed_files, feed_records=ws.feed_records,
                other_frames=ws.other_frames, feed_formats=dict(sorted(ws.feed_formats.items())),
                feeds=[o.describe() for o in routing.outs] if routing is not None else [])
    for st in mstats.values():
        s.employees += st.employees
        s.employee_days += st.employee_days
        s.visitor_stays += st.visitor_stays
        s.passer_stays += st.passer_stays
        s.randomised_stays += st.randomised_stays
        s.returning_stays += st.returning_stays
        s.distinct_devices += st.devices
    s.seconds = time.perf_counter() - t0
    return s


from .cli import main  # noqa: E402
