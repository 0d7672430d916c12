"""Landing → bronze: parse, validate (SPEC §2), normalise and pseudonymise probes.

Pure ``DataFrame -> DataFrame`` transforms; reading files happens in :mod:`jobs.landing`,
writing tables in :mod:`jobs.tables`. The exact input rules are in docs/decisions.md.
"""

from __future__ import annotations

import hashlib
import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from jobs.spark import rows_df
from jobs.spec import (CSV_EXTENSIONS, EPOCH_MS_FROM, FIELDS, GZIP_EXTENSION, INVALID_MAC,
                       INVALID_RSSI, INVALID_TS, JSON_EXTENSIONS, MALFORMED, MAX_TS_AHEAD, MIN_TS,
                       RSSI_MAX, RSSI_MIN, TOO_LATE, UNKNOWN_SENSOR)

MIN_TS_MS = int(MIN_TS.timestamp() * 1000)
#: Java's ``\s``, the white space the SPEC's "trimmed" removes.
_ASCII_SPACE = " \t\n\x0b\f\r"
#: More characters than a Spark string holds: "to the end" for ``substring``.
_LONGEST = 2**31 - 1
MAX_TS_AHEAD_MS = int(MAX_TS_AHEAD.total_seconds() * 1000)

# Patterns end with \z, not $: Java's $ also matches before a final line terminator
# (\u0085, \u2028, \u2029), which let "aabbccddeeff\u2028" pass as a MAC.
_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\z"
_ISO_PATTERN = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS]XXX"
# The accepted spellings: pairs with one separator style, bare, dotted.
_MAC = (r"^(?:[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}|[0-9a-f]{12}"
        r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})\z")
_INTEGER_VARIANT = ("TINYINT", "SMALLINT", "INT", "BIGINT")
# The fast path's gate (see parse_fields): a flat JSON object of lower-case keys whose
# values are strings without escapes or control characters, or integers that fit 64
# bits written without leading zeros or "-0". Only JSON white space (space, tab).
_FLAT_VALUE = r'(?:"[^"\\\x00-\x1f]*"|0|-?[1-9][0-9]{0,17})'
_FLAT_PAIR = rf'[ \t]*"[a-z_]+"[ \t]*:[ \t]*{_FLAT_VALUE}[ \t]*'
_FLAT_JSON = rf'^[ \t]*\{{{_FLAT_PAIR}(?:,{_FLAT_PAIR})*\}}[ \t]*\z'
_FLAT_SCHEMA = ", ".join(f"{name} string" for name in FIELDS)
_NUMERIC_VARIANT = (*_INTEGER_VARIANT, "FLOAT", "DOUBLE")


def _ends_with(extensions: tuple[str, ...]) -> str:
    return "(" + "|".join(re.escape(e) for e in extensions) + ")$"


def format_of(path: Column) -> Column:
    """``'json'`` or ``'csv'`` from a landing file's name, as :func:`jobs.spec.file_format`."""
    base = F.regexp_replace(F.lower(path), re.escape(GZIP_EXTENSION) + "$", "")
    return (F.when(base.rlike(_ends_with(JSON_EXTENSIONS)), F.lit("json"))
            .when(base.rlike(_ends_with(CSV_EXTENSIONS)), F.lit("csv")))


def split_lines(files: DataFrame, file_format: str | None = None, names=None) -> DataFrame:
    """One row per record line of each file.

    :param files: ``(source_file, value)``, each file's whole (decompressed) text.
    :param file_format: ``'json'`` or ``'csv'`` for every file (a feed's); by default
        each file's extension tells.
    :param names: header line → its column names (a feed's dialect); SPEC's by default.
    :return: ``(source_file, format, line_no, raw, csv_header, csv_names)``; blank
        lines and CSV header lines are left out; ``line_no`` counts physical lines from 1.
    """
    first_line = F.regexp_replace(F.substring_index("value", "\n", 1), r"^\ufeff|\r\z", "")
    return (
        files
        .withColumn("format", format_of(F.col("source_file")) if file_format is None
                    else F.lit(file_format))
        .withColumn("csv_header", F.when(F.col("format") == "csv", first_line))
        # Once per file, not per line: the header's column names.
        .withColumn("csv_names", (names or csv_names)(F.col("csv_header")))
        .select("source_file", "format", "csv_header", "csv_names",
                F.posexplode(F.split("value", "\n")).alias("pos", "raw"))
        # A byte-order mark counts only at the start of the file (line 1).
        .withColumn("raw", F.when((F.col("pos") == 0) & F.col("raw").startswith("\ufeff"),
                                  _drop_first(F.col("raw"))).otherwise(F.col("raw")))
        .withColumn("raw", F.when(F.col("raw").endswith("\r"), _drop_last(F.col("raw")))
                    .otherwise(F.col("raw")))
        .where(strip(F.col("raw")) != "")
        .where(~((F.col("format") == "csv") & (F.col("pos") == 0)))
        .select("source_file", "format", (F.col("pos") + 1).cast("long").alias("line_no"),
                "raw", "csv_header", "csv_names")
    )


