#!/usr/bin/env bash
# make conformance: the public conformance suites against a Portico built
# from the tree (bin/portico, make build), one after the other, each on its
# own gateway and free ports:
#   h2spec            scripts/conformance-h2spec.sh  (HTTP/2)
#   testssl.sh        scripts/conformance-tls.sh     (TLS)
#   http-cache-tests  scripts/conformance-cache.sh   (HTTP caching), when present
# Each suite installs what it needs; one that cannot be installed or run
# says "not run (why)" and the others still run. The output of each suite is
# shown as it runs; at the end, one summary line per suite.
#
# Exit status: 1 when a suite that ran reported failures beyond its recorded
# baseline (h2spec: a failure not in test/conformance/h2spec-known-failures.txt;
# testssl.sh: a critical or high finding), or its gateway could not start;
# else 0. docs/security.md ("Conformance suites") records today's results.
set -euo pipefail
cd "$(dirname "$0")/.."

TMP="$(mktemp -d -t portico-conformance-run.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

summaries=()
status=0

# run_suite NAME SCRIPT: run SCRIPT, showing its output; keep the last line
# of it that starts with "NAME:" as the suite's summary.
run_suite() {
  local name=$1 script=$2 rc=0 line
  echo "== $name ($script)"
  bash "$script" 2>&1 | tee "$TMP/out" || rc=$?
  line=$(awk -v p="$name: " 'index($0, p) == 1' "$TMP/out" | tail -n 1)
  if [[ -z $line ]]; then line="$name: error ($script exited with status $rc and printed no summary)"; fi
  if ((rc != 0)); then
    status=1
    line+="  [exit $rc]"
  fi
  summaries+=("$line")
  echo
}

run_suite h2spec scripts/conformance-h2spec.sh
run_suite testssl.sh scripts/conformance-tls.sh
if [[ -f scripts/conformance-cache.sh ]]; then
  run_suite http-cache-tests scripts/conformance-cache.sh
else
  summaries+=("http-cache-tests: not run (scripts/conformance-cache.sh missing)")
fi

echo "== conformance summary"
printf '%s\n' "${summaries[@]}"
exit "$status"
