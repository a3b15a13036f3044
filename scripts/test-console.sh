#!/usr/bin/env bash
# The console's browser tests (examples/host/console-tests): Debian's Chromium driven by
# playwright-core, a local OpenID Connect provider, mmm-host on SQLite. Installs what is
# missing (Chromium with apt, the npm packages with `npm ci`), builds the host, runs
# `node --test`. Without Chromium the tests are skipped, except under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TESTS=examples/host/console-tests
CHROMIUM="${CHROMIUM_BIN:-/usr/bin/chromium}"
export CONSOLE_SCREENSHOTS="${CONSOLE_SCREENSHOTS:-$ROOT/target/console-screenshots}"

if [ ! -x "$CHROMIUM" ] && [ "$CHROMIUM" = /usr/bin/chromium ] && command -v apt-get >/dev/null; then
    echo "==> installing Chromium (apt)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } \
        || echo "could not install chromium"
fi
if [ ! -x "$CHROMIUM" ]; then
    if [ "${CI:-}" = true ]; then
        echo "console tests: no Chromium at $CHROMIUM and it could not be installed" >&2
        exit 1
    fi
    echo "console tests: skipped (no Chromium at $CHROMIUM; apt-get install chromium)"
    exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "console tests: node and npm are needed (Node 20 or later)" >&2
    exit 1
fi

echo "==> npm ci ($TESTS)"
(cd "$TESTS" && npm ci --no-audit --no-fund --loglevel=error)

if [ -z "${MMM_HOST_BIN:-}" ]; then
    echo "==> cargo build -p mmm-host"
    cargo build -p mmm-host
fi

echo "==> node --test ($TESTS)"
rm -rf "$CONSOLE_SCREENSHOTS"
status=0
(cd "$TESTS" && timeout --kill-after=10s "${CONSOLE_TEST_TIMEOUT:-300}s" \
    node --test --test-concurrency=1 --test-timeout=120000 test/) || status=$?
[ "$status" -eq 124 ] && echo "console tests: timed out after ${CONSOLE_TEST_TIMEOUT:-300} s" >&2
echo "screenshots: $CONSOLE_SCREENSHOTS"
exit "$status"
