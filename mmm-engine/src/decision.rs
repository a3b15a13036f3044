//! The decision (SPEC §4): what the engine answers, with every suppression explained.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{ActionType, PlaybookRef, Surface};
pub use crate::model::{Degraded, Reason, ReceiptStatus};

/// One fact a condition read, as it was when the decision was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The dotted path, e.g. `signal.payload.lines_changed`.
    pub path: String,
    /// Its value (`null` when missing).
    pub value: Value,
}

/// Why an action was suggested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rationale {
    /// The playbook's description.
    pub why: String,
    /// The signal kind that triggered it.
    pub trigger: String,
    /// The facts the condition read: `[{path, value}]`.
    pub evidence: Vec<Evidence>,
}

/// A nudge to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// UUIDv7.
    pub action_id: String,
    /// Hex SHA-256 over tenant, actor, playbook id, action index and repo id: stable across
    /// decisions, for de-duplicating the same nudge.
    pub fingerprint: String,
    /// The playbook version that produced it.
    pub playbook: PlaybookRef,
    /// Mirror, mentor or multiplier.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// The playbook's category.
    pub category: String,
    /// The playbook's priority.
    pub priority: u8,
    /// Where to show it.
    pub surfaces: Vec<Surface>,
    /// Title, plain text.
    pub title: String,
    /// Text, plain text.
    pub text: String,
    /// Per surface, the message ready to post (Markdown surfaces escaped for Markdown).
    pub rendered: BTreeMap<Surface, String>,
    /// Why.
    pub rationale: Rationale,
    /// Always true for multipliers.
    pub requires_consent: bool,
    /// Needs approvals on two channels.
    pub dual_channel: bool,
    /// The multiplier's operation.
    pub operation: Option<String>,
    /// The multiplier's parameters.
    pub params: Option<Value>,
    /// The experiment and variant that shaped it, if any.
    pub experiment: Option<ExperimentRef>,
}

/// The experiment and variant that shaped an action: `{"id": …, "variant": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentRef {
    /// The experiment id.
    pub id: String,
    /// The variant's name.
    pub variant: String,
}

/// An action that was not returned, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppressed {
    /// The playbook version.
    pub playbook: PlaybookRef,
    /// Index of the action in the playbook.
    pub action_index: usize,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// The stable reason code.
    pub reason: Reason,
    /// Details for people.
    pub detail: String,
}

/// The receipt of a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptRef {
    /// The receipt id (`null` when receipts are disabled).
    pub receipt_id: Option<String>,
    /// `emitted`, `queued` or `disabled` (and `dropped` in the one case the SPEC leaves
    /// open: the outbox full and the port down at once).
    pub status: ReceiptStatus,
    /// The signed envelope, when the engine has a signing key but no receipts port: the
    /// caller is then the receipts sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<crate::receipt::Envelope>,
}

/// How one action of a candidate ended, in the explain trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainAction {
    /// Index in the playbook.
    pub index: usize,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// `acted` or `suppressed:<reason>`.
    pub outcome: String,
}

/// One candidate playbook in the explain trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainEntry {
    /// The playbook version.
    pub playbook: PlaybookRef,
    /// The trigger pattern that matched.
    pub trigger: String,
    /// `true`, `false`, or `{"error": "…"}`.
    pub condition: ConditionResult,
    /// Per action, its outcome (empty when the condition was not true).
    pub actions: Vec<ExplainAction>,
    /// The experiment and variant applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentRef>,
}

/// What a candidate's condition said, in the explain trace: `true`, `false`, or
/// `{"error": "…"}` when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionResult {
    /// It evaluated to this.
    Value(bool),
    /// It failed (`condition_error`).
    Error {
        /// How.
        error: String,
    },
}

/// The engine's answer to one signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// UUIDv7.
    pub decision_id: String,
    /// The signal's id.
    pub signal_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Actor.
    pub actor_id: String,
    /// The decision's `now`, RFC 3339.
    pub decided_at: String,
    /// The actions to show, ordered and capped.
    pub actions: Vec<Action>,
    /// Everything that matched but was not returned.
    pub suppressed: Vec<Suppressed>,
    /// Degraded modes the decision ran in.
    pub degraded: Vec<Degraded>,
    /// JSON paths removed by data minimisation.
    pub redacted: Vec<String>,
    /// The policy snapshot applied.
    pub policy_snapshot_id: Option<String>,
    /// The receipt.
    pub receipt: ReceiptRef,
    /// Time spent deciding, in microseconds.
    pub latency_us: u64,
    /// Whether the decision took longer than its deadline.
    pub latency_warning: bool,
    /// The trace, when asked for.
    pub explain: Option<Vec<ExplainEntry>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_parts_serialise_to_the_spec_json() {
        let e = ExperimentRef {
            id: "copy".into(),
            variant: "concise".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"id": "copy", "variant": "concise"})
        );
        assert_eq!(
            serde_json::to_value(ConditionResult::Value(false)).unwrap(),
            json!(false)
        );
        let failed = ConditionResult::Error {
            error: "boom".into(),
        };
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"error": "boom"})
        );
        assert_eq!(
            serde_json::from_value::<ConditionResult>(json!({"error": "boom"})).unwrap(),
            failed
        );
        assert_eq!(
            serde_json::to_value(ReceiptStatus::Disabled).unwrap(),
            json!("disabled")
        );
    }
}
