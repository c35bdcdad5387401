#!/usr/bin/env bash
# Load: hundreds of concurrent clients mixing cached and cold searches against a simulator
# with faults switched on. Bounded: a fixed number of requests, each with a timeout.
#
# Starts the simulator (standard world, 20-80 ms latency) and the service (rates raised to
# RATE per second per source so that cold searches do not queue for minutes behind the
# real boards' pacing; search deadline DEADLINE seconds), warms the cache with the popular
# searches, then switches faults on through the simulator's control API:
#
#   danbooru   every request for page 2 answers 503 (retried, then the source is partial)
#   gelbooru   every request for pid 3 resets the connection
#   yandere    the next 40 requests answer 429 with Retry-After: 1
#   konachan   every tag look-up answers malformed JSON
#   tbib       the next 5 requests hang until the search deadline
#   safebooru  the next 30 requests answer a Cloudflare challenge page
#
# Then it runs ROUNDS rounds of REQUESTS requests with CONCURRENCY clients (the load
# client in sim/examples/load.rs): about 70 % cached searches (popular questions, any page),
# the rest cold: unknown characters (discovery on six sources, no pages), `fresh=true`
# searches and popular characters with a max_pages never asked before. It checks that
# every request was answered, none with a 5xx, and that resident memory after the last
# round is within MARGIN_MIB of memory after the first (flat once the cache is warm).
#
# Usage: scripts/load-test.sh   (env: ROUNDS=2, REQUESTS=3000, CONCURRENCY=300, RATE=200,
#        DEADLINE=10, TIMEOUT=60, MARGIN_MIB=32)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS="${ROUNDS:-2}"
REQUESTS="${REQUESTS:-3000}"
CONCURRENCY="${CONCURRENCY:-300}"
RATE="${RATE:-200}"
DEADLINE="${DEADLINE:-10}"
TIMEOUT="${TIMEOUT:-60}"
MARGIN_MIB="${MARGIN_MIB:-32}"

need curl
need jq
build --example load
start_sim --latency-ms 20-80
settings=(ANYA_SEARCH__DEADLINE_SECS="$DEADLINE" RUST_LOG=warn)
for source in "${SOURCES[@]}"; do
    settings+=("ANYA_SOURCES__${source^^}__RATE_PER_SEC=$RATE")
done
start_service "${settings[@]}"
machine

POPULAR=(
    "character=Anya+Forger&series=Spy+x+Family"
    "character=anya_(spy_x_family)"
    "character=Yor+Briar&series=Spy+x+Family"
    "character=Loid+Forger"
    "character=Anya+Starling&series=Neon+Idols"
    "character=Anya+Forger&sources=danbooru,yandere&rating=general"
)

log "warming the cache with ${#POPULAR[@]} popular searches"
for query in "${POPULAR[@]}"; do
    curl -fs -o /dev/null "$SVC/v1/search?$query"
done

fault() {
    curl -fs -X POST "http://127.0.0.1:$SIM_PORT/_sim/faults" \
        -H 'Content-Type: application/json' -d "$1"
}
fault '{"source":"danbooru","rule":{"fault":{"status":503},"param":["page","2"]}}'
fault '{"source":"gelbooru","rule":{"fault":"reset","param":["pid","3"]}}'
fault '{"source":"yandere","rule":{"fault":{"too_many_requests":{"retry_after":"1"}},"times":40}}'
fault '{"source":"konachan","rule":{"fault":"malformed","path_contains":"tag.json"}}'
fault '{"source":"tbib","rule":{"fault":"hang","times":5}}'
fault '{"source":"safebooru","rule":{"fault":"challenge","times":30}}'
log "faults on"

# The request targets of round $1, shuffled: cached and cold searches mixed.
targets() {
    local round="$1" i query
    for ((i = 0; i < REQUESTS; i++)); do
        case $((i % 10)) in
        0) echo "/v1/search?character=Nobody+${round}x$i" ;;
        1) echo "/v1/search?${POPULAR[$((i % ${#POPULAR[@]}))]}&fresh=true&per_page=5" ;;
        2) echo "/v1/search?character=Anya+Forger&max_pages=$((1 + (round * REQUESTS + i) % 97))" ;;
        *)
            query="${POPULAR[$((i % ${#POPULAR[@]}))]}"
            echo "/v1/search?$query&page=$((1 + i % 5))&per_page=$((20 + i % 80))"
            ;;
        esac
    done | shuf
}

before=$(mem_mib "$SVC_PID" VmRSS)
echo "VmRSS before the load: $before MiB"
failed=0
for round in $(seq "$ROUNDS"); do
    summary=$(targets "$round" | "$BIN/examples/load" --base "$SVC" \
        --concurrency "$CONCURRENCY" --timeout-secs "$TIMEOUT") || failed=1
    sleep 1
    rss=$(mem_mib "$SVC_PID" VmRSS)
    echo "round $round: $summary"
    echo "round $round: VmRSS $rss MiB, peak VmHWM $(mem_mib "$SVC_PID" VmHWM) MiB"
    [[ $round -eq 1 ]] && after_first="$rss"
done
faulted=$(curl -fs "http://127.0.0.1:$SIM_PORT/_sim/requests" | jq '[.[] | select(.status >= 400 or .status == 0)] | length')
echo "upstream requests that were faulted: $faulted"
errors=$(grep -c '"level":"ERROR"' "$WORK/service.log" || true)
echo "service log lines at error: $errors"
if ! kill -0 "$SVC_PID" 2>/dev/null; then
    echo "FAIL: the service died"
    exit 1
fi
growth=$(awk -v a="$after_first" -v b="$rss" 'BEGIN { printf "%.1f", b - a }')
echo "memory after the last round vs after the first: $growth MiB (margin $MARGIN_MIB MiB)"
if awk -v g="$growth" -v m="$MARGIN_MIB" 'BEGIN { exit !(g > m) }'; then
    echo "FAIL: memory grew by more than the margin"
    failed=1
fi
if ((failed)); then
    echo "FAIL: a request went unanswered, timed out or got a 5xx (see the summaries)"
    exit 1
fi
echo "PASS: every request answered, no 5xx, memory flat"
