"""The engine's limits, seen from Python (as `mmm-engine/tests/limits.rs` and the Node
suite's `limits.test.mjs`): the context's size (`max_context_bytes`), the deny list's
length and key size (`max_deny_keys`, `max_deny_key_bytes`), the actors the fatigue store
tracks (`fatigue_max_actors`), and numbers JSON cannot carry. Each test sees the default
limit refuse and the setting move it, so each fails if the limit were gone."""

import pytest

import mmm_engine
from conftest import NOW, signal

ANY = """apiVersion: mmm/v1
kind: Playbook
metadata: {id: any, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]
"""

ONCE_A_DAY = """apiVersion: mmm/v1
kind: Playbook
metadata: {id: once, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  fatigue: {max: 1, window: 1d}
  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]
"""


def engine(**kw):
    return mmm_engine.Engine.from_yaml(ANY, **kw)


def context_error(e, context):
    with pytest.raises(mmm_engine.ContextError) as caught:
        e.decide(signal(), context, now=NOW)
    assert caught.value.code == "CONTEXT_INVALID"
    return caught.value


def keys(n):
    return [f"key{i}" for i in range(n)]


def test_a_context_over_max_context_bytes_is_refused_naming_the_limit():
    big = {"actor": {"notes": "x" * (300 * 1024)}}
    e = context_error(engine(), big)
    assert e.field == "context"
    assert e.message == ("invalid context: field `context`: is larger than 262144 bytes serialized "
                         "(`max_context_bytes`)")
    fits = {"actor": {"notes": "x" * (200 * 1024)}}
    assert len(engine().decide(signal(), fits, now=NOW)["actions"]) == 1
    # The limit is a setting, both ways.
    assert context_error(engine(config={"max_context_bytes": 64}), fits).field == "context"
    assert len(engine(config={"max_context_bytes": 1 << 20}).decide(signal(), big, now=NOW)["actions"]) == 1


def test_a_deny_list_over_max_deny_keys_is_refused_naming_the_limit():
    roomy = {"max_context_bytes": 64 << 20}
    e = context_error(engine(config=roomy), {"tenant": {"config": {"deny_payload_keys": keys(10_001)}}})
    assert e.field == "tenant.config.deny_payload_keys"
    assert e.message == ("invalid context: field `tenant.config.deny_payload_keys`: has 10001 keys; "
                         "at most 10000 are allowed (`max_deny_keys`)")
    # At the limit it is used.
    d = engine().decide(signal(payload={"key9999": 1}), {"tenant": {"config": {"deny_payload_keys": keys(10_000)}}},
                        now=NOW)
    assert d["redacted"] == ["payload.key9999"]
    e = context_error(engine(config={"max_deny_keys": 3}), {"tenant": {"config": {"deny_payload_keys": keys(4)}}})
    assert e.message.endswith("has 4 keys; at most 3 are allowed (`max_deny_keys`)")


def test_a_deny_key_over_max_deny_key_bytes_is_refused_naming_the_limit():
    e = context_error(engine(), {"tenant": {"config": {"deny_payload_keys": ["diff", "k" * 257]}}})
    assert e.field == "tenant.config.deny_payload_keys[1]"
    assert "(`max_deny_key_bytes`)" in e.message
    d = engine().decide(signal(payload={"diff": 1}), {"tenant": {"config": {"deny_payload_keys": ["diff", "k" * 256]}}},
                        now=NOW)
    assert d["redacted"] == ["payload.diff"]
    e = context_error(engine(config={"max_deny_key_bytes": 4}),
                      {"tenant": {"config": {"deny_payload_keys": ["diff", "token"]}}})
    assert e.field == "tenant.config.deny_payload_keys[1]"


class Governance:
    """Data governance answering a deny list of `n` keys."""

    def __init__(self, n):
        self.deny = keys(n)
        self.calls = 0

    def tenant_config(self, tenant_id):
        self.calls += 1
        return {"deny_payload_keys": self.deny}


