# Footfall — the two commands a new user needs: `make run` and `make test`.
# Everything else is set up on demand, once (`make setup`).

SHELL := /bin/bash
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
JARS := .cache/jars
S3_JARS := .cache/s3-jars
JVM_ARCHIVE := .cache/jvm/footfall.jsa
LOGSTORE_SRC := jvm/footfall/delta/ConditionalPutLogStore.java
JAVA_HOME ?= $(shell j=$$(command -v java 2>/dev/null) && dirname $$(dirname $$(readlink -f $$j)))
export JAVA_HOME
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

DEMO_FROM ?= 2016-01-04
DEMO_TO ?= 2016-02-29

.PHONY: sql setup run test test-heavy bench bench-scale bench-cluster bench-feeds bench-s3 generate lock clean help serve bench-api load-api airflow cluster cluster-stop dist

help:
	@echo "Footfall: make <target>. A new user needs two: run and test (see README.md)."
	@echo "  run            set up once, generate the demo world, backfill it, show the tables"
	@echo "  test           set up once, run the test suite without the heavy tests"
	@echo "  test-heavy     the heavy tests: crash and rerun, two runs at once, the API under load"
	@echo "  setup          .venv with the pinned packages and this project, Delta's JARs in .cache/jars (idempotent)"
	@echo "  generate       rewrite the demo world's landing files in data/landing"
	@echo "  sql            the BI catalog over JDBC/ODBC on 127.0.0.1:10000 (Spark Thrift Server; docs/bi.md; SQL_ARGS='--port 10001 ...')"
	@echo "  serve          the report API on http://127.0.0.1:8000 over the demo lakehouse (SERVE_ARGS='--port 9000 ...')"
	@echo "  bench          backfill at 1, 2 and 5 million records beside DuckDB, a nightly run (docs/performance.md)"
	@echo "  bench-scale    the same at 16 and 32 million records, local Spark (SCALE_SIZES=...)"
	@echo "  bench-cluster  the same on the standalone cluster of 'make cluster' (started and stopped)"
	@echo "  bench-api      report API latency on a year of gold, against Spark SQL (BENCH_API_ARGS=...)"
	@echo "  bench-feeds    ingest rate per landing format: SPEC CSV/JSON, pcap, pcapng, vendor CSV"
	@echo "  bench-s3       the same small backfill on local disk and on an S3 server on loopback"
	@echo "  load-api       50 API clients for 60 s while a nightly run rewrites gold (LOAD_API_ARGS=...)"
	@echo "  airflow        Airflow 3 (standalone) with dags/ on http://127.0.0.1:$(AIRFLOW_PORT); Ctrl-C stops it"
	@echo "  cluster        start a Spark standalone cluster: spark://127.0.0.1:7077, 2 workers"
	@echo "  cluster-stop   stop that cluster"
	@echo "  dist           the code as files that travel with a Spark run: dist/footfall-<version>.zip (--py-files), its entry script, driver.jar, a wheel"
	@echo "  lock           re-pin requirements.txt from requirements.in"
	@echo "  clean          remove data/ (demo landing files, lakehouse) and .pytest_cache"
	@echo "  help           this list"

## setup: a virtualenv with the pinned packages, this project installed editable (the
## `footfall` command), the JARs of Delta and of the S3 connector, resolved once, and the
## driver JVM's class archive (build/jvm_archive.py: ~4 s less at every Spark start).
setup: $(VENV)/.installed $(JARS)/.resolved $(S3_JARS)/.resolved $(JVM_ARCHIVE)

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# The lock holds every dependency: install the project alone, resolving nothing.
	$(PY) -m pip install -q --no-deps -e .
	# pyspark-client (from the Airflow Spark provider) shares pyspark's folder: lay the
	# full pyspark down last so the folder is pyspark's, whatever order pip chose.
	$(PY) -m pip install -q --no-deps --force-reinstall "$$(grep '^pyspark==' requirements.txt)"
	touch $@

$(JARS)/.resolved: build/delta-jars.pom.xml
	mkdir -p $(JARS)
	mvn -q -f build/delta-jars.pom.xml dependency:copy-dependencies -DincludeScope=runtime \
	  -DincludeGroupIds=io.delta -DexcludeArtifactIds=delta-kernel-unitycatalog \
	  -DoutputDirectory=$(CURDIR)/$(JARS)
	touch $@

