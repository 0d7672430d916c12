"""``python -m jobs show``: what the lakehouse holds, in a few lines a person can read."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.config import Config
from jobs.spec import (BRONZE_PROBES, CLIENT_DAYS, GROUP_DATETIME, INGESTED_FILES, OBJECTS,
                       PENDING_DATES, QUARANTINE, SESSIONS)
from jobs.tables import Lakehouse


def render(spark: SparkSession, cfg: Config) -> str:
    """Row counts per table, quarantine reasons, and a sample of gold: the monthly
    'all' rows (b=5, e=20) of every mall."""
    lake = Lakehouse(spark, cfg.storage.lakehouse, cfg.storage.delta_rs_options)
    out = [f"lakehouse {lake.root}"]
    for table in (BRONZE_PROBES, QUARANTINE, SESSIONS, CLIENT_DAYS, GROUP_DATETIME, OBJECTS,
                  INGESTED_FILES, PENDING_DATES):
        n = lake.read(table).count() if lake.exists(table) else None
        out.append(f"  {table:<22} {'(none)' if n is None else f'{n:,} rows'}")
    if lake.exists(QUARANTINE):
        reasons = lake.read(QUARANTINE).groupBy("reason").count().orderBy("reason").collect()
        if reasons:
            out.append("  quarantine by reason: " + ", ".join(f"{r.reason} {r['count']}" for r in reasons))
    cat = cfg.storage.catalog
    if cat.register:
        from jobs.catalog import is_registered
        state = ("up to date" if is_registered(cfg) else "the next run registers it" if cat.embedded
                 else "every run registers it")
        out.append(f"  BI catalog {cat.database} in {cat.metastore} ({state}): `footfall sql` "
                   "serves it over JDBC/ODBC (docs/bi.md)")
    if not lake.exists(GROUP_DATETIME):
        return "\n".join(out)
    sample = (lake.read(GROUP_DATETIME)
              .where("object_type = 'mall' AND interval = 'monthly' AND user_type = 'all' "
                     "AND bounce_threshold = 5 AND engagement_threshold = 20")
              .orderBy("object_id", "bucket_start")
              .select("object_id", "datetime", "count_session", "count_client", "avg_session_duration",
                      "sum_session_duration", F.col("count_comeback_client_2_week").alias("comeback_2_week"))
              .collect())
    out.append("")
    out.append("gold/group_datetime — malls, monthly, user_type 'all', b=5, e=20:")
    out.append(f"  {'object':>7} {'datetime':<26} {'sessions':>9} {'clients':>8} {'avg min':>8} "
               f"{'hours':>10} {'comeback 2w':>12}")
    for r in sample:
        out.append(f"  {r.object_id:>7} {r.datetime:<26} {r.count_session:>9} {r.count_client:>8} "
                   f"{r.avg_session_duration:>8} {r.sum_session_duration:>10.2f} {r.comeback_2_week:>12}")
    return "\n".join(out)
