#!/usr/bin/env bash
# Memory: resident memory during a 600-page search, and with the cache full.
#
# Starts the simulator with its big world (POSTS Anya posts on each of the six sources) and
# the service with every source's page_size at PAGE_SIZE, so that a search with
# max_pages=100 needs 100 pages from every source: 600 pages in flight or queued, of
# PAGE_SIZE posts each. Rates are raised to RATE per second per source (the simulator is
# local; faster pacing means more pages parsed at once, the harder case for memory); the
# concurrency stays as configured.
#
# Phase 1: one cold search; VmHWM (the kernel's peak resident set) and VmRSS after it.
# Phase 2: more cold searches (max_pages 99, 98, ... so each is its own cache entry of
# about the same size) until the cache has evicted FILL_EVICTIONS times, i.e. it is full
# at cache.max_bytes; then VmRSS and VmHWM again.
#
# Targets: phase 1 peak < 128 MiB; phase 2 resident < cache.max_bytes + 128 MiB.
#
# PAGE_SIZE=default keeps each source's configured page size (1000 on four of them), for
# the very popular character: POSTS=100000 PAGE_SIZE=default FILL_EVICTIONS=0 measures a
# search that search.max_images stops; PEAK_LIMIT_MIB sets phase 1's target.
#
# Usage: scripts/bench-memory.sh   (env: POSTS=10000, PAGE_SIZE=100, RATE=50,
#        FILL_EVICTIONS=3, PEAK_LIMIT_MIB=128, extra service settings as ANYA_* variables)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

POSTS="${POSTS:-10000}"
PAGE_SIZE="${PAGE_SIZE:-100}"
RATE="${RATE:-50}"
FILL_EVICTIONS="${FILL_EVICTIONS:-3}"
PEAK_LIMIT_MIB="${PEAK_LIMIT_MIB:-128}"
QUERY="character=Anya+Forger&series=Spy+x+Family&per_page=1"

need curl
need jq
build
start_sim --world big --posts-per-source "$POSTS"
settings=(ANYA_SEARCH__DEADLINE_SECS=300)
for source in "${SOURCES[@]}"; do
    [[ "$PAGE_SIZE" == default ]] || settings+=("ANYA_SOURCES__${source^^}__PAGE_SIZE=$PAGE_SIZE")
    settings+=("ANYA_SOURCES__${source^^}__RATE_PER_SEC=$RATE")
done
start_service "${settings[@]}"
machine

# The value of an anya_cache_* metric.
metric() {
    curl -fs "$SVC/metrics" | awk -v name="anya_cache_$1" '$1 == name { print $2 }'
}

# One cold search with max_pages=$1; prints a one-line summary of it.
search() {
    curl -fs "$SVC/v1/search?$QUERY&max_pages=$1" | jq -r \
        '"total \(.total) images, truncated=\(.truncated), \([.sources[].pages] | add) pages, \([.sources[].posts] | add) posts, \(.elapsed_ms) ms, partial=\(.partial)"'
}

# The built-in cache.max_bytes unless the caller set it.
max_bytes="${ANYA_CACHE__MAX_BYTES:-134217728}"
echo "idle after start: VmRSS $(mem_mib "$SVC_PID" VmRSS) MiB"

echo "phase 1: search with max_pages=100: $(search 100)"
peak=$(mem_mib "$SVC_PID" VmHWM)
echo "phase 1: peak VmHWM $peak MiB, VmRSS after $(mem_mib "$SVC_PID" VmRSS) MiB," \
    "cache $(awk -v b="$(metric weighted_bytes)" 'BEGIN { printf "%.1f", b / 1048576 }') MiB as weighed"

pages=99
while (($(metric evictions_total) < FILL_EVICTIONS)) && ((pages > 1)); do
    echo "phase 2: search with max_pages=$pages: $(search "$pages")"
    pages=$((pages - 1))
done
sleep 1
full_rss=$(mem_mib "$SVC_PID" VmRSS)
full_peak=$(mem_mib "$SVC_PID" VmHWM)
weighed=$(awk -v b="$(metric weighted_bytes)" 'BEGIN { printf "%.1f", b / 1048576 }')
bound=$(awk -v m="$max_bytes" 'BEGIN { printf "%.1f", m / 1048576 + 128 }')
echo "phase 2: cache full: $(metric entries) entries, $weighed MiB as weighed, $(metric evictions_total) evictions"
echo "phase 2: VmRSS $full_rss MiB, peak VmHWM $full_peak MiB (bound: cache.max_bytes + 128 MiB = $bound MiB)"

failed=0
awk -v p="$peak" -v l="$PEAK_LIMIT_MIB" 'BEGIN { exit !(p < l) }' ||
    { echo "FAIL: phase 1 peak $peak MiB >= $PEAK_LIMIT_MIB MiB"; failed=1; }
awk -v p="$full_peak" -v b="$bound" 'BEGIN { exit !(p < b) }' ||
    { echo "FAIL: phase 2 peak $full_peak MiB >= $bound MiB"; failed=1; }
((failed)) && exit 1
echo "PASS: phase 1 search under $PEAK_LIMIT_MIB MiB; full cache under cache.max_bytes + 128 MiB"
