#!/usr/bin/env bash
# Soak of mmm-host (benches/host/soak.py): two replicas on PostgreSQL + Redis, 16 clients
# rotating decide (the bundled example signals, and pings of a `max: 1` playbook),
# preferences (PUT then GET) and outcomes, a new playbook version published every 20 s,
# replica b killed with SIGKILL and restarted at 30 % and 60 % of the run. Prints the
# figures and exits non-zero when a receipt of an answered decision is missing from the
# export (or a chain has a gap), an actor got two nudges past `max: 1`, the RSS of
# replica a grew more than 10 % (from minute 2; runs shorter than 10 minutes get 30 s of
# warm-up load first and compare from 20 % of the rest), or a live replica answered 500.
#
#   benches/host/soak.sh [DURATION]      # default 10m; CI: benches/host/soak.sh 60s
#
# Environment:
#   MMM_SOAK_POSTGRES_URL  a PostgreSQL server URL (required): a fresh database
#                          `mmm_soak_<random>` is created on it and dropped afterwards
#   MMM_SOAK_REDIS_URL     Redis (required); the run's tenant is fresh, and its keys are
#                          deleted afterwards (with redis-cli)
#   MMM_HOST_BIN           the mmm-host binary (default: by MMM_SOAK_PROFILE)
#   MMM_SOAK_PROFILE       release or debug (default: release when target/release/mmm-host
#                          exists, else debug, built when missing)
#   MMM_SOAK_WORKERS       concurrent clients (default 16)
#   MMM_PROOF_VENV         the Python virtualenv for the client (default .venv-proof)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration="${1:-10m}"
case "$duration" in
    *h) seconds=$((${duration%h} * 3600)) ;;
    *m) seconds=$((${duration%m} * 60)) ;;
    *s) seconds=${duration%s} ;;
    *) seconds=$duration ;;
esac

pg="${MMM_SOAK_POSTGRES_URL:-}"
redis="${MMM_SOAK_REDIS_URL:-}"
if [[ -z "$pg" || -z "$redis" ]]; then
    echo "soak: set MMM_SOAK_POSTGRES_URL and MMM_SOAK_REDIS_URL (e.g. postgres://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379)" >&2
    exit 2
fi

source "$here/proof-venv.sh"
python="$(proof_venv "$root")"

bin="${MMM_HOST_BIN:-}"
if [[ -z "$bin" ]]; then
    profile="${MMM_SOAK_PROFILE:-}"
    if [[ -z "$profile" ]]; then
        if [[ -x "$root/target/release/mmm-host" ]]; then profile=release; else profile=debug; fi
    fi
    if [[ "$profile" == release ]]; then
        (cd "$root" && cargo build --release -p mmm-host >&2)
    else
        (cd "$root" && cargo build -p mmm-host >&2)
    fi
    bin="$root/target/$profile/mmm-host"
fi
echo "soak: $bin"

work="$(mktemp -d)"
run_id="$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
db="mmm_soak_$run_id"
# The run's tenant: its fatigue keys in Redis (`mmm:fatigue:<tenant>:…`) are deleted after.
tenant="soak-$run_id"
# The database part of the URL is replaced by the run's own database.
scratch_url="${pg%/*}/$db"
cleanup() {
    psql -q "$pg" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -u "$redis" --scan --pattern "mmm:fatigue:$tenant:*" 2>/dev/null |
        xargs -r -n 500 redis-cli -u "$redis" del >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -q "$pg" -c "CREATE DATABASE $db" >/dev/null

od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/receipts.key"
chmod 600 "$work/receipts.key"

"$python" "$here/soak.py" --bin "$bin" --root "$root" --work "$work" \
    --postgres-url "$scratch_url" --redis-url "$redis" --signing-key "$work/receipts.key" \
    --duration "$seconds" --workers "${MMM_SOAK_WORKERS:-16}" --tenant "$tenant"
