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

/// The metrics names of SPEC §13 and the host's additions, with exactly these label
/// names on every sample (`le` of histogram buckets aside).
const EXPOSED: &[(&str, &[&str])] = &[
    (
        "mmm_decisions_total",
        &["tenant_id", "actor_type", "degraded_mode"],
    ),
    ("mmm_decision_latency_seconds_bucket", &["tenant_id"]),
    ("mmm_decision_latency_seconds_count", &["tenant_id"]),
    ("mmm_decision_latency_seconds_sum", &["tenant_id"]),
    ("mmm_decision_latency_warning_total", &[]),
    ("mmm_actions_total", &["tenant_id", "action_type"]),
    ("mmm_outcomes_total", &["tenant_id", "result"]),
    ("mmm_eris_receipt_emission_total", &["tenant_id", "result"]),
    ("mmm_circuit_state", &["name"]),
    ("mmm_delivery_attempts_total", &["channel", "result"]),
    ("mmm_decision_surface_latency_seconds_bucket", &["surface"]),
    ("mmm_cache_requests_total", &["cache", "result"]),
    ("mmm_outbox_depth", &[]),
    ("mmm_http_requests_total", &["method", "route", "status"]),
    (
        "mmm_http_request_duration_seconds_bucket",
        &["method", "route"],
    ),
];

/// Each sample of the exposition: (name, labels).
fn samples(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, _value) = line.rsplit_once(' ').unwrap();
            let Some((name, labels)) = series.split_once('{') else {
                return (series.to_owned(), Vec::new());
            };
            let labels = labels
                .trim_end_matches('}')
                .split("\",")
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels)
        })
        .collect()
}

