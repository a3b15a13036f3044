//! Observability hooks: the events a host turns into metrics and traces. The core emits
//! them and depends on no metrics or tracing library.

use std::time::Duration;

use crate::decision::Degraded;
use crate::model::{ActionType, ActorType, Surface};
use crate::ports::{BreakerState, PortName};

/// Span names, as the host's traces should call them.
pub mod spans {
    /// The whole decision.
    pub const DECIDE: &str = "mmm.decide";
    /// Validating the signal and building the context (ports included).
    pub const CONTEXT_BUILD: &str = "context.build";
    /// Conditions of the candidate playbooks.
    pub const PLAYBOOK_EVALUATE: &str = "playbook.evaluate";
    /// Gates, policy, rendering and fatigue.
    pub const POLICY_GATE: &str = "policy.gate";
    /// Signing and handing over the receipt.
    pub const ERIS_RECEIPT: &str = "eris.receipt";
    /// Handing actions to the delivery port.
    pub const DELIVERY_ROUTE: &str = "delivery.route";
}

/// What happened to a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptEvent {
    /// The port took it during the decision.
    Emitted,
    /// It went to the outbox.
    Queued,
    /// The outbox delivered it later.
    DeliveredFromOutbox,
    /// An outbox retry failed.
    RetryFailed,
    /// It could be neither emitted nor queued.
    Dropped,
    /// The receipts port refused it as a business answer (a 4xx): retrying would not
    /// help, so it left the outbox. The host should keep such receipts elsewhere.
    Refused,
}

/// Which cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Policy snapshots per tenant.
    Policy,
    /// Tenant configuration from data governance.
    TenantConfig,
}

/// One observable event.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A decision was made.
    Decision {
        /// Tenant.
        tenant_id: &'a str,
        /// Actor type.
        actor_type: ActorType,
        /// Degraded modes it ran in.
        degraded: &'a [Degraded],
        /// How long it took.
        latency: Duration,
        /// Returned actions by type.
        actions: &'a [(ActionType, usize)],
    },
    /// A stage of a decision ended.
    Span {
        /// One of [`spans`].
        name: &'static str,
        /// Offset from the start of the decision.
        start: Duration,
        /// How long it took.
        duration: Duration,
    },
    /// An outcome was recorded.
    Outcome {
        /// Tenant.
        tenant_id: &'a str,
        /// Playbook.
        playbook_id: &'a str,
        /// The result (`accepted`, …).
        result: &'a str,
    },
    /// A receipt's fate.
    Receipt(ReceiptEvent),
    /// A circuit breaker changed state.
    Breaker {
        /// The port.
        port: PortName,
        /// Previous state.
        from: BreakerState,
        /// New state.
        to: BreakerState,
    },
    /// An action was handed to the delivery port.
    Delivery {
        /// Where.
        surface: Surface,
        /// Whether the port took it.
        ok: bool,
    },
    /// A cache was consulted.
    Cache {
        /// Which.
        cache: Cache,
        /// Hit or miss.
        hit: bool,
    },
}

/// Receives events: decision, span, cache and breaker events on the deciding thread;
/// delivery events from the call pool; outbox events from the outbox worker (or the
/// caller of `flush_outbox`). Keep it cheap.
pub trait Observer: Send + Sync {
    /// One event.
    fn on_event(&self, event: &Event<'_>);

    /// Whether events are wanted at all; when not, the engine does not time its stages.
    fn enabled(&self) -> bool {
        true
    }
}

/// Ignores everything (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn on_event(&self, _event: &Event<'_>) {}

    fn enabled(&self) -> bool {
        false
    }
}
