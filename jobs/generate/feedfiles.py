"""``generate --feeds``: which sensors' records go to the feeds of conf/feeds.yaml
instead of SPEC files, where those files go, and their bytes.

* A pcap, pcapng or csv feed with a fixed ``sensor_id`` takes that sensor's records.
* A csv feed with ``sensor_id_column`` takes the sensors of the first zone of the first
  mall (objects.yaml order) whose ``timezone`` is the feed's, leaving out sensors an
  earlier feed took (if none are left, the next such mall's first zone).
* A file goes to ``<folder>/<arrival date>/<mall>-<YYYYMMDD>T<HH>-<n>.<format>[.gz]``:
  ``<folder>`` is the glob's leading folders without wildcards; the path must be one
  the feed's glob claims (ValueError otherwise).

Only a sensor's valid records move, duplicates included; its bad lines stay in the
SPEC file (the same quarantine either way). A moved record keeps the time its SPEC line
would state (whole seconds where that file's ts style has no fraction), so that the
pipeline gets the same records from a run with and without ``--feeds``.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from jobs.feeds import CAPTURE_FORMATS, Feed, FeedsFile

from .captures import capture_file
from .traffic import _rng
from .vendorcsv import check_feed, csv_file
from .world import World

#: The feed formats the generator writes.
WRITTEN_FORMATS = CAPTURE_FORMATS + ("csv",)
_WILDCARDS = "*?["


@dataclass
class FeedOut:
    """One feed the generator writes, and what it wrote."""
    feed: Feed
    number: int                 # position in feeds.yaml: feeds[number]
    sensors: list[str]          # the sensors whose records it takes
    folder: str                 # landing-relative folder its files go below
    files: int = 0              # copies included
    records: int = 0            # probe frames or CSV rows, copies included
    formats: dict = field(default_factory=dict)  # "pcap", "csv.gz", … -> files (first deliveries)

    def describe(self) -> dict:
        """The feed's part of the generator's summary."""
        return {"path": self.feed.path, "format": self.feed.format, "sensors": list(self.sensors),
                "files": self.files, "records": self.records, "formats": dict(self.formats)}


def feed_folder(glob: str) -> str:
    """The glob's leading folders up to the first one with a wildcard (``*?[``); the
    file name pattern (last segment) is never part of it."""
    out = []
    for part in glob.split("/")[:-1]:
        if any(c in part for c in _WILDCARDS):
            break
        out.append(part)
    return "/".join(out)


def plan_feeds(world: World, feeds: FeedsFile) -> list[FeedOut]:
    """The feeds the generator writes, each with its sensors (module docstring's rule);
    a feed whose sensor is not in objects.yaml, or already taken, gets none."""
    known, claimed, outs = set(world.sensor_ids), set(), []
    for i, feed in enumerate(feeds.feeds):
        if feed.format not in WRITTEN_FORMATS:
            continue
        if feed.format == "csv":
            check_feed(feed)
        if feed.sensor_id is not None:
            sensors = [feed.sensor_id] if feed.sensor_id in known - claimed else []
        else:
            sensors = []
            for mw in world.malls:
                if mw.tz != feed.timezone:
                    continue
                a = int(mw.zone_first[0])
                zone = [world.sensor_ids[s] for s in mw.sensors[a:a + int(mw.zone_nsens[0])]]
                sensors = [s for s in zone if s not in claimed]
                if sensors:
                    break
        claimed.update(sensors)
        outs.append(FeedOut(feed, i, sensors, feed_folder(feed.path)))
    return outs


class FeedFile(NamedTuple):
    """One feed file as :meth:`FeedRouting.files` makes it."""
    rels: list[str]     # landing-relative paths: arrival folder, then a re-delivered copy
    data: bytes
    ext: str            # "pcap", "pcapng.gz", "csv", …
    other_frames: int   # beacons and data frames (captures)


class FeedRouting:
    """The sensor → feed map of a run, the feeds' file paths and their bytes.

    ``feed_of[sensor index]`` is the position in :attr:`outs` of the feed that takes
    the sensor's records, or -1. Its draws (gzip or not, pcap time resolution, the
    files' dialects) come from a stream of their own, so that the SPEC files' draws are
    those of a run without feeds.
    """

    def __init__(self, world: World, feeds: FeedsFile, *, seed: int, gz_share: float,
                 sample_day: str):
        self.feeds = feeds
        self.outs = plan_feeds(world, feeds)
        self.feed_of = np.full(len(world.sensor_ids), -1, dtype=np.int32)
        index = {s: i for i, s in enumerate(world.sensor_ids)}
        mall_of = {int(s): mw.id for mw in world.malls for s in mw.sensors}
        for k, out in enumerate(self.outs):
            for s in out.sensors:
                self.feed_of[index[s]] = k
        self.rng = _rng(seed, 5)
        g = int(round(10 * gz_share))
        if 0 < gz_share < 1:  # as LandingWriter: some of each whenever the share allows
            g = min(9, max(1, g))
        self._gz = [True] * g + [False] * (10 - g)
        self._written: set[str] = set()
        # Fail before anything is written: a file name as the run will give it.
        for k, out in enumerate(self.outs):
            if out.sensors:
                mall = mall_of[index[out.sensors[0]]]
                self.path(k, sample_day, f"{mall}-{sample_day.replace('-', '')}T00-1", False)

    @property
    def active(self) -> bool:
        """True when some sensor's records go to a feed."""
        return bool((self.feed_of >= 0).any())

    def _rel(self, k: int, day: str, stem: str, gz: bool) -> str:
        out = self.outs[k]
        return (f"{out.folder}/" if out.folder else "") + f"{day}/{stem}.{out.feed.format}" + (
            ".gz" if gz else "")

    def path(self, k: int, day: str, stem: str, gz: bool) -> str:
        """The landing-relative path of feed ``k``'s file ``stem`` arriving on ``day``
        (YYYY-MM-DD); ValueError naming the feed's glob when the glob does not claim
        it for this feed."""
        rel, feed = self._rel(k, day, stem, gz), self.outs[k].feed
        claim = self.feeds.feed_for(rel)
        if claim is not feed:
            why = "which the glob does not match" if claim is None else (
                f"which the earlier feed {claim.path!r} claims")
            raise ValueError(
                f"feeds.yaml feed {feed.path!r} (feeds[{self.outs[k].number}]): the generator "
                f"writes its files as {rel!r}, {why}; give a glob it can follow: leading "
                f"folders without wildcards (*?[), then e.g. '**/*.{feed.format}*'")
        return rel

    def files(self, k: int, stem: str, days: list[str], sensors: list[str], mac: np.ndarray,
              ts: np.ndarray, rssi: np.ndarray) -> FeedFile:
        """Feed ``k``'s file ``stem`` of these records (time order), delivered on
        ``days`` (the first delivery, then a re-delivered copy if any): its paths and
        bytes, gzip'd about as often as SPEC files where the glob allows ``.gz``."""
        out = self.outs[k]
        gz = self._gz[int(self.rng.integers(0, 10))]
        if gz and any(self.feeds.feed_for(self._rel(k, d, stem, True)) is not out.feed
                      for d in days):
            gz = False  # the glob does not take a .gz: write the file plain
        rels = [self.path(k, d, stem, gz) for d in days]
        for rel in rels:  # two feeds whose files land on one path would overwrite each other
            if rel in self._written:
                raise ValueError(f"feeds.yaml feed {out.feed.path!r}: {rel!r} is written twice")
            self._written.add(rel)
        if out.feed.format == "csv":
            data, other = csv_file(out.feed, sensors, mac, ts, rssi, self.rng), 0
        else:
            data, other = capture_file(out.feed.format, mac, ts, rssi, self.rng,
                                       nanos=bool(self.rng.integers(0, 2)))
        if gz:
            data = gzip.compress(data, compresslevel=1, mtime=0)
        ext = out.feed.format + (".gz" if gz else "")
        out.formats[ext] = out.formats.get(ext, 0) + 1
        out.files += len(rels)
        out.records += len(ts) * len(rels)
        return FeedFile(rels, data, ext, other)
