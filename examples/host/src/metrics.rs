//! Prometheus metrics (`GET /v1/mmm/metrics`): a first set about requests and the live
//! playbook set. The decision metrics of SPEC §13 (`mmm_decisions_total`, …) join this
//! registry as fields of [`Metrics`], registered in [`Metrics::new`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
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
            requests.clone(),
        );
        let request_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
        });
        registry.register(
            "mmm_http_request_duration_seconds",
            "Time to answer HTTP requests",
            request_duration.clone(),
        );
        let set_revision = Gauge::default();
        registry.register(
            "mmm_playbook_set_revision",
            "The store revision the live playbook set was built from",
            set_revision.clone(),
        );
        let set_reloads = Counter::default();
        registry.register(
            "mmm_playbook_set_reloads",
            "Live playbook set rebuilds",
            set_reloads.clone(),
        );
        let set_reload_failures = Counter::default();
        registry.register(
            "mmm_playbook_set_reload_failures",
            "Live playbook set rebuilds that failed (the old set stayed)",
            set_reload_failures.clone(),
        );
        let versions_skipped = Counter::default();
        registry.register(
            "mmm_playbook_versions_skipped",
            "Published versions left out of the live set because they no longer compile",
            versions_skipped.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            set_revision,
            set_reloads,
            set_reload_failures,
            versions_skipped,
        }
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
