#!/usr/bin/env bash
# TLS conformance: testssl.sh against Portico's TLS listener with its default
# TLS settings (make conformance-tls, and part of make conformance). Needs
# bin/portico (make build) and Go; installs the Debian package testssl.sh
# with apt-get when it is missing (as root, or with sudo).
#
# The gateway is test/conformance/portico.yaml (see
# scripts/conformance-lib.sh). testssl.sh is told to trust the throwaway CA
# that issued its certificate (--add-ca) and does no DNS lookups (--nodns
# none), so that its findings are about the gateway's TLS, not about a test
# certificate or a loopback host name. It runs the checks that rate what
# they find: protocols, cipher categories, forward secrecy, server
# preferences, server defaults, HTTP headers and vulnerabilities. Client
# simulations and the list of every cipher only inform, and take minutes:
# CONFORMANCE_TESTSSL_FULL=1 adds them (testssl.sh's default run).
#
# The last line printed is the summary: the findings by severity and the ids
# of those rated low or above, e.g.
#   testssl.sh: 0 critical, 0 high, 0 medium, 4 low (low: HSTS ...)
# The full report is in .cache/conformance/logs/testssl.{txt,json}.
# Exit status: 1 when a finding is rated critical or high; else 0 (also when
# testssl.sh could not be installed or run: the summary says "not run" and
# why).
#
# Environment (optional):
#   CONFORMANCE_TESTSSL_FULL=1     testssl.sh's default run (all checks)
#   CONFORMANCE_TESTSSL_TIMEOUT    seconds before the scan is stopped (default 1800)
set -euo pipefail
SUITE=testssl.sh
# shellcheck source=scripts/conformance-lib.sh
source "$(dirname "$0")/conformance-lib.sh"
conformance_init

TIMEOUT="${CONFORMANCE_TESTSSL_TIMEOUT:-1800}"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || broken "CONFORMANCE_TESTSSL_TIMEOUT must be a number of seconds (got '$TIMEOUT')"

# ---------------------------------------------------------------- install
# Debian installs the script as testssl; upstream calls it testssl.sh.
find_testssl() { command -v testssl || command -v testssl.sh || true; }

TESTSSL=$(find_testssl)
if [[ -z $TESTSSL ]]; then
  command -v apt-get >/dev/null 2>&1 || not_run "testssl.sh is not installed and apt-get is not available"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || not_run "testssl.sh is not installed, and installing it needs root or sudo"
    SUDO="sudo"
  fi
  echo "testssl.sh: installing the Debian package testssl.sh"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq testssl.sh >/dev/null; }; then
    not_run "apt-get install testssl.sh failed"
  fi
  TESTSSL=$(find_testssl)
  [[ -n $TESTSSL ]] || not_run "the testssl.sh package installed no testssl command"
fi
command -v timeout >/dev/null 2>&1 || not_run "timeout (coreutils) is not installed"

start_gateway

checks=(--protocols --std --pfs --server-preference --server-defaults --headers --vulnerable)
if [[ ${CONFORMANCE_TESTSSL_FULL:-} == 1 ]]; then checks=(); fi

JSON="$LOGS/testssl.json"
TEXT="$LOGS/testssl.txt"
rm -f "$JSON" "$TEXT"
version=$("$TESTSSL" --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -m1 -oE 'testssl(\.sh)? +[0-9][^ ]*' | tr -s ' ' || true)
echo "testssl.sh: running ${version:-testssl.sh} against localhost:$GATEWAY_PORT (several minutes); report: ${TEXT#"$ROOT"/}"
rc=0
timeout "$TIMEOUT" "$TESTSSL" --quiet --color 0 --warnings off --nodns none \
  --connect-timeout 10 --openssl-timeout 10 \
  --ip 127.0.0.1 --add-ca "$CA_FILE" --jsonfile "$JSON" \
  "${checks[@]+"${checks[@]}"}" "localhost:$GATEWAY_PORT" >"$TEXT" 2>&1 </dev/null || rc=$?
if ((rc == 124)); then
  not_run "testssl.sh did not finish within ${TIMEOUT}s: see ${TEXT#"$ROOT"/}"
fi

# ---------------------------------------------------------------- findings
# The flat JSON file has one object per finding, one key per line, "id"
# before "severity": print "SEVERITY ID" per finding.
findings=""
if [[ -s $JSON ]]; then
  findings=$(awk -F'"' '
    $2 == "id" { id = $4 }
    $2 == "severity" { print $4, id }
  ' "$JSON")
fi
if ! grep -q ' scanTime$' <<<"$findings"; then
  tail -n 20 "$TEXT" >&2 || true
  not_run "testssl.sh (exit $rc) did not complete its scan: see ${TEXT#"$ROOT"/}"
fi

ids_of() { awk -v s="$1" '$1 == s {print $2}' <<<"$findings" | paste -sd ' ' -; }
count() { awk -v s="$1" '$1 == s {n++} END {print n + 0}' <<<"$findings"; }

# Every finding rated low or above, as testssl.sh wrote it.
awk -F'"' '
  $2 == "id" { id = $4 }
  $2 == "severity" { sev = $4 }
  $2 == "finding" && sev ~ /^(LOW|MEDIUM|HIGH|CRITICAL|WARN|FATAL)$/ { printf "  %-8s %-24s %s\n", sev, id, $4 }
' "$JSON"

critical=$(count CRITICAL) high=$(count HIGH) medium=$(count MEDIUM) low=$(count LOW) warn=$(count WARN)
line="$critical critical, $high high, $medium medium, $low low"
rated=()
for s in CRITICAL HIGH MEDIUM LOW; do
  ids=$(ids_of "$s")
  if [[ -n $ids ]]; then rated+=("${s,,}: $ids"); fi
done
if ((${#rated[@]})); then line+=" ($(printf '%s; ' "${rated[@]}" | sed 's/; $//'))"; fi
if ((warn > 0)); then line+="; $warn scan warnings: $(ids_of WARN)"; fi
summary "$line"
if ((critical + high > 0)); then exit 1; fi
