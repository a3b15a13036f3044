//! Outcomes (SPEC §9): what the actor did with an action. They feed experiment statistics
//! and per-tenant aggregate counts (by playbook, action type and result; never per actor).

use dashmap::DashMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::ActionType;

/// What the actor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeResult {
    /// Accepted the nudge.
    Accepted,
    /// Dismissed it.
    Dismissed,
    /// Snoozed it.
    Snoozed,
    /// Never reacted.
    Ignored,
    /// Ran the multiplier.
    Executed,
    /// The multiplier ran and failed.
    Failed,
}

/// One validated outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The action it is about.
    pub action_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Actor (used to validate, never aggregated).
    pub actor_id: String,
    /// Playbook.
    pub playbook_id: String,
    /// What happened.
    pub result: OutcomeResult,
    /// When (RFC 3339).
    pub at: String,
}

/// The outcome broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid outcome: field `{field}`: {message}")]
pub struct OutcomeError {
    /// The field.
    pub field: String,
    /// The rule broken.
    pub message: String,
}

impl OutcomeError {
    /// The serialisable form.
    pub fn info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo {
            code: crate::codes::OUTCOME_INVALID.to_owned(),
            message: self.to_string(),
            rule: None,
            field: Some(self.field.clone()),
            file: None,
            line: None,
            column: None,
            playbook: None,
        }
    }
}

impl Outcome {
    /// Validates an outcome given as JSON.
    ///
    /// # Errors
    /// [`OutcomeError`] naming the field.
    pub fn from_json(value: &Value) -> Result<(Outcome, Timestamp), OutcomeError> {
        let outcome: Outcome =
            serde_path_to_error::deserialize(value).map_err(|e| OutcomeError {
                field: crate::error::field_name(&e.path().to_string()),
                message: crate::error::clean_message(&e.inner().to_string()),
            })?;
        let err = |field: &str, message: &str| OutcomeError {
            field: field.into(),
            message: message.into(),
        };
        if outcome.action_id.is_empty() {
            return Err(err("action_id", "is required"));
        }
        if !crate::signal::is_tenant_id(&outcome.tenant_id) {
            return Err(err("tenant_id", "must match [A-Za-z0-9._-]{1,64}"));
        }
        if outcome.actor_id.is_empty() {
            return Err(err("actor_id", "is required"));
        }
        let at = crate::signal::parse_timestamp(&outcome.at).map_err(|m| err("at", &m))?;
        Ok((outcome, at))
    }
}

/// One aggregate count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCount {
    /// Playbook.
    pub playbook_id: String,
    /// Action type (`unknown` when the engine no longer remembers the action).
    #[serde(rename = "type")]
    pub action_type: String,
    /// Result.
    pub result: OutcomeResult,
    /// How many.
    pub count: u64,
}

/// What the engine remembers of an action it returned, for its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionMemo {
    pub tenant_id: String,
    pub playbook_id: String,
    pub kind: ActionType,
    pub experiment: Option<(String, String)>,
}

/// Recently returned actions, bounded: two generations of at most `half` entries each,
/// each a sharded map, so deciding threads do not queue on one lock.
pub(crate) struct ActionMemory {
    half: usize,
    generations: [DashMap<String, ActionMemo>; 2],
    current: std::sync::atomic::AtomicUsize,
    count: std::sync::atomic::AtomicUsize,
    rotating: parking_lot::Mutex<()>,
}

impl ActionMemory {
    pub fn new(capacity: usize) -> Self {
        ActionMemory {
            half: (capacity / 2).max(1),
            generations: [DashMap::new(), DashMap::new()],
            current: std::sync::atomic::AtomicUsize::new(0),
            count: std::sync::atomic::AtomicUsize::new(0),
            rotating: parking_lot::Mutex::new(()),
        }
    }

    pub fn remember(&self, action_id: String, memo: ActionMemo) {
        use std::sync::atomic::Ordering;
        let current = self.current.load(Ordering::Acquire) & 1;
        if let Some(map) = self.generations.get(current) {
            map.insert(action_id, memo);
        }
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 >= self.half {
            // One thread rotates; the others carry on. The older generation is emptied
            // and becomes the current one.
            if let Some(_guard) = self.rotating.try_lock() {
                if self.count.load(Ordering::Acquire) >= self.half {
                    let next = (self.current.load(Ordering::Acquire) + 1) & 1;
                    if let Some(old) = self.generations.get(next) {
                        old.clear();
                    }
                    self.current.store(next, Ordering::Release);
                    self.count.store(0, Ordering::Release);
                }
            }
        }
    }

    pub fn recall(&self, action_id: &str) -> Option<ActionMemo> {
        self.generations
            .iter()
            .find_map(|g| g.get(action_id).map(|m| m.clone()))
    }
}

/// Per-tenant counts.
#[derive(Default)]
pub(crate) struct Aggregates {
    counts: DashMap<(String, String, String, OutcomeResult), u64>,
}

impl Aggregates {
    pub fn add(&self, tenant: &str, playbook: &str, kind: &str, result: OutcomeResult) {
        *self
            .counts
            .entry((
                tenant.to_owned(),
                playbook.to_owned(),
                kind.to_owned(),
                result,
            ))
            .or_insert(0) += 1;
    }

    pub fn for_tenant(&self, tenant: &str) -> Vec<OutcomeCount> {
        let mut out: Vec<OutcomeCount> = self
            .counts
            .iter()
            .filter(|e| e.key().0 == tenant)
            .map(|e| OutcomeCount {
                playbook_id: e.key().1.clone(),
                action_type: e.key().2.clone(),
                result: e.key().3,
                count: *e.value(),
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.playbook_id, &a.action_type, a.result).cmp(&(
                &b.playbook_id,
                &b.action_type,
                b.result,
            ))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_are_validated_field_by_field() {
        let ok = json!({"action_id": "a", "tenant_id": "acme", "actor_id": "dev", "playbook_id": "p", "result": "accepted", "at": "2026-11-22T10:00:00Z"});
        assert!(Outcome::from_json(&ok).is_ok());
        let mut bad = ok.clone();
        bad["result"] = json!("loved");
        assert_eq!(Outcome::from_json(&bad).unwrap_err().field, "result");
        let mut bad = ok.clone();
        bad["at"] = json!("now");
        assert_eq!(Outcome::from_json(&bad).unwrap_err().field, "at");
        let mut bad = ok;
        bad["mood"] = json!("happy");
        assert!(Outcome::from_json(&bad)
            .unwrap_err()
            .message
            .contains("unknown field"));
    }

    #[test]
    fn the_memory_is_bounded_and_keeps_the_newest() {
        let m = ActionMemory::new(4);
        let memo = ActionMemo {
            tenant_id: "t".into(),
            playbook_id: "p".into(),
            kind: ActionType::Mirror,
            experiment: None,
        };
        for i in 0..10 {
            m.remember(format!("a{i}"), memo.clone());
        }
        assert!(m.recall("a9").is_some() && m.recall("a8").is_some());
        assert!(m.recall("a0").is_none());
    }
}
