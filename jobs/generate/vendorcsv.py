"""A vendor's CSV export for a csv feed of conf/feeds.yaml: the feed's own column
names (in a shuffled order, plus a column the product ignores), its delimiter, some
fields in double quotes, and times as local wall-clock text in the feed's time zone.

Wall-clock text cannot tell the two passes of the hour a zone repeats when its clocks go
back; the reader takes the first (docs/decisions.md), so a record of the second pass
reads one hour early. The demo range (January–February) has no such hour.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from jobs.feeds import Feed

#: The ``ts_format`` values the generator can write: None (the reader's default, ISO
#: date and time with a space and milliseconds) and conf/feeds.yaml's pattern.
TS_FORMATS = (None, "dd.MM.yyyy HH:mm:ss[.SSS]")
EXTRA_COLUMN = "Channel"
_EPOCH = datetime(1970, 1, 1)


def check_feed(feed: Feed) -> None:
    """Raise ValueError (naming the feed's glob) when the generator cannot write the
    feed's times: no ``timezone`` (it writes wall-clock time) or another ``ts_format``."""
    if feed.timezone is None:
        raise ValueError(f"feed {feed.path!r}: the generator writes local wall-clock times "
                         "and needs the feed's timezone")
    if feed.ts_format not in TS_FORMATS:
        raise ValueError(f"feed {feed.path!r}: the generator cannot write ts_format "
                         f"{feed.ts_format!r} (it writes {TS_FORMATS[1]!r} or, without "
                         "ts_format, yyyy-MM-dd HH:mm:ss.SSS)")


def wall_clock_texts(ts: np.ndarray, tz: str, ts_format: str | None) -> list[str]:
    """UTC epoch ms as wall-clock text in ``tz``: ``dd.MM.yyyy HH:mm:ss[.SSS]`` (the
    fraction only when the ms are not 0) or, for ``ts_format`` None,
    ``yyyy-MM-dd HH:mm:ss.SSS``."""
    if ts_format not in TS_FORMATS:
        raise ValueError(f"cannot write ts_format {ts_format!r}")
    zone, offsets, out = ZoneInfo(tz), {}, []
    for t in ts.tolist():
        sec, ms = divmod(int(t), 1000)
        minute = sec // 60
        off = offsets.get(minute)
        if off is None:  # zones change offset on whole minutes: one lookup per minute
            utc = datetime.fromtimestamp(minute * 60, timezone.utc)
            off = offsets[minute] = int(utc.astimezone(zone).utcoffset().total_seconds())
        d = _EPOCH + timedelta(seconds=sec + off)
        hms = f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        if ts_format is None:
            out.append(f"{d.year:04d}-{d.month:02d}-{d.day:02d} {hms}.{ms:03d}")
        else:
            frac = f".{ms:03d}" if ms else ""
            out.append(f"{d.day:02d}.{d.month:02d}.{d.year:04d} {hms}{frac}")
    return out


def _field(text: str, quote: bool, delimiter: str) -> str:
    # A field holding the delimiter or a quote must be quoted whatever the file's style.
    if quote or delimiter in text or '"' in text or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_file(feed: Feed, sensors: list[str], mac: np.ndarray, ts: np.ndarray,
             rssi: np.ndarray, rng: np.random.Generator) -> bytes:
    """One export of the records (``sensors``: each record's sensor id, written to the
    feed's ``sensor_id_column`` if it has one; ``mac`` 48-bit ints; ``ts`` UTC epoch
    ms; ``rssi`` dBm). The file's dialect is drawn from ``rng``: column order, MAC in
    upper or lower case, no quotes / the MAC column quoted / every field quoted."""
    names = {k: feed.columns.get(k, k) for k in ("mac", "ts", "rssi")}
    if feed.sensor_id_column is not None:
        names["sensor_id"] = feed.sensor_id_column
    extra = EXTRA_COLUMN
    while extra in names.values():  # the ignored column must not shadow a mapped one
        extra += "_"
    names["extra"] = extra
    keys = list(names)
    keys = [keys[i] for i in rng.permutation(len(keys))]
    quoting = ("none", "mac", "all")[int(rng.integers(0, 3))]
    upper = bool(rng.integers(0, 2))
    cols = {
        "mac": [":".join(f"{m:012x}"[i:i + 2] for i in range(0, 12, 2)) for m in mac.tolist()],
        "ts": wall_clock_texts(ts, feed.timezone, feed.ts_format),
        "rssi": [str(int(r)) for r in rssi.tolist()],
        "sensor_id": sensors,
        "extra": [str(c) for c in rng.choice([1, 6, 11], len(ts)).tolist()],
    }
    if upper:
        cols["mac"] = [m.upper() for m in cols["mac"]]
    d = feed.delimiter
    quoted = {k: quoting == "all" or (quoting == "mac" and k == "mac") for k in keys}
    lines = [d.join(_field(names[k], quoting == "all", d) for k in keys)]
    for row in zip(*(cols[k] for k in keys)):
        lines.append(d.join(_field(v, quoted[k], d) for k, v in zip(keys, row)))
    return ("\n".join(lines) + "\n").encode("utf-8")
