//! The HTTP port clients against mock services (real axum servers on loopback): a
//! happy answer fills the context, a slow answer times out into the core's degraded
//! behaviour, a 5xx opens the breaker after the configured failures, a 4xx does not.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use mmm_engine::ports::{BreakerState, PortName};
use mmm_engine::{BreakerConfig, DecideError, DecideOptions, Engine, EngineConfig, PlaybookSet};
use mmm_host::ports::{install_urls, PortUrls};
use serde_json::{json, Value};

use crate::common::{ts, NOW};

const OK: u8 = 0;
const SLOW: u8 = 1;
const FAIL: u8 = 2;
/// 200 with a body that is not the answer's shape.
const BAD: u8 = 3;
/// 200 with a body over the 4 MiB cap.
const HUGE: u8 = 4;

/// One mock service for all five ports (one path per method); its mode is shared.
#[derive(Clone, Default)]
pub struct Mock {
    /// The mode of every method without one of its own.
    mode: Arc<AtomicU8>,
    modes: Arc<Mutex<HashMap<String, u8>>>,
    calls: Arc<Mutex<HashMap<String, Vec<Value>>>>,
}

impl Mock {
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn set_for(&self, methods: &[&str], mode: u8) {
        let mut modes = self.modes.lock().unwrap();
        for m in methods {
            modes.insert((*m).to_owned(), mode);
        }
    }

    fn mode(&self, method: &str) -> u8 {
        let own = self.modes.lock().unwrap().get(method).copied();
        own.unwrap_or_else(|| self.mode.load(Ordering::SeqCst))
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .get(method)
            .cloned()
            .unwrap_or_default()
    }
}

async fn answer(
    State(mock): State<Mock>,
    Path(method): Path<String>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer port-secret")
    );
    mock.calls
        .lock()
        .unwrap()
        .entry(method.clone())
        .or_default()
        .push(body.clone());
    match mock.mode(&method) {
        // Real time: a slow real HTTP server: the client's real timeout is what is under test.
        SLOW => tokio::time::sleep(StdDuration::from_secs(5)).await,
        FAIL => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        BAD => return Json(json!("not an answer")).into_response(),
        HUGE => {
            let big = vec![json!({"kind": "x".repeat(1024)}); 5 * 1024];
            return Json(big).into_response();
        }
        _ => {}
    }
    let reply = match method.as_str() {
        "validate_actor" if body["actor_id"] == "ghost" => {
            return (StatusCode::NOT_FOUND, "no such actor").into_response()
        }
        "validate_actor" => json!({"active": true, "roles": ["dev"], "timezone": "Europe/Berlin"}),
        "recent" => json!([
            {"tenant_id": "acme", "actor_id": body["actor_id"], "kind": "ci.failed",
             "occurred_at": "2026-11-22T09:30:00Z"}
        ]),
        "tenant_config" => json!({"safety_critical": false, "team": "core"}),
        "snapshot" => json!({"snapshot_id": "pol-mock", "denied_action_types": [],
                             "denied_operations": [], "denied_playbooks": []}),
        "generate" => {
            json!({"text": "From the gateway.", "safety": {"status": "pass", "risk_flags": []}})
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    Json(reply).into_response()
}

/// Serves `mock` on a loopback port.
pub async fn serve(mock: Mock) -> SocketAddr {
    let app = Router::new()
        .route("/ports/{method}", post(answer))
        .with_state(mock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

const PLAYBOOK: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: after-failures, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  when: recent_count("ci.failed", "1d") == 1 && ctx.tenant.config.team == "core"
  actions:
    - type: mirror
      surfaces: [ide]
      title: Opened
      text: "Opened after a failure."
    - type: mentor
      surfaces: [ide]
      title: Advice
      prompt: "Advise {{ signal.actor_id }}."
      fallback: "The fallback."
"#;

const PLAIN: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: plain, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  actions:
    - type: mirror
      surfaces: [ide]
      title: Opened
      text: "Opened."
    - type: mentor
      surfaces: [ide]
      title: Advice
      prompt: "Advise {{ signal.actor_id }}."
      fallback: "The fallback."
"#;

fn urls(addr: SocketAddr, iam: bool) -> PortUrls {
    let base = format!("http://{addr}/ports");
    PortUrls {
        iam: iam.then(|| base.clone()),
        ubi: Some(base.clone()),
        governance: Some(base.clone()),
        llm: Some(base.clone()),
        policy: Some(base),
        token: Some("port-secret".into()),
    }
}

/// An engine with the HTTP ports, short timeouts and a breaker opening after 3 failures.
fn engine(playbook: &str, urls: &PortUrls) -> Arc<Engine> {
    let mut config = EngineConfig::default();
    let t = StdDuration::from_millis(300);
    config.timeouts.iam = t;
    config.timeouts.signals = t;
    config.timeouts.data_governance = t;
    config.timeouts.policy = t;
    config.timeouts.llm = t;
    config.default_deadline = StdDuration::from_secs(5);
    config.ide_deadline = StdDuration::from_secs(5);
    config.policy_ttl = StdDuration::ZERO;
    config.policy_max_age = StdDuration::ZERO;
    config.tenant_config_ttl = StdDuration::ZERO;
    config.breaker = BreakerConfig {
        failure_threshold: 3,
        ..BreakerConfig::default()
    };
    let builder = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(playbook).unwrap())
        .config(config.clone());
    Arc::new(
        install_urls(builder, urls, &config.timeouts)
            .unwrap()
            .build(),
    )
}

async fn decide(engine: &Arc<Engine>, actor: &str) -> Result<Value, DecideError> {
    let engine = Arc::clone(engine);
    let signal = json!({"tenant_id": "acme", "actor_id": actor, "kind": "pr.opened",
                        "occurred_at": NOW, "surface": "ide"});
    tokio::time::timeout(
        StdDuration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let options = DecideOptions {
                now: Some(ts(NOW)),
                ..DecideOptions::default()
            };
            engine
                .decide(&signal, None, &options)
                .map(|d| serde_json::to_value(d).unwrap())
        }),
    )
    .await
    .expect("a decision hung on a port")
    .unwrap()
}

