#!/usr/bin/env bash
# Fan-out efficiency: how close a cold search comes to the rate-limit bound.
#
# Starts the simulator (standard world, every request delayed 100-300 ms) and the service
# with its default "mass production" rates, then runs RUNS cold searches (fresh=true, so
# neither results nor tag discoveries come from the cache). For each it reads the requests
# the simulator recorded and computes the bound any client keeping the rates could reach:
#
#     bound = max over sources (requests to the source / its rate_per_sec) + one round trip
#
# with one round trip taken as the mean simulated latency (200 ms). It prints cold / bound
# and checks that the sources ran concurrently: every source's first request arrives within
# SPREAD_MS of the search's first request, long before any source is done.
#
# Usage: scripts/bench-fanout.sh   (env: RUNS=3, LATENCY=100-300, SPREAD_MS=500)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS="${RUNS:-3}"
LATENCY="${LATENCY:-100-300}"
SPREAD_MS="${SPREAD_MS:-500}"
QUERY="character=Anya+Forger&series=Spy+x+Family&per_page=1&fresh=true"

need curl
need jq
build
start_sim --latency-ms "$LATENCY"
start_service
machine

round_trip_ms=$(awk -F- '{ max = ($2 == "" ? $1 : $2); print ($1 + max) / 2 }' <<<"$LATENCY")
rates=$(curl -fs "$SVC/v1/sources" | jq -c '.sources | map({(.id): .rate_per_sec}) | add')
failed=0
for run in $(seq "$RUNS"); do
    curl -fs -X DELETE "http://127.0.0.1:$SIM_PORT/_sim/requests"
    started=$(now)
    answer=$(curl -fs "$SVC/v1/search?$QUERY")
    cold=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    requests=$(curl -fs "http://127.0.0.1:$SIM_PORT/_sim/requests")
    report=$(jq -n --argjson rates "$rates" --argjson requests "$requests" \
        --argjson answer "$answer" --argjson rtt "$round_trip_ms" --argjson cold "$cold" \
        --argjson spread "$SPREAD_MS" '
        ($requests | map(.at_ms) | min) as $t0
        | [$requests | group_by(.source)[] | {
              source: .[0].source,
              requests: length,
              rate: $rates[.[0].source],
              first_ms: ((map(.at_ms) | min) - $t0),
              last_ms: ((map(.at_ms) | max) - $t0),
              status: $answer.sources[.[0].source].status,
              pages: $answer.sources[.[0].source].pages,
              elapsed_ms: $answer.sources[.[0].source].elapsed_ms
          } | . + { need_s: (.requests / .rate) }] as $rows
        | ($rows | map(.need_s) | max) as $slowest
        | ($slowest + $rtt / 1000) as $bound
        | {
            rows: $rows,
            cold_s: $cold,
            bound_s: $bound,
            ratio: ($cold / $bound),
            first_spread_ms: ($rows | map(.first_ms) | max),
            earliest_finish_ms: ($rows | map(.last_ms) | min),
            concurrent: (($rows | map(.first_ms) | max) <= $spread
                and ($rows | map(.first_ms) | max) < ($rows | map(.last_ms) | min)),
            all_ok: ($rows | all(.status == "ok"))
          }')
    echo "run $run:"
    jq -r '.rows[] | "  \(.source | .+"          " | .[:10]) requests \(.requests) at \(.rate)/s = \(.need_s * 100 | round / 100) s   first at \(.first_ms) ms, last at \(.last_ms) ms, \(.pages) pages, \(.status)"' <<<"$report"
    jq -r '"  cold \(.cold_s) s, bound \(.bound_s * 1000 | round / 1000) s, cold/bound = \(.ratio * 1000 | round / 1000); sources started within \(.first_spread_ms) ms (earliest source done at \(.earliest_finish_ms) ms): concurrent=\(.concurrent)"' <<<"$report"
    if ! jq -e '.ratio <= 1.25 and .concurrent and .all_ok' <<<"$report" >/dev/null; then
        failed=1
    fi
done
if ((failed)); then
    echo "FAIL: a run was over 1.25 x the bound, not concurrent, or not ok"
    exit 1
fi
echo "PASS: every run within 1.25 x the rate-limit bound, sources concurrent"
