"""Hostile inputs, as in the Rust suite (`mmm-engine/tests/hostile_inputs.rs`) and the Node
suite (`hostile-inputs.test.mjs`): each ends in neutralised output or a clean error that
names the field, with the same codes, fields and messages in every binding."""

import base64
import json
import re

import pytest

import mmm_engine
from conftest import NOW, signal

HOSTILE = ("feat/\u202aa\u202bb\u202cc\u202dd\u202ee\u2066f\u2067g\u2068h\u2069i\u200bj\u200ck\u200dl"
           "\u200em\u200fn\u061co\ufeffp\u2060q\U000e0041\U000e0042\U000e007fr\u2028s\u2029t\x1b[31mu\x85v\xadw")
LEGIT = "Café naïve 漢字 한국어 👩\u200d💻 ❤\ufe0f 👍🏽"
HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\xad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\U000e0000-\U000e0fff]")

PLAYBOOK = """apiVersion: mmm/v1
kind: Playbook
metadata: {id: branch-note, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  actions:
    - {type: mirror, surfaces: [ide, alert, pr_comment, ci_summary, chat], title: "Branch {{ signal.repo.branch }}", text: "On {{ signal.repo.branch }} by {{ ctx.actor.name }}: {{ signal.payload.note }}"}
    - {type: mentor, surfaces: [ide, chat], title: Advice, prompt: advise, fallback: none}
"""

# The inputs hash the Rust suite asserts for the same signal (ZERO_INPUTS_SHA256).
ZERO_INPUTS_SHA256 = "de6e48a5b56097d0052248a23627f8bd4ff97e6626e7f495636ebcd289457d96"


class HostileLlm:
    def generate(self, request):
        return {"text": f"Split it.\u202egnirts\u2066 {LEGIT}", "safety": {"status": "pass", "risk_flags": []}}


def engine(**ports):
    return mmm_engine.Engine.from_yaml(PLAYBOOK, **ports)


def test_rendering_neutralises_hidden_characters_on_every_surface_and_field():
    s = signal(payload={"note": f"{HOSTILE} {LEGIT}"})
    s["repo"]["branch"] = f"{HOSTILE} {LEGIT}"
    ctx = {"actor": {"name": f"Ada\u202e{LEGIT}"}, "tenant_policy": {"max_actions_per_decision": 5}}
    d = engine(llm=HostileLlm()).decide(s, ctx, now=NOW)
    assert len(d["actions"]) == 2, d["suppressed"]
    for action in d["actions"]:
        texts = [action["text"], *action["rendered"].values()]
        if action["type"] == "mirror":
            texts.append(action["title"])
        for text in texts:
            assert not HIDDEN.search(text.replace(LEGIT, "").replace("\n", "")), repr(text)
            assert "\ufffd" in text
            assert LEGIT in text
    assert d["actions"][0]["title"] == (
        "Branch feat/\ufffda\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh\ufffdi\ufffdj\ufffdk\ufffdl"
        "\ufffdm\ufffdn\ufffdo\ufffdp\ufffdq\ufffdr s t [31mu v\ufffdw " + LEGIT)
    assert d["actions"][1]["rendered"]["ide"] == f"Advice\nSplit it.\ufffdgnirts\ufffd {LEGIT}"


def assert_clean(message):
    assert len(message) < 400, message[:200]
    assert not HIDDEN.search(message), repr(message)


EVIL = "x\x1b[31mred\u202ekcab"
BIG = "Y" * (10 << 20)


@pytest.mark.parametrize("field,value", [
    ("tenant_id", EVIL), ("tenant_id", BIG), ("kind", EVIL), ("kind", BIG), ("surface", BIG),
    ("occurred_at", EVIL), ("occurred_at", BIG), ("actor_id", BIG), ("signal_id", BIG),
])
def test_error_messages_quote_user_values_short_escaped_and_name_the_field(field, value):
    s = signal()
    s[field] = value
    with pytest.raises(mmm_engine.SignalError) as caught:
        engine().decide(s, now=NOW)
    e = caught.value
    assert (e.code, e.field) == ("SIGNAL_INVALID", field)
    assert_clean(e.message)
    if value == EVIL:
        assert "`x\\u{1b}[31mred\\u{202e}kcab`" in e.message
    if value == BIG and field not in ("actor_id", "signal_id"):
        assert f"({10 << 20} characters)" in e.message


def test_context_and_outcome_errors_quote_user_values_too():
    evil = "Mars\x1b[2J\u202e" + "z" * (10 << 20)
    for ctx, field in [
        ({"actor": {"timezone": evil}}, "actor.timezone"),
        ({"preferences": {"snooze_until": evil}}, "preferences.snooze_until"),
        ({"tenant_policy": {"enabled_surfaces": [evil]}}, "tenant_policy.enabled_surfaces[0]"),
        ({"recent_signals": [{"kind": "x", "occurred_at": evil}]}, "recent_signals[0].occurred_at"),
    ]:
        # The context limit would refuse a 10 MB context before any field is read.
        with pytest.raises(mmm_engine.ContextError) as caught:
            engine(config={"max_context_bytes": 64 << 20}).decide(signal(), ctx, now=NOW)
        assert (caught.value.code, caught.value.field) == ("CONTEXT_INVALID", field)
        assert_clean(caught.value.message)
    with pytest.raises(mmm_engine.OutcomeError) as caught:
        engine().record_outcome({"action_id": "a", "tenant_id": "acme", "actor_id": "dev-42",
                                 "playbook_id": "p", "result": evil, "at": NOW})
    assert caught.value.field == "result"
    assert_clean(caught.value.message)


