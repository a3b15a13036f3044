//! The engine: the pipeline signal → context → candidates → condition → compose → filter
//! → fatigue, run synchronously for each decision.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use jiff::Timestamp;
use parking_lot::RwLock;
use serde_json::Value;

use crate::clock::{Clock, SystemClock};
use crate::compose::compose;
use crate::condition::{ConditionLimits, HelperInputs, RhaiState, Sandbox};
use crate::context::Context;
use crate::decision::{
    Action, Decision, ExplainAction, ExplainEntry, Reason, ReceiptRef, Suppressed,
};
use crate::env::Env;
use crate::error::DecideError;
use crate::fatigue::{FatigueRequest, FatigueStore, FatigueVerdict, InMemoryFatigue};
use crate::filter;
use crate::minimise::DenyList;
use crate::model::{PlaybookRef, Surface};
use crate::registry::PlaybookSet;
use crate::signal::{Signal, DEFAULT_MAX_PAYLOAD_BYTES};

static DEFAULT_DENY_LIST: LazyLock<DenyList> = LazyLock::new(DenyList::default);

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Largest payload accepted, serialized (default 64 KiB).
    pub max_payload_bytes: usize,
    /// What one condition may do.
    pub condition_limits: ConditionLimits,
    /// Deadline for decisions whose signal says the actor is in the IDE (default 150 ms).
    pub ide_deadline: std::time::Duration,
    /// Deadline for every other decision (default 500 ms).
    pub default_deadline: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            condition_limits: ConditionLimits::default(),
            ide_deadline: std::time::Duration::from_millis(150),
            default_deadline: std::time::Duration::from_millis(500),
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

/// Builds an [`Engine`] from playbooks and ports.
#[derive(Default)]
#[must_use]
pub struct EngineBuilder {
    playbooks: Option<Arc<PlaybookSet>>,
    fatigue: Option<Arc<dyn FatigueStore>>,
    clock: Option<Arc<dyn Clock>>,
    config: EngineConfig,
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

    /// Builds the engine.
    pub fn build(self) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                playbooks: RwLock::new(self.playbooks.unwrap_or_default()),
                sandbox: Sandbox::new(self.config.condition_limits.clone()),
                fatigue: self
                    .fatigue
                    .unwrap_or_else(|| Arc::new(InMemoryFatigue::new())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                config: self.config,
            }),
        }
    }
}

struct Inner {
    playbooks: RwLock<Arc<PlaybookSet>>,
    sandbox: Sandbox,
    fatigue: Arc<dyn FatigueStore>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
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
struct Pending {
    candidate: usize,
    index: usize,
    surfaces: Vec<Surface>,
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
    pub fn reload(&self, set: PlaybookSet) {
        self.reload_shared(Arc::new(set));
    }

    /// As [`Engine::reload`], with a set shared with other engines.
    pub fn reload_shared(&self, set: Arc<PlaybookSet>) {
        *self.inner.playbooks.write() = set;
    }

