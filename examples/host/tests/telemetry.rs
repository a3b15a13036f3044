//! Traces over OTLP and JSON logs: a real decision's spans reach a local OTLP receiver
//! (protobuf over HTTP) under the caller's `traceparent`, with the core's stages as
//! children; the log lines carry the ids and the trace id, never a payload value.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use mmm_host::metrics::Metrics;
use mmm_host::telemetry::{self, JsonLogLayer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::common::{sqlite, Host};

const PLAYBOOK: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: traced, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  actions:
    - type: mirror
      surfaces: [ide]
      title: Opened
      text: "Opened {{ signal.payload.title }}."
"#;

/// Never in a log line or a span: it is a payload value.
const MARKER: &str = "PAYLOAD-MARKER-7f3a9c";

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A received span with its service name.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

async fn traces(State(c): State<Collector>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut spans = c.spans.lock().unwrap();
    for rs in request.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(Any::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                spans.push(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
    StatusCode::OK
}

/// A local OTLP receiver: its base URL and what it received.
async fn receiver() -> (String, Collector) {
    let collector = Collector::default();
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(collector.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), collector)
}

/// A writer into a shared buffer, for the log layer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Every line, each one JSON object.
    fn lines(&self) -> Vec<serde_json::Map<String, Value>> {
        self.text()
            .lines()
            .map(|l| match serde_json::from_str(l) {
                Ok(Value::Object(map)) => map,
                other => panic!("not a JSON object ({other:?}): {l}"),
            })
            .collect()
    }
}

fn log_layer<S>(buffer: &Buffer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let buffer = buffer.clone();
    JsonLogLayer::new(move || buffer.clone()).with_filter(
        tracing_subscriber::filter::Targets::new().with_target("mmm_host", tracing::Level::DEBUG),
    )
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_text(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        other => panic!("attribute `{key}` of `{}`: {other:?}", span.name),
    }
}

/// A delivery port that takes everything.
struct Takes;

impl mmm_engine::ports::Delivery for Takes {
    fn deliver(
        &self,
        _action: &mmm_engine::Action,
        _surface: mmm_engine::Surface,
        _rendered: &str,
    ) -> Result<(), mmm_engine::PortError> {
        Ok(())
    }
}

async fn observed_host() -> Host {
    Host::observed(
        sqlite().await,
        "traces",
        PLAYBOOK,
        Arc::new(Metrics::new()),
        |b| b.delivery(Arc::new(Takes)),
    )
    .await
}

fn decide_request(host: &Host, traceparent: Option<&str>) -> Request<Body> {
    let token = host.token("acme", &["service"], "svc@acme");
    let signal = json!({"tenant_id": "acme", "actor_id": "dev-1", "actor_type": "human",
                        "kind": "pr.opened", "surface": "ide",
                        "occurred_at": jiff::Timestamp::now().to_string(),
                        "payload": {"title": MARKER}});
    let mut req = Request::post("/v1/mmm/decide")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    req.body(Body::from(json!({ "signal": signal }).to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_is_a_trace_under_the_callers_traceparent_with_the_core_stages() {
    // Alone with respect to the delivery workers of other tests (see `common::TRACES`).
    let _traces = crate::common::TRACES.write().await;
    let (url, collector) = receiver().await;
    let provider = telemetry::provider(
        &telemetry::otlp_traces_url(Some(&url)).unwrap(),
        tokio::runtime::Handle::current(),
    )
    .unwrap();
    let logs = Buffer::default();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(log_layer(&logs))
            .with(telemetry::trace_layers(&provider)),
    );
    let host = observed_host().await;
    // A webhook for the IDE: the decision queues a delivery carrying its trace context.
    host.db
        .store
        .put_delivery_targets(
            "acme",
            &[mmm_host::store::DeliveryTarget {
                surface: "ide".to_owned(),
                url: "https://hooks.example/ide".to_owned(),
                secret: "s".to_owned(),
            }],
            &crate::common::audit("acme", "delivery_targets.updated"),
        )
        .await
        .unwrap();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let reply = host
        .send(decide_request(&host, Some(&traceparent)))
        .with_subscriber(dispatch.clone())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let decision = reply.json();
    let decision_id = decision["decision_id"].as_str().unwrap();
    assert_eq!(decision["actions"].as_array().unwrap().len(), 1);
    // The queued delivery's parent is the decision's span, in the caller's trace.
    let queued = host
        .db
        .store
        .list_deliveries("acme", None, 10)
        .await
        .unwrap();
    let queued = queued
        .iter()
        .find(|d| d.decision_id == decision_id)
        .expect("a delivery queued with the decision");
    let stored_parent = queued.traceparent.as_deref().expect("a traceparent");
    assert!(
        stored_parent.starts_with(&format!("00-{TRACE_ID}-")) && !stored_parent.contains(PARENT_ID),
        "{stored_parent}"
    );

    // A signal the engine refuses: its span says so.
    let token = host.token("acme", &["service"], "svc@acme");
    let bad = Request::post("/v1/mmm/decide")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            "traceparent",
            format!("00-{TRACE_ID}-{}-01", "0badc0de0badc0de"),
        )
        .body(Body::from(
            json!({"signal": {"tenant_id": "acme", "actor_id": "dev-1"}}).to_string(),
        ))
        .unwrap();
    let reply = host.send(bad).with_subscriber(dispatch.clone()).await;
    assert_eq!(reply.status, 422, "{}", reply.text);

    // A caller that does not sample: nothing exported under it.
    let unsampled = format!("00-{TRACE_ID}-{}-00", "5eed5eed5eed5eed");
    let reply = host
        .send(decide_request(&host, Some(&unsampled)))
        .with_subscriber(dispatch.clone())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // The host's delivery of an action later: a child of the stored traceparent.
    let stored = format!("00-{TRACE_ID}-{}-01", "a1b2c3d4e5f60718");
    tracing::dispatcher::with_default(&dispatch, || {
        let span = telemetry::delivery_span("act-1", "ide", "acme", Some(&stored));
        span.record("delivery.result", "ok");
        span.record("http.status", 200);
        // Inside it, the traceparent to pass on names this span, in the same trace.
        let _entered = span.enter();
        let passed_on = telemetry::current_traceparent().unwrap();
        assert!(
            passed_on.starts_with(&format!("00-{TRACE_ID}-")),
            "{passed_on}"
        );
        assert!(!passed_on.contains("a1b2c3d4e5f60718"), "{passed_on}");
    });

    let flush = tokio::task::spawn_blocking(move || provider.force_flush());
    flush.await.unwrap().unwrap();
    let spans = collector.spans.lock().unwrap().clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();

    assert!(
        spans
            .iter()
            .all(|r| hex(&r.span.parent_span_id) != "5eed5eed5eed5eed"),
        "an unsampled caller's decision was exported"
    );
    let refused = spans
        .iter()
        .find(|r| r.span.name == "mmm.decide" && hex(&r.span.parent_span_id) == "0badc0de0badc0de")
        .expect("the refused decision's span");
    // STATUS_CODE_ERROR.
    assert_eq!(refused.span.status.as_ref().map(|s| s.code), Some(2));
    let root = spans
        .iter()
        .find(|r| r.span.name == "mmm.decide" && hex(&r.span.parent_span_id) == PARENT_ID)
        .expect("the decision's span");
    assert_eq!(root.service, "mmm-host");
    assert_eq!(hex(&root.span.trace_id), TRACE_ID);
    assert_eq!(hex(&root.span.parent_span_id), PARENT_ID);
    for (key, want) in [
        ("tenant_id", "acme"),
        ("actor_id", "dev-1"),
        ("actor_type", "human"),
        ("decision_id", decision_id),
        ("signal.kind", "pr.opened"),
        ("signal.surface", "ide"),
        ("actions.count", "1"),
        ("suppressed.count", "0"),
        ("receipt.status", "emitted"),
    ] {
        assert_eq!(attr_text(&root.span, key), want, "attribute `{key}`");
    }
    let degraded = attr_text(&root.span, "degraded_mode");
    assert!(!degraded.is_empty());
    for stage in [
        "context.build",
        "playbook.evaluate",
        "policy.gate",
        "eris.receipt",
        // The engine's own delivery port (a core stage).
        "delivery.route",
    ] {
        let child = spans
            .iter()
            .find(|r| r.span.name == stage && r.span.parent_span_id == root.span.span_id)
            .unwrap_or_else(|| panic!("no `{stage}` under mmm.decide"));
        assert_eq!(child.service, "mmm-host");
        assert_eq!(child.span.trace_id, root.span.trace_id, "{stage}");
        assert_eq!(child.span.parent_span_id, root.span.span_id, "{stage}");
        assert!(
            child.span.start_time_unix_nano >= root.span.start_time_unix_nano
                && child.span.end_time_unix_nano <= root.span.end_time_unix_nano
                && child.span.start_time_unix_nano <= child.span.end_time_unix_nano,
            "{stage} lies within mmm.decide"
        );
    }
    let delivery = spans
        .iter()
        .find(|r| r.span.name == "delivery.route" && r.span.parent_span_id != root.span.span_id)
        .expect("the host's delivery span");
    assert_eq!(hex(&delivery.span.trace_id), TRACE_ID);
    assert_eq!(hex(&delivery.span.parent_span_id), "a1b2c3d4e5f60718");
    for (key, want) in [
        ("action_id", "act-1"),
        ("surface", "ide"),
        ("tenant_id", "acme"),
        ("delivery.result", "ok"),
        ("http.status", "200"),
    ] {
        assert_eq!(attr_text(&delivery.span, key), want, "attribute `{key}`");
    }
    // Only the decision's spans are exported (the HTTP request span is not).
    assert!(spans.iter().all(|r| r.span.name != "request"));
    for r in &spans {
        let text = format!("{:?}", r.span);
        assert!(!text.contains(MARKER), "a payload value in {text}");
    }

    // The decision's log line: flattened, with its ids and the caller's trace id.
    let lines = logs.lines();
    let decided = lines
        .iter()
        .find(|l| l.get("message") == Some(&json!("decided")))
        .unwrap_or_else(|| panic!("no `decided` line in:\n{}", logs.text()));
    for (key, want) in [
        ("level", "DEBUG"),
        ("service", "mmm-host"),
        ("tenant_id", "acme"),
        ("actor_id", "dev-1"),
        ("decision_id", decision_id),
        ("trace_id", TRACE_ID),
    ] {
        assert_eq!(
            decided.get(key),
            Some(&json!(want)),
            "`{key}` in {decided:?}"
        );
    }
    let timestamp = decided["timestamp"].as_str().unwrap();
    assert!(timestamp.parse::<jiff::Timestamp>().is_ok(), "{timestamp}");
    assert!(decided.get("request_id").is_some(), "{decided:?}");
    assert!(
        !logs.text().contains(MARKER),
        "a payload value in:\n{}",
        logs.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_exporter_logs_carry_the_callers_trace_id_and_no_payload() {
    let logs = Buffer::default();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(log_layer(&logs)));
    let host = observed_host().await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let reply = host
        .send(decide_request(&host, Some(&traceparent)))
        .with_subscriber(dispatch.clone())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let decision_id = reply.json()["decision_id"].as_str().unwrap().to_owned();
    // A malformed traceparent starts no trace: the line has no trace id.
    let reply = host
        .send(decide_request(&host, Some("00-not-a-trace-01")))
        .with_subscriber(dispatch.clone())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let second = reply.json()["decision_id"].as_str().unwrap().to_owned();

    let lines = logs.lines();
    let line = |id: &str| {
        lines
            .iter()
            .find(|l| l.get("decision_id") == Some(&json!(id)))
            .unwrap_or_else(|| panic!("no line of {id} in:\n{}", logs.text()))
            .clone()
    };
    let first = line(&decision_id);
    assert_eq!(first.get("trace_id"), Some(&json!(TRACE_ID)));
    assert_eq!(first.get("service"), Some(&json!("mmm-host")));
    assert!(line(&second).get("trace_id").is_none());
    assert!(
        !logs.text().contains(MARKER),
        "a payload value in:\n{}",
        logs.text()
    );
    // Every line is one object whose keys each appear once (a duplicate would have been
    // folded by the JSON parser: compare with the raw text).
    for raw in logs.text().lines() {
        let parsed: serde_json::Map<String, Value> = serde_json::from_str(raw).unwrap();
        assert_eq!(raw.matches("\"timestamp\":").count(), 1, "{raw}");
        assert!(
            parsed.contains_key("level") && parsed.contains_key("message"),
            "{raw}"
        );
    }
}

#[test]
fn traceparent_round_trips_and_malformed_ones_are_ignored() {
    use opentelemetry::trace::TraceContextExt;
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let cx = telemetry::parent_from_traceparent(Some(&tp), Some("vendor=x"));
    assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
    assert_eq!(cx.span().span_context().trace_state().header(), "vendor=x");
    assert_eq!(telemetry::traceparent_of(&cx).as_deref(), Some(tp.as_str()));
    for bad in [
        None,
        Some(""),
        Some("00-zz-00f067aa0ba902b7-01"),
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ] {
        let cx = telemetry::parent_from_traceparent(bad, None);
        assert!(!cx.span().span_context().is_valid(), "{bad:?}");
        assert_eq!(telemetry::traceparent_of(&cx), None);
    }
}

#[tokio::test]
async fn the_otlp_url_is_the_base_with_its_traces_path_and_must_be_http() {
    assert_eq!(
        telemetry::otlp_traces_url(Some("http://collector:4318/")).as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    assert_eq!(
        telemetry::otlp_traces_url(Some("http://collector:4318/v1/traces")).as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    let bad = telemetry::provider("ftp://collector", tokio::runtime::Handle::current());
    assert!(bad.unwrap_err().contains("ftp://collector"));
}

#[tokio::test]
async fn tracing_off_collects_no_stage_spans() {
    // With no exporting subscriber there is no tracer and nothing is collected.
    assert!(telemetry::tracer().is_none());
    let (out, _, stages) = telemetry::collect_core_spans(false, || {
        telemetry::on_core_span("policy.gate", Duration::ZERO, Duration::from_millis(1));
        7
    });
    assert_eq!((out, stages.len()), (7, 0));
    let (_, _, stages) = telemetry::collect_core_spans(true, || {
        telemetry::on_core_span("policy.gate", Duration::ZERO, Duration::from_millis(1));
        telemetry::on_core_span("mmm.decide", Duration::ZERO, Duration::from_millis(2));
    });
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0].name, "policy.gate");
    // Outside a collection nothing is kept.
    telemetry::on_core_span("policy.gate", Duration::ZERO, Duration::ZERO);
    let (_, _, stages) = telemetry::collect_core_spans(true, || ());
    assert!(stages.is_empty());
}

#[test]
fn a_log_line_is_one_flat_object_each_key_once() {
    let logs = Buffer::default();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(log_layer(&logs)));
    tracing::dispatcher::with_default(&dispatch, || {
        let outer = tracing::info_span!(target: "mmm_host::x", "outer", tenant_id = "acme", n = 1);
        let _o = outer.enter();
        let inner =
            tracing::info_span!(target: "mmm_host::x", "inner", n = 2, otel.kind = "client");
        let _i = inner.enter();
        tracing::warn!(target: "mmm_host::x", n = 3, level = "fake", ok = true, "log.file" = "f.rs", "hello {}", "there");
        // Outside the host's targets: filtered out.
        tracing::warn!(target: "other", "not ours");
    });
    let lines = logs.lines();
    assert_eq!(lines.len(), 1, "{}", logs.text());
    let line = &lines[0];
    assert_eq!(line["message"], json!("hello there"));
    assert_eq!(line["level"], json!("WARN"));
    assert_eq!(line["service"], json!("mmm-host"));
    assert_eq!(line["target"], json!("mmm_host::x"));
    assert_eq!(line["tenant_id"], json!("acme"));
    // The innermost value wins, the event's over its spans'.
    assert_eq!(line["n"], json!(3));
    assert_eq!(line["ok"], json!(true));
    assert!(line.get("otel.kind").is_none() && line.get("log.file").is_none());
    let raw = logs.text();
    for key in ["\"n\":", "\"level\":", "\"message\":"] {
        assert_eq!(raw.matches(key).count(), 1, "{key} in {raw}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_json_lines_and_flushes_its_traces_at_sigterm() {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let _heavy = crate::common::HEAVY.lock().await;
    let (url, collector) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_mmm-host");
    let token = Command::new(bin)
        .args([
            "token",
            "--tenant",
            "demo",
            "--role",
            "service",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let port = crate::common::free_port();
    let log = dir.path().join("host.log");
    let library = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks");
    let mut child = Command::new(bin)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--seed-playbooks")
        .arg(&library)
        .env_remove("MMM_DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("OTLP_EXPORTER_ENDPOINT", &url)
        .env("RUST_LOG", "info,mmm_host=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}/v1/mmm");
    crate::common::wait_ready(&base, &mut child, Duration::from_secs(60), "telemetry").await;
    let signal = json!({"tenant_id": "demo", "actor_id": "dev-1", "actor_type": "human",
                        "kind": "pr.opened", "occurred_at": jiff::Timestamp::now().to_string(),
                        "payload": {"title": MARKER}});
    let reply = reqwest::Client::new()
        .post(format!("{base}/decide"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&json!({ "signal": signal }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let decision: Value = reply.json().await.unwrap();
    // SIGTERM: the batch of spans (not yet due: the processor exports every 5 s) is
    // flushed before the process exits.
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    // Real time: a real process and its signals: bounded only to catch a hang.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "SIGTERM did not end the host"
        );
        // Real time: as above.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit {status}");

    let spans = collector.spans.lock().unwrap().clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let root = spans
        .iter()
        .find(|r| r.span.name == "mmm.decide")
        .unwrap_or_else(|| panic!("no mmm.decide among {spans:?}"));
    assert_eq!(root.service, "mmm-host");
    assert_eq!(hex(&root.span.parent_span_id), PARENT_ID);
    assert_eq!(
        attr_text(&root.span, "decision_id"),
        decision["decision_id"].as_str().unwrap()
    );

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(MARKER), "a payload value in:\n{text}");
    let lines: Vec<serde_json::Map<String, Value>> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let decided = lines
        .iter()
        .find(|l| l.get("message") == Some(&json!("decided")))
        .unwrap_or_else(|| panic!("no `decided` line in:\n{text}"));
    assert_eq!(decided.get("trace_id"), Some(&json!(TRACE_ID)));
    assert_eq!(decided.get("decision_id"), Some(&decision["decision_id"]));
    assert!(lines
        .iter()
        .all(|l| l.get("service") == Some(&json!("mmm-host"))));
}
