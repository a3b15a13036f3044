//! Engine settings: [`EngineConfig`], the one settings type every host maps onto. In
//! Rust it is a struct with `Default`; from configuration (a Python `config` dict, Node
//! options, the HTTP host's file) it deserialises from a flat map of keys, durations in
//! milliseconds, unknown keys refused; the keys are in [`EngineConfig`]'s documentation.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::condition::ConditionLimits;
use crate::ports::{BreakerConfig, PortTimeouts};
use crate::signal::DEFAULT_MAX_PAYLOAD_BYTES;

/// Engine settings.
///
/// From configuration, these keys (all optional, listed in [`EngineConfig::KEYS`]):
///
/// | key | default | what |
/// |---|---|---|
/// | `ide_deadline_ms` | 150 | deadline of a decision whose signal says `surface: ide` |
/// | `default_deadline_ms` | 500 | deadline of every other decision |
/// | `iam_timeout_ms`, `signals_timeout_ms`, `data_governance_timeout_ms`, `policy_timeout_ms`, `llm_timeout_ms`, `receipts_timeout_ms`, `delivery_timeout_ms` | 2000, 1000, 500, 500, 3000, 500, 1000 | per-port timeouts |
/// | `policy_ttl_ms` | 60000 | a cached policy snapshot younger than this is used without asking |
/// | `policy_max_age_ms` | 300000 | a cached snapshot up to this old stands in when the port is down |
/// | `tenant_config_ttl_ms` | 30000 | tenant configuration is cached this long |
/// | `llm_min_budget_ms` | 50 | the LLM is not asked with less than this left of the deadline |
/// | `llm_max_tokens` | 512 | `max_tokens` asked of the LLM |
/// | `approval_ttl_ms` | 86400000 | how long a dual-channel approval stays open |
/// | `max_payload_bytes` | 65536 | largest signal payload, serialised |
/// | `max_context_bytes` | 262144 | largest context, serialised (the caller's, and each port answer merged into it) |
/// | `max_deny_keys` | 10000 | most keys a deny list may have (the context's or data governance's) |
/// | `max_deny_key_bytes` | 256 | longest key of a deny list, in bytes |
/// | `outbox_capacity` | 10000 | receipts the default in-memory outbox holds |
/// | `max_port_threads` | 64 | threads running port calls |
/// | `remembered_actions` | 100000 | returned actions remembered for their outcomes |
/// | `fatigue_max_actors` | 100000 | actors the default in-memory fatigue store tracks at most |
/// | `experiment_seed` | 0 | seeds Thompson sampling |
/// | `breaker_failure_threshold`, `breaker_open_ms`, `breaker_half_open_probes`, `breaker_success_threshold` | 5, 60000, 2, 2 | circuit breakers |
/// | `condition_max_operations`, `condition_max_call_depth`, `condition_max_expr_depth`, `condition_max_string_bytes`, `condition_max_array_size`, `condition_max_map_size`, `condition_time_limit_ms`, `condition_max_glob_pattern_bytes`, `condition_max_glob_text_bytes` | 100000, 32, 64, 262144, 10000, 10000, 50, 1024, 4096 | what one condition may do |
///
/// ```
/// use mmm_engine::EngineConfig;
/// use serde_json::json;
///
/// let config = EngineConfig::from_json(&json!({"ide_deadline_ms": 200, "outbox_capacity": 50}))?;
/// assert_eq!(config.ide_deadline.as_millis(), 200);
/// let err = EngineConfig::from_json(&json!({"policy_ttl_ms": -1})).unwrap_err();
/// assert_eq!(err.key, "policy_ttl_ms");
/// # Ok::<(), mmm_engine::SettingsError>(())
/// ```
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
    /// Actors the default in-memory fatigue store tracks at most (100,000).
    pub fatigue_max_actors: usize,
    /// How long a dual-channel approval stays open (24 h).
    pub approval_ttl: StdDuration,
    /// Receipts the default in-memory outbox holds (10,000); unused when the builder is
    /// given an outbox.
    pub outbox_capacity: usize,
    /// Largest context accepted, serialized (default 256 KiB); a port answer merged into
    /// the context (recent signals, tenant configuration) must fit too.
    pub max_context_bytes: usize,
    /// Most keys a deny list may have, from the context or data governance (10,000).
    pub max_deny_keys: usize,
    /// Longest deny-list key, in bytes (256).
    pub max_deny_key_bytes: usize,
}

