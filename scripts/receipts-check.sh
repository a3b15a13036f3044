#!/usr/bin/env bash
# End-to-end receipts check: mmm keygen -> mmm simulate with receipts -> mmm verify, then
# an independent verification with Python's `cryptography` (installed into .venv), then a
# tampered copy that `mmm verify` must reject, naming the line.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -c 'import cryptography' 2>/dev/null || .venv/bin/pip install -q cryptography

mmm="cargo run -q -p mmm-runner --"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$mmm keygen --out "$work/key" >/dev/null
$mmm simulate --playbooks playbooks --signals examples/signals/recorded.jsonl \
  --signing-key "$work/key" --receipts-out "$work/receipts.jsonl" >/dev/null
$mmm verify --public-key "$work/key.pub" "$work/receipts.jsonl"
.venv/bin/python scripts/verify_receipts.py "$work/key.pub" "$work/receipts.jsonl" examples/signals/recorded.jsonl

# Remove line 7: mmm verify must fail and name line 7.
sed '7d' "$work/receipts.jsonl" > "$work/missing.jsonl"
if out=$($mmm verify --public-key "$work/key.pub" "$work/missing.jsonl"); then
  echo "mmm verify accepted a chain with a missing receipt" >&2; exit 1
fi
case "$out" in *":7: error[RECEIPT_INVALID]"*) echo "missing receipt detected: $out" ;; *) echo "unexpected: $out" >&2; exit 1 ;; esac
