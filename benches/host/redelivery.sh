#!/usr/bin/env bash
# Redelivery check of the broker intakes: N signals queued on NATS JetStream and N on
# RabbitMQ (one in 20 malformed), mmm-host killed with SIGKILL in the middle of them,
# restarted, and once both queues are drained: every valid signal_id decided exactly once
# (one receipt each in GET /receipts) and the dead letters holding exactly the malformed
# ones. Prints the figures; exits non-zero when a check fails.
#
#   benches/host/redelivery.sh [N]          # default 10000; CI runs N=500
#
# Environment:
#   MMM_REDELIVERY_NATS_URL  NATS with JetStream (default nats://127.0.0.1:4222)
#   MMM_REDELIVERY_AMQP_URL  RabbitMQ (default amqp://guest:guest@127.0.0.1:5672/%2f)
#   MMM_HOST_BIN             the mmm-host binary (default: target/release/mmm-host when it
#                            exists, else target/debug/mmm-host, built when missing)
#   MMM_REDELIVERY_PROFILE   `release` or `debug`: which build to use (and build) when
#                            MMM_HOST_BIN is not set
#
# Stream, subject, queue and tenant names are unique to the run and deleted afterwards.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
n="${1:-10000}"
nats_url="${MMM_REDELIVERY_NATS_URL:-nats://127.0.0.1:4222}"
amqp_url="${MMM_REDELIVERY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
every=20

profile="${MMM_REDELIVERY_PROFILE:-}"
if [[ -z "$profile" ]]; then
    if [[ -x "$root/target/release/mmm-host" ]]; then profile=release; else profile=debug; fi
fi
release_flag=()
[[ "$profile" == release ]] && release_flag=(--release)
# The loader (and the host, unless given) from the same build.
(cd "$root" && cargo build "${release_flag[@]}" -p mmm-host --bin mmm-host --example intake_load >&2)
bin="${MMM_HOST_BIN:-$root/target/$profile/mmm-host}"
load="$root/target/$profile/examples/intake_load"

run_id="rdl$(date +%s)$$"
tenant="redelivery-$run_id"
stream="S_$run_id"
subjects="$run_id.signals.>"
subject="$run_id.signals.load"
dlq_subject="$run_id.dlq.signals"
dlq_stream="D_$run_id"
consumer="c_$run_id"
queue="$run_id.signals"
dlq_queue="$run_id.signals.dlq"
replica="redelivery"

