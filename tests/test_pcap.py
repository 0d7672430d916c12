"""jobs.pcap: probe requests out of pcap / pcapng captures built byte by byte here."""

from __future__ import annotations

import gzip
import random
import re
import struct

import pytest

from jobs.pcap import BadFrame, Capture, CorruptCapture, Probe, read_capture

MAC1, MAC2, MAC3 = "aa:bb:cc:dd:ee:01", "02:00:5e:10:00:ff", "f0:9f:c2:00:00:2a"
T0 = 1458000000  # 2016-03-15 00:00:00 UTC, seconds


# --- frames -----------------------------------------------------------------------------

def radiotap(signal=None, *, tsft=None, flags=None, rate=None, channel=None, ext_signal=None):
    """A radiotap header with the given fields in bit order, each at its natural alignment.
    ``ext_signal``: a second present word (another antenna) whose signal comes last."""
    words = 2 if ext_signal is not None else 1
    body = bytearray(4 + 4 * words)
    present = 0

    def put(bit, fmt, align, *values):
        nonlocal present
        present |= 1 << bit
        body.extend(b"\0" * (-len(body) % align))
        body.extend(struct.pack("<" + fmt, *values))

    for bit, fmt, align, value in ((0, "Q", 8, tsft), (1, "B", 1, flags), (2, "B", 1, rate),
                                   (3, "HH", 2, channel), (5, "b", 1, signal)):
        if value is not None:
            put(bit, fmt, align, *(value if isinstance(value, tuple) else (value,)))
    if ext_signal is not None:
        body.extend(struct.pack("<b", ext_signal))
        present |= 1 << 29 | 1 << 31  # back to the radiotap namespace, one more word
        struct.pack_into("<I", body, 8, 1 << 5)
    struct.pack_into("<BBHI", body, 0, 0, 0, len(body), present)
    return bytes(body)


def mgmt(fc0, mac, body=b""):
    """An 802.11 frame: fc, duration, addr1 (broadcast), addr2, addr3, sequence, body."""
    bcast = b"\xff" * 6
    return bytes([fc0, 0]) + b"\0\0" + bcast + bytes.fromhex(mac.replace(":", "")) + bcast \
        + b"\x10\x00" + body


def probe(mac):
    return mgmt(0x40, mac, b"\x00\x04home" + b"\x01\x04\x02\x04\x0b\x16")  # SSID, rates IEs


BEACON = mgmt(0x80, MAC3, bytes(8) + b"\x64\x00\x01\x04" + b"\x00\x04home")
DATA = mgmt(0x08, MAC2, b"\xaa\xaa\x03")
ACK = b"\xd4\x00\x00\x00" + b"\xff" * 6  # control, 10 bytes: short yet not an error


def rt(frame, signal=-67, **fields):
    return radiotap(signal, **fields) + frame


# --- containers -------------------------------------------------------------------------

def pcap(records, *, link=127, ns=False, bo="<"):
    """records: ((seconds, fraction), frame) pairs; fraction in µs, or ns when ``ns``."""
    out = struct.pack(bo + "IHHiIII", 0xA1B23C4D if ns else 0xA1B2C3D4, 2, 4, 0, 0, 65535, link)
    for (sec, frac), frame in records:
        out += struct.pack(bo + "IIII", sec, frac, len(frame), len(frame)) + frame
    return out


def block(btype, body, bo="<"):
    body += b"\0" * (-len(body) % 4)
    length = struct.pack(bo + "I", len(body) + 12)
    return struct.pack(bo + "I", btype) + length + body + length


def shb(bo="<"):
    return block(0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1), bo)


def idb(link=127, tsresol=None, bo="<"):
    opts = b"" if tsresol is None else struct.pack(bo + "HHB3xHH", 9, 1, tsresol, 0, 0)
    return block(1, struct.pack(bo + "HHI", link, 0, 0) + opts, bo)


def epb(iface, ts, frame, bo="<"):
    head = struct.pack(bo + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame))
    return block(6, head + frame, bo)


def spb(frame, bo="<"):
    return block(3, struct.pack(bo + "I", len(frame)) + frame, bo)


def bad(capture):
    return [(b.frame_no, b.reason) for b in capture.bad]


# --- pcap -------------------------------------------------------------------------------

@pytest.mark.parametrize("bo", ["<", ">"], ids=["le", "be"])
@pytest.mark.parametrize("ns", [False, True], ids=["us", "ns"])
def test_pcap_probe_requests_with_signal(bo, ns):
    scale = 1000 if ns else 1
    records = [((T0, 123999 * scale + (999 if ns else 0)), rt(probe(MAC1), -67)),
               ((T0 + 1, 0), rt(probe(MAC2), -90, tsft=7, flags=0, rate=2, channel=(2412, 0xA0))),
               ((T0 + 2, 1000 * scale - 1), rt(probe(MAC3), 0))]
    assert read_capture(pcap(records, ns=ns, bo=bo)) == Capture(
        [Probe(1, MAC1, 1458000000123, -67), Probe(2, MAC2, 1458000001000, -90),
         Probe(3, MAC3, 1458000002000, 0)], [], 3, 0)


