"""The decision dict shares immutable strings between decisions (the engine converts
each playbook's id, category and rationale once), never containers: every dict and list
of a decision is its own, and the caller may change it without touching another."""

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
