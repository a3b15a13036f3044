//! Prometheus metrics (`GET /v1/mmm/metrics`): requests, the live playbook set, and the
//! decision metrics of SPEC §13 (`mmm_decisions_total`, …), fed by the core's observer
//! hooks through [`Metrics::observer`] (install it with `EngineBuilder::observer`:
//! decisions, outcomes given to `Engine::record_outcome`, receipts, breakers, deliveries)
//! and by the ERIS forwarder ([`Metrics::observe_eris`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mmm_engine::observe::{Cache, Event, Observer, ReceiptEvent};
use parking_lot::Mutex;

use crate::store::cache::CacheCounts;
use mmm_engine::PortName;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Labels of the request metrics: the route's template, never its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// The matched route (`/v1/mmm/playbooks/{id}`), or `unmatched`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Labels of per-route latency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// The matched route.
    pub route: String,
}

/// `tenant_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TenantLabels {
    /// The tenant.
    pub tenant_id: String,
}

/// Labels of `mmm_decisions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The tenant.
    pub tenant_id: String,
    /// `human`, `agent` or `service`.
    pub actor_type: String,
    /// `none`, or the decision's degraded codes joined by `,` in the decision's order.
    pub degraded_mode: String,
}

/// Labels of `mmm_actions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ActionLabels {
    /// The tenant.
    pub tenant_id: String,
    /// `mirror`, `mentor` or `multiplier`.
    pub action_type: String,
}

/// Labels of the outcome and ERIS counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    /// The tenant.
    pub tenant_id: String,
    /// The result.
    pub result: String,
}

/// `result` alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OnlyResult {
    /// The result.
    pub result: String,
}

/// `mmm_circuit_state{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CircuitLabels {
    /// The port (`iam`, `signals`, …), or `delivery:<surface>` for webhook targets.
    pub name: String,
}

/// `mmm_delivery_attempts_total{channel, result}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The surface.
    pub channel: String,
    /// `ok` or `failed`.
    pub result: String,
}

/// `mmm_delivery_dead_total{channel}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ChannelLabels {
    /// The surface.
    pub channel: String,
}

/// `mmm_decision_surface_latency_seconds{surface}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SurfaceLabels {
    /// The signal's `surface` hint (`ide`, `pr_comment`, `ci_summary`, `alert`, `chat`)
    /// or `none`.
    pub surface: String,
}

/// `mmm_cache_requests_total{cache, result}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheLabels {
    /// `policy`, `preferences` or `tenant_config`.
    pub cache: String,
    /// `hit` or `miss`.
    pub result: String,
}

/// `mmm_intake_messages_total{source, result}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IntakeLabels {
    /// The broker: `nats` or `amqp`.
    pub source: String,
    /// `decided`, `duplicate`, `dead_lettered` or `retried`.
    pub result: String,
}

/// The buckets of `mmm_decision_latency_seconds` (SPEC §13: 0.05 … 2.0).
pub const DECISION_LATENCY_BUCKETS: [f64; 6] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0];

