//! The ports (SPEC §5): what the engine asks of the world. Each is a trait; each is
//! optional. Every call to a configured port goes through a circuit breaker and runs under
//! a timeout on the engine's call pool, so a port that fails, hangs, panics or answers
//! with malformed data is a dependency that is down — never a crash, never a blocked
//! caller.

pub mod breaker;
pub(crate) mod guard;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::model::PortName;
pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};

use crate::decision::Action;
use crate::model::{ActionType, Surface};

/// What a port call can end in, besides an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The dependency is down, slow or answered with something unusable. Counts as a
    /// failure for its circuit breaker.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The dependency answered with a business error (a deny, a not-found, a 4xx): it is
    /// up. Does not count against its breaker.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl PortError {
    /// The serialisable form: `UNAVAILABLE` or `REJECTED`.
    pub fn info(&self) -> crate::ErrorInfo {
        let code = match self {
            PortError::Unavailable(_) => crate::codes::UNAVAILABLE,
            PortError::Rejected(_) => crate::codes::REJECTED,
        };
        crate::ErrorInfo::new(code, self.to_string())
    }
}

/// A policy snapshot (given in the context or from the Policy port).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySnapshot {
    /// Identifies the snapshot; echoed in decisions and receipts.
    #[serde(default)]
    pub snapshot_id: Option<String>,
    /// Action types denied.
    #[serde(default)]
    pub denied_action_types: Vec<ActionType>,
    /// Multiplier operations denied.
    #[serde(default)]
    pub denied_operations: Vec<String>,
    /// Playbook ids denied.
    #[serde(default)]
    pub denied_playbooks: Vec<String>,
}

/// What IAM says about an actor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorInfo {
    /// An inactive actor gets no decisions (Forbidden).
    pub active: bool,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// IANA time zone.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Tenant configuration from data governance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantConfig {
    /// A safety-critical tenant gets no actions when policy is unavailable.
    #[serde(default)]
    pub safety_critical: Option<bool>,
    /// Payload keys removed before evaluation (replaces the default deny list).
    #[serde(default)]
    pub deny_payload_keys: Option<Vec<String>>,
    /// Anything else; visible to conditions and templates as `ctx.tenant.config.*`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A request to the LLM for a mentor action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// Tenant.
    pub tenant_id: String,
    /// Actor.
    pub actor_id: String,
    /// The playbook asking.
    pub playbook_id: String,
    /// The rendered prompt.
    pub prompt: String,
    /// Upper bound on the answer's length.
    pub max_tokens: u32,
}

/// The safety verdict on an LLM answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SafetyStatus {
    /// Safe.
    Pass,
    /// Usable, with flags.
    Warn,
    /// Unsafe: the fallback is used instead.
    Fail,
}

/// The safety check attached to an LLM answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Safety {
    /// Pass, warn or fail.
    pub status: SafetyStatus,
    /// What was flagged.
    #[serde(default)]
    pub risk_flags: Vec<String>,
    /// What the gateway redacted, if anything.
    #[serde(default)]
    pub redaction_summary: Option<Value>,
}

/// An LLM answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// The text.
    pub text: String,
    /// Its safety check.
    pub safety: Safety,
}

/// IAM: is this actor active, and what are their roles and time zone?
pub trait Iam: Send + Sync {
    /// Looks the actor up.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when IAM is down; [`PortError::Rejected`] when the
    /// actor is unknown.
    fn validate_actor(&self, tenant_id: &str, actor_id: &str) -> Result<ActorInfo, PortError>;
}

/// UBI: the actor's recent signals.
pub trait RecentSignals: Send + Sync {
    /// Up to `limit` signals (JSON envelopes), newest first.
    ///
    /// # Errors
    /// [`PortError`] when the store cannot answer.
    fn recent(
        &self,
        tenant_id: &str,
        actor_id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, PortError>;
}

/// Data governance: the tenant's configuration.
pub trait DataGovernance: Send + Sync {
    /// The tenant's configuration.
    ///
    /// # Errors
    /// [`PortError`] when the service cannot answer.
    fn tenant_config(&self, tenant_id: &str) -> Result<TenantConfig, PortError>;
}

/// Policy: the tenant's current policy snapshot.
pub trait Policy: Send + Sync {
    /// The snapshot.
    ///
    /// # Errors
    /// [`PortError`] when the service cannot answer.
    fn snapshot(&self, tenant_id: &str) -> Result<PolicySnapshot, PortError>;
}

/// The LLM gateway, with its safety check.
pub trait Llm: Send + Sync {
    /// Generates text for a mentor action.
    ///
    /// # Errors
    /// [`PortError`] when the gateway cannot answer.
    fn generate(&self, request: &LlmRequest) -> Result<LlmResponse, PortError>;
}

/// The receipts sink (ERIS). Must be idempotent on `receipt_id`.
pub trait Receipts: Send + Sync {
    /// Takes one signed receipt envelope.
    ///
    /// # Errors
    /// [`PortError`] when the sink cannot take it now (the receipt is queued and retried).
    fn emit(&self, envelope: &crate::receipt::Envelope) -> Result<(), PortError>;
}

/// Delivery of actions to their surfaces.
pub trait Delivery: Send + Sync {
    /// Delivers one action to one surface.
    ///
    /// # Errors
    /// [`PortError`] when the surface cannot be reached.
    fn deliver(&self, action: &Action, surface: Surface, rendered: &str) -> Result<(), PortError>;
}

/// Timeouts per port (SPEC defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortTimeouts {
    /// IAM (default 2 s).
    pub iam: std::time::Duration,
    /// Recent signals (default 1 s).
    pub signals: std::time::Duration,
    /// Data governance (default 0.5 s).
    pub data_governance: std::time::Duration,
    /// Policy (default 0.5 s).
    pub policy: std::time::Duration,
    /// LLM (default 3 s).
    pub llm: std::time::Duration,
    /// Receipts, for the synchronous hand-over inside the decision (default 0.5 s).
    pub receipts: std::time::Duration,
    /// Delivery (default 1 s).
    pub delivery: std::time::Duration,
}

impl Default for PortTimeouts {
    fn default() -> Self {
        use std::time::Duration;
        PortTimeouts {
            iam: Duration::from_secs(2),
            signals: Duration::from_secs(1),
            data_governance: Duration::from_millis(500),
            policy: Duration::from_millis(500),
            llm: Duration::from_secs(3),
            receipts: Duration::from_millis(500),
            delivery: Duration::from_secs(1),
        }
    }
}

impl PortTimeouts {
    /// The timeout of `port`.
    pub fn get(&self, port: PortName) -> std::time::Duration {
        match port {
            PortName::Iam => self.iam,
            PortName::Signals => self.signals,
            PortName::DataGovernance => self.data_governance,
            PortName::Policy => self.policy,
            PortName::Llm => self.llm,
            PortName::Receipts => self.receipts,
            PortName::Delivery => self.delivery,
        }
    }
}
