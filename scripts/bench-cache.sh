#!/usr/bin/env bash
# Cache-hit benchmark: Portico's cache plugin against NGINX proxy_cache
# serving the same hit in the same run, with Portico as a plain proxy for
# reference. Appends the results table, with date and machine, to
# docs/benchmarks.md. Needs bin/portico (make build); installs nginx, wrk
# and curl with apt-get when they are missing.
#
# Targets, each on its own loopback port in front of one upstream (nginx
# `return 200` from memory: a 1 KB JSON body with Cache-Control: public,
# max-age=3600):
#   nginx-cache    nginx proxy_cache (bench/cache-nginx.conf.tmpl)
#   portico-cache  ./bin/portico run -c bench/cache.yaml (the cache plugin)
#   portico-plain  ./bin/portico run -c bench/plain.yaml (no cache)
# Each target is started, warmed until a request is a hit (checked from its
# X-Cache-Status or Cache-Status header), warmed up under load, measured
# with wrk, checked for a hit again and stopped; rounds are interleaved.
# CPU per request is the target's process-group CPU time (utime + stime
# from /proc) over the measured run divided by its requests; the upstream's
# is shown too, as the proof that a cache target did not reach it.
#
# Everything runs on 127.0.0.1, every load run is bounded in time, and
# every process started here is stopped by its process group on exit.
#
# Environment (all optional):
#   BENCH_DURATION   seconds per measured run             (default 10)
#   BENCH_WARMUP     seconds of warm-up per run           (default 3)
#   BENCH_CONNS      wrk connections                      (default 64)
#   BENCH_THREADS    wrk threads                          (default 1)
#   BENCH_REPEATS    rounds over all targets, interleaved (default 3)
#   BENCH_TARGETS    subset of: nginx-cache portico-cache portico-plain
#   BENCH_BASE_PORT  first port used                      (default 18180)
#   BENCH_NO_RECORD  set to 1 to leave docs/benchmarks.md alone
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() { echo "bench-cache.sh: $*" >&2; exit 1; }
num() { [[ "$1" =~ ^[0-9]+$ ]] || die "$2 must be a non-negative integer (got '$1')"; }

DURATION="${BENCH_DURATION:-10}"; DURATION="${DURATION%s}"
WARMUP="${BENCH_WARMUP:-3}"; WARMUP="${WARMUP%s}"
CONNS="${BENCH_CONNS:-64}"
THREADS="${BENCH_THREADS:-1}"
REPEATS="${BENCH_REPEATS:-3}"
BASE_PORT="${BENCH_BASE_PORT:-18180}"
TARGETS="${BENCH_TARGETS:-nginx-cache portico-cache portico-plain}"
for v in DURATION WARMUP CONNS THREADS REPEATS BASE_PORT; do num "${!v}" "$v"; done
((DURATION >= 1 && DURATION <= 600)) || die "BENCH_DURATION must be 1..600 seconds"
((REPEATS >= 1 && REPEATS <= 20)) || die "BENCH_REPEATS must be 1..20"
((THREADS >= 1 && CONNS >= THREADS)) || die "need BENCH_THREADS >= 1 and BENCH_CONNS >= BENCH_THREADS"

UP_PORT=$BASE_PORT
declare -A PORT=([nginx-cache]=$((BASE_PORT + 1)) [portico-cache]=$((BASE_PORT + 2)) [portico-plain]=$((BASE_PORT + 3)))
for t in $TARGETS; do [[ -n ${PORT[$t]:-} ]] || die "unknown target '$t' (want nginx-cache, portico-cache, portico-plain)"; done
[[ -x bin/portico ]] || die "bin/portico missing: run make build"
[[ -f bench/cache-nginx.conf.tmpl && -f bench/cache.yaml && -f bench/plain.yaml ]] || die "bench/ configs missing"

# ---------------------------------------------------------------- dependencies
PATH="$PATH:/usr/sbin:/sbin" # Debian puts nginx in sbin
SUDO=""
if [[ $(id -u) -ne 0 ]]; then command -v sudo >/dev/null && SUDO="sudo"; fi
missing=()
for bin in nginx wrk curl setsid timeout; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    case $bin in setsid) missing+=(util-linux) ;; timeout) missing+=(coreutils) ;; *) missing+=("$bin") ;; esac
  fi
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ------------------------------------------------------------- process control
TMP="$(mktemp -d -t portico-bench-cache.XXXXXX)"
chmod 755 "$TMP" # nginx workers (www-data) must reach their config dir
PGIDS=()         # process-group ids of everything started here
LAST_PID=""

