"""Footfall reports: the report API, its command line and the scheduled exports (no Spark)."""
