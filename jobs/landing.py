"""The landing folder: list its probe files, read them (gunzipped by extension), and
tell which cannot be read. The only module besides :mod:`jobs.tables` that reads data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.spark import rows_df
from jobs.feeds import CAPTURE_FORMATS
from jobs.spec import file_format


class LandingError(RuntimeError):
    """The landing folder cannot be used (it does not exist); nothing was written."""


#: Hadoop settings for reading landing files: the local file system without checksum
#: files, whose `.<name>.crc` path Hadoop cannot build for a name with a `:`
#: (`t:10:00.json` failed as "Relative path in absolute URI"). Other schemes are unaffected.
LANDING_READ_CONF = {"fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
                     "fs.file.impl.disable.cache": "true"}

#: Characters that make Spark's reader take a path as a glob pattern.
_GLOB_CHARS = re.compile(r"[\\*?\[\]{}]")


def check_landing(spark: SparkSession, landing: str) -> None:
    """Stop before any write when the landing folder is missing."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(landing)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        raise LandingError(f"landing folder {landing} does not exist (set `landing` in "
                           "conf/storage.yaml or pass --landing)")


@dataclass(frozen=True)
class LandingFile:
    """A probe file as listed: its path (as Spark's readers name it), size and
    modification time (epoch ms), which together identify a delivery
    (ops/ingested_files), and its URI (as ``_metadata.file_path`` names its lines)."""

    path: str
    size: int
    mtime_ms: int
    uri: str
    #: The conf/feeds.yaml feed that claims the file; None: read as SPEC's formats.
    feed: object = None

    @property
    def is_capture(self) -> bool:
        """Claimed by a pcap or pcapng feed: read as bytes, not as lines."""
        return self.feed is not None and self.feed.format in CAPTURE_FORMATS


def list_landing(spark: SparkSession, landing: str, feeds=None,
                 skipped: list[str] | None = None) -> list[LandingFile]:
    """Every probe file below ``landing``, at any depth: files and folders whose name
    starts with ``.`` or ``_`` are skipped, and so are files of other extensions and
    empty files (decisions.md: a file of zero bytes holds no records; a ``.gz`` one is
    not corrupt). A file a feed of ``feeds`` claims is listed whatever its extension;
    a file of no known format goes to ``skipped`` (relative paths) instead.

    Spark's own file index lists the folder (``binaryFile`` without its content: no file
    is opened) and one small job collects the statuses: walking Hadoop's listing from
    Python costs a gateway call per file and attribute (3.7 s for 900 files).
    """
    prefix = qualified_root(spark, landing)
    statuses = (spark.read.format("binaryFile").options(**LANDING_READ_CONF)
                .option("recursiveFileLookup", "true")
                .load(_GLOB_CHARS.sub(lambda m: "\\" + m.group(0), landing))
                .where("length > 0")
                .select("path", "length", F.unix_millis("modificationTime"), "_metadata.file_path")
                .collect())
    out = []
    for path, size, mtime_ms, uri in statuses:
        relative = path[len(prefix):] if path.startswith(prefix) else path.rsplit("/", 1)[-1]
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        feed = feeds.feed_for(relative) if feeds is not None else None
        if feed is not None or file_format(relative) is not None:
            out.append(LandingFile(path, size, mtime_ms, uri, feed))
        elif skipped is not None:  # no feed and no known extension: counted, never silent
            skipped.append(relative)
    if skipped is not None:
        skipped.sort()
    return sorted(out, key=lambda f: f.path)


