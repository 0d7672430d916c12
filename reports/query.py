"""Answer ``group_datetime`` requests from the gold Delta table without Spark.

* :class:`Gold` reads gold with delta-rs and polars: the partition columns (``mall_id``,
  ``interval``) and the per-file statistics of ``bucket_date``, ``object_id`` and the
  thresholds choose the files (delta-rs), the same predicate then skips row groups and
  rows (polars), and only the columns of the answer are decoded. One request reads one
  table version (:class:`GoldSnapshot`), also while a nightly run commits a new one.
* :func:`report` fills the buckets of :mod:`reports.buckets` with gold's rows (zeros
  where gold has none) into a :class:`Report`, which renders the API's JSON
  (:meth:`Report.json_bytes`) or a flat CSV (:meth:`Report.csv_text`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from jobs.config import Config, Obj
from jobs.objectstore import delta_rs_uri
from jobs.spec import GROUP_DATETIME, USER_TYPES
from reports.buckets import bucket_count, buckets
from reports.params import MAX_OBJECT_BUCKETS, ReportError, ReportRequest, bad

log = logging.getLogger(__name__)

#: Keys of one response row, in order. ``count_comeback_client`` is the requested window's column.
ROW_KEYS = ("datetime", "count_session", "count_client", "avg_session_duration",
            "count_comeback_client", "sum_session_duration", "user_type")
METRICS = ("count_session", "count_client", "avg_session_duration", "count_comeback_client",
           "sum_session_duration")
#: The flat CSV: the object, then the row keys.
CSV_COLUMNS = ("object_id",) + ROW_KEYS

# ---------------------------------------------------------------------------- reading gold

class GoldUnavailable(ReportError):
    """The gold table cannot be read (not created yet, or the lakehouse is wrong)."""

    def __init__(self, uri: str, reason: str):
        super().__init__(503, "gold_unavailable", None, f"the gold table {uri} cannot be read: {reason}")


def gold_uri(lakehouse: str) -> str:
    """``<lakehouse>/gold/group_datetime`` in a form delta-rs opens (``s3a://`` is Spark's
    name for ``s3://``)."""
    return f"{delta_rs_uri(lakehouse.rstrip('/'))}/{GROUP_DATETIME}"


#: Gold columns one answer needs besides the comeback window's one.
_READ = ("object_id", "datetime", "user_type", "count_session", "count_client",
         "avg_session_duration", "sum_session_duration")


class Gold:
    """The gold table as the reports read it.

    A request reads one table version for all its malls (:meth:`snapshot`), so that an
    answer is never part before and part after a nightly run's commit. Whether a newer
    version exists is checked at most every ``refresh_seconds`` (the table changes once a
    night; re-reading its log on every request would cost more than the answer). A new
    version gets a new delta-rs object instead of an in-place update: requests in flight
    keep reading the old one, whose files a nightly run does not delete.
    """

    def __init__(self, lakehouse: str, refresh_seconds: float = 2.0,
                 storage_options: dict[str, str] | None = None):
        self.uri = gold_uri(lakehouse)
        self.refresh_seconds = refresh_seconds
        self.storage_options = storage_options
        self._current: GoldSnapshot | None = None
        self._probe = None  # a DeltaTable updated in place, only to learn the latest version
        self._checked = 0.0
        self._last_error = ""
        self._lock = threading.Lock()

    def snapshot(self) -> "GoldSnapshot":
        """The latest version seen (looked for when ``refresh_seconds`` have passed)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        with self._lock:
            now = time.monotonic()
            if self._current is not None and now - self._checked < self.refresh_seconds:
                return self._current
            try:
                if self._probe is None:
                    probe = DeltaTable(self.uri, storage_options=self.storage_options)
                else:
                    probe = self._probe
                    probe.update_incremental()
            except TableNotFoundError:
                self._probe = None
                if self._current is None:
                    raise GoldUnavailable(self.uri, "no Delta table there") from None
                raise GoldUnavailable(self.uri, "the table is gone") from None
            except (DeltaError, OSError) as exc:
                self._probe = None  # a half-applied update is not trusted: reload next time
                if self._current is None:
                    raise GoldUnavailable(self.uri, str(exc)) from None
                # The version already open is still whole: answer from it, look again later.
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]  # no Rust backtrace
                if reason != self._last_error:  # once, not at every look
                    log.warning("gold refresh failed, still serving version %d: %s",
                                self._current.version, reason)
                self._last_error = reason
                self._checked = now
                return self._current
            self._checked, self._last_error = now, ""
            if self._current is None or probe.version() != self._current.version:
                # The probe becomes the shared snapshot and is never updated again.
                self._current, self._probe = GoldSnapshot(probe, self.storage_options), None
            else:
                self._probe = probe
            return self._current

    def rows(self, mall_id: int, interval: str, object_ids: Sequence[int], bounce: int,
             engagement: int, first: dt.date, last: dt.date, comeback_column: str) -> pl.DataFrame:
        """:meth:`GoldSnapshot.rows` of the latest version."""
        return self.snapshot().rows(mall_id, interval, object_ids, bounce, engagement, first, last,
                                    comeback_column)


class GoldSnapshot:
    """Gold at one version; shared by concurrent requests, never changed."""

    def __init__(self, table, storage_options: dict[str, str] | None = None):
        self.table = table
        self.version: int = table.version()
        # polars reads the files itself: the same endpoint settings (its keys are lower case).
        self.storage_options = {k.lower(): v for k, v in (storage_options or {}).items()} or None
        # Deletion vectors: polars must read through delta-rs instead of the plain files.
        self.deletion_vectors = "deletionVectors" in (table.protocol().reader_features or [])

    def latest_dates(self) -> dict[tuple[int, str], dt.date]:
        """The last ``bucket_date`` of each (mall, interval) partition, from the files'
        statistics (empty when the writer kept none)."""
        files = pl.DataFrame(pa.table(self.table.get_add_actions(flatten=True)))
        if "max.bucket_date" not in files.columns or files.is_empty():
            return {}
        last = files.group_by("partition.mall_id", "partition.interval").agg(pl.col("max.bucket_date").max())
        return {(int(m), i): d for m, i, d in last.iter_rows() if d is not None}

    def rows(self, mall_id: int, interval: str, object_ids: Sequence[int], bounce: int,
             engagement: int, first: dt.date, last: dt.date, comeback_column: str) -> pl.DataFrame:
        """Gold rows of these objects (all of mall ``mall_id``) for one (b, e) pair with
        ``bucket_date`` in [first, last]: the columns of :data:`_READ` plus the comeback
        window's, renamed ``count_comeback_client``."""
        ids = sorted(set(object_ids))
        cond = (pl.col("object_id").is_in(ids) & (pl.col("bounce_threshold") == bounce)
                & (pl.col("engagement_threshold") == engagement)
                & pl.col("bucket_date").is_between(first, last))
        columns = [*_READ, pl.col(comeback_column).alias("count_comeback_client")]
        if self.deletion_vectors:
            lf = pl.scan_delta(self.table, storage_options=self.storage_options).filter((pl.col("mall_id") == mall_id)
                                                  & (pl.col("interval") == interval) & cond)
            return lf.select(columns).collect().cast(_ROW_SCHEMA)
        files = self.table.file_uris(file_pruning_predicate=[
            ("mall_id", "=", mall_id), ("interval", "=", interval),
            ("bucket_date", ">=", first), ("bucket_date", "<=", last),
            ("object_id", "in", ids),
            ("bounce_threshold", "=", bounce), ("engagement_threshold", "=", engagement)])
        if not files:
            return _EMPTY_ROWS
        # The files hold no partition columns (or, written by Spark, copies of them):
        # the partition is already chosen by the file list.
        lf = pl.scan_parquet(files, hive_partitioning=False, extra_columns="ignore",
                             storage_options=self.storage_options).filter(cond)
        return lf.select(columns).collect().cast(_ROW_SCHEMA)


_ROW_SCHEMA = {"object_id": pl.Int64, "datetime": pl.String, "user_type": pl.String,
               "count_session": pl.Int64, "count_client": pl.Int64, "avg_session_duration": pl.Int64,
               "sum_session_duration": pl.Float64, "count_comeback_client": pl.Int64}
_EMPTY_ROWS = pl.DataFrame(schema=_ROW_SCHEMA)
_EMPTY_REPORT = pl.DataFrame(schema={c: pl.String if c == "object_id" else _ROW_SCHEMA[c]
                                     for c in CSV_COLUMNS})


# ---------------------------------------------------------------------------- the answer

@dataclass(frozen=True)
class Report:
    """A report's rows in response order: per object (request order), per user type
    (SPEC order), per bucket (time order). Columns: ``object_id`` (text), the row keys.
    ``buckets[k]``: how many buckets each list of the k-th object holds."""

    objects: tuple[str, ...]
    frame: pl.DataFrame
    buckets: tuple[int, ...] = ()

    def json_bytes(self) -> bytes:
        """The response body, exactly as SPEC §10 shapes it.

        Built as text by polars (a year of days for 10 objects is 25,000 rows; Python
        dicts and json.dumps would take longer than reading gold): each row's text starts
        with what separates it from the row before (``,``; ``],"bounced":[`` at a new
        list; ``]},"1290":{"all":[`` at a new object), so that the rows' texts laid end to
        end, which is how Arrow stores a text column, are the body but its last bytes.
        The rows are cut in as many parts as polars has threads, written in parallel.
        """
        f = self.frame
        if f.height == 0:  # no bucket overlaps the range: every list is empty
            empty = ",".join(f'"{t}":[]' for t in USER_TYPES)
            return ("{" + ",".join(f'"{o}":{{{empty}}}' for o in self.objects) + "}").encode()
        text = pl.concat_str([
            pl.col("separator"),
            pl.lit('{"datetime":"'), pl.col("datetime"),
            pl.lit('","count_session":'), pl.col("count_session").cast(pl.String),
            pl.lit(',"count_client":'), pl.col("count_client").cast(pl.String),
            pl.lit(',"avg_session_duration":'), pl.col("avg_session_duration").cast(pl.String),
            pl.lit(',"count_comeback_client":'), pl.col("count_comeback_client").cast(pl.String),
            # Gold holds the hours rounded to 2 decimals; round again so that the text (the
            # shortest that reads back as the same number) never shows more.
            pl.lit(',"sum_session_duration":'), pl.col("sum_session_duration").round(2).cast(pl.String),
            pl.lit(',"user_type":"'), pl.col("user_type"), pl.lit('"}')])
        rows = f.with_columns(separator=pl.from_arrow(self._separators()))
        step = -(-rows.height // pl.thread_pool_size())
        parts = pl.collect_all([rows.slice(i, step).lazy().select(text)
                                for i in range(0, rows.height, step)])
        return b"".join([_text_bytes(p.to_series()) for p in parts] + [b"]}}"])

    def _separators(self) -> pa.Array:
        """Each row's separator from the row before, the first row's opening the body."""
        n_types = len(USER_TYPES)
        bucket = np.concatenate([np.tile(np.arange(n, dtype=np.int32), n_types) for n in self.buckets])
        kind = np.concatenate([np.repeat(np.arange(n_types, dtype=np.int32), n) for n in self.buckets])
        obj = np.concatenate([np.full(n * n_types, k, dtype=np.int32) for k, n in enumerate(self.buckets)])
        # Which text: 0 ",", t (1 … 6) a new list of user type t, 7 + k the k-th object.
        which = np.where(bucket != 0, 0, np.where(kind != 0, kind, n_types + obj))
        opens = [f'"{t}":[' for t in USER_TYPES]
        texts = ([","] + ["]," + o for o in opens[1:]]
                 + [("{" if k == 0 else "]},") + f'"{o}":{{' + opens[0] for k, o in enumerate(self.objects)])
        return pa.array(texts, pa.large_string()).take(pa.array(which))

    def csv_text(self) -> str:
        """One line per row, in response order: ``object_id`` then the row keys."""
        return self.frame.select(*CSV_COLUMNS).with_columns(
            pl.col("sum_session_duration").round(2)).write_csv()


def _text_bytes(texts: pl.Series) -> memoryview:
    """The values of a text column laid end to end, as Arrow holds them (no copy)."""
    arr = texts.to_arrow()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    return memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]]


