//! `mmm-host`: the reference HTTP host of mmm-engine (SPEC §13).
//!
//! [`app`] builds the whole service from an [`AppState`], apart from `main`, so tests
//! drive it with `tower::ServiceExt::oneshot` and no socket. The state holds the store
//! (SQLite or PostgreSQL behind [`store::Store`]), the live playbook set ([`live::Live`],
//! which owns the engine), the token verifier, the metrics and the shutdown hooks.

#![deny(missing_docs)]

pub mod auth;
pub mod config;
pub mod console;
pub mod delivery;
pub mod engine_setup;
pub mod error;
pub mod fatigue;
pub mod forwarder;
pub mod intake;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod plugins;
pub mod ports;
pub mod receipts;
pub mod routes;
pub mod shutdown;
pub mod store;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use mmm_engine::Clock;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Verifier;
use crate::error::{problem_for_status, PROBLEM_JSON, REQUEST_ID};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The request-id header, taken from the request when present, else made up, and
/// returned on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Limits and knobs the routes read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body, in bytes (larger: 413).
    pub body_limit: usize,
    /// A request taking longer is abandoned with 503.
    pub request_timeout: Duration,
    /// Most signals one simulate request may replay.
    pub simulate_max_signals: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            simulate_max_signals: 10_000,
        }
    }
}

/// Everything the routes share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Where everything is kept.
    pub store: Arc<dyn Store>,
    /// The engine and its live playbook set.
    pub live: Arc<Live>,
    /// Verifies bearer tokens.
    pub verifier: Arc<Verifier>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Where `now` comes from for records (the engine has its own, the same by default).
    pub clock: Arc<dyn Clock>,
    /// Limits.
    pub settings: Arc<Settings>,
    /// Work to finish when the host stops.
    pub shutdown: Arc<Shutdown>,
    /// Where decisions' receipts, actions, approvals and counters are group-committed.
    pub decisions: Arc<receipts::DecisionLog>,
    /// The engine's fatigue store, when the host chose it (`/ready` checks Redis).
    pub fatigue: Option<fatigue::HostFatigue>,
    /// Rung after a decision queued webhook deliveries: wakes the delivery worker
    /// ([`delivery::worker::spawn`]) instead of waiting for its next poll.
    pub delivery_wake: Arc<tokio::sync::Notify>,
    /// The console's settings (its cookie key, public URL, OpenID Connect provider).
    pub console: console::Shared,
}

impl AppState {
    /// A state over `store` with a fresh engine (no ports yet) whose set is not loaded:
    /// call `state.live.reload(&*state.store)` before serving.
    pub fn new(store: Arc<dyn Store>, verifier: Verifier, settings: Settings) -> Self {
        let engine = mmm_engine::Engine::builder()
            .audit(Arc::new(live::LogAudit))
            .build();
        AppState::with_engine(store, verifier, settings, engine)
    }

    /// As [`AppState::new`], with an engine built by the caller (its ports, fatigue store,
    /// receipts signer and outbox); the live set replaces whatever playbooks it holds.
    pub fn with_engine(
        store: Arc<dyn Store>,
        verifier: Verifier,
        settings: Settings,
        engine: mmm_engine::Engine,
    ) -> Self {
        AppState::with_engine_and_metrics(
            store,
            verifier,
            settings,
            engine,
            Arc::new(Metrics::new()),
        )
    }

    /// As [`AppState::with_engine`], with the metrics the engine's observer feeds
    /// (`metrics.observer()` given to `EngineBuilder::observer`).
    pub fn with_engine_and_metrics(
        store: Arc<dyn Store>,
        verifier: Verifier,
        settings: Settings,
        engine: mmm_engine::Engine,
        metrics: Arc<Metrics>,
    ) -> Self {
        let decisions =
            receipts::DecisionLog::start(Arc::clone(&store), None, Duration::from_millis(2));
        AppState {
            decisions,
            store,
            live: Arc::new(Live::new(engine, Arc::clone(&metrics))),
            verifier: Arc::new(verifier),
            metrics,
            clock: Arc::new(mmm_engine::SystemClock),
            settings: Arc::new(settings),
            shutdown: Arc::new(Shutdown::new()),
            fatigue: None,
            delivery_wake: Arc::new(tokio::sync::Notify::new()),
            console: Arc::new(console::ConsoleConfig::default()),
        }
    }

