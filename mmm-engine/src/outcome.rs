//! Outcomes (SPEC §9): what the actor did with an action, validated. They feed experiment
//! statistics and per-tenant aggregate counts (kept by `services/action_memory.rs`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

crate::model::string_enum! {
    /// What the actor did.
    OutcomeResult {
        /// Accepted the nudge.
        Accepted => "accepted",
        /// Dismissed it.
        Dismissed => "dismissed",
        /// Snoozed it.
        Snoozed => "snoozed",
        /// Never reacted.
        Ignored => "ignored",
        /// Ran the multiplier.
        Executed => "executed",
        /// The multiplier ran and failed.
        Failed => "failed",
    }
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
}
