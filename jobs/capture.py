"""Capture files (pcap, pcapng) as record fields, in Spark.

:func:`capture_fields` turns ``(source_file, content, sensor_id)`` rows (a
``binaryFile`` read plus the feed's sensor) into the same text fields
:func:`jobs.ingest.parse_fields` gives a line of SPEC's formats, so that a capture's
probe requests join the one validation, pseudonymisation and quarantine path. The
frames are read by :mod:`jobs.pcap` (standard library only) in the executors'
Python workers (``mapInArrow``), which need pyarrow, as any Arrow UDF does, and the
``jobs`` package.
"""

from __future__ import annotations

import json
from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame

from jobs.pcap import CorruptCapture, read_capture

#: Row kinds of :func:`capture_fields`: a probe request or an unusable frame (``line_no``
#: = the frame's number), a file that cannot be read at all (``raw`` says why), and one
#: row per readable file with its counts of frames read and of other frames skipped.
RECORD, CORRUPT, FILE = "record", "corrupt", "file"
SCHEMA = ("source_file string, line_no long, raw string, sensor_id_text string, "
          "mac_text string, ts_text string, rssi_text string, malformed boolean, "
          "kind string, frames long, skipped long")
_ARROW = pa.schema([("source_file", pa.string()), ("line_no", pa.int64()), ("raw", pa.string()),
                    ("sensor_id_text", pa.string()), ("mac_text", pa.string()),
                    ("ts_text", pa.string()), ("rssi_text", pa.string()),
                    ("malformed", pa.bool_()), ("kind", pa.string()),
                    ("frames", pa.int64()), ("skipped", pa.int64())])


def _rows(file: str, content: bytes, sensor: str) -> Iterator[tuple]:
    try:
        capture = read_capture(content)
    except CorruptCapture as exc:
        yield (file, 0, str(exc), sensor, None, None, None, True, CORRUPT, None, None)
        return
    yield (file, 0, None, sensor, None, None, None, False, FILE, capture.frames, capture.skipped)
    for p in capture.probes:
        # As a SPEC JSON record: a frame quarantined as too_late or unknown_sensor is
        # read again from this text when a backfill replays it.
        raw = json.dumps({"sensor_id": sensor, "mac": p.mac, "ts": p.ts_ms, "rssi": p.rssi})
        yield (file, p.frame_no, raw, sensor, p.mac, str(p.ts_ms), str(p.rssi), False, RECORD,
               None, None)
    for b in capture.bad:  # a missing field: SPEC's `malformed`, the raw text says which
        yield (file, b.frame_no, b.detail, sensor, None, None, None, True, RECORD, None, None)


def _read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rows = [r for f, c, s in zip(*(batch.column(n).to_pylist() for n in
                                        ("source_file", "content", "sensor_id")))
                for r in _rows(f, c, s)]
        yield pa.RecordBatch.from_pylist([dict(zip(_ARROW.names, r)) for r in rows], schema=_ARROW)


def capture_fields(files: DataFrame) -> DataFrame:
    """One row per probe request or unusable frame of each capture file, plus one row
    per file (``kind``: :data:`RECORD`, :data:`CORRUPT`, :data:`FILE`).

    :param files: ``(source_file, content, sensor_id)``: a capture's bytes and its feed's
        sensor id.
    """
    return files.select("source_file", "content", "sensor_id").mapInArrow(_read, SCHEMA)
