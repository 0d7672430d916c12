"""Capture files through Spark (jobs/capture.py): frames become the text fields of the
one validation path. The frames are built as in tests/test_pcap.py."""

from __future__ import annotations

import gzip

from chispa import assert_df_equality

from jobs.capture import SCHEMA, capture_fields
from tests.test_pcap import BEACON, pcap, probe, radiotap, rt


def test_probe_requests_and_bad_frames_become_record_fields(spark):
    good = pcap([((1458000000, 123999), rt(probe("a4:5e:60:01:02:03"), -67)),
                 ((1458000001, 0), rt(BEACON)),
                 ((1458000002, 500), radiotap(None) + probe("a4:5e:60:01:02:04"))])
    files = spark.createDataFrame([("f/a.pcap", good, "lab-p1"),
                                   ("f/b.pcap.gz", gzip.compress(good), "lab-p2"),
                                   ("f/c.pcap", b"not a capture at all....", "lab-p1")],
                                  "source_file string, content binary, sensor_id string")
    got = capture_fields(files).drop("raw")
    r = (None, None)
    want = [
        ("f/a.pcap", 0, "lab-p1", None, None, None, False, "file", 3, 1),
        ("f/a.pcap", 1, "lab-p1", "a4:5e:60:01:02:03", "1458000000123", "-67", False, "record", *r),
        ("f/a.pcap", 3, "lab-p1", None, None, None, True, "record", *r),
        ("f/b.pcap.gz", 0, "lab-p2", None, None, None, False, "file", 3, 1),
        ("f/b.pcap.gz", 1, "lab-p2", "a4:5e:60:01:02:03", "1458000000123", "-67", False, "record", *r),
        ("f/b.pcap.gz", 3, "lab-p2", None, None, None, True, "record", *r),
        ("f/c.pcap", 0, "lab-p1", None, None, None, True, "corrupt", *r),
    ]
    expected = spark.createDataFrame(want, SCHEMA.replace("raw string, ", ""))
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