def test_other_frames_are_skipped_not_errors():
    frames = [rt(BEACON), rt(DATA), rt(probe(MAC1), -50), rt(ACK), rt(mgmt(0x50, MAC2))]
    cap = read_capture(pcap([((T0, 0), f) for f in frames]))
    assert cap == Capture([Probe(3, MAC1, 1458000000000, -50)], [], 5, 4)


def test_probe_request_without_signal():
    frames = [rt(probe(MAC1), None, tsft=1, flags=0), rt(probe(MAC2), -70)]
    cap = read_capture(pcap([((T0, 0), f) for f in frames]))
    assert bad(cap) == [(1, "no_signal")] and cap.bad[0].detail.startswith("frame 1:")
    assert cap.probes == [Probe(2, MAC2, 1458000000000, -70)]


def test_linktype_105_has_no_signal():
    cap = read_capture(pcap([((T0, 0), probe(MAC1)), ((T0, 0), BEACON)], link=105))
    assert (bad(cap), cap.probes, cap.frames, cap.skipped) == ([(1, "no_signal")], [], 2, 1)


@pytest.mark.parametrize("cut", [1, 20, 60], ids=["data-1", "data-20", "all-data"])
def test_pcap_last_record_cut_off(cut):
    data = pcap([((T0, 5000), rt(probe(MAC1))), ((T0, 6000), rt(probe(MAC2)))])
    cap = read_capture(data[:-cut])
    assert cap.probes == [Probe(1, MAC1, 1458000000005, -67)]
    assert (bad(cap), cap.frames) == ([(2, "truncated")], 2)


@pytest.mark.parametrize("tail", [b"\0", bytes(15)], ids=["1-byte", "15-bytes"])
def test_pcap_record_header_cut_off(tail):
    cap = read_capture(pcap([((T0, 0), rt(probe(MAC1)))]) + tail)
    assert (len(cap.probes), bad(cap), cap.frames) == (1, [(2, "truncated")], 2)


def test_short_frames_inside_the_file():
    frames = [rt(probe(MAC1)[:15]),  # addr2 cut off
              radiotap(-60)[:6],  # radiotap header cut off
              radiotap(-60, tsft=1)[:12] + b"\x00" * 2,  # radiotap length > frame
              rt(b""),  # radiotap only, no 802.11 header
              rt(probe(MAC2)[:16], -40)]  # just long enough
    cap = read_capture(pcap([((T0, 0), f) for f in frames]))
    assert bad(cap) == [(1, "truncated"), (2, "truncated"), (3, "truncated"), (4, "truncated")]
    assert cap.probes == [Probe(5, MAC2, 1458000000000, -40)]


# --- radiotap ---------------------------------------------------------------------------

def test_radiotap_builder_layout():
    """The layout worked out by hand: 12 bytes of words, pad to 16, TSFT 16-23, flags 24,
    pad, channel 26-29, signal 30, second antenna 31."""
    assert radiotap(-67, tsft=0x0102030405060708, flags=0, channel=(2412, 0xA0),
                    ext_signal=-80) == bytes.fromhex(
        "00002000" "2b0000a0" "20000000" "00000000" "0807060504030201" "00" "00" "6c09a000"
        "bd" "b0")


@pytest.mark.parametrize("fields", [
    {}, {"tsft": 2**64 - 1}, {"flags": 0x02}, {"rate": 108}, {"channel": (5180, 0x140)},
    {"tsft": 1, "flags": 0, "rate": 2, "channel": (2412, 0xA0)},
    {"flags": 0, "channel": (2412, 0xA0)},  # channel at 9, aligned to 10
    {"tsft": 1, "ext_signal": -80},  # TSFT after two words: aligned from 12 to 16
    {"tsft": 1, "flags": 0, "channel": (2437, 0xA0), "ext_signal": -80},
], ids=repr)
def test_radiotap_signal_after_other_fields(fields):
    cap = read_capture(pcap([((T0, 0), rt(probe(MAC1), -67, **fields))]))
    assert cap.probes == [Probe(1, MAC1, 1458000000000, -67)]


def test_radiotap_fcs_at_the_end():
    cap = read_capture(pcap([((T0, 0), rt(probe(MAC1), -55, flags=0x10) + b"\xde\xad\xbe\xef")]))
    assert cap.probes == [Probe(1, MAC1, 1458000000000, -55)]


# --- pcapng -----------------------------------------------------------------------------

