//! Degraded modes (SPEC §6): each dependency down, one named test each, plus breakers,
//! caches and concurrency with flapping ports.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use mmm_engine::observe::{Event, Observer};
use mmm_engine::outbox::MemoryOutbox;
use mmm_engine::ports::{
    ActorInfo, DataGovernance, Delivery, Iam, Llm, LlmRequest, LlmResponse, Policy, Receipts,
    RecentSignals, Safety, SafetyStatus, TenantConfig,
};
use mmm_engine::receipt::{signing_key_from_bytes, verify_chain, Envelope};
use mmm_engine::{
    Action, BreakerState, Clock, DecideError, Degraded, Engine, EngineBuilder, EngineConfig,
    ManualClock, PlaybookSet, PolicySnapshot, PortError, PortName, Reason, ReceiptStatus, Surface,
};
use serde_json::{json, Value};

use crate::common::*;

/// How a test port behaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Up,
    Down,
    Panic,
    Hang,
    Malformed,
}

/// A port whose behaviour a test switches, counting calls.
struct Switch {
    mode: Mutex<Mode>,
    calls: AtomicUsize,
}

impl Switch {
    fn new(mode: Mode) -> Arc<Switch> {
        Arc::new(Switch {
            mode: Mutex::new(mode),
            calls: AtomicUsize::new(0),
        })
    }
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn enter(&self) -> Result<Mode, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Down => Err(PortError::Unavailable("connection refused".into())),
            Mode::Panic => panic!("the port blew up"),
            // Far longer than any bound a test sets on a decision (10 s), which is itself
            // far from what a decision takes: a decision that waited for the port fails
            // the bound on any machine, and one that did not passes it on a loaded one.
            Mode::Hang => {
                std::thread::sleep(Duration::from_secs(30));
                Err(PortError::Unavailable("too late".into()))
            }
            m => Ok(m),
        }
    }
}

struct TestIam(Arc<Switch>, bool);
impl Iam for TestIam {
    fn validate_actor(&self, _t: &str, actor: &str) -> Result<ActorInfo, PortError> {
        self.0.enter()?;
        if actor == "ghost" {
            return Err(PortError::Rejected("no such actor".into()));
        }
        Ok(ActorInfo {
            active: self.1,
            roles: vec!["dev".into()],
            timezone: Some("Europe/Berlin".into()),
        })
    }
}

struct TestSignals(Arc<Switch>);
impl RecentSignals for TestSignals {
    fn recent(&self, _t: &str, _a: &str, _limit: usize) -> Result<Vec<Value>, PortError> {
        match self.0.enter()? {
            Mode::Malformed => Ok(vec![json!({"kind": 5})]),
            _ => Ok(vec![
                json!({"kind": "ci.failed", "occurred_at": "2026-11-22T09:50:00Z"}),
                json!({"kind": "ci.failed", "occurred_at": "2026-11-22T09:40:00Z"}),
            ]),
        }
    }
}

struct TestGovernance(Arc<Switch>, bool);
impl DataGovernance for TestGovernance {
    fn tenant_config(&self, _t: &str) -> Result<TenantConfig, PortError> {
        self.0.enter()?;
        let mut extra = serde_json::Map::new();
        extra.insert("release_freeze".into(), json!(true));
        Ok(TenantConfig {
            safety_critical: Some(self.1),
            deny_payload_keys: Some(vec!["author".into()]),
            extra,
        })
    }
}

struct TestPolicy(Arc<Switch>);
impl Policy for TestPolicy {
    fn snapshot(&self, _t: &str) -> Result<PolicySnapshot, PortError> {
        self.0.enter()?;
        Ok(PolicySnapshot {
            snapshot_id: Some("pol-live".into()),
            denied_operations: vec!["force_push".into()],
            ..PolicySnapshot::default()
        })
    }
}

