"""Spike: Delta on s3a:// against moto. Usage: spark_s3.py ENDPOINT"""
import os, sys, time
from pathlib import Path
from jobs.spark import build_spark, delta_jars

ep = sys.argv[1]
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
root = Path(__file__).resolve().parent.parent
s3_jars = sorted(str(p) for p in (root / ".cache" / "s3-jars").glob("*.jar"))
conf = {
    "spark.jars": ",".join(delta_jars() + s3_jars),
    "spark.hadoop.fs.s3a.endpoint": ep,
    "spark.hadoop.fs.s3a.path.style.access": "true",
    "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
}
conf.update(dict(kv.split("=", 1) for kv in sys.argv[2:]))
t = time.time()
spark = build_spark("local[2]", "s3spike", conf)
print(f"session {time.time()-t:.1f}s", flush=True)
T = "s3a://bucket/lake/t"
def step(name, fn):
    t = time.time(); r = fn(); print(f"{name}: {time.time()-t:.1f}s", flush=True); return r

from delta.tables import DeltaTable as _DT
if _DT.isDeltaTable(spark, T):  # e.g. after delta-rs appends (deltars_s3.py)
    print("existing table: version", _DT.forPath(spark, T).history(1).collect()[0].version,
          "rows", spark.read.format("delta").load(T).count(), flush=True)
step("write", lambda: spark.range(0, 100).selectExpr("id", "id % 5 as p", "'a' as v")
     .write.format("delta").partitionBy("p").mode("overwrite").save(T))
print("count", step("read", lambda: spark.read.format("delta").load(T).count()))
from delta.tables import DeltaTable
src = spark.range(95, 110).selectExpr("id", "id % 5 as p", "'b' as v")
step("merge", lambda: DeltaTable.forPath(spark, T).alias("t").merge(src.alias("s"), "t.id = s.id")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
print("after merge", spark.read.format("delta").load(T).groupBy("v").count().orderBy("v").collect())
step("replaceWhere", lambda: spark.range(0, 3).selectExpr("id", "0L as p", "'c' as v")
     .write.format("delta").mode("overwrite").option("replaceWhere", "p = 0").save(T))
print("after replaceWhere", spark.read.format("delta").load(T).groupBy("p", "v").count().orderBy("p", "v").collect())
print("history", [(r.version, r.operation) for r in DeltaTable.forPath(spark, T).history().collect()])
print("landing", step("text", lambda: spark.read.text("s3a://bucket/landing/").collect()))
print("landing recursive", spark.read.option("recursiveFileLookup", "true").text("s3a://bucket/landing/").count())
spark.stop()
