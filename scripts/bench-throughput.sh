#!/usr/bin/env bash
# Throughput: a cached /v1/search against /healthz, with wrk at 64 connections, same run.
#
# Starts the simulator (standard world, no latency) and the service, fills the cache with
# one search (per_page=100, about 130 kB of JSON per answer), checks that the next answer
# is cached, then alternates ROUNDS rounds of wrk runs, DURATION seconds each: /healthz,
# the cached search as plain JSON (no Accept-Encoding, as curl asks), and the cached
# search with `Accept-Encoding: gzip, deflate` (as the chat bot's Python HTTP library
# asks). /healthz is measured with the same header as the gzip run, so the two ratios
# compare like with like. Prints requests per second, the ratios cached / healthz of each
# round, and the service's CPU time per request (from /proc, steadier than requests per
# second when the machine is shared).
#
# Passes when the gzip ratio, the answer real clients get, is at least 0.5 in every round.
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
GZIP="Accept-Encoding: gzip, deflate"
bytes=$(curl -fs -o /dev/null -w '%{size_download}' "$SVC$SEARCH")
gzip_bytes=$(curl -fs -o /dev/null -w '%{size_download}' -H "$GZIP" "$SVC$SEARCH")
[[ "$cached" == true ]] || { echo "FAIL: the second search was not cached"; exit 1; }
cmp <(curl -fs "$SVC$SEARCH" | jq -S 'del(.elapsed_ms)') \
    <(curl -fs -H "$GZIP" "$SVC$SEARCH" | gunzip | jq -S 'del(.elapsed_ms)') >/dev/null ||
    { echo "FAIL: the gzip answer does not inflate to the plain one"; exit 1; }
log "cached search answer: $bytes bytes plain, $gzip_bytes bytes gzip"

# Runs wrk on PATH with any extra wrk arguments; prints "requests_per_sec cpu_us_per_request".
measure() {
    local path="$1" before after out requests rps
    shift
    before=$(cpu_ticks "$SVC_PID")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$SVC$path")
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
    read -r health_rps health_cpu < <(measure /healthz -H "$GZIP")
    read -r plain_rps plain_cpu < <(measure "$SEARCH")
    read -r gzip_rps gzip_cpu < <(measure "$SEARCH" -H "$GZIP")
    plain_ratio=$(awk -v a="$plain_rps" -v b="$health_rps" 'BEGIN { printf "%.3f", a / b }')
    gzip_ratio=$(awk -v a="$gzip_rps" -v b="$health_rps" 'BEGIN { printf "%.3f", a / b }')
    printf 'round %d: /healthz %s req/s (%s us CPU/req); cached search plain %s req/s (%s us CPU/req, ratio %s), gzip %s req/s (%s us CPU/req, ratio %s)\n' \
        "$round" "$health_rps" "$health_cpu" "$plain_rps" "$plain_cpu" "$plain_ratio" \
        "$gzip_rps" "$gzip_cpu" "$gzip_ratio"
    worst=$(awk -v a="$gzip_ratio" -v w="${worst:-$gzip_ratio}" 'BEGIN { print (a < w ? a : w) }')
done
if awk -v w="$worst" 'BEGIN { exit !(w >= 0.5) }'; then
    echo "PASS: cached gzip search at least half of /healthz in every round (lowest ratio $worst)"
else
    echo "FAIL: lowest gzip ratio $worst is under 0.5"
    exit 1
fi
