"""802.11 probe requests out of capture files: pcap and pcapng, plain or gzip'd.

Pure Python on ``bytes`` (stdlib only, no file I/O, no Spark) so that it can run inside a
Spark ``mapInArrow`` over ``binaryFile`` rows. :func:`read_capture` gives a :class:`Capture`:
the usable probe requests, the probe requests that cannot be used (:class:`BadFrame`), and
counts. A file that cannot be read at all raises :class:`CorruptCapture`, the only exception
malformed input can raise.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

LINKTYPE_IEEE802_11 = 105
LINKTYPE_RADIOTAP = 127
_LINK_NAMES = {0: "BSD loopback", 1: "Ethernet", 101: "raw IP", 113: "Linux cooked",
               119: "Prism", 163: "AVS", 192: "PPI", 276: "Linux cooked v2"}

#: pcap magic as it appears in the file → (byte order, timestamp fraction units per ms).
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1_000), b"\xa1\xb2\xc3\xd4": (">", 1_000),
               b"\x4d\x3c\xb2\xa1": ("<", 1_000_000), b"\xa1\xb2\x3c\x4d": (">", 1_000_000)}
_SHB, _IDB, _SPB, _EPB = 0x0A0D0D0A, 1, 3, 6
_SHB_MAGIC = b"\x0a\x0d\x0d\x0a"
_BYTE_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
#: Radiotap fields of bits 0-5 as (size, alignment): TSFT, Flags, Rate, Channel, FHSS and
#: dBm antenna signal, the one we want; the others are walked only to find where it is.
_RADIOTAP_FIELDS = ((8, 8), (1, 1), (1, 1), (4, 2), (2, 1), (1, 1))
_FLAG_FCS = 0x10


class Probe(NamedTuple):
    """One probe request."""
    frame_no: int   # 1-based frame number in the file
    mac: str        # transmitter address (addr2), "aa:bb:cc:dd:ee:ff"
    ts_ms: int      # capture time, epoch milliseconds UTC, fraction cut
    rssi: int       # radiotap dBm antenna signal


class BadFrame(NamedTuple):
    """A frame that is (or may be) a probe request but cannot be used."""
    frame_no: int
    reason: str     # "no_signal", "no_timestamp" or "truncated"
    detail: str


class Capture(NamedTuple):
    """What :func:`read_capture` found in one file."""
    probes: list[Probe]
    bad: list[BadFrame]
    frames: int     # frames read, of every kind, bad ones included
    skipped: int    # frames that are not probe requests: not errors


class CorruptCapture(ValueError):
    """The capture as a whole cannot be read; the message says what is wrong."""


class _Iface(NamedTuple):
    link: int
    snaplen: int
    tsresol: int    # pcapng if_tsresol byte
    tsoffset: int   # pcapng if_tsoffset, seconds


def read_capture(data: bytes) -> Capture:
    """Read a pcap or pcapng capture (gzip'd or not) of link type 127 (radiotap) or 105.

    A gzip stream cut off mid-way is read as far as it decompresses: the frame the cut lands
    in becomes a ``truncated`` :class:`BadFrame`, as in a plain file cut off at the same place
    (a stream cut off before it yields any byte, or damaged, raises :class:`CorruptCapture`).
    """
    data = _gunzip(data) if data[:2] == b"\x1f\x8b" else bytes(data)
    magic = data[:4]
    if magic == _SHB_MAGIC:
        return _read_pcapng(data)
    if magic in _PCAP_MAGIC:
        return _read_pcap(data, *_PCAP_MAGIC[magic])
    if not data:
        raise CorruptCapture("capture is empty")
    raise CorruptCapture(f"not a pcap or pcapng capture (starts with {magic.hex(' ')})")


def _gunzip(data: bytes) -> bytes:
    out = []
    while data[:2] == b"\x1f\x8b":  # concatenated members are one stream, as for gzip(1)
        inflate = zlib.decompressobj(wbits=31)
        try:
            out.append(inflate.decompress(data))
        except zlib.error as e:
            raise CorruptCapture(f"broken gzip stream: {e}") from None
        if not inflate.eof:
            # Cut off: keep what came out, the reader then flags the frame the cut lands in.
            if not any(out):
                raise CorruptCapture("gzip stream cut off before any data")
            break
        data = inflate.unused_data
    return b"".join(out)


def _check_link(link: int) -> None:
    if link not in (LINKTYPE_RADIOTAP, LINKTYPE_IEEE802_11):
        name = _LINK_NAMES.get(link, "unknown")
        raise CorruptCapture(f"link type {link} ({name}) is not 802.11: capture in monitor mode "
                             "with radiotap headers")


def _read_pcap(data: bytes, bo: str, frac_per_ms: int) -> Capture:
    if len(data) < 24:
        raise CorruptCapture(f"pcap global header cut off ({len(data)} of 24 bytes)")
    # The upper 16 bits of the link-type word carry FCS flags, not the link type.
    link = struct.unpack_from(bo + "I", data, 20)[0] & 0xFFFF
    _check_link(link)
    record = struct.Struct(bo + "IIII")
    acc, off, n = _Acc(), 24, 0
    while off < len(data):
        n += 1
        left = len(data) - off
        if left < 16:
            acc.cut(n, f"record header cut off at end of file ({left} of 16 bytes)")
            break
        sec, frac, incl_len, _ = record.unpack_from(data, off)
        off += 16
        if incl_len > len(data) - off:
            acc.cut(n, f"record of {incl_len} bytes cut off after {len(data) - off}")
            break
        acc.add(_decode(n, link, data[off:off + incl_len], sec * 1000 + frac // frac_per_ms))
        off += incl_len
    return acc.result(n)


def _read_pcapng(data: bytes) -> Capture:
    acc, off, n, bo, ifaces = _Acc(), 0, 0, "<", []
    while off < len(data):
        head = data[off:off + 12]
        if head[:4] == _SHB_MAGIC:  # a new section: its own byte order, its own interfaces
            if head[8:] in _BYTE_ORDER:
                bo, ifaces = _BYTE_ORDER[head[8:]], []
            elif len(head) == 12:
                raise CorruptCapture(f"pcapng section header at offset {off}: unknown "
                                     f"byte-order magic {head[8:].hex()}")
        btype = struct.unpack_from(bo + "I", head)[0] if len(head) >= 4 else None
        blen = struct.unpack_from(bo + "I", head, 4)[0] if len(head) >= 8 else None
        if blen is not None and (blen < 12 or blen % 4):
            raise CorruptCapture(f"pcapng block at offset {off} has invalid length {blen}")
        if blen is None or blen > len(data) - off:
            if btype in (_EPB, _SPB):
                n += 1
                acc.cut(n, f"packet block cut off at end of file ({len(data) - off} bytes left)")
            elif off == 0:
                raise CorruptCapture("pcapng section header block cut off")
            break  # any other block cut off at the end holds no frame
        body = data[off + 8:off + blen - 4]
        off += blen
        if btype == _IDB:
            ifaces.append(_read_idb(body, bo))
        elif btype == _EPB:
            n += 1
            if len(body) < 20:
                acc.cut(n, f"enhanced packet block of {blen} bytes has no room for its header")
                continue
            iface_id, ts_hi, ts_lo, cap_len, _ = struct.unpack_from(bo + "IIIII", body)
            iface = _iface(ifaces, iface_id)
            if cap_len > len(body) - 20:
                acc.cut(n, f"packet of {cap_len} bytes in a block that holds {len(body) - 20}")
                continue
            ts_ms = _pcapng_ms((ts_hi << 32) | ts_lo, iface)
            acc.add(_decode(n, iface.link, body[20:20 + cap_len], ts_ms))
        elif btype == _SPB:
            n += 1
            iface = _iface(ifaces, 0)
            if len(body) < 4:
                acc.cut(n, f"simple packet block of {blen} bytes has no room for its header")
                continue
            # The captured length is implied: the original one, cut to the snap length.
            cap_len = min(struct.unpack_from(bo + "I", body)[0], len(body) - 4,
                          iface.snaplen or len(body))
            acc.add(_decode(n, iface.link, body[4:4 + cap_len], None))
    return acc.result(n)


def _read_idb(body: bytes, bo: str) -> _Iface:
    if len(body) < 8:
        raise CorruptCapture(f"pcapng interface description block of {len(body) + 12} bytes")
    link, _, snaplen = struct.unpack_from(bo + "HHI", body)
    _check_link(link)
    tsresol, tsoffset, off = 6, 0, 8
    while off + 4 <= len(body):
        code, size = struct.unpack_from(bo + "HH", body, off)
        off += 4
        if code == 0 or off + size > len(body):
            break
        if code == 9 and size >= 1:
            tsresol = body[off]
        elif code == 14 and size >= 8:
            tsoffset = struct.unpack_from(bo + "q", body, off)[0]
        off += size + (-size % 4)
    return _Iface(link, snaplen, tsresol, tsoffset)


def _iface(ifaces: list[_Iface], iface_id: int) -> _Iface:
    if iface_id >= len(ifaces):
        raise CorruptCapture(f"packet on interface {iface_id}, but {len(ifaces)} described")
    return ifaces[iface_id]


def _pcapng_ms(ts: int, iface: _Iface) -> int:
    exp = iface.tsresol & 0x7F
    if iface.tsresol & 0x80:
        ms = (ts * 1000) >> exp
    elif exp >= 3:
        ms = ts // 10 ** (exp - 3)
    else:
        ms = ts * 10 ** (3 - exp)
    return ms + iface.tsoffset * 1000


def _decode(n: int, link: int, frame: bytes, ts_ms: int | None) -> Probe | BadFrame | None:
    """One frame: a :class:`Probe`, a :class:`BadFrame`, or None when not a probe request."""
    signal = None
    if link == LINKTYPE_RADIOTAP:
        parsed = _radiotap(n, frame)
        if isinstance(parsed, BadFrame):
            return parsed
        frame, signal = parsed
    if not frame:  # cannot tell what it is: count it as a lost probe rather than hide it
        return BadFrame(n, "truncated", f"frame {n}: no 802.11 header")
    ftype, subtype = (frame[0] >> 2) & 3, frame[0] >> 4
    if (ftype, subtype) != (0, 4):
        return None
    if len(frame) < 16:
        return BadFrame(n, "truncated", f"frame {n}: probe request of {len(frame)} bytes, "
                                        "too short to hold the transmitter address")
    if signal is None:
        return BadFrame(n, "no_signal", f"frame {n}: probe request without a radiotap "
                                        "antenna signal")
    if ts_ms is None:
        return BadFrame(n, "no_timestamp", f"frame {n}: probe request in a simple packet "
                                           "block, which has no timestamp")
    return Probe(n, frame[10:16].hex(":"), ts_ms, signal)


def _radiotap(n: int, frame: bytes) -> tuple[bytes, int | None] | BadFrame:
    """The 802.11 frame after the radiotap header and the dBm antenna signal (or None)."""
    if len(frame) < 8:
        return BadFrame(n, "truncated", f"frame {n}: radiotap header cut off")
    version, _, length, present = struct.unpack_from("<BBHI", frame)
    if version != 0 or length < 8:  # not radiotap at all: the link type lies
        raise CorruptCapture(f"frame {n}: not a radiotap header (version {version}, "
                             f"length {length})")
    if length > len(frame):
        return BadFrame(n, "truncated", f"frame {n}: radiotap header of {length} bytes "
                                        f"in a frame of {len(frame)}")
    off, word = 8, present
    while word & 0x8000_0000:  # the fields start after the last present word
        if off + 4 > length:
            return BadFrame(n, "truncated", f"frame {n}: radiotap present words run past "
                                            "the header")
        word = struct.unpack_from("<I", frame, off)[0]
        off += 4
    flags, signal = 0, None
    for bit, (size, align) in enumerate(_RADIOTAP_FIELDS):
        if not present >> bit & 1:
            continue
        off += -off % align  # alignment is relative to the start of the radiotap header
        if off + size > length:
            return BadFrame(n, "truncated", f"frame {n}: radiotap field {bit} runs past "
                                            "the header")
        if bit == 1:
            flags = frame[off]
        elif bit == 5:
            signal = struct.unpack_from("b", frame, off)[0]
        off += size
    end = len(frame) - 4 if flags & _FLAG_FCS else len(frame)
    return frame[length:end], signal


class _Acc:
    def __init__(self) -> None:
        self.probes: list[Probe] = []
        self.bad: list[BadFrame] = []
        self.skipped = 0

    def add(self, item: Probe | BadFrame | None) -> None:
        if item is None:
            self.skipped += 1
        elif isinstance(item, Probe):
            self.probes.append(item)
        else:
            self.bad.append(item)

    def cut(self, n: int, detail: str) -> None:
        self.bad.append(BadFrame(n, "truncated", f"frame {n}: {detail}"))

    def result(self, frames: int) -> Capture:
        return Capture(self.probes, self.bad, frames, self.skipped)