def test_a_deny_list_from_data_governance_over_the_limit_is_the_port_being_down():
    patient = {"default_deadline_ms": 60_000, "data_governance_timeout_ms": 60_000,
               "max_context_bytes": 64 << 20}
    port = Governance(10_001)
    e = engine(data_governance=port, config=patient)
    d = e.decide(signal(payload={"key5": 1, "diff": 2}), now=NOW)
    assert d["degraded"] == ["data_governance_unavailable"]
    assert d["redacted"] == ["payload.diff"], "the default deny list applies instead"
    # Within a raised limit the same answer is used.
    e = engine(data_governance=Governance(10_001), config={**patient, "max_deny_keys": 20_000})
    d = e.decide(signal(payload={"key5": 1, "diff": 2}), now=NOW)
    assert d["degraded"] == [] and d["redacted"] == ["payload.key5"]


def test_the_fatigue_store_tracks_at_most_fatigue_max_actors():
    # The store spreads actors over 64 shards, each holding its share of the cap, so a cap
    # of 64 tracks at most one actor per shard: of 500 actors, at most 64 get their nudge.
    actors = [f"dev-{i}" for i in range(500)]
    capped = mmm_engine.Engine.from_yaml(ONCE_A_DAY, config={"fatigue_max_actors": 64})
    decisions = {a: capped.decide(signal(actor_id=a), now=NOW) for a in actors}
    nudged = [a for a, d in decisions.items() if d["actions"]]
    assert 1 <= len(nudged) <= 64, len(nudged)
    held = [d for d in decisions.values() if not d["actions"]]
    assert len(held) == 500 - len(nudged)
    for d in held:
        assert [s["reason"] for s in d["suppressed"]] == ["fatigue_cooldown"]
        assert "`fatigue_max_actors`" in d["suppressed"][0]["detail"]
    # Those tracked are still limited; with the default cap every actor is tracked.
    assert not capped.decide(signal(actor_id=nudged[0]), now=NOW)["actions"]
    default = mmm_engine.Engine.from_yaml(ONCE_A_DAY)
    assert all(default.decide(signal(actor_id=a), now=NOW)["actions"] for a in actors)


@pytest.mark.parametrize("value,literal", [
    (float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")])
def test_numbers_json_cannot_carry_are_refused_naming_the_field_everywhere(value, literal):
    message = f"`{literal}` is not a number JSON can carry; NaN and infinities are refused"
    with pytest.raises(mmm_engine.OutcomeError) as caught:
        engine().record_outcome({"action_id": "a", "tenant_id": "acme", "actor_id": "dev-42", "playbook_id": "p",
                                 "result": "accepted", "at": NOW, "extra": [value]})
    assert (caught.value.code, caught.value.field) == ("OUTCOME_INVALID", "extra[0]")
    assert caught.value.message.endswith(message)
    with pytest.raises(mmm_engine.ConfigError) as caught:
        engine(config={"ide_deadline_ms": value})
    assert caught.value.field == "ide_deadline_ms"
    assert caught.value.message.endswith(message)
    with pytest.raises(mmm_engine.ContextError) as caught:
        engine().decide(signal(), {"actor": {"score": value}}, now=NOW)
    assert (caught.value.field, caught.value.message) == (
        "actor.score", f"invalid context: field `actor.score`: {message}")


def test_integers_beyond_64_bits_are_refused_naming_the_field_everywhere():
    for big in (2 ** 64, -(2 ** 63) - 1):
        with pytest.raises(mmm_engine.ContextError) as caught:
            engine().decide(signal(), {"tenant": {"config": {"n": [big]}}}, now=NOW)
        assert caught.value.field == "tenant.config.n[0]"
        assert f"integer `{big}` does not fit in 64 bits" in caught.value.message
        with pytest.raises(mmm_engine.OutcomeError) as caught:
            engine().record_outcome({"action_id": "a", "tenant_id": "acme", "actor_id": "dev-42",
                                     "playbook_id": "p", "result": "accepted", "at": NOW, "n": big})
        assert caught.value.field == "n"
