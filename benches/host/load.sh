#!/usr/bin/env bash
# Load benchmark of mmm-host: wrk drives POST /v1/mmm/decide on the bundled playbooks with
# receipt signing on (group commit), 64 connections, first against the embedded default
# (SQLite in a fresh data directory), then against PostgreSQL (+ Redis) when URLs are given.
#
#   benches/host/load.sh [DURATION]            # default 30s
#
# Environment:
#   MMM_HOST_BIN           the mmm-host binary (default: build target/release/mmm-host)
#   MMM_LOAD_CONNECTIONS   connections (default 64)
#   MMM_LOAD_THREADS       wrk threads (default 2)
#   MMM_LOAD_POSTGRES_URL  also run against this PostgreSQL database (used as is: give a
#                          scratch database)
#   MMM_LOAD_REDIS_URL     with PostgreSQL: fatigue in this Redis (when the host has
#                          --redis-url)
#
# Prints wrk's report (requests/s, latency percentiles) per backend; exits non-zero when
# any decision did not answer 200.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration="${1:-30s}"
connections="${MMM_LOAD_CONNECTIONS:-64}"
threads="${MMM_LOAD_THREADS:-2}"

if ! command -v wrk >/dev/null; then
    echo "wrk is missing; installing it (apt-get install -y wrk)" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

bin="${MMM_HOST_BIN:-}"
if [[ -z "$bin" ]]; then
    (cd "$root" && cargo build --release -p mmm-host >&2)
    bin="$root/target/release/mmm-host"
fi

work="$(mktemp -d)"
host_pid=""
cleanup() {
    if [[ -n "$host_pid" ]] && kill -0 "$host_pid" 2>/dev/null; then
        kill -TERM "$host_pid" 2>/dev/null || true
        wait "$host_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A receipt signing key in the format `mmm keygen` writes (64 hex digits).
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/receipts.key"
chmod 600 "$work/receipts.key"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run NAME [extra host flags…]
run() {
    local name="$1"
    shift
    local data="$work/data-$name"
    local port
    port="$(free_port)"
    mkdir -p "$data"
    RUST_LOG="${RUST_LOG:-warn}" "$bin" --listen "127.0.0.1:$port" --data-dir "$data" \
        --seed-playbooks "$root/playbooks" --signing-key-file "$work/receipts.key" \
        --log-format text "$@" >"$work/$name.out" 2>"$work/$name.err" &
    host_pid=$!
    local base="http://127.0.0.1:$port/v1/mmm"
    for _ in $(seq 1 600); do
        if curl -fsS "$base/ready" >/dev/null 2>&1; then break; fi
        if ! kill -0 "$host_pid" 2>/dev/null; then
            echo "mmm-host ($name) exited:" >&2
            cat "$work/$name.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    curl -fsS "$base/ready" >/dev/null
    local token
    token="$(MMM_DATA_DIR="$data" "$bin" token --tenant acme --role service --actor load --ttl 1h --data-dir "$data")"
    echo "== $name: $connections connections, $threads threads, $duration, signing on"
    local report="$work/$name.wrk"
    MMM_LOAD_TOKEN="$token" MMM_LOAD_SIGNALS="$root/examples/signals" \
        wrk --latency -t "$threads" -c "$connections" -d "$duration" \
        -s "$here/decide.lua" "http://127.0.0.1:$port" | tee "$report"
    kill -TERM "$host_pid"
    wait "$host_pid" || { echo "mmm-host ($name) did not exit 0 on SIGTERM" >&2; exit 1; }
    host_pid=""
    if grep -q "Non-2xx or 3xx responses" "$report"; then
        echo "$name: some decisions did not answer 200" >&2
        exit 1
    fi
}

run sqlite

if [[ -n "${MMM_LOAD_POSTGRES_URL:-}" ]]; then
    flags=(--database-url "$MMM_LOAD_POSTGRES_URL")
    if [[ -n "${MMM_LOAD_REDIS_URL:-}" ]]; then
        if "$bin" --help | grep -q -- '--redis-url'; then
            flags+=(--redis-url "$MMM_LOAD_REDIS_URL")
        else
            echo "note: this mmm-host has no --redis-url; fatigue stays in the process" >&2
        fi
    fi
    run postgres "${flags[@]}"
fi
