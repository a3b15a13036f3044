# Sourced by scripts/fuzz-api.sh, benches/host/soak.sh and benches/host/flapping.sh:
# `proof_venv ROOT` prints the Python of the proof virtualenv (MMM_PROOF_VENV, default
# ROOT/.venv-proof), creating it with pinned schemathesis and aiohttp when missing.
#
# It is made with a Python >= 3.12 when one is found (MMM_PROOF_PYTHON, python3.13,
# python3.12, pyenv's, python3): CPython 3.11.7 and older stop some of schemathesis'
# generators with `SystemError: AST constructor recursion depth mismatch`, a CPython bug
# fixed in 3.12.

PROOF_PACKAGES=("schemathesis==4.32.5" "aiohttp==3.14.5")

proof_is_new_python() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }

proof_pick_python() {
    if [[ -n "${MMM_PROOF_PYTHON:-}" ]]; then echo "$MMM_PROOF_PYTHON"; return; fi
    local candidate
    for candidate in python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3 \
        "$HOME"/.pyenv/versions/3.12*/bin/python3; do
        if proof_is_new_python "$candidate"; then echo "$candidate"; return; fi
    done
    echo "note: no Python >= 3.12 found; schemathesis may hit a CPython 3.11 bug" >&2
    echo python3
}

proof_venv() {
    local root="$1"
    local venv="${MMM_PROOF_VENV:-$root/.venv-proof}"
    local stamp="$venv/.proof-packages"
    if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "${PROOF_PACKAGES[*]}" ]]; then
        local python
        python="$(proof_pick_python)"
        echo "creating $venv ($("$python" --version 2>&1)) with ${PROOF_PACKAGES[*]}" >&2
        rm -rf "$venv"
        "$python" -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet "${PROOF_PACKAGES[@]}" >&2
        echo "${PROOF_PACKAGES[*]}" >"$stamp"
    fi
    echo "$venv/bin/python"
}
