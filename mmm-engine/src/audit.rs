//! The audit sink: every administrative mutation (the playbook set replaced, an
//! experiment's state changed, an approval moving) is recorded with a redacted before and
//! after — identifiers, versions and states, never playbook text or signal content.

use jiff::Timestamp;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

/// One audited mutation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// What changed: `playbook_set.replaced`, `experiment.state_changed`,
    /// `approval.created`, `approval.approved`, `approval.rejected`, `approval.expired`…
    pub kind: String,
    /// Which object (a tenant, an experiment id, an approval id).
    pub subject: String,
    /// Who did it, when known (an approver, an admin).
    pub by: Option<String>,
    /// When.
    pub at: Timestamp,
    /// The object before, redacted.
    pub before: Value,
    /// The object after, redacted.
    pub after: Value,
}

/// An audited mutation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The audit sink could not record the event (its message), so nothing changed.
    #[error("audit sink unavailable: {0}")]
    Unavailable(String),
    /// No experiment has this id, so there is nothing to change.
    #[error("no experiment `{0}`")]
    UnknownExperiment(String),
}

impl AuditError {
    /// The serialisable form: `AUDIT_FAILED` when the sink failed, `NOT_FOUND` for an
    /// unknown experiment.
    pub fn info(&self) -> crate::ErrorInfo {
        let code = match self {
            AuditError::Unavailable(_) => crate::codes::AUDIT_FAILED,
            AuditError::UnknownExperiment(_) => crate::codes::NOT_FOUND,
        };
        crate::ErrorInfo::new(code, self.to_string())
    }
}

/// Receives audit events. An error is reported to the caller of the mutation, which then
/// does not happen (nothing changes unaudited).
pub trait AuditSink: Send + Sync {
    /// Records one event.
    ///
    /// # Errors
    /// A message when the event cannot be recorded.
    fn record(&self, event: &AuditEvent) -> Result<(), String>;
}

/// Keeps events in memory (the default; hosts plug in their audit log).
#[derive(Debug, Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    /// An empty log.
    pub fn new() -> Self {
        MemoryAudit::default()
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: &AuditEvent) -> Result<(), String> {
        self.events.lock().push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_errors_say_what_went_wrong() {
        assert_eq!(
            AuditError::Unavailable("disk full".into()).to_string(),
            "audit sink unavailable: disk full"
        );
        assert_eq!(
            AuditError::UnknownExperiment("copy".into()).to_string(),
            "no experiment `copy`"
        );
    }
}
