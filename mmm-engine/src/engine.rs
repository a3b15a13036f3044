//! The engine and its conductor: `decide` runs the stages of `pipeline/` in order over
//! one signal, synchronously, within the decision's deadline, and the engine's other
//! methods hand their work to the services of `services/`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use jiff::Timestamp;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::approval::Approvals;
use crate::audit::{AuditError, AuditEvent, AuditSink};
use crate::clock::Clock;
use crate::condition::Sandbox;
use crate::context::RecentHistory;
use crate::decision::{Decision, Degraded};
use crate::env::Env;
use crate::error::DecideError;
use crate::experiment::ExperimentStatus;
use crate::fatigue::FatigueStore;
use crate::minimise::DenyLimits;
use crate::model::ReceiptStatus;
use crate::observe::{spans, Event, Observer};
use crate::outcome::{Outcome, OutcomeCount, OutcomeError};
use crate::pipeline::compose::{Cap, MentorSource};
use crate::pipeline::context::ContextLimits;
use crate::pipeline::receipt::ReceiptInputs;
use crate::pipeline::record::{self, DecisionRecord};
use crate::pipeline::report::{report, Spans};
use crate::pipeline::{
    candidates, compose, conditions, context, delivery, experiments, fatigue, gates, receipt,
    signal,
};
use crate::ports::{BreakerState, PortName};
use crate::registry::PlaybookSet;
use crate::services::action_memory::ActionMemory;
use crate::services::experiments::Experiments;
use crate::services::port_hub::PortHub;
use crate::services::receipt_trail::ReceiptTrail;
use crate::settings::EngineConfig;
use crate::signal::GivenSignal;

/// Options for one decision.
#[derive(Debug, Clone, Default)]
pub struct DecideOptions {
    /// The decision's `now` (default: the engine's clock).
    pub now: Option<Timestamp>,
    /// Include the explain trace.
    pub explain: bool,
}

/// What an engine holds: the playbook set, the sandbox, the services and the pluggable
/// stores. Built by `EngineBuilder::build`.
pub(crate) struct Inner {
    /// The set in force. Deciding threads load it without a lock or a shared reference
    /// count to write (`arc-swap` keeps per-thread slots), so two threads deciding at once
    /// do not pass one cache line back and forth; a reload swaps it atomically.
    pub playbooks: ArcSwap<PlaybookSet>,
    /// Held across a reload (audit, then swap), so that the audit log records the
    /// replacements in the order they apply.
    pub reloading: Mutex<()>,
    pub sandbox: Sandbox,
    pub fatigue: Arc<dyn FatigueStore>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    pub hub: Arc<PortHub>,
    pub experiments: Experiments,
    pub trail: Arc<ReceiptTrail>,
    pub memory: ActionMemory,
    pub observer: Arc<dyn Observer>,
    pub approvals: Approvals,
    pub audit: Arc<dyn AuditSink>,
    /// Up to how many distinct actors one actor's decisions cannot depend on another's
    /// (0: no such bound is known). See [`Engine::independent_actors`].
    pub independent_actors: usize,
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

/// The context limits of the settings.
fn context_limits(config: &EngineConfig) -> ContextLimits {
    ContextLimits {
        max_bytes: config.max_context_bytes,
        deny: DenyLimits {
            max_keys: config.max_deny_keys,
            max_key_bytes: config.max_deny_key_bytes,
        },
    }
}

impl Engine {
    pub(crate) fn from_inner(inner: Inner) -> Engine {
        Engine {
            inner: Arc::new(inner),
        }
    }

    /// Up to how many distinct actors a decision for one actor cannot depend on the
    /// decisions made for any other, so that a replay may decide different actors' signals
    /// on different threads and get exactly what one thread would. Non-zero only for an
    /// engine with nothing shared between actors on the decision path: the built-in
    /// fatigue store (until one of its shards could fill up, which makes it sweep other
    /// actors), no receipt signer (its hash chain orders every decision) and no port (an
    /// outside service, and its breaker and caches, see every call).
    pub(crate) fn independent_actors(&self) -> usize {
        self.inner.independent_actors
    }

    /// The playbook set decisions currently use.
    pub fn playbooks(&self) -> Arc<PlaybookSet> {
        self.inner.playbooks.load_full()
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
        let _one_at_a_time = self.inner.reloading.lock();
        let current = self.inner.playbooks.load();
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
            .map_err(AuditError::Unavailable)?;
        self.inner.playbooks.store(set);
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
        inner.memory.count(
            &outcome.tenant_id,
            &outcome.playbook_id,
            kind,
            outcome.result,
        );
        if let Some(experiment) = memo.and_then(|m| m.experiment) {
            inner.experiments.record_outcome(
                &self.playbooks(),
                &outcome,
                &experiment,
                inner.clock.now(),
            );
        }
        inner.observer.on_event(&Event::Outcome {
            tenant_id: &outcome.tenant_id,
            playbook_id: &outcome.playbook_id,
            result: outcome.result.as_str(),
        });
        Ok(())
    }

