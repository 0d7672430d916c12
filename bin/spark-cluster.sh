#!/usr/bin/env bash
# A Spark standalone cluster on this machine, from the installed Spark (pyspark's):
# a master on spark://127.0.0.1:7077 and two workers (1 core, 3g each), all on loopback.
#
#   bin/spark-cluster.sh start     # make cluster
#   bin/spark-cluster.sh stop      # make cluster-stop
#   bin/spark-cluster.sh status
#
# Settings (environment): CLUSTER_DIR (pid files, logs, work dirs; default .cache/cluster),
# MASTER_PORT (7077), MASTER_WEBUI_PORT (8090), MASTER_REST_PORT (6066), WORKER_WEBUI_PORT
# (8091, next ones +1; 0: any), WORKERS (2), WORKER_CORES (1), WORKER_MEMORY (3g).
#
# The master's REST server (on MASTER_REST_PORT, loopback like the rest) answers the driver
# status queries of `--deploy-mode cluster` runs: Airflow's SparkSubmitOperator polls it
# (docs/airflow.md, "Shipping the code"). It has no authentication: never bind it elsewhere.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/.cache/cluster}"
MASTER_PORT="${MASTER_PORT:-7077}"
MASTER_WEBUI_PORT="${MASTER_WEBUI_PORT:-8090}"
MASTER_REST_PORT="${MASTER_REST_PORT:-6066}"
WORKER_WEBUI_PORT="${WORKER_WEBUI_PORT:-8091}"
WORKERS="${WORKERS:-2}"
WORKER_CORES="${WORKER_CORES:-1}"
WORKER_MEMORY="${WORKER_MEMORY:-3g}"
MASTER_URL="spark://127.0.0.1:${MASTER_PORT}"

export SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export SPARK_LOCAL_IP=127.0.0.1          # RPC and web UIs on loopback only
export SPARK_LOG_DIR="$CLUSTER_DIR/logs"
# Executors start Python workers only for Python UDFs; make them this project's Python.
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
if [ -z "${JAVA_HOME:-}" ]; then
  JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"; export JAVA_HOME
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  mkdir -p "$CLUSTER_DIR/logs"
  if alive "$CLUSTER_DIR/master.pid"; then
    echo "a master is already running (pid $(cat "$CLUSTER_DIR/master.pid")): $MASTER_URL"; return 0
  fi
  SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} -Dspark.master.rest.enabled=true -Dspark.master.rest.port=$MASTER_REST_PORT" \
  nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_WEBUI_PORT" \
    >"$CLUSTER_DIR/logs/master.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/master.pid"
  for _ in $(seq 120); do
    grep -q "I have been elected leader" "$CLUSTER_DIR/logs/master.log" 2>/dev/null && break
    alive "$CLUSTER_DIR/master.pid" || { cat "$CLUSTER_DIR/logs/master.log"; echo "master failed to start"; exit 1; }
    sleep 0.5
  done
  for i in $(seq "$WORKERS"); do
    mkdir -p "$CLUSTER_DIR/work-$i"
    nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host 127.0.0.1 --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
      --webui-port $([ "$WORKER_WEBUI_PORT" = 0 ] && echo 0 || echo $((WORKER_WEBUI_PORT + i - 1))) --work-dir "$CLUSTER_DIR/work-$i" "$MASTER_URL" \
      >"$CLUSTER_DIR/logs/worker-$i.log" 2>&1 &
    echo $! >"$CLUSTER_DIR/worker-$i.pid"
  done
  for _ in $(seq 120); do
    n=$(grep -c "Registering worker" "$CLUSTER_DIR/logs/master.log" 2>/dev/null || true)
    [ "${n:-0}" -ge "$WORKERS" ] && break
    sleep 0.5
  done
  n=$(grep -c "Registering worker" "$CLUSTER_DIR/logs/master.log" 2>/dev/null || true)
  if [ "${n:-0}" -lt "$WORKERS" ]; then
    echo "only ${n:-0} of $WORKERS workers registered; see $CLUSTER_DIR/logs"; stop; exit 1
  fi
  echo "Spark standalone cluster up: master $MASTER_URL, $WORKERS workers x $WORKER_CORES core, $WORKER_MEMORY"
  echo "  master UI  http://127.0.0.1:$MASTER_WEBUI_PORT   logs $CLUSTER_DIR/logs"
  echo "  run a job  .venv/bin/python -m jobs backfill --from 2016-01-04 --to 2016-01-10 --master $MASTER_URL"
  echo "  stop       make cluster-stop"
}

stop() {
  local any=0
  for pidfile in "$CLUSTER_DIR"/worker-*.pid "$CLUSTER_DIR/master.pid"; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
      echo "stopped $(basename "$pidfile" .pid) (pid $pid)"; any=1
    fi
    rm -f "$pidfile"
  done
  [ "$any" = 1 ] || echo "no cluster running (no live pid files in $CLUSTER_DIR)"
}

status() {
  for pidfile in "$CLUSTER_DIR/master.pid" "$CLUSTER_DIR"/worker-*.pid; do
    [ -f "$pidfile" ] || continue
    if alive "$pidfile"; then echo "$(basename "$pidfile" .pid) running (pid $(cat "$pidfile"))"
    else echo "$(basename "$pidfile" .pid) not running (stale pid file)"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
