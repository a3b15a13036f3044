//! Limits on what callers and ports can put into a decision: the context's size, the deny
//! list's length and its keys' lengths, and the cost of a long deny list. A caller's input
//! over a limit is an error naming the field; a port's answer over it is that port being
//! down (a degraded mode, a failure for its breaker).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use mmm_engine::ports::{DataGovernance, RecentSignals, TenantConfig};
use mmm_engine::{
    BreakerState, DecideError, Degraded, Engine, EngineConfig, PlaybookSet, PortError, PortName,
};
use serde_json::{json, Value};

use crate::common::*;

/// Runs `f` on its own thread and waits for it, with a generous ceiling that only
/// guards against a hang (it asserts nothing about speed).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("finished within the guard")
}

fn engine_with(config: EngineConfig) -> Engine {
    Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&mirror("any", "pr.opened", "true")).unwrap())
        .config(config)
        .build()
}

fn context_error(e: &Engine, context: &Value) -> mmm_engine::ContextError {
    match e.decide(&signal("pr.opened", json!({})), Some(context), &at(NOW)) {
        Err(DecideError::Context(err)) => err,
        other => panic!("expected a context error, got {other:?}"),
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key{i}")).collect()
}

/// Deadlines and a data-governance timeout no slow build reaches, so that a port answer
/// is refused by the limit under test and never by the clock.
fn patient() -> EngineConfig {
    let mut c = EngineConfig {
        default_deadline: Duration::from_secs(60),
        ..EngineConfig::default()
    };
    c.timeouts.data_governance = Duration::from_secs(60);
    c
}

#[test]
fn a_context_over_max_context_bytes_is_refused_naming_the_limit() {
    let e = engine_with(EngineConfig::default());
    let big = json!({"actor": {"notes": "x".repeat(300 * 1024)}});
    let err = context_error(&e, &big);
    assert_eq!(err.field, "context");
    assert!(err.message.contains("`max_context_bytes`"), "{err}");
    assert!(err.message.contains("262144"), "{err}");
    // Under the limit it is read as usual.
    let fits = json!({"actor": {"notes": "x".repeat(200 * 1024)}});
    assert!(e
        .decide(&signal("pr.opened", json!({})), Some(&fits), &at(NOW))
        .is_ok());
    // The limit is a setting.
    let small = engine_with(EngineConfig {
        max_context_bytes: 64,
        ..EngineConfig::default()
    });
    assert_eq!(context_error(&small, &fits).field, "context");
}

#[test]
fn a_million_key_deny_list_in_the_context_is_refused_with_its_limit() {
    let list = keys(1_000_000);
    let (first, second) = bounded(move || {
        let context = json!({"tenant": {"config": {"deny_payload_keys": list}}});
        // With the default size limit the context is too large to read at all.
        let first = context_error(&engine_with(EngineConfig::default()), &context);
        // With room for it, the deny list's own limit refuses it.
        let roomy = engine_with(EngineConfig {
            max_context_bytes: 64 << 20,
            ..EngineConfig::default()
        });
        (first, context_error(&roomy, &context))
    });
    assert_eq!(first.field, "context");
    assert_eq!(second.field, "tenant.config.deny_payload_keys");
    assert_eq!(
        second.message,
        "has 1000000 keys; at most 10000 are allowed (`max_deny_keys`)"
    );
}

#[test]
fn deny_keys_must_be_short_strings_in_a_list() {
    let e = engine_with(EngineConfig::default());
    let long = "k".repeat(257);
    let err = context_error(
        &e,
        &json!({"tenant": {"config": {"deny_payload_keys": ["diff", long]}}}),
    );
    assert_eq!(err.field, "tenant.config.deny_payload_keys[1]");
    assert!(err.message.contains("`max_deny_key_bytes`"), "{err}");
    let err = context_error(
        &e,
        &json!({"tenant": {"config": {"deny_payload_keys": ["diff", 7]}}}),
    );
    assert_eq!(err.field, "tenant.config.deny_payload_keys[1]");
    assert_eq!(err.message, "must be a string");
    let err = context_error(
        &e,
        &json!({"tenant": {"config": {"deny_payload_keys": "diff"}}}),
    );
    assert_eq!(err.field, "tenant.config.deny_payload_keys");
    // A list at the limits is used.
    let d = decide(
        &e,
        &signal("pr.opened", json!({"key9999": 1, "diff": 2})),
        json!({"tenant": {"config": {"deny_payload_keys": keys(10_000)}}}),
    );
    assert_eq!(d.redacted, ["payload.key9999"]);
}

/// Data governance answering a deny list of `n` keys, counting its calls.
struct Governance {
    keys: Vec<String>,
    calls: AtomicUsize,
}

impl DataGovernance for Governance {
    fn tenant_config(&self, _tenant: &str) -> Result<TenantConfig, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(TenantConfig {
            deny_payload_keys: Some(self.keys.clone()),
            ..TenantConfig::default()
        })
    }
}

