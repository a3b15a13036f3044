//! The receipt stage: with a signing key, the receipt payload (SPEC §7) is built from
//! the decision and handed to the receipt trail, which chains, signs and hands it to the
//! receipts port, or queues it in the outbox, or returns it in the decision.

use std::time::Instant;

use crate::context::Context;
use crate::decision::{Degraded, ReceiptRef, ReceiptStatus};
use crate::pipeline::record::{CandidateRecord, DecisionRecord};
use crate::receipt::jcs::{write_str, write_u64, Members};
use crate::receipt::{signal_inputs_sha256, ReceiptError};
use crate::services::receipt_trail::{PayloadMembers, ReceiptTrail, Reservation};
use crate::signal::Signal;

/// What a receipt says besides the decision record.
pub(crate) struct ReceiptInputs<'a> {
    pub decision_id: &'a str,
    pub signal: &'a Signal,
    pub ctx: &'a Context,
    pub now_text: &'a str,
    pub policy_snapshot_id: Option<&'a str>,
    pub candidates: &'a [CandidateRecord<'a>],
    pub reservation: Reservation,
    pub deadline: Instant,
}

/// Builds the receipt and hands it over; `disabled` without a signing key.
pub(crate) fn emit(
    trail: &ReceiptTrail,
    r: ReceiptInputs<'_>,
    record: &mut DecisionRecord,
) -> ReceiptRef {
    if !trail.signing() {
        return ReceiptRef {
            receipt_id: None,
            status: ReceiptStatus::Disabled,
            envelope: None,
        };
    }
    let receipt_id: String = crate::ids::new_id().into();
    let payload = payload(&r, record, &receipt_id);
    let receipt = trail.emit(receipt_id, payload, r.reservation, r.deadline);
    if receipt.status == ReceiptStatus::Queued {
        record.degrade(Degraded::ReceiptsQueued);
    }
    receipt
}

/// The receipt payload (SPEC §7) as canonical members around `chain`, written straight
/// from the decision record: building it as a JSON value first cost more than signing.
/// Keys are written in JCS order (UTF-16 order, here plain ASCII order); the test below
/// checks the bytes against the payload built as a value and canonicalised.
fn payload(
    r: &ReceiptInputs<'_>,
    record: &DecisionRecord,
    receipt_id: &str,
) -> Result<PayloadMembers, ReceiptError> {
    let inputs_sha256 = signal_inputs_sha256(r.signal, &r.ctx.raw).unwrap_or_default();
    let mut before_chain = Vec::with_capacity(128 + 256 * record.actions.len());
    let mut m = Members::new(&mut before_chain);
    let out = m.key("actions");
    out.push(b'[');
    for (i, a) in record.actions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        let mut action = Members::new(out);
        write_str(&a.action_id, action.key("action_id"));
        write_str(&a.fingerprint, action.key("fingerprint"));
        write_str(&a.playbook.id, action.key("playbook_id"));
        write_u64(
            u64::from(a.playbook.version),
            action.key("playbook_version"),
        );
        write_names(
            a.surfaces.iter().map(|s| s.as_str()),
            action.key("surfaces"),
        );
        write_str(a.kind.as_str(), action.key("type"));
        out.push(b'}');
    }
    out.push(b']');
    write_str(&r.signal.actor_id, m.key("actor_id"));

    // `chain` comes here; the signer writes it.
    let mut after_chain =
        Vec::with_capacity(512 + 40 * r.candidates.len() + 64 * record.suppressed.len());
    let mut m = Members::new(&mut after_chain);
    write_str(r.now_text, m.key("decided_at"));
    write_str(r.decision_id, m.key("decision_id"));
    write_names(
        record.degraded.iter().map(|d| d.as_str()),
        m.key("degraded"),
    );
    write_str(crate::ENGINE_VERSION, m.key("engine_version"));
    write_str(&inputs_sha256, m.key("inputs_sha256"));
    let out = m.key("playbooks");
    out.push(b'[');
    for (i, c) in r.candidates.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        let mut playbook = Members::new(out);
        write_str(&c.plan.id, playbook.key("id"));
        write_u64(u64::from(c.plan.version), playbook.key("version"));
        out.push(b'}');
    }
    out.push(b']');
    match r.policy_snapshot_id {
        Some(id) => write_str(id, m.key("policy_snapshot_id")),
        None => m.key("policy_snapshot_id").extend_from_slice(b"null"),
    }
    write_str(receipt_id, m.key("receipt_id"));
    let out = m.key("signal");
    out.push(b'{');
    let mut signal = Members::new(out);
    write_str(&r.signal.kind, signal.key("kind"));
    write_str(&r.signal.signal_id, signal.key("signal_id"));
    out.push(b'}');
    let out = m.key("suppressed");
    out.push(b'[');
    for (i, s) in record.suppressed.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        let mut suppressed = Members::new(out);
        write_str(&s.playbook.id, suppressed.key("playbook_id"));
        write_str(s.reason.as_str(), suppressed.key("reason"));
        out.push(b'}');
    }
    out.push(b']');
    write_str(&r.signal.tenant_id, m.key("tenant_id"));
    Ok(PayloadMembers {
        before_chain,
        after_chain,
    })
}

