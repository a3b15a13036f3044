#!/usr/bin/env bash
# Property-based fuzzing of mmm-host's HTTP API with schemathesis: every operation of
# /v1/mmm/openapi.json, generated from the document itself (valid and invalid requests,
# the coverage phase's edge values, stateful sequences along the document's links), with
# every check schemathesis has — no 5xx, every status and content type documented, every
# response matching its schema, invalid requests refused, valid ones accepted, … — except
# the per-operation exceptions in scripts/schemathesis.toml (each says why).
#
#   scripts/fuzz-api.sh [MAX_EXAMPLES]      # default 100 test cases per operation
#
# CI runs the short version: `scripts/fuzz-api.sh 15` (about 30 s, plus the build).
#
# Environment:
#   MMM_HOST_BIN       the mmm-host binary (default: build target/debug/mmm-host)
#   MMM_FUZZ_MAX_TIME  run for this many seconds: schemathesis repeats fuzzing and
#                      stateful testing until the time is spent (default: once through)
#   MMM_FUZZ_SEED      the random seed (default: a fresh one, printed by schemathesis)
#   MMM_FUZZ_WORKERS   concurrent workers (default 2)
#   MMM_PROOF_VENV     the Python virtualenv schemathesis is installed in (default
#                      .venv-proof at the repository root, created on first use by
#                      benches/host/proof-venv.sh with a Python >= 3.12)
#   MMM_FUZZ_REPORTS   keep schemathesis' JUnit and NDJSON reports in this directory
#
# The host runs on a fresh SQLite data directory on a free loopback port, with receipt
# signing on, and is fuzzed with an admin + approver token of tenant `demo`. Exits non-zero
# on any schemathesis failure, when the host logs a panic, or when it does not stop
# cleanly on SIGTERM afterwards.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
max_examples="${1:-100}"
workers="${MMM_FUZZ_WORKERS:-2}"
# schemathesis is pinned (benches/host/proof-venv.sh): its checks and generators change
# between releases, and a run must mean the same thing tomorrow.
source "$root/benches/host/proof-venv.sh"
python="$(proof_venv "$root")"
schemathesis="$(dirname "$python")/schemathesis"
schemathesis_version="$("$schemathesis" --version | awk '{print $NF}')"

bin="${MMM_HOST_BIN:-}"
if [[ -z "$bin" ]]; then
    (cd "$root" && cargo build -p mmm-host >&2)
    bin="$root/target/debug/mmm-host"
fi

work="$(mktemp -d)"
host_pid=""
cleanup() {
    if [[ -n "$host_pid" ]] && kill -0 "$host_pid" 2>/dev/null; then
        kill -KILL "$host_pid" 2>/dev/null || true
        wait "$host_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
data="$work/data"
mkdir -p "$data"
RUST_LOG="${RUST_LOG:-warn}" "$bin" --listen "127.0.0.1:$port" --data-dir "$data" \
    --seed-playbooks "$root/playbooks" --log-format text >"$work/host.out" 2>"$work/host.err" &
host_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
    if curl -fsS "$base/v1/mmm/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$host_pid" 2>/dev/null; then
        echo "mmm-host exited before it was ready:" >&2
        cat "$work/host.err" >&2
        exit 1
    fi
    # Real time: the host's start (migrations, seeding) is what is waited for.
    sleep 0.1
done
curl -fsS "$base/v1/mmm/ready" >/dev/null

token="$("$bin" token --tenant demo --role admin --role approver --actor fuzz --ttl 4h --data-dir "$data")"

# Real resources for the operations schemathesis cannot reach by itself (it creates no
# actions and guesses no version of a playbook): a draft playbook and an experiment of
# tenant demo, and a decision whose actions give an approval to approve or reject (the dual-channel
# multiplier of `exposed-secret`) and an action to record an outcome of.
# scripts/schemathesis.toml names them as those operations' path parameters.
curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/yaml' \
    --data-binary @- "$base/v1/mmm/playbooks" >/dev/null <<'YAML'
apiVersion: mmm/v1
kind: Playbook
metadata:
  id: fuzz-draft
  version: 1
  tenant: demo
  status: draft
  category: testing
  description: A draft the fuzzer publishes, deprecates, simulates and deletes.
spec:
  triggers: [fuzz.tick]
  priority: 10
  actions:
    - type: mirror
      surfaces: [ide]
      title: Tick
      text: "A tick arrived."
YAML
curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/yaml' \
    --data-binary @- "$base/v1/mmm/experiments" >/dev/null <<'YAML'
apiVersion: mmm/v1
kind: Experiment
metadata: {id: fuzz-exp, tenant: demo, status: paused}
spec:
  playbook: large-pr
  strategy: fixed
  success_outcomes: [accepted]
  variants:
    - {name: control, weight: 50}
    - {name: concise, weight: 50, set: {title: "Short"}}
YAML
signal="$(sed -e 's/"tenant_id": "acme"/"tenant_id": "demo"/' "$root/examples/signals/secret-detected.json")"
decision="$(curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"signal\": $signal}" "$base/v1/mmm/decide")"
ids="$(python3 -c '
import json, sys
actions = json.load(sys.stdin)["actions"]
approval = next(a["action_id"] for a in actions if a.get("dual_channel"))
other = next(a["action_id"] for a in actions if not a.get("dual_channel"))
print(approval, other)' <<<"$decision")"
export MMM_FUZZ_APPROVAL_ACTION="${ids% *}" MMM_FUZZ_OUTCOME_ACTION="${ids#* }"

# The checks are chosen in scripts/schemathesis.toml (all of them, with per-operation
# exceptions): a `--checks` flag here would override the exceptions.
args=(run "$base/v1/mmm/openapi.json" --url "$base"
    --max-examples "$max_examples"
    --workers "$workers"
    --request-timeout 30
    --header "Authorization: Bearer $token")
if [[ -n "${MMM_FUZZ_MAX_TIME:-}" ]]; then args+=(--max-time "$MMM_FUZZ_MAX_TIME"); fi
if [[ -n "${MMM_FUZZ_SEED:-}" ]]; then args+=(--seed "$MMM_FUZZ_SEED"); fi
if [[ -n "${MMM_FUZZ_REPORTS:-}" ]]; then
    mkdir -p "$MMM_FUZZ_REPORTS"
    args+=(--report junit,ndjson --report-dir "$MMM_FUZZ_REPORTS")
fi

echo "== schemathesis $schemathesis_version: $max_examples examples per operation, $workers workers, against $base"
status=0
"$schemathesis" --config-file "$root/scripts/schemathesis.toml" "${args[@]}" || status=$?

if grep -q "panicked" "$work/host.err"; then
    echo "mmm-host panicked during the run:" >&2
    grep -A5 "panicked" "$work/host.err" | head -40 >&2
    status=1
fi
kill -TERM "$host_pid"
if ! wait "$host_pid"; then
    echo "mmm-host did not exit 0 on SIGTERM after the run" >&2
    tail -20 "$work/host.err" >&2
    status=1
fi
host_pid=""
if [[ "$status" -ne 0 ]]; then
    echo "fuzz-api: FAILED" >&2
else
    echo "fuzz-api: passed (0 server errors, 0 schema violations)"
fi
exit "$status"