def csv_names(header: Column) -> Column:
    """A CSV header line's column names (unquoted, trimmed)."""
    return F.transform(F.split(header, ","), _unquote)


def strip(c: Column) -> Column:
    """Remove ASCII white space (space, tab, CR, LF, FF, VT) at both ends."""
    # A set of characters, not a regular expression: ~5× cheaper, and it runs on every
    # field of every line.
    return F.btrim(c, F.lit(_ASCII_SPACE))


def quoted(text: Column) -> Column:
    """Whether ``text`` is at least two characters that start and end with ``"``."""
    return (F.length(text) >= 2) & text.startswith('"') & text.endswith('"')


def _drop_first(c: Column) -> Column:
    return F.substring(c, 2, _LONGEST)


def _drop_last(c: Column) -> Column:
    return c.substr(F.lit(1), F.length(c) - 1)


def inside_quotes(text: Column) -> Column:
    """``text`` without its first and last character (its enclosing quotes)."""
    return _drop_last(_drop_first(text))


def _unquote(c: Column) -> Column:
    return _unquote_trimmed(strip(c))


def _unquote_trimmed(trimmed: Column) -> Column:
    return strip(F.when(quoted(trimmed), inside_quotes(trimmed)).otherwise(trimmed))


def _parse_json_line(raw: Column) -> Column:
    """The JSON value of a whole line (a VARIANT), or null when the line is not exactly
    one JSON value.

    ``try_parse_json`` alone reads the first value and ignores the rest (``{…} x``,
    ``{…}}``). As the only element of an array, anything after the value fails, except
    a ``]`` that closes the array early; as the value of an object key, that fails too.
    """
    arr = F.try_variant_get(F.try_parse_json(F.concat(F.lit("["), raw, F.lit("]"))), "$", "array<variant>")
    closed = F.when(raw.contains("]"),
                    F.try_parse_json(F.concat(F.lit('{"a":'), raw, F.lit("}"))).isNotNull())
    return F.when((F.size(arr) == 1) & F.coalesce(closed, F.lit(True)), F.element_at(arr, 1))


def _json_fields(v: Column) -> dict[str, Column]:
    """Each field's text from a parsed JSON line (a VARIANT); null unless the line is an
    object and the field a string or a number (null, boolean, object and array count as
    missing).

    A number is taken by its JSON text. VARIANT keeps that text for integers only
    (``-65.0`` reads back as ``-65``), so a number with a fraction or an exponent, or
    beyond 64 bits, gets the text of its double value (``-65.0``, ``1.0E30``), which
    no integer check accepts, as it must not.
    """
    is_object = F.coalesce(F.schema_of_variant(v).startswith("OBJECT"), F.lit(False))
    out = {}
    for name in FIELDS:
        fv = F.try_variant_get(v, f"$.{name}", "variant")
        kind = F.schema_of_variant(fv)
        text = (F.when(kind.isin(*_INTEGER_VARIANT, "STRING"), F.try_variant_get(fv, "$", "string"))
                .when(kind.isin(*_NUMERIC_VARIANT) | kind.startswith("DECIMAL"),
                      F.try_variant_get(fv, "$", "double").cast("string")))
        out[name] = F.when(is_object, text)
    return out


def _csv_fields(values: Column, names: Column) -> dict[str, Column]:
    """Field texts of a CSV line split into ``values``, by the header's ``names``,
    trimmed but still quoted (:func:`_unquote_trimmed` takes the quotes off)."""
    same_width = F.size(values) == F.size(names)
    out = {}
    for name in FIELDS:
        pos = F.array_position(names, name).cast("int")
        out[name] = F.when(same_width & (pos > 0), strip(F.try_element_at(values, pos)))
    return out


