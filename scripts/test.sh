#!/usr/bin/env bash
# Runs every test of the project: the one command the README gives and CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo test (unit, integration, CLI; benches compiled and run once)"
# The host's tests need its database URLs: scripts/test-host.sh runs them.
cargo test --workspace --all-targets --exclude mmm-host
echo "==> allocations per nudge-1k decision (at most 40; counted, not timed)"
cargo run -q -p mmm-benches --example allocs_nudge1k -- 300 40
scripts/test-host.sh
echo "==> mmm-host console: browser tests (Playwright driving Debian's Chromium; axe-core)"
scripts/test-console.sh
echo "==> mmm-host: deploy checks and the short proof runs (fuzz, redelivery, soak, flapping)"
scripts/test-proof.sh
echo "==> doc tests"
cargo test --workspace --doc
echo "==> playbook library: validate --strict"
cargo run -q -p mmm-runner -- validate --strict playbooks
echo "==> Python binding: build, stub check, pytest"
scripts/test-python.sh
echo "==> Node binding: npm ci, build, node --test"
scripts/test-node.sh
echo "==> receipts: keygen, simulate, verify, and an independent check with Python cryptography"
scripts/receipts-check.sh
echo "==> playbook library: test --coverage"
# Last, so that its closing line "N passed, M failed" is the run's last line.
cargo run -q -p mmm-runner -- test playbooks --coverage