_TYPES = pl.DataFrame({"user_type": USER_TYPES, "ti": list(range(len(USER_TYPES)))},
                      schema={"user_type": pl.String, "ti": pl.Int32})
_TYPE_INDEX = {t: i for i, t in enumerate(USER_TYPES)}


@functools.lru_cache(maxsize=256)
def _grid(interval: str, start: dt.date, end: dt.date, timezone: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The buckets of a range as a frame (``bi``: time order, ``datetime``: label), and
    that × the user types (``ti``: SPEC order) in (ti, bi) order. Kept: frames are
    immutable, requests repeat."""
    bs = buckets(interval, start, end, timezone)
    frame = pl.DataFrame({"bi": list(range(len(bs))), "datetime": [b.label for b in bs]},
                         schema={"bi": pl.Int32, "datetime": pl.String})
    return frame, _TYPES.join(frame, how="cross", maintain_order="left_right")


def _fill(rows: pl.DataFrame, ids: Sequence[int], labels: pl.DataFrame) -> dict[str, np.ndarray]:
    """The metrics of every (object, user type, bucket) of ``ids`` × the user types ×
    ``labels``, in that order: gold's numbers where ``rows`` has the row, zeros elsewhere.
    Each gold row is put at its place (gold has one row per key) rather than joined: a
    join on the text keys cost twice the time."""
    n_buckets = labels.height
    place = rows.select(
        ((pl.col("object_id").replace_strict({i: k for k, i in enumerate(ids)}, return_dtype=pl.Int64)
          * len(USER_TYPES) + pl.col("user_type").replace_strict(_TYPE_INDEX, return_dtype=pl.Int64))
         * n_buckets
         + pl.col("datetime").replace_strict(labels["datetime"], labels["bi"], default=None,
                                             return_dtype=pl.Int64)).alias("at"),
        *METRICS).drop_nulls("at")
    at = place["at"].to_numpy()
    out = {}
    for m in METRICS:
        values = np.zeros(len(ids) * len(USER_TYPES) * n_buckets, dtype=_NUMPY[m])
        values[at] = place[m].to_numpy()
        out[m] = values
    return out


_NUMPY = {m: np.float64 if _ROW_SCHEMA[m] == pl.Float64 else np.int64 for m in METRICS}


def report(gold: Gold, cfg: Config, objects: Sequence[Obj], request: ReportRequest) -> Report:
    """The rows SPEC §10 asks for: every bucket of the range for every object and user
    type, the gold numbers where gold has a row, zeros where it has none."""
    timezones = {m.id: m.timezone for m in cfg.malls}
    per_mall: dict[int, list[Obj]] = {}
    for o in objects:
        per_mall.setdefault(o.mall_id, []).append(o)
    total = sum(bucket_count(request.interval, request.start, request.end) for _ in objects)
    if total > MAX_OBJECT_BUCKETS:
        raise bad("to", f"the report would hold {total:,} object-buckets ({len(objects)} objects × "
                  f"{total // max(len(objects), 1):,} {request.interval} buckets); at most "
                  f"{MAX_OBJECT_BUCKETS:,} per request: shorten the range or ask for fewer objects",
                  "range_too_large")
    keys = tuple(str(i) for i in request.objects)
    parts = []
    counts: dict[int, int] = {}
    snap = None  # one table version for every mall of the answer
    for mall_id, objs in per_mall.items():
        bs = buckets(request.interval, request.start, request.end, timezones[mall_id])
        if not bs:  # e.g. weekday buckets of a Saturday-to-Sunday range: none
            continue
        ids = [o.id for o in objs]
        counts.update((i, len(bs)) for i in ids)
        if snap is None:
            snap = gold.snapshot()
        rows = snap.rows(mall_id, request.interval, ids, request.bounce, request.engagement,
                         bs[0].date, bs[-1].date, request.comeback_column)
        labels, grid = _grid(request.interval, request.start, request.end, timezones[mall_id])
        order = pl.DataFrame({"object_id": ids, "oi": [request.objects.index(i) for i in ids]},
                             schema={"object_id": pl.Int64, "oi": pl.Int32})
        # The cross join keeps its sides' order: (oi, ti, bi), the response's order.
        parts.append(order.join(grid, how="cross", maintain_order="left_right")
                     .with_columns(**_fill(rows, ids, labels)))
    if not parts:
        return Report(keys, _EMPTY_REPORT)
    frame = pl.concat(parts)
    if len(parts) > 1:  # objects of several malls: back to request order
        frame = frame.sort("oi", "ti", "bi", maintain_order=True)
    frame = frame.select(pl.col("object_id").cast(pl.String), "datetime", *METRICS, "user_type")
    return Report(keys, frame, tuple(counts[i] for i in request.objects))