/// The largest context accepted by default, serialized: 256 KiB.
pub const DEFAULT_MAX_CONTEXT_BYTES: usize = 256 * 1024;

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
            fatigue_max_actors: crate::fatigue::DEFAULT_FATIGUE_MAX_ACTORS,
            approval_ttl: StdDuration::from_secs(24 * 3600),
            outbox_capacity: 10_000,
            max_context_bytes: DEFAULT_MAX_CONTEXT_BYTES,
            max_deny_keys: 10_000,
            max_deny_key_bytes: 256,
        }
    }
}

/// A setting broke its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{key}`: {message}")]
pub struct SettingsError {
    /// The key (`policy_ttl_ms`), or `config` for the settings as a whole.
    pub key: String,
    /// The rule broken.
    pub message: String,
}

impl SettingsError {
    /// The serialisable form (code `CONFIG_INVALID`, the key as `field`).
    pub fn info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo {
            field: Some(self.key.clone()),
            ..crate::ErrorInfo::new(crate::codes::CONFIG_INVALID, self.to_string())
        }
    }
}

impl EngineConfig {
    /// Every key settings may have.
    pub const KEYS: &'static [&'static str] = &[
        "ide_deadline_ms",
        "default_deadline_ms",
        "policy_ttl_ms",
        "policy_max_age_ms",
        "tenant_config_ttl_ms",
        "llm_min_budget_ms",
        "approval_ttl_ms",
        "iam_timeout_ms",
        "signals_timeout_ms",
        "data_governance_timeout_ms",
        "policy_timeout_ms",
        "llm_timeout_ms",
        "receipts_timeout_ms",
        "delivery_timeout_ms",
        "max_payload_bytes",
        "max_context_bytes",
        "max_deny_keys",
        "max_deny_key_bytes",
        "outbox_capacity",
        "llm_max_tokens",
        "max_port_threads",
        "remembered_actions",
        "fatigue_max_actors",
        "experiment_seed",
        "breaker_failure_threshold",
        "breaker_open_ms",
        "breaker_half_open_probes",
        "breaker_success_threshold",
        "condition_max_operations",
        "condition_max_call_depth",
        "condition_max_expr_depth",
        "condition_max_string_bytes",
        "condition_max_array_size",
        "condition_max_map_size",
        "condition_time_limit_ms",
        "condition_max_glob_pattern_bytes",
        "condition_max_glob_text_bytes",
    ];

    /// Settings from a JSON object of the keys above, over the defaults.
    ///
    /// # Errors
    /// A [`SettingsError`] naming the key and the rule: an unknown key, a value of the
    /// wrong kind, a negative or fractional number, a number too large.
    pub fn from_json(value: &Value) -> Result<EngineConfig, SettingsError> {
        let Value::Object(map) = value else {
            return Err(SettingsError {
                key: "config".into(),
                message: format!(
                    "must be an object of settings, not {}",
                    crate::signal::json_type(value)
                ),
            });
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !EngineConfig::KEYS.contains(&k.as_str()))
        {
            // A key the caller wrote: escaped and cut like any user value.
            return Err(SettingsError {
                key: crate::error::field_name(unknown),
                message: "is not a setting".into(),
            });
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            SettingsError {
                key: if key == "." { "config".into() } else { key },
                message: e.into_inner().to_string(),
            }
        })
    }
}

impl<'de> Deserialize<'de> for EngineConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Settings::deserialize(deserializer).map(Settings::apply)
    }
}

/// A whole number of milliseconds.
#[derive(Debug, Clone, Copy)]
struct Millis(StdDuration);

/// A whole number no larger than its type holds.
#[derive(Debug, Clone, Copy)]
struct Count<T>(T);

