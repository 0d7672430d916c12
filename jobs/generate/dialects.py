"""How a landing file spells its values: the formats, timestamp and MAC spellings,
the kinds of bad record per format, and the decks that deal them out so that every
dialect appears once a world has a handful of files (:mod:`jobs.generate.writer`
writes the files)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import repeat

import numpy as np

from .traffic import DAY_MS

FORMATS = ("ndjson", "jsonl", "json", "csv")
TS_STYLES = ("iso_z", "iso_z_ms", "iso_local", "iso_local_ms", "iso_local_us",
             "iso_utc_offset_ms", "epoch_s", "epoch_ms")
MAC_STYLES = ("colon_lower", "colon_upper", "dash_lower", "dash_upper", "bare_lower",
              "bare_upper", "dot_lower", "dot_upper", "colon_mixed")
FIELDS = ("sensor_id", "mac", "ts", "rssi")

_COMMON_BAD = [
    ("invalid_mac", "multicast"), ("invalid_mac", "bad_hex"), ("invalid_mac", "short"),
    ("invalid_mac", "mixed_sep"),
    ("invalid_rssi", "positive"), ("invalid_rssi", "too_low"), ("invalid_rssi", "not_number"),
    ("invalid_rssi", "fraction"),
    ("invalid_ts", "no_offset"), ("invalid_ts", "too_old"), ("invalid_ts", "future"),
    ("invalid_ts", "garbage"),
    ("unknown_sensor", "unknown"),
]
JSON_BAD = [("malformed", "truncated"), ("malformed", "missing_field"),
            ("malformed", "null_field"), ("malformed", "not_object")] + _COMMON_BAD
CSV_BAD = [("malformed", "too_few_fields"), ("malformed", "too_many_fields"),
           ("malformed", "truncated")] + _COMMON_BAD
REASONS = ("malformed", "invalid_mac", "invalid_rssi", "invalid_ts", "unknown_sensor")
#: ts styles that write whole seconds: a record moved to a feed keeps the time its SPEC
#: line would state, so that both ways give the pipeline the same records.
SECOND_TS_STYLES = ("iso_z", "iso_local", "epoch_s")

EPOCH = date(1970, 1, 1)
_HMS = None
_FR_MS = np.array([".%03d" % i for i in range(1000)], dtype=object)
_FR_US = np.array([".%03d000" % i for i in range(1000)], dtype=object)
RSSI_TEXT = np.array([str(i) for i in range(-200, 201)], dtype=object)


def _hms():
    global _HMS
    if _HMS is None:
        _HMS = np.array([f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60)
                         for s in range(60)], dtype=object)
    return _HMS


def day_date(day_num: int) -> date:
    return EPOCH + timedelta(days=int(day_num))


def _off_text(off_ms: int) -> str:
    m = int(off_ms) // 60000
    sign = "+" if m >= 0 else "-"
    m = abs(m)
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def mac_text(v: int, style: str) -> str:
    h = f"{v:012x}"
    if style.endswith("upper"):
        h = h.upper()
    if style.startswith("colon"):
        s = ":".join(h[i:i + 2] for i in range(0, 12, 2))
        if style == "colon_mixed":
            s = "".join(c.upper() if i % 3 == 0 else c for i, c in enumerate(s))
        return s
    if style.startswith("dash"):
        return "-".join(h[i:i + 2] for i in range(0, 12, 2))
    if style.startswith("dot"):
        return ".".join(h[i:i + 4] for i in range(0, 12, 4))
    return h


def mac_texts(macs: np.ndarray, style: str) -> list[str]:
    u, inv = np.unique(macs, return_inverse=True)
    txt = np.array([mac_text(v, style) for v in u.tolist()], dtype=object)
    return txt[inv].tolist()


def ts_texts(ts: np.ndarray, off: np.ndarray, style: str) -> list[str]:
    if style == "epoch_ms":
        return list(map(str, ts.tolist()))
    if style == "epoch_s":
        return list(map(str, (ts // 1000).tolist()))
    local = style.startswith("iso_local")
    t = ts + off if local else ts
    day = t // DAY_MS
    sod = t - day * DAY_MS
    hms = _hms()[sod // 1000].tolist()
    if style.endswith("_ms"):
        frac = _FR_MS[sod % 1000].tolist()
    elif style.endswith("_us"):
        frac = _FR_US[sod % 1000].tolist()
    else:
        frac = repeat("")
    ud, inv = np.unique(day, return_inverse=True)
    dtxt = [day_date(x).isoformat() for x in ud.tolist()]
    dates = repeat(dtxt[0]) if len(dtxt) == 1 else np.array(dtxt, dtype=object)[inv].tolist()
    if style == "iso_z" or style == "iso_z_ms":
        suf = repeat("Z")
    elif style == "iso_utc_offset_ms":
        suf = repeat("+00:00")
    else:
        uo, oinv = np.unique(off, return_inverse=True)
        otxt = [_off_text(o) for o in uo.tolist()]
        suf = repeat(otxt[0]) if len(otxt) == 1 else np.array(otxt, dtype=object)[oinv].tolist()
    return [f"{a}T{b}{c}{d}" for b, a, c, d in zip(hms, dates, frac, suf)]


class Deck:
    """Deals values from shuffled copies of a list: every value within one pass."""

    def __init__(self, rng: np.random.Generator, values):
        self.rng, self.values, self.buf = rng, list(values), []

    def next(self):
        if not self.buf:
            self.buf = [self.values[i] for i in self.rng.permutation(len(self.values))]
        return self.buf.pop()


class Quota:
    """Turns a fractional share into whole counts without drift."""

    def __init__(self, share: float, phase: float = 0.5):
        self.share, self.acc = share, phase

    def take(self, n: float) -> int:
        x = self.acc + n * self.share
        k = int(x)
        self.acc = x - k
        return k


@dataclass
class FileStyle:
    fmt: str
    gz: bool
    ts: str
    mac: str
    quote: bool            # JSON: numbers as strings; CSV: every field in double quotes
    order: tuple           # key / column order
    spaced: bool           # JSON: ", " and ": " separators
    crlf: bool
    extra: bool            # an extra key / column the reader must ignore
    blank: bool            # blank lines inside the file

    @property
    def ext(self) -> str:
        return self.fmt + (".gz" if self.gz else "")

    def ts_is_string(self) -> bool:
        return self.ts.startswith("iso") or self.quote
