"""Does jobs.quality.mall_sessions (delta-rs + polars, no storage_options) read an s3a lakehouse?"""
import datetime as dt, sys
from jobs.quality import mall_sessions
try:
    print(mall_sessions(sys.argv[1], [dt.date(2016, 1, 4), dt.date(2016, 1, 5)]))
except Exception as e:
    print("FAILED", type(e).__name__, str(e)[:400])