def parse_fields(lines: DataFrame, fast: bool = True) -> DataFrame:
    """Add the four raw field texts (trimmed; null = missing) and ``malformed``.

    :param lines: as :func:`split_lines` gives them (``csv_names`` may be missing: it is
        then computed per line).
    :param fast: read a JSON line that is a flat object of plain strings and integers
        (nearly all of them) with Spark's JSON reader, 2.3× faster than the exact path,
        which every other line takes. Both give the same texts (tests/test_fuzz.py
        compares them); False reads every line the exact way.
    """
    is_json = F.col("format") == "json"
    raw = F.col("raw")
    names = F.col("csv_names") if "csv_names" in lines.columns else csv_names(F.col("csv_header"))
    # Parse each line once into helper columns, then read the fields from them.
    parsed = (lines
              .withColumn("_flat", (is_json & raw.rlike(_FLAT_JSON)) if fast else F.lit(False))
              .withColumn("_f", F.when(F.col("_flat"), F.from_json(raw, _FLAT_SCHEMA)))
              .withColumn("_v", F.when(is_json & ~F.col("_flat"), _parse_json_line(raw)))
              .withColumn("_values", F.when(~is_json, F.split(raw, ",")))
              .withColumn("_names", F.when(~is_json, names)))
    js = _json_fields(F.col("_v"))
    cs = _csv_fields(F.col("_values"), F.col("_names"))
    # Columns, not expressions: the unquoting reads a CSV field five times, and Spark
    # would evaluate a repeated expression each time.
    parsed = parsed.select("*", *[js[n].alias(f"_j_{n}") for n in FIELDS],
                           *[cs[n].alias(f"_c_{n}") for n in FIELDS])
    out = parsed.select("*", *[
        F.when(F.col("_flat"), strip(F.col("_f")[n]))
        .when(is_json, strip(F.col(f"_j_{n}")))
        .otherwise(_unquote_trimmed(F.col(f"_c_{n}"))).alias(f"{n}_text")
        for n in FIELDS])
    missing = F.lit(False)
    for name in FIELDS:
        missing = missing | F.col(f"{name}_text").isNull()
    return (out.withColumn("malformed", missing)
            .drop("_flat", "_f", "_v", "_values", "_names", "csv_names",
                  *[f"_j_{n}" for n in FIELDS], *[f"_c_{n}" for n in FIELDS]))


def mac_digits(text: Column) -> Column:
    """The 12 hex digits (lower case) of a MAC text in an accepted spelling, else null."""
    low = F.lower(text)
    return F.when(low.rlike(_MAC), F.translate(low, ":-.", ""))


def colon_mac(digits: Column) -> Column:
    """``aa:bb:cc:dd:ee:ff`` from :func:`mac_digits` (null stays null)."""
    pairs = F.concat_ws(":", *[F.substring(digits, i, 2) for i in range(1, 12, 2)])
    return F.when(digits.isNotNull(), pairs)


def parse_ts_ms(text: Column) -> Column:
    """Epoch milliseconds of an ISO 8601 instant with offset or an integer epoch
    (ms when ≥ 10^11, else s); null when unparseable. Fractions below 1 ms are cut."""
    # The regex gate keeps the exact SPEC form; the pattern then checks the calendar
    # (no 02-30, no second 60) and the offset (at most ±18:00).
    iso = F.when(text.rlike(_ISO), F.try_to_timestamp(text, F.lit(_ISO_PATTERN)))
    # Any number of digits (leading zeros allowed); beyond 64 bits try_cast gives null.
    epoch = F.when(text.rlike(r"^[0-9]+\z"), text.try_cast("long"))
    epoch_ms = F.when(epoch >= EPOCH_MS_FROM, epoch).otherwise(epoch * 1000)
    return F.coalesce(F.unix_millis(iso), epoch_ms)


