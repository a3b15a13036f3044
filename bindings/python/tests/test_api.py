"""Every function of SPEC §11 (Python), with its documented signature."""

import datetime
import inspect
import shutil

import pytest

import mmm_engine
from conftest import NOW, PLAYBOOKS, signal


def test_the_public_names():
    for name in ["Engine", "validate", "verify_receipt", "MmmError", "PlaybookError", "SignalError",
                 "UnavailableError", "ReceiptError"]:
        assert name in mmm_engine.__all__
        assert hasattr(mmm_engine, name)
    for sub in [mmm_engine.PlaybookError, mmm_engine.SignalError, mmm_engine.UnavailableError, mmm_engine.ReceiptError,
                mmm_engine.ForbiddenError, mmm_engine.OutcomeError, mmm_engine.ContextError]:
        assert issubclass(sub, mmm_engine.MmmError)


def test_from_path_and_decide_with_every_form_of_now():
    engine = mmm_engine.Engine.from_path(str(PLAYBOOKS), signing_key=None, llm=None, receipts=None, policy=None,
                                         iam=None, signals=None, data_governance=None, delivery=None, fatigue=None)
    s = signal(payload={"lines_changed": 420, "files_changed": 12, "src_lines_changed": 300, "test_files_changed": 2})
    for now in [NOW, datetime.datetime(2026, 11, 22, 10, tzinfo=datetime.timezone.utc), None]:
        d = engine.decide(s, None, now=now, explain=True)
        assert isinstance(d, dict) and isinstance(d["explain"], list)
    assert engine.decide(s, now=NOW)["decided_at"] == NOW
    with pytest.raises(ValueError):
        engine.decide(s, now=datetime.datetime(2026, 11, 22, 10))
    with pytest.raises(ValueError):
        engine.decide(s, now="yesterday")


def test_from_yaml_decide_returns_plain_data(three):
    engine = mmm_engine.Engine.from_yaml(three)
    d = engine.decide(signal(payload={"lines": 420}), {"tenant_policy": {"max_actions_per_decision": 2}}, now=NOW)
    assert [a["type"] for a in d["actions"]] == ["mirror", "mentor"]
    assert d["actions"][0]["text"] == "420 lines"
    assert d["suppressed"][0]["reason"] == "max_actions"
    assert d["actions"][0]["requires_consent"] is False and d["explain"] is None


def test_decide_signature():
    sig = inspect.signature(mmm_engine.Engine.decide)
    assert list(sig.parameters)[1:] == ["signal", "context", "now", "explain"]
    assert sig.parameters["now"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["explain"].default is False


def test_record_outcome_feeds_tenant_counts(three):
    engine = mmm_engine.Engine.from_yaml(three)
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    action = d["actions"][0]
    engine.record_outcome({"action_id": action["action_id"], "tenant_id": "acme", "actor_id": "dev-42",
                           "playbook_id": "large-pr", "result": "accepted", "at": NOW})
    assert engine.outcome_counts("acme") == [{"playbook_id": "large-pr", "type": "mirror", "result": "accepted", "count": 1}]
    with pytest.raises(mmm_engine.OutcomeError) as caught:
        engine.record_outcome({"action_id": "a", "tenant_id": "acme", "actor_id": "x", "playbook_id": "p",
                               "result": "loved", "at": NOW})
    assert caught.value.field == "result"


def test_reload_is_atomic_and_a_failed_reload_keeps_the_old_set(tmp_path):
    shutil.copytree(PLAYBOOKS, tmp_path / "pb")
    engine = mmm_engine.Engine.from_path(tmp_path / "pb")
    s = signal(payload={"lines_changed": 420, "files_changed": 12})
    before = engine.decide(s, now=NOW)
    (tmp_path / "pb" / "broken.yaml").write_text("apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: BAD}\n")
    with pytest.raises(mmm_engine.PlaybookError) as caught:
        engine.reload(tmp_path / "pb")
    assert caught.value.file.endswith("broken.yaml")
    # Another actor (the first one is now inside large-pr's cooldown).
    after = engine.decide(dict(s, actor_id="dev-other"), now=NOW)
    assert [a["playbook"] for a in after["actions"]] == [a["playbook"] for a in before["actions"]]
    (tmp_path / "pb" / "broken.yaml").unlink()
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "x.yaml").write_text(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: only, version: 1, tenant: '*', status: published}\n"
        "spec:\n  triggers: [pr.opened]\n  actions: [{type: mirror, surfaces: [ide], title: T, text: only}]\n")
    engine.reload(tmp_path / "only")
    assert [a["text"] for a in engine.decide(dict(s, actor_id="dev-third"), now=NOW)["actions"]] == ["only"]


