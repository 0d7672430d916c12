# Footfall — the two commands a new user needs: `make run` and `make test`.
# Everything else is set up on demand, once (`make setup`).

SHELL := /bin/bash
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
JARS := .cache/jars
JAVA_HOME ?= $(shell dirname $$(dirname $$(readlink -f $$(command -v java))))
export JAVA_HOME
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)

DEMO_FROM ?= 2016-01-04
DEMO_TO ?= 2016-02-29

.PHONY: setup run test bench generate demo-data lock clean help

help:
	@echo "make run    set up, generate the demo world, run the pipeline, show the result"
	@echo "make test   set up, run the test suite"
	@echo "make bench  measure backfill throughput at 1, 2 and 4 million probes"
	@echo "make setup  virtualenv + pinned packages + Delta JARs (idempotent)"

## setup: a virtualenv with the pinned packages and Delta's JARs, resolved once.
setup: $(VENV)/.installed $(JARS)/.resolved

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
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

## run: the embedded default end to end on a generated demo world.
run: setup
	@if [ ! -d data/landing ] || [ -z "$$(ls -A data/landing 2>/dev/null)" ]; then \
	  $(PY) -m jobs generate --conf conf --landing data/landing; fi
	$(PY) -m jobs backfill --from $(DEMO_FROM) --to $(DEMO_TO)
	$(PY) -m jobs show

## generate: (re)write the demo world's landing files.
generate: setup
	$(PY) -m jobs generate --conf conf --landing data/landing --clean

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m jobs.bench

## lock: re-pin requirements.txt from requirements.in in a scratch virtualenv.
lock:
	rm -rf .cache/lock-venv && $(PYTHON_BIN) -m venv .cache/lock-venv
	.cache/lock-venv/bin/pip install -q -r requirements.in
	{ echo "# Pinned lock of requirements.in (pip freeze of a clean install on Python 3.11). Do not edit by hand: make lock."; \
	  .cache/lock-venv/bin/pip freeze | sort -f; } > requirements.txt

clean:
	rm -rf data .pytest_cache
