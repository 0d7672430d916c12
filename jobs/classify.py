"""Employee status, base class and comeback (SPEC §4–§5)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from jobs.spec import COMEBACK_WINDOWS, EMPLOYEE, PASSER, VISITOR, ComebackWindow


def employee_days(mall_days: DataFrame, window_days: int, min_days: int,
                  min_daily_minutes: float) -> DataFrame:
    """Which clients are employees of a mall on which local dates.

    :param mall_days: client days at mall level ``(mall_id, client_id, date, duration_ms)``.
    :return: ``(mall_id, client_id, date, is_employee)`` for every input row: true when,
        among dates D-(window_days-1) … D, at least ``min_days`` have a total duration
        at the mall of at least ``min_daily_minutes``.
    """
    day = F.unix_date("date")
    window = (Window.partitionBy("mall_id", "client_id").orderBy(day)
              .rangeBetween(-(window_days - 1), 0))
    long_day = (F.col("duration_ms") >= int(round(min_daily_minutes * 60_000))).cast("int")
    return (mall_days.withColumn("_long", long_day)
            .select("mall_id", "client_id", "date",
                    (F.sum("_long").over(window) >= min_days).alias("is_employee")))


def previous_visits(client_days: DataFrame) -> DataFrame:
    """For each (object, client, date) with a session: ``prev_date``, the latest earlier
    local date on which the client had a session at that object (null if none)."""
    w = Window.partitionBy("object_id", "client_id").orderBy("date")
    return client_days.select("object_id", "client_id", "date",
                              F.lag("date").over(w).alias("prev_date"))


def window_start(date: Column, window: ComebackWindow) -> Column:
    """``date − W`` with SQL interval arithmetic (2016-03-31 − 1 month = 2016-02-29)."""
    return F.date_sub(date, window.days) if window.days else F.add_months(date, -window.months)


def comeback_mask(date: Column, prev_date: Column) -> Column:
    """Bit i set when the client comes back on ``date`` within the i-th window of
    :data:`COMEBACK_WINDOWS` (``prev_date ≥ date − W``)."""
    mask = F.lit(0)
    for i, window in enumerate(COMEBACK_WINDOWS):
        back = F.coalesce(prev_date >= window_start(date, window), F.lit(False))
        mask = mask.bitwiseOR(F.when(back, F.lit(1 << i)).otherwise(F.lit(0)))
    return mask


def classify(sessions: DataFrame, employees: DataFrame, previous: DataFrame) -> DataFrame:
    """Give each session its base class (``employee`` | ``visitor`` | ``passer``) and its
    client's comeback bit mask for the session's local date.

    :param employees: :func:`employee_days` output; :param previous: :func:`previous_visits`.
    """
    emp = employees.select("mall_id", "client_id", "date", "is_employee")
    prev = previous.select("object_id", "client_id", "date", "prev_date")
    base = (F.when(F.coalesce(F.col("is_employee"), F.lit(False)), EMPLOYEE)
            .when(F.col("strong"), VISITOR).otherwise(PASSER))
    return (sessions.join(emp, ["mall_id", "client_id", "date"], "left")
            .join(prev, ["object_id", "client_id", "date"], "left")
            .withColumn("base_class", base)
            .withColumn("comeback", comeback_mask(F.col("date"), F.col("prev_date")))
            .drop("is_employee"))