def qualified_root(spark: SparkSession, landing: str) -> str:
    """The landing folder as Spark's readers name its files' parent (``file:/…/``), so
    that a file's path relative to it is what conf/feeds.yaml's globs match."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(landing)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs.makeQualified(root).toString().rstrip("/") + "/"


def read_files(spark: SparkSession, paths: list[str]) -> DataFrame:
    """``(source_file, value)``: each file's whole text, gunzipped by extension.

    A file that cannot be read (a corrupt or truncated gzip) yields no row instead of
    failing the run: :func:`unreadable_files` finds it afterwards.

    Spark's reader takes a path with ``[ ] { } * ? \\`` as a glob pattern: a file named
    ``a[1].json`` is "not found" and fails the run, and with a ``:`` in the path as well
    Hadoop cannot build the pattern at all. Those files (rare) are read in the driver.
    """
    plain = [p for p in paths if not _GLOB_CHARS.search(p)]
    out = (spark.read.option("ignoreCorruptFiles", "true").options(**LANDING_READ_CONF)
           .text(plain, wholetext=True)
           .select(F.col("_metadata.file_path").alias("source_file"), "value")) if plain else None
    odd = [p for p in paths if _GLOB_CHARS.search(p)]
    if odd:
        read = rows_df(spark, _read_in_driver(spark, odd), "source_file string, value binary")
        read = read.select("source_file", F.col("value").cast("string").alias("value"))
        out = read if out is None else out.unionByName(read)
    return out


def read_binary(spark: SparkSession, files: list[LandingFile]) -> DataFrame:
    """``(source_file, content, sensor_id)`` of capture files: their bytes as stored
    (a ``.gz`` is unpacked by the capture reader) and their feed's sensor id."""
    sensor = F.create_map(*[F.lit(x) for f in files for x in (f.path, f.feed.sensor_id)])
    paths = [_GLOB_CHARS.sub(lambda m: "\\" + m.group(0), f.path) for f in files]
    return (spark.read.format("binaryFile").options(**LANDING_READ_CONF).load(paths)
            .select(F.col("_metadata.file_path").alias("source_file"), "content",
                    sensor[F.col("path")].alias("sensor_id")))


def _read_in_driver(spark: SparkSession, paths: list[str]) -> list[tuple[str, bytes]]:
    """``(file_uri, bytes)`` of each file of ``paths`` that can be read, gunzipped as
    Spark's reader does; one that cannot is left out (as the reader does)."""
    out = []
    for path, (data, error) in _decompress(spark, paths, keep=True).items():
        if error is None:
            out.append((file_uri(spark, path), data))
    return out


def _decompress(spark: SparkSession, paths: Iterable[str], keep: bool) -> dict[str, tuple[bytes | None, str | None]]:
    """Each path's decompressed bytes (when ``keep``) or its read error, read in the
    driver JVM with the file system settings and codec of the landing reader."""
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(spark.sparkContext._jsc.hadoopConfiguration())
    for key, value in LANDING_READ_CONF.items():
        conf.set(key, value)
    codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)
    out: dict[str, tuple[bytes | None, str | None]] = {}
    for path in paths:
        p = jvm.org.apache.hadoop.fs.Path(path)
        stream = None
        try:
            stream = p.getFileSystem(conf).open(p)
            codec = codecs.getCodec(p)
            if codec is not None:
                stream = codec.createInputStream(stream)
            if keep:
                out[path] = (bytes(stream.readAllBytes()), None)
            else:
                stream.transferTo(jvm.java.io.OutputStream.nullOutputStream())
                out[path] = (None, None)
        except Exception as exc:  # noqa: BLE001 -- any failure to read is the file's
            java = getattr(exc, "java_exception", None)
            out[path] = (None, java.toString() if java is not None else str(exc).splitlines()[0])
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001 -- closing a broken stream may fail too
                    pass
    return out


def file_uri(spark: SparkSession, path: str) -> str:
    """A listed path in the form Spark gives ``_metadata.file_path`` (URI-encoded)."""
    return spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path).toUri().toString()


def unreadable_files(spark: SparkSession, paths: Iterable[str]) -> dict[str, str]:
    """Which of ``paths`` cannot be read, each with the reader's error (e.g.
    ``java.io.EOFException: Unexpected end of input stream``).

    Only called for files that gave no line (rare: blank or corrupt files). Each is
    decompressed once in the driver JVM with the codec Spark's reader uses.
    """
    return {path: error for path, (_, error) in _decompress(spark, paths, keep=False).items()
            if error is not None}
