//! Traces and logs (SPEC §13 "Metrics and traces").
//!
//! **Traces.** With an OTLP endpoint (`--otlp-endpoint` / `OTLP_EXPORTER_ENDPOINT`, or the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT`) the host exports spans over OTLP/HTTP protobuf
//! (`{endpoint}/v1/traces`), service name `mmm-host`. Each decision is one trace root
//! `mmm.decide` (a child of the caller's W3C `traceparent` when the request or broker
//! message carried one) with the core's stages as children — `context.build`,
//! `playbook.evaluate`, `policy.gate`, `eris.receipt` (and `delivery.route` when the
//! engine has a delivery port) — built from the core's
//! [`Event::Span`](mmm_engine::observe::Event::Span) offsets with explicit start and end
//! times. `delivery.route` for the host's own deliveries is [`delivery_span`]. Without an
//! endpoint there is no exporter, no OpenTelemetry layer, and a decision collects no
//! stage spans: the only cost is one look-up of the current subscriber per decision.
//!
//! Only spans with the target [`TARGET`] are exported (the HTTP request span is not: the
//! decision is the root the caller's trace links to).
//!
//! **Logs.** [`JsonLogLayer`] writes one JSON object per line: `timestamp`, `level`,
//! `service`, `target`, `message`, then the fields of the event's spans from the root
//! down (`request_id`, `tenant_id`, `actor_id`, `decision_id`, `trace_id`, …) and the
//! event's own fields, flattened; a later field of the same name replaces an earlier one,
//! so every key appears once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The target of the spans the host exports.
pub const TARGET: &str = "mmm_host::trace";

/// The service name of traces and logs.
pub const SERVICE: &str = "mmm-host";

/// The OTLP path for traces, appended to a base endpoint.
const TRACES_PATH: &str = "/v1/traces";

/// The longest response body read from the collector (it answers a small protobuf).
const MAX_RESPONSE: usize = 64 * 1024;

/// The most core stages collected for one decision (the core reports six).
const MAX_CORE_SPANS: usize = 16;

/// The OTLP traces URL: `flag` (`--otlp-endpoint`, env `OTLP_EXPORTER_ENDPOINT`), else
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the traces URL, used as it is), else
/// `OTEL_EXPORTER_OTLP_ENDPOINT`. `flag` and `OTEL_EXPORTER_OTLP_ENDPOINT` are base URLs to
/// which `/v1/traces` is appended (unless they end with it already). `None` when none is
/// set (or all are empty): no traces.
pub fn otlp_traces_url(flag: Option<&str>) -> Option<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|s| !s.trim().is_empty());
    traces_url_from(
        flag,
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").as_deref(),
        env("OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
    )
}

/// A value that is set: trimmed, not empty.
fn set(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// [`otlp_traces_url`] from given values.
fn traces_url_from(flag: Option<&str>, traces: Option<&str>, base: Option<&str>) -> Option<String> {
    if let (None, Some(url)) = (set(flag), set(traces)) {
        return Some(url.to_owned());
    }
    let base = set(flag).or(set(base))?.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        Some(base.to_owned())
    } else {
        Some(format!("{base}{TRACES_PATH}"))
    }
}

/// A tracer provider exporting to `traces_url` (OTLP/HTTP protobuf) in batches (a
/// bounded queue: spans past it are dropped, never held), its requests sent by `reqwest`
/// on `runtime`.
///
/// # Errors
/// A message naming the endpoint when it is not an `http(s)://` URL.
pub fn provider(
    traces_url: &str,
    runtime: tokio::runtime::Handle,
) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let url = reqwest::Url::parse(traces_url)
        .map_err(|e| format!("the OTLP endpoint `{traces_url}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "the OTLP endpoint `{traces_url}` is not an http:// or https:// URL"
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("OTLP: cannot build an HTTP client: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .with_timeout(Duration::from_secs(10))
        .with_http_client(OtlpClient { client, runtime })
        .build()
        .map_err(|e| format!("OTLP: cannot build the exporter for `{traces_url}`: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(SERVICE)
                .build(),
        )
        .with_batch_exporter(exporter)
        .build())
}

/// Sends the exporter's requests with the host's `reqwest` client on the host's runtime
/// (the batch processor runs on a thread of its own, outside the runtime).
#[derive(Debug)]
struct OtlpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let mut response = client.execute(request).await?;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            let mut out = http::Response::new(bytes::Bytes::from(body));
            *out.status_mut() = response.status();
            *out.headers_mut() = std::mem::take(response.headers_mut());
            Ok::<_, reqwest::Error>(out)
        });
        Ok(sent.await??)
    }
}

