"""Landing files of every format as record fields: SPEC's JSON lines and CSV, CSV
feeds and captures (conf/feeds.yaml). Whatever the format, the result has the columns
:func:`jobs.ingest.parse_fields` gives (``source_file, format, line_no, raw,
csv_header, sensor_id_text, mac_text, ts_text, rssi_text, malformed``), so every record
then takes the one validation path of :mod:`jobs.stages`.
"""

from __future__ import annotations

from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import capture, feedcsv, ingest, landing
from jobs.feeds import FEEDS_FILE, FeedsFile
from jobs.summary import Summary


def _feed_name(feeds: FeedsFile, feed) -> str:
    return f"{FEEDS_FILE} feeds[{feeds.feeds.index(feed)}] ({feed.path})"


def read_fields(spark: SparkSession, files: list[landing.LandingFile], feeds: FeedsFile,
                summary: Summary) -> tuple[DataFrame, dict[str, str], list[DataFrame]]:
    """The record fields of ``files``, ``{uri: error}`` of the captures that cannot be
    read at all (a text file that cannot be read yields no line: the caller finds it
    with :func:`jobs.landing.unreadable_files`), and the DataFrames persisted on the
    way, for the caller to unpersist. Counts the captures' frames in ``summary``."""
    parts: list[DataFrame] = []
    spec = [f.path for f in files if f.feed is None]
    if spec:
        parts.append(ingest.split_lines(landing.read_files(spark, spec)).transform(ingest.parse_fields))
    for feed in feeds.feeds if feeds is not None else ():
        mine = [f for f in files if f.feed is feed]
        if mine and feed.format == "csv":
            lines = ingest.split_lines(landing.read_files(spark, [f.path for f in mine]), "csv",
                                       feedcsv.header_names(feed))
            parts.append(lines.transform(feedcsv.feed_fields, feed))
    corrupt: dict[str, str] = {}
    cached: list[DataFrame] = []
    captures = [f for f in files if f.is_capture]
    if captures:
        # Persisted: the frames are parsed once, for the counts and for the records.
        cap = capture.capture_fields(landing.read_binary(spark, captures)).persist()
        cached.append(cap)
        _count_frames(cap, summary, corrupt)
        parts.append(cap.where(F.col("kind") == capture.RECORD)
                     .select(F.lit("pcap").alias("format"), F.lit(None).cast("string").alias("csv_header"),
                             *[c for c in cap.columns if c not in ("kind", "frames", "skipped")]))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part, allowMissingColumns=True)
    return out, corrupt, cached


def _count_frames(cap: DataFrame, summary: Summary, corrupt: dict[str, str]) -> None:
    """Frame counts and corrupt files, from the persisted captures."""
    for r in cap.where(F.col("kind") != capture.RECORD).select("source_file", "kind", "raw",
                                                                 "frames", "skipped").collect():
        if r.kind == capture.CORRUPT:
            corrupt[r.source_file] = r.raw
        else:
            summary.frames_read += r.frames
            summary.frames_other += r.skipped
    for r in cap.where(F.col("kind") == capture.RECORD).groupBy("malformed").count().collect():
        if r.malformed:
            summary.frames_unusable += r["count"]
        else:
            summary.frames_probes += r["count"]


def header_notes(parsed: DataFrame, files: list[landing.LandingFile], feeds: FeedsFile) -> list[str]:
    """One sentence per CSV feed file whose header lacks a column its feed maps, found
    among the malformed lines of ``parsed`` (persisted by the caller: no file is read
    again)."""
    out = []
    for feed in feeds.feeds if feeds is not None else ():
        uris = [f.uri for f in files if f.feed is feed]
        if feed.format != "csv" or not uris:
            continue
        rows = (parsed.where(F.col("malformed") & F.col("source_file").isin(uris))
                .select("source_file", feedcsv.lacking_columns(feed).alias("lacking"))
                .where(F.size("lacking") > 0).distinct().collect())
        out.extend(feedcsv.header_problem(r.source_file, r.lacking, feed, _feed_name(feeds, feed))
                   for r in sorted(rows))
    return out


def held_fields(spark: SparkSession, held: DataFrame, cfg) -> DataFrame:
    """The record fields of quarantined rows (``source_file, line_no, raw,
    csv_header``), read again as their file's format: a CSV feed's line by its feed, a
    capture's frame as the SPEC JSON record it is held as (jobs/capture.py), any other
    line by its file's extension."""
    uris = [r.source_file for r in held.select("source_file").distinct().collect()]
    prefix = landing.qualified_root(spark, cfg.storage.landing)
    feed_of = {}
    for uri in uris:
        path = unquote(uri)
        feed = (cfg.feeds.feed_for(path[len(prefix):]) if cfg.feeds is not None
                and path.startswith(prefix) else None)
        if feed is not None:
            feed_of[uri] = feed
    by_feed = [f for f in (cfg.feeds.feeds if cfg.feeds is not None else ()) if f.format == "csv"]
    csv_uris = [(f, [u for u, g in feed_of.items() if g is f]) for f in by_feed]
    claimed = [u for _, us in csv_uris for u in us]
    rest = held.where(~F.col("source_file").isin(claimed)) if claimed else held
    out = (rest.select("source_file", F.coalesce(ingest.format_of(F.col("source_file")),
                                                 F.lit("json")).alias("format"),
                       "line_no", "raw", "csv_header")
           .transform(ingest.parse_fields))
    for feed, us in csv_uris:
        if us:
            lines = held.where(F.col("source_file").isin(us)).select("source_file", "line_no", "raw", "csv_header")
            out = out.unionByName(lines.transform(feedcsv.feed_fields, feed))
    return out
