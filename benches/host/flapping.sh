#!/usr/bin/env bash
# Flapping dependencies (benches/host/flapping.py): mmm-host on a fresh SQLite data
# directory with its LLM (`--llm-url`), Policy (`--policy-url`) and ERIS (`--eris-url`)
# pointed at one local stand-in server that answers for MMM_FLAP_UP seconds, then fails
# (503) for MMM_FLAP_DOWN seconds, repeated for DURATION, then stays up MMM_FLAP_TAIL
# seconds; four clients decide all the while. Scrapes `mmm_circuit_state{name}` every
# 100 ms and checks open → half-open → closed (SPEC §6, with `breaker_open_ms` 3 s), the
# degraded codes while down and none after recovery, and that every receipt reaches ERIS
# in the end. Exits non-zero when a check fails.
#
#   benches/host/flapping.sh [DURATION]     # default 2m; CI: benches/host/flapping.sh 40s
#
# Environment:
#   MMM_HOST_BIN     the mmm-host binary (default: build target/debug/mmm-host)
#   MMM_FLAP_UP, MMM_FLAP_DOWN, MMM_FLAP_TAIL   the schedule in seconds (20, 20, 15)
#   MMM_PROOF_VENV   the Python virtualenv for the stand-in and the client (.venv-proof)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration="${1:-2m}"
case "$duration" in
    *m) seconds=$((${duration%m} * 60)) ;;
    *s) seconds=${duration%s} ;;
    *) seconds=$duration ;;
esac

source "$here/proof-venv.sh"
python="$(proof_venv "$root")"

bin="${MMM_HOST_BIN:-}"
if [[ -z "$bin" ]]; then
    (cd "$root" && cargo build -p mmm-host >&2)
    bin="$root/target/debug/mmm-host"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
"$python" "$here/flapping.py" --bin "$bin" --root "$root" --work "$work" \
    --duration "$seconds" --up "${MMM_FLAP_UP:-20}" --down "${MMM_FLAP_DOWN:-20}" \
    --tail "${MMM_FLAP_TAIL:-15}" || status=$?
if [[ "$status" -ne 0 ]] && [[ -s "$work/host.log" ]]; then
    echo "-- the host's log (last 20 lines):" >&2
    tail -20 "$work/host.log" >&2
fi
exit "$status"
