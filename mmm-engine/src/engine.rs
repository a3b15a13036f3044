//! The engine: one decision runs the pipeline signal → context (ports) → minimise →
//! candidates → condition → filter → cap and compose (LLM) → fatigue → receipt →
//! delivery, synchronously, within the decision's deadline.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration as StdDuration, Instant};

use dashmap::DashMap;
use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use parking_lot::RwLock;
use serde_json::{json, Map, Value};

use crate::approval::{ApprovalStore, Approvals, MemoryApprovals};
use crate::audit::{AuditError, AuditEvent, AuditSink, MemoryAudit};
use crate::clock::{Clock, SystemClock};
use crate::compose::{compose, MentorText};
use crate::condition::{ConditionLimits, HelperInputs, RhaiState, Sandbox};
use crate::context::{Context, PolicySnapshot};
use crate::decision::{
    Action, Decision, Degraded, ExplainAction, ExplainEntry, Reason, ReceiptRef, Suppressed,
};
use crate::env::Env;
use crate::error::DecideError;
use crate::experiment::{ArmState, ExperimentPlan, ExperimentStatus, Strategy, Variant};
use crate::fatigue::{FatigueRequest, FatigueStore, FatigueVerdict, InMemoryFatigue};
use crate::filter;
use crate::minimise::DenyList;
use crate::model::{ActionType, PlaybookRef, Surface};
use crate::observe::{spans, Cache, Event, NoObserver, Observer, ReceiptEvent};
use crate::outbox::{next_attempt, MemoryOutbox, Outbox, OutboxEntry};
use crate::outcome::{ActionMemo, ActionMemory, Aggregates, Outcome, OutcomeCount, OutcomeError};
use crate::plan::Plan;
use crate::ports::guard::{CallPool, Pending};
use crate::ports::{
    ActorInfo, BreakerConfig, CircuitBreaker, DataGovernance, Delivery, Iam, Llm, LlmRequest,
    Policy, PortError, PortName, PortTimeouts, Receipts, RecentSignals, SafetyStatus, TenantConfig,
};
use crate::receipt::{canonical, sha256_hex, ReceiptSigner};
use crate::registry::PlaybookSet;
use crate::signal::{Signal, DEFAULT_MAX_PAYLOAD_BYTES};

static DEFAULT_DENY_LIST: LazyLock<DenyList> = LazyLock::new(DenyList::default);

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
    /// Actors the default in-memory fatigue store tracks at most (100,000).
    pub fatigue_max_actors: usize,
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
            fatigue_max_actors: crate::fatigue::DEFAULT_FATIGUE_MAX_ACTORS,
            approval_ttl: StdDuration::from_secs(24 * 3600),
        }
    }
}

/// Options for one decision.
#[derive(Debug, Clone, Default)]
pub struct DecideOptions {
    /// The decision's `now` (default: the engine's clock).
    pub now: Option<Timestamp>,
    /// Include the explain trace.
    pub explain: bool,
}

/// The ports an engine uses; every one optional.
#[derive(Clone, Default)]
struct Ports {
    iam: Option<Arc<dyn Iam>>,
    signals: Option<Arc<dyn RecentSignals>>,
    data_governance: Option<Arc<dyn DataGovernance>>,
    policy: Option<Arc<dyn Policy>>,
    llm: Option<Arc<dyn Llm>>,
    receipts: Option<Arc<dyn Receipts>>,
    delivery: Option<Arc<dyn Delivery>>,
}

/// Builds an [`Engine`] from playbooks and ports.
#[derive(Default)]
#[must_use]
pub struct EngineBuilder {
    playbooks: Option<Arc<PlaybookSet>>,
    fatigue: Option<Arc<dyn FatigueStore>>,
    clock: Option<Arc<dyn Clock>>,
    config: EngineConfig,
    ports: Ports,
    signer: Option<ReceiptSigner>,
    outbox: Option<Arc<dyn Outbox>>,
    observer: Option<Arc<dyn Observer>>,
    background: bool,
    approvals: Option<Arc<dyn ApprovalStore>>,
    audit: Option<Arc<dyn AuditSink>>,
}

impl EngineBuilder {
    /// The playbooks to decide with (default: none).
    pub fn playbooks(mut self, set: PlaybookSet) -> Self {
        self.playbooks = Some(Arc::new(set));
        self
    }

    /// The playbooks to decide with, shared with other engines (sets are immutable).
    pub fn playbooks_shared(mut self, set: Arc<PlaybookSet>) -> Self {
        self.playbooks = Some(set);
        self
    }

    /// The fatigue store (default: [`InMemoryFatigue`]).
    pub fn fatigue(mut self, store: Arc<dyn FatigueStore>) -> Self {
        self.fatigue = Some(store);
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Settings.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The IAM port (default: none; every actor is active).
    pub fn iam(mut self, port: Arc<dyn Iam>) -> Self {
        self.ports.iam = Some(port);
        self
    }

    /// The recent-signals (UBI) port (default: none; the context's list is used).
    pub fn signals(mut self, port: Arc<dyn RecentSignals>) -> Self {
        self.ports.signals = Some(port);
        self
    }

    /// The data-governance port (default: none; the context's tenant is used).
    pub fn data_governance(mut self, port: Arc<dyn DataGovernance>) -> Self {
        self.ports.data_governance = Some(port);
        self
    }

    /// The policy port (default: none; the context's policy, if any, is used).
    pub fn policy(mut self, port: Arc<dyn Policy>) -> Self {
        self.ports.policy = Some(port);
        self
    }

    /// The LLM port (default: none; mentors use their fallback).
    pub fn llm(mut self, port: Arc<dyn Llm>) -> Self {
        self.ports.llm = Some(port);
        self
    }

    /// The receipts port (default: none; with a signing key, envelopes are returned in
    /// the decision).
    pub fn receipts(mut self, port: Arc<dyn Receipts>) -> Self {
        self.ports.receipts = Some(port);
        self
    }

    /// The delivery port (default: none; the host delivers what the decision returns).
    pub fn delivery(mut self, port: Arc<dyn Delivery>) -> Self {
        self.ports.delivery = Some(port);
        self
    }

    /// Signs a receipt for every decision with this Ed25519 key (default: receipts
    /// disabled), on a new hash chain.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signer = Some(ReceiptSigner::new(key));
        self
    }

