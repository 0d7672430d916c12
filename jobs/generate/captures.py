"""Capture files of a sniffer feed: 802.11 probe requests as pcap or pcapng (standard
library only), the shape jobs/pcap.py reads.

Every record is one probe request frame (radiotap header with the dBm antenna signal,
then an 802.11 management header whose transmitter address ``addr2`` is the device's
MAC) stamped with the record's UTC time. A few beacons and data frames are mixed in:
a real capture holds them, and the reader must skip them (and count them).
"""
from __future__ import annotations

import struct

import numpy as np

LINKTYPE_RADIOTAP = 127
SNAPLEN = 65535
_BCAST = b"\xff" * 6
#: SSID element of length 0 (a wildcard probe), then supported rates 1, 2, 5.5, 11 Mb/s.
_PROBE_BODY = b"\x00\x00" + b"\x01\x04\x02\x04\x0b\x16"
_FC_PROBE, _FC_BEACON, _FC_DATA = b"\x40\x00", b"\x80\x00", b"\x08\x00"
#: Radiotap layouts used in turn, so that the reader's alignment rules are exercised:
#: signal only; TSFT then signal; Flags, Channel (2-aligned, after a pad byte) then
#: signal; a second present word, so that TSFT starts after 4 bytes of padding.
RADIOTAP_LAYOUTS = ("signal", "tsft", "channel", "ext_tsft")


def radiotap(signal: int, layout: str = "signal", *, tsft: int = 0, channel: int = 6) -> bytes:
    """A radiotap header (version 0) with the dBm antenna signal (present bit 5) and,
    per ``layout`` (one of :data:`RADIOTAP_LAYOUTS`), TSFT (bit 0, 8 bytes) or Flags and
    Channel (bits 1 and 3) before it, each field at its natural alignment counted from
    the header's start, as the radiotap standard lays them out."""
    ext = layout == "ext_tsft"
    body = bytearray(12 if ext else 8)  # version, pad, length, present [, present 2]
    present = 1 << 31 if ext else 0     # bit 31: another present word follows (here: 0)

    def put(bit: int, fmt: str, align: int, *values) -> None:
        nonlocal present
        present |= 1 << bit
        body.extend(b"\0" * (-len(body) % align))
        body.extend(struct.pack("<" + fmt, *values))

    if layout in ("tsft", "ext_tsft"):
        put(0, "Q", 8, tsft)
    elif layout == "channel":
        put(1, "B", 1, 0)  # flags: no FCS at the end of the frame
        put(3, "HH", 2, 2407 + 5 * channel, 0x00A0)  # MHz; 2 GHz band, CCK
    elif layout != "signal":
        raise ValueError(f"unknown radiotap layout {layout!r}")
    put(5, "b", 1, signal)
    struct.pack_into("<BBHI", body, 0, 0, 0, len(body), present)
    return bytes(body)


def mgmt_header(fc: bytes, addr1: bytes, addr2: bytes, addr3: bytes, seq: int) -> bytes:
    """The 24-byte 802.11 header: frame control, duration 0, three addresses, sequence."""
    return fc + b"\0\0" + addr1 + addr2 + addr3 + struct.pack("<H", (seq & 0xFFF) << 4)


def probe_request(mac: int, seq: int) -> bytes:
    """A broadcast probe request sent by ``mac`` (48-bit int, first octet first)."""
    return mgmt_header(_FC_PROBE, _BCAST, int(mac).to_bytes(6, "big"), _BCAST, seq) + _PROBE_BODY


def beacon(bssid: bytes, seq: int, tsf: int) -> bytes:
    """An access point's beacon: timestamp, interval 100 TU, capabilities, SSID, rates."""
    body = struct.pack("<QHH", tsf, 100, 0x0401) + b"\x00\x09mall-wifi" + _PROBE_BODY[2:]
    return mgmt_header(_FC_BEACON, _BCAST, bssid, bssid, seq) + body


