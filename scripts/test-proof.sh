#!/usr/bin/env bash
# The short versions of the host's proof runs, as CI runs them (the full runs and their
# figures: docs/performance.md "Host proof" and docs/operations.md "Proof runs"):
#   - the deploy checks: alert rules and their promtool unit tests, dashboards' queries,
#     metric names against a live scrape, manifests (kubernetes-validate, checkov);
#   - schemathesis against the OpenAPI document (15 examples per operation);
#   - broker redelivery: 500 signals on NATS and on RabbitMQ, the host killed mid-stream;
#   - a 60 s soak: two replicas on PostgreSQL + Redis, one killed and restarted twice;
#   - 40 s of a dependency flapping (LLM, Policy, ERIS).
# Each exits non-zero when a check fails. The debug build of mmm-host is used throughout.
set -euo pipefail
cd "$(dirname "$0")/.."

export MMM_SOAK_POSTGRES_URL="${MMM_SOAK_POSTGRES_URL:-${MMM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}"
export MMM_SOAK_REDIS_URL="${MMM_SOAK_REDIS_URL:-${MMM_TEST_REDIS_URL:-redis://127.0.0.1:6379}}"
export MMM_REDELIVERY_NATS_URL="${MMM_REDELIVERY_NATS_URL:-${MMM_TEST_NATS_URL:-nats://127.0.0.1:4222}}"
export MMM_REDELIVERY_AMQP_URL="${MMM_REDELIVERY_AMQP_URL:-${MMM_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}}"
export MMM_SOAK_PROFILE=debug MMM_REDELIVERY_PROFILE=debug

echo "==> deploy: alerts (promtool), dashboards, metric names, manifests, Dockerfile"
scripts/test-deploy.sh
echo "==> schemathesis: scripts/fuzz-api.sh 15"
scripts/fuzz-api.sh 15
echo "==> broker redelivery: benches/host/redelivery.sh 500"
benches/host/redelivery.sh 500
echo "==> soak: benches/host/soak.sh 60s"
benches/host/soak.sh 60s
echo "==> dependencies flapping: benches/host/flapping.sh 40s"
benches/host/flapping.sh 40s