fn texts(d: &Value) -> Vec<String> {
    d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_answers_fill_the_context() {
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    let engine = engine(PLAYBOOK, &urls(addr, true));
    let d = decide(&engine, "dev-1").await.unwrap();
    assert_eq!(d["degraded"], json!([]), "{d}");
    assert_eq!(d["policy_snapshot_id"], "pol-mock", "{d}");
    // The condition saw UBI's signal and governance's config; the mentor the LLM's text.
    assert_eq!(
        texts(&d),
        ["Opened after a failure.", "From the gateway."],
        "{d}"
    );
    assert_eq!(
        mock.calls("validate_actor"),
        [json!({"tenant_id": "acme", "actor_id": "dev-1"})]
    );
    assert_eq!(mock.calls("recent")[0]["actor_id"], "dev-1");
    assert_eq!(mock.calls("tenant_config"), [json!({"tenant_id": "acme"})]);
    assert_eq!(mock.calls("snapshot"), [json!({"tenant_id": "acme"})]);
    let llm = &mock.calls("generate")[0];
    assert_eq!(llm["prompt"], "Advise dev-1.");
    assert_eq!(llm["playbook_id"], "after-failures");

    // An unknown actor (IAM's 404) is refused as Forbidden, and is no breaker failure.
    for _ in 0..4 {
        let e = decide(&engine, "ghost").await.unwrap_err();
        assert_eq!(e.info().code, "FORBIDDEN", "{e}");
    }
    assert_eq!(engine.breaker_state(PortName::Iam), BreakerState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out_into_the_degraded_modes() {
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    mock.set_for(&["recent", "tenant_config", "generate"], SLOW);
    let engine = engine(PLAIN, &urls(addr, false));
    let d = decide(&engine, "dev-1").await.unwrap();
    let mut degraded: Vec<String> = serde_json::from_value(d["degraded"].clone()).unwrap();
    degraded.sort();
    assert_eq!(
        degraded,
        [
            "data_governance_unavailable",
            "llm_unavailable",
            "ubi_unavailable"
        ],
        "{d}"
    );
    // The mentor falls back; the mirror is unaffected.
    assert_eq!(texts(&d), ["Opened.", "The fallback."], "{d}");

    // Policy slow, for a tenant that is not safety-critical: mirror actions only.
    mock.set_for(&["snapshot"], SLOW);
    let d = decide(&engine, "dev-1").await.unwrap();
    assert!(
        d["degraded"]
            .as_array()
            .unwrap()
            .contains(&json!("policy_unavailable")),
        "{d}"
    );
    assert_eq!(texts(&d), ["Opened."], "{d}");
    assert_eq!(d["suppressed"][0]["reason"], "policy_unavailable", "{d}");

    // IAM slow: the decision fails as Unavailable (503), it does not wait.
    mock.set(SLOW);
    let with_iam = engine_with_iam(addr);
    let e = decide(&with_iam, "dev-1").await.unwrap_err();
    assert_eq!(e.info().code, "UNAVAILABLE", "{e}");
}

fn engine_with_iam(addr: SocketAddr) -> Arc<Engine> {
    engine(PLAIN, &urls(addr, true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_open_the_breakers_after_the_configured_failures() {
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    mock.set(FAIL);
    let engine = engine(PLAIN, &urls(addr, true));
    for _ in 0..5 {
        let e = decide(&engine, "dev-1").await.unwrap_err();
        assert_eq!(e.info().code, "UNAVAILABLE", "{e}");
    }
    assert_eq!(engine.breaker_state(PortName::Iam), BreakerState::Open);
    // Three failures reached IAM; the breaker refused the rest without a call.
    assert_eq!(mock.calls("validate_actor").len(), 3);

    // Without IAM, the other ports fail into degraded modes and their breakers open
    // (policy answers at first, so that mentors reach the LLM).
    // (A service of its own: calls IAM's failures abandoned may still arrive at the first.)
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    mock.set(FAIL);
    mock.set_for(&["snapshot"], OK);
    let engine = engine_without_iam(addr);
    for _ in 0..5 {
        let d = decide(&engine, "dev-1").await.unwrap();
        let degraded = d["degraded"].as_array().unwrap();
        assert!(degraded.contains(&json!("ubi_unavailable")), "{d}");
        assert_eq!(texts(&d), ["Opened.", "The fallback."], "{d}");
    }
    for port in [PortName::Signals, PortName::DataGovernance, PortName::Llm] {
        assert_eq!(engine.breaker_state(port), BreakerState::Open, "{port}");
    }
    assert_eq!(mock.calls("recent").len(), 3);
    assert_eq!(mock.calls("generate").len(), 3);
    mock.set_for(&["snapshot"], FAIL);
    for _ in 0..4 {
        decide(&engine, "dev-1").await.unwrap();
    }
    assert_eq!(engine.breaker_state(PortName::Policy), BreakerState::Open);
    assert_eq!(mock.calls("snapshot").len(), 5 + 3);
}

fn engine_without_iam(addr: SocketAddr) -> Arc<Engine> {
    engine(PLAIN, &urls(addr, false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_is_not_http_names_its_flag() {
    let urls = PortUrls {
        llm: Some("ftp://example".into()),
        ..PortUrls::default()
    };
    let Err(e) = install_urls(Engine::builder(), &urls, &Default::default()) else {
        panic!("accepted an ftp URL");
    };
    assert!(e.contains("--llm-url"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_and_oversized_answers_count_as_down() {
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    mock.set_for(&["tenant_config", "generate"], BAD);
    mock.set_for(&["recent"], HUGE);
    let engine = engine(PLAIN, &urls(addr, false));
    let d = decide(&engine, "dev-1").await.unwrap();
    let mut degraded: Vec<String> = serde_json::from_value(d["degraded"].clone()).unwrap();
    degraded.sort();
    assert_eq!(
        degraded,
        [
            "data_governance_unavailable",
            "llm_unavailable",
            "ubi_unavailable"
        ],
        "{d}"
    );
    assert_eq!(texts(&d), ["Opened.", "The fallback."], "{d}");
    // The oversized answer is cut off at the cap (not read whole).
    let port = mmm_host::ports::HttpPort::new(
        "--ubi-url",
        &format!("http://{addr}/ports"),
        StdDuration::from_secs(5),
        Some("port-secret".into()),
        tokio::runtime::Handle::current(),
    )
    .unwrap();
    let e = tokio::task::spawn_blocking(move || {
        port.call::<_, Vec<Value>>("recent", &json!({"actor_id": "dev-1"}))
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(e.to_string().contains("larger than 4194304 bytes"), "{e}");
    // IAM answering nonsense is IAM down: 503, not a crash.
    mock.set_for(&["validate_actor"], BAD);
    let e = decide(&engine_with_iam(addr), "dev-1").await.unwrap_err();
    assert_eq!(e.info().code, "UNAVAILABLE", "{e}");
}