/// A metric listed in every scrape, with its `# HELP` and `# TYPE` lines, even before its
/// first sample: prometheus-client leaves a labelled family with no samples out, and then
/// an alert or dashboard querying it (deliveries given up, dead letters) cannot tell "none
/// yet" from "not exported", and `scripts/test-deploy.sh` cannot check its name.
#[derive(Debug, Clone)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// Every metric the host exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `mmm_http_requests_total{method, route, status}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `mmm_http_request_duration_seconds{method, route}`.
    pub request_duration: Family<RouteLabels, Histogram>,
    /// `mmm_playbook_set_revision`: the store revision the live set was built from.
    pub set_revision: Gauge,
    /// `mmm_playbook_set_reloads_total`.
    pub set_reloads: Counter,
    /// `mmm_playbook_set_reload_failures_total`.
    pub set_reload_failures: Counter,
    /// `mmm_playbook_versions_skipped_total`: published versions that did not compile
    /// when the set was built (left out, logged).
    pub versions_skipped: Counter,
    /// `mmm_decisions_total{tenant_id, actor_type, degraded_mode}`.
    pub decisions: Family<DecisionLabels, Counter>,
    /// `mmm_decision_latency_seconds{tenant_id}`.
    pub decision_latency: Family<TenantLabels, Histogram>,
    /// `mmm_decision_latency_warning_total`: decisions past their deadline.
    pub latency_warnings: Counter,
    /// `mmm_actions_total{tenant_id, action_type}`: actions returned.
    pub actions: Family<ActionLabels, Counter>,
    /// `mmm_outcomes_total{tenant_id, result}`.
    pub outcomes: Family<ResultLabels, Counter>,
    /// `mmm_eris_receipt_emission_total{tenant_id, result}`: receipts handed to ERIS by
    /// the forwarder (`forwarded`, `failed`, `refused`).
    pub eris: Family<ResultLabels, Counter>,
    /// `mmm_receipts_total{result}`: the engine's receipt events (`emitted`, `queued`,
    /// `delivered_from_outbox`, `retry_failed`, `dropped`, `refused`).
    pub receipts: Family<OnlyResult, Counter>,
    /// `mmm_circuit_state{name}`: 0 closed, 1 open, 2 half-open.
    pub circuit_state: Family<CircuitLabels, Gauge>,
    /// `mmm_delivery_attempts_total{channel, result}`.
    pub delivery_attempts: Family<DeliveryLabels, Counter>,
    /// `mmm_delivery_queue_depth`: webhook deliveries waiting (due, backing off or in
    /// flight), as the delivery worker last counted them.
    pub delivery_queue_depth: Gauge,
    /// `mmm_delivery_dead_total{channel}`: webhook deliveries given up.
    pub delivery_dead: Family<ChannelLabels, Counter>,
    /// `mmm_decision_surface_latency_seconds{surface}`: the §13 latency by the signal's
    /// surface hint (the IDE and CI latency alerts select on it).
    pub surface_latency: Family<SurfaceLabels, Histogram>,
    /// `mmm_cache_requests_total{cache, result}`.
    pub cache_requests: Family<CacheLabels, Counter>,
    /// `mmm_outbox_depth`: receipts waiting to reach ERIS (set at each scrape, see
    /// [`Metrics::scrape`]).
    pub outbox_depth: Gauge,
    /// Stored receipts the ERIS forwarder has yet to forward, as it last counted.
    eris_backlog: AtomicU64,
    /// The store cache's counts as last copied into `cache_requests`.
    store_cache_seen: Mutex<CacheCounts>,
    /// `mmm_intake_messages_total{source, result}`: broker messages by what became of
    /// them.
    pub intake_messages: Family<IntakeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "mmm_http_requests",
            "HTTP requests by method, route and status",
            Listed(requests.clone()),
        );
        let request_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
        });
        registry.register(
            "mmm_http_request_duration_seconds",
            "Time to answer HTTP requests",
            Listed(request_duration.clone()),
        );
        let set_revision = Gauge::default();
        registry.register(
            "mmm_playbook_set_revision",
            "The store revision the live playbook set was built from",
            Listed(set_revision.clone()),
        );
        let set_reloads = Counter::default();
        registry.register(
            "mmm_playbook_set_reloads",
            "Live playbook set rebuilds",
            Listed(set_reloads.clone()),
        );
        let set_reload_failures = Counter::default();
        registry.register(
            "mmm_playbook_set_reload_failures",
            "Live playbook set rebuilds that failed (the old set stayed)",
            Listed(set_reload_failures.clone()),
        );
        let versions_skipped = Counter::default();
        registry.register(
            "mmm_playbook_versions_skipped",
            "Published versions left out of the live set because they no longer compile",
            Listed(versions_skipped.clone()),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "mmm_decisions",
            "Decisions by tenant, actor type and degraded mode",
            Listed(decisions.clone()),
        );
        let decision_latency = Family::<TenantLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(DECISION_LATENCY_BUCKETS)
        });
        registry.register(
            "mmm_decision_latency_seconds",
            "Time the engine took to decide",
            Listed(decision_latency.clone()),
        );
        let latency_warnings = Counter::default();
        registry.register(
            "mmm_decision_latency_warning",
            "Decisions that ran past their deadline",
            Listed(latency_warnings.clone()),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "mmm_actions",
            "Actions returned, by tenant and type",
            Listed(actions.clone()),
        );
        let outcomes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mmm_outcomes",
            "Outcomes recorded, by tenant and result",
            Listed(outcomes.clone()),
        );
        let eris = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mmm_eris_receipt_emission",
            "Receipts handed to ERIS, by tenant and result",
            Listed(eris.clone()),
        );
        let receipts = Family::<OnlyResult, Counter>::default();
        registry.register(
            "mmm_receipts",
            "The engine's receipt events, by result",
            Listed(receipts.clone()),
        );
        let circuit_state = Family::<CircuitLabels, Gauge>::default();
        registry.register(
            "mmm_circuit_state",
            "Circuit breaker state per port: 0 closed, 1 open, 2 half-open",
            Listed(circuit_state.clone()),
        );
        for port in PortName::ALL {
            circuit_state
                .get_or_create(&CircuitLabels {
                    name: port.as_str().to_owned(),
                })
                .set(0);
        }
        let delivery_attempts = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "mmm_delivery_attempts",
            "Deliveries attempted, by channel and result",
            Listed(delivery_attempts.clone()),
        );
        let delivery_queue_depth = Gauge::default();
        registry.register(
            "mmm_delivery_queue_depth",
            "Webhook deliveries waiting: due, backing off or in flight",
            Listed(delivery_queue_depth.clone()),
        );
        let delivery_dead = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "mmm_delivery_dead",
            "Webhook deliveries given up (after the last attempt, or their webhook removed), by channel",
            Listed(delivery_dead.clone()),
        );
        for surface in mmm_engine::Surface::ALL {
            circuit_state
                .get_or_create(&CircuitLabels {
                    name: format!("delivery:{surface}"),
                })
                .set(0);
        }
        let surface_latency = Family::<SurfaceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(DECISION_LATENCY_BUCKETS)
        });
        registry.register(
            "mmm_decision_surface_latency_seconds",
            "Time the engine took to decide, by the signal's surface hint",
            Listed(surface_latency.clone()),
        );
        let cache_requests = Family::<CacheLabels, Counter>::default();
        registry.register(
            "mmm_cache_requests",
            "Cache look-ups by cache and result",
            Listed(cache_requests.clone()),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "mmm_outbox_depth",
            "Receipts waiting to reach ERIS (or, without an ERIS URL, to be stored)",
            Listed(outbox_depth.clone()),
        );
        let intake_messages = Family::<IntakeLabels, Counter>::default();
        registry.register(
            "mmm_intake_messages",
            "Broker messages taken in, by source and what became of them",
            Listed(intake_messages.clone()),
        );
        Metrics {
            surface_latency,
            cache_requests,
            outbox_depth,
            eris_backlog: AtomicU64::new(0),
            store_cache_seen: Mutex::new(CacheCounts::default()),
            registry,
            requests,
            request_duration,
            set_revision,
            set_reloads,
            set_reload_failures,
            versions_skipped,
            decisions,
            decision_latency,
            latency_warnings,
            actions,
            outcomes,
            eris,
            receipts,
            circuit_state,
            delivery_attempts,
            intake_messages,
            delivery_queue_depth,
            delivery_dead,
        }
    }

    /// Counts one webhook delivery attempt on `channel` (the surface).
    pub fn observe_delivery(&self, channel: &str, ok: bool) {
        self.delivery_attempts
            .get_or_create(&DeliveryLabels {
                channel: channel.to_owned(),
                result: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// Counts one webhook delivery given up.
    pub fn observe_delivery_dead(&self, channel: &str) {
        self.delivery_dead
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .inc();
    }

    /// Sets `mmm_delivery_queue_depth`.
    pub fn set_delivery_queue_depth(&self, depth: u64) {
        self.delivery_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Sets `mmm_circuit_state{name="delivery:<surface>"}` (0 closed, 1 open, 2 half-open).
    pub fn set_delivery_circuit(&self, surface: &str, state: mmm_engine::ports::BreakerState) {
        self.circuit_state
            .get_or_create(&CircuitLabels {
                name: format!("delivery:{surface}"),
            })
            .set(i64::from(state as u8));
    }

    /// The engine's observer feeding these metrics (`EngineBuilder::observer`).
    pub fn observer(self: &Arc<Self>) -> Arc<dyn Observer> {
        Arc::new(MetricsObserver(Arc::clone(self)))
    }

    /// Counts one recorded outcome. The engine's observer calls this for every outcome
    /// given to `Engine::record_outcome`; call it directly only for outcomes that do not
    /// go through the engine.
    pub fn observe_outcome(&self, tenant_id: &str, result: &str) {
        self.outcomes
            .get_or_create(&ResultLabels {
                tenant_id: tenant_id.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts one broker message (`source` `nats` or `amqp`; `result` `decided`,
    /// `duplicate`, `dead_lettered` or `retried`).
    pub fn observe_intake(&self, source: &str, result: &str) {
        self.intake_messages
            .get_or_create(&IntakeLabels {
                source: source.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts one hand-over to ERIS (`forwarded`, `failed` or `refused`).
    pub fn observe_eris(&self, tenant_id: &str, result: &str) {
        self.eris
            .get_or_create(&ResultLabels {
                tenant_id: tenant_id.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    fn observe_event(&self, event: &Event<'_>) {
        match event {
            Event::Decision {
                tenant_id,
                actor_type,
                degraded,
                latency,
                actions,
            } => {
                let degraded_mode = crate::telemetry::degraded_mode(degraded);
                self.decisions
                    .get_or_create(&DecisionLabels {
                        tenant_id: (*tenant_id).to_owned(),
                        actor_type: actor_type.as_str().to_owned(),
                        degraded_mode,
                    })
                    .inc();
                self.decision_latency
                    .get_or_create(&TenantLabels {
                        tenant_id: (*tenant_id).to_owned(),
                    })
                    .observe(latency.as_secs_f64());
                if degraded.contains(&mmm_engine::Degraded::DeadlineExceeded) {
                    self.latency_warnings.inc();
                }
                for (kind, n) in *actions {
                    self.actions
                        .get_or_create(&ActionLabels {
                            tenant_id: (*tenant_id).to_owned(),
                            action_type: kind.as_str().to_owned(),
                        })
                        .inc_by(u64::try_from(*n).unwrap_or(u64::MAX));
                }
            }
            Event::Receipt(r) => {
                let result = match r {
                    ReceiptEvent::Emitted => "emitted",
                    ReceiptEvent::Queued => "queued",
                    ReceiptEvent::DeliveredFromOutbox => "delivered_from_outbox",
                    ReceiptEvent::RetryFailed => "retry_failed",
                    ReceiptEvent::Dropped => "dropped",
                    ReceiptEvent::Refused => "refused",
                };
                self.receipts
                    .get_or_create(&OnlyResult {
                        result: result.to_owned(),
                    })
                    .inc();
            }
            Event::Breaker { port, to, .. } => {
                // 0 closed, 1 open, 2 half-open: the core's discriminants.
                let value = i64::from(*to as u8);
                self.circuit_state
                    .get_or_create(&CircuitLabels {
                        name: port.as_str().to_owned(),
                    })
                    .set(value);
            }
            Event::Delivery { surface, ok } => self.observe_delivery(surface.as_str(), *ok),
            // `Engine::record_outcome` (the outcomes route calls it once per new outcome).
            Event::Outcome {
                tenant_id, result, ..
            } => self.observe_outcome(tenant_id, result),
            Event::Cache { cache, hit } => {
                let cache = match cache {
                    Cache::Policy => "policy",
                    Cache::TenantConfig => "tenant_config",
                };
                self.observe_cache(cache, *hit);
            }
            // The stages of a decision, for its trace.
            Event::Span {
                name,
                start,
                duration,
            } => crate::telemetry::on_core_span(name, *start, *duration),
            _ => {}
        }
    }

    /// Records a decision's latency (the decision's `latency_us`) under its surface hint
    /// (`none` without one).
    pub fn observe_surface_latency(&self, surface: &str, latency_us: u64) {
        let seconds = Duration::from_micros(latency_us).as_secs_f64();
        self.surface_latency
            .get_or_create(&SurfaceLabels {
                surface: surface.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts one cache look-up.
    pub fn observe_cache(&self, cache: &str, hit: bool) {
        self.cache_requests
            .get_or_create(&CacheLabels {
                cache: cache.to_owned(),
                result: if hit { "hit" } else { "miss" }.to_owned(),
            })
            .inc();
    }

    /// Sets how many stored receipts the ERIS forwarder has yet to forward.
    pub fn set_eris_backlog(&self, n: u64) {
        self.eris_backlog.store(n, Ordering::Relaxed);
    }

    /// Adds what the store's cache answered since the last call to `cache_requests`
    /// (`preferences` and `policy`, the host's tenant-policy cache).
    pub fn sync_store_cache(&self, now: Option<CacheCounts>) {
        let Some(now) = now else {
            return;
        };
        let mut seen = self.store_cache_seen.lock();
        for (cache, hit, was, is) in [
            (
                "preferences",
                true,
                seen.preference_hits,
                now.preference_hits,
            ),
            (
                "preferences",
                false,
                seen.preference_misses,
                now.preference_misses,
            ),
            ("policy", true, seen.policy_hits, now.policy_hits),
            ("policy", false, seen.policy_misses, now.policy_misses),
        ] {
            if is > was {
                self.cache_requests
                    .get_or_create(&CacheLabels {
                        cache: cache.to_owned(),
                        result: if hit { "hit" } else { "miss" }.to_owned(),
                    })
                    .inc_by(is - was);
            }
        }
        *seen = now;
    }

    /// The exposition for `GET /metrics`: first the values read at scrape time — the
    /// store cache's counts and `mmm_outbox_depth` (receipts the forwarder has yet to
    /// forward, decisions not yet committed, and receipts in the engine's own outbox).
    pub fn scrape(&self, state: &crate::AppState) -> String {
        self.sync_store_cache(state.store.cache_counts());
        let depth = self
            .eris_backlog
            .load(Ordering::Relaxed)
            .saturating_add(u64::try_from(state.decisions.backlog()).unwrap_or(u64::MAX))
            .saturating_add(u64::try_from(state.live.engine().outbox_len()).unwrap_or(u64::MAX));
        self.outbox_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.render()
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The core's observer, feeding [`Metrics`].
#[derive(Debug)]
pub struct MetricsObserver(pub Arc<Metrics>);

impl Observer for MetricsObserver {
    fn on_event(&self, event: &Event<'_>) {
        self.0.observe_event(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Families whose every sample has labels that only traffic creates: before it, a
    /// scrape still names them (an alert on them is quiet, not broken).
    #[test]
    fn a_fresh_scrape_names_every_family_before_its_first_sample() {
        let text = Metrics::new().render();
        for family in [
            "mmm_decisions",
            "mmm_decision_latency_seconds",
            "mmm_actions",
            "mmm_outcomes",
            "mmm_eris_receipt_emission",
            "mmm_delivery_attempts",
            "mmm_delivery_dead",
            "mmm_intake_messages",
            "mmm_cache_requests",
            "mmm_decision_surface_latency_seconds",
            "mmm_http_requests",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("# TYPE {family} "))),
                "{family} is not listed in a fresh scrape:\n{text}"
            );
        }
    }
}
