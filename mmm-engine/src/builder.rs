//! Building an engine: the playbooks, the ports, the settings and the pluggable stores
//! go in; the services the pipeline uses come out, wired together.

use std::sync::Arc;

use arc_swap::ArcSwap;
use ed25519_dalek::SigningKey;
use parking_lot::Mutex;

use crate::approval::{ApprovalStore, Approvals, MemoryApprovals};
use crate::audit::{AuditSink, MemoryAudit};
use crate::clock::{Clock, SystemClock};
use crate::condition::Sandbox;
use crate::engine::{Engine, Inner};
use crate::fatigue::{FatigueStore, InMemoryFatigue};
use crate::observe::{NoObserver, Observer};
use crate::outbox::{MemoryOutbox, Outbox};
use crate::ports::{DataGovernance, Delivery, Iam, Llm, Policy, Receipts, RecentSignals};
use crate::receipt::ReceiptSigner;
use crate::registry::PlaybookSet;
use crate::services::action_memory::ActionMemory;
use crate::services::experiments::Experiments;
use crate::services::port_hub::{CacheTimes, PortHub, Ports};
use crate::services::receipt_trail::ReceiptTrail;
use crate::settings::EngineConfig;

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }
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
    forget_actions: bool,
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

    /// Whether the actions a decision returns are remembered for
    /// [`Engine::record_outcome`] (default: yes). A replay, to which no outcome is ever
    /// reported, does without: an outcome reported to an engine that remembers nothing is
    /// counted as for an action no longer remembered.
    pub fn remember_actions(mut self, on: bool) -> Self {
        self.forget_actions = !on;
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Engine {
        let config = self.config;
        let independent_actors =
            if self.fatigue.is_none() && self.signer.is_none() && !self.ports.any() {
                crate::fatigue::actors_per_shard(config.fatigue_max_actors)
            } else {
                0
            };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let observer: Arc<dyn Observer> = self.observer.unwrap_or_else(|| Arc::new(NoObserver));
        let hub = Arc::new(PortHub::new(
            self.ports,
            config.timeouts,
            CacheTimes {
                policy_ttl: config.policy_ttl,
                policy_max_age: config.policy_max_age,
                tenant_config_ttl: config.tenant_config_ttl,
            },
            config.breaker,
            config.max_port_threads,
            Arc::clone(&clock),
            Arc::clone(&observer),
        ));
        let trail = Arc::new(ReceiptTrail::new(
            self.signer,
            self.outbox
                .unwrap_or_else(|| Arc::new(MemoryOutbox::new(config.outbox_capacity))),
            Arc::clone(&hub),
            Arc::clone(&clock),
            Arc::clone(&observer),
        ));
        if !self.background && trail.signing() && trail.has_port() {
            ReceiptTrail::spawn_worker(Arc::downgrade(&trail));
        }
        let audit: Arc<dyn AuditSink> = self.audit.unwrap_or_else(|| Arc::new(MemoryAudit::new()));
        let approvals = Approvals::new(
            self.approvals
                .unwrap_or_else(|| Arc::new(MemoryApprovals::default())),
            Arc::clone(&clock),
            Arc::clone(&audit),
        )
        .with_ttl(config.approval_ttl);
        Engine::from_inner(Inner {
            playbooks: ArcSwap::new(self.playbooks.unwrap_or_default()),
            reloading: Mutex::new(()),
            sandbox: Sandbox::new(config.condition_limits.clone()),
            fatigue: self.fatigue.unwrap_or_else(|| {
                Arc::new(InMemoryFatigue::with_max_actors(config.fatigue_max_actors))
            }),
            clock,
            hub,
            experiments: Experiments::new(config.experiment_seed),
            trail,
            memory: if self.forget_actions {
                ActionMemory::off()
            } else {
                ActionMemory::new(config.remembered_actions)
            },
            observer,
            approvals,
            audit,
            config,
            independent_actors,
        })
    }
}