    /// Outcome counts for a tenant, by playbook, action type and result (never per actor).
    pub fn outcome_counts(&self, tenant_id: &str) -> Vec<OutcomeCount> {
        self.inner.memory.counts_for(tenant_id)
    }

    /// Current weights of an experiment's variants for a tenant, normalised to 1.
    pub fn experiment_weights(
        &self,
        tenant_id: &str,
        experiment_id: &str,
    ) -> Option<Vec<(String, f64)>> {
        self.inner
            .experiments
            .normalised_weights(&self.playbooks(), tenant_id, experiment_id)
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
        self.inner.experiments.set_status(
            &self.playbooks(),
            &*self.inner.audit,
            self.inner.clock.now(),
            experiment_id,
            status,
            by,
        )
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

    /// The state of a port's circuit breaker.
    pub fn breaker_state(&self, port: PortName) -> BreakerState {
        self.inner.hub.breaker_state(port)
    }

    /// Receipts waiting for the receipts port: those in the outbox, including any the
    /// outbox worker (or [`Engine::flush_outbox`]) is delivering at this moment. It is 0
    /// only once the port has taken every queued receipt.
    pub fn outbox_len(&self) -> usize {
        self.inner.trail.outbox_len()
    }

    /// Tries once, now, to deliver the receipts in the outbox that are due (the
    /// background worker does this every 100 ms; hosts call it at shutdown).
    pub fn flush_outbox(&self) {
        self.inner.trail.drain();
    }

    /// The public key receipts are signed with, when signing is on.
    pub fn receipt_public_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        self.inner.trail.public_key()
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
        self.decide_with(signal::Input::Lent(signal), context, None, options)
    }

    /// [`Engine::decide`] on a signal the caller no longer needs (a binding's or a
    /// service's freshly parsed JSON): its strings and payload are moved into the decision's
    /// signal instead of copied. The decision, and any error, are the same.
    ///
    /// # Errors
    /// As [`Engine::decide`].
    pub fn decide_owned(
        &self,
        signal: Value,
        context: Option<&Value>,
        options: &DecideOptions,
    ) -> Result<Decision, DecideError> {
        self.decide_given(GivenSignal::Json(signal), context, options)
    }

    /// [`Engine::decide_owned`] on the signal as the caller gave it: its JSON value, or the
    /// members of its object in their order (see
    /// [`Signal::from_fields`](crate::Signal::from_fields)), for a binding that reads an
    /// object signal field by field so that no map is built only to be taken apart. The
    /// decision, and any error, are those `decide` gives for the same JSON.
    ///
    /// # Errors
    /// As [`Engine::decide`].
    pub fn decide_given(
        &self,
        signal: GivenSignal,
        context: Option<&Value>,
        options: &DecideOptions,
    ) -> Result<Decision, DecideError> {
        self.decide_with(signal::Input::Given(signal), context, None, options)
    }

    /// [`Engine::decide`] with a replay's `history` standing for the context's
    /// `recent_signals` (see [`RecentHistory`]): `context` is `None` or an object without
    /// that key. The decision is the one `decide` gives for that context, byte for byte;
    /// the history's JSON is only put into the context when a candidate could read it, a
    /// receipt hashes the context, or a deny list could redact in it.
    pub(crate) fn decide_replayed(
        &self,
        signal: &Value,
        context: Option<&Value>,
        history: &mut RecentHistory,
        options: &DecideOptions,
    ) -> Result<Decision, DecideError> {
        self.decide_with(signal::Input::Lent(signal), context, Some(history), options)
    }

