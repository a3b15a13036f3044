#!/usr/bin/env bash
# The host's tests (examples/host) on every backend: SQLite always, PostgreSQL and Redis at
# the machine's defaults unless the environment names others. Under CI=true the host's
# tests fail rather than skip when a backend URL is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export MMM_TEST_POSTGRES_URL="${MMM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export MMM_TEST_REDIS_URL="${MMM_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

# The machine starts PostgreSQL before a session; start it again if it has stopped.
if command -v pg_isready >/dev/null && ! pg_isready -q -d "$MMM_TEST_POSTGRES_URL"; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    fi
fi

# Redis (fatigue tests) likewise: start a local one if the default URL does not answer.
if command -v redis-cli >/dev/null && ! redis-cli -u "$MMM_TEST_REDIS_URL" ping >/dev/null 2>&1; then
    if command -v redis-server >/dev/null && [ "$MMM_TEST_REDIS_URL" = "redis://127.0.0.1:6379" ]; then
        redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --save '' --appendonly no || true
        for _ in $(seq 50); do redis-cli -u "$MMM_TEST_REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
    fi
fi

echo "==> mmm-host: tests on SQLite, PostgreSQL ($MMM_TEST_POSTGRES_URL) and Redis ($MMM_TEST_REDIS_URL)"
cargo test -p mmm-host --all-targets