# The S3A connector of pyspark's Hadoop and the AWS SDK v2 modules it loads (13 MB),
# without what pyspark/jars already holds (one version of each class on the class path).
$(S3_JARS)/.resolved: build/s3-jars.pom.xml $(LOGSTORE_SRC) | $(VENV)/.installed $(JARS)/.resolved
	rm -rf $(S3_JARS) && mkdir -p $(S3_JARS)
	mvn -q -f build/s3-jars.pom.xml dependency:copy-dependencies -DincludeScope=runtime \
	  -DexcludeGroupIds=io.netty,org.slf4j \
	  -DexcludeArtifactIds=httpclient,httpcore,commons-codec,commons-logging \
	  -DoutputDirectory=$(CURDIR)/$(S3_JARS)
	# Our Delta log store for S3 (jvm/, docs/decisions.md): put-if-absent commits, so two
	# drivers can write one table. Built against pyspark's Hadoop and Delta's storage JAR.
	rm -rf $(S3_JARS)/classes
	javac --release 17 -nowarn -d $(S3_JARS)/classes \
	  -cp "$$($(PY) -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars/*:$(JARS)/*:$(S3_JARS)/*" \
	  $(LOGSTORE_SRC)
	jar cf $(S3_JARS)/footfall-logstore.jar -C $(S3_JARS)/classes . && rm -rf $(S3_JARS)/classes
	touch $@

# Written for this JDK and these JARs: rewritten when they change. About two minutes.
$(JVM_ARCHIVE): build/jvm_archive.py $(VENV)/.installed $(JARS)/.resolved $(S3_JARS)/.resolved
	$(PY) build/jvm_archive.py --out $@

## run: the embedded default end to end on a generated demo world.
run: setup
	@if [ ! -d data/landing ] || [ -z "$$(ls -A data/landing 2>/dev/null)" ]; then \
	  $(PY) -m jobs generate --conf conf --landing data/landing --feeds; fi
	$(PY) -m jobs backfill --from $(DEMO_FROM) --to $(DEMO_TO)
	$(PY) -m jobs show

## sql: the Spark Thrift Server over the demo lakehouse with the BI catalog; Ctrl-C stops it.
sql: setup
	$(PY) -m jobs sql $(SQL_ARGS)

## generate: (re)write the demo world's landing files.
generate: setup
	$(PY) -m jobs generate --conf conf --landing data/landing --clean --feeds

## test: the suite without the `heavy` tests (about 9 minutes on an idle 2-core machine);
## test-heavy: crash (SIGKILL) and rerun, two runs at once, the API under load, the
## standalone cluster, Airflow dag.test(), every fuzz example and nightly run; CI runs both.
test: setup
	$(PY) -m pytest -q -m "not heavy" --durations=30 tests

test-heavy: setup
	$(PY) -m pytest -q -m heavy --durations=30 tests

bench: setup
	$(PY) -m benchmarks.pipeline --write-docs

## bench-scale: backfill throughput and peak memory per stage at 16 and 32 million probes
## (SCALE_SIZES), local Spark, beside the DuckDB baseline: about 45 minutes alone on 2 cores,
## bench-out/scale/. bench-cluster: the same without the baseline on the standalone cluster
## of `make cluster` (started if needed, stopped after), bench-out/scale-cluster/. Worlds are generated once into .cache/bench/.
SCALE_SIZES ?= 16000000,32000000
bench-scale: setup
	$(PY) -m benchmarks.pipeline --sizes $(SCALE_SIZES) --no-combos --out bench-out/scale

bench-cluster: setup
	bin/spark-cluster.sh start
	$(PY) -m benchmarks.pipeline --sizes $(SCALE_SIZES) --no-combos --no-baseline --master spark://127.0.0.1:7077 \
	  --out bench-out/scale-cluster; rc=$$?; bin/spark-cluster.sh stop; exit $$rc

## serve: the report API (GET /reports/group_datetime, /docs) on the demo lakehouse.
serve: setup
	$(PY) -m reports serve $(SERVE_ARGS)

## bench-api: API p50/p99 and req/s on a year of gold, and Spark SQL for the same requests.
## bench-s3: one small backfill on local disk, then on moto's S3 server on loopback;
## wall and stage times side by side in bench-out/s3.{json,md}.
bench-s3: setup
	$(PY) -m benchmarks.s3

## bench-feeds: ingest rate of the same records as SPEC CSV, JSON lines, pcap, pcapng and a
## vendor CSV feed (read, parse, validate; no Delta write); bench-out/feeds.{json,md}.
bench-feeds: setup
	$(PY) -m benchmarks.feeds $(BENCH_FEEDS_ARGS)

bench-api: setup
	$(PY) -m benchmarks.api $(BENCH_API_ARGS)

## load-api: 50 clients for 60 s against the API while `python -m jobs nightly` replaces gold
## buckets: no 5xx, every answer of one gold version; bench-out/load-api.{json,md}.
load-api: setup
	$(PY) -m benchmarks.loadscenario $(LOAD_API_ARGS)

## airflow: Airflow 3 in one process tree (`airflow standalone`: scheduler, DAG processor,
## triggerer, API server + UI) with this repo's dags/, a SQLite metadata database under
## airflow-home/ and the Spark connection on local[*]. Ctrl-C stops it all.
AIRFLOW_HOME ?= $(CURDIR)/airflow-home
AIRFLOW_PORT ?= 8080
AIRFLOW_PARALLELISM ?= 4
SPARK_CONN ?= {"conn_type": "spark", "host": "local[*]"}
airflow: setup
	@mkdir -p $(AIRFLOW_HOME)
	@export AIRFLOW_HOME=$(AIRFLOW_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	  AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	  AIRFLOW__CORE__PARALLELISM=$(AIRFLOW_PARALLELISM) \
	  AIRFLOW_CONN_SPARK_DEFAULT='$(SPARK_CONN)' FOOTFALL_HOME=$(CURDIR); \
	$(VENV)/bin/airflow db migrate >$(AIRFLOW_HOME)/db-migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1; }; \
	$(VENV)/bin/airflow pools set footfall_lakehouse 1 "Footfall Spark runs: one writes the lakehouse at a time" >/dev/null; \
	echo "Airflow 3 is starting: UI http://127.0.0.1:$(AIRFLOW_PORT)  (Ctrl-C stops it)"; \
	echo "  log in as 'admin'; the password is printed below once generated and kept in"; \
	echo "  $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated"; \
	echo "  DAGs: footfall_nightly, footfall_backfill, footfall_exports, footfall_maintenance (dags/); Spark connection: $$AIRFLOW_CONN_SPARK_DEFAULT"; \
	exec $(VENV)/bin/airflow standalone

## cluster / cluster-stop: a Spark standalone master (spark://127.0.0.1:7077, UI :8090) and
## two workers (1 core, 3g each) from the installed Spark; pid files and logs in .cache/cluster/.
cluster: setup
	bin/spark-cluster.sh start

cluster-stop:
	bin/spark-cluster.sh stop

## dist: what a Spark run ships when conf/airflow.yaml says `spark.code: artifact`
## (docs/airflow.md, "Shipping the code"): the jobs and reports packages as a zip for
## --py-files, entrypoint.py and log4j2.properties beside it, an empty driver.jar (cluster
## deploy mode on a standalone master: Spark's PythonRunner), and a wheel for an image.
## Needs no .venv; the wheel's isolated build fetches setuptools from the package index.
dist:
	$(PYTHON_BIN) build/dist.py

## lock: re-pin requirements.txt from pyproject.toml's dependencies in a scratch virtualenv.
lock:
	rm -rf .cache/lock-venv && $(PYTHON_BIN) -m venv .cache/lock-venv
	.cache/lock-venv/bin/pip install -q ".[dev]"
	{ echo "# Pinned lock of pyproject.toml's dependencies and its dev extra (pip freeze of a clean install on Python 3.11, the project itself left out). Do not edit by hand: make lock."; \
	  .cache/lock-venv/bin/pip freeze --exclude footfall | sort -f; } > requirements.txt

clean:
	rm -rf data .pytest_cache