struct TestLlm(Arc<Switch>, SafetyStatus);
impl Llm for TestLlm {
    fn generate(&self, request: &LlmRequest) -> Result<LlmResponse, PortError> {
        self.0.enter()?;
        Ok(LlmResponse {
            text: format!(
                "Generated for `{}`: try [stacking](http://x.example).",
                request.prompt
            ),
            safety: Safety {
                status: self.1,
                risk_flags: vec!["link".into()],
                redaction_summary: None,
            },
        })
    }
}

#[derive(Default)]
struct Sink {
    up: AtomicBool,
    calls: AtomicUsize,
    received: Mutex<Vec<Envelope>>,
}
impl Receipts for Sink {
    fn emit(&self, envelope: &Envelope) -> Result<(), PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.up.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("ERIS is down".into()));
        }
        self.received.lock().unwrap().push(envelope.clone());
        Ok(())
    }
}

const PLAYBOOKS: &str = "apiVersion: mmm/v1
kind: Playbook
metadata: {id: large-pr, version: 1, tenant: \"*\", status: published, category: code-review}
spec:
  triggers: [pr.opened]
  actions:
    - {type: mirror, surfaces: [ide, pr_comment], title: Large, text: \"{{ signal.payload.lines }} lines\"}
    - {type: mentor, surfaces: [ide, pr_comment], title: Split, prompt: \"split {{ signal.payload.lines }}\", fallback: Smaller changes are reviewed faster.}
    - {type: multiplier, surfaces: [ide], title: Stack, text: Creates one draft pull request per directory., operation: split_pr, reversible: true}
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: advice-only, version: 1, tenant: \"*\", status: published}
spec:
  triggers: [pr.opened]
  priority: 10
  actions:
    - {type: mentor, surfaces: [ide], title: Advice, prompt: p}
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: repeated-ci, version: 1, tenant: \"*\", status: published}
spec:
  triggers: [ci.failed]
  when: recent_count(\"ci.failed\", \"1h\") >= 2
  actions:
    - {type: mirror, surfaces: [ide], title: Again, text: CI failed again.}
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: freeze, version: 1, tenant: \"*\", status: published}
spec:
  triggers: [ci.failed]
  when: ctx.tenant?.config?.release_freeze == true
  actions:
    - {type: mirror, surfaces: [ide], title: Freeze, text: \"Release freeze: {{ ctx.tenant.config.release_freeze }}\"}
";

fn builder() -> EngineBuilder {
    Engine::builder()
        .playbooks(PlaybookSet::from_yaml(PLAYBOOKS).unwrap())
        .config(EngineConfig {
            max_port_threads: 16,
            ..EngineConfig::default()
        })
}

fn pr() -> Value {
    signal("pr.opened", json!({"lines": 420, "author": "ada"}))
}

fn types(d: &mmm_engine::Decision) -> Vec<String> {
    d.actions
        .iter()
        .map(|a| format!("{}:{}", a.playbook.id, a.kind))
        .collect()
}

fn signing() -> mmm_engine::receipt::SigningKey {
    signing_key_from_bytes(&[3u8; 32]).unwrap()
}

#[test]
fn rf_mmm_01_llm_unavailable_mentor_falls_back() {
    let llm = Switch::new(Mode::Down);
    // A deadline no busy machine reaches: only the LLM's failure is degraded here (a
    // panicking port's message costs time on a loaded machine).
    let e = builder()
        .config(EngineConfig {
            max_port_threads: 16,
            default_deadline: Duration::from_secs(30),
            ..EngineConfig::default()
        })
        .llm(Arc::new(TestLlm(llm.clone(), SafetyStatus::Pass)))
        .build();
    let d = decide(&e, &pr(), json!(null));
    assert_eq!(
        types(&d),
        ["large-pr:mirror", "large-pr:mentor", "large-pr:multiplier"]
    );
    assert_eq!(d.actions[1].text, "Smaller changes are reviewed faster.");
    assert_eq!(d.degraded, [Degraded::LlmUnavailable]);
    // The mentor without a fallback is suppressed (it is past the cap here, so raise it).
    let d = decide(
        &e,
        &pr(),
        json!({"tenant_policy": {"max_actions_per_decision": 10}}),
    );
    assert!(d
        .suppressed
        .iter()
        .any(|s| s.playbook.id == "advice-only" && s.reason == Reason::LlmUnavailable));
    // A panicking or hanging LLM is the same as a down one.
    llm.set(Mode::Panic);
    assert_eq!(
        decide(&e, &pr(), json!(null)).degraded,
        [Degraded::LlmUnavailable]
    );
}

#[test]
fn rf_mmm_01_without_an_llm_port_mentors_use_their_fallback_silently() {
    let e = builder().build();
    let d = decide(&e, &pr(), json!(null));
    assert_eq!(d.actions[1].text, "Smaller changes are reviewed faster.");
    assert!(d.degraded.is_empty());
}

#[test]
fn an_llm_answer_is_used_and_escaped_like_any_value() {
    let e = builder()
        .llm(Arc::new(TestLlm(Switch::new(Mode::Up), SafetyStatus::Warn)))
        .build();
    let d = decide(&e, &pr(), json!(null));
    let mentor = &d.actions[1];
    assert_eq!(
        mentor.text,
        "Generated for `split 420`: try [stacking](http://x.example)."
    );
    assert!(
        !mentor.rendered[&Surface::PrComment].contains("](http://"),
        "{}",
        mentor.rendered[&Surface::PrComment]
    );
    assert!(d.degraded.is_empty());
}

#[test]
fn rf_mmm_09_llm_unsafe_uses_the_fallback_or_is_suppressed() {
    let e = builder()
        .llm(Arc::new(TestLlm(Switch::new(Mode::Up), SafetyStatus::Fail)))
        .build();
    let d = decide(
        &e,
        &pr(),
        json!({"tenant_policy": {"max_actions_per_decision": 10}}),
    );
    assert_eq!(d.actions[1].text, "Smaller changes are reviewed faster.");
    let s = d
        .suppressed
        .iter()
        .find(|s| s.playbook.id == "advice-only")
        .unwrap();
    assert_eq!(s.reason, Reason::LlmUnsafe);
    assert!(s.detail.to_string().contains("link"), "{}", s.detail);
}

#[test]
fn rf_mmm_02_receipts_unavailable_non_blocking() {
    let sink = Arc::new(Sink::default());
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let e = builder()
        .signing_key(signing())
        .receipts(sink.clone())
        .clock(clock.clone())
        .background_outbox(false)
        .build();
    let started = Instant::now();
    let d = decide(&e, &pr(), json!(null));
    // The decision handed the receipt over once and queued it: it neither retried nor
    // waited for the port to come back (which, with this clock, it never would; the
    // bound only catches such a hang).
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
    assert_eq!(d.receipt.status, ReceiptStatus::Queued);
    assert_eq!(d.degraded, [Degraded::ReceiptsQueued]);
    assert_eq!(
        d.actions.len(),
        3,
        "actions still go out: their receipt is safe in the outbox"
    );
    assert_eq!(e.outbox_len(), 1);

    // The port comes back: each queued receipt is delivered once.
    let second = decide(&e, &pr(), json!(null));
    sink.up.store(true, Ordering::SeqCst);
    e.flush_outbox();
    assert_eq!(sink.received.lock().unwrap().len(), 0, "not due yet");
    clock.advance(Duration::from_secs(1));
    e.flush_outbox();
    e.flush_outbox();
    let ids: Vec<String> = sink
        .received
        .lock()
        .unwrap()
        .iter()
        .map(receipt_id)
        .collect();
    let mut want = vec![
        d.receipt.receipt_id.clone().unwrap(),
        second.receipt.receipt_id.clone().unwrap(),
    ];
    want.sort();
    let mut got = ids.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(e.outbox_len(), 0);
    let third = decide(&e, &pr(), json!(null));
    assert_eq!(third.receipt.status, ReceiptStatus::Emitted);
    assert!(third.degraded.is_empty());
}

/// A receipts port that is down until `up`, then holds each receipt until the test lets
/// it through (saying when one arrives).
struct Gate {
    up: AtomicBool,
    arrived: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}
impl Receipts for Gate {
    fn emit(&self, _envelope: &Envelope) -> Result<(), PortError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("ERIS is down".into()));
        }
        let _ = self.arrived.lock().unwrap().send(());
        match self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30))
        {
            Ok(()) => Ok(()),
            Err(_) => Err(PortError::Unavailable("never released".into())),
        }
    }
}

