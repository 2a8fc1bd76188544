#!/usr/bin/env bash
# HTTP/2 conformance: h2spec against Portico's TLS listener (make
# conformance-h2, and part of make conformance). Needs bin/portico (make
# build) and Go.
#
# h2spec is built from its pinned module (test/conformance/h2spec/go.mod and
# go.sum, fetched through the Go module proxy) into .cache/conformance/bin/,
# once, and again only when that go.mod or go.sum changes. The gateway is
# test/conformance/portico.yaml (see scripts/conformance-lib.sh).
#
# The last line printed is the summary, e.g.
#   h2spec: 141/145 passed (4 failed: http2/4.2/3 ...)
# Exit status: 0 when every failing test is listed in
# test/conformance/h2spec-known-failures.txt (or the suite could not be
# installed: the summary says "not run" and why); 1 when another test fails
# or the gateway could not be started.
#
# Environment (optional):
#   CONFORMANCE_REFERENCE=1  also run h2spec against Go's own net/http server
#                            (same certificate, same upstream answer) and
#                            print its result, to tell which failures are
#                            the standard library's
set -euo pipefail
SUITE=h2spec
# shellcheck source=scripts/conformance-lib.sh
source "$(dirname "$0")/conformance-lib.sh"
conformance_init

MODDIR="$ROOT/test/conformance/h2spec"
KNOWN="$ROOT/test/conformance/h2spec-known-failures.txt"
H2SPEC="$TOOLS/h2spec"

# ---------------------------------------------------------------- install
install_h2spec() {
  command -v go >/dev/null 2>&1 || not_run "go is not on PATH (need Go 1.26)"
  local stamp="$TOOLS/h2spec.stamp" want
  want=$(cat "$MODDIR/go.mod" "$MODDIR/go.sum" | cksum)
  if [[ -x $H2SPEC && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  local version
  version=$(awk '$1 == "github.com/summerwind/h2spec" {print $2}' "$MODDIR/go.mod")
  echo "h2spec: building h2spec ${version:-?} (test/conformance/h2spec/go.mod) into ${H2SPEC#"$ROOT"/}"
  rm -f "$stamp"
  if ! (cd "$MODDIR" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" \
    go build -trimpath -ldflags "-X main.VERSION=${version#v} -X main.COMMIT=module" \
    -o "$H2SPEC" github.com/summerwind/h2spec/cmd/h2spec); then
    not_run "could not build h2spec from test/conformance/h2spec/go.mod: see the go error above"
  fi
  echo "$want" >"$stamp"
}

# ---------------------------------------------------------------- report
# parse_report XML: one line per test case, "ID STATUS", where ID is h2spec's
# own test id (section package/position, as in `h2spec http2/4.2/3`) and
# STATUS is passed, failed or skipped.
parse_report() {
  awk '
    /<testcase / {
      match($0, /package="[^"]*"/)
      pkg = substr($0, RSTART + 9, RLENGTH - 10)
      if (pkg != last) { n = 0; last = pkg }
      id = pkg "/" ++n
      status = "passed"
      open = 1
    }
    open && /<(failure|error)[ >]/ { status = "failed" }
    open && /<skipped[ >\/]/ { status = "skipped" }
    open && /<\/testcase>/ { print id, status; open = 0 }
  ' "$1"
}

# run_h2spec PORT NAME: run the suite against 127.0.0.1:PORT over TLS; the
# text output and JUnit report go to .cache/conformance/logs/NAME.{txt,xml}.
# Prints the totals line h2spec ends with; returns h2spec's status.
run_h2spec() {
  local port=$1 name=$2 rc=0
  rm -f "$LOGS/$name.xml"
  "$H2SPEC" --tls --insecure --host 127.0.0.1 --port "$port" \
    --junit-report "$LOGS/$name.xml" >"$LOGS/$name.txt" 2>&1 </dev/null || rc=$?
  return "$rc"
}

# totals NAME: "TOTAL PASSED SKIPPED FAILED" from h2spec's last text line.
totals() {
  sed -nE 's/^([0-9]+) tests, ([0-9]+) passed, ([0-9]+) skipped, ([0-9]+) failed$/\1 \2 \3 \4/p' "$LOGS/$1.txt" | tail -n 1
}

install_h2spec
start_gateway

echo "h2spec: running h2spec $("$H2SPEC" --version 2>/dev/null | sed -n 's/^Version: \([^ ]*\).*/\1/p') against 127.0.0.1:$GATEWAY_PORT"
h2rc=0
run_h2spec "$GATEWAY_PORT" h2spec || h2rc=$?
read -r total passed skipped failed <<<"$(totals h2spec)" || true
if [[ -z ${total:-} || ! -s $LOGS/h2spec.xml ]]; then
  tail -n 20 "$LOGS/h2spec.txt" >&2 || true
  not_run "h2spec exited with status $h2rc without a report: see .cache/conformance/logs/h2spec.txt"
fi
results=$(parse_report "$LOGS/h2spec.xml")
failing=$(awk '$2 == "failed" {print $1}' <<<"$results")
counted=$(grep -c . <<<"$results" || true)
if ((counted != total)) || (($(grep -c . <<<"$failing" || true) != failed)); then
  broken "the JUnit report (${counted} cases) does not match h2spec's totals ($total tests, $failed failed)"
fi

known=$(sed -E 's/#.*//; s/^[[:space:]]+//; s/[[:space:]].*//' "$KNOWN" | grep -v '^$' || true)
new=$(grep -vxF -f <(printf '%s\n' "$known") <<<"$failing" || true)
fixed=$(grep -vxF -f <(printf '%s\n' "$failing") <<<"$known" || true)
# The h2spec text output, from its "Failures:" section on, says what was
# expected and what came instead for each failing test.
sed -n '/^Failures:/,$p' "$LOGS/h2spec.txt"

if [[ ${CONFORMANCE_REFERENCE:-} == 1 ]]; then
  start_bg "$TMP/goserver.log" "$TOOLS/fixture" goserver "$TMP/cert.pem" "$TMP/key.pem"
  line=$(wait_for_line "$TMP/goserver.log" '^https://' "$LAST_PID" 10) ||
    broken "the net/http reference server did not start"
  run_h2spec "${line##*:}" h2spec-go || true
  read -r gtotal gpassed _ gfailed <<<"$(totals h2spec-go)" || true
  gfailing=$(parse_report "$LOGS/h2spec-go.xml" | awk '$2 == "failed" {print $1}' | paste -sd ' ' -)
  echo "h2spec (Go net/http reference): ${gpassed:-?}/${gtotal:-?} passed (${gfailed:-?} failed: ${gfailing:-none})"
fi

line="$passed/$total passed"
if ((failed > 0)); then
  line+=" ($failed failed: $(paste -sd ' ' - <<<"$failing"))"
fi
if ((skipped > 0)); then line+=", $skipped skipped"; fi
if [[ -n $fixed ]]; then
  line+="; known failure now passing: $(paste -sd ' ' - <<<"$fixed") (update test/conformance/h2spec-known-failures.txt)"
fi
if [[ -n $new ]]; then
  summary "$line; NEW failures: $(paste -sd ' ' - <<<"$new")"
  exit 1
fi
summary "$line"
