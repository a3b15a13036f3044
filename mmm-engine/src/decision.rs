//! The decision (SPEC §4): what the engine answers, with every suppression explained.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::ids::{Hex256, Id, SharedStr};
use crate::model::{ActionType, PlaybookRef, Surface};
pub use crate::model::{Degraded, Reason, ReceiptStatus};

/// One fact a condition read, as it was when the decision was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The dotted path, e.g. `signal.payload.lines_changed` (shared with the plan).
    pub path: SharedStr,
    /// Its value (`null` when missing).
    pub value: Value,
}

/// Why an action was suggested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rationale {
    /// The playbook's description (shared with the plan).
    pub why: SharedStr,
    /// The signal kind that triggered it (shared by the decision's actions).
    pub trigger: SharedStr,
    /// The facts the condition read: `[{path, value}]`.
    pub evidence: Vec<Evidence>,
}

/// A nudge to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// UUIDv7.
    pub action_id: Id,
    /// Hex SHA-256 over tenant, actor, playbook id, action index and repo id: stable across
    /// decisions, for de-duplicating the same nudge.
    pub fingerprint: Hex256,
    /// The playbook version that produced it.
    pub playbook: PlaybookRef,
    /// Mirror, mentor or multiplier.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// The playbook's category (shared with the plan).
    pub category: SharedStr,
    /// The playbook's priority.
    pub priority: u8,
    /// Where to show it (shared with the plan when every surface of the action is used).
    #[serde(with = "crate::ids::shared")]
    pub surfaces: Arc<[Surface]>,
    /// Title, plain text.
    pub title: String,
    /// Text, plain text.
    pub text: String,
    /// Per surface, the message ready to post (Markdown surfaces escaped for Markdown).
    pub rendered: Rendered,
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

/// Per surface, an action's message ready to post: one slot per surface, held inline, read
/// and serialised like the `BTreeMap<Surface, String>` it replaces (a JSON object keyed by
/// surface, in surface order). Most actions have one surface; a map would allocate a node
/// for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered([Option<String>; Surface::ALL.len()]);

impl Rendered {
    /// The message for `surface`, if the action has one there.
    pub fn get(&self, surface: &Surface) -> Option<&String> {
        self.0.get(*surface as usize).and_then(Option::as_ref)
    }

    /// Sets the message for `surface`, returning the one it replaces.
    pub fn insert(&mut self, surface: Surface, text: String) -> Option<String> {
        self.0
            .get_mut(surface as usize)
            .and_then(|slot| slot.replace(text))
    }

    /// Whether there is a message for `surface`.
    pub fn contains_key(&self, surface: &Surface) -> bool {
        self.get(surface).is_some()
    }

    /// `(surface, message)` pairs, in surface order.
    pub fn iter(&self) -> RenderedIter<'_> {
        fn present<'a>(
            (s, text): (&'a Surface, &'a Option<String>),
        ) -> Option<(&'a Surface, &'a String)> {
            text.as_ref().map(|t| (s, t))
        }
        Surface::ALL.iter().zip(self.0.iter()).filter_map(present)
    }

    /// The messages, in surface order.
    pub fn values(&self) -> impl Iterator<Item = &String> + '_ {
        self.0.iter().flatten()
    }

    /// How many surfaces have a message.
    pub fn len(&self) -> usize {
        self.values().count()
    }

    /// Whether no surface has a message.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

/// The `(surface, message)` pairs of a [`Rendered`].
pub type RenderedIter<'a> = std::iter::FilterMap<
    std::iter::Zip<std::slice::Iter<'a, Surface>, std::slice::Iter<'a, Option<String>>>,
    fn((&'a Surface, &'a Option<String>)) -> Option<(&'a Surface, &'a String)>,
>;

impl<'a> IntoIterator for &'a Rendered {
    type Item = (&'a Surface, &'a String);
    type IntoIter = RenderedIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::ops::Index<&Surface> for Rendered {
    type Output = String;
    #[expect(
        clippy::panic,
        reason = "indexing a missing key panics, as it does on the map this replaces"
    )]
    fn index(&self, surface: &Surface) -> &String {
        match self.get(surface) {
            Some(text) => text,
            None => panic!("no rendering for surface `{surface}`"),
        }
    }
}

impl FromIterator<(Surface, String)> for Rendered {
    fn from_iter<I: IntoIterator<Item = (Surface, String)>>(iter: I) -> Self {
        let mut rendered = Rendered::default();
        for (surface, text) in iter {
            rendered.insert(surface, text);
        }
        rendered
    }
}

impl Serialize for Rendered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Rendered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<Surface, String>::deserialize(d).map(|m| m.into_iter().collect())
    }
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
    pub detail: Detail,
}

/// The details of a suppression, for people. Kept structured until it is serialised (as
/// the sentence it reads): most suppressions are past the cap and say the same thing.
#[derive(Debug, Clone, Eq)]
#[non_exhaustive]
pub enum Detail {
    /// Past `max_actions_per_decision`: "the decision already has N actions".
    MaxActions(usize),
    /// A fixed sentence.
    Static(&'static str),
    /// Any other sentence.
    Text(String),
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::MaxActions(n) => write!(f, "the decision already has {n} actions"),
            Detail::Static(s) => f.write_str(s),
            Detail::Text(s) => f.write_str(s),
        }
    }
}

// Two details are equal when they read the same, whichever form holds them.
impl PartialEq for Detail {
    fn eq(&self, other: &Detail) -> bool {
        match (self, other) {
            (Detail::MaxActions(a), Detail::MaxActions(b)) => a == b,
            (Detail::Static(a), Detail::Static(b)) => a == b,
            (Detail::Text(a), Detail::Text(b)) => a == b,
            _ => self.to_string() == other.to_string(),
        }
    }
}

impl PartialEq<str> for Detail {
    fn eq(&self, other: &str) -> bool {
        match self {
            Detail::Static(s) => *s == other,
            Detail::Text(s) => s == other,
            Detail::MaxActions(n) => other
                .strip_prefix("the decision already has ")
                .and_then(|rest| rest.strip_suffix(" actions"))
                .is_some_and(|digits| {
                    digits.bytes().all(|b| b.is_ascii_digit())
                        && (digits == "0" || !digits.starts_with('0'))
                        && digits.parse::<usize>().ok() == Some(*n)
                }),
        }
    }
}

impl PartialEq<&str> for Detail {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl From<String> for Detail {
    fn from(text: String) -> Detail {
        Detail::Text(text)
    }
}

impl From<&'static str> for Detail {
    fn from(text: &'static str) -> Detail {
        Detail::Static(text)
    }
}

impl From<Detail> for String {
    fn from(detail: Detail) -> String {
        match detail {
            Detail::Text(s) => s,
            other => other.to_string(),
        }
    }
}

impl Serialize for Detail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Detail::Static(text) => s.serialize_str(text),
            Detail::Text(text) => s.serialize_str(text),
            Detail::MaxActions(_) => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Detail::Text)
    }
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
    pub decision_id: Id,
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
        let over_cap = Detail::MaxActions(3);
        assert_eq!(
            serde_json::to_string(&over_cap).unwrap(),
            "\"the decision already has 3 actions\""
        );
        let text = Detail::Text("the decision already has 3 actions".into());
        assert_eq!(over_cap, text);
        assert_eq!(over_cap, "the decision already has 3 actions");
        assert_ne!(over_cap, "the decision already has 03 actions");
        assert_ne!(over_cap, "the decision already has +3 actions");
    }
}
