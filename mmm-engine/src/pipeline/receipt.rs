//! The receipt stage: with a signing key, the receipt payload (SPEC §7) is built from
//! the decision and handed to the receipt trail, which chains, signs and hands it to the
//! receipts port, or queues it in the outbox, or returns it in the decision.

use std::time::Instant;

use serde_json::json;

use crate::context::Context;
use crate::decision::{Degraded, ReceiptRef, ReceiptStatus};
use crate::pipeline::record::{CandidateRecord, DecisionRecord};
use crate::receipt::inputs_sha256;
use crate::services::receipt_trail::{ReceiptTrail, Reservation};
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
    let receipt_id = crate::ids::new_id();
    let inputs_sha256 = inputs_sha256(&r.signal.to_json(), &r.ctx.raw).unwrap_or_default();
    // Degraded codes known before the hand-over; `receipts_queued` cannot be in the
    // receipt it is about.
    let payload = json!({
        "receipt_id": receipt_id,
        "decision_id": r.decision_id,
        "tenant_id": r.signal.tenant_id,
        "actor_id": r.signal.actor_id,
        "decided_at": r.now_text,
        "signal": {"signal_id": r.signal.signal_id, "kind": r.signal.kind},
        "inputs_sha256": inputs_sha256,
        "policy_snapshot_id": r.policy_snapshot_id,
        "playbooks": r.candidates.iter().map(|c| json!({"id": &*c.plan.id, "version": c.plan.version})).collect::<Vec<_>>(),
        "actions": record.actions.iter().map(|a| json!({
            "action_id": a.action_id, "playbook_id": a.playbook.id, "playbook_version": a.playbook.version,
            "type": a.kind, "surfaces": a.surfaces, "fingerprint": a.fingerprint,
        })).collect::<Vec<_>>(),
        "suppressed": record.suppressed.iter().map(|s| json!({"playbook_id": s.playbook.id, "reason": s.reason})).collect::<Vec<_>>(),
        "degraded": record.degraded,
        "engine_version": crate::ENGINE_VERSION,
    });
    let receipt = trail.emit(receipt_id, payload, r.reservation, r.deadline);
    if receipt.status == ReceiptStatus::Queued {
        record.degrade(Degraded::ReceiptsQueued);
    }
    receipt
}