def test_validate_lists_errors_and_warnings(tmp_path):
    assert mmm_engine.validate(PLAYBOOKS) == []
    (tmp_path / "nag.yaml").write_text(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: nag, version: 1, tenant: '*', status: published}\n"
        "spec:\n  triggers: [pr.opened]\n  actions: [{type: mirror, surfaces: [ide, fax], title: T, text: You must hurry}]\n")
    found = mmm_engine.validate(tmp_path)
    assert found[0]["severity"] == "error" and found[0]["rule"] == "invalid-surface"
    assert found[0]["line"] == 6 and found[0]["file"].endswith("nag.yaml")


def test_approvals_and_experiments(three):
    yaml = three + """---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: secret, version: 1, tenant: "*", status: published}
spec:
  triggers: [secret.detected]
  critical: true
  actions:
    - {type: multiplier, surfaces: [ide], title: Rotate, text: Rotates the exposed key and revokes the old one., operation: rotate_secret, dual_channel: true, reversible: false}
---
apiVersion: mmm/v1
kind: Experiment
metadata: {id: copy, tenant: "*", status: active}
spec:
  playbook: large-pr
  variants:
    - {name: a, weight: 1}
    - {name: b, weight: 1, set: {title: Big}}
"""
    engine = mmm_engine.Engine.from_yaml(yaml)
    action = engine.decide(signal("secret.detected"), now=NOW)["actions"][0]
    approval = engine.request_approval(action, "acme", "dev-42")
    assert approval["state"] == "pending"
    assert engine.approve(approval["approval_id"], "chat", "lead")["state"] == "partially_approved"
    with pytest.raises(mmm_engine.ConflictError) as caught:
        engine.approve(approval["approval_id"], "chat", "lead")
    assert caught.value.code == "CONFLICT"
    with pytest.raises(mmm_engine.NotFoundError) as caught:
        engine.get_approval("no-such-approval")
    assert caught.value.code == "NOT_FOUND"
    with pytest.raises(mmm_engine.ApprovalError) as caught:
        engine.request_approval(engine.decide(signal(payload={"lines": 420}), now=NOW)["actions"][0], "acme", "d")
    assert caught.value.code == "APPROVAL_REFUSED"
    assert engine.approve(approval["approval_id"], "ide", "owner")["state"] == "approved"
    assert engine.get_approval(approval["approval_id"])["state"] == "approved"
    weights = engine.experiment_weights("acme", "copy")
    assert weights == {"a": 0.5, "b": 0.5}
    d = engine.decide(signal(payload={"lines": 420}), now=NOW)
    assert d["actions"][0]["experiment"]["id"] == "copy"
    with pytest.raises(mmm_engine.NotFoundError):
        engine.set_experiment_status("no-such-experiment", "paused", "admin")
    engine.set_experiment_status("copy", "paused", "admin")
    assert engine.decide(signal(payload={"lines": 420}), now=NOW)["actions"][0]["experiment"] is None
    assert engine.breaker_state("llm") == "closed"
    with pytest.raises(ValueError, match="unknown port `fax`"):
        engine.breaker_state("fax")


def test_config_takes_every_core_setting_and_the_guide_lists_each(three):
    import re

    from conftest import REPO
    settings = (REPO / "mmm-engine" / "src" / "settings.rs").read_text(encoding="utf-8")
    listed = settings[settings.index("pub const KEYS"):]
    keys = re.findall(r'"([a-z_]+)"', listed[:listed.index("];")])
    assert len(keys) >= 37, keys
    guide = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    for key in keys:
        mmm_engine.Engine.from_yaml(three, config={key: 1})
        assert f"`{key}`" in guide, f"docs/python.md lacks {key}"