    /// The fatigue store (to seed history, for instance).
    pub fn fatigue(&self) -> &Arc<dyn FatigueStore> {
        &self.inner.fatigue
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Decides what to show for one signal.
    ///
    /// # Errors
    /// [`DecideError::Signal`] or [`DecideError::Context`] for invalid input. A failing
    /// condition or template never fails the decision: it becomes a suppression.
    pub fn decide(
        &self,
        signal: &Value,
        context: Option<&Value>,
        options: &DecideOptions,
    ) -> Result<Decision, DecideError> {
        let started = Instant::now();
        let inner = &*self.inner;
        let mut signal = Signal::from_json(signal, inner.config.max_payload_bytes)?;
        let mut ctx = Context::from_json(context)?;
        let now = options.now.unwrap_or_else(|| inner.clock.now());
        let now_text = now.to_string();

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
        let helpers = HelperInputs {
            now,
            recent: &ctx.recent,
            zone: &ctx.actor_zone,
        };
        let policy = ctx.policy.as_ref();
        let mut rhai = RhaiState::new();
        let mut suppressed: Vec<Suppressed> = Vec::new();
        let mut explain: Vec<ExplainEntry> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();

        let suppress = |suppressed: &mut Vec<Suppressed>,
                        plan: &crate::plan::Plan,
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

        // Conditions and gates.
        for (ci, candidate) in candidates.iter().enumerate() {
            let plan = &*candidate.plan;
            let result = match &plan.condition {
                None => Ok(true),
                Some(c) => c.evaluate(&inner.sandbox, &env, &helpers, &mut rhai),
            };
            if options.explain {
                explain.push(ExplainEntry {
                    playbook: plan.reference(),
                    trigger: candidate.trigger.to_string(),
                    condition: match &result {
                        Ok(b) => Value::Bool(*b),
                        Err(e) => serde_json::json!({"error": e}),
                    },
                    actions: Vec::new(),
                });
            }
            match result {
                Ok(false) => {}
                Err(e) => {
                    for index in 0..plan.actions.len() {
                        suppress(
                            &mut suppressed,
                            plan,
                            index,
                            Reason::ConditionError,
                            e.clone(),
                        );
                    }
                }
                Ok(true) => {
                    for (index, action) in plan.actions.iter().enumerate() {
                        match filter::check(plan, action, &ctx, policy, now) {
                            Ok(surfaces) => pending.push(Pending {
                                candidate: ci,
                                index,
                                surfaces,
                            }),
                            Err((reason, detail)) => {
                                suppress(&mut suppressed, plan, index, reason, detail);
                            }
                        }
                    }
                }
            }
        }
        drop(rhai);

        // Ordering, the cap, rendering and fatigue. Candidates are already in priority and
        // id order and actions in index order, so `pending` is in the returned order.
        let cap = usize::try_from(ctx.max_actions).unwrap_or(usize::MAX);
        let mut actions: Vec<Action> = Vec::new();
        // The playbook action index of each returned action.
        let mut returned: Vec<usize> = Vec::new();
        let mut rest = pending.as_slice();
        while let Some(first) = rest.first() {
            let ci = first.candidate;
            let split = rest
                .iter()
                .position(|p| p.candidate != ci)
                .unwrap_or(rest.len());
            let (group, tail) = rest.split_at(split);
            rest = tail;
            let Some(candidate) = candidates.get(ci) else {
                continue;
            };
            let plan = &*candidate.plan;
            let mut composed: Vec<(usize, Action)> = Vec::new();
            for p in group {
                if actions.len() + composed.len() >= cap {
                    suppress(
                        &mut suppressed,
                        plan,
                        p.index,
                        Reason::MaxActions,
                        format!("the decision already has {cap} actions"),
                    );
                    continue;
                }
                let Some(action) = plan.actions.get(p.index) else {
                    continue;
                };
                match compose(
                    plan,
                    &signal.kind,
                    p.index,
                    action,
                    p.surfaces.clone(),
                    &env,
                ) {
                    Ok(a) => composed.push((p.index, a)),
                    Err((reason, detail)) => {
                        suppress(&mut suppressed, plan, p.index, reason, detail)
                    }
                }
            }
            if composed.is_empty() {
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
                // A critical nudge goes out even when fatigue cannot be checked; anything
                // else is held back rather than risk nagging.
                Err(_) if plan.critical => Ok(FatigueVerdict::Allowed(request.actions)),
                Err(e) => Err(e.to_string()),
            };
            let (allowed, reason, detail) = match verdict {
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
            };
            for (i, (index, action)) in composed.into_iter().enumerate() {
                if i < allowed {
                    returned.push(index);
                    actions.push(action);
                } else {
                    suppressed.push(Suppressed {
                        playbook: plan.reference(),
                        action_index: index,
                        kind: action.kind,
                        reason,
                        detail: detail.clone(),
                    });
                }
            }
        }

        let explain = options.explain.then(|| {
            fill_outcomes(&mut explain, &actions, &returned, &suppressed);
            explain
        });
        let elapsed = started.elapsed();
        let deadline = match signal.surface {
            Some(Surface::Ide) => inner.config.ide_deadline,
            _ => inner.config.default_deadline,
        };
        Ok(Decision {
            decision_id: uuid::Uuid::now_v7().to_string(),
            signal_id: signal.signal_id.clone(),
            tenant_id: signal.tenant_id.clone(),
            actor_id: signal.actor_id.clone(),
            decided_at: now_text.clone(),
            actions,
            suppressed,
            degraded: Vec::new(),
            redacted,
            policy_snapshot_id: policy.and_then(|p| p.snapshot_id.clone()),
            receipt: ReceiptRef {
                receipt_id: None,
                status: "disabled".to_owned(),
            },
            latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            latency_warning: elapsed > deadline,
            explain,
        })
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
