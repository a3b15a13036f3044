"""The engine keeps templates of a decision's dicts between decisions (an action's fields
that come from its playbook, a suppression's reason and detail, an evidence path), so
decisions share immutable values, never containers: every dict and list of a decision is
its own, and the caller may change it without touching another. A template is used only
where it fits, and the few the engine keeps follow a change of playbooks."""

import random

import json

import mmm_engine
from conftest import NOW, THREE, normalise, signal

CAPPED = {"tenant_policy": {"max_actions_per_decision": 1}}


def decide(engine, actor):
    return engine.decide(signal(payload={"lines": 420}, actor_id=actor), CAPPED, now=NOW)


def test_changing_a_decision_changes_no_other_decision():
    engine = mmm_engine.Engine.from_yaml(THREE)
    first = decide(engine, "dev-1")
    assert [s["reason"] for s in first["suppressed"]] == ["max_actions", "max_actions"]
    # Change every container the engine might have kept.
    first["actions"][0]["playbook"]["id"] = "changed"
    first["actions"][0]["playbook"]["version"] = 99
    first["actions"][0]["rationale"]["why"] = "changed"
    for s in first["suppressed"]:
        s["playbook"]["id"] = "changed"
        s["detail"] = "changed"
        s["type"] = "changed"
    second = decide(engine, "dev-2")
    fresh = decide(mmm_engine.Engine.from_yaml(THREE), "dev-2")
    assert normalise(second) == normalise(fresh)
    assert second["actions"][0]["playbook"] == {"id": "large-pr", "version": 1}
    assert [s["playbook"] for s in second["suppressed"]] == [{"id": "large-pr", "version": 1}] * 2


def test_suppressions_that_say_the_same_are_distinct_dicts():
    d = decide(mmm_engine.Engine.from_yaml(THREE), "dev-1")
    one, two = d["suppressed"]
    assert one is not two and one["playbook"] is not two["playbook"]
    assert (one["action_index"], two["action_index"]) == (1, 2)
    assert (one["type"], two["type"]) == ("mentor", "multiplier")
    one["reason"] = "changed"
    one["playbook"]["version"] = 7
    assert two["reason"] == "max_actions" and two["playbook"]["version"] == 1


def test_a_reloaded_playbook_version_is_the_one_decisions_name(tmp_path):
    (tmp_path / "pb.yaml").write_text(THREE)
    engine = mmm_engine.Engine.from_path(tmp_path / "pb.yaml")
    assert decide(engine, "dev-1")["actions"][0]["playbook"] == {"id": "large-pr", "version": 1}
    (tmp_path / "pb.yaml").write_text(THREE.replace("id: large-pr, version: 1", "id: large-pr, version: 2"))
    engine.reload(tmp_path / "pb.yaml")
    d = decide(engine, "dev-2")
    assert d["actions"][0]["playbook"] == {"id": "large-pr", "version": 2}
    assert [s["playbook"]["version"] for s in d["suppressed"]] == [2, 2]


def test_keys_read_by_identity_or_by_text_give_the_same_decision():
    engine = mmm_engine.Engine.from_yaml(THREE)
    literal = signal(payload={"lines": 420}, actor_id="dev-1")
    # Keys made at run time are not the interned literals the binding recognises.
    built = {"".join(list(k)): v for k, v in json.loads(json.dumps(literal)).items()}
    assert all(k is not next(lk for lk in literal if lk == k) for k in built)
    context = {"".join(list(k)): v for k, v in CAPPED.items()}
    assert normalise(engine.decide(built, context, now=NOW)) == normalise(engine.decide(literal, CAPPED, now=NOW))


