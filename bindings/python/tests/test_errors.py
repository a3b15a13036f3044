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


def test_one_exception_class_per_code_each_an_mmm_error():
    classes = mmm_engine.ERROR_CLASSES
    assert len(classes) >= 16
    assert len(set(classes.values())) == len(classes), "one class per code"
    for code, cls in classes.items():
        assert issubclass(cls, mmm_engine.MmmError), code
        assert cls.code == code
        assert getattr(mmm_engine, cls.__name__) is cls and cls.__name__ in mmm_engine.__all__
    assert classes["SIGNAL_INVALID"] is mmm_engine.SignalError
    assert classes["REJECTED"] is mmm_engine.Rejected
    assert issubclass(mmm_engine.ContextError, mmm_engine.SignalError)
    assert issubclass(mmm_engine.IoError, mmm_engine.PlaybookError)


def test_errors_are_raised_as_the_class_of_their_code(three, tmp_path):
    with pytest.raises(mmm_engine.IoError) as caught:
        mmm_engine.Engine.from_path(tmp_path / "missing")
    assert caught.value.code == "IO"
    with pytest.raises(mmm_engine.ConfigError) as caught:
        mmm_engine.Engine.from_yaml(three, config={"ide_deadline_ms": "soon"})
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "ide_deadline_ms")
    engine = mmm_engine.Engine.from_yaml(three)
    with pytest.raises(mmm_engine.NotFoundError):
        engine.get_approval("nope")
    with pytest.raises(mmm_engine.NotFoundError):
        engine.set_experiment_status("nope", "paused", "admin")

    class DownAudit:
        def record(self, event):
            raise RuntimeError("audit log full")

    audited = mmm_engine.Engine.from_yaml(three, audit=DownAudit())
    (tmp_path / "p.yaml").write_text(three)
    with pytest.raises(mmm_engine.AuditFailedError) as caught:
        audited.reload(tmp_path / "p.yaml")
    assert caught.value.code == "AUDIT_FAILED"
    assert "audit log full" in caught.value.message