work="$(mktemp -d)"
host_pid=""
cleanup() {
    if [[ -n "$host_pid" ]] && kill -0 "$host_pid" 2>/dev/null; then
        kill -KILL "$host_pid" 2>/dev/null || true
        wait "$host_pid" 2>/dev/null || true
    fi
    "$load" nats-delete "$nats_url" "$stream" "$dlq_stream" >/dev/null 2>&1 || true
    "$load" amqp-delete "$amqp_url" "$queue" "$dlq_queue" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port/v1/mmm"

start_host() {
    MMM_LOG_FORMAT=json RUST_LOG=warn "$bin" serve \
        --listen "127.0.0.1:$port" --data-dir "$work/data" --replica-id "$replica" \
        --seed-playbooks "$root/playbooks" \
        --nats-url "$nats_url" --nats-stream "$stream" --nats-subjects "$subjects" \
        --nats-consumer "$consumer" --nats-dlq-subject "$dlq_subject" \
        --nats-dlq-stream "$dlq_stream" --nats-ack-wait-seconds 5 \
        --amqp-url "$amqp_url" --amqp-queue "$queue" --amqp-dlq-queue "$dlq_queue" \
        >>"$work/host.out" 2>>"$work/host.log" &
    host_pid=$!
    for _ in $(seq 1 300); do
        if curl -fsS "$base/health" >/dev/null 2>&1; then return 0; fi
        kill -0 "$host_pid" 2>/dev/null || { cat "$work/host.log" >&2; echo "mmm-host exited" >&2; exit 1; }
        sleep 0.1
    done
    echo "mmm-host did not answer /health within 30 s" >&2
    exit 1
}

# decided SOURCE: the host's mmm_intake_messages_total{source, result="decided"}.
decided() {
    curl -fsS "$base/metrics" 2>/dev/null |
        awk -v s="$1" '$1 ~ "^mmm_intake_messages_total" && $1 ~ "source=\""s"\"" && $1 ~ "result=\"decided\"" {print $2; f=1} END {if (!f) print 0}'
}

malformed=$(( n / every ))
valid=$(( n - malformed ))
echo "queueing $n signals on NATS and $n on RabbitMQ ($malformed malformed on each)" >&2
"$load" nats-publish "$nats_url" "$stream" "$subjects" "$subject" "$dlq_subject" "$dlq_stream" "$tenant" "$run_id-nats" "$n" "$every"
"$load" amqp-publish "$amqp_url" "$queue" "$dlq_queue" "$tenant" "$run_id-amqp" "$n" "$every"

start_host
# Kill once a quarter of either broker's signals are decided: mid-stream.
target=$(( valid / 4 ))
for _ in $(seq 1 6000); do
    nd="$(decided nats)"; ad="$(decided amqp)"
    if (( ${nd%.*} >= target || ${ad%.*} >= target )); then break; fi
    sleep 0.05
done
echo "SIGKILL after nats=${nd%.*} amqp=${ad%.*} decided (acked) of $valid each" >&2
kill -KILL "$host_pid"
wait "$host_pid" 2>/dev/null || true
host_pid=""

start_host
# Drained: nothing waits on either broker.
deadline=$(( $(date +%s) + 120 + n / 20 ))
while :; do
    np="$("$load" nats-pending "$nats_url" "$stream" "$consumer")"
    ap="$("$load" amqp-pending "$amqp_url" "$queue")"
    if [[ "$np" == 0 && "$ap" == 0 ]]; then break; fi
    if (( $(date +%s) > deadline )); then
        echo "not drained in time: nats pending $np, amqp ready $ap" >&2
        exit 1
    fi
    sleep 0.5
done

token="$("$bin" token --tenant "$tenant" --role admin --data-dir "$work/data")"
# Every receipt of the run's tenant on this replica's chain, paged (NDJSON).
fetch_receipts() {
    python3 - "$base" "$token" "$replica" <<'EOF'
import sys, urllib.request
base, token, chain = sys.argv[1:]
after = 0
while True:
    req = urllib.request.Request(
        f"{base}/receipts?chain_id={chain}&limit=10000&after_seq={after}",
        headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        body = r.read().decode()
        last = r.headers.get("x-mmm-last-seq")
    sys.stdout.write(body)
    if len(body.splitlines()) < 10000 or not last:
        break
    after = int(last)
EOF
}
# The messages the host holds are settled within moments of the queues emptying: count
# receipts until the figure holds still.
previous=-1
for _ in $(seq 1 60); do
    fetch_receipts >"$work/receipts.ndjson"
    count=$(wc -l <"$work/receipts.ndjson")
    if [[ "$count" == "$previous" && "$count" -ge $(( 2 * valid )) ]]; then break; fi
    previous="$count"
    sleep 1
done

kill -TERM "$host_pid"
status=0
wait "$host_pid" || status=$?
host_pid=""
[[ "$status" == 0 ]] || { echo "mmm-host exited $status on SIGTERM" >&2; exit 1; }

nats_dlq="$("$load" nats-dlq "$nats_url" "$dlq_stream")"
amqp_dlq="$("$load" amqp-dlq "$amqp_url" "$dlq_queue")"

python3 - "$work/receipts.ndjson" "$run_id" "$n" "$every" "$nats_dlq" "$amqp_dlq" <<'EOF'
import base64, collections, json, sys
path, run_id, n, every, nats_dlq, amqp_dlq = sys.argv[1:]
n, every = int(n), int(every)
ids = []
for line in open(path):
    line = line.strip()
    if not line:
        continue
    payload = json.loads(base64.b64decode(json.loads(line)["payload"]))
    ids.append(payload["signal"]["signal_id"])
counts = collections.Counter(ids)
ok = True
for source in ("nats", "amqp"):
    expected = {f"{run_id}-{source}-{i}" for i in range(n) if i % every != every - 1}
    got = {i for i in counts if i.startswith(f"{run_id}-{source}-")}
    twice = sorted(i for i in got if counts[i] > 1)
    missing = expected - got
    extra = got - expected
    decisions = sum(counts[i] for i in got)
    print(f"{source}: {len(expected)} valid signals, {decisions} decisions, "
          f"{len(got)} distinct, {len(twice)} decided twice, {len(missing)} missing, {len(extra)} unexpected")
    if twice or missing or extra or decisions != len(expected):
        ok = False
        print(f"  FAIL: twice {twice[:5]} missing {sorted(missing)[:5]} unexpected {sorted(extra)[:5]}")
malformed = n // every
for source, figures in (("nats", nats_dlq), ("amqp", amqp_dlq)):
    f = dict(kv.split("=") for kv in figures.split())
    total, distinct, foreign = int(f["total"]), int(f["distinct"]), int(f["foreign"])
    print(f"{source} dead letters: {malformed} malformed sent, {total} dead letters, {distinct} distinct, {foreign} foreign")
    # NATS dedupes a dead letter published again (Nats-Msg-Id); RabbitMQ may hold one
    # twice after a kill between its confirm and the ack (at-least-once).
    if distinct != malformed or foreign or (source == "nats" and total != malformed):
        ok = False
        print("  FAIL")
print("OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF
