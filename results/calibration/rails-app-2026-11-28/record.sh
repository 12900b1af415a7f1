#!/usr/bin/env bash
# Records the bundled Rails app under wrk-mix load with the tracer, as run for this folder.
# Usage (from the repository root): results/calibration/rails-app-DATE/record.sh TRACE [SECONDS]
set -euo pipefail
trace=${1:?give the trace path}
secs=${2:-150}
port=${PORT:-3917}
log=${trace%.lhtrace}.record.log
PORT=$port target/release/runner record --out "$trace" -- workloads/rails-app/serve >"$log" 2>&1 &
runner_pid=$!
# Wait for Puma (the runner's child) to answer /health.
for _ in $(seq 1 240); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null
puma_pid=$(pgrep -P "$runner_pid" | head -1)
echo "runner $runner_pid, puma $puma_pid; booted at $(date -u +%FT%TZ); loading ${secs}s"
uptime
PORT=$port workloads/rails-app/wrk-mix -t2 -c10 -d"${secs}s" --timeout 10s
uptime
echo "stopping puma $puma_pid with SIGTERM at $(date -u +%FT%TZ)"
kill -TERM "$puma_pid"
wait "$runner_pid"
echo "runner exited $? at $(date -u +%FT%TZ)"
cat "$log"
