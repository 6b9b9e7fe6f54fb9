#!/usr/bin/env bash
# The main job on the embedded default: a local Kafka broker, the all-in-one worker (three
# stages + query API on Qdrant Edge), the sample feed streamed in, and searches showing it.
# Ctrl-C (or SIGTERM) stops the worker cleanly (drain, commit, close) and then the broker.
# DEMO_ONCE=1 stops right after the searches (used by the end-to-end test).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
TW=.venv/bin/tickerwire
DATA_DIR=${TICKERWIRE_DATA_DIR:-.tickerwire}
PORT=${TICKERWIRE_HTTP_PORT:-8080}
HOST=${TICKERWIRE_HTTP_HOST:-127.0.0.1}
mkdir -p "$DATA_DIR/logs"

$TW kafka up
$TW topics create

worker_pid=""
stop() {
  if [[ -n "$worker_pid" ]] && kill -0 "$worker_pid" 2>/dev/null; then
    echo "stopping worker (pid $worker_pid)…"
    kill -TERM "$worker_pid"
    wait "$worker_pid" || true
  fi
  $TW kafka down
}
trap stop EXIT
trap 'exit 130' INT TERM

$TW up >"$DATA_DIR/logs/worker.log" 2>&1 &
worker_pid=$!
echo "worker started (pid $worker_pid), logs in $DATA_DIR/logs/worker.log"

for _ in $(seq 1 120); do
  if curl -fsS "http://$HOST:$PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$worker_pid" 2>/dev/null; then
    echo "worker exited; last log lines:"; tail -n 40 "$DATA_DIR/logs/worker.log"; exit 1
  fi
  sleep 1
done

$TW produce deploy/sample/

echo "waiting for the index to catch up…"
last=-1; stable=0
for _ in $(seq 1 300); do
  points=$(curl -fsS "http://$HOST:$PORT/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["points"])')
  if [[ "$points" -gt 0 && "$points" == "$last" ]]; then stable=$((stable + 1)); else stable=0; fi
  [[ $stable -ge 3 ]] && break
  last=$points
  sleep 1
done
echo "indexed points: $points"

$TW search "What revenue did Nvidia report for the third quarter?" -k 3
$TW search "dividend increase" -k 3 --ticker JPM
$TW search "crude oil inventories" -k 3 --mode sparse

if [[ "${DEMO_ONCE:-0}" == "1" ]]; then exit 0; fi
echo
echo "tickerwire is running: http://$HOST:$PORT  (POST /v1/search, GET /v1/status, /metrics)"
echo "try: $TW search \"your question\"   — Ctrl-C to stop"
wait "$worker_pid"
