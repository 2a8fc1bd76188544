#!/usr/bin/env bash
# Runs the shared proxy benchmark (NGINX, HAProxy, Caddy, and Portico in the
# same run) and appends the results table, with date and machine, to
# docs/benchmarks.md. Needs bin/portico (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${PORTICO_BENCH_HARNESS:-../shared/bench/run.sh}
[[ -x $HARNESS || -f $HARNESS ]] || { echo "benchmark harness not found at $HARNESS (set PORTICO_BENCH_HARNESS)"; exit 1; }
[[ -x bin/portico ]] || { echo "bin/portico missing: run make build"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
export GATEWAY_CMD='BENCH_LISTEN=127.0.0.1:{port} BENCH_UPSTREAM={upstream} exec ./bin/portico run -c bench/plain.yaml'
if [[ -f bench/policy.yaml ]]; then
  export GATEWAY_POLICY_CMD='BENCH_LISTEN=127.0.0.1:{port} BENCH_UPSTREAM={upstream} BENCH_API_KEY={api_key} BENCH_TMP={tmp} exec ./bin/portico run -c bench/policy.yaml'
fi
export BENCH_REPEATS=${BENCH_REPEATS:-3}
bash "$HARNESS" | tee "$out"
{
  echo
  echo "### Proxy comparison, $(date -u +%Y-%m-%d) ($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
  echo
  echo '```'
  sed -n '/^== results/,$p' "$out" | grep -v '^RESULT' | sed '/^$/N;/^\n$/D'
  echo '```'
} >>docs/benchmarks.md
echo "appended the results to docs/benchmarks.md"