fn governed(keys: Vec<String>, config: EngineConfig) -> (Engine, Arc<Governance>) {
    let port = Arc::new(Governance {
        keys,
        calls: AtomicUsize::new(0),
    });
    let e = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&mirror("any", "pr.opened", "true")).unwrap())
        .data_governance(port.clone())
        .config(config)
        .build();
    (e, port)
}

#[test]
fn a_million_key_deny_list_from_data_governance_is_the_port_being_down() {
    let (e, port) = bounded(|| governed(keys(1_000_000), patient()));
    let (decisions, e) = bounded(move || {
        let s = signal("pr.opened", json!({"key5": 1, "diff": 2}));
        let d: Vec<_> = (0..5).map(|_| decide(&e, &s, json!(null))).collect();
        (d, e)
    });
    for d in &decisions {
        assert_eq!(d.degraded, [Degraded::DataGovernanceUnavailable]);
        // The default deny list applies instead.
        assert_eq!(d.redacted, ["payload.diff"]);
        assert_eq!(d.actions.len(), 1);
    }
    assert_eq!(
        port.calls.load(Ordering::SeqCst),
        5,
        "a refused answer is not cached"
    );
    assert_eq!(
        e.breaker_state(PortName::DataGovernance),
        BreakerState::Open,
        "five refused answers count as five failures"
    );
}

#[test]
fn a_long_deny_list_is_built_once_per_tenant_configuration() {
    // With the limit raised, a long list is accepted: it is hashed once, cached with the
    // tenant configuration, and every decision looks payload keys up in it.
    let config = EngineConfig {
        max_deny_keys: 100_000,
        max_context_bytes: 64 << 20,
        ..patient()
    };
    let (e, port) = bounded(|| governed(keys(100_000), config));
    let decisions = bounded(move || {
        (0..10)
            .map(|i| {
                let s = signal(
                    "pr.opened",
                    json!({format!("KEY{}", i * 9_999): 1, "diff": 2}),
                );
                decide(&e, &s, json!(null))
            })
            .collect::<Vec<_>>()
    });
    for (i, d) in decisions.iter().enumerate() {
        assert!(d.degraded.is_empty(), "{:?}", d.degraded);
        assert_eq!(d.redacted, [format!("payload.KEY{}", i * 9_999)]);
    }
    assert_eq!(port.calls.load(Ordering::SeqCst), 1, "cached for its TTL");
}

/// UBI answering one recent signal with a large payload.
struct BigRecent;

impl RecentSignals for BigRecent {
    fn recent(&self, _t: &str, _a: &str, _limit: usize) -> Result<Vec<Value>, PortError> {
        Ok(vec![json!({"kind": "ci.failed", "occurred_at": NOW,
                       "payload": {"log": "x".repeat(300 * 1024)}})])
    }
}

#[test]
fn recent_signals_over_max_context_bytes_are_the_port_being_down() {
    let e = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&mirror("any", "pr.opened", "true")).unwrap())
        .signals(Arc::new(BigRecent))
        .build();
    let d = decide(&e, &signal("pr.opened", json!({})), json!(null));
    assert_eq!(d.degraded, [Degraded::UbiUnavailable]);
    assert_eq!(d.actions.len(), 1);
}