@pytest.mark.parametrize("value,literal", [
    (float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")])
def test_nan_and_infinities_are_refused_with_their_path(value, literal):
    with pytest.raises(mmm_engine.SignalError) as caught:
        engine().decide(signal(payload={"items": [1, {"x": value}]}), now=NOW)
    e = caught.value
    assert (e.code, e.field) == ("SIGNAL_INVALID", "payload.items[1].x")
    assert e.message == (f"invalid signal: field `payload.items[1].x`: `{literal}` is not a number JSON "
                         "can carry; NaN and infinities are refused")
    with pytest.raises(mmm_engine.ContextError) as caught:
        engine().decide(signal(), {"tenant": {"config": {"y": value}}}, now=NOW)
    assert (caught.value.code, caught.value.field) == ("CONTEXT_INVALID", "tenant.config.y")


def test_integers_beyond_64_bits_are_refused_and_64_bit_ones_kept_exactly():
    for big in (2 ** 64, -(2 ** 63) - 1, 10 ** 5000):
        with pytest.raises(mmm_engine.SignalError) as caught:
            engine().decide(signal(payload={"n": big}), now=NOW)
        assert caught.value.field == "payload.n"
        assert "does not fit in 64 bits" in caught.value.message
        assert_clean(caught.value.message)
    yaml = PLAYBOOK.replace("{{ signal.payload.note }}", "{{ signal.payload.n }}")
    for exact in (2 ** 64 - 1, -(2 ** 63), 2 ** 53 + 1):
        d = mmm_engine.Engine.from_yaml(yaml).decide(signal(payload={"n": exact}), {"actor": {"name": "a"}},
                                                     now=NOW)
        assert d["actions"][0]["text"].endswith(f": {exact}")


def test_negative_zero_is_zero_with_the_inputs_hash_of_every_binding():
    yaml = ("apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: zero, version: 1, tenant: '*', status: published, "
            "category: general}\nspec:\n  triggers: [pr.opened]\n  actions:\n    - {type: mirror, surfaces: [ide], "
            "title: T, text: \"x={{ signal.payload.x }} list={{ signal.payload.list }} y={{ ctx.tenant.config.y }}\"}\n")
    seed, _public = mmm_engine.generate_key()
    e = mmm_engine.Engine.from_yaml(yaml, signing_key=seed)
    s = {"signal_id": "s-zero", "tenant_id": "acme", "actor_id": "dev-42", "kind": "pr.opened",
         "occurred_at": NOW, "payload": {"x": -0.0, "list": [-0.0, 1.5, 0]}}
    d = e.decide(s, {"tenant": {"config": {"y": -0.0}}}, now=NOW)
    assert d["actions"][0]["text"] == "x=0 list=0, 1.5, 0 y=0"
    payload = json.loads(base64.b64decode(d["receipt"]["envelope"]["payload"]))
    assert payload["inputs_sha256"] == ZERO_INPUTS_SHA256


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59Z", "2026-11-22T10:00:00.1234567891234Z",
                                  "2016-12-31T23:59:60Z", "2026-11-22t11:00:00+01:00"])
def test_valid_rfc3339_is_accepted_everywhere(text):
    e = engine()
    s = signal(occurred_at=text)
    e.decide(s, {"preferences": {"snooze_until": text}, "recent_signals": [{"kind": "x", "occurred_at": text}]},
             now=text)


@pytest.mark.parametrize("text", ["2026-11-22T10:00:00+25:00", "2026-11-22T10:00Z", "2026-11-22 10:00:00Z",
                                  "20261122T100000Z", "2026-11-22T10:00:00"])
def test_loose_timestamps_are_refused_naming_the_field(text):
    e = engine()
    with pytest.raises(mmm_engine.SignalError) as caught:
        e.decide(signal(occurred_at=text), now=NOW)
    assert caught.value.field == "occurred_at"
    assert caught.value.message == (f"invalid signal: field `occurred_at`: `{text}` is not an RFC 3339 "
                                    "timestamp with an offset (e.g. `2026-11-22T10:00:00Z`)")
    with pytest.raises(mmm_engine.ContextError) as caught:
        e.decide(signal(), {"preferences": {"snooze_until": text}}, now=NOW)
    assert caught.value.field == "preferences.snooze_until"
    with pytest.raises(ValueError, match="is not an RFC 3339 timestamp"):
        e.decide(signal(), now=text)
    with pytest.raises(mmm_engine.OutcomeError) as caught:
        e.record_outcome({"action_id": "a", "tenant_id": "acme", "actor_id": "dev-42", "playbook_id": "p",
                          "result": "accepted", "at": text})
    assert caught.value.field == "at"


def test_a_receipt_line_with_a_byte_order_mark_is_read():
    seed, public = mmm_engine.generate_key()
    d = mmm_engine.Engine.from_yaml(PLAYBOOK, signing_key=seed).decide(signal(), {"actor": {"name": "a"}}, now=NOW)
    line = "\ufeff" + json.dumps(d["receipt"]["envelope"])
    assert mmm_engine.verify_receipt(line, public)["inputs_sha256"]
