#!/usr/bin/env bash
# Cold start: time from exec to the first 200 from /healthz, and the binary's size.
#
# Starts the release binary RUNS times with the built-in configuration (no upstream is
# contacted at start, so no simulator is needed), polls /healthz every POLL_MS
# milliseconds from the moment of exec, and stops it again. Prints each time, the median
# and the slowest, and the size of the stripped binary.
#
# Usage: scripts/bench-coldstart.sh   (env: RUNS=10, POLL_MS=2)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS="${RUNS:-10}"
POLL_MS="${POLL_MS:-2}"
POLL_SECS=$(awk -v ms="$POLL_MS" 'BEGIN { print ms / 1000 }')

need curl
build
machine
binary="$BIN/anya-image-api"
size=$(stat -c %s "$binary")
echo "binary: $binary, $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB), $(file -b "$binary" 2>/dev/null | grep -o 'stripped\|not stripped' || echo 'strip state unknown')"

times=()
for run in $(seq "$RUNS"); do
    port=$(free_port)
    started=$(now)
    PORT="$port" ANYA_SERVER__HOST=127.0.0.1 LOG_FORMAT=json "$binary" >"$WORK/start-$run.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    until curl -fs -o /dev/null "http://127.0.0.1:$port/healthz"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "FAIL: the service exited; its log:"
            cat "$WORK/start-$run.log"
            exit 1
        fi
        sleep "$POLL_SECS"
    done
    ms=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
    rss=$(mem_mib "$pid" VmRSS)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    times+=("$ms")
    echo "run $run: first /healthz 200 after $ms ms (RSS then $rss MiB)"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }' <<<"$sorted")
slowest=$(tail -1 <<<"$sorted")
echo "cold start: median $median ms, slowest $slowest ms over $RUNS runs"
if awk -v s="$slowest" 'BEGIN { exit !(s < 1000) }'; then
    echo "PASS: every start under a second"
else
    echo "FAIL: a start took a second or more"
    exit 1
fi