/// A JSON array of the stable names of enum values (`Surface`, `Degraded`: each
/// serialises as its name, so this is the array's canonical form).
fn write_names(names: impl Iterator<Item = &'static str>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(name, out);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::{json, Value};

    use crate::receipt::{sha256_hex, SigningKey};
    use crate::{DecideOptions, Engine, PlaybookSet};

    /// The payload as the receipt stage built it before it wrote members directly: a
    /// JSON value, canonicalised by `serde_json_canonicalizer`.
    fn as_a_value(decision: &crate::Decision, payload: &Value) -> Value {
        json!({
            "receipt_id": decision.receipt.receipt_id,
            "decision_id": decision.decision_id,
            "tenant_id": decision.tenant_id,
            "actor_id": decision.actor_id,
            "decided_at": decision.decided_at,
            "signal": {"signal_id": decision.signal_id, "kind": payload["signal"]["kind"]},
            "inputs_sha256": payload["inputs_sha256"],
            "policy_snapshot_id": decision.policy_snapshot_id,
            "playbooks": payload["playbooks"],
            "actions": decision.actions.iter().map(|a| json!({
                "action_id": a.action_id, "playbook_id": a.playbook.id, "playbook_version": a.playbook.version,
                "type": a.kind, "surfaces": &*a.surfaces, "fingerprint": a.fingerprint,
            })).collect::<Vec<_>>(),
            "suppressed": decision.suppressed.iter().map(|s| json!({"playbook_id": s.playbook.id, "reason": s.reason})).collect::<Vec<_>>(),
            "degraded": decision.degraded,
            "engine_version": crate::ENGINE_VERSION,
            "chain": payload["chain"],
        })
    }

    #[test]
    fn the_payload_written_directly_is_the_canonical_payload_value() {
        let set = PlaybookSet::from_yaml(
            r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: large-pr, version: 3, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  when: signal.payload.lines > 10
  actions:
    - {type: mirror, surfaces: [pr_comment, ide], title: "Large \"change\"", text: "Lines: {{ signal.payload.lines }} é \u2028"}
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: broken, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  when: signal.payload.lines / 0 > 1
  actions:
    - {type: mirror, surfaces: [ide], title: Broken, text: never}
"#,
        )
        .unwrap();
        let engine = Engine::builder()
            .playbooks(set)
            .signing_key(SigningKey::from_bytes(&[7; 32]))
            .build();
        let key = engine.receipt_public_key().unwrap();
        let mut suppressions = 0;
        for (i, lines) in [420, 3, 99].into_iter().enumerate() {
            let signal = json!({"tenant_id": "acme", "actor_id": "dev-\"42\"", "kind": "pr.opened",
                "occurred_at": "2026-11-22T10:00:00Z", "signal_id": format!("s-{i}"),
                "payload": {"lines": lines, "note": "tab\there"}});
            let decision = engine
                .decide(
                    &signal,
                    Some(&json!({"preferences": {"opt_out_categories": ["x"]}})),
                    &DecideOptions::default(),
                )
                .unwrap();
            suppressions += decision.suppressed.len();
            let envelope = decision.receipt.envelope.clone().unwrap();
            let payload = crate::receipt::verify_receipt(&envelope, &key).unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&envelope.payload)
                .unwrap();
            let expected =
                serde_json_canonicalizer::to_vec(&as_a_value(&decision, &payload)).unwrap();
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            assert_eq!(payload["chain"]["seq"], i + 1);
            assert_eq!(payload["playbooks"].as_array().unwrap().len(), 2);
        }
        assert!(suppressions > 0, "the broken playbook is suppressed");
    }

    #[test]
    fn the_inputs_hash_is_that_of_the_canonical_inputs_value() {
        let signal = json!({"signal_id": "s", "payload": {"b": 1, "a": [0.5, "é\n"]}});
        let context = json!({"recent_signals": [], "policy": {"z": null, "y": true}});
        let expected = sha256_hex(
            &serde_json_canonicalizer::to_vec(&json!({"signal": signal, "context": context}))
                .unwrap(),
        );
        let Value::Object(context) = context else {
            unreachable!()
        };
        assert_eq!(
            crate::receipt::inputs_sha256(&signal, &context).unwrap(),
            expected
        );
    }
}
