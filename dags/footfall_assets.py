"""Assets the Footfall DAGs share (Airflow 3 data-aware scheduling).

``GOLD_GROUP_DATETIME`` is the gold table ``<lakehouse>/gold/group_datetime``. Its name and
URI are stable names, not the table's location (which differs per deployment). The nightly
DAG's task that updates gold declares it as an outlet and sets the event's extra to
``{"date": "<the run's --date>"}``; ``footfall_exports`` runs on each such event.
"""

from airflow.sdk import Asset

GOLD_GROUP_DATETIME = Asset(name="footfall-gold-group_datetime", uri="footfall://lakehouse/gold/group_datetime")