    /// Signs receipts with this signer (to continue an existing chain, for instance).
    pub fn receipt_signer(mut self, signer: ReceiptSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The receipts outbox (default: [`MemoryOutbox`] for 10,000 receipts).
    pub fn outbox(mut self, outbox: Arc<dyn Outbox>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Receives observability events (default: none).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Where approvals are kept (default: in memory).
    pub fn approval_store(mut self, store: Arc<dyn ApprovalStore>) -> Self {
        self.approvals = Some(store);
        self
    }

    /// Where administrative mutations are recorded (default: in memory).
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Whether a background thread drains the outbox (default: yes, when receipts are
    /// signed and a receipts port is set). Without it, call [`Engine::flush_outbox`].
    pub fn background_outbox(mut self, on: bool) -> Self {
        self.background = !on;
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Engine {
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let observer: Arc<dyn Observer> = self.observer.unwrap_or_else(|| Arc::new(NoObserver));
        let breakers = PortName::ALL
            .iter()
            .map(|port| {
                let obs = Arc::clone(&observer);
                let port = *port;
                let breaker = CircuitBreaker::new(self.config.breaker, Arc::clone(&clock))
                    .with_hook(Arc::new(move |from, to| {
                        obs.on_event(&Event::Breaker { port, from, to })
                    }));
                (port, Arc::new(breaker))
            })
            .collect();
        let worker = !self.background && self.signer.is_some() && self.ports.receipts.is_some();
        let audit: Arc<dyn AuditSink> = self.audit.unwrap_or_else(|| Arc::new(MemoryAudit::new()));
        let approvals = Approvals::new(
            self.approvals
                .unwrap_or_else(|| Arc::new(MemoryApprovals::default())),
            Arc::clone(&clock),
            Arc::clone(&audit),
        )
        .with_ttl(self.config.approval_ttl);
        let engine = Engine {
            inner: Arc::new(Inner {
                playbooks: RwLock::new(self.playbooks.unwrap_or_default()),
                sandbox: Sandbox::new(self.config.condition_limits.clone()),
                fatigue: self.fatigue.unwrap_or_else(|| {
                    Arc::new(InMemoryFatigue::with_max_actors(
                        self.config.fatigue_max_actors,
                    ))
                }),
                pool: CallPool::new(self.config.max_port_threads),
                clock,
                ports: self.ports,
                breakers,
                policy_cache: DashMap::new(),
                tenant_cache: DashMap::new(),
                signer: self.signer,
                outbox: self
                    .outbox
                    .unwrap_or_else(|| Arc::new(MemoryOutbox::default())),
                observer,
                memory: ActionMemory::new(self.config.remembered_actions),
                aggregates: Aggregates::default(),
                arms: DashMap::new(),
                experiment_status: DashMap::new(),
                approvals,
                audit,
                config: self.config,
            }),
        };
        if worker {
            spawn_outbox_worker(Arc::downgrade(&engine.inner));
        }
        engine
    }
}

/// Drains the outbox every 100 ms for as long as the engine lives.
fn spawn_outbox_worker(inner: Weak<Inner>) {
    let _ = std::thread::Builder::new()
        .name("mmm-receipts-outbox".into())
        .spawn(move || loop {
            std::thread::sleep(StdDuration::from_millis(100));
            match inner.upgrade() {
                Some(inner) => inner.drain_outbox(),
                None => return,
            }
        });
}

struct Inner {
    playbooks: RwLock<Arc<PlaybookSet>>,
    sandbox: Sandbox,
    fatigue: Arc<dyn FatigueStore>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    ports: Ports,
    breakers: HashMap<PortName, Arc<CircuitBreaker>>,
    pool: CallPool,
    policy_cache: DashMap<String, (PolicySnapshot, Timestamp)>,
    tenant_cache: DashMap<String, (TenantConfig, Timestamp)>,
    signer: Option<ReceiptSigner>,
    outbox: Arc<dyn Outbox>,
    observer: Arc<dyn Observer>,
    memory: ActionMemory,
    aggregates: Aggregates,
    /// Thompson state per (tenant, experiment id).
    arms: DashMap<(String, String), parking_lot::Mutex<ArmState>>,
    /// Status changes made through [`Engine::set_experiment_status`], by experiment id.
    experiment_status: DashMap<String, ExperimentStatus>,
    approvals: Approvals,
    audit: Arc<dyn AuditSink>,
}

/// The engine. Cheap to clone (clones share everything) and safe to share across threads.
///
/// ```
/// use mmm_engine::{DecideOptions, Engine, PlaybookSet};
/// use serde_json::json;
///
/// let set = PlaybookSet::from_yaml(r#"
/// apiVersion: mmm/v1
/// kind: Playbook
/// metadata: {id: large-pr, version: 1, tenant: "*", status: published}
/// spec:
///   triggers: [pr.opened]
///   when: signal.payload.lines_changed > 400
///   actions:
///     - type: mirror
///       surfaces: [pr_comment]
///       title: Large change
///       text: "This pull request changes {{ signal.payload.lines_changed }} lines."
/// "#)?;
/// let engine = Engine::builder().playbooks(set).build();
/// let signal = json!({"tenant_id": "acme", "actor_id": "dev-42", "kind": "pr.opened",
///     "occurred_at": "2026-11-22T10:00:00Z", "payload": {"lines_changed": 420}});
/// let decision = engine.decide(&signal, None, &DecideOptions::default())?;
/// assert_eq!(decision.actions[0].text, "This pull request changes 420 lines.");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("playbooks", &self.playbooks().len())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// An action that passed the gates, waiting for ordering, the cap and fatigue.
struct Pending2 {
    candidate: usize,
    index: usize,
    /// Allowed surfaces, as a bit set (see `filter::surfaces_in`).
    surfaces: u8,
}

/// How policy is known for this decision.
enum PolicyState {
    /// Known (from the context, the port or a fresh cache), or no policy applies.
    Known(Option<PolicySnapshot>),
    /// Unknown: safety-critical tenants get nothing, others mirrors only.
    Unavailable { safety_critical: bool, why: String },
}

/// Spans of one decision, reported at its end.
struct Spans {
    started: Instant,
    done: Vec<(&'static str, StdDuration, StdDuration)>,
    on: bool,
}

impl Spans {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        if !self.on {
            return f();
        }
        let start = self.started.elapsed();
        let out = f();
        self.done
            .push((name, start, self.started.elapsed().saturating_sub(start)));
        out
    }
}

fn remaining(deadline: Instant) -> StdDuration {
    deadline.saturating_duration_since(Instant::now())
}

fn push_unique(degraded: &mut Vec<Degraded>, d: Degraded) {
    if !degraded.contains(&d) {
        degraded.push(d);
    }
}

fn age(now: Timestamp, then: Timestamp) -> StdDuration {
    let us = now.as_microsecond().saturating_sub(then.as_microsecond());
    StdDuration::from_micros(u64::try_from(us).unwrap_or(0))
}

impl Inner {
    fn breaker(&self, port: PortName) -> Arc<CircuitBreaker> {
        match self.breakers.get(&port) {
            Some(b) => Arc::clone(b),
            // Every port has a breaker from `build`; this is never reached.
            None => Arc::new(CircuitBreaker::new(
                self.config.breaker,
                Arc::clone(&self.clock),
            )),
        }
    }

    fn start<T: Send + 'static>(
        &self,
        port: PortName,
        timeout: StdDuration,
        deadline: Instant,
        call: impl FnOnce() -> Result<T, PortError> + Send + 'static,
    ) -> Pending<T> {
        self.pool
            .start(&self.breaker(port), timeout.min(remaining(deadline)), call)
    }

    /// Delivers what waits in the outbox and is due.
    fn drain_outbox(&self) {
        let Some(port) = &self.ports.receipts else {
            return;
        };
        let now = self.clock.now();
        for mut entry in self.outbox.take_due(now, 256) {
            let p = Arc::clone(port);
            let envelope = entry.envelope.clone();
            let result = self.pool.call(
                &self.breaker(PortName::Receipts),
                self.config.timeouts.receipts,
                move || p.emit(&envelope),
            );
            match result {
                Ok(()) => {
                    self.outbox.release();
                    self.observer
                        .on_event(&Event::Receipt(ReceiptEvent::DeliveredFromOutbox));
                }
                // A business answer will not change on retry: the receipt leaves the outbox
                // (dead-lettered through the observer) instead of holding its room forever.
                Err(PortError::Rejected(_)) => {
                    self.outbox.release();
                    self.observer
                        .on_event(&Event::Receipt(ReceiptEvent::Refused));
                }
                Err(_) => {
                    entry.attempts += 1;
                    entry.next_attempt = next_attempt(now, entry.attempts);
                    self.outbox.put(entry);
                    self.observer
                        .on_event(&Event::Receipt(ReceiptEvent::RetryFailed));
                }
            }
        }
    }
}

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The playbook set decisions currently use.
    pub fn playbooks(&self) -> Arc<PlaybookSet> {
        Arc::clone(&self.inner.playbooks.read())
    }

    /// Replaces the playbook set atomically: every decision sees the old set or the new
    /// one, never a mix. Fatigue history is kept.
    ///
    /// # Errors
    /// [`AuditError`] when the audit sink cannot record the change; the old set stays.
    pub fn reload(&self, set: PlaybookSet) -> Result<(), AuditError> {
        self.reload_shared(Arc::new(set))
    }

    /// As [`Engine::reload`], with a set shared with other engines.
    ///
    /// # Errors
    /// As [`Engine::reload`].
    pub fn reload_shared(&self, set: Arc<PlaybookSet>) -> Result<(), AuditError> {
        let mut current = self.inner.playbooks.write();
        let summary = |s: &PlaybookSet| {
            json!({
                "playbooks": s.versions().iter().map(|p| json!({"id": &*p.id, "version": p.version,
                    "tenant": p.tenant.as_deref().unwrap_or("*"), "status": p.status})).collect::<Vec<_>>(),
                "experiments": s.experiments().iter().map(|e| json!({"id": e.id, "playbook": e.playbook,
                    "status": e.status})).collect::<Vec<_>>(),
            })
        };
        self.inner
            .audit
            .record(&AuditEvent {
                kind: "playbook_set.replaced".into(),
                subject: "playbooks".into(),
                by: None,
                at: self.inner.clock.now(),
                before: summary(&current),
                after: summary(&set),
            })
            .map_err(AuditError)?;
        *current = set;
        Ok(())
    }

    /// Dual-channel approvals for multiplier actions.
    pub fn approvals(&self) -> &Approvals {
        &self.inner.approvals
    }

    /// Records what the actor did with an action: per-tenant counts, and experiment
    /// statistics when an experiment shaped the action.
    ///
    /// # Errors
    /// [`OutcomeError`] naming the field that breaks a rule.
    pub fn record_outcome(&self, outcome: &Value) -> Result<(), OutcomeError> {
        let inner = &*self.inner;
        let (outcome, _at) = Outcome::from_json(outcome)?;
        let memo = inner
            .memory
            .recall(&outcome.action_id)
            .filter(|m| m.tenant_id == outcome.tenant_id && m.playbook_id == outcome.playbook_id);
        let kind = memo.as_ref().map_or("unknown", |m| m.kind.as_str());
        inner.aggregates.add(
            &outcome.tenant_id,
            &outcome.playbook_id,
            kind,
            outcome.result,
        );
        if let Some((experiment_id, variant)) = memo.and_then(|m| m.experiment) {
            let set = self.playbooks();
            let plan = set
                .experiment_for(&outcome.tenant_id, &outcome.playbook_id)
                .filter(|e| e.id == experiment_id);
            if let Some(plan) = plan {
                if let Some(index) = plan.variants.iter().position(|v| v.name == variant) {
                    let entry = inner
                        .arms
                        .entry((outcome.tenant_id.clone(), experiment_id.clone()))
                        .or_insert_with(|| parking_lot::Mutex::new(ArmState::new(plan)));
                    let mut arms = entry.lock();
                    if !arms.matches(plan) {
                        // The experiment changed shape in a reload: its old counts say
                        // nothing about the new variants.
                        *arms = ArmState::new(plan);
                    }
                    let slot = if plan.success.contains(&outcome.result) {
                        &mut arms.successes
                    } else {
                        &mut arms.failures
                    };
                    if let Some(n) = slot.get_mut(index) {
                        *n += 1;
                    }
                    let seed = inner.config.experiment_seed
                        ^ u64::from(crate::experiment::fnv1a32(&format!(
                            "{}:{}",
                            outcome.tenant_id, plan.id
                        )));
                    arms.maybe_update(plan, inner.clock.now(), seed);
                }
            }
        }
        let result = serde_json::to_value(outcome.result).ok();
        inner.observer.on_event(&Event::Outcome {
            tenant_id: &outcome.tenant_id,
            playbook_id: &outcome.playbook_id,
            result: result.as_ref().and_then(Value::as_str).unwrap_or(""),
        });
        Ok(())
    }

    /// Outcome counts for a tenant, by playbook, action type and result (never per actor).
    pub fn outcome_counts(&self, tenant_id: &str) -> Vec<OutcomeCount> {
        self.inner.aggregates.for_tenant(tenant_id)
    }

    /// Current weights of an experiment's variants for a tenant, normalised to 1.
    pub fn experiment_weights(
        &self,
        tenant_id: &str,
        experiment_id: &str,
    ) -> Option<Vec<(String, f64)>> {
        let set = self.playbooks();
        let plan = set.experiments().iter().find(|e| {
            e.id == experiment_id && e.tenant.as_deref().is_none_or(|t| t == tenant_id)
        })?;
        let weights = self.weights(tenant_id, plan);
        let total: f64 = weights.iter().sum();
        Some(
            plan.variants
                .iter()
                .zip(weights)
                .map(|(v, w)| (v.name.clone(), if total > 0.0 { w / total } else { 0.0 }))
                .collect(),
        )
    }

    /// Pauses, resumes or completes an experiment (audited).
    ///
    /// # Errors
    /// [`AuditError`] when the change cannot be audited (it then does not happen), or
    /// when no experiment has that id.
    pub fn set_experiment_status(
        &self,
        experiment_id: &str,
        status: ExperimentStatus,
        by: &str,
    ) -> Result<(), AuditError> {
        let set = self.playbooks();
        let plan = set
            .experiments()
            .iter()
            .find(|e| e.id == experiment_id)
            .ok_or_else(|| AuditError(format!("no experiment `{experiment_id}`")))?;
        let before = self
            .inner
            .experiment_status
            .get(experiment_id)
            .map_or(plan.status, |s| *s);
        self.inner
            .audit
            .record(&AuditEvent {
                kind: "experiment.state_changed".into(),
                subject: experiment_id.to_owned(),
                by: Some(by.to_owned()),
                at: self.inner.clock.now(),
                before: json!({"status": before}),
                after: json!({"status": status}),
            })
            .map_err(AuditError)?;
        self.inner
            .experiment_status
            .insert(experiment_id.to_owned(), status);
        Ok(())
    }

    fn weights(&self, tenant_id: &str, plan: &ExperimentPlan) -> Vec<f64> {
        let written = || plan.variants.iter().map(|v| v.weight).collect();
        match plan.strategy {
            Strategy::Fixed => written(),
            Strategy::Thompson => match self
                .inner
                .arms
                .get(&(tenant_id.to_owned(), plan.id.clone()))
            {
                Some(arms) => {
                    let arms = arms.lock();
                    if arms.matches(plan) {
                        arms.weights.clone()
                    } else {
                        written()
                    }
                }
                None => written(),
            },
        }
    }

    /// The experiment and variant for a candidate, when an active experiment applies.
    fn assign<'s>(
        &self,
        set: &'s PlaybookSet,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
    ) -> Option<(&'s ExperimentPlan, &'s Variant)> {
        let plan = set.experiment_for(tenant_id, playbook_id)?;
        let status = self
            .inner
            .experiment_status
            .get(&plan.id)
            .map_or(plan.status, |s| *s);
        if status != ExperimentStatus::Active {
            return None;
        }
        let variant = plan.variant_for(tenant_id, actor_id, &self.weights(tenant_id, plan))?;
        Some((&**plan, variant))
    }

    /// The fatigue store (to seed history, for instance).
    pub fn fatigue(&self) -> &Arc<dyn FatigueStore> {
        &self.inner.fatigue
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The observer.
    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        &self.inner.observer
    }

    /// The state of a port's circuit breaker.
    pub fn breaker_state(&self, port: PortName) -> crate::ports::BreakerState {
        self.inner.breaker(port).state()
    }

    /// Receipts waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.inner.outbox.len()
    }