#[test]
fn a_receipt_being_delivered_from_the_outbox_still_waits() {
    let (arrived, arrivals) = mpsc::channel();
    let (release, released) = mpsc::channel();
    let gate = Arc::new(Gate {
        up: AtomicBool::new(false),
        arrived: Mutex::new(arrived),
        release: Mutex::new(released),
    });
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let mut config = EngineConfig {
        max_port_threads: 16,
        ..EngineConfig::default()
    };
    // The port may hold the receipt as long as the test needs: only the test ends the wait.
    config.timeouts.receipts = Duration::from_secs(60);
    let e = builder()
        .config(config)
        .signing_key(signing())
        .receipts(gate.clone())
        .clock(clock.clone())
        .background_outbox(false)
        .build();
    let d = decide(&e, &pr(), json!(null));
    assert_eq!(d.receipt.status, ReceiptStatus::Queued);
    assert_eq!(e.outbox_len(), 1);

    gate.up.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(1));
    let flusher = {
        let e = e.clone();
        std::thread::spawn(move || e.flush_outbox())
    };
    arrivals
        .recv_timeout(Duration::from_secs(10))
        .expect("the flush hands the queued receipt to the port");
    // The port holds the receipt: it is not delivered yet, so it still waits (a host
    // shutting down must not take 0 here as "everything delivered").
    assert_eq!(e.outbox_len(), 1, "a receipt in delivery still waits");
    release.send(()).unwrap();
    flusher.join().unwrap();
    assert_eq!(e.outbox_len(), 0, "delivered");
}