start_bg() { # start_bg LOGFILE CMD... : run CMD in its own session and process group
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  LAST_PID=$!
  PGIDS+=("$LAST_PID")
}

stop_group() { # stop_group PGID : TERM the group, KILL it after 5 s
  local pg=$1 i
  kill -TERM -- "-$pg" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pg" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
  local keep=() p
  for p in "${PGIDS[@]}"; do [[ $p == "$pg" ]] || keep+=("$p"); done
  PGIDS=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
  local pg
  trap - EXIT INT TERM
  for pg in "${PGIDS[@]+"${PGIDS[@]}"}"; do stop_group "$pg"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

probe() { # probe PORT -> "STATUS SIZE CACHE" (CACHE: the X-Cache-Status or Cache-Status value)
  local hdr status size cache
  hdr=$(curl -s -m 2 -o /dev/null -D - -w 'SIZE %{size_download}\n' "http://127.0.0.1:$1/bench" 2>/dev/null | tr -d '\r') || true
  status=$(awk 'NR == 1 {print $2}' <<<"$hdr")
  size=$(awk '/^SIZE / {print $2}' <<<"$hdr")
  cache=$(awk 'tolower($1) == "x-cache-status:" || tolower($1) == "cache-status:" {$1 = ""; sub(/^ /, ""); print; exit}' <<<"$hdr")
  echo "${status:-000} ${size:-0} ${cache:--}"
}

wait_ok() { # wait_ok PORT PGID SECONDS -> 0 once GET answers 200
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    [[ $(probe "$1") == 200\ * ]] && return 0
    kill -0 -- "-$2" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

is_hit() { # is_hit CACHE-VALUE : nginx says HIT, Portico "portico; hit; ttl=N"
  [[ $1 == HIT || $1 =~ \;[[:space:]]*hit ]]
}

CLK_TCK=$(getconf CLK_TCK)
group_cpu_ticks() { # sum of utime+stime of the live processes of a group
  local pg=$1 total=0 f s
  local -a fields
  for f in /proc/[0-9]*/stat; do
    { read -r s <"$f"; } 2>/dev/null || continue
    s=${s##*) }
    read -r -a fields <<<"$s"
    [[ ${fields[2]} == "$pg" ]] && total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# --------------------------------------------------------------- configuration
NGINX_USER=""
if [[ $(id -u) -eq 0 ]]; then
  if id www-data >/dev/null 2>&1; then NGINX_USER="user www-data;"; else NGINX_USER="user nobody nogroup;"; fi
fi

write_upstream() { # nginx `return 200`: the 1024-byte JSON of ../shared/bench, cacheable for an hour
  local d=$1 body i
  body='{"status":"ok","service":"bench-upstream","items":['
  for ((i = 0; i < 12; i++)); do
    ((i > 0)) && body+=','
    body+="{\"id\":$i,\"name\":\"item-$i\",\"price\":12.34,\"tags\":[\"a\",\"b\"]}"
  done
  body+='],"pad":"'
  while ((${#body} < 1022)); do body+='x'; done
  body+='"}'
  cat <<EOF
$NGINX_USER
worker_processes 2;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    access_log off;
    server {
        listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
        location / {
            default_type application/json;
            add_header Cache-Control "public, max-age=3600" always;
            return 200 '$body';
        }
    }
}
EOF
}

write_lua() { # wrk script: a machine-readable summary
  cat <<'EOF'
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%d secs=%.3f rps=%.1f p50_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF
}
write_lua >"$TMP/summary.lua"

per_req() { # per_req TICKS REQUESTS -> CPU microseconds per request
  awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN{ if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "nan" }'
}

kv() { # kv KEY LINE -> the value of KEY=value in LINE
  local re=" $1=([^ ]+)"
  if [[ " $2" =~ $re ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}

run_wrk() { # run_wrk PORT SECONDS -> the WRKRESULT line
  timeout --foreground -k 5 $(($2 + 30)) wrk -t"$THREADS" -c"$CONNS" -d"$2"s --timeout 5s --latency \
    -s "$TMP/summary.lua" "http://127.0.0.1:$1/bench" 2>&1 | grep '^WRKRESULT' || true
}

# --------------------------------------------------------------------- targets
start_target() { # start_target NAME -> sets TARGET_PGID; 0 once it answers 200
  local t=$1 port=${PORT[$1]} d="$TMP/$1"
  TARGET_PGID=""
  rm -rf "$d"; mkdir -p "$d/cache"; chmod 755 "$d"
  [[ -n $NGINX_USER ]] && chmod 777 "$d/cache" # the workers write the cache files
  if port_busy "$port"; then echo "  port $port already in use: skipping $t" >&2; return 1; fi
  case $t in
    nginx-cache)
      sed -e "s|@USER@|$NGINX_USER|" -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
        bench/cache-nginx.conf.tmpl >"$d/nginx.conf"
      start_bg "$d/stderr.log" nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" ;;
    portico-cache | portico-plain)
      local cfg=bench/cache.yaml
      [[ $t == portico-plain ]] && cfg=bench/plain.yaml
      start_bg "$d/stderr.log" env BENCH_LISTEN="127.0.0.1:$port" BENCH_UPSTREAM="http://127.0.0.1:$UP_PORT" \
        "$ROOT/bin/portico" run -c "$ROOT/$cfg" ;;
  esac
  TARGET_PGID=$LAST_PID
  if ! wait_ok "$port" "$TARGET_PGID" 30; then
    echo "  $t did not answer 200 on port $port; last log lines:" >&2
    tail -n 15 "$d/stderr.log" "$d/error.log" 2>/dev/null | sed 's/^/    /' >&2 || true
    return 1
  fi
}

check_hit() { # check_hit NAME WHEN : a cache target's next answer must be a hit
  local t=$1 r size cache
  r=$(probe "${PORT[$t]}"); size=$(awk '{print $2}' <<<"$r"); cache=$(cut -d' ' -f3- <<<"$r")
  [[ ${r%% *} == 200 ]] || { echo "  $t $2: GET answered '$r' (want 200)" >&2; return 1; }
  ((size >= 1000 && size <= 1100)) || echo "  WARNING $t: body is $size bytes (the upstream sends 1024)" >&2
  [[ $t == portico-plain ]] && return 0
  is_hit "$cache" || { echo "  $t $2: cache header '$cache', want a hit" >&2; return 1; }
  echo "  $t $2: $cache"
}

# --------------------------------------------------------------------- startup
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
port_busy "$UP_PORT" && die "port $UP_PORT is already in use (set BENCH_BASE_PORT)"
mkdir -p "$TMP/upstream"; chmod 755 "$TMP/upstream"
write_upstream "$TMP/upstream" >"$TMP/upstream/nginx.conf"
start_bg "$TMP/upstream.log" nginx -p "$TMP/upstream/" -c "$TMP/upstream/nginx.conf" -e "$TMP/upstream/error.log"
UP_PGID=$LAST_PID
wait_ok "$UP_PORT" "$UP_PGID" 15 || { cat "$TMP/upstream.log" "$TMP/upstream/error.log" >&2 2>/dev/null; die "the upstream did not start"; }

echo "== cache-hit benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo "machine : $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r)"
echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $("$ROOT/bin/portico" version 2>/dev/null | head -n1 || echo "portico ?"), $(wrk -v 2>&1 | head -n1 | awk '{print "wrk/"$2}')"
echo "upstream: nginx return 200 on 127.0.0.1:$UP_PORT ($(probe "$UP_PORT" | awk '{print $2}') byte body, Cache-Control: public, max-age=3600)"
echo "wrk     : -t$THREADS -c$CONNS -d${DURATION}s --timeout 5s --latency (warm-up ${WARMUP}s each, $REPEATS round(s))"
echo "targets : $TARGETS"
echo

RUNS="$TMP/runs.txt"; : >"$RUNS"
declare -A FAILED=()
for ((r = 1; r <= REPEATS; r++)); do
  for t in $TARGETS; do
    [[ -n ${FAILED[$t]:-} ]] && continue
    echo "-- round $r/$REPEATS: $t (port ${PORT[$t]})"
    ok=1
    if start_target "$t"; then
      probe "${PORT[$t]}" >/dev/null # the miss that fills the cache
      check_hit "$t" "before the run" || ok=""
    else
      ok=""
    fi
    if [[ -z $ok ]]; then
      FAILED[$t]=1
      [[ -n $TARGET_PGID ]] && stop_group "$TARGET_PGID"
      echo "  $t: FAILED, excluded from results"
      continue
    fi
    ((WARMUP > 0)) && run_wrk "${PORT[$t]}" "$WARMUP" >/dev/null
    c0=$(group_cpu_ticks "$TARGET_PGID"); u0=$(group_cpu_ticks "$UP_PGID")
    line=$(run_wrk "${PORT[$t]}" "$DURATION")
    c1=$(group_cpu_ticks "$TARGET_PGID"); u1=$(group_cpu_ticks "$UP_PGID")
    check_hit "$t" "after the run" || echo "  WARNING $t: not a hit after the run" >&2
    stop_group "$TARGET_PGID"
    if [[ -z $line ]]; then echo "  $t: wrk produced no result"; continue; fi
    requests=$(kv requests "$line"); rps=$(kv rps "$line"); p50_us=$(kv p50_us "$line")
    p99_us=$(kv p99_us "$line"); errors=$(kv errors "$line"); non2xx=$(kv non2xx "$line")
    cpu_us=$(per_req $((c1 - c0)) "$requests"); up_us=$(per_req $((u1 - u0)) "$requests")
    echo "$t $r $rps $p50_us $p99_us $((errors + non2xx)) $cpu_us $up_us" >>"$RUNS"
    printf '  RUN target=%s round=%d rps=%s p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d cpu_us_per_req=%s upstream_cpu_us_per_req=%s\n' \
      "$t" "$r" "$rps" "$(awk -v x="$p50_us" 'BEGIN{print x/1000}')" "$(awk -v x="$p99_us" 'BEGIN{print x/1000}')" \
      "$errors" "$non2xx" "$cpu_us" "$up_us"
    sleep 1
  done
done

# --------------------------------------------------------------------- summary
median() { sort -g | awk '{a[NR]=$1} END{ if (NR == 0) {print "nan"; exit} if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
col() { awk -v t="$1" -v c="$2" '$1 == t {print $c}' "$RUNS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

out="$TMP/results.txt"
{
  echo "== results (median of $REPEATS round(s); cpu = the target's CPU time per request; upstream = the upstream's)"
  printf '%-14s %10s %9s %9s %11s %12s %7s %s\n' target rps p50_ms p99_ms cpu_us/req upstream_us errors "rps min..max"
  declare -A RPS=() CPU=()
  for t in $TARGETS; do
    if [[ -z $(col "$t" 3) ]]; then printf '%-14s %10s\n' "$t" FAILED; continue; fi
    RPS[$t]=$(col "$t" 3 | median); CPU[$t]=$(col "$t" 7 | median)
    p50=$(col "$t" 4 | median); p99=$(col "$t" 5 | median); up=$(col "$t" 8 | median)
    errs=$(col "$t" 6 | awk '{s+=$1} END{print s+0}')
    lo=$(col "$t" 3 | sort -g | head -n1); hi=$(col "$t" 3 | sort -g | tail -n1)
    printf '%-14s %10.0f %9.3f %9.3f %11s %12s %7s %.0f..%.0f\n' "$t" "${RPS[$t]}" \
      "$(awk -v x="$p50" 'BEGIN{print x/1000}')" "$(awk -v x="$p99" 'BEGIN{print x/1000}')" \
      "${CPU[$t]}" "$up" "$errs" "$lo" "$hi"
  done
  echo
  echo "portico-cache / nginx-cache  : rps $(ratio "${RPS[portico-cache]:-}" "${RPS[nginx-cache]:-}"), cpu per request $(ratio "${CPU[portico-cache]:-}" "${CPU[nginx-cache]:-}")"
  echo "portico-cache / portico-plain: rps $(ratio "${RPS[portico-cache]:-}" "${RPS[portico-plain]:-}"), cpu per request $(ratio "${CPU[portico-cache]:-}" "${CPU[portico-plain]:-}")"
  echo
  echo "note: wrk, the targets and the upstream share the same $(nproc) CPUs; compare within one run."
} | tee "$out"

if [[ ${BENCH_NO_RECORD:-} != 1 ]]; then
  {
    echo
    echo "### Cache hits: Portico vs NGINX proxy_cache, $(date -u +%Y-%m-%d) ($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
    echo
    echo "\`scripts/bench-cache.sh\` (\`make bench-cache\`): wrk -t$THREADS -c$CONNS -d${DURATION}s against one URL"
    echo "already cached (1 KB JSON, \`Cache-Control: public, max-age=3600\`), $REPEATS interleaved round(s)."
    echo
    echo '```'
    cat "$out"
    echo '```'
  } >>docs/benchmarks.md
  echo "appended the results to docs/benchmarks.md"
fi
