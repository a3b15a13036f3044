"""Errors are Python exceptions with the structured fields as attributes."""

import pytest

import mmm_engine
from conftest import NOW, signal


def test_playbook_errors_name_file_line_column_rule_and_playbook():
    yaml = ("apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: p, version: 1, tenant: '*', status: published}\n"
            "spec:\n  triggers: [pr.opened]\n  when: signal.payload.x > > 1\n"
            "  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]\n")
    with pytest.raises(mmm_engine.PlaybookError) as caught:
        mmm_engine.Engine.from_yaml(yaml)
    e = caught.value
    assert (e.code, e.rule, e.file, e.line, e.playbook) == ("PLAYBOOK_INVALID", "condition", "<yaml>", 6, "p")
    assert e.column == 28
    assert e.diagnostics[0].startswith("<yaml>:6:28: error[condition]")
    with pytest.raises(mmm_engine.PlaybookError) as caught:
        mmm_engine.Engine.from_path("/nonexistent/playbooks")
    assert caught.value.code == "IO"


def test_signal_and_context_errors_name_the_field(three):
    engine = mmm_engine.Engine.from_yaml(three)
    bad = signal()
    del bad["tenant_id"]
    with pytest.raises(mmm_engine.SignalError) as caught:
        engine.decide(bad, now=NOW)
    assert (caught.value.code, caught.value.field) == ("SIGNAL_INVALID", "tenant_id")
    with pytest.raises(mmm_engine.ContextError) as caught:
        engine.decide(signal(), {"preferences": {"snooze_until": "soon"}}, now=NOW)
    assert (caught.value.code, caught.value.field) == ("CONTEXT_INVALID", "preferences.snooze_until")
    assert isinstance(caught.value, mmm_engine.SignalError)
    with pytest.raises(mmm_engine.SignalError):
        engine.decide({"tenant_id": object()}, now=NOW)
    with pytest.raises(mmm_engine.SignalError):
        engine.decide(signal(payload={"n": float("nan")}), now=NOW)


def test_receipt_errors(three):
    with pytest.raises(mmm_engine.ReceiptError) as caught:
        mmm_engine.verify_receipt({"payloadType": "x"}, "00" * 32)
    assert caught.value.code == "RECEIPT_INVALID"
