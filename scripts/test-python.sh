#!/usr/bin/env bash
# Builds the Python binding into .venv (maturin through pip, as a user installs it) and
# runs its tests and the stub check.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q "maturin>=1.9,<2" "pytest>=7" "cryptography>=41" "mypy>=1.8"
# --force-reinstall: always rebuild from the current sources.
.venv/bin/pip install -q --no-deps --force-reinstall ./bindings/python
.venv/bin/python -m mypy.stubtest mmm_engine
.venv/bin/python -m pytest bindings/python/tests -q