fn receipt_id(env: &Envelope) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&env.payload)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn rf_mmm_10_a_full_outbox_means_no_actions() {
    let e = builder()
        .signing_key(signing())
        .receipts(Arc::new(Sink::default()))
        .outbox(Arc::new(MemoryOutbox::new(1)))
        .background_outbox(false)
        .build();
    assert_eq!(
        decide(&e, &pr(), json!(null)).receipt.status,
        ReceiptStatus::Queued
    );
    let d = decide(&e, &pr(), json!(null));
    assert!(d.actions.is_empty());
    assert!(d.degraded.contains(&Degraded::ReceiptsBackpressure));
    assert_eq!(d.suppressed.len(), 4);
    assert!(d
        .suppressed
        .iter()
        .all(|s| s.reason == Reason::ReceiptsBackpressure));
    assert_eq!(d.receipt.status, ReceiptStatus::Dropped);
}

#[test]
fn rf_mmm_03_policy_unavailable_fail_closed_for_safety_critical() {
    let e = builder()
        .policy(Arc::new(TestPolicy(Switch::new(Mode::Down))))
        .build();
    let d = decide(&e, &pr(), json!({"tenant": {"safety_critical": true}}));
    assert!(d.actions.is_empty());
    assert!(d
        .suppressed
        .iter()
        .all(|s| s.reason == Reason::PolicyUnavailable));
    assert_eq!(d.degraded, [Degraded::PolicyUnavailable]);
}

