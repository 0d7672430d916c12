"""Spike: delta-rs on the same table. Usage: deltars_s3.py ENDPOINT"""
import sys, time
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
ep = sys.argv[1]
base = {"AWS_ENDPOINT_URL": ep, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
for uri in ("s3://bucket/lake/t", "s3a://bucket/lake/t"):
    try:
        t = time.time(); dt = DeltaTable(uri, storage_options=base)
        tbl = dt.to_pyarrow_table()
        print(uri, "version", dt.version(), "rows", tbl.num_rows, f"{time.time()-t:.2f}s")
    except Exception as e:
        print(uri, "READ FAILED", type(e).__name__, str(e)[:300])
# without AWS_REGION
try:
    o = dict(base); o.pop("AWS_REGION")
    print("no region rows", DeltaTable("s3://bucket/lake/t", storage_options=o).to_pyarrow_table().num_rows)
except Exception as e:
    print("no region FAILED", type(e).__name__, str(e)[:300])
# write: append without unsafe rename
data = pa.table({"id": pa.array([1000], pa.int64()), "p": pa.array([4], pa.int64()), "v": ["d"]})
for extra in ({}, {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}, {"AWS_CONDITIONAL_PUT": "etag"}):
    try:
        write_deltalake("s3://bucket/lake/t", data, mode="append", storage_options={**base, **extra})
        print("append OK with", extra, "version", DeltaTable("s3://bucket/lake/t", storage_options=base).version())
    except Exception as e:
        print("append FAILED with", extra, type(e).__name__, str(e)[:300])
