"""Hostile playbooks through the binding: each raises PlaybookError (an MmmError) with the
file, line and column or the rule, never PanicException, never a crash or a hang.

Each case runs in a child interpreter with a 10 s ceiling, so a stack overflow or an abort
would show as that child dying (and a hang as a timeout) instead of taking pytest down."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

GOOD = """apiVersion: mmm/v1
kind: Playbook
metadata: {id: good, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  actions:
    - {type: multiplier, surfaces: [ide], title: T, text: Creates a draft pull request., operation: split_pr, reversible: true, params: PARAMS}
"""

CHILD = textwrap.dedent(
    """
    import json, sys
    import mmm_engine
    how, arg = sys.argv[1], sys.argv[2]
    try:
        if how == "yaml":
            mmm_engine.Engine.from_yaml(open(arg, encoding="utf-8").read())
        elif how == "path":
            mmm_engine.Engine.from_path(arg)
        else:
            found = mmm_engine.validate(arg)
            print(json.dumps({"validate": found}))
            sys.exit(0)
    except mmm_engine.PlaybookError as e:
        assert isinstance(e, mmm_engine.MmmError)
        print(json.dumps({"code": e.code, "rule": e.rule, "line": e.line, "column": e.column,
                          "message": e.message, "file": e.file}))
        sys.exit(0)
    print(json.dumps({"loaded": True}))
    """
)


def run(how, arg):
    """The error the binding raised in a child interpreter, as a dict."""
    done = subprocess.run([sys.executable, "-c", CHILD, how, str(arg)], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 0, f"child died ({done.returncode}):\n{done.stderr[-2000:]}"
    assert "PanicException" not in done.stderr
    return json.loads(done.stdout)


def deep_block(levels):
    return "apiVersion: mmm/v1\nspec:\n" + "".join(" " * (i + 1) + "k:\n" for i in range(levels))


def bomb():
    text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for prev, name in zip("abcdefgh", "bcdefghi"):
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    return text


CASES = [
    # (name, text, rule, line or None)
    ("undefined-alias", "apiVersion: mmm/v1\nfoo: *nope\n", "yaml", 2),
    ("bom-two-keys", "\ufeffa: 1\nb: 2\n", "unknown-field", 1),
    ("block-10000-levels", deep_block(10_000), "limit", 1),
    ("block-2000-levels", deep_block(2_000), "limit", 66),
    ("flow-100000-levels", "apiVersion: mmm/v1\nspec: " + "[" * 100_000 + "]" * 100_000 + "\n", "limit", 2),
    ("billion-laughs", bomb(), "limit", None),
    ("many-documents", "---\n" * 60_000, "limit", 50_001),
    ("params-nan", GOOD.replace("PARAMS", "{x: .nan}"), "invalid-number", 7),
    ("params-big-integer", GOOD.replace("PARAMS", "{x: 123456789012345678901234567890}"), "invalid-number", 7),
    ("unclosed-flow", "apiVersion: mmm/v1\nspec: {a: [1, 2\n", "yaml", 2),
]


@pytest.mark.parametrize("name,text,rule,line", CASES, ids=[c[0] for c in CASES])
def test_hostile_yaml_raises_playbook_error(tmp_path, name, text, rule, line):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    for how in ("yaml", "path"):
        e = run(how, path)
        assert e.get("code") == "PLAYBOOK_INVALID", (how, e)
        assert e["rule"] == rule, (how, e)
        if line is not None:
            assert e["line"] == line, (how, e)
        assert e["column"] is not None, (how, e)
    found = run("validate", path)["validate"]
    assert found and found[0]["severity"] == "error" and found[0]["rule"] == rule, found


def test_params_errors_name_the_field(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text(GOOD.replace("PARAMS", "{deep: [1, {x: -.inf}]}"), encoding="utf-8")
    e = run("yaml", path)
    assert "`spec.actions[0].params.deep[1].x`" in e["message"], e


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: mmm/v1\nkind: Caf\xe9\n")
    e = run("path", path)
    assert (e["code"], e["rule"], e["line"], e["column"]) == ("PLAYBOOK_INVALID", "encoding", 2, 10), e


@pytest.mark.skipif(os.name != "posix", reason="symlinks, FIFOs and /dev/zero are Unix")
def test_directory_walks_refuse_devices_fifos_and_loops(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD.replace("PARAMS", "{}"), encoding="utf-8")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    e = run("path", tmp_path)
    assert (e["code"], e["rule"]) == ("IO", "io"), e
    assert e["file"].endswith("zero.yaml") and "a device" in e["message"], e
    os.remove(tmp_path / "zero.yaml")
    os.mkfifo(tmp_path / "pipe.yaml")
    e = run("path", tmp_path)
    assert e["code"] == "IO" and "a FIFO" in e["message"], e
    e = run("path", tmp_path / "pipe.yaml")
    assert e["code"] == "IO" and "a FIFO" in e["message"], e
    os.remove(tmp_path / "pipe.yaml")
    os.symlink(".", tmp_path / "here")
    os.symlink(".", tmp_path / "there")
    e = run("path", tmp_path)
    assert e["code"] == "IO" and "symlink loop" in e["message"], e
    found = run("validate", tmp_path)["validate"]
    assert [d["file"].rsplit("/", 1)[-1] for d in found] == ["here", "there"], found