def data_frame(bssid: bytes, station: bytes, seq: int) -> bytes:
    """A data frame between a station and the access point (LLC/SNAP, a few bytes)."""
    llc_snap = b"\xaa\xaa\x03\0\0\0\x08\x00"
    return mgmt_header(_FC_DATA, bssid, station, bssid, seq) + llc_snap + bytes(12)


def pcap_bytes(frames: list[tuple[int, bytes]], *, nanos: bool = False) -> bytes:
    """A classic little-endian pcap of ``(ts_ms, frame)``: microsecond magic 0xa1b2c3d4,
    or 0xa1b23c4d with nanosecond fractions; link type 127 (radiotap)."""
    magic, per_ms = (0xA1B23C4D, 1_000_000) if nanos else (0xA1B2C3D4, 1_000)
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RADIOTAP)]
    rec = struct.Struct("<IIII")
    for ts_ms, frame in frames:
        sec, ms = divmod(int(ts_ms), 1000)
        out.append(rec.pack(sec, ms * per_ms, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def _block(btype: int, body: bytes) -> bytes:
    pad = b"\0" * (-len(body) % 4)
    total = 12 + len(body) + len(pad)
    return struct.pack("<II", btype, total) + body + pad + struct.pack("<I", total)


def pcapng_bytes(frames: list[tuple[int, bytes]]) -> bytes:
    """A little-endian pcapng of ``(ts_ms, frame)``: a section header, one interface of
    link type 127 without options (``if_tsresol`` by default: microseconds), one
    enhanced packet block per frame."""
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           _block(1, struct.pack("<HHI", LINKTYPE_RADIOTAP, 0, SNAPLEN))]
    for ts_ms, frame in frames:
        us = int(ts_ms) * 1000
        out.append(_block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(frame),
                                         len(frame)) + frame))
    return b"".join(out)


def capture_file(fmt: str, mac: np.ndarray, ts: np.ndarray, rssi: np.ndarray,
                 rng: np.random.Generator, *, nanos: bool = False) -> tuple[bytes, int]:
    """One capture (``fmt`` ``pcap`` or ``pcapng``) of the records ``mac``, ``ts`` (UTC
    epoch ms, in time order) and ``rssi``, one probe request each, with 1–2 beacons and
    0–2 data frames mixed in. Returns the bytes and the number of those other frames."""
    n = len(ts)
    if not n:
        raise ValueError("a capture file needs at least one record")
    layouts = rng.integers(0, len(RADIOTAP_LAYOUTS), n).tolist()
    seq0 = int(rng.integers(0, 4096))
    bssid = bytes([0x02]) + bytes(rng.integers(0, 256, 5).astype(np.uint8).tolist())
    frames = [(t, radiotap(r, RADIOTAP_LAYOUTS[k], tsft=t * 1000 % (1 << 64))
               + probe_request(m, seq0 + i))
              for i, (m, t, r, k) in enumerate(zip(mac.tolist(), ts.tolist(), rssi.tolist(),
                                                   layouts))]
    # Other frames at random places, stamped like their neighbour so time stays in order.
    others = ["beacon"] * int(rng.integers(1, 3)) + ["data"] * int(rng.integers(0, 3))
    for j, kind in enumerate(others):
        pos = int(rng.integers(0, len(frames) + 1))
        t = frames[pos][0] if pos < len(frames) else frames[-1][0]
        sig = int(rng.integers(-90, -40))
        if kind == "beacon":
            frame = beacon(bssid, seq0 + 2048 + j, t * 1000)
        else:
            station = bytes([0x02, 0x11]) + bytes(rng.integers(0, 256, 4).astype(np.uint8).tolist())
            frame = data_frame(bssid, station, seq0 + 2048 + j)
        frames.insert(pos, (t, radiotap(sig, "channel") + frame))
    if fmt == "pcap":
        return pcap_bytes(frames, nanos=nanos), len(others)
    if fmt == "pcapng":
        return pcapng_bytes(frames), len(others)
    raise ValueError(f"not a capture format: {fmt!r}")