/// Marks a subscriber that exports traces, and holds the tracer the host builds spans
/// with explicit times from (the core's stages). Add it beside the OpenTelemetry layer.
#[derive(Debug, Clone)]
pub struct TracerLayer(pub SdkTracer);

impl<S: Subscriber> Layer<S> for TracerLayer {}

/// The layers that export traces through `provider`: the OpenTelemetry layer (spans of
/// [`TARGET`] only) and the [`TracerLayer`].
pub fn trace_layers<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let tracer = provider.tracer(SERVICE);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target() == TARGET
        }));
    otel.and_then(TracerLayer(tracer))
}

/// The tracer of the current subscriber, when it exports traces.
pub fn tracer() -> Option<SdkTracer> {
    tracing::dispatcher::get_default(|d| d.downcast_ref::<TracerLayer>().map(|t| t.0.clone()))
}

// ---------------------------------------------------------------------------------------
// W3C trace context

/// The parent context a W3C `traceparent` (and `tracestate`) names; the empty context when
/// absent or malformed (the decision then starts a trace of its own). For broker headers.
pub fn parent_from_traceparent(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    let Some(traceparent) = traceparent else {
        return Context::new();
    };
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_owned(), state.to_owned());
    }
    TraceContextPropagator::new().extract(&carrier)
}

/// The parent context of an HTTP request's `traceparent` / `tracestate` headers.
pub fn parent_from_headers(headers: &http::HeaderMap) -> Context {
    if !headers.contains_key("traceparent") {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers))
}

/// The W3C `traceparent` of a context's span, to store with work that runs later (a
/// queued delivery) or to send on; `None` when the context holds no valid span.
pub fn traceparent_of(cx: &Context) -> Option<String> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The `traceparent` of the current span (the decision being made), when traces are on.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current().context())
}

/// The trace id of a context, when it holds a valid span.
fn trace_id_of(cx: &Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

tokio::task_local! {
    static PARENT: Context;
}

/// Runs `fut` with `parent` as the parent of the decisions it makes (the HTTP middleware
/// does this with the request's `traceparent`; a broker intake with the message's, from
/// [`parent_from_traceparent`]).
pub async fn with_parent<F: Future>(parent: Context, fut: F) -> F::Output {
    PARENT.scope(parent, fut).await
}

/// The parent set by [`with_parent`] for this task, when it holds a valid span.
fn current_parent() -> Option<Context> {
    PARENT
        .try_with(|cx| cx.span().span_context().is_valid().then(|| cx.clone()))
        .ok()
        .flatten()
}

/// The trace id the request's `traceparent` carried, for its log lines.
pub fn request_trace_id(parent: &Context) -> Option<String> {
    trace_id_of(parent)
}

// ---------------------------------------------------------------------------------------
// Spans

/// A tenant or actor id fit for a span and a log line: ids only, at most 256 characters
/// and no control character (else not recorded).
fn id_field(id: Option<&str>) -> Option<&str> {
    id.filter(|s| s.len() <= 256 && !s.chars().any(char::is_control))
}

/// The root span of one decision, `mmm.decide`, parented to the task's [`with_parent`]
/// context when there is one; its `trace_id` field is the trace it belongs to (for log
/// lines). Record the rest with [`record_decision`].
pub fn decide_span(tenant_id: Option<&str>, actor_id: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        target: TARGET,
        "mmm.decide",
        otel.kind = "internal",
        tenant_id = id_field(tenant_id),
        actor_id = id_field(actor_id),
        trace_id = tracing::field::Empty,
        decision_id = tracing::field::Empty,
        signal_id = tracing::field::Empty,
        actor_type = tracing::field::Empty,
        signal.kind = tracing::field::Empty,
        signal.surface = tracing::field::Empty,
        degraded_mode = tracing::field::Empty,
        actions.count = tracing::field::Empty,
        suppressed.count = tracing::field::Empty,
        receipt.status = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = current_parent();
    if let Some(parent) = &parent {
        // Fails only without an OpenTelemetry layer (no traces): then the trace id is the
        // caller's, for the logs.
        let _ = span.set_parent(parent.clone());
    }
    let trace_id = if tracer().is_some() {
        trace_id_of(&span.context())
    } else {
        parent.as_ref().and_then(trace_id_of)
    };
    if let Some(id) = trace_id {
        span.record("trace_id", id.as_str());
    }
    span
}

/// Records what a decision was on its span: ids, counts and enumerations, never a
/// payload value.
pub fn record_decision(
    span: &tracing::Span,
    decision: &mmm_engine::Decision,
    signal: &SignalShape,
) {
    span.record("decision_id", decision.decision_id.as_str());
    span.record("signal_id", decision.signal_id.as_str());
    if let Some(t) = &signal.actor_type {
        span.record("actor_type", t.as_str());
    }
    if let Some(k) = &signal.kind {
        span.record("signal.kind", k.as_str());
    }
    span.record("signal.surface", signal.surface());
    span.record("degraded_mode", degraded_mode(&decision.degraded).as_str());
    span.record("actions.count", decision.actions.len() as u64);
    span.record("suppressed.count", decision.suppressed.len() as u64);
    span.record("receipt.status", decision.receipt.status.as_str());
}

/// `none`, or the degraded codes joined by `,` in the decision's order (as the metric's
/// label).
pub fn degraded_mode(degraded: &[mmm_engine::Degraded]) -> String {
    if degraded.is_empty() {
        "none".to_owned()
    } else {
        degraded
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The few signal fields a decision's span and metrics name: read before the decision,
/// trusted only once the engine has validated the signal (after a decision).
#[derive(Debug, Clone, Default)]
pub struct SignalShape {
    /// `actor_type`.
    pub actor_type: Option<String>,
    /// `kind`.
    pub kind: Option<String>,
    /// `surface`, when one of the core's surfaces.
    pub surface: Option<mmm_engine::Surface>,
}

impl SignalShape {
    /// Reads them from the signal (short strings only).
    pub fn of(signal: &Value) -> SignalShape {
        let text = |key: &str| {
            signal
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| s.len() <= 128 && !s.chars().any(char::is_control))
                .map(str::to_owned)
        };
        SignalShape {
            actor_type: text("actor_type"),
            kind: text("kind"),
            surface: signal
                .get("surface")
                .and_then(Value::as_str)
                .and_then(mmm_engine::Surface::parse),
        }
    }

    /// The surface hint, or `none`.
    pub fn surface(&self) -> &'static str {
        self.surface.map_or("none", mmm_engine::Surface::as_str)
    }
}

/// One stage of a decision as the core reported it.
#[derive(Debug, Clone, Copy)]
pub struct CoreSpan {
    /// One of `mmm_engine::observe::spans`.
    pub name: &'static str,
    /// Offset from the decision's start.
    pub start: Duration,
    /// How long it took.
    pub duration: Duration,
}

thread_local! {
    static COLLECTED: RefCell<Option<Vec<CoreSpan>>> = const { RefCell::new(None) };
}

/// Called by the engine's observer for each `Event::Span` (on the deciding thread): kept
/// only while [`collect_core_spans`] runs on this thread. The whole decision
/// (`mmm.decide`) is the host's own span and is not collected.
pub fn on_core_span(name: &'static str, start: Duration, duration: Duration) {
    if name == mmm_engine::observe::spans::DECIDE {
        return;
    }
    COLLECTED.with(|c| {
        if let Some(v) = c.borrow_mut().as_mut() {
            if v.len() < MAX_CORE_SPANS {
                v.push(CoreSpan {
                    name,
                    start,
                    duration,
                });
            }
        }
    });
}

/// Runs `f` (the engine deciding, on this thread) collecting the core's stage spans when
/// `on`; returns `f`'s result, the wall time `f` started and the stages.
pub fn collect_core_spans<T>(on: bool, f: impl FnOnce() -> T) -> (T, SystemTime, Vec<CoreSpan>) {
    if !on {
        return (f(), SystemTime::UNIX_EPOCH, Vec::new());
    }
    COLLECTED.with(|c| *c.borrow_mut() = Some(Vec::with_capacity(6)));
    let started = SystemTime::now();
    let out = f();
    let spans = COLLECTED
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    (out, started, spans)
}

/// Exports the core's stages as children of `parent` (the `mmm.decide` span's context),
/// each with its start and end time.
pub fn export_core_spans(
    tracer: &SdkTracer,
    parent: &Context,
    started: SystemTime,
    spans: &[CoreSpan],
) {
    for s in spans {
        let start = started + s.start;
        let mut span = tracer
            .span_builder(s.name)
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .start_with_context(tracer, parent);
        span.end_with_timestamp(start + s.duration);
    }
}

/// The span of one delivery of an action (`delivery.route`), for the host's delivery
/// worker: a child of `traceparent` (the decision's, stored with the queued delivery —
/// [`current_traceparent`] while deciding) when given and valid, else of the current span.
/// Enter it (or `instrument` the delivery with it) around the attempt; record
/// `delivery.result` (`ok`, `failed`) and `http.status` on it when known.
pub fn delivery_span(
    action_id: &str,
    surface: &str,
    tenant_id: &str,
    traceparent: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: TARGET,
        "delivery.route",
        otel.kind = "client",
        action_id = id_field(Some(action_id)),
        surface = id_field(Some(surface)),
        tenant_id = id_field(Some(tenant_id)),
        trace_id = tracing::field::Empty,
        delivery.result = tracing::field::Empty,
        http.status = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = parent_from_traceparent(traceparent, None);
    let has_parent = parent.span().span_context().is_valid();
    if has_parent {
        let _ = span.set_parent(parent.clone());
    }
    let trace_id = if tracer().is_some() {
        trace_id_of(&span.context())
    } else if has_parent {
        trace_id_of(&parent)
    } else {
        None
    };
    if let Some(id) = trace_id {
        span.record("trace_id", id.as_str());
    }
    span
}

// ---------------------------------------------------------------------------------------
// JSON logs

/// Writes each event as one JSON object on a line (see the module's documentation).
#[derive(Debug)]
pub struct JsonLogLayer<W> {
    make_writer: W,
}

impl<W> JsonLogLayer<W> {
    /// Lines go to `make_writer` (stderr in the binary, a buffer in tests).
    pub fn new(make_writer: W) -> Self {
        JsonLogLayer { make_writer }
    }
}

/// A span's fields, kept in its extensions.
#[derive(Debug, Default)]
struct SpanFields(Vec<(&'static str, Value)>);

/// Sets `key` to `value`, replacing an earlier value of the same key.
fn put(fields: &mut Vec<(&'static str, Value)>, key: &'static str, value: Value) {
    match fields.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => fields.push((key, value)),
    }
}

/// Fields the log line sets itself: span or event fields of these names are not copied.
const RESERVED: &[&str] = &["timestamp", "level", "service", "target"];

/// Fields that only steer the OpenTelemetry span (`otel.*`), and the `log` crate's
/// record metadata (`log.target`, `log.file`, …) that `tracing-log` adds to the events it
/// forwards: the line's `target` says where it came from.
fn is_steering(name: &str) -> bool {
    name.starts_with("otel.") || name.starts_with("log.")
}

struct Visitor<'a>(&'a mut Vec<(&'static str, Value)>);

impl Visitor<'_> {
    fn set(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if RESERVED.contains(&name) || is_steering(name) {
            return;
        }
        put(self.0, name, value);
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, Value::from(format!("{value:?}")));
    }
}

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = SpanFields::default();
        attrs.record(&mut Visitor(&mut fields.0));
        span.extensions_mut().insert(fields);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: LayerContext<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut Visitor(&mut fields.0));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let meta = event.metadata();
        let mut fields: Vec<(&'static str, Value)> = Vec::with_capacity(16);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &f.0 {
                        put(&mut fields, k, v.clone());
                    }
                }
            }
        }
        event.record(&mut Visitor(&mut fields));
        let mut line = serde_json::Map::new();
        line.insert(
            "timestamp".to_owned(),
            Value::from(jiff::Timestamp::now().to_string()),
        );
        line.insert("level".to_owned(), Value::from(meta.level().as_str()));
        line.insert("service".to_owned(), Value::from(SERVICE));
        line.insert("target".to_owned(), Value::from(meta.target()));
        for (k, v) in fields {
            line.insert(k.to_owned(), v);
        }
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(b) => b,
            Err(_) => return,
        };
        bytes.push(b'\n');
        // A log line that cannot be written is dropped: logging never fails a request.
        let _ = self.make_writer.make_writer_for(meta).write_all(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_prefers_the_flag_then_the_traces_variable_then_the_base() {
        let c = "http://c:4318";
        assert_eq!(traces_url_from(None, None, None), None);
        assert_eq!(traces_url_from(Some(" "), Some(""), None), None);
        assert_eq!(
            traces_url_from(Some("http://flag:4318/"), Some("http://t/x"), Some(c)).as_deref(),
            Some("http://flag:4318/v1/traces")
        );
        assert_eq!(
            traces_url_from(None, Some("http://t/x"), Some(c)).as_deref(),
            Some("http://t/x")
        );
        assert_eq!(
            traces_url_from(None, None, Some("http://c:4318/v1/traces")).as_deref(),
            Some("http://c:4318/v1/traces")
        );
        assert_eq!(
            traces_url_from(None, None, Some(c)).as_deref(),
            Some("http://c:4318/v1/traces")
        );
    }
}
