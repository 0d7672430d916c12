"""List / upload objects in moto (moto venv). Usage: s3_ls.py ENDPOINT PREFIX [upload LOCALDIR DESTPREFIX]"""
import sys, os, boto3
c = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1")
if len(sys.argv) > 3 and sys.argv[3] == "upload":
    src, dst = sys.argv[4], sys.argv[5]
    for d, _, fs in os.walk(src):
        for f in fs:
            p = os.path.join(d, f)
            c.upload_file(p, "bucket", dst + "/" + os.path.relpath(p, src))
keys = [o["Key"] for pg in c.get_paginator("list_objects_v2").paginate(Bucket="bucket", Prefix=sys.argv[2]) for o in pg.get("Contents", [])]
tops = sorted({"/".join(k.split("/")[:3]) for k in keys})
print(len(keys), "objects;", tops)
