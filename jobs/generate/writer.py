"""Landing files in SPEC §2's raw formats, with duplicates, bad records, re-deliveries
and late files.

Layout: ``<landing>/<arrival date>/<mall>-<YYYYMMDD>T<HH>-<n>.<ext>[.gz]`` — one file
per mall, local date and 3-hour upload window (``HH`` = 00, 03, …, 21), split into
parts ``n`` = 1, 2, … of at most ``max_file_records`` records. The arrival folder is
the records' local date, except for late files (d+2…d+5); a re-delivered file is an
identical copy of an earlier file in a later folder (d+1…d+3).

Every file draws its dialect from shuffled decks, so that every value appears
once the world has a handful of files: format (.ndjson/.jsonl/.json/.csv, each
gzipped and not), ts form (ISO ``Z`` / local offset / ``+00:00``, with and without
fraction, epoch s / ms), MAC spelling, numbers as strings (JSON) or quoted
fields (CSV), key/column order, separators, CRLF, an extra ignored key/column,
blank lines.

With a :class:`~jobs.generate.feedfiles.FeedRouting` (``generate --feeds``), the valid
records of the feeds' sensors leave each SPEC file for one file per feed with the same
name stem, arrival folder and re-delivered copy; everything else is drawn as without it,
so the SPEC files hold the same lines less those records.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dialects import (CSV_BAD, EPOCH, FIELDS, FORMATS, JSON_BAD, MAC_STYLES, REASONS,
                       RSSI_TEXT, SECOND_TS_STYLES, TS_STYLES, Deck, FileStyle, Quota,
                       day_date, mac_text, mac_texts, ts_texts)
from .traffic import DAY_MS, DayProbes, _excl_cumsum, _rng
from .world import MallWorld, World


@dataclass
class WriterStats:
    files: int = 0                   # every file, feed files and copies included
    records: int = 0                 # record lines, probe frames, CSV rows; copies included
    probes: int = 0                  # valid probe records, first deliveries, duplicates not counted
    duplicates: int = 0
    duplicates_other_rssi: int = 0
    bad: dict = field(default_factory=lambda: {r: 0 for r in REASONS})
    bad_kinds: dict = field(default_factory=dict)
    late_files: int = 0
    late_records: int = 0
    redelivered_files: int = 0
    redelivered_records: int = 0
    randomised_probes: int = 0
    bytes: int = 0
    formats: dict = field(default_factory=dict)       # SPEC files: ext -> files (first deliveries)
    feed_files: int = 0              # of ``files``: files of feeds (--feeds), copies included
    feed_records: int = 0            # of ``records``: probe frames and CSV rows in them
    other_frames: int = 0            # beacons and data frames in capture files (not records)
    feed_formats: dict = field(default_factory=dict)  # "pcap", "csv.gz", … -> first deliveries


class LandingWriter:
    def __init__(self, world: World, landing_dir: str | Path, *, start_day: int, days: int,
                 seed: int, bad_share: float = 0.01, dup_share: float = 0.005,
                 gz_share: float = 0.4, late_share: float = 0.02, redeliver_share: float = 0.02,
                 max_file_records: int = 200_000, gzip_level: int = 1, routing=None):
        if not 0 <= bad_share < 0.5:
            raise ValueError("bad_share must be in [0, 0.5)")
        self.world = world
        self.root = Path(landing_dir)
        self.start_day, self.days = start_day, days
        self.rng = _rng(seed, 3)
        r = self.rng
        self.max_file_records = max(1, int(max_file_records))
        self.gzip_level = gzip_level
        g = int(round(10 * gz_share))
        if 0 < gz_share < 1:
            g = min(9, max(1, g))
        self.d_fmt = Deck(r, FORMATS)
        self.d_gz = {f: Deck(r, [True] * g + [False] * (10 - g)) for f in FORMATS}
        self.d_ts = Deck(r, TS_STYLES)
        self.d_mac = Deck(r, MAC_STYLES)
        self.d_quote = Deck(r, [True, False])
        self.d_spaced = Deck(r, [True, False])
        self.d_order = Deck(r, [True, False])
        self.d_crlf = Deck(r, [True, False, False, False])
        self.d_extra = Deck(r, [True, False, False, False])
        self.d_blank = Deck(r, [True] + [False] * 5)
        self.d_bad = {"json": Deck(r, JSON_BAD), "csv": Deck(r, CSV_BAD)}
        self.q_dup = Quota(dup_share)
        self.q_bad = Quota(bad_share / (1.0 - bad_share))
        self.late_share, self.redeliver_share = late_share, redeliver_share
        self.acc_late = float(r.uniform(0.5, 1.0))
        self.acc_redeliver = float(r.uniform(0.5, 1.0))
        self.sens_raw = np.array(world.sensor_ids, dtype=object)
        self.sens_json = np.array([json.dumps(s)[1:-1] for s in world.sensor_ids], dtype=object)
        known = set(world.sensor_ids)
        self.unknown: dict[int, list[str]] = {}
        for mw in world.malls:
            cands = [f"s-{mw.id}-{9000 + k:04d}" for k in range(1, 4)] + ["sensor-unknown"]
            real = world.sensor_ids[int(mw.sensors[0])]
            cands.append(real.upper() if real.upper() != real else real + "-old")
            self.unknown[mw.id] = [c for c in cands if c not in known]
        self.made_dirs: set[Path] = set()
        self.stats = WriterStats()
        #: --feeds: a FeedRouting whose feeds take some sensors' records (None: none do).
        self.routing = routing if routing is not None and routing.active else None

    # ------------------------------------------------------------------ styles
    def _style(self) -> FileStyle:
        fmt = self.d_fmt.next()
        order = FIELDS
        if self.d_order.next():
            order = tuple(FIELDS[i] for i in self.rng.permutation(4))
        return FileStyle(fmt=fmt, gz=self.d_gz[fmt].next(), ts=self.d_ts.next(),
                         mac=self.d_mac.next(), quote=self.d_quote.next(), order=order,
                         spaced=self.d_spaced.next(), crlf=self.d_crlf.next(),
                         extra=self.d_extra.next(), blank=self.d_blank.next())

    # --------------------------------------------------------------- day input
    def add_day(self, mw: MallWorld, d: int, p: DayProbes) -> None:
        if len(p) == 0:
            return
        order = np.lexsort((p.sensor, p.ts))
        sensor, mac, ts, off, rssi = (p.sensor[order], p.mac[order], p.ts[order],
                                      p.off[order], p.rssi[order])
        chunk = (p.hour[order] // 3).astype(np.int64)
        self.stats.randomised_probes += int(((mac >> np.uint64(41)) & np.uint64(1)).sum())
        cb = np.flatnonzero(np.diff(chunk)) + 1
        starts = np.concatenate([[0], cb])
        ends = np.concatenate([cb, [len(chunk)]])
        day_txt = day_date(self.start_day + d).strftime("%Y%m%d")
        for a, b in zip(starts.tolist(), ends.tolist()):
            hh = int(chunk[a]) * 3
            for part, s in enumerate(range(a, b, self.max_file_records), start=1):
                e = min(b, s + self.max_file_records)
                name = f"{mw.id}-{day_txt}T{hh:02d}-{part}"
                self._file(mw, d, name, sensor[s:e], mac[s:e], ts[s:e], off[s:e], rssi[s:e])

    # -------------------------------------------------------------- one file
    def _file(self, mw, d, name, sensor, mac, ts, off, rssi):
        rng, st = self.rng, self.stats
        style = self._style()
        n = len(ts)
        st.probes += n
        # exact duplicates, right after their original; half of them with another RSSI
        k = min(self.q_dup.take(n), n)
        if k:
            src = np.sort(rng.choice(n, k, replace=False))
            cnt = np.ones(n, dtype=np.int64)
            cnt[src] += 1
            idx = np.repeat(np.arange(n), cnt)
            dpos = _excl_cumsum(cnt)[src] + 1
            sensor, mac, ts, off, rssi = sensor[idx], mac[idx], ts[idx], off[idx], rssi[idx].copy()
            chg = dpos[rng.random(k) < 0.5]
            delta = rng.integers(1, 6, len(chg)) * rng.choice([-1, 1], len(chg))
            rssi[chg] = np.clip(rssi[chg] + delta, -120, 0)
            st.duplicates += k
            st.duplicates_other_rssi += len(chg)
        # bad records, each right after the record it was spoiled from
        m = len(ts)
        nb = min(self.q_bad.take(m), m)
        bad_pos = np.zeros(0, dtype=np.int64)
        if nb:
            src = np.sort(rng.choice(m, nb, replace=False))
            cnt = np.ones(m, dtype=np.int64)
            cnt[src] += 1
            idx = np.repeat(np.arange(m), cnt)
            bad_pos = _excl_cumsum(cnt)[src] + 1
            sensor, mac, ts, off, rssi = sensor[idx], mac[idx], ts[idx], off[idx], rssi[idx]
        lines, header = self._render(style, sensor, mac, ts, off, rssi)
        if nb:
            fam = "csv" if style.fmt == "csv" else "json"
            sens_raw = self.sens_raw
            for i in bad_pos.tolist():
                reason, kind = self.d_bad[fam].next()
                rec = {"sensor_id": sens_raw[sensor[i]], "mac": int(mac[i]), "ts": int(ts[i]),
                       "off": int(off[i]), "rssi": int(rssi[i])}
                lines[i] = self._bad_line(style, reason, kind, rec, mw)
                st.bad[reason] += 1
                st.bad_kinds[f"{reason}/{kind}"] = st.bad_kinds.get(f"{reason}/{kind}", 0) + 1
        records = len(lines)
        # --feeds: the valid records of feed sensors leave this file. Bad lines stay, so
        # that the quarantine is the same either way; every draw below is still made.
        moved = keep = None
        if self.routing is not None:
            moved = self.routing.feed_of[sensor] >= 0
            moved[bad_pos] = False
            if moved.any():
                keep = ~moved
            else:
                moved = None
        if style.blank:
            for _ in range(int(rng.integers(1, 3))):
                pos = int(rng.integers(0, len(lines) + 1))
                lines.insert(pos, ["", "   ", "\t"][int(rng.integers(0, 3))])
                if keep is not None:
                    keep = np.insert(keep, pos, True)
        spec_records = records
        if keep is not None:
            lines = [ln for ln, k in zip(lines, keep.tolist()) if k]
            spec_records -= int(moved.sum())
        if header is not None:
            lines.insert(0, header)
        eol = "\r\n" if style.crlf else "\n"
        data = (eol.join(lines) + eol).encode("utf-8")
        if style.gz:
            data = gzip.compress(data, compresslevel=self.gzip_level, mtime=0)
        fname = f"{name}.{style.ext}"
        # where it arrives
        last = self.days - 1
        arrival = d
        copy_to = None
        if d + 2 <= last:
            self.acc_late += self.late_share * float(rng.uniform(0.5, 1.5))
            if self.acc_late >= 1.0:
                self.acc_late -= 1.0
                arrival = d + min(int(rng.integers(2, 6)), last - d)
        if arrival == d and d + 1 <= last:
            self.acc_redeliver += self.redeliver_share * float(rng.uniform(0.5, 1.5))
            if self.acc_redeliver >= 1.0:
                self.acc_redeliver -= 1.0
                copy_to = d + min(int(rng.integers(1, 4)), last - d)
        days = [self._day_text(x) for x in (arrival, copy_to) if x is not None]
        late = arrival != d
        if spec_records:  # a file all of whose records went to feeds is not written
            rels = [f"{day}/{fname}" for day in days]
            if self.routing is not None:
                for rel in rels:
                    self._check_unclaimed(rel)
            st.formats[style.ext] = st.formats.get(style.ext, 0) + 1
            self._deliver(rels, data, spec_records, late)
        if moved is not None:
            self._feed_files(name, days, late, moved, style, sensor, mac, ts, rssi)

    def _day_text(self, d: int) -> str:
        return day_date(self.start_day + d).isoformat()

    def _deliver(self, rels: list[str], data: bytes, records: int, late: bool) -> None:
        """Write one file to its arrival folder and, if ``rels`` has two paths, its
        re-delivered copy; count both."""
        st = self.stats
        for i, rel in enumerate(rels):
            self._write(rel, data)
            st.files += 1
            st.records += records
            if i:
                st.redelivered_files += 1
                st.redelivered_records += records
        if late:
            st.late_files += 1
            st.late_records += records

    def _check_unclaimed(self, rel: str) -> None:
        feed = self.routing.feeds.feed_for(rel)
        if feed is not None:  # the pipeline would read this SPEC file as the feed's format
            raise ValueError(f"feeds.yaml feed {feed.path!r} claims the generator's SPEC file "
                             f"{rel!r}: narrow its glob")

    def _feed_files(self, name, days, late, moved, style, sensor, mac, ts, rssi) -> None:
        """The moved records, one file per feed, delivered as their SPEC file is."""
        st, routing = self.stats, self.routing
        if style.ts in SECOND_TS_STYLES:
            ts = ts - ts % 1000
        owner = routing.feed_of[sensor]
        for k in np.unique(owner[moved]).tolist():
            sel = moved & (owner == k)
            sensors = self.sens_raw[sensor[sel]].tolist()
            f = routing.files(k, name, days, sensors, mac[sel], ts[sel], rssi[sel])
            n = int(sel.sum())
            st.feed_formats[f.ext] = st.feed_formats.get(f.ext, 0) + 1
            self._deliver(f.rels, f.data, n, late)
            st.feed_files += len(f.rels)
            st.feed_records += n * len(f.rels)
            st.other_frames += f.other_frames * len(f.rels)

    def _write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        if path.parent not in self.made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made_dirs.add(path.parent)
        with open(path, "wb") as f:
            f.write(data)
        self.stats.bytes += len(data)

    # ------------------------------------------------------------- rendering
    def _value_fmt(self, style: FileStyle, key: str) -> str:
        if style.fmt == "csv":
            return '"%s"' if style.quote else "%s"
        if key in ("sensor_id", "mac"):
            return '"%s"'
        if key == "ts":
            return '"%s"' if style.ts_is_string() else "%s"
        return '"%s"' if style.quote else "%s"

    def _render(self, style, sensor, mac, ts, off, rssi):
        cols = {
            "sensor_id": (self.sens_raw if style.fmt == "csv" else self.sens_json)[sensor].tolist(),
            "mac": mac_texts(mac, style.mac),
            "ts": ts_texts(ts, off, style.ts),
            "rssi": RSSI_TEXT[rssi.astype(np.int64) + 200].tolist(),
        }
        args = [cols[k] for k in style.order]
        if style.fmt == "csv":
            fmts = [self._value_fmt(style, k) for k in style.order]
            names = list(style.order)
            if style.extra:
                fmts.append('"2.1.7"' if style.quote else "2.1.7")
                names.append("fw")
            tmpl = ",".join(fmts)
            header = ",".join(names)
        else:
            sep, kv = (", ", ": ") if style.spaced else (",", ":")
            items = [f'"{k}"{kv}{self._value_fmt(style, k)}' for k in style.order]
            if style.extra:
                items.append(f'"fw"{kv}"2.1.7"')
            tmpl = "{" + sep.join(items) + "}"
            header = None
        return [tmpl % t for t in zip(*args)], header

    # ----------------------------------------------------------- bad records
    def _bad_line(self, style: FileStyle, reason: str, kind: str, rec: dict, mw: MallWorld) -> str:
        rng = self.rng
        pick = lambda seq: seq[int(rng.integers(0, len(seq)))]  # noqa: E731
        is_csv = style.fmt == "csv"
        ts_ms, off = rec["ts"], rec["off"]
        vals = {  # raw text, and whether JSON would quote it
            "sensor_id": [rec["sensor_id"], True],
            "mac": [mac_text(rec["mac"], style.mac), True],
            "ts": [ts_texts(np.array([ts_ms]), np.array([off]), style.ts)[0], style.ts_is_string()],
            "rssi": [str(rec["rssi"]), style.quote],
        }

        def ts_at_year(year: int) -> None:
            d = day_date(ts_ms // DAY_MS)
            try:
                d2 = d.replace(year=year)
            except ValueError:
                d2 = d.replace(year=year, day=28)
            t = (d2 - EPOCH).days * DAY_MS + ts_ms % DAY_MS
            vals["ts"][0] = ts_texts(np.array([t]), np.array([off]), style.ts)[0]

        if reason == "invalid_mac":
            if kind == "multicast":
                vals["mac"][0] = mac_text(rec["mac"] | (1 << 40), style.mac)
            elif kind == "bad_hex":
                s = vals["mac"][0]
                hexpos = [i for i, c in enumerate(s) if c in "0123456789abcdefABCDEF"]
                i = pick(hexpos)
                vals["mac"][0] = s[:i] + pick("gGzZxq") + s[i + 1:]
            elif kind == "short":
                s = vals["mac"][0]
                vals["mac"][0] = s[:-5] if style.mac.startswith("dot") else (
                    s[:-2] if style.mac.startswith("bare") else s[:-3])
            else:  # mixed separators
                s = mac_text(rec["mac"], "colon_lower")
                vals["mac"][0] = pick([s[:5] + "-" + s[6:], s.replace(":", "-", 2),
                                       s[:2] + s[3:5] + "." + s[6:8] + s[9:11] + ":" + s[12:14] + s[15:]])
        elif reason == "invalid_rssi":
            if kind == "positive":
                vals["rssi"] = ["+5", True]
            elif kind == "too_low":
                vals["rssi"][0] = "-130"
            elif kind == "not_number":
                vals["rssi"] = [pick(["abc", f"{rec['rssi']}dBm", "n/a"]), True]
            else:
                vals["rssi"][0] = f"{rec['rssi']}.5"
        elif reason == "invalid_ts":
            if kind == "no_offset":
                s = ts_texts(np.array([ts_ms]), np.array([off]), "iso_local_ms")[0]
                vals["ts"] = [s[:19] if rng.random() < 0.5 else s[:23], True]
            elif kind == "too_old":
                ts_at_year(2009)
            elif kind == "future":
                ts_at_year(2099)
            else:
                iso = ts_texts(np.array([ts_ms]), np.array([off]), "iso_local")[0]
                dd, hms = iso[:10], iso[11:19]
                vals["ts"] = [pick([f"{dd}T25:{hms[3:]}Z", f"{dd} {hms}{iso[19:]}",
                                    f"{dd[:4]}-02-30T{hms}Z", f"{dd[8:10]}/{dd[5:7]}/{dd[:4]} {hms}",
                                    "yesterday", f"{dd}T{hms}+3"]), True]
        elif reason == "unknown_sensor":
            vals["sensor_id"][0] = pick(self.unknown[mw.id])

        order = list(style.order)
        if is_csv:
            fields = [vals[k][0] for k in order] + (["2.1.7"] if style.extra else [])
            if style.quote:
                fields = [f'"{x}"' for x in fields]
            if reason == "malformed":
                if kind == "too_few_fields":
                    del fields[int(rng.integers(0, len(fields)))]
                elif kind == "too_many_fields":
                    fields.insert(int(rng.integers(0, len(fields) + 1)), pick(["6", "x", '""']))
                else:  # truncated: cut inside the second or third field
                    line = ",".join(fields)
                    commas = [i for i, c in enumerate(line) if c == ","]
                    return line[:commas[int(rng.integers(1, 3))] - 1]
            return ",".join(fields)

        def jtext(k):
            text, quoted = vals[k]
            return json.dumps(text) if quoted else text

        sep, kv = (", ", ": ") if style.spaced else (",", ":")
        items = {k: jtext(k) for k in order}
        if reason == "malformed" and kind == "missing_field":
            del items[pick(order)]
        elif reason == "malformed" and kind == "null_field":
            items[pick(order)] = "null"
        elif reason == "malformed" and kind == "not_object":
            return "[" + sep.join(items.values()) + "]"
        body = [f'"{k}"{kv}{v}' for k, v in items.items()]
        if style.extra:
            body.append(f'"fw"{kv}"2.1.7"')
        line = "{" + sep.join(body) + "}"
        if reason == "malformed" and kind == "truncated":
            line = line[:int(rng.integers(1, len(line) - 1))]
        return line