/// Reads a non-negative whole number, saying what it must be otherwise.
struct WholeNumber(&'static str);

impl Visitor<'_> for WholeNumber {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("must be {}, not `{v}`", self.0)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // A float that is a whole number (`200.0`, what JavaScript sends) is one.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "converted only when the float is a whole number within u64"
        )]
        if v.fract() == 0.0 && v >= 0.0 && v < u64::MAX as f64 {
            return Ok(v as u64);
        }
        Err(E::custom(format!("must be {}, not `{v}`", self.0)))
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WholeNumber("a whole number of milliseconds"))
            .map(|ms| Millis(StdDuration::from_millis(ms)))
    }
}

impl<'de, T: TryFrom<u64>> Deserialize<'de> for Count<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(WholeNumber("a whole number"))?;
        T::try_from(n)
            .map(Count)
            .map_err(|_| de::Error::custom(format!("`{n}` is too large")))
    }
}

/// The flat form settings are written in; absent keys keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    ide_deadline_ms: Option<Millis>,
    default_deadline_ms: Option<Millis>,
    policy_ttl_ms: Option<Millis>,
    policy_max_age_ms: Option<Millis>,
    tenant_config_ttl_ms: Option<Millis>,
    llm_min_budget_ms: Option<Millis>,
    approval_ttl_ms: Option<Millis>,
    iam_timeout_ms: Option<Millis>,
    signals_timeout_ms: Option<Millis>,
    data_governance_timeout_ms: Option<Millis>,
    policy_timeout_ms: Option<Millis>,
    llm_timeout_ms: Option<Millis>,
    receipts_timeout_ms: Option<Millis>,
    delivery_timeout_ms: Option<Millis>,
    max_payload_bytes: Option<Count<usize>>,
    max_context_bytes: Option<Count<usize>>,
    max_deny_keys: Option<Count<usize>>,
    max_deny_key_bytes: Option<Count<usize>>,
    outbox_capacity: Option<Count<usize>>,
    llm_max_tokens: Option<Count<u32>>,
    max_port_threads: Option<Count<usize>>,
    remembered_actions: Option<Count<usize>>,
    fatigue_max_actors: Option<Count<usize>>,
    experiment_seed: Option<Count<u64>>,
    breaker_failure_threshold: Option<Count<u32>>,
    breaker_open_ms: Option<Millis>,
    breaker_half_open_probes: Option<Count<u32>>,
    breaker_success_threshold: Option<Count<u32>>,
    condition_max_operations: Option<Count<u64>>,
    condition_max_call_depth: Option<Count<usize>>,
    condition_max_expr_depth: Option<Count<usize>>,
    condition_max_string_bytes: Option<Count<usize>>,
    condition_max_array_size: Option<Count<usize>>,
    condition_max_map_size: Option<Count<usize>>,
    condition_time_limit_ms: Option<Millis>,
    condition_max_glob_pattern_bytes: Option<Count<usize>>,
    condition_max_glob_text_bytes: Option<Count<usize>>,
}

/// Overwrites `target` with the value, when there is one.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