    /// The same state with the console's settings.
    #[must_use]
    pub fn with_console(mut self, console: console::ConsoleConfig) -> Self {
        self.console = Arc::new(console);
        self
    }

    /// The same state, knowing the engine's fatigue store (for `/ready`). When it is the
    /// in-memory authority ([`fatigue::MemoryFatigue`]), the decision log is restarted
    /// (same chain and linger) to write its firings: call it before serving.
    #[must_use]
    pub fn with_fatigue(mut self, fatigue: fatigue::HostFatigue) -> Self {
        let journal = fatigue.journal();
        self.fatigue = Some(fatigue);
        if journal.is_some() {
            self.decisions = receipts::DecisionLog::start_with_journal(
                Arc::clone(&self.store),
                self.decisions.chain().cloned(),
                self.decisions.linger(),
                journal,
            );
        }
        self
    }
}

impl AppState {
    /// The same state with its decision log on the receipt chain the engine signs
    /// (`chain` from [`engine_setup::build`]), batches lingering `linger` for more
    /// decisions. Call it before serving: the previous log must hold nothing.
    #[must_use]
    pub fn with_chain(mut self, chain: Option<receipts::Chain>, linger: Duration) -> Self {
        let journal = self
            .fatigue
            .as_ref()
            .and_then(fatigue::HostFatigue::journal);
        self.decisions = receipts::DecisionLog::start_with_journal(
            Arc::clone(&self.store),
            chain,
            linger,
            journal,
        );
        self
    }
}

/// The whole service: every route under `/v1/mmm`, with request ids, tracing, metrics,
/// the body limit, the request time-out and compression, and problem details for every
/// error any layer produces.
pub fn app(state: AppState) -> Router {
    let (router, _) = openapi::split(routes::router());
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let settings = Arc::clone(&state.settings);
    router
        .merge(console::router())
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/ui/") {
                console::PageError::NotFound("there is no such console page".to_owned())
                    .into_response()
            } else {
                problem_for_status(StatusCode::NOT_FOUND).into_response()
            }
        })
        .layer(middleware::from_fn(routes::query::refuse_undocumented))
        .layer(axum::extract::DefaultBodyLimit::max(settings.body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(TraceLayer::new_for_http().make_span_with(
                    |req: &Request| {
                        let id = req
                            .headers()
                            .get(REQUEST_ID_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id, trace_id = tracing::field::Empty)
                    },
                ))
                .layer(middleware::from_fn(problem_details))
                .layer(CompressionLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    settings.request_timeout,
                ))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(settings.body_limit)),
        )
}

/// Counts requests by route and status, makes the request id available to error
/// bodies, and the request's `traceparent` the parent of its decisions' traces.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // The caller's W3C trace context: the parent of the decisions this request makes,
    // and the trace id of its log lines.
    let parent = telemetry::parent_from_headers(req.headers());
    if let Some(trace_id) = telemetry::request_trace_id(&parent) {
        tracing::Span::current().record("trace_id", trace_id.as_str());
    }
    let started = std::time::Instant::now();
    let response = REQUEST_ID
        .scope(id, telemetry::with_parent(parent, next.run(req)))
        .await;
    state.metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Replaces any error response that is not problem details already (an unknown route, a
/// wrong method, a body over the limit, a time-out) with problem details.
async fn problem_details(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    // The console's pages answer errors as pages, for people.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if status.as_u16() < 400 || is_problem || is_page {
        return response;
    }
    let mut replaced = REQUEST_ID
        .scope(
            id,
            async move { problem_for_status(status).into_response() },
        )
        .await;
    if let Some(allow) = response.headers().get(header::ALLOW) {
        replaced.headers_mut().insert(header::ALLOW, allow.clone());
    }
    if let Ok(v) = HeaderValue::from_str(PROBLEM_JSON) {
        replaced.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    replaced
}