    /// Tries once, now, to deliver the receipts in the outbox that are due (the
    /// background worker does this every 100 ms; hosts call it at shutdown).
    pub fn flush_outbox(&self) {
        self.inner.drain_outbox();
    }

    /// The public key receipts are signed with, when signing is on.
    pub fn receipt_public_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        self.inner.signer.as_ref().map(ReceiptSigner::public_key)
    }

    /// Decides what to show for one signal.
    ///
    /// # Errors
    /// [`DecideError::Signal`] or [`DecideError::Context`] for invalid input;
    /// [`DecideError::Forbidden`] when IAM says the actor is inactive or unknown;
    /// [`DecideError::Unavailable`] when IAM is down. Every other dependency failing is a
    /// degraded mode, not an error; a failing condition or template is a suppression.
    pub fn decide(
        &self,
        signal: &Value,
        context: Option<&Value>,
        options: &DecideOptions,
    ) -> Result<Decision, DecideError> {
        let inner = &*self.inner;
        let mut spans = Spans {
            started: Instant::now(),
            done: Vec::new(),
            on: inner.observer.enabled(),
        };
        let started = spans.started;
        let mut signal = Signal::from_json(signal, inner.config.max_payload_bytes)?;
        let deadline = started
            + match signal.surface {
                Some(Surface::Ide) => inner.config.ide_deadline,
                _ => inner.config.default_deadline,
            };
        let now = options.now.unwrap_or_else(|| inner.clock.now());
        let mut degraded: Vec<Degraded> = Vec::new();

        let (mut ctx, policy_state) = spans.time(spans::CONTEXT_BUILD, || {
            self.build_context(&signal, context, deadline, &mut degraded)
        })?;
        let now_text = now.to_string();

        // Receipts: room in the outbox is reserved before anything is decided, so that an
        // action is only ever returned when its receipt has somewhere to go.
        let signing = inner.signer.is_some();
        let reserved = signing && inner.ports.receipts.is_some() && inner.outbox.reserve();
        let backpressure = signing && inner.ports.receipts.is_some() && !reserved;
        if backpressure {
            push_unique(&mut degraded, Degraded::ReceiptsBackpressure);
        }

        // Data minimisation, before anything reads the payload.
        let mut redacted = Vec::new();
        let tenant_list = ctx.deny_payload_keys().map(DenyList::new);
        let deny = tenant_list.as_ref().unwrap_or(&DEFAULT_DENY_LIST);
        deny.redact(&mut signal.payload, "payload", &mut redacted);
        if let Some(Value::Array(recent)) = ctx.raw.get_mut("recent_signals") {
            for (i, r) in recent.iter_mut().enumerate() {
                if let Some(Value::Object(payload)) = r.get_mut("payload") {
                    deny.redact(
                        payload,
                        &format!("recent_signals[{i}].payload"),
                        &mut redacted,
                    );
                }
            }
        }

        let set = self.playbooks();
        let candidates = set.candidates(&signal.tenant_id, &signal.kind);
        let env = Env {
            signal: &signal,
            ctx: &ctx.raw,
            now_text: &now_text,
        };
        let mut suppressed: Vec<Suppressed> = Vec::new();
        let mut explain: Vec<ExplainEntry> = Vec::new();
        let mut pending: Vec<Pending2> = Vec::new();
        let suppress = |suppressed: &mut Vec<Suppressed>,
                        plan: &Plan,
                        index: usize,
                        reason: Reason,
                        detail: String| {
            if let Some(action) = plan.actions.get(index) {
                suppressed.push(Suppressed {
                    playbook: plan.reference(),
                    action_index: index,
                    kind: action.kind,
                    reason,
                    detail,
                });
            }
        };

        // Conditions.
        let results: Vec<Result<bool, String>> = spans.time(spans::PLAYBOOK_EVALUATE, || {
            let helpers = HelperInputs {
                now,
                recent: &ctx.recent,
                zone: &ctx.actor_zone,
            };
            let mut rhai = RhaiState::new();
            let mut paths = crate::condition::native::PathCache::default();
            candidates
                .iter()
                .map(|c| match &c.plan.condition {
                    None => Ok(true),
                    Some(cond) => {
                        cond.evaluate(&inner.sandbox, &env, &helpers, &mut rhai, &mut paths)
                    }
                })
                .collect()
        });

        let policy = match &policy_state {
            PolicyState::Known(p) => p.as_ref(),
            PolicyState::Unavailable { .. } => None,
        };
        let mut actions: Vec<Action> = Vec::new();
        let mut returned: Vec<usize> = Vec::new();
        // The experiment variant of each candidate whose condition held, if any.
        let has_experiments = !set.experiments().is_empty();
        let assigned: Vec<Option<(&ExperimentPlan, &Variant)>> = candidates
            .iter()
            .zip(&results)
            .map(|(c, r)| match r {
                Ok(true) if has_experiments => {
                    self.assign(&set, &signal.tenant_id, &signal.actor_id, &c.plan.id)
                }
                _ => None,
            })
            .collect();
        spans.time(spans::POLICY_GATE, || {
            // Gates.
            for (ci, (candidate, result)) in candidates.iter().zip(&results).enumerate() {
                let plan = &*candidate.plan;
                if options.explain {
                    explain.push(ExplainEntry {
                        playbook: plan.reference(),
                        trigger: String::from(&*candidate.trigger),
                        condition: match result {
                            Ok(b) => Value::Bool(*b),
                            Err(e) => json!({"error": e}),
                        },
                        actions: Vec::new(),
                        experiment: assigned
                            .get(ci)
                            .copied()
                            .flatten()
                            .map(|(e, v)| json!({"id": e.id, "variant": v.name})),
                    });
                }
                let holdout = assigned.get(ci).copied().flatten().filter(|(_, v)| v.holdout);
                match result {
                    Ok(true) if holdout.is_some() => {
                        if let Some((e, v)) = holdout {
                            for index in 0..plan.actions.len() {
                                suppress(
                                    &mut suppressed,
                                    plan,
                                    index,
                                    Reason::ExperimentHoldout,
                                    format!("the actor is in holdout `{}` of experiment `{}`", v.name, e.id),
                                );
                            }
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        for index in 0..plan.actions.len() {
                            suppress(&mut suppressed, plan, index, Reason::ConditionError, e.clone());
                        }
                    }
                    Ok(true) => {
                        for (index, action) in plan.actions.iter().enumerate() {
                            let gate = filter::check(plan, action, &ctx, policy, now).and_then(|surfaces| {
                                match &policy_state {
                                    PolicyState::Unavailable { safety_critical: true, why } => Err((
                                        Reason::PolicyUnavailable,
                                        format!("{why}; the tenant is safety-critical, so nothing goes out"),
                                    )),
                                    PolicyState::Unavailable { why, .. } if action.kind != ActionType::Mirror => Err((
                                        Reason::PolicyUnavailable,
                                        format!("{why}; only mirror actions go out without policy"),
                                    )),
                                    _ if backpressure => Err((
                                        Reason::ReceiptsBackpressure,
                                        "the receipts outbox is full: no nudge goes out unaudited".to_owned(),
                                    )),
                                    _ => Ok(surfaces),
                                }
                            });
                            match gate {
                                Ok(surfaces) => pending.push(Pending2 {
                                    candidate: ci,
                                    index,
                                    surfaces,
                                }),
                                Err((reason, detail)) => suppress(&mut suppressed, plan, index, reason, detail),
                            }
                        }
                    }
                }
            }

            // Ordering, the cap, rendering and fatigue. Candidates are in priority and id
            // order and actions in index order, so `pending` is in the returned order.
            let cap = usize::try_from(ctx.max_actions).unwrap_or(usize::MAX);
            let max_detail = format!("the decision already has {cap} actions");
            let mut rest = pending.as_slice();
            while let Some(first) = rest.first() {
                let ci = first.candidate;
                let split = rest.iter().position(|p| p.candidate != ci).unwrap_or(rest.len());
                let (group, tail) = rest.split_at(split);
                rest = tail;
                let Some(candidate) = candidates.get(ci) else {
                    continue;
                };
                let plan = &*candidate.plan;
                // Computed for the first action composed (most matches are past the cap).
                let mut evidence: Option<Vec<crate::decision::Evidence>> = None;
                let mut composed: Vec<(usize, Action)> = Vec::new();
                let mut over_cap: Vec<usize> = Vec::new();
                for p in group {
                    if actions.len() + composed.len() >= cap {
                        over_cap.push(p.index);
                        continue;
                    }
                    let Some(action) = plan.actions.get(p.index) else {
                        continue;
                    };
                    let variant = assigned.get(ci).copied().flatten().map(|(e, v)| (e.id.as_str(), v));
                    let prompt = variant
                        .and_then(|(_, v)| v.set.prompt.as_ref())
                        .or(action.prompt.as_ref());
                    let mentor = (action.kind == ActionType::Mentor)
                        .then(|| self.mentor_text(plan, prompt, &env, deadline, &mut degraded))
                        .flatten();
                    let mentor_ref = mentor.as_ref().map(|m| match m {
                        Ok(text) => MentorText::Generated(text),
                        Err((reason, why)) => MentorText::Fallback(*reason, why),
                    });
                    match compose(
                        plan,
                        &signal.kind,
                        p.index,
                        filter::surfaces_in(action, p.surfaces),
                        &env,
                        crate::compose::Extras {
                            mentor: mentor_ref,
                            variant,
                            evidence: {
                                let e = evidence.get_or_insert_with(|| crate::compose::evidence(plan, &env));
                                // The last action of the playbook takes it; others copy it.
                                if group.last().is_some_and(|last| last.index == p.index) {
                                    std::mem::take(e)
                                } else {
                                    e.clone()
                                }
                            },
                        },
                    ) {
                        Ok(a) => composed.push((p.index, a)),
                        Err((reason, detail)) => suppress(&mut suppressed, plan, p.index, reason, detail),
                    }
                }
                if composed.is_empty() {
                    for index in over_cap {
                        suppress(&mut suppressed, plan, index, Reason::MaxActions, max_detail.clone());
                    }
                    continue;
                }
                let request = FatigueRequest {
                    tenant_id: &signal.tenant_id,
                    actor_id: &signal.actor_id,
                    playbook_id: &plan.id,
                    now,
                    actions: u32::try_from(composed.len()).unwrap_or(u32::MAX),
                    cooldown: plan.fatigue.cooldown,
                    max: plan.fatigue.max,
                    budget: ctx.budget,
                    critical: plan.critical,
                };
                let verdict = match inner.fatigue.check_and_record(&request) {
                    Ok(v) => Ok(v),
                    // A critical nudge goes out even when fatigue cannot be checked;
                    // anything else is held back rather than risk nagging.
                    Err(_) if plan.critical => Ok(FatigueVerdict::Allowed(request.actions)),
                    Err(e) => Err(e.to_string()),
                };
                let (allowed, reason, detail) = fatigue_outcome(plan, verdict);
                let trimmed = allowed < composed.len();
                for (i, (index, action)) in composed.into_iter().enumerate() {
                    if i < allowed {
                        returned.push(index);
                        actions.push(action);
                    } else {
                        suppress(&mut suppressed, plan, index, reason, detail.clone());
                    }
                }
                // Actions past the cap would have met the same fatigue limit when the
                // limit trimmed this playbook: report that limit, not the cap.
                for index in over_cap {
                    if trimmed {
                        suppress(&mut suppressed, plan, index, reason, detail.clone());
                    } else {
                        suppress(&mut suppressed, plan, index, Reason::MaxActions, max_detail.clone());
                    }
                }
            }
        });

        let elapsed = started.elapsed();
        if elapsed > deadline.saturating_duration_since(started) {
            push_unique(&mut degraded, Degraded::DeadlineExceeded);
        }
        // Remember returned actions for their outcomes.
        for a in &actions {
            inner.memory.remember(
                a.action_id.clone(),
                ActionMemo {
                    tenant_id: signal.tenant_id.clone(),
                    playbook_id: a.playbook.id.clone(),
                    kind: a.kind,
                    experiment: a.experiment.as_ref().and_then(|e| {
                        Some((
                            e.get("id")?.as_str()?.to_owned(),
                            e.get("variant")?.as_str()?.to_owned(),
                        ))
                    }),
                },
            );
        }
        let decision_id = crate::ids::new_id();
        let policy_snapshot_id = policy.and_then(|p| p.snapshot_id.clone());

        // The receipt.
        let receipt = spans.time(spans::ERIS_RECEIPT, || {
            self.emit_receipt(
                ReceiptInputs {
                    decision_id: &decision_id,
                    signal: &signal,
                    ctx: &ctx,
                    now_text: &now_text,
                    policy_snapshot_id: policy_snapshot_id.as_deref(),
                    candidates: &candidates,
                    actions: &actions,
                    suppressed: &suppressed,
                    reserved,
                    deadline,
                },
                &mut degraded,
            )
        });

        // Delivery, only once the receipt is emitted or queued: no nudge goes out unaudited.
        if let Some(port) = &inner.ports.delivery {
            if receipt.status != "dropped" {
                spans.time(spans::DELIVERY_ROUTE, || {
                    self.deliver(port, &actions, deadline)
                });
            }
        }

        let explain = options.explain.then(|| {
            fill_outcomes(&mut explain, &actions, &returned, &suppressed);
            explain
        });
        let elapsed = started.elapsed();
        let latency_warning = elapsed > deadline.saturating_duration_since(started);
        if latency_warning {
            push_unique(&mut degraded, Degraded::DeadlineExceeded);
        }
        self.report(&signal, &degraded, &actions, elapsed, &spans);
        Ok(Decision {
            decision_id,
            signal_id: signal.signal_id.clone(),
            tenant_id: signal.tenant_id.clone(),
            actor_id: signal.actor_id.clone(),
            decided_at: now_text,
            actions,
            suppressed,
            degraded,
            redacted,
            policy_snapshot_id,
            receipt,
            latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            latency_warning,
            explain,
        })
    }

    /// Validates the caller's context, asks the ports for what it lacks (in parallel,
    /// each under its timeout and the decision's deadline) and merges the answers in; the
    /// caller's values win.
    fn build_context(
        &self,
        signal: &Signal,
        context: Option<&Value>,
        deadline: Instant,
        degraded: &mut Vec<Degraded>,
    ) -> Result<(Context, PolicyState), DecideError> {
        let inner = &*self.inner;
        let caller = Context::from_json(context)?;
        let ports = &inner.ports;
        let no_ports = ports.iam.is_none()
            && ports.signals.is_none()
            && ports.data_governance.is_none()
            && ports.policy.is_none();
        if no_ports {
            // Nothing to ask: the caller's context is the context.
            let state = PolicyState::Known(caller.policy.clone());
            return Ok((caller, state));
        }
        // Caches age in real time (the engine's clock), whatever `now` the caller decides at.
        let wall = inner.clock.now();
        let timeouts = inner.config.timeouts;
        let given = |key: &str| {
            context
                .and_then(|c| c.get(key))
                .is_some_and(|v| !v.is_null())
        };
        let tenant = signal.tenant_id.clone();
        let actor = signal.actor_id.clone();

        // Start every call first so that they run side by side.
        let iam = ports.iam.as_ref().map(|p| {
            let (p, t, a) = (Arc::clone(p), tenant.clone(), actor.clone());
            inner.start(PortName::Iam, timeouts.iam, deadline, move || {
                p.validate_actor(&t, &a)
            })
        });
        let recent = match &ports.signals {
            Some(p) if !given("recent_signals") => {
                let (p, t, a) = (Arc::clone(p), tenant.clone(), actor.clone());
                Some(
                    inner.start(PortName::Signals, timeouts.signals, deadline, move || {
                        p.recent(&t, &a, crate::context::MAX_RECENT_SIGNALS)
                    }),
                )
            }
            _ => None,
        };
        let fresh_tenant = if ports.data_governance.is_some() {
            inner.tenant_cache.get(&tenant).and_then(|e| {
                (age(wall, e.1) < inner.config.tenant_config_ttl).then(|| e.0.clone())
            })
        } else {
            None
        };
        let tenant_call = match (&ports.data_governance, &fresh_tenant) {
            (Some(_), Some(_)) => {
                inner.observer.on_event(&Event::Cache {
                    cache: Cache::TenantConfig,
                    hit: true,
                });
                None
            }
            (Some(p), None) => {
                inner.observer.on_event(&Event::Cache {
                    cache: Cache::TenantConfig,
                    hit: false,
                });
                let (p, t) = (Arc::clone(p), tenant.clone());
                Some(inner.start(
                    PortName::DataGovernance,
                    timeouts.data_governance,
                    deadline,
                    move || p.tenant_config(&t),
                ))
            }
            (None, _) => None,
        };
        let cached_policy = if ports.policy.is_some() {
            inner.policy_cache.get(&tenant).map(|e| (e.0.clone(), e.1))
        } else {
            None
        };
        let policy_call = match (&ports.policy, &cached_policy) {
            (Some(_), _) if given("policy") => None,
            (Some(_), Some((_, at))) if age(wall, *at) < inner.config.policy_ttl => {
                inner.observer.on_event(&Event::Cache {
                    cache: Cache::Policy,
                    hit: true,
                });
                None
            }
            (Some(p), _) => {
                inner.observer.on_event(&Event::Cache {
                    cache: Cache::Policy,
                    hit: false,
                });
                let (p, t) = (Arc::clone(p), tenant.clone());
                Some(
                    inner.start(PortName::Policy, timeouts.policy, deadline, move || {
                        p.snapshot(&t)
                    }),
                )
            }
            (None, _) => None,
        };

        // IAM decides whether there is a decision at all.
        let mut actor_info: Option<ActorInfo> = None;
        if let Some(call) = iam {
            match call.wait() {
                Ok(info) if !info.active => {
                    return Err(DecideError::Forbidden(format!(
                        "actor {} is not active",
                        crate::error::Quoted(&actor)
                    )))
                }
                Ok(info) => actor_info = Some(info),
                Err(PortError::Rejected(why)) => {
                    return Err(DecideError::Forbidden(format!(
                        "actor {} is not known to IAM: {why}",
                        crate::error::Quoted(&actor)
                    )))
                }
                Err(PortError::Unavailable(why)) => {
                    return Err(DecideError::Unavailable {
                        dependency: "iam".into(),
                        message: why,
                    })
                }
            }
        }

        let mut recent_list: Option<Vec<Value>> = None;
        if let Some(call) = recent {
            match call
                .wait()
                .and_then(|list| validate_recent(&list).map(|()| list))
            {
                Ok(list) => recent_list = Some(list),
                Err(_) => {
                    recent_list = Some(Vec::new());
                    push_unique(degraded, Degraded::UbiUnavailable);
                }
            }
        }

        let tenant_config = match (tenant_call, fresh_tenant) {
            (Some(call), _) => match call.wait() {
                Ok(config) => {
                    inner
                        .tenant_cache
                        .insert(tenant.clone(), (config.clone(), wall));
                    Some(config)
                }
                Err(_) => {
                    push_unique(degraded, Degraded::DataGovernanceUnavailable);
                    None
                }
            },
            (None, cached) => cached,
        };

        // Merge what the ports said under what the caller said.
        let needs_merge = actor_info.is_some() || recent_list.is_some() || tenant_config.is_some();
        let mut ctx = if needs_merge {
            let mut raw: Map<String, Value> = context
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(info) = actor_info {
                let actor = raw.entry("actor").or_insert_with(|| json!({}));
                if let Some(obj) = actor.as_object_mut() {
                    obj.entry("roles").or_insert_with(|| json!(info.roles));
                    if let Some(tz) = info
                        .timezone
                        .filter(|tz| jiff::tz::TimeZone::get(tz).is_ok())
                    {
                        obj.entry("timezone").or_insert(Value::String(tz));
                    }
                }
            }
            if let Some(list) = recent_list {
                raw.entry("recent_signals").or_insert(Value::Array(list));
            }
            if let Some(config) = tenant_config {
                let t = raw.entry("tenant").or_insert_with(|| json!({}));
                if let Some(obj) = t.as_object_mut() {
                    if let Some(sc) = config.safety_critical {
                        obj.entry("safety_critical").or_insert(Value::Bool(sc));
                    }
                    let cfg = obj.entry("config").or_insert_with(|| json!({}));
                    if let Some(cfg) = cfg.as_object_mut() {
                        if let Some(keys) = config.deny_payload_keys {
                            cfg.entry("deny_payload_keys")
                                .or_insert_with(|| json!(keys));
                        }
                        for (k, v) in config.extra {
                            cfg.entry(k).or_insert(v);
                        }
                    }
                }
            }
            let merged = Value::Object(raw);
            // Port answers were checked before merging; what fails here is the caller's.
            Context::from_json(Some(&merged))?
        } else {
            caller
        };

        // Policy: the caller's, else the port's (through the cache).
        let state = if ctx.policy.is_some() {
            PolicyState::Known(ctx.policy.clone())
        } else if ports.policy.is_none() {
            PolicyState::Known(None)
        } else {
            let from_port = policy_call.is_some();
            let fetched = match policy_call {
                None => cached_policy.as_ref().map(|(p, _)| Ok(p.clone())),
                Some(call) => Some(call.wait()),
            };
            match fetched {
                Some(Ok(snapshot)) => {
                    // A fresh answer from the port restarts the snapshot's age.
                    if from_port {
                        inner
                            .policy_cache
                            .insert(tenant.clone(), (snapshot.clone(), wall));
                    }
                    PolicyState::Known(Some(snapshot))
                }
                Some(Err(e)) => match cached_policy {
                    Some((snapshot, at)) if age(wall, at) <= inner.config.policy_max_age => {
                        push_unique(degraded, Degraded::PolicyCached);
                        PolicyState::Known(Some(snapshot))
                    }
                    _ => {
                        push_unique(degraded, Degraded::PolicyUnavailable);
                        PolicyState::Unavailable {
                            safety_critical: ctx.tenant.safety_critical,
                            why: format!("policy is unavailable ({e})"),
                        }
                    }
                },
                None => PolicyState::Known(None),
            }
        };
        if let PolicyState::Known(Some(p)) = &state {
            ctx.policy = Some(p.clone());
        }
        Ok((ctx, state))
    }

    /// The mentor's text from the LLM, or why the fallback is used; `None` without an LLM
    /// port (the fallback is used, and nothing is degraded).
    fn mentor_text(
        &self,
        plan: &Plan,
        prompt: Option<&crate::template::Template>,
        env: &Env<'_>,
        deadline: Instant,
        degraded: &mut Vec<Degraded>,
    ) -> Option<Result<String, (Reason, String)>> {
        let inner = &*self.inner;
        let port = inner.ports.llm.as_ref()?;
        let unavailable = |degraded: &mut Vec<Degraded>, why: String| {
            push_unique(degraded, Degraded::LlmUnavailable);
            Some(Err((Reason::LlmUnavailable, why)))
        };
        let left = remaining(deadline);
        if left < inner.config.llm_min_budget {
            return unavailable(
                degraded,
                format!("only {left:?} left of the decision's deadline; the LLM was skipped"),
            );
        }
        let prompt = match prompt.map(|t| t.render(env, crate::template::Format::Plain)) {
            Some(Ok(p)) => p,
            Some(Err(path)) => {
                return Some(Err((
                    Reason::TemplateError,
                    format!("`{path}` is missing or null in this signal and context"),
                )))
            }
            None => String::new(),
        };
        let request = LlmRequest {
            tenant_id: env.signal.tenant_id.clone(),
            actor_id: env.signal.actor_id.clone(),
            playbook_id: String::from(&*plan.id),
            prompt,
            max_tokens: inner.config.llm_max_tokens,
        };
        let p = Arc::clone(port);
        let answer = inner.pool.call(
            &inner.breaker(PortName::Llm),
            inner.config.timeouts.llm.min(left),
            move || p.generate(&request),
        );
        match answer {
            Ok(response) if response.safety.status == SafetyStatus::Fail => Some(Err((
                Reason::LlmUnsafe,
                format!(
                    "the LLM's answer failed its safety check ({})",
                    response.safety.risk_flags.join(", ")
                ),
            ))),
            Ok(response) if response.text.trim().is_empty() => {
                unavailable(degraded, "the LLM answered with no text".into())
            }
            Ok(response) => Some(Ok(response.text)),
            Err(e) => unavailable(degraded, format!("the LLM is {e}")),
        }
    }

    fn emit_receipt(&self, r: ReceiptInputs<'_>, degraded: &mut Vec<Degraded>) -> ReceiptRef {
        let inner = &*self.inner;
        let Some(signer) = &inner.signer else {
            return ReceiptRef {
                receipt_id: None,
                status: "disabled".to_owned(),
                envelope: None,
            };
        };
        let receipt_id = crate::ids::new_id();
        let inputs = json!({"signal": r.signal.to_json(), "context": r.ctx.raw});
        let inputs_sha256 = canonical(&inputs)
            .map(|b| sha256_hex(&b))
            .unwrap_or_default();
        // Degraded codes known before the hand-over; `receipts_queued` cannot be in the
        // receipt it is about.
        let payload = json!({
            "receipt_id": receipt_id,
            "decision_id": r.decision_id,
            "tenant_id": r.signal.tenant_id,
            "actor_id": r.signal.actor_id,
            "decided_at": r.now_text,
            "signal": {"signal_id": r.signal.signal_id, "kind": r.signal.kind},
            "inputs_sha256": inputs_sha256,
            "policy_snapshot_id": r.policy_snapshot_id,
            "playbooks": r.candidates.iter().map(|c| json!({"id": &*c.plan.id, "version": c.plan.version})).collect::<Vec<_>>(),
            "actions": r.actions.iter().map(|a| json!({
                "action_id": a.action_id, "playbook_id": a.playbook.id, "playbook_version": a.playbook.version,
                "type": a.kind, "surfaces": a.surfaces, "fingerprint": a.fingerprint,
            })).collect::<Vec<_>>(),
            "suppressed": r.suppressed.iter().map(|s| json!({"playbook_id": s.playbook.id, "reason": s.reason})).collect::<Vec<_>>(),
            "degraded": degraded,
            "engine_version": crate::ENGINE_VERSION,
        });
        let envelope = match signer.sign(payload) {
            Ok(e) => e,
            Err(_) => {
                // Canonicalising our own JSON cannot fail; if it ever did, say so rather
                // than pretend a receipt exists.
                if r.reserved {
                    inner.outbox.release();
                }
                inner
                    .observer
                    .on_event(&Event::Receipt(ReceiptEvent::Dropped));
                return ReceiptRef {
                    receipt_id: Some(receipt_id),
                    status: "dropped".into(),
                    envelope: None,
                };
            }
        };
        let Some(port) = &inner.ports.receipts else {
            inner
                .observer
                .on_event(&Event::Receipt(ReceiptEvent::Emitted));
            return ReceiptRef {
                receipt_id: Some(receipt_id),
                status: "emitted".into(),
                envelope: Some(envelope),
            };
        };
        let p = Arc::clone(port);
        let sent = envelope.clone();
        let handed = inner.pool.call(
            &inner.breaker(PortName::Receipts),
            inner.config.timeouts.receipts.min(remaining(r.deadline)),
            move || p.emit(&sent),
        );
        let status = match handed {
            Ok(()) => {
                if r.reserved {
                    inner.outbox.release();
                }
                inner
                    .observer
                    .on_event(&Event::Receipt(ReceiptEvent::Emitted));
                "emitted"
            }
            Err(_) if r.reserved => {
                let now = inner.clock.now();
                inner.outbox.put(OutboxEntry {
                    receipt_id: receipt_id.clone(),
                    envelope,
                    attempts: 1,
                    next_attempt: next_attempt(now, 1),
                });
                push_unique(degraded, Degraded::ReceiptsQueued);
                inner
                    .observer
                    .on_event(&Event::Receipt(ReceiptEvent::Queued));
                "queued"
            }
            Err(_) => {
                inner
                    .observer
                    .on_event(&Event::Receipt(ReceiptEvent::Dropped));
                "dropped"
            }
        };
        ReceiptRef {
            receipt_id: Some(receipt_id),
            status: status.into(),
            envelope: None,
        }
    }

    /// Hands each action to the delivery port, one call per surface, without waiting.
    fn deliver(&self, port: &Arc<dyn Delivery>, actions: &[Action], deadline: Instant) {
        let inner = &*self.inner;
        let mut calls = Vec::new();
        for action in actions {
            for surface in &action.surfaces {
                let rendered = action.rendered.get(surface).cloned().unwrap_or_default();
                let (p, a, s) = (Arc::clone(port), action.clone(), *surface);
                let call = inner.start(
                    PortName::Delivery,
                    inner.config.timeouts.delivery,
                    deadline.max(Instant::now() + inner.config.timeouts.delivery),
                    move || p.deliver(&a, s, &rendered),
                );
                calls.push((s, call));
            }
        }
        // Outcomes are reported from a pool thread so that the decision does not wait.
        let observer = Arc::clone(&inner.observer);
        inner.pool.spawn(move || {
            for (surface, call) in calls {
                let ok = call.wait().is_ok();
                observer.on_event(&Event::Delivery { surface, ok });
            }
        });
    }

    fn report(
        &self,
        signal: &Signal,
        degraded: &[Degraded],
        actions: &[Action],
        latency: StdDuration,
        spans: &Spans,
    ) {
        let observer = self.observer();
        if !observer.enabled() {
            return;
        }
        let mut by_type: Vec<(ActionType, usize)> = Vec::new();
        for a in actions {
            match by_type.iter_mut().find(|(t, _)| *t == a.kind) {
                Some((_, n)) => *n += 1,
                None => by_type.push((a.kind, 1)),
            }
        }
        for (name, start, duration) in &spans.done {
            observer.on_event(&Event::Span {
                name,
                start: *start,
                duration: *duration,
            });
        }
        observer.on_event(&Event::Span {
            name: spans::DECIDE,
            start: StdDuration::ZERO,
            duration: latency,
        });
        observer.on_event(&Event::Decision {
            tenant_id: &signal.tenant_id,
            actor_type: signal.actor_type,
            degraded,
            latency,
            actions: &by_type,
        });
    }
}