#[test]
fn rf_mmm_04_policy_unavailable_mirror_only_for_other_tenants() {
    let e = builder()
        .policy(Arc::new(TestPolicy(Switch::new(Mode::Hang))))
        .build();
    let d = decide(&e, &pr(), json!(null));
    assert_eq!(types(&d), ["large-pr:mirror"]);
    // The hanging port used up the decision's whole 500 ms.
    assert_eq!(
        d.degraded,
        [Degraded::PolicyUnavailable, Degraded::DeadlineExceeded]
    );
    let reasons: Vec<Reason> = d.suppressed.iter().map(|s| s.reason).collect();
    assert_eq!(
        reasons,
        [
            Reason::PolicyUnavailable,
            Reason::PolicyUnavailable,
            Reason::PolicyUnavailable
        ]
    );
}

#[test]
fn rf_mmm_05_policy_cached_for_up_to_five_minutes() {
    let port = Switch::new(Mode::Up);
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let e = builder()
        .policy(Arc::new(TestPolicy(port.clone())))
        .clock(clock.clone())
        .build();
    let now = |c: &ManualClock| c.now().to_string();
    let d = decide_at(&e, &pr(), json!(null), &now(&clock));
    assert_eq!(d.policy_snapshot_id.as_deref(), Some("pol-live"));
    assert_eq!(port.calls(), 1);
    // Within the 60 s TTL the port is not asked again.
    clock.advance(Duration::from_secs(59));
    decide_at(&e, &pr(), json!(null), &now(&clock));
    assert_eq!(port.calls(), 1);
    // Past the TTL with the port down: the cached snapshot, flagged.
    port.set(Mode::Down);
    clock.advance(Duration::from_secs(120));
    let d = decide_at(&e, &pr(), json!(null), &now(&clock));
    assert_eq!(d.degraded, [Degraded::PolicyCached]);
    assert_eq!(d.policy_snapshot_id.as_deref(), Some("pol-live"));
    assert_eq!(d.actions.len(), 3);
    // Exactly five minutes old still counts; older does not.
    clock.advance(Duration::from_secs(121));
    assert_eq!(
        decide_at(&e, &pr(), json!(null), &now(&clock)).degraded,
        [Degraded::PolicyCached]
    );
    clock.advance(Duration::from_secs(1));
    let d = decide_at(&e, &pr(), json!(null), &now(&clock));
    assert_eq!(d.degraded, [Degraded::PolicyUnavailable]);
    // A policy in the context is used as is; the port is not asked.
    let calls = port.calls();
    let d = decide_at(
        &e,
        &pr(),
        json!({"policy": {"snapshot_id": "ctx"}}),
        &now(&clock),
    );
    assert_eq!(d.policy_snapshot_id.as_deref(), Some("ctx"));
    assert_eq!(port.calls(), calls);
}

#[test]
fn rf_mmm_06_ubi_unavailable_gives_an_empty_list() {
    let ci = signal("ci.failed", json!({}));
    let ubi = Switch::new(Mode::Up);
    let e = builder()
        .signals(Arc::new(TestSignals(ubi.clone())))
        .build();
    assert_eq!(
        decide(&e, &ci, json!(null)).actions.len(),
        1,
        "two earlier failures from UBI"
    );
    // The caller's list wins over the port's.
    assert!(decide(&e, &ci, json!({"recent_signals": []}))
        .actions
        .is_empty());
    for mode in [Mode::Down, Mode::Malformed, Mode::Panic] {
        ubi.set(mode);
        let d = decide(&e, &ci, json!(null));
        assert!(d.actions.is_empty(), "{mode:?}");
        assert_eq!(d.degraded, [Degraded::UbiUnavailable], "{mode:?}");
    }
}

