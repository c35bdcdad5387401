#!/usr/bin/env bash
# Throughput: a cached /v1/search against /healthz, with wrk at 64 connections, same run.
#
# Starts the simulator (standard world, no latency) and the service, fills the cache with
# one search (per_page=100, about 130 kB of JSON per answer), checks that the next answer
# is cached, then alternates ROUNDS wrk runs of /healthz and of the cached search, DURATION
# seconds each. Prints requests per second, the ratio cached / healthz of each round, and
# the service's CPU time per request (from /proc, steadier than requests per second when
# the machine is shared).
#
# Usage: scripts/bench-throughput.sh   (env: ROUNDS=3, DURATION=10, CONNECTIONS=64,
#        THREADS=2, PER_PAGE=100)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PER_PAGE="${PER_PAGE:-100}"
SEARCH="/v1/search?character=Anya+Forger&series=Spy+x+Family&per_page=$PER_PAGE"

need curl
need jq
need wrk
build
start_sim
start_service
machine

curl -fs "$SVC$SEARCH" >/dev/null
cached=$(curl -fs "$SVC$SEARCH" | jq '.cached')
bytes=$(curl -fs -o /dev/null -w '%{size_download}' "$SVC$SEARCH")
[[ "$cached" == true ]] || { echo "FAIL: the second search was not cached"; exit 1; }
log "cached search answer: $bytes bytes"

# Runs wrk on PATH; prints "requests_per_sec cpu_us_per_request".
measure() {
    local path="$1" before after out requests rps
    before=$(cpu_ticks "$SVC_PID")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$SVC$path")
    after=$(cpu_ticks "$SVC_PID")
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "FAIL: non-2xx answers from $path" >&2
        echo "$out" >&2
        exit 1
    fi
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    awk -v rps="$rps" -v n="$requests" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f %.1f\n", rps, ticks / hz / n * 1e6 }'
}

worst=""
for round in $(seq "$ROUNDS"); do
    read -r health_rps health_cpu < <(measure /healthz)
    read -r search_rps search_cpu < <(measure "$SEARCH")
    ratio=$(awk -v a="$search_rps" -v b="$health_rps" 'BEGIN { printf "%.3f", a / b }')
    printf 'round %d: /healthz %s req/s (%s us CPU/req), cached search %s req/s (%s us CPU/req): ratio %s\n' \
        "$round" "$health_rps" "$health_cpu" "$search_rps" "$search_cpu" "$ratio"
    worst=$(awk -v a="$ratio" -v w="${worst:-$ratio}" 'BEGIN { print (a < w ? a : w) }')
done
if awk -v w="$worst" 'BEGIN { exit !(w >= 0.5) }'; then
    echo "PASS: cached search at least half of /healthz in every round (lowest ratio $worst)"
else
    echo "FAIL: lowest ratio $worst is under 0.5"
    exit 1
fi
