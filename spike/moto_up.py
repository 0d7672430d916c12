"""Start moto's S3 server on a free 127.0.0.1 port (moto venv), create the bucket,
upload a landing file; print the endpoint. Usage: moto_up.py PIDFILE"""
import socket, subprocess, sys, time, boto3
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
log = open("/tmp/s3spike-moto.log", "w")
p = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
open(sys.argv[1], "w").write(str(p.pid))
ep = f"http://127.0.0.1:{port}"
c = boto3.client("s3", endpoint_url=ep, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1")
for _ in range(100):
    try:
        c.list_buckets(); break
    except Exception:
        time.sleep(0.1)
c.create_bucket(Bucket="bucket")
c.put_object(Bucket="bucket", Key="landing/2016/01/04/probes.txt", Body=b"line one\nline two\nline three\n")
print(ep)