    fn decide_with(
        &self,
        signal: signal::Input<'_>,
        context: Option<&Value>,
        mut history: Option<&mut RecentHistory>,
        options: &DecideOptions,
    ) -> Result<Decision, DecideError> {
        let inner = &*self.inner;
        let mut spans = Spans::start(&*inner.observer);
        let started = spans.started;
        // The wall-clock instant the decision's own ids (its id, its actions') are stamped
        // with: one clock read for all of them.
        let stamp = crate::ids::IdStamp::now();
        let mut record = DecisionRecord::default();

        // 1. The signal and the deadline.
        let (mut signal, deadline) = signal::parse(signal, started, &inner.config)?;
        let now = options.now.unwrap_or_else(|| inner.clock.now());

        // 2. The context, with what the ports add.
        let limits = context_limits(&inner.config);
        let context::Gathered {
            mut ctx,
            policy,
            deny,
        } = spans.time(spans::CONTEXT_BUILD, || {
            context::gather(
                &inner.hub,
                limits,
                &signal,
                context,
                history.as_deref(),
                deadline,
                &mut record,
            )
        })?;
        // The replay's typed history is lent to the context for this decision (given
        // back below: nothing after this point fails).
        if let Some(h) = history.as_deref_mut() {
            ctx.recent = std::mem::take(&mut h.typed);
        }
        // Sized once: `to_string` grows its buffer from empty as jiff writes.
        let mut now_text = String::with_capacity(32);
        let _ = std::fmt::Write::write_fmt(&mut now_text, format_args!("{now}"));

        // 3. Room in the outbox is reserved before anything is decided, so that an action
        // is only ever returned when its receipt has somewhere to go.
        let reservation = inner.trail.reserve();
        if reservation.backpressure {
            record.degrade(Degraded::ReceiptsBackpressure);
        }

        // 4. Data minimisation, once the tenant's deny list is known and before anything
        // reads the payload.
        signal::minimise(&mut signal, &mut ctx, deny.as_deref(), &mut record.redacted);

        // 5. Candidates, from the set in force when the decision started.
        let set = inner.playbooks.load();
        let found = candidates::find(&set, &signal);
        if let Some(h) = history.as_deref() {
            // Whatever could see the history as JSON gets it: a candidate reading
            // `ctx.recent_signals` (or `ctx` whole), the receipt's hash of the context, a
            // deny list that could redact in it.
            let redacts = match deny.as_deref() {
                None => !h.clean_for_default_deny_list(),
                Some(list) => !list.is_empty() && !h.raw.is_empty(),
            };
            if redacts || inner.trail.signing() || found.iter().any(|c| c.plan.reads_recent_json) {
                context::put_history(&mut ctx, h);
                let deny = deny.as_deref().unwrap_or(&signal::DEFAULT_DENY_LIST);
                signal::minimise_recent(&mut ctx, deny, &mut record.redacted);
            }
        }
        let mut candidates = candidates::records(&found);
        let env = Env {
            signal: &signal,
            ctx: &ctx.raw,
            now_text: &now_text,
        };

        // 6. Conditions, 7. experiments.
        spans.time(spans::PLAYBOOK_EVALUATE, || {
            conditions::evaluate(&mut candidates, &inner.sandbox, &env, &ctx, now);
        });
        experiments::assign(&mut candidates, &inner.experiments, &set, &signal);

        spans.time(spans::POLICY_GATE, || {
            // 8. Gates.
            gates::check(
                &mut candidates,
                &ctx,
                &policy,
                reservation.backpressure,
                now,
                &mut record,
            );
            // 9. Compose and 10. fatigue, playbook by playbook in the returned order: the
            // cap counts what earlier playbooks returned.
            let cap = Cap::new(ctx.max_actions);
            let mentor = MentorSource {
                hub: &inner.hub,
                max_tokens: inner.config.llm_max_tokens,
                min_budget: inner.config.llm_min_budget,
                deadline,
            };
            let subject = fatigue::Subject {
                signal: &signal,
                budget: ctx.budget,
                now,
            };
            for c in candidates.iter_mut().filter(|c| c.has_passed()) {
                compose::playbook(c, &cap, &env, &mentor, stamp, &mut record);
                fatigue::playbook(c, &*inner.fatigue, &subject, &cap, &mut record);
            }
        });

        // 11. Settle: the deadline, and the returned actions remembered for outcomes.
        if started.elapsed() > deadline.saturating_duration_since(started) {
            record.degrade(Degraded::DeadlineExceeded);
        }
        inner
            .memory
            .remember_returned(&signal.tenant_id, &record.actions);
        let decision_id = crate::ids::new_id_at(stamp);
        let policy_snapshot_id = policy.snapshot().and_then(|p| p.snapshot_id.clone());

        // 12. The receipt.
        let receipt = spans.time(spans::ERIS_RECEIPT, || {
            receipt::emit(
                &inner.trail,
                ReceiptInputs {
                    decision_id: decision_id.as_str(),
                    signal: &signal,
                    ctx: &ctx,
                    now_text: &now_text,
                    policy_snapshot_id: policy_snapshot_id.as_deref(),
                    candidates: &candidates,
                    reservation,
                    deadline,
                },
                &mut record,
            )
        });

        // 13. Delivery, only once the receipt is emitted or queued: no nudge goes out
        // unaudited.
        if let Some(port) = &inner.hub.ports.delivery {
            if receipt.status != ReceiptStatus::Dropped {
                spans.time(spans::DELIVERY_ROUTE, || {
                    delivery::deliver(&inner.hub, port, &record.actions, deadline, &inner.observer)
                });
            }
        }

        // 14. The report, and the decision.
        let explain = options.explain.then(|| record::explain(&candidates));
        let elapsed = started.elapsed();
        let latency_warning = elapsed > deadline.saturating_duration_since(started);
        if latency_warning {
            record.degrade(Degraded::DeadlineExceeded);
        }
        report(&inner.observer, &signal, &record, elapsed, &spans);
        if let Some(h) = history {
            h.typed = std::mem::take(&mut ctx.recent);
        }
        let DecisionRecord {
            actions,
            suppressed,
            degraded,
            redacted,
        } = record;
        // The signal is done with: its ids move into the decision.
        let crate::signal::Signal {
            signal_id,
            tenant_id,
            actor_id,
            ..
        } = signal;
        Ok(Decision {
            decision_id,
            signal_id,
            tenant_id,
            actor_id,
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
}