/// The `le` values of one histogram's buckets for one series.
fn buckets(
    samples: &[(String, Vec<(String, String)>)],
    name: &str,
    label: (&str, &str),
) -> Vec<String> {
    samples
        .iter()
        .filter(|(n, l)| n == name && l.iter().any(|(k, v)| k == label.0 && v == label.1))
        .filter_map(|(_, l)| l.iter().find(|(k, _)| k == "le").map(|(_, v)| v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_real_decisions_shows_every_name_label_and_bucket() {
    use axum::http::Method;
    use mmm_host::forwarder::{spawn, ForwarderConfig};
    use mmm_host::shutdown::Shutdown;

    for db in crate::common::backends().await {
        let backend = db.name;
        let is_sqlite = backend == "sqlite";
        let metrics = Arc::new(Metrics::new());
        // IDE signals past a zero deadline: a degraded decision (`deadline_exceeded`).
        let config = EngineConfig {
            ide_deadline: StdDuration::ZERO,
            ..EngineConfig::default()
        };
        let host = crate::common::Host::observed(
            db,
            "metrics-scrape",
            PLAYBOOK,
            Arc::clone(&metrics),
            |b| b.config(config).delivery(Arc::new(Ide)),
        )
        .await;
        // A real ERIS forwarder against a receiver on loopback.
        let eris = crate::forwarder::Eris::default();
        let url = crate::forwarder::serve(eris.clone()).await;
        let shutdown = Shutdown::new();
        spawn(
            Arc::clone(&host.state.store),
            Arc::clone(&metrics),
            ForwarderConfig {
                idle: StdDuration::from_millis(20),
                ..ForwarderConfig::new(&url)
            },
            &shutdown,
        )
        .await
        .unwrap();

        let service = host.token("acme", &["service"], "svc@acme");
        let now = jiff::Timestamp::now().to_string();
        let mut action_id = None;
        for (actor, surface) in [("dev-1", None), ("dev-2", Some("ide")), ("dev-3", None)] {
            let mut signal = json!({"tenant_id": "acme", "actor_id": actor, "actor_type": "human",
                                    "kind": "pr.opened", "occurred_at": now});
            if let Some(s) = surface {
                signal["surface"] = json!(s);
            }
            let reply = host
                .post_json("/v1/mmm/decide", &service, &json!({ "signal": signal }))
                .await;
            assert_eq!(reply.status, 200, "{backend}: {}", reply.text);
            let decision = reply.json();
            let degraded = decision["degraded"].as_array().unwrap();
            assert_eq!(
                degraded.iter().any(|d| d == "deadline_exceeded"),
                surface.is_some(),
                "{backend}: {decision}"
            );
            action_id = decision["actions"][0]["action_id"]
                .as_str()
                .map(str::to_owned);
        }
        let action_id = action_id.unwrap();
        let reply = host
            .post_json(
                &format!("/v1/mmm/actions/{action_id}/outcome"),
                &service,
                &json!({"result": "accepted"}),
            )
            .await;
        assert!(reply.status.is_success(), "{backend}: {}", reply.text);
        // A path with an id: counted under its template.
        let admin = host.admin("acme");
        let reply = host.get("/v1/mmm/playbooks/some-id", &admin).await;
        assert_eq!(reply.status, 404, "{backend}: {}", reply.text);
        // The forwarder hands the three receipts to ERIS.
        // Real time: the forwarder is a background task polling every 20 ms; bounded.
        let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
        while eris.taken.lock().unwrap().len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: ERIS got no receipts"
            );
            // Real time: the forwarder sends to the ERIS server on loopback on its own task.
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }

        let reply = host
            .call(Method::GET, "/v1/mmm/metrics", None, None, "")
            .await;
        assert_eq!(reply.status, 200);
        let text = reply.text;
        let all = samples(&text);
        for (name, labels) in EXPOSED {
            // PostgreSQL keeps no cache of what decide reads (replicas share the
            // database), and this engine has no policy or governance port.
            if *name == "mmm_cache_requests_total" && !is_sqlite {
                assert!(!text.contains(name), "{backend}:\n{text}");
                continue;
            }
            let found: Vec<_> = all.iter().filter(|(n, _)| n == name).collect();
            assert!(!found.is_empty(), "{backend}: no `{name}` in:\n{text}");
            for (_, l) in found {
                let mut names: Vec<&str> = l
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .filter(|k| *k != "le")
                    .collect();
                names.sort_unstable();
                let mut want = labels.to_vec();
                want.sort_unstable();
                assert_eq!(names, want, "{backend}: labels of `{name}`");
            }
        }
        let want_buckets = ["0.05", "0.1", "0.25", "0.5", "1.0", "2.0", "+Inf"];
        assert_eq!(
            buckets(
                &all,
                "mmm_decision_latency_seconds_bucket",
                ("tenant_id", "acme")
            ),
            want_buckets,
            "{backend}"
        );
        for surface in ["ide", "none"] {
            assert_eq!(
                buckets(
                    &all,
                    "mmm_decision_surface_latency_seconds_bucket",
                    ("surface", surface)
                ),
                want_buckets,
                "{backend}: surface {surface}"
            );
        }
        let mut lines = vec![
            r#"mmm_decisions_total{tenant_id="acme",actor_type="human",degraded_mode="none"} 2"#.to_owned(),
            r#"mmm_decisions_total{tenant_id="acme",actor_type="human",degraded_mode="deadline_exceeded"} 1"#.to_owned(),
            r#"mmm_decision_surface_latency_seconds_count{surface="none"} 2"#.to_owned(),
            r#"mmm_decision_surface_latency_seconds_count{surface="ide"} 1"#.to_owned(),
            "mmm_decision_latency_warning_total 1".to_owned(),
            r#"mmm_actions_total{tenant_id="acme",action_type="mirror"} 3"#.to_owned(),
            r#"mmm_outcomes_total{tenant_id="acme",result="accepted"} 1"#.to_owned(),
            r#"mmm_eris_receipt_emission_total{tenant_id="acme",result="forwarded"} 3"#.to_owned(),
            r#"mmm_circuit_state{name="iam"} 0"#.to_owned(),
            r#"mmm_delivery_attempts_total{channel="ide",result="ok"}"#.to_owned(),
            r#"mmm_http_requests_total{method="GET",route="/v1/mmm/playbooks/{id}",status="404"} 1"#.to_owned(),
            r#"mmm_http_requests_total{method="POST",route="/v1/mmm/decide",status="200"} 3"#.to_owned(),
            r#"mmm_http_requests_total{method="POST",route="/v1/mmm/actions/{action_id}/outcome",status="#.to_owned(),
        ];
        if is_sqlite {
            // The host's cache of what decide reads: the first policy read asks SQLite,
            // the next two are answered from memory; actors without preferences cost no
            // query.
            lines.push(r#"mmm_cache_requests_total{cache="policy",result="miss"} 1"#.to_owned());
            lines.push(r#"mmm_cache_requests_total{cache="policy",result="hit"} 2"#.to_owned());
            lines
                .push(r#"mmm_cache_requests_total{cache="preferences",result="hit"} 3"#.to_owned());
        }
        for line in &lines {
            assert!(
                text.contains(line.as_str()),
                "{backend}: missing `{line}` in:\n{text}"
            );
        }
        assert!(
            !text.contains("some-id"),
            "{backend}: a raw path in:\n{text}"
        );
        assert!(
            !text.contains(&action_id),
            "{backend}: a raw action id in:\n{text}"
        );
        shutdown.begin();
        shutdown.run_hooks(StdDuration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_depth_counts_receipts_eris_has_not_taken() {
    use mmm_host::forwarder::{spawn, ForwarderConfig};
    use mmm_host::shutdown::Shutdown;

    for db in crate::common::backends().await {
        let backend = db.name;
        let metrics = Arc::new(Metrics::new());
        let host = crate::common::Host::observed(
            db,
            "metrics-outbox",
            PLAYBOOK,
            Arc::clone(&metrics),
            |b| b,
        )
        .await;
        let service = host.token("acme", &["service"], "svc@acme");
        let now = jiff::Timestamp::now().to_string();
        for actor in ["dev-1", "dev-2"] {
            let signal = json!({"tenant_id": "acme", "actor_id": actor, "actor_type": "human",
                                "kind": "pr.opened", "occurred_at": now});
            let reply = host
                .post_json("/v1/mmm/decide", &service, &json!({ "signal": signal }))
                .await;
            assert_eq!(reply.status, 200, "{backend}: {}", reply.text);
        }
        // ERIS answers 503 to everything: both receipts wait.
        let eris = crate::forwarder::Eris::default();
        eris.fail_first
            .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        let url = crate::forwarder::serve(eris.clone()).await;
        let shutdown = Shutdown::new();
        spawn(
            Arc::clone(&host.state.store),
            Arc::clone(&metrics),
            ForwarderConfig {
                idle: StdDuration::from_millis(20),
                base_backoff: StdDuration::from_millis(20),
                max_backoff: StdDuration::from_millis(50),
                ..ForwarderConfig::new(&url)
            },
            &shutdown,
        )
        .await
        .unwrap();
        // Real time: the forwarder is a background task that counts after its first
        // failed attempt; bounded.
        let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
        loop {
            let text = metrics.scrape(&host.state);
            if text.contains("mmm_outbox_depth 2") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{backend}:\n{text}");
            // Real time: the forwarder sends to the ERIS server on loopback on its own task.
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        // ERIS recovers: the depth drains to zero.
        eris.fail_first
            .store(0, std::sync::atomic::Ordering::SeqCst);
        // Real time: as above, the forwarder retries after its backoff; bounded.
        let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
        loop {
            let text = metrics.scrape(&host.state);
            if text.contains("mmm_outbox_depth 0") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{backend}:\n{text}");
            // Real time: the forwarder sends to the ERIS server on loopback on its own task.
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        shutdown.begin();
        shutdown.run_hooks(StdDuration::from_secs(5)).await;
    }
}

#[test]
fn the_cores_cache_events_are_counted_by_cache_and_result() {
    use mmm_engine::observe::{Cache, Event};
    let metrics = Arc::new(Metrics::new());
    let observer = metrics.observer();
    for (cache, hit) in [
        (Cache::Policy, true),
        (Cache::Policy, false),
        (Cache::Policy, true),
        (Cache::TenantConfig, false),
    ] {
        observer.on_event(&Event::Cache { cache, hit });
    }
    let text = metrics.render();
    for line in [
        r#"mmm_cache_requests_total{cache="policy",result="hit"} 2"#,
        r#"mmm_cache_requests_total{cache="policy",result="miss"} 1"#,
        r#"mmm_cache_requests_total{cache="tenant_config",result="miss"} 1"#,
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    // The store cache's counts add to the same series, by difference since the last scrape.
    let counts = |policy_hits| mmm_host::store::cache::CacheCounts {
        policy_hits,
        ..Default::default()
    };
    metrics.sync_store_cache(Some(counts(5)));
    metrics.sync_store_cache(Some(counts(5)));
    metrics.sync_store_cache(None);
    metrics.sync_store_cache(Some(counts(6)));
    assert!(metrics
        .render()
        .contains(r#"mmm_cache_requests_total{cache="policy",result="hit"} 8"#));
}
