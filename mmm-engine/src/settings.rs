//! Engine settings.

use std::time::Duration as StdDuration;

use crate::condition::ConditionLimits;
use crate::ports::{BreakerConfig, PortTimeouts};
use crate::signal::DEFAULT_MAX_PAYLOAD_BYTES;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Largest payload accepted, serialized (default 64 KiB).
    pub max_payload_bytes: usize,
    /// What one condition may do at run time.
    pub condition_limits: ConditionLimits,
    /// Deadline for decisions whose signal says the actor is in the IDE (default 150 ms).
    pub ide_deadline: StdDuration,
    /// Deadline for every other decision (default 500 ms).
    pub default_deadline: StdDuration,
    /// Timeouts per port.
    pub timeouts: PortTimeouts,
    /// Circuit-breaker thresholds (one breaker per port).
    pub breaker: BreakerConfig,
    /// A policy snapshot younger than this is used without asking the port (60 s).
    pub policy_ttl: StdDuration,
    /// A cached snapshot up to this old stands in when the port is down (5 min).
    pub policy_max_age: StdDuration,
    /// Tenant configuration is cached this long per tenant (30 s).
    pub tenant_config_ttl: StdDuration,
    /// `max_tokens` asked of the LLM.
    pub llm_max_tokens: u32,
    /// The LLM is not called when less than this is left of the deadline (50 ms).
    pub llm_min_budget: StdDuration,
    /// Upper bound on threads running port calls.
    pub max_port_threads: usize,
    /// Seeds Thompson sampling, so that a replay re-weights the same way.
    pub experiment_seed: u64,
    /// Returned actions remembered for their outcomes.
    pub remembered_actions: usize,
    /// How long a dual-channel approval stays open (24 h).
    pub approval_ttl: StdDuration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            condition_limits: ConditionLimits::default(),
            ide_deadline: StdDuration::from_millis(150),
            default_deadline: StdDuration::from_millis(500),
            timeouts: PortTimeouts::default(),
            breaker: BreakerConfig::default(),
            policy_ttl: StdDuration::from_secs(60),
            policy_max_age: StdDuration::from_secs(300),
            tenant_config_ttl: StdDuration::from_secs(30),
            llm_max_tokens: 512,
            llm_min_budget: StdDuration::from_millis(50),
            max_port_threads: 64,
            experiment_seed: 0,
            remembered_actions: 100_000,
            approval_ttl: StdDuration::from_secs(24 * 3600),
        }
    }
}
