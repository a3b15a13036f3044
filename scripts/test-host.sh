#!/usr/bin/env bash
# The host's tests (examples/host) on every backend: SQLite always, PostgreSQL and Redis at
# the machine's defaults unless the environment names others. Under CI=true the host's
# tests fail rather than skip when a backend URL is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export MMM_TEST_POSTGRES_URL="${MMM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export MMM_TEST_REDIS_URL="${MMM_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export MMM_TEST_NATS_URL="${MMM_TEST_NATS_URL:-nats://127.0.0.1:4222}"
export MMM_TEST_AMQP_URL="${MMM_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

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

# NATS (with JetStream) and RabbitMQ (broker intake tests): start the machine's own when
# the default address does not answer.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ "$MMM_TEST_NATS_URL" = "nats://127.0.0.1:4222" ] && ! port_open 4222 && [ -x /usr/sbin/nats-server ]; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
    for _ in $(seq 50); do port_open 4222 && break; sleep 0.1; done
fi
if [ "$MMM_TEST_AMQP_URL" = "amqp://guest:guest@127.0.0.1:5672/%2f" ] && ! port_open 5672 && command -v rabbitmq-server >/dev/null; then
    rabbitmq-server -detached || true
    for _ in $(seq 300); do port_open 5672 && break; sleep 0.1; done
fi

echo "==> mmm-host: tests on SQLite, PostgreSQL ($MMM_TEST_POSTGRES_URL), Redis ($MMM_TEST_REDIS_URL), NATS ($MMM_TEST_NATS_URL) and RabbitMQ"
cargo test -p mmm-host --all-targets