@pytest.mark.parametrize("bo", ["<", ">"], ids=["le", "be"])
def test_pcapng_interfaces_resolutions_and_blocks(bo):
    data = b"".join([
        shb(bo), idb(tsresol=None, bo=bo), idb(tsresol=9, bo=bo),
        block(0x0BAD, b"unknown block", bo), idb(tsresol=0x8A, bo=bo), idb(105, 3, bo),
        epb(0, T0 * 10**6 + 123999, rt(probe(MAC1), -67), bo),  # µs
        epb(1, T0 * 10**9 + 123999999, rt(probe(MAC2), -68), bo),  # ns
        epb(2, T0 * 1024 + 1023, rt(probe(MAC3), -69), bo),  # 2^-10 s: 1023/1024 s = 999.02 ms
        epb(2, T0 * 1024 + 1, rt(BEACON), bo),
        block(5, bytes(20), bo),  # interface statistics: skipped by its length
        epb(3, T0 * 1000 + 7, probe(MAC1), bo),  # link type 105
        spb(rt(probe(MAC2)), bo), spb(rt(DATA), bo),
    ])
    cap = read_capture(data)
    assert cap.probes == [Probe(1, MAC1, 1458000000123, -67), Probe(2, MAC2, 1458000000123, -68),
                          Probe(3, MAC3, 1458000000999, -69)]
    assert (bad(cap), cap.frames, cap.skipped) == ([(5, "no_signal"), (6, "no_timestamp")], 7, 2)


def test_pcapng_last_block_cut_off():
    data = shb() + idb() + block(0x0BAD, b"x") + epb(0, T0 * 10**6, rt(probe(MAC1))) \
        + epb(0, T0 * 10**6, rt(probe(MAC2)))
    for cut in (1, 30, len(epb(0, 0, rt(probe(MAC2)))) - 4):
        cap = read_capture(data[:-cut])
        assert cap.probes == [Probe(1, MAC1, 1458000000000, -67)]
        assert (bad(cap), cap.frames) == ([(2, "truncated")], 2)


def test_pcapng_non_packet_block_cut_off_at_the_end():
    data = shb() + idb() + epb(0, T0 * 10**6, rt(probe(MAC1))) + block(5, bytes(20))
    assert read_capture(data[:-3]) == Capture([Probe(1, MAC1, 1458000000000, -67)], [], 1, 0)


# --- gzip and broken files --------------------------------------------------------------

def many_probes():
    return pcap([((T0 + i, 0), rt(probe(MAC1), -i)) for i in range(50)])


def test_gzip_gives_the_same_capture():
    plain = many_probes()
    assert read_capture(gzip.compress(plain)) == read_capture(plain)
    assert len(read_capture(plain).probes) == 50


def test_gzip_cut_off():
    plain = many_probes()
    assert read_capture(gzip.compress(plain)[:-8]) == read_capture(plain)  # trailer lost
    # Stored (level 0): a 10-byte gzip header and a 5-byte block header, then the data as is.
    cap = read_capture(gzip.compress(plain, compresslevel=0)[:15 + len(plain) - 20])
    assert cap.probes == read_capture(plain).probes[:49]
    assert (bad(cap), cap.frames) == ([(50, "truncated")], 50)


def bad_crc(gz):
    return gz[:-8] + bytes([gz[-8] ^ 0xFF]) + gz[-7:]


CORRUPT = [  # (test id, file, what the message must say)
    ("empty", b"", "empty"),
    ("garbage", b"GET / HTTP/1.1\r\n\r\n", "not a pcap"),
    ("gzip-bad-header", b"\x1f\x8b\x09\x00garbage", "gzip"),
    ("gzip-bad-crc", bad_crc(gzip.compress(pcap([((T0, 0), rt(probe(MAC1)))]))), "gzip"),
    ("gzip-no-data", gzip.compress(b"")[:12], "gzip"),
    ("pcap-header-cut", b"\xd4\xc3\xb2\xa1" + bytes(10), "global header"),
    ("pcap-ethernet", pcap([], link=1), "link type 1 (Ethernet)"),
    ("pcap-link-228", pcap([], link=228), "link type 228"),
    ("pcapng-ethernet", shb() + idb(link=1), "link type 1 (Ethernet)"),
    ("pcapng-byte-order", shb()[:8] + b"\x01\x02\x03\x04" + shb()[12:], "byte-order"),
    ("pcapng-shb-cut", shb()[:10], "section header"),
    ("pcapng-block-length", shb() + struct.pack("<II", 6, 13) + bytes(20), "invalid length"),
    ("pcapng-no-interface", shb() + epb(0, 0, rt(probe(MAC1))), "interface 0"),
    ("not-radiotap", pcap([((T0, 0), b"\x05" + bytes(20))]), "radiotap"),
]


@pytest.mark.parametrize("data, message", [pytest.param(d, m, id=i) for i, d, m in CORRUPT])
def test_corrupt_capture(data, message):
    with pytest.raises(CorruptCapture, match=re.escape(message)):
        read_capture(data)


def test_never_anything_but_corrupt_capture():
    """Every prefix and some random damage of a varied capture: a Capture or CorruptCapture."""
    frames = [rt(probe(MAC1), -60, tsft=1, flags=0x10, channel=(2412, 0), ext_signal=-3),
              rt(BEACON), rt(ACK), probe(MAC2)]
    files = [pcap([((T0, 0), f) for f in frames]),
             shb() + idb(tsresol=0x89) + b"".join(epb(0, T0, f) for f in frames) + spb(frames[0])]
    rng = random.Random(20160315)
    for data in files:
        damaged = [data[:i] for i in range(len(data))]
        for _ in range(300):
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            damaged.append(bytes(b))
        for d in damaged:
            try:
                assert isinstance(read_capture(d), Capture)
            except CorruptCapture:
                pass
