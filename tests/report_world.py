"""A small world for the report tests: the conftest object tree (mall 1 in Moscow, mall 2
in Berlin), two tokens, and a gold table written with delta-rs from hand-made rows.

Every number below is chosen by hand, so a test can say exactly what the API must
answer. Rows exist for b=5, e=20 (the defaults) and for b=10, e=30 (other numbers), so
a test also sees that the right pair and comeback column are read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from reports.tokens import HEADER, digest
from tests.helpers import write_conf

TOKEN_ALL = "test-token-all-malls"
TOKEN_MALL1 = "test-token-mall-1"
USER_TYPES = ("all", "bounced", "employee", "engaged", "half engaged", "passer", "visitor")
WINDOWS = ("2_week", "1_month", "2_month", "3_month", "6_month", "1_year", "10_year")
TYPES = {1: "mall", 11: "floor", 12: "floor", 111: "zone", 112: "zone", 121: "zone",
         2: "mall", 21: "floor", 211: "zone"}
MALL = {1: 1, 11: 1, 12: 1, 111: 1, 112: 1, 121: 1, 2: 2, 21: 2, 211: 2}

GOLD_SCHEMA = pa.schema([
    ("object_id", pa.int64()), ("object_type", pa.string()), ("mall_id", pa.int64()),
    ("interval", pa.string()), ("bucket_start", pa.timestamp("us", tz="UTC")),
    ("bucket_date", pa.date32()), ("datetime", pa.string()),
    ("bounce_threshold", pa.int32()), ("engagement_threshold", pa.int32()),
    ("user_type", pa.string()), ("count_session", pa.int64()), ("count_client", pa.int64()),
    ("avg_session_duration", pa.int64()), ("sum_session_duration", pa.float64()),
    *[(f"count_comeback_client_{w}", pa.int64()) for w in WINDOWS],
])


def metrics(base: int, gsh: float = 0.0) -> dict:
    """Distinct, recognisable numbers derived from ``base``: sessions ``base``, clients
    ``base - 1``, average ``base + 5``, comeback windows ``base + 100 + k`` for the k-th
    window, Gross Shopping Hours ``gsh``."""
    out = {"count_session": base, "count_client": base - 1, "avg_session_duration": base + 5,
           "sum_session_duration": gsh}
    for k, w in enumerate(WINDOWS):
        out[f"count_comeback_client_{w}"] = base + 100 + k
    return out


def bucket_rows(object_id: int, interval: str, start_utc: str, label: str, base: int,
                gsh: float = 0.0, pairs=((5, 20), (10, 30))) -> list[dict]:
    """The rows of one bucket: each user type k gets ``metrics(base + 10 k)``; the second
    pair gets ``base + 1000`` more, so the pair read shows in every number."""
    start = dt.datetime.fromisoformat(start_utc).replace(tzinfo=dt.timezone.utc)
    rows = []
    for p, (b, e) in enumerate(pairs):
        for k, t in enumerate(USER_TYPES):
            m = metrics(base + 10 * k + 1000 * p, round(gsh + k + 1000 * p, 2) if gsh else 0.0)
            rows.append({"object_id": object_id, "object_type": TYPES[object_id], "mall_id": MALL[object_id],
                         "interval": interval, "bucket_start": start,
                         "bucket_date": dt.date.fromisoformat(label[:10]), "datetime": label,
                         "bounce_threshold": b, "engagement_threshold": e, "user_type": t, **m})
    return rows


#: (object, interval, bucket start UTC, label, base, gsh) — the hand-made gold.
BUCKETS = [
    # Mall 1, Moscow (+03:00): daily 2016-02-01 and 2016-02-03; nothing on 2016-02-02.
    (1, "daily", "2016-01-31T21:00:00", "2016-02-01T00:00:00+03:00", 20, 81725.23),
    (1, "daily", "2016-02-02T21:00:00", "2016-02-03T00:00:00+03:00", 40, 12.5),
    (11, "daily", "2016-01-31T21:00:00", "2016-02-01T00:00:00+03:00", 60, 3.07),
    (12, "daily", "2016-01-31T21:00:00", "2016-02-01T00:00:00+03:00", 80, 1.1),
    (1, "weekly", "2016-01-31T21:00:00", "2016-02-01T00:00:00+03:00", 200, 900.01),
    (1, "monthly", "2016-01-31T21:00:00", "2016-02-01T00:00:00+03:00", 300, 4000.99),
    (1, "weekday", "2016-01-31T21:00:00", "2016-02-01T00:00:00+03:00", 400),
    (1, "weekend", "2016-02-05T21:00:00", "2016-02-06T00:00:00+03:00", 500),
    (1, "hourly", "2016-02-01T07:00:00", "2016-02-01T10:00:00+03:00", 600),
    # Mall 2, Berlin: DST end 2016-10-30 (02:00 twice), DST start 2016-03-27 (no 02:00).
    (2, "hourly", "2016-10-30T00:00:00", "2016-10-30T02:00:00+02:00", 700),
    (2, "hourly", "2016-10-30T01:00:00", "2016-10-30T02:00:00+01:00", 800),
    (2, "hourly", "2016-03-27T01:00:00", "2016-03-27T03:00:00+02:00", 900),
    (2, "daily", "2016-10-29T22:00:00", "2016-10-30T00:00:00+02:00", 950, 7.77),
    (2, "daily", "2016-01-31T23:00:00", "2016-02-01T00:00:00+01:00", 960, 2.5),
]


def gold_rows() -> list[dict]:
    return [r for args in BUCKETS for r in bucket_rows(*args)]


def write_gold(lake: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as the gold table under ``lake``, partitioned as the pipeline does."""
    path = lake / "gold" / "group_datetime"
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema=GOLD_SCHEMA),
                    partition_by=["mall_id", "interval"], mode="overwrite")
    return path


def write_tokens(conf: Path) -> None:
    (conf / "tokens.yaml").write_text(HEADER + f"""\
tokens:
  - name: everything
    sha256: {digest(TOKEN_ALL)}
    malls: [1, 2]
  - name: mall-one
    sha256: {digest(TOKEN_MALL1)}
    malls: [1]
""")


def make_world(root: Path) -> tuple[Path, Path]:
    """A config folder (objects, tokens) and a lakehouse with the hand-made gold."""
    conf = write_conf(root / "conf")
    write_tokens(conf)
    lake = root / "lake"
    write_gold(lake, gold_rows())
    return conf, lake


def expected_row(label: str, base: int | None, type_index: int, window: int = 0, gsh: float = 0.0,
                 pair: int = 0) -> dict:
    """The API row for a bucket made by :func:`bucket_rows` (``base`` None: no gold rows,
    all zeros), in SPEC's key order."""
    t = USER_TYPES[type_index]
    if base is None:
        return {"datetime": label, "count_session": 0, "count_client": 0, "avg_session_duration": 0,
                "count_comeback_client": 0, "sum_session_duration": 0.0, "user_type": t}
    v = base + 10 * type_index + 1000 * pair
    return {"datetime": label, "count_session": v, "count_client": v - 1, "avg_session_duration": v + 5,
            "count_comeback_client": v + 100 + window,
            "sum_session_duration": round(gsh + type_index + 1000 * pair, 2) if gsh else 0.0,
            "user_type": t}