def validate(df: DataFrame, sensors: DataFrame, now_ms: int) -> DataFrame:
    """Check each record (SPEC §2) and give it its first failing ``reason`` (null when
    valid) plus the normalised ``mac``, ``ts`` (timestamp), ``rssi`` and ``randomized``.

    :param sensors: ``(sensor_id, …)`` of the config; others are ``unknown_sensor``.
    :param now_ms: the ingest time; instants after it + 1 day are ``invalid_ts``.
    """
    rssi = F.when(F.col("rssi_text").rlike(r"^[+-]?[0-9]+\z"), F.col("rssi_text").try_cast("int"))
    known = sensors.select(F.col("sensor_id").alias("_known_sensor")).distinct()
    # The MAC's digits and first octet are columns of their own, each read several times:
    # as one expression repeated, Spark would evaluate it at each use (~2 s per million).
    out = (
        df.join(F.broadcast(known), F.col("sensor_id_text") == F.col("_known_sensor"), "left")
        .withColumn("_digits", mac_digits(F.col("mac_text")))
        .withColumn("_octet", F.conv(F.substring("_digits", 1, 2), 16, 10).cast("int"))
        .withColumn("mac", colon_mac(F.col("_digits")))
        .withColumn("rssi", rssi)
        .withColumn("ts_ms", parse_ts_ms(F.col("ts_text")))
    )
    # Null (so not ok) when the MAC is not in an accepted spelling.
    mac_ok = F.col("_octet").bitwiseAND(1) == 0
    rssi_ok = F.col("rssi").between(RSSI_MIN, RSSI_MAX)
    ts_ok = F.col("ts_ms").between(MIN_TS_MS, now_ms + MAX_TS_AHEAD_MS)
    reason = (F.when(F.col("malformed"), MALFORMED)
              .when(~F.coalesce(mac_ok, F.lit(False)), INVALID_MAC)
              .when(~F.coalesce(rssi_ok, F.lit(False)), INVALID_RSSI)
              .when(~F.coalesce(ts_ok, F.lit(False)), INVALID_TS)
              .when(F.col("_known_sensor").isNull(), UNKNOWN_SENSOR))
    return (out.withColumn("reason", reason)
            .withColumn("sensor_id", F.col("sensor_id_text"))
            .withColumn("ts", F.timestamp_millis("ts_ms"))
            # Null where the MAC is invalid: only valid records' flag means anything.
            .withColumn("randomized", F.col("_octet").bitwiseAND(2) != 0)
            .drop("_known_sensor", "_digits", "_octet"))


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer pads of ``key`` (RFC 2104, SHA-256's 64-byte block)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def client_id(mac: Column, ipad: Column, opad: Column) -> Column:
    """HMAC-SHA256 of the normalised MAC as 64 hex digits, computed in the JVM from the
    key's inner and outer pads (:func:`hmac_pads`), given as columns."""
    inner = F.unhex(F.sha2(F.concat(ipad, F.encode(mac, "UTF-8")), 256))
    return F.sha2(F.concat(opad, inner), 256)


def pseudonymise(df: DataFrame, key: bytes) -> DataFrame:
    """Replace the MAC by ``client_id`` (SPEC §2, privacy): no later table sees a MAC.

    The key's pads join as a one-row broadcast table rather than as literals: Spark
    prints a literal in every plan (its UI, event logs, the History Server), and a pad is
    as good as the key; a table's rows are not printed.
    """
    ipad, opad = hmac_pads(key)
    pads = rows_df(df.sparkSession, [(ipad, opad)], "_ipad binary, _opad binary")
    return (df.crossJoin(F.broadcast(pads))
            .withColumn("client_id", client_id(F.col("mac"), F.col("_ipad"), F.col("_opad")))
            .drop("mac", "mac_text", "_ipad", "_opad"))


def locate(df: DataFrame, sensors: DataFrame, malls: DataFrame) -> DataFrame:
    """Add ``mall_id`` and the probe's local ``date`` in the mall's time zone.

    :param sensors: ``(sensor_id, mall_id, …)``; :param malls: ``(mall_id, timezone)``.
    """
    s = sensors.select(F.col("sensor_id").alias("_sid"), F.col("mall_id").alias("_mall"))
    return (df.join(F.broadcast(s), F.col("sensor_id") == F.col("_sid"), "left")
            .join(F.broadcast(malls.select(F.col("mall_id").alias("_mall"), "timezone")), "_mall", "left")
            .withColumn("mall_id", F.col("_mall"))
            .withColumn("date", F.to_date(F.from_utc_timestamp("ts", F.col("timezone"))))
            .drop("_sid", "_mall", "timezone"))


def flag_too_late(df: DataFrame, cutoff) -> DataFrame:
    """Nightly rule (SPEC §9): a valid record whose local date is before ``cutoff``
    becomes ``too_late``; a record that failed another check keeps that reason."""
    late = F.col("reason").isNull() & (F.col("date") < F.lit(cutoff))
    return df.withColumn("reason", F.when(late, F.lit(TOO_LATE)).otherwise(F.col("reason")))


def for_writes(parsed: DataFrame) -> DataFrame:
    """The parsed records cut to what ingest's writes, statistics and notes read: the
    raw line and CSV header only where the record is rejected (the quarantine keeps
    them; bronze does not), the field texts not at all."""
    # Persisted for those several readers: the raw line was most of every cached row.
    rejected = F.col("reason").isNotNull()
    return parsed.select(
        "source_file", "line_no", "reason", "malformed", "mall_id", "date", "sensor_id",
        "client_id", "ts", "rssi", "randomized",
        F.when(rejected, F.col("raw")).alias("raw"),
        F.when(rejected, F.col("csv_header")).alias("csv_header"))


def dedupe_probes(df: DataFrame) -> DataFrame:
    """Exact duplicates (same sensor, client, instant) collapse into one probe with the
    highest RSSI; among equals, the earliest file and line is kept as its source."""
    ranked = F.row_number().over(
        Window.partitionBy("mall_id", "date", "sensor_id", "client_id", "ts")
        .orderBy(F.col("rssi").desc(), "source_file", "line_no"))
    return df.withColumn("_rank", ranked).where("_rank = 1").drop("_rank")