def test_changing_every_container_of_an_action_changes_no_later_action():
    engine = mmm_engine.Engine.from_yaml(THREE)
    first = decide(engine, "dev-1")
    a = first["actions"][0]
    a["type"] = a["title"] = a["category"] = "changed"
    a["surfaces"].append("chat")
    a["rendered"]["ide"] = "changed"
    a["rationale"]["trigger"] = "changed"
    a["rationale"]["evidence"].append({"path": "x", "value": 1})
    a["rationale"]["evidence"][0]["path"] = "changed"
    a["rationale"]["evidence"][0]["value"] = -1
    first["suppressed"][0]["action_index"] = 99
    second = decide(engine, "dev-2")
    assert normalise(second) == normalise(decide(mmm_engine.Engine.from_yaml(THREE), "dev-2"))
    ours = second["actions"][0]
    assert ours is not a and ours["rationale"] is not a["rationale"]
    assert ours["rationale"]["evidence"][0] is not a["rationale"]["evidence"][0]
    assert ours["surfaces"] == ["ide", "pr_comment"] and ours["rationale"]["trigger"] == "pr.opened"
    assert ours["rationale"]["evidence"] == [{"path": "signal.payload.lines", "value": 420}]
    assert second["suppressed"][0]["action_index"] == 1


VARYING = """apiVersion: mmm/v1
kind: Playbook
metadata: {id: varying, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened, pr.updated]
  when: signal.payload.lines > 0
  actions:
    - {type: mirror, surfaces: [ide], title: "{{ signal.payload.lines }} lines", text: "{{ signal.payload.lines }} lines"}
    - {type: mirror, surfaces: [ide], title: Second, text: Second.}
"""


def test_actions_and_suppressions_that_vary_from_decision_to_decision_are_each_exact():
    # Titles read from the signal and caps that change the suppressions' detail: more
    # variants than the engine keeps templates of, decided twice over in another order.
    engine = mmm_engine.Engine.from_yaml(VARYING)
    cases = [(kind, lines, cap) for lines in range(1, 8) for kind in ("pr.opened", "pr.updated")
             for cap in (1, 2)]
    first = [engine.decide(signal(kind, {"lines": n}), {"tenant_policy": {"max_actions_per_decision": cap}},
                           now=NOW) for kind, n, cap in cases]
    for (kind, n, cap), d in zip(cases, first):
        assert [a["title"] for a in d["actions"]] == [f"{n} lines", "Second"][:cap]
        assert all(a["rationale"]["trigger"] == kind for a in d["actions"])
        assert [(s["action_index"], s["detail"]) for s in d["suppressed"]] == \
            [(1, "the decision already has 1 actions")][:2 - cap]
    again = [engine.decide(signal(kind, {"lines": n}), {"tenant_policy": {"max_actions_per_decision": cap}},
                           now=NOW) for kind, n, cap in reversed(cases)]
    assert [normalise(d) for d in reversed(again)] == [normalise(d) for d in first]


def test_decisions_stay_exact_when_there_are_more_variants_than_templates():
    # 40 playbooks with their own titles and versions, decided under 39 caps: 40 different
    # actions, 40 playbook versions and 39 different suppression details, more than the
    # engine keeps templates of (16 each),
    # in an order that makes it replace them. Each decision is what a fresh engine says.
    many = "---\n".join(
        "apiVersion: mmm/v1\nkind: Playbook\n"
        f"metadata: {{id: p{i:02d}, version: {i + 1}, tenant: '*', status: published, category: c{i % 3}}}\n"
        "spec:\n  triggers: [pr.opened]\n  when: signal.payload.lines > 0\n"
        f"  actions:\n    - {{type: mirror, surfaces: [ide], title: T{i}, text: X}}\n"
        for i in range(40))
    engine = mmm_engine.Engine.from_yaml(many)
    caps = [cap for cap in range(1, 40) for _ in range(3)]
    random.Random(7).shuffle(caps)
    for n, cap in enumerate(caps):
        s = signal(payload={"lines": 5}, actor_id=f"dev-{n}")
        context = {"tenant_policy": {"max_actions_per_decision": cap}}
        d = engine.decide(s, context, now=NOW)
        assert normalise(d) == normalise(mmm_engine.Engine.from_yaml(many).decide(s, context, now=NOW))
        assert [(a["title"], a["category"]) for a in d["actions"]] == [(f"T{i}", f"c{i % 3}") for i in range(cap)]
        assert {s["detail"] for s in d["suppressed"]} == {f"the decision already has {cap} actions"}
        assert sorted((p["id"], p["version"]) for p in [a["playbook"] for a in d["actions"]]
                      + [s["playbook"] for s in d["suppressed"]]) == [(f"p{i:02d}", i + 1) for i in range(40)]
