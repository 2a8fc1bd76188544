# shellcheck shell=bash
# Shared by the conformance scripts (scripts/conformance-*.sh); sourced, not
# run. It gives each suite a gateway to test: bin/portico (make build) run
# with test/conformance/portico.yaml, one TLS listener with Portico's default
# TLS settings on a free loopback port, in front of a small upstream, with a
# certificate issued by a throwaway CA (test/conformance/fixture).
#
# A script that sources it sets SUITE (the name its summary line starts
# with), then calls conformance_init once; everything it starts through
# start_bg is stopped, and its temporary directory removed, when it exits.
#
# Reports that outlive the run (full suite output, the gateway's logs) go to
# .cache/conformance/logs/; tools built here go to .cache/conformance/bin/.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/conformance"
LOGS="$CACHE/logs"
TOOLS="$CACHE/bin"
TMP=""
PGIDS=() # process-group ids of everything started here
LAST_PID=""

# summary LINE...: print the suite's summary line (the last line it prints).
summary() { echo "$SUITE: $*"; }

# not_run REASON: the suite could not run; print why and stop without failing.
not_run() {
  echo "$SUITE: $1" >&2
  summary "not run ($1)"
  exit 0
}

# broken REASON: the gateway under test could not be set up; fail.
broken() {
  echo "$SUITE: $1" >&2
  summary "error ($1)"
  exit 1
}

conformance_init() {
  mkdir -p "$LOGS" "$TOOLS"
  TMP="$(mktemp -d -t portico-conformance.XXXXXX)"
  trap conformance_cleanup EXIT
  trap 'echo; echo "interrupted"; exit 130' INT
  trap 'exit 143' TERM
  command -v setsid >/dev/null 2>&1 || broken "setsid (util-linux) is not installed"
}

# start_bg LOGFILE CMD...: run CMD in its own session and process group.
start_bg() {
  local log=$1
  shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  LAST_PID=$!
  PGIDS+=("$LAST_PID")
}

# stop_group PGID: TERM the group, KILL it after 5 s.
stop_group() {
  local pg=$1 i
  kill -TERM -- "-$pg" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pg" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
}

conformance_cleanup() {
  local pg
  trap - EXIT INT TERM
  for pg in "${PGIDS[@]+"${PGIDS[@]}"}"; do stop_group "$pg"; done
  PGIDS=()
  if [[ -n $TMP ]]; then rm -rf "$TMP"; fi
}

# wait_for_line FILE REGEX PID SECONDS: print the first line of FILE matching
# REGEX once it appears; fail when PID exits or SECONDS pass first.
wait_for_line() {
  local file=$1 re=$2 pid=$3 tries=$(($4 * 10)) line
  while ((tries-- > 0)); do
    line=$(grep -m1 -E "$re" "$file" 2>/dev/null || true)
    if [[ -n $line ]]; then
      echo "$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# build_fixture: the certificate and upstream helper, built from the tree.
build_fixture() {
  command -v go >/dev/null 2>&1 || not_run "go is not on PATH (need Go 1.26)"
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$TOOLS/fixture" ./test/conformance/fixture) ||
    broken "go build ./test/conformance/fixture failed"
}

# start_gateway: the certificate, the upstream and Portico's TLS listener.
# Sets GATEWAY_PORT (the bound port on 127.0.0.1) and CA_FILE (the CA that
# issued the gateway's certificate).
start_gateway() {
  local bin="$ROOT/bin/portico" line upstream
  [[ -x $bin ]] || broken "bin/portico missing: run make build"
  build_fixture

  "$TOOLS/fixture" cert "$TMP" || broken "fixture cert failed"
  # shellcheck disable=SC2034 # read by the scripts that source this file
  CA_FILE="$TMP/ca.pem"

  start_bg "$TMP/upstream.log" "$TOOLS/fixture" upstream
  line=$(wait_for_line "$TMP/upstream.log" '^http://' "$LAST_PID" 10) ||
    broken "the upstream did not start: $(tail -n 3 "$TMP/upstream.log")"
  upstream=$line

  # The gateway's stdout (access log) and stderr (its own log) are kept.
  local log="$LOGS/$SUITE-portico.log"
  CONFORMANCE_CERT_FILE="$TMP/cert.pem" CONFORMANCE_KEY_FILE="$TMP/key.pem" \
    CONFORMANCE_UPSTREAM_URL="$upstream" \
    start_bg "$log" "$bin" run -c "$ROOT/test/conformance/portico.yaml"
  line=$(wait_for_line "$log" '"msg":"portico started"' "$LAST_PID" 10) ||
    broken "portico did not start: $(tail -n 3 "$log")"
  GATEWAY_PORT=$(sed -E 's/.*"listen":"[^"]*:([0-9]+)".*/\1/' <<<"$line")
  [[ $GATEWAY_PORT =~ ^[0-9]+$ ]] || broken "no listen address in: $line"
  echo "$SUITE: portico (TLS) on 127.0.0.1:$GATEWAY_PORT in front of $upstream; log: ${log#"$ROOT"/}"
}
