"""Each degraded mode of SPEC §6, shown through a Python port that raises."""

import threading
import time

import pytest

import mmm_engine
from conftest import NOW, signal


class Down:
    """Every method raises: the dependency is down."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError(f"{name}: connection refused")
        return fail


class Policy:
    def __init__(self):
        self.up = True

    def snapshot(self, tenant_id):
        if not self.up:
            raise TimeoutError("policy service timed out")
        return {"snapshot_id": "pol-py", "denied_action_types": [], "denied_operations": [], "denied_playbooks": []}


def test_llm_down_mentor_falls_back(three):
    engine = mmm_engine.Engine.from_yaml(three, llm=Down())
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    assert d["actions"][1]["text"] == "Smaller changes are reviewed faster."
    assert d["degraded"] == ["llm_unavailable"]
    assert [a["type"] for a in d["actions"]] == ["mirror", "mentor", "multiplier"]


def test_llm_answers_are_used_and_unsafe_ones_fall_back(three):
    class Llm:
        def __init__(self, status):
            self.status = status
            self.requests = []

        def generate(self, request):
            self.requests.append(request)
            return {"text": "Split by directory.", "safety": {"status": self.status, "risk_flags": ["x"]}}

    llm = Llm("pass")
    d = mmm_engine.Engine.from_yaml(three, llm=llm).decide(signal(payload={"lines": 420}), now=NOW)
    assert d["actions"][1]["text"] == "Split by directory."
    assert llm.requests[0]["prompt"] == "split 420" and llm.requests[0]["playbook_id"] == "large-pr"
    d = mmm_engine.Engine.from_yaml(three, llm=Llm("fail")).decide(signal(payload={"lines": 420}), now=NOW)
    assert d["actions"][1]["text"] == "Smaller changes are reviewed faster."


def test_receipts_down_is_non_blocking(three):
    seed, _ = mmm_engine.generate_key()
    engine = mmm_engine.Engine.from_yaml(three, signing_key=seed, receipts=Down())
    started = time.perf_counter()
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    # The port never comes back: a decision that waited for it would hang, which the
    # bound (far above the milliseconds a decision takes) catches on any machine.
    assert time.perf_counter() - started < 5
    assert d["receipt"]["status"] == "queued" and d["degraded"] == ["receipts_queued"]


def test_policy_down_safety_critical_gets_nothing_others_mirrors_only(three):
    engine = mmm_engine.Engine.from_yaml(three, policy=Down())
    d = engine.decide(signal(payload={"lines": 420}), {"tenant": {"safety_critical": True}}, now=NOW)
    assert d["actions"] == [] and d["degraded"] == ["policy_unavailable"]
    assert {s["reason"] for s in d["suppressed"]} == {"policy_unavailable"}
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    assert [a["type"] for a in d["actions"]] == ["mirror"]


def test_policy_cached_when_the_port_fails_after_an_answer(three):
    policy = Policy()
    engine = mmm_engine.Engine.from_yaml(three, policy=policy)
    assert engine.decide(signal(payload={"lines": 420}), now=NOW)["policy_snapshot_id"] == "pol-py"
    policy.up = False
    # Within the 60 s TTL the cache answers without asking; the engine's clock is real, so
    # this shows the cached snapshot (no degradation), not yet `policy_cached`.
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    assert d["policy_snapshot_id"] == "pol-py" and d["degraded"] == []


def test_ubi_down_gives_an_empty_list(three):
    engine = mmm_engine.Engine.from_yaml(three, signals=Down())
    d = engine.decide(signal("ci.failed"), now=NOW)
    assert d["actions"] == [] and d["degraded"] == ["ubi_unavailable"]

    class Ubi:
        def recent(self, tenant_id, actor_id, limit):
            assert limit == 50
            return [{"kind": "ci.failed", "occurred_at": "2026-11-22T09:50:00Z"},
                    {"kind": "ci.failed", "occurred_at": "2026-11-22T09:40:00Z"}]

    d = mmm_engine.Engine.from_yaml(three, signals=Ubi()).decide(signal("ci.failed"), now=NOW)
    assert [a["playbook"]["id"] for a in d["actions"]] == ["repeated-ci"]


def test_malformed_port_answers_are_a_dependency_down(three):
    class Ubi:
        def recent(self, tenant_id, actor_id, limit):
            return "not a list"

    d = mmm_engine.Engine.from_yaml(three, signals=Ubi()).decide(signal("ci.failed"), now=NOW)
    assert d["degraded"] == ["ubi_unavailable"]


def test_data_governance_down_uses_defaults(three):
    d = mmm_engine.Engine.from_yaml(three, data_governance=Down()).decide(
        signal(payload={"lines": 420, "diff": "+x"}), now=NOW)
    assert d["degraded"] == ["data_governance_unavailable"]
    assert d["redacted"] == ["payload.diff"]


def test_iam_down_fails_the_decision_and_business_answers_forbid(three):
    with pytest.raises(mmm_engine.UnavailableError) as caught:
        mmm_engine.Engine.from_yaml(three, iam=Down()).decide(signal(), now=NOW)
    assert caught.value.code == "UNAVAILABLE"

    class Iam:
        def validate_actor(self, tenant_id, actor_id):
            if actor_id == "ghost":
                raise mmm_engine.Rejected("no such actor")
            return {"active": actor_id != "gone", "roles": ["dev"]}

    engine = mmm_engine.Engine.from_yaml(three, iam=Iam())
    assert engine.decide(signal(payload={"lines": 420}), now=NOW)["actions"]
    for actor in ["ghost", "gone"]:
        with pytest.raises(mmm_engine.ForbiddenError) as caught:
            engine.decide(signal(actor_id=actor), now=NOW)
        assert caught.value.code == "FORBIDDEN"
    # A business answer does not count against the breaker.
    for _ in range(6):
        with pytest.raises(mmm_engine.ForbiddenError):
            engine.decide(signal(actor_id="ghost"), now=NOW)
    assert engine.breaker_state("iam") == "closed"


def test_a_failing_port_opens_its_breaker(three):
    engine = mmm_engine.Engine.from_yaml(three, signals=Down())
    for _ in range(5):
        engine.decide(signal("ci.failed"), now=NOW)
    assert engine.breaker_state("signals") == "open"


def test_python_fatigue_store(three):
    class Fatigue:
        def __init__(self):
            self.seen = []

        def check_and_record(self, request):
            self.seen.append(request)
            return {"verdict": "cooldown"} if len(self.seen) > 1 else {"verdict": "allowed", "actions": 3}

        def record(self, *args):
            pass

    f = Fatigue()
    engine = mmm_engine.Engine.from_yaml(three, fatigue=f)
    assert len(engine.decide(signal(payload={"lines": 420}), now=NOW)["actions"]) == 3
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    assert {s["reason"] for s in d["suppressed"]} == {"fatigue_cooldown"}
    assert f.seen[0]["playbook_id"] == "large-pr" and f.seen[0]["actions"] == 3


def test_policy_cached_when_the_port_fails_after_the_ttl(three):
    policy = Policy()
    engine = mmm_engine.Engine.from_yaml(three, policy=policy, config={"policy_ttl_ms": 0})
    assert engine.decide(signal(payload={"lines": 420}), now=NOW)["degraded"] == []
    policy.up = False
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    assert d["degraded"] == ["policy_cached"] and d["policy_snapshot_id"] == "pol-py"
    assert len(d["actions"]) == 3
    stale = mmm_engine.Engine.from_yaml(three, policy=policy, config={"policy_ttl_ms": 0, "policy_max_age_ms": 0})
    policy.up = True
    stale.decide(signal(payload={"lines": 420}), now=NOW)
    policy.up = False
    time.sleep(0.01)
    assert stale.decide(signal(payload={"lines": 420}), now=NOW)["degraded"] == ["policy_unavailable"]


def test_a_full_outbox_means_no_actions(three):
    seed, _ = mmm_engine.generate_key()
    engine = mmm_engine.Engine.from_yaml(three, signing_key=seed, receipts=Down(), config={"outbox_capacity": 1})
    assert engine.decide(signal(payload={"lines": 420}), now=NOW)["receipt"]["status"] == "queued"
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    assert d["actions"] == []
    assert "receipts_backpressure" in d["degraded"]
    assert {s["reason"] for s in d["suppressed"]} == {"receipts_backpressure"}


def test_a_slow_port_passes_the_deadline_and_the_llm_is_skipped(three):
    released = threading.Event()

    class SlowUbi:
        def recent(self, tenant_id, actor_id, limit):
            # Holds the call until the test ends (30 s at most): only the deadline can
            # end the decision's wait.
            released.wait(30)
            return []

    class Llm:
        calls = 0

        def generate(self, request):
            Llm.calls += 1
            return {"text": "generated", "safety": {"status": "pass"}}

    engine = mmm_engine.Engine.from_yaml(three, signals=SlowUbi(), llm=Llm(), config={"ide_deadline_ms": 100})
    started = time.perf_counter()
    try:
        d = engine.decide(signal(payload={"lines": 420}, surface="ide"), now=NOW)
    finally:
        released.set()
    # The 100 ms deadline, not the port, ended the wait (`deadline_exceeded` below); the
    # bound only catches a decision that waited for the port.
    assert time.perf_counter() - started < 10
    assert "deadline_exceeded" in d["degraded"] and "ubi_unavailable" in d["degraded"]
    assert d["latency_warning"] is True
    assert d["actions"][1]["text"] == "Smaller changes are reviewed faster."
    assert Llm.calls == 0


def test_config_keys_are_checked(three):
    def refused(config, key, message):
        with pytest.raises(mmm_engine.ConfigError) as caught:
            mmm_engine.Engine.from_yaml(three, config=config)
        e = caught.value
        assert (e.code, e.field) == ("CONFIG_INVALID", key)
        assert e.message == f"invalid setting `{key}`: {message}"

    refused({"colour": 1}, "colour", "is not a setting")
    refused({"policy_ttl_ms": -1}, "policy_ttl_ms", "must be a whole number of milliseconds, not `-1`")
    refused({"max_deny_keys": 1.5}, "max_deny_keys", "must be a whole number, not `1.5`")
    refused({"llm_max_tokens": 2 ** 40}, "llm_max_tokens", f"`{2 ** 40}` is too large")
    refused({"max_context_bytes": float("nan")}, "max_context_bytes",
            "`NaN` is not a number JSON can carry; NaN and infinities are refused")
    refused({"outbox_capacity": 2 ** 64}, "outbox_capacity",
            f"integer `{2 ** 64}` does not fit in 64 bits (-2^63 to 2^64-1); pass it as a string")
    refused([1], "config", "must be an object of settings, not an array")
    mmm_engine.Engine.from_yaml(three, config={"max_context_bytes": 1024, "outbox_capacity": 3})