#[test]
fn rf_mmm_07_data_governance_unavailable_uses_defaults() {
    let dg = Switch::new(Mode::Up);
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let e = builder()
        .data_governance(Arc::new(TestGovernance(dg.clone(), false)))
        .signals(Arc::new(TestSignals(Switch::new(Mode::Up))))
        .clock(clock.clone())
        .build();
    let d = decide(&e, &pr(), json!(null));
    assert_eq!(
        d.redacted,
        ["payload.author"],
        "the tenant's deny list from data governance"
    );
    let ci = decide(&e, &signal("ci.failed", json!({})), json!(null));
    assert_eq!(
        ci.actions
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>(),
        ["Release freeze: true", "CI failed again."]
    );
    // Cached for 30 s per tenant.
    decide(&e, &pr(), json!(null));
    assert_eq!(dg.calls(), 1);
    dg.set(Mode::Down);
    clock.advance(Duration::from_secs(31));
    let d = decide_at(&e, &pr(), json!(null), &clock.now().to_string());
    assert_eq!(d.degraded, [Degraded::DataGovernanceUnavailable]);
    assert!(
        d.redacted.is_empty(),
        "the default deny list keeps `author`: {:?}",
        d.redacted
    );
}

#[test]
fn rf_mmm_08_iam_unavailable_fails_the_decision() {
    for mode in [Mode::Down, Mode::Panic, Mode::Hang] {
        let e = builder()
            .iam(Arc::new(TestIam(Switch::new(mode), true)))
            .build();
        let started = Instant::now();
        let err = e.decide(&pr(), None, &at(NOW)).unwrap_err();
        assert!(
            matches!(
                err,
                DecideError::Unavailable {
                    dependency: PortName::Iam,
                    ..
                }
            ),
            "{mode:?}: {err}"
        );
        assert!(
            err.to_string().starts_with("unavailable: iam is down: "),
            "{err}"
        );
        assert_eq!(err.info().code, "UNAVAILABLE");
        // IAM's time-out, not the port, ended the wait (a hang lasts 30 s).
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode:?} took {:?}",
            started.elapsed()
        );
    }
    let e = builder()
        .iam(Arc::new(TestIam(Switch::new(Mode::Up), false)))
        .build();
    let err = e.decide(&pr(), None, &at(NOW)).unwrap_err();
    assert_eq!(err.info().code, "FORBIDDEN");
    let e = builder()
        .iam(Arc::new(TestIam(Switch::new(Mode::Up), true)))
        .build();
    let mut ghost = pr();
    ghost["actor_id"] = json!("ghost");
    assert_eq!(
        e.decide(&ghost, None, &at(NOW)).unwrap_err().info().code,
        "FORBIDDEN"
    );
    // Roles and time zone come from IAM when the caller gives none.
    let d = e.decide(&pr(), None, &at(NOW)).unwrap();
    assert_eq!(d.actions.len(), 3);
}

#[test]
fn rf_mmm_11_deadline_exceeded_when_a_port_is_slow() {
    let mut s = pr();
    s["surface"] = json!("ide");
    let e = builder()
        .signals(Arc::new(TestSignals(Switch::new(Mode::Hang))))
        .llm(Arc::new(TestLlm(Switch::new(Mode::Up), SafetyStatus::Pass)))
        .build();
    let started = Instant::now();
    let d = decide(&e, &s, json!(null));
    let took = started.elapsed();
    // The deadline, not the port, ended the wait (a hang lasts 30 s; `deadline_exceeded`
    // below says which limit it was).
    assert!(
        took < Duration::from_secs(10),
        "the IDE deadline is 150 ms; took {took:?}"
    );
    assert!(d.degraded.contains(&Degraded::UbiUnavailable));
    assert!(d.degraded.contains(&Degraded::DeadlineExceeded));
    assert!(d.latency_warning);
    // No time was left for the LLM: the mentor used its fallback.
    assert_eq!(d.actions[1].text, "Smaller changes are reviewed faster.");
}

