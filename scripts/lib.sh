# Shared by the benchmark and load scripts in this folder; sourced, never run.
#
# Builds the release binaries, starts the simulator and the service on free loopback ports,
# waits for them by polling, reads a process's memory, and stops everything it started when
# the sourcing script exits (the trap is set here).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release}"
SOURCES=(safebooru danbooru gelbooru yandere konachan tbib)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/anya-bench.XXXXXX")"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "${KEEP_LOGS:-}" ]]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Installs a Debian package's command when it is missing (the scripts need curl, jq, wrk).
need() {
    local command="$1" package="${2:-$1}"
    command -v "$command" >/dev/null && return
    log "installing $package"
    if [[ $(id -u) -eq 0 ]]; then
        apt-get install -y -qq "$package" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$package" >/dev/null; }
    else
        sudo apt-get install -y -qq "$package" >/dev/null
    fi
}

# Builds the service and the simulator (and any extra cargo arguments) with the release
# profile, unless NO_BUILD is set (to measure binaries built earlier).
build() {
    if [[ -n "${NO_BUILD:-}" ]]; then
        log "NO_BUILD set: using the binaries already in $BIN"
        return
    fi
    log "cargo build --release $*"
    (cd "$ROOT" && cargo build --release --quiet -p anya-image-api -p anya-sim --bins "$@")
}

# A loopback port nobody listens on.
free_port() {
    local port
    while true; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Polls URL until it answers 200, for at most SECONDS (default 30); fails after that.
wait_ready() {
    local url="$1" seconds="${2:-30}" deadline
    deadline=$(($(date +%s) + seconds))
    until curl -fs -o /dev/null "$url"; do
        if (($(date +%s) >= deadline)); then
            log "no answer from $url within ${seconds}s"
            return 1
        fi
        sleep 0.05
    done
}

# Starts the simulator with ARGS on a free port; sets SIM_PORT and SIM_PID.
start_sim() {
    SIM_PORT=$(free_port)
    "$BIN/anya-sim" --port "$SIM_PORT" "$@" >"$WORK/sim.log" 2>&1 &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
    wait_ready "http://127.0.0.1:$SIM_PORT/_sim/healthz" 60
    log "simulator on port $SIM_PORT ($*)"
}

# Starts the service pointed at the simulator, with extra NAME=VALUE environment settings;
# sets SVC_PORT, SVC_PID and SVC.
start_service() {
    SVC_PORT=$(free_port)
    local env=(PORT="$SVC_PORT" ANYA_SERVER__HOST=127.0.0.1 LOG_FORMAT=json RUST_LOG="${SERVICE_LOG:-info}")
    local source
    for source in "${SOURCES[@]}"; do
        env+=("ANYA_SOURCES__${source^^}__BASE_URL=http://127.0.0.1:$SIM_PORT/$source")
    done
    env "${env[@]}" "$@" "$BIN/anya-image-api" >"$WORK/service.log" 2>&1 &
    SVC_PID=$!
    PIDS+=("$SVC_PID")
    SVC="http://127.0.0.1:$SVC_PORT"
    wait_ready "$SVC/healthz" 30
    log "service on port $SVC_PORT (pid $SVC_PID)"
}

# A field of /proc/PID/status in MiB, e.g. `mem_mib "$SVC_PID" VmRSS`.
mem_mib() {
    awk -v field="$2:" '$1 == field { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# CPU time (user + system) PID has used, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Seconds since the epoch with nanoseconds, for timing.
now() { date +%s.%N; }

# The machine, for the record.
machine() {
    echo "machine: $(nproc) cores, $(free -h | awk '/^Mem:/ { print $2 }') memory," \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
