//! The decision (SPEC §4): what the engine answers, with every suppression explained.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{ActionType, PlaybookRef, Surface};

/// Why an action was not returned. The strings are stable and never reworded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The playbook's condition failed or ran out of a limit.
    ConditionError,
    /// A template path was missing at run time.
    TemplateError,
    /// The tenant disabled this action type.
    ActionTypeDisabled,
    /// None of the action's surfaces is enabled for the tenant.
    SurfaceDisabled,
    /// The policy denies the playbook, the action type or the operation.
    PolicyDenied,
    /// The actor opted out of the playbook's category.
    OptedOut,
    /// The actor snoozed nudges.
    Snoozed,
    /// Inside the tenant's or the actor's quiet hours.
    QuietHours,
    /// The playbook fired for this actor too recently.
    FatigueCooldown,
    /// The playbook fired `max` times in its window.
    FatigueMax,
    /// The actor's budget is spent.
    ActorBudget,
    /// Over `max_actions_per_decision`.
    MaxActions,
    /// A mentor with no fallback while the LLM is unavailable.
    LlmUnavailable,
    /// The LLM's answer failed its safety check and there is no fallback.
    LlmUnsafe,
    /// The actor is in an experiment's holdout.
    ExperimentHoldout,
    /// Policy is unavailable and this action may not go out without it.
    PolicyUnavailable,
    /// The receipts outbox is full: no nudge goes out unaudited.
    ReceiptsBackpressure,
}

impl Reason {
    /// Every reason code.
    pub const ALL: &'static [Reason] = &[
        Reason::ConditionError,
        Reason::TemplateError,
        Reason::ActionTypeDisabled,
        Reason::SurfaceDisabled,
        Reason::PolicyDenied,
        Reason::OptedOut,
        Reason::Snoozed,
        Reason::QuietHours,
        Reason::FatigueCooldown,
        Reason::FatigueMax,
        Reason::ActorBudget,
        Reason::MaxActions,
        Reason::LlmUnavailable,
        Reason::LlmUnsafe,
        Reason::ExperimentHoldout,
        Reason::PolicyUnavailable,
        Reason::ReceiptsBackpressure,
    ];

    /// The stable string.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ConditionError => "condition_error",
            Reason::TemplateError => "template_error",
            Reason::ActionTypeDisabled => "action_type_disabled",
            Reason::SurfaceDisabled => "surface_disabled",
            Reason::PolicyDenied => "policy_denied",
            Reason::OptedOut => "opted_out",
            Reason::Snoozed => "snoozed",
            Reason::QuietHours => "quiet_hours",
            Reason::FatigueCooldown => "fatigue_cooldown",
            Reason::FatigueMax => "fatigue_max",
            Reason::ActorBudget => "actor_budget",
            Reason::MaxActions => "max_actions",
            Reason::LlmUnavailable => "llm_unavailable",
            Reason::LlmUnsafe => "llm_unsafe",
            Reason::ExperimentHoldout => "experiment_holdout",
            Reason::PolicyUnavailable => "policy_unavailable",
            Reason::ReceiptsBackpressure => "receipts_backpressure",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the decision ran in a degraded mode (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Degraded {
    /// The LLM is down; mentors used their fallback.
    LlmUnavailable,
    /// Policy came from a cached snapshot.
    PolicyCached,
    /// No policy could be had.
    PolicyUnavailable,
    /// Recent signals could not be had.
    UbiUnavailable,
    /// Tenant configuration could not be had.
    DataGovernanceUnavailable,
    /// The receipt waits in the outbox.
    ReceiptsQueued,
    /// The receipts outbox is full.
    ReceiptsBackpressure,
    /// The decision passed its deadline.
    DeadlineExceeded,
}

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
    pub experiment: Option<Value>,
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
    pub status: String,
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
    pub condition: Value,
    /// Per action, its outcome (empty when the condition was not true).
    pub actions: Vec<ExplainAction>,
    /// The experiment and variant applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Value>,
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

    #[test]
    fn reason_strings_are_the_spec_strings() {
        for r in Reason::ALL {
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                Value::String(r.as_str().to_owned())
            );
        }
        assert_eq!(Reason::ALL.len(), 17);
        assert_eq!(
            serde_json::to_value(Degraded::DataGovernanceUnavailable).unwrap(),
            "data_governance_unavailable"
        );
    }
}