impl Settings {
    fn apply(self) -> EngineConfig {
        let ms = |m: Option<Millis>| m.map(|m| m.0);
        let n = |c: Option<Count<usize>>| c.map(|c| c.0);
        let mut c = EngineConfig::default();
        set(&mut c.ide_deadline, ms(self.ide_deadline_ms));
        set(&mut c.default_deadline, ms(self.default_deadline_ms));
        set(&mut c.policy_ttl, ms(self.policy_ttl_ms));
        set(&mut c.policy_max_age, ms(self.policy_max_age_ms));
        set(&mut c.tenant_config_ttl, ms(self.tenant_config_ttl_ms));
        set(&mut c.llm_min_budget, ms(self.llm_min_budget_ms));
        set(&mut c.approval_ttl, ms(self.approval_ttl_ms));
        let t = &mut c.timeouts;
        set(&mut t.iam, ms(self.iam_timeout_ms));
        set(&mut t.signals, ms(self.signals_timeout_ms));
        set(&mut t.data_governance, ms(self.data_governance_timeout_ms));
        set(&mut t.policy, ms(self.policy_timeout_ms));
        set(&mut t.llm, ms(self.llm_timeout_ms));
        set(&mut t.receipts, ms(self.receipts_timeout_ms));
        set(&mut t.delivery, ms(self.delivery_timeout_ms));
        set(&mut c.max_payload_bytes, n(self.max_payload_bytes));
        set(&mut c.max_context_bytes, n(self.max_context_bytes));
        set(&mut c.max_deny_keys, n(self.max_deny_keys));
        set(&mut c.max_deny_key_bytes, n(self.max_deny_key_bytes));
        set(&mut c.outbox_capacity, n(self.outbox_capacity));
        set(&mut c.llm_max_tokens, self.llm_max_tokens.map(|c| c.0));
        set(&mut c.max_port_threads, n(self.max_port_threads));
        set(&mut c.remembered_actions, n(self.remembered_actions));
        set(&mut c.fatigue_max_actors, n(self.fatigue_max_actors));
        set(&mut c.experiment_seed, self.experiment_seed.map(|c| c.0));
        let b = &mut c.breaker;
        set(
            &mut b.failure_threshold,
            self.breaker_failure_threshold.map(|c| c.0),
        );
        set(&mut b.open_for, ms(self.breaker_open_ms));
        set(
            &mut b.half_open_probes,
            self.breaker_half_open_probes.map(|c| c.0),
        );
        set(
            &mut b.success_threshold,
            self.breaker_success_threshold.map(|c| c.0),
        );
        let l = &mut c.condition_limits;
        set(
            &mut l.max_operations,
            self.condition_max_operations.map(|c| c.0),
        );
        set(&mut l.max_call_depth, n(self.condition_max_call_depth));
        set(&mut l.max_expr_depth, n(self.condition_max_expr_depth));
        set(&mut l.max_string_size, n(self.condition_max_string_bytes));
        set(&mut l.max_array_size, n(self.condition_max_array_size));
        set(&mut l.max_map_size, n(self.condition_max_map_size));
        set(&mut l.time_limit, ms(self.condition_time_limit_ms));
        set(
            &mut l.max_glob_pattern_size,
            n(self.condition_max_glob_pattern_bytes),
        );
        set(
            &mut l.max_glob_text_size,
            n(self.condition_max_glob_text_bytes),
        );
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> SettingsError {
        EngineConfig::from_json(&v).unwrap_err()
    }

    #[test]
    fn no_keys_means_the_defaults() {
        assert_eq!(
            format!("{:?}", EngineConfig::from_json(&json!({})).unwrap()),
            format!("{:?}", EngineConfig::default())
        );
    }

    #[test]
    fn every_key_sets_its_field() {
        let c = EngineConfig::from_json(&json!({
            "ide_deadline_ms": 1, "default_deadline_ms": 2, "policy_ttl_ms": 3,
            "policy_max_age_ms": 4, "tenant_config_ttl_ms": 5, "llm_min_budget_ms": 6,
            "approval_ttl_ms": 7, "iam_timeout_ms": 8, "signals_timeout_ms": 9,
            "data_governance_timeout_ms": 10, "policy_timeout_ms": 11, "llm_timeout_ms": 12,
            "receipts_timeout_ms": 13, "delivery_timeout_ms": 14, "max_payload_bytes": 15,
            "outbox_capacity": 16, "llm_max_tokens": 17, "max_port_threads": 18,
            "remembered_actions": 19, "experiment_seed": 20, "breaker_failure_threshold": 21,
            "breaker_open_ms": 22, "breaker_half_open_probes": 23,
            "breaker_success_threshold": 24, "condition_max_operations": 25,
            "condition_max_call_depth": 26, "condition_max_expr_depth": 27,
            "condition_max_string_bytes": 28, "condition_max_array_size": 29,
            "condition_max_map_size": 30, "condition_time_limit_ms": 31,
            "max_context_bytes": 32, "max_deny_keys": 33, "max_deny_key_bytes": 34
        }))
        .unwrap();
        let ms = StdDuration::from_millis;
        assert_eq!(
            [
                c.ide_deadline,
                c.default_deadline,
                c.policy_ttl,
                c.policy_max_age
            ],
            [ms(1), ms(2), ms(3), ms(4)]
        );
        assert_eq!(
            [c.tenant_config_ttl, c.llm_min_budget, c.approval_ttl],
            [ms(5), ms(6), ms(7)]
        );
        let t = c.timeouts;
        assert_eq!(
            [
                t.iam,
                t.signals,
                t.data_governance,
                t.policy,
                t.llm,
                t.receipts,
                t.delivery
            ],
            [ms(8), ms(9), ms(10), ms(11), ms(12), ms(13), ms(14)]
        );
        assert_eq!(
            [
                c.max_payload_bytes,
                c.outbox_capacity,
                c.max_port_threads,
                c.remembered_actions
            ],
            [15, 16, 18, 19]
        );
        assert_eq!((c.llm_max_tokens, c.experiment_seed), (17, 20));
        let b = c.breaker;
        assert_eq!(
            (
                b.failure_threshold,
                b.open_for,
                b.half_open_probes,
                b.success_threshold
            ),
            (21, ms(22), 23, 24)
        );
        let l = c.condition_limits;
        assert_eq!(l.max_operations, 25);
        assert_eq!(
            [
                l.max_call_depth,
                l.max_expr_depth,
                l.max_string_size,
                l.max_array_size,
                l.max_map_size
            ],
            [26, 27, 28, 29, 30]
        );
        assert_eq!(l.time_limit, ms(31));
        assert_eq!(
            [c.max_context_bytes, c.max_deny_keys, c.max_deny_key_bytes],
            [32, 33, 34]
        );
    }

    #[test]
    fn errors_name_the_key_and_the_rule() {
        let e = err(json!({"policy_ttl_ms": -1}));
        assert_eq!(e.key, "policy_ttl_ms");
        assert_eq!(
            e.to_string(),
            "invalid setting `policy_ttl_ms`: must be a whole number of milliseconds, not `-1`"
        );
        let e = err(json!({"ide_deadline_ms": 1.5}));
        assert_eq!(e.key, "ide_deadline_ms");
        assert!(
            e.message
                .contains("whole number of milliseconds, not `1.5`"),
            "{e}"
        );
        let e = err(json!({"outbox_capacity": "ten"}));
        assert_eq!(e.key, "outbox_capacity");
        assert!(e.message.contains("expected a whole number"), "{e}");
        let e = err(json!({"llm_max_tokens": 5_000_000_000_u64}));
        assert_eq!(e.key, "llm_max_tokens");
        assert_eq!(e.message, "`5000000000` is too large");
        let e = err(json!({"colour": 1}));
        assert_eq!(e.to_string(), "invalid setting `colour`: is not a setting");
        let mut evil = serde_json::Map::new();
        evil.insert(format!("x\u{1b}[2J{}", "k".repeat(500)), json!(1));
        let e = err(Value::Object(evil));
        assert!(
            e.key.starts_with("x\\u{1b}[2J") && e.key.len() < 220,
            "{}",
            e.key
        );
        let e = err(json!([1]));
        assert_eq!(e.key, "config");
        assert_eq!(e.info().code, "CONFIG_INVALID");
        assert_eq!(e.info().field.as_deref(), Some("config"));
    }

    #[test]
    fn the_key_list_is_the_deserialised_form() {
        for key in EngineConfig::KEYS {
            let mut one = serde_json::Map::new();
            one.insert((*key).to_owned(), json!(1));
            assert!(
                EngineConfig::from_json(&Value::Object(one)).is_ok(),
                "{key}"
            );
        }
        // Serde lists every field it knows when it meets an unknown one.
        let e = serde_json::from_value::<EngineConfig>(json!({"colour": 1})).unwrap_err();
        let listed = e.to_string().matches('`').count() / 2 - 1;
        assert_eq!(listed, EngineConfig::KEYS.len(), "{e}");
    }

    #[test]
    fn whole_floats_are_whole_numbers() {
        // JavaScript numbers arrive as floats.
        let c = EngineConfig::from_json(&json!({"ide_deadline_ms": 200.0})).unwrap();
        assert_eq!(c.ide_deadline, StdDuration::from_millis(200));
    }
}
