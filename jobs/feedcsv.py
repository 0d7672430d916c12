"""A CSV feed of conf/feeds.yaml (a vendor's export) as record fields.

:func:`feed_fields` gives the lines of a CSV feed the same text fields
:func:`jobs.ingest.parse_fields` gives a line of SPEC's formats (``sensor_id_text``,
``mac_text``, ``ts_text``, ``rssi_text``, ``malformed``), so that they join the one
validation, deduplication, pseudonymisation and quarantine path. Only the shape is
read here: the feed's delimiter, quoting, column names and wall-clock times.

A wall-clock time (no offset) in a feed with a ``timezone`` becomes the epoch
milliseconds of that instant; a time the zone skips (a DST gap) keeps its text, which
:func:`jobs.ingest.validate` then rejects as ``invalid_ts``; a time the zone repeats
takes its first occurrence (docs/decisions.md, "Feeds").
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.feeds import Feed, zoned
from jobs.ingest import inside_quotes, quoted, strip
from jobs.spec import FIELDS

#: A wall-clock time without an offset, as read without a ``ts_format``: ISO 8601's
#: date and time, ``T`` or a space between them, any fraction.
_NAIVE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?\z"
_NAIVE_PATTERN = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS]"


def split_fields(line: Column, delimiter: str) -> Column:
    """A line's fields: split at each ``delimiter`` outside double quotes, each field
    trimmed and unquoted (``""`` inside quotes is one ``"``)."""
    # Most lines hold no quote: a plain split is several times cheaper than the lookahead.
    plain = F.transform(F.split(line, re.escape(delimiter)), strip)
    with_quotes = F.transform(F.split(line, _outside_quotes(delimiter)), _unquote)
    return F.when(line.contains('"'), with_quotes).otherwise(plain)


def _outside_quotes(delimiter: str) -> str:
    # A delimiter is outside quotes when an even number of quotes follows it
    # ((?![\s\S]) is the very end, whatever line terminator the text holds).
    return re.escape(delimiter) + r'(?=(?:[^"]*"[^"]*")*[^"]*(?![\s\S]))'


def _unquote(c: Column) -> Column:
    trimmed = strip(c)
    inner = F.replace(inside_quotes(trimmed), F.lit('""'), F.lit('"'))
    return F.when(quoted(trimmed), strip(inner)).otherwise(trimmed)


def columns_of(feed: Feed) -> dict[str, str]:
    """SPEC field → the feed's column name (the sensor too, unless the feed fixes it)."""
    out = {name: feed.columns.get(name, name) for name in FIELDS if name != "sensor_id"}
    if feed.sensor_id_column is not None:
        out["sensor_id"] = feed.sensor_id_column
    return out


def instant_text(text: Column, feed: Feed) -> Column:
    """The feed's time text as SPEC's ``ts`` rules read it: a wall-clock time in the
    feed's ``timezone`` becomes epoch milliseconds (as text); a DST-gap time and any
    other text stay as they are (an offset or epoch is read as SPEC says; the rest is
    ``invalid_ts``)."""
    if feed.ts_format is not None:
        # Session time zone is UTC (jobs/spark.py): a zoneless pattern reads wall clock.
        wall = F.try_to_timestamp(text, F.lit(feed.ts_format))
        if zoned(feed.ts_format):
            return F.coalesce(F.unix_millis(wall).cast("string"), text)
    else:
        wall = F.when(text.rlike(_NAIVE),
                      F.try_to_timestamp(F.regexp_replace(text, " ", "T"), F.lit(_NAIVE_PATTERN)))
    if feed.timezone is None:
        return text
    utc = F.to_utc_timestamp(wall, feed.timezone)
    # to_utc_timestamp moves a skipped time forward; the round trip finds it.
    exists = F.from_utc_timestamp(utc, feed.timezone) == wall
    return F.when(exists, F.unix_millis(utc).cast("string")).otherwise(text)


def feed_fields(lines: DataFrame, feed: Feed) -> DataFrame:
    """Add the four field texts and ``malformed`` to a CSV feed's lines.

    :param lines: ``(source_file, line_no, raw, csv_header, …)`` as
        :func:`jobs.ingest.split_lines` gives them (header lines left out), with
        ``csv_names`` from :func:`header_names` when given.
    :param feed: the feed that claims these files.
    :return: the lines with ``format`` = ``'csv'``, ``sensor_id_text``, ``mac_text``,
        ``ts_text``, ``rssi_text`` (null: missing) and ``malformed``; a line with
        another number of fields than its header, or without one of the mapped
        columns, is malformed.
    """
    # split_lines gives the header's names once per file; a replayed line has only its header.
    names = (F.col("csv_names") if "csv_names" in lines.columns
             else split_fields(F.col("csv_header"), feed.delimiter))
    # Split each line once into a helper column: the fields below all read it (inlined,
    # the split ran once per use: 3x the time).
    split = lines.select("*", split_fields(F.col("raw"), feed.delimiter).alias("_values"),
                         names.alias("_names"))
    same_width = F.size("_values") == F.size("_names")
    texts = {}
    for field, column in columns_of(feed).items():
        pos = F.array_position("_names", F.lit(column)).cast("int")
        texts[field] = F.when(same_width & (pos > 0), F.try_element_at("_values", pos))
    if feed.sensor_id is not None:
        texts["sensor_id"] = F.lit(feed.sensor_id)
    keep = [c for c in lines.columns if c not in ("format", "csv_names")]
    out = (split.select(*keep, *[texts[n].alias(f"{n}_text") for n in FIELDS])
           .select(*keep, F.lit("csv").alias("format"),
                   *[(instant_text(F.col(f"{n}_text"), feed) if n == "ts" else F.col(f"{n}_text"))
                     .alias(f"{n}_text") for n in FIELDS]))
    missing = F.lit(False)
    for name in FIELDS:
        missing = missing | F.col(f"{name}_text").isNull()
    return out.withColumn("malformed", missing)


def header_names(feed: Feed):
    """The header's column names for :func:`jobs.ingest.split_lines` (once per file)."""
    return lambda header: split_fields(header, feed.delimiter)


def lacking_columns(feed: Feed) -> Column:
    """The feed's mapped column names that a line's header (``csv_header``) lacks."""
    names = split_fields(F.col("csv_header"), feed.delimiter)
    wanted = F.array(*[F.lit(c) for c in columns_of(feed).values()])
    return F.filter(wanted, lambda c: ~F.array_contains(names, c))


def header_problem(file: str, lacking: list[str], feed: Feed, where: str) -> str:
    """The sentence for a file whose header lacks ``lacking`` (``where``: the feed, as
    ``feeds.yaml feeds[2] (exports/*.csv)``)."""
    field_of = {c: f for f, c in columns_of(feed).items()}
    named = ", ".join(f"{c!r} ({field_of[c]})" for c in lacking)
    return (f"{file}: the header has no column {named} that {where} maps: its lines are "
            "quarantined as malformed")
