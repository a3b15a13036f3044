"""Hostile conditions end in `condition_error` for their playbook, the rest of the decision
goes on, and the process survives (SPEC §3: a runaway or failing condition never fails the
decision). The same cases run in Rust (mmm-engine/tests/hostile.rs) and Node."""

import pytest

import mmm_engine
from conftest import NOW, signal


def playbooks(when: str) -> str:
    doc = """apiVersion: mmm/v1
kind: Playbook
metadata: {{id: {id}, version: 1, tenant: "*", status: published, category: general}}
spec:
  triggers: [x.y]
  when: '{when}'
  actions:
    - {{type: mirror, surfaces: [ide], title: T, text: "{id} fired"}}
"""
    return "---\n".join([doc.format(id="hostile", when=when.replace("'", "''")),
                         doc.format(id="fine", when="true")])


def big(name: str, n: int) -> str:
    return f'let {name} = ""; {name}.pad({n}, "x");'


CASES = [
    # The reported inputs.
    (big("s", 128 * 1024) + ' s.replace("x", s); true', "Length of string too large"),
    ("sleep(3600); true", "Function not found: sleep"),
    (big("s", 128 * 1024) + ' glob("*a*a*ab", s)',
     "glob: the text is 131072 bytes, longer than `max_glob_text_size` (4096 bytes)"),
    ('glob("[", "x")', "glob: invalid pattern `[`"),
    # Members of the same classes.
    ("loop { } true", "Too many operations"),
    ("fn f(x) { f(x + 1) } f(1)", "Stack overflow"),
    ('let s = ""; s.pad(100000, "ΐ"); s.to_upper(); true', "Length of string too large"),
    (big("s", 200 * 1024) + ' s.split("").len() > 0', "Size of array/BLOB too large"),
    ('let s = "y"; s.pad(27, "y"); let a = []; a.pad(9000, s); `${a}` != ""', "Length of string too large"),
    ("let a = []; a.pad(1000, 0); a.some(|x| { let i = 0; while i < 200 { i += 1; } false })",
     "Too many operations"),
    ("let a = []; for i in 0..300 { a.push(a.split(0)); } a == a", "nested deeper than 128 levels"),
    ("let a = [2, 1]; a.sort(|x, y| x - y); true", "`sort` is not available in conditions"),
    ('recent_count("x", "1w") > 0', "recent_count: the window `1w` is not a duration"),
    ('hours_since("yesterday") > 1.0', "hours_since: `yesterday` is not an RFC 3339 timestamp"),
]


@pytest.mark.parametrize(("when", "detail"), CASES, ids=[c[1][:40] for c in CASES])
def test_a_hostile_condition_is_a_condition_error(when, detail):
    # A time limit no loaded machine reaches first: the limit each case names ends it.
    engine = mmm_engine.Engine.from_yaml(playbooks(when), config={"condition_time_limit_ms": 600_000})
    d = engine.decide(signal(kind="x.y"), None, now=NOW)
    assert [a["playbook"]["id"] for a in d["actions"]] == ["fine"]
    [s] = d["suppressed"]
    assert (s["playbook"]["id"], s["reason"]) == ("hostile", "condition_error")
    assert detail in s["detail"], s["detail"]
    # The engine and the process carry on.
    again = engine.decide(signal(kind="x.y"), None, now=NOW)
    assert [a["playbook"]["id"] for a in again["actions"]] == ["fine"]


def test_an_empty_padding_no_longer_hangs():
    engine = mmm_engine.Engine.from_yaml(playbooks('let s = "a"; s.pad(10, ""); s == "a"'))
    d = engine.decide(signal(kind="x.y"), None, now=NOW)
    assert sorted(a["playbook"]["id"] for a in d["actions"]) == ["fine", "hostile"]
    assert d["suppressed"] == []