#[test]
fn a_failing_port_opens_its_breaker_and_is_no_longer_called() {
    let ubi = Switch::new(Mode::Down);
    let e = builder()
        .signals(Arc::new(TestSignals(ubi.clone())))
        .build();
    for _ in 0..5 {
        decide(&e, &pr(), json!(null));
    }
    assert_eq!(e.breaker_state(PortName::Signals), BreakerState::Open);
    assert_eq!(ubi.calls(), 5);
    let d = decide(&e, &pr(), json!(null));
    assert_eq!(ubi.calls(), 5, "an open breaker does not reach the port");
    assert_eq!(d.degraded, [Degraded::UbiUnavailable]);
    assert_eq!(e.breaker_state(PortName::Iam), BreakerState::Closed);
}

struct Deliveries(mpsc::Sender<(String, Surface)>);
impl Delivery for Deliveries {
    fn deliver(&self, action: &Action, surface: Surface, rendered: &str) -> Result<(), PortError> {
        assert!(!rendered.is_empty());
        let _ = self.0.send((action.playbook.id.to_string(), surface));
        Ok(())
    }
}

/// Everything sent on `rx` until every sender is gone (each wait bounded, as a guard
/// against a call that never ends).
fn all_sent<T>(rx: &mpsc::Receiver<T>) -> Vec<T> {
    let mut got = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(item) => got.push(item),
            Err(mpsc::RecvTimeoutError::Disconnected) => return got,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("a port call never finished"),
        }
    }
}

#[test]
fn actions_are_handed_to_the_delivery_port_per_surface() {
    let (tx, rx) = mpsc::channel();
    let e = builder().delivery(Arc::new(Deliveries(tx))).build();
    let d = decide(&e, &pr(), json!(null));
    // The port (and its sender) goes when the engine and the last delivery call are gone,
    // so the channel then holds every delivery the decision started, and nothing more.
    drop(e);
    let mut got = all_sent(&rx);
    got.sort();
    let ide = ("large-pr".to_owned(), Surface::Ide);
    let pr_comment = ("large-pr".to_owned(), Surface::PrComment);
    assert_eq!(
        got,
        [
            ide.clone(),
            ide.clone(),
            ide,
            pr_comment.clone(),
            pr_comment
        ],
        "mirror on 2 surfaces, mentor on 2, multiplier on 1"
    );
    let mut expected: Vec<(String, Surface)> = d
        .actions
        .iter()
        .flat_map(|a| a.surfaces.iter().map(|s| (a.playbook.id.to_string(), *s)))
        .collect();
    expected.sort();
    assert_eq!(got, expected, "one call per returned action and surface");
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);
impl Observer for Recorder {
    fn on_event(&self, event: &Event<'_>) {
        let line = match event {
            Event::Span { name, .. } => format!("span {name}"),
            Event::Decision {
                degraded, actions, ..
            } => format!("decision degraded={} actions={actions:?}", degraded.len()),
            Event::Cache { cache, hit } => format!("cache {cache:?} {hit}"),
            Event::Breaker { port, to, .. } => format!("breaker {port:?} {to:?}"),
            Event::Receipt(r) => format!("receipt {r:?}"),
            other => format!("{other:?}"),
        };
        self.0.lock().unwrap().push(line);
    }
}

#[test]
fn the_observer_sees_decisions_spans_caches_breakers_and_receipts() {
    let rec = Arc::new(Recorder::default());
    let e = builder()
        .observer(rec.clone())
        .policy(Arc::new(TestPolicy(Switch::new(Mode::Down))))
        .signing_key(signing())
        .build();
    for _ in 0..5 {
        decide(&e, &pr(), json!(null));
    }
    let events = rec.0.lock().unwrap().clone();
    for want in [
        "span context.build",
        "span playbook.evaluate",
        "span policy.gate",
        "span eris.receipt",
        "span mmm.decide",
        "cache Policy false",
        "breaker Policy Open",
        "receipt Emitted",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "missing `{want}` in {events:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("decision degraded=1 actions=[(Mirror, 1)]")),
        "{events:?}"
    );
}

