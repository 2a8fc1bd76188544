#!/usr/bin/env bash
# Installs what `make test` needs on a fresh machine (Debian packages), and
# nothing when it is already there. Runs as root or with sudo.
set -euo pipefail
need=()
# Packages the tests use, as "command:package".
DEPS=("redis-server:redis-server")
for pair in "${DEPS[@]+"${DEPS[@]}"}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "installing test dependencies: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "go is not on PATH (need Go 1.26)"; exit 1; }
# Every module, the tools too: the ACME tests build Pebble and its DNS
# server (go.mod's tool block) from the module cache, never downloading
# at test time.
cd "$(dirname "$0")/.."
go mod download