struct ReceiptInputs<'a> {
    decision_id: &'a str,
    signal: &'a Signal,
    ctx: &'a Context,
    now_text: &'a str,
    policy_snapshot_id: Option<&'a str>,
    candidates: &'a [crate::candidates::Candidate],
    actions: &'a [Action],
    suppressed: &'a [Suppressed],
    reserved: bool,
    deadline: Instant,
}

/// Recent signals from the port must each have a kind and an RFC 3339 `occurred_at`;
/// anything else is malformed data from a dependency, which counts as it being down.
fn validate_recent(list: &[Value]) -> Result<(), PortError> {
    if list.len() > crate::context::MAX_RECENT_SIGNALS {
        return Err(PortError::Unavailable("too many recent signals".into()));
    }
    for s in list {
        let ok = s.get("kind").and_then(Value::as_str).is_some()
            && s.get("occurred_at")
                .and_then(Value::as_str)
                .is_some_and(|t| crate::signal::parse_timestamp(t).is_ok());
        if !ok {
            return Err(PortError::Unavailable("malformed recent signal".into()));
        }
    }
    Ok(())
}

fn fatigue_outcome(
    plan: &Plan,
    verdict: Result<FatigueVerdict, String>,
) -> (usize, Reason, String) {
    match verdict {
        Ok(FatigueVerdict::Allowed(n)) => (
            usize::try_from(n).unwrap_or(usize::MAX),
            Reason::ActorBudget,
            "the actor's budget has no room for more actions".to_owned(),
        ),
        Ok(FatigueVerdict::Cooldown) => (
            0,
            Reason::FatigueCooldown,
            format!(
                "`{}` fired for this actor less than {} ago",
                plan.id,
                plan.fatigue
                    .cooldown
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
        ),
        Ok(FatigueVerdict::Max) => (
            0,
            Reason::FatigueMax,
            match plan.fatigue.max {
                Some((max, window)) => {
                    format!("`{}` already fired {max} times in {window}", plan.id)
                }
                None => String::new(),
            },
        ),
        Ok(FatigueVerdict::Budget) => (
            0,
            Reason::ActorBudget,
            "the actor's budget is spent".to_owned(),
        ),
        Err(e) => (
            0,
            Reason::FatigueCooldown,
            format!("{e}; held back rather than risk nagging"),
        ),
    }
}

/// Fills in, per candidate in the trace, how each of its actions ended.
fn fill_outcomes(
    explain: &mut [ExplainEntry],
    actions: &[Action],
    returned: &[usize],
    suppressed: &[Suppressed],
) {
    for entry in explain.iter_mut() {
        if entry.condition == Value::Bool(false) {
            continue;
        }
        let same = |p: &PlaybookRef| *p == entry.playbook;
        let mut outcomes: Vec<ExplainAction> = Vec::new();
        for s in suppressed.iter().filter(|s| same(&s.playbook)) {
            outcomes.push(ExplainAction {
                index: s.action_index,
                kind: s.kind,
                outcome: format!("suppressed:{}", s.reason),
            });
        }
        for (a, index) in actions
            .iter()
            .zip(returned)
            .filter(|(a, _)| same(&a.playbook))
        {
            outcomes.push(ExplainAction {
                index: *index,
                kind: a.kind,
                outcome: "acted".to_owned(),
            });
        }
        outcomes.sort_by_key(|o| o.index);
        entry.actions = outcomes;
    }
}
