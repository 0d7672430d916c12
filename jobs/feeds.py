"""conf/feeds.yaml: how to read landing files that are not SPEC's JSON lines or CSV.

Each feed names files by a glob relative to the landing root (``**`` spans folders), a
format, and where the sensor id comes from. The first feed whose glob matches a file
wins; a file no feed matches is read as SPEC's formats are. Captures are read by
:mod:`jobs.capture`, CSV feeds by :mod:`jobs.feedcsv`.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from jobs.configfile import ConfigModel, NullAsEmptyList, TimeZone, load_model

FEEDS_FILE = "feeds.yaml"
#: The record fields a feed's ``columns`` may map (the sensor id has its own keys).
MAPPED_FIELDS = ("mac", "ts", "rssi")
#: Feed formats read as captures (jobs/pcap.py), not as text.
CAPTURE_FORMATS = ("pcap", "pcapng")


def glob_regex(pattern: str) -> re.Pattern:
    """A glob as a regex over ``/``-separated relative paths: ``*`` and ``?`` stay in one
    folder, ``**/`` spans any number of folders (none included), ``[…]`` is a class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def zoned(ts_format: str) -> bool:
    """True when a datetime pattern reads an offset or zone (letters outside quotes)."""
    return re.search(r"[XxZOVz]", re.sub(r"'[^']*'", "", ts_format)) is not None


class Feed(ConfigModel):
    """One feed of feeds.yaml."""

    path: Annotated[str, Field(min_length=1)]
    format: Literal["pcap", "pcapng", "csv"]
    sensor_id: str | None = None
    sensor_id_column: str | None = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    #: SPEC field → the file's column name.
    columns: dict[Literal["mac", "ts", "rssi"], str] = {}
    #: For timestamps without an offset: wall-clock time in this zone.
    timezone: TimeZone | None = None
    #: A Spark datetime pattern (``dd.MM.yyyy HH:mm:ss[.SSS]``); ISO-like without it.
    ts_format: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Feed":
        if (self.sensor_id is None) == (self.sensor_id_column is None):
            raise ValueError("give exactly one of sensor_id (one sensor for the feed) and "
                             "sensor_id_column (a column of the file)")
        if self.format in CAPTURE_FORMATS:
            extra = [k for k in ("sensor_id_column", "timezone", "ts_format")
                     if getattr(self, k) is not None] + (["columns"] if self.columns else []) + (
                ["delimiter"] if self.delimiter != "," else [])
            if extra:
                raise ValueError(f"{', '.join(extra)}: not for a {self.format} feed (a capture "
                                 "holds its own MAC, time in UTC and signal; give sensor_id)")
        elif self.delimiter in '"\r\n':
            raise ValueError(f"delimiter {self.delimiter!r}: not a quote or a line break")
        elif self.ts_format is not None and self.timezone is None and not zoned(self.ts_format):
            raise ValueError(f"ts_format {self.ts_format!r} reads no offset: give timezone "
                             "(the zone of the wall-clock times)")
        return self

    @cached_property
    def pattern(self) -> re.Pattern:
        return glob_regex(self.path)

    def settings(self) -> dict:
        """Everything but the glob: two feeds of one glob must agree on it."""
        return self.model_dump(exclude={"path"})


class FeedsFile(ConfigModel):
    """conf/feeds.yaml (optional: without it the landing is read as SPEC's formats)."""

    feeds: Annotated[tuple[Feed, ...], NullAsEmptyList] = ()

    @model_validator(mode="after")
    def _one_meaning_per_glob(self) -> "FeedsFile":
        seen: dict[str, tuple[int, dict]] = {}
        for i, feed in enumerate(self.feeds):
            if feed.path in seen and seen[feed.path][1] != feed.settings():
                raise ValueError(f"feeds[{i}] and feeds[{seen[feed.path][0]}] share the glob "
                                 f"{feed.path!r} with different settings: keep one")
            seen.setdefault(feed.path, (i, feed.settings()))
        return self

    def feed_for(self, relative_path: str) -> Feed | None:
        """The first feed whose glob matches ``relative_path`` (``/``-separated, relative
        to the landing root), else None."""
        return next((f for f in self.feeds if f.pattern.match(relative_path)), None)


def load_feeds(conf_dir: str | Path) -> FeedsFile:
    """Read and validate ``<conf_dir>/feeds.yaml``; ConfigError names file and key."""
    return load_model(Path(conf_dir) / FEEDS_FILE, FeedsFile)
