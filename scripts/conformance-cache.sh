#!/usr/bin/env bash
# HTTP caching conformance: runs the http-cache-tests suite (the tests
# behind cache-tests.fyi, npm package http-cache-tests) against the cache
# plugin with its defaults, as the suite's README says to test a reverse
# proxy: the suite's own test server as the origin, Portico with one cache
# route in front of it (test/conformance/cache.yaml), and the suite's
# command-line client sending every test through Portico.
#
# Prints one line:
#   http-cache-tests: N passed, 0 required failed, M optional failed (...)
# and exits non-zero when a required test failed (or the run could not be
# made). The results are kept in bin/conformance/: the client's JSON
# (http-cache-tests.json) and one line per failed test
# (http-cache-tests-failures.txt).
#
# Needs bin/portico (make build), node and npm. The suite is installed with
# npm when it is missing, once, into a cache outside the tree; nothing else
# is downloaded. Everything listens on 127.0.0.1 (the suite's server on
# every local address), and every process started here is stopped by its
# process group on exit.
#
# Environment (all optional):
#   CONFORMANCE_CACHE      where the suite is installed
#                          (default $HOME/.cache/portico/conformance)
#   CONFORMANCE_BASE_PORT  first port tried (default 18380)
#   CONFORMANCE_ID         run this one test and print what it sent and got
#                          (the suite's --id), instead of the summary
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SUITE_VERSION=0.4.5
die() { echo "conformance-cache.sh: $*" >&2; exit 2; }

CACHE="${CONFORMANCE_CACHE:-${HOME:-/root}/.cache/portico/conformance}"
BASE_PORT="${CONFORMANCE_BASE_PORT:-18380}"
[[ "$BASE_PORT" =~ ^[0-9]+$ ]] || die "CONFORMANCE_BASE_PORT must be a port number"
[[ -x bin/portico ]] || die "bin/portico missing: run make build"
[[ -f test/conformance/cache.yaml && -f test/conformance/summarize.mjs && -f test/conformance/cache-known.txt ]] || die "test/conformance/ files missing"
command -v node >/dev/null || die "node is not on PATH"
command -v setsid >/dev/null || die "setsid (util-linux) is not on PATH"

# ---------------------------------------------------------------- the suite
PREFIX="$CACHE/http-cache-tests-$SUITE_VERSION"
SUITE="$PREFIX/node_modules/http-cache-tests"
if [[ ! -f "$SUITE/package.json" ]] || ! grep -q "\"version\": \"$SUITE_VERSION\"" "$SUITE/package.json"; then
  command -v npm >/dev/null || die "npm is not on PATH (needed once, to install http-cache-tests)"
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --cache "$CACHE/npm" --no-audit --no-fund --no-save --loglevel=error \
    "http-cache-tests@$SUITE_VERSION" >"$CACHE/npm-install.log" 2>&1 ||
    die "npm install http-cache-tests@$SUITE_VERSION failed; see $CACHE/npm-install.log"
fi

# ------------------------------------------------------------ process control
TMP="$(mktemp -d -t portico-conformance.XXXXXX)"
PGIDS=()
start_bg() { # start_bg LOGFILE CMD... : run CMD in its own session and process group
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  PGIDS+=("$!")
}
cleanup() {
  local pg i
  trap - EXIT INT TERM
  for pg in "${PGIDS[@]+"${PGIDS[@]}"}"; do
    kill -TERM -- "-$pg" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pg" 2>/dev/null || true
    wait "$pg" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # free_port FROM -> the first port from FROM nobody listens on
  local p=$1
  while port_busy "$p"; do p=$((p + 1)); ((p < 65535)) || die "no free port"; done
  echo "$p"
}
wait_port() { # wait_port PORT PID LOG : until something accepts on PORT
  local i
  for ((i = 0; i < 100; i++)); do
    port_busy "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "process for port $1 exited"; }
    sleep 0.1
  done
  cat "$3" >&2
  die "nothing listens on port $1 after 10s"
}

ORIGIN_PORT=$(free_port "$BASE_PORT")
PORTICO_PORT=$(free_port $((ORIGIN_PORT + 1)))

# The suite's server reads its settings from npm's environment variables.
start_bg "$TMP/origin.log" env npm_config_protocol=http npm_config_port="$ORIGIN_PORT" \
  npm_config_pidfile="$TMP/origin.pid" node "$SUITE/server/server.mjs"
wait_port "$ORIGIN_PORT" "${PGIDS[-1]}" "$TMP/origin.log"

start_bg "$TMP/portico.log" env CONFORMANCE_LISTEN="127.0.0.1:$PORTICO_PORT" \
  CONFORMANCE_UPSTREAM="http://127.0.0.1:$ORIGIN_PORT" "$ROOT/bin/portico" run -c "$ROOT/test/conformance/cache.yaml"
wait_port "$PORTICO_PORT" "${PGIDS[-1]}" "$TMP/portico.log"

# ------------------------------------------------------------------ the run
run_client() { # the suite's command-line client, as `npm run cli --base=... --id=...`
  (cd "$SUITE" && timeout 900 env npm_config_base="http://127.0.0.1:$PORTICO_PORT/" \
    npm_config_id="$1" npm_package_config_id="" node --no-warnings cli.mjs)
}

if [[ -n "${CONFORMANCE_ID:-}" ]]; then
  run_client "$CONFORMANCE_ID"
  exit 0
fi

OUT="$ROOT/bin/conformance"
mkdir -p "$OUT"
run_client "" >"$OUT/http-cache-tests.json" 2>"$TMP/client.err" || {
  cat "$TMP/client.err" >&2
  die "the http-cache-tests client failed"
}
node "$ROOT/test/conformance/summarize.mjs" "$SUITE" "$OUT/http-cache-tests.json" \
  "$ROOT/test/conformance/cache-known.txt" "$OUT/http-cache-tests-failures.txt"