#[test]
fn many_threads_with_flapping_ports_lose_no_receipt() {
    let sink = Arc::new(Sink::default());
    let policy = Switch::new(Mode::Up);
    let key = signing();
    let public = key.verifying_key();
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let e = builder()
        .signing_key(key)
        .receipts(sink.clone())
        .policy(Arc::new(TestPolicy(policy.clone())))
        .clock(clock.clone())
        .background_outbox(false)
        .build();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let flapper = scope.spawn(|| {
            for i in 0..40 {
                sink.up.store(i % 2 == 0, Ordering::SeqCst);
                policy.set(if i % 3 == 0 { Mode::Down } else { Mode::Up });
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let e = e.clone();
                scope.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let mut s = pr();
                            s["actor_id"] = json!(format!("dev-{t}-{i}"));
                            let d = decide(&e, &s, json!(null));
                            assert!(
                                ["emitted", "queued"].contains(&d.receipt.status.as_str()),
                                "{}",
                                d.receipt.status
                            );
                            d.receipt.receipt_id.unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        flapper.join().unwrap();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    sink.up.store(true, Ordering::SeqCst);
    // Past the breaker's 60 s and the longest retry interval, a few times over.
    for _ in 0..10 {
        if e.outbox_len() == 0 {
            break;
        }
        clock.advance(Duration::from_secs(61));
        e.flush_outbox();
    }
    assert_eq!(e.outbox_len(), 0);
    let received = sink.received.lock().unwrap().clone();
    let got: HashSet<String> = received.iter().map(receipt_id).collect();
    assert_eq!(got.len(), received.len(), "each receipt delivered once");
    assert_eq!(got, ids.into_iter().collect::<HashSet<_>>());
    // Ordered by their chain position, the receipts form one unbroken chain.
    let mut ordered = received;
    ordered.sort_by_key(|env| {
        use base64::Engine as _;
        let p: Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(&env.payload)
                .unwrap(),
        )
        .unwrap();
        p["chain"]["seq"].as_u64().unwrap()
    });
    verify_chain(&ordered, &public).unwrap();
}

#[test]
fn an_iam_refusal_does_not_open_the_breakers_of_healthy_ports() {
    let signals = Switch::new(Mode::Up);
    let policy = Switch::new(Mode::Up);
    let e = builder()
        .iam(Arc::new(TestIam(Switch::new(Mode::Up), false)))
        .signals(Arc::new(TestSignals(signals.clone())))
        .policy(Arc::new(TestPolicy(policy.clone())))
        .build();
    for _ in 0..8 {
        assert!(e.decide(&pr(), None, &at(NOW)).is_err());
    }
    assert_eq!(e.breaker_state(PortName::Signals), BreakerState::Closed);
    assert_eq!(e.breaker_state(PortName::Policy), BreakerState::Closed);
}

/// Reports each delivery call's answer as it arrives.
struct DeliveryAnswers(mpsc::Sender<bool>);
impl Observer for DeliveryAnswers {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Delivery { ok, .. } = event {
            let _ = self.0.send(*ok);
        }
    }
}

#[test]
fn deliveries_do_not_wear_out_the_delivery_breaker() {
    let (tx, _rx) = mpsc::channel();
    let (answers, answered) = mpsc::channel();
    let e = builder()
        .delivery(Arc::new(Deliveries(tx)))
        .observer(Arc::new(DeliveryAnswers(answers)))
        .build();
    for _ in 0..8 {
        decide(&e, &signal("nothing.matches", json!({})), json!(null));
        decide(&e, &pr(), json!(null));
    }
    // 8 decisions with 5 deliveries each (the others return nothing); each answer is
    // reported to the breaker before the observer hears of it. More than the 5
    // consecutive failures that would open it, so a delivery counted as a failure shows.
    let oks: Vec<bool> = (0..40)
        .map(|_| answered.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert!(oks.iter().all(|ok| *ok), "{oks:?}");
    assert_eq!(e.breaker_state(PortName::Delivery), BreakerState::Closed);
}
