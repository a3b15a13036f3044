//! The SPEC §13 decision metrics, fed by the core's observer hooks: after decisions the
//! exposition has the names with their labels and buckets.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use mmm_engine::{BreakerConfig, DecideOptions, Engine, EngineConfig, PlaybookSet};
use mmm_host::metrics::Metrics;
use mmm_host::ports::{install_urls, PortUrls};
use serde_json::json;

use crate::common::{ts, NOW};

const PLAYBOOK: &str = r#"
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

/// Delivery that takes the IDE and fails every other surface.
struct Ide;

impl mmm_engine::ports::Delivery for Ide {
    fn deliver(
        &self,
        _action: &mmm_engine::Action,
        surface: mmm_engine::Surface,
        _rendered: &str,
    ) -> Result<(), mmm_engine::PortError> {
        if surface.as_str() == "ide" {
            Ok(())
        } else {
            Err(mmm_engine::PortError::Unavailable("not the ide".into()))
        }
    }
}

fn decide(engine: &Engine, actor_type: &str) -> Result<(), mmm_engine::DecideError> {
    let signal = json!({"tenant_id": "acme", "actor_id": "dev-1", "actor_type": actor_type,
                        "kind": "pr.opened", "occurred_at": NOW});
    let options = DecideOptions {
        now: Some(ts(NOW)),
        ..DecideOptions::default()
    };
    engine.decide(&signal, None, &options).map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_outcomes_receipts_and_breakers_reach_the_exposition() {
    let metrics = Arc::new(Metrics::new());
    // Receipts signed (the host stores them itself: no receipts port, so each is
    // `emitted`), and a delivery port that takes the IDE and refuses nothing else.
    let (seed, _) = mmm_engine::receipt::generate_key();
    let engine = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(PLAYBOOK).unwrap())
        .signing_key(mmm_engine::receipt::signing_key_from_bytes(seed.as_bytes()).unwrap())
        .delivery(Arc::new(Ide))
        .observer(metrics.observer())
        .build();
    // A decision past its deadline (zero) counts as a latency warning.
    let late = EngineConfig {
        default_deadline: StdDuration::ZERO,
        ide_deadline: StdDuration::ZERO,
        ..EngineConfig::default()
    };
    let late = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(PLAYBOOK).unwrap())
        .config(late)
        .observer(metrics.observer())
        .build();
    // IAM on a port nothing listens on, breaker opening at the first failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = EngineConfig {
        breaker: BreakerConfig {
            failure_threshold: 1,
            ..BreakerConfig::default()
        },
        ..EngineConfig::default()
    };
    let builder = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(PLAYBOOK).unwrap())
        .config(config.clone())
        .observer(metrics.observer());
    let urls = PortUrls {
        iam: Some(format!("http://{closed}")),
        ..PortUrls::default()
    };
    let down = install_urls(builder, &urls, &config.timeouts)
        .unwrap()
        .build();
    tokio::task::spawn_blocking(move || {
        decide(&engine, "human").unwrap();
        decide(&engine, "human").unwrap();
        // The outcomes route hands each new outcome to the engine.
        engine
            .record_outcome(
                &json!({"action_id": "a-1", "tenant_id": "acme", "actor_id": "dev-1",
                                    "playbook_id": "plain", "result": "accepted", "at": NOW}),
            )
            .unwrap();
        decide(&engine, "agent").unwrap();
        decide(&late, "human").unwrap();
        assert!(decide(&down, "human").is_err());
    })
    .await
    .unwrap();
    metrics.observe_outcome("acme", "dismissed");
    metrics.observe_eris("acme", "forwarded");

    let text = metrics.render();
    for line in [
        r#"mmm_decisions_total{tenant_id="acme",actor_type="human",degraded_mode="none"} 2"#,
        r#"mmm_decisions_total{tenant_id="acme",actor_type="agent",degraded_mode="none"} 1"#,
        r#"mmm_decisions_total{tenant_id="acme",actor_type="human",degraded_mode="deadline_exceeded"} 1"#,
        r#"mmm_decision_latency_seconds_count{tenant_id="acme"} 4"#,
        r#"mmm_decision_latency_seconds_bucket{le="0.05",tenant_id="acme"}"#,
        r#"mmm_decision_latency_seconds_bucket{le="2.0",tenant_id="acme"}"#,
        "mmm_decision_latency_warning_total 1",
        r#"mmm_actions_total{tenant_id="acme",action_type="mirror"} 4"#,
        r#"mmm_actions_total{tenant_id="acme",action_type="mentor"} 4"#,
        r#"mmm_outcomes_total{tenant_id="acme",result="accepted"} 1"#,
        r#"mmm_outcomes_total{tenant_id="acme",result="dismissed"} 1"#,
        r#"mmm_eris_receipt_emission_total{tenant_id="acme",result="forwarded"} 1"#,
        r#"mmm_circuit_state{name="iam"} 1"#,
        r#"mmm_receipts_total{result="emitted"} 3"#,
        r#"mmm_delivery_attempts_total{channel="ide",result="ok"} 6"#,
        r#"mmm_circuit_state{name="llm"} 0"#,
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}
