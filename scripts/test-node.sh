#!/usr/bin/env bash
# Builds the Node binding as a clean clone would (npm ci, then napi build in release mode)
# and runs its tests with Node's built-in test runner, whose summary closes the output.
# Exits non-zero when the install, the build or any test fails.
set -euo pipefail
cd "$(dirname "$0")/../bindings/node"

for tool in node npm cargo; do
  command -v "$tool" >/dev/null || { echo "test-node.sh: \`$tool\` is not installed" >&2; exit 1; }
done
echo "==> node $(node --version), npm $(npm --version 2>/dev/null)"

echo "==> npm ci"
npm ci --no-audit --no-fund

echo "==> npm run build (napi build --platform --release)"
nice -n 10 npm run build

echo "==> node --test __test__/"
node --test __test__/
