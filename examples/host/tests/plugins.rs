//! `Plugins::from_args`: the flags (as `serve` parses them) give the engine its port
//! clients, fatigue store and metrics observer, and start the ERIS forwarder; a bad URL
//! names its flag.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mmm_engine::{DecideOptions, Engine, PlaybookSet, PortTimeouts};
use mmm_host::auth::{KeySet, LocalKey, Verifier};
use mmm_host::config::Cli;
use mmm_host::plugins::Plugins;
use mmm_host::{AppState, Settings};
use serde_json::json;

use crate::common::{sqlite, ts, NOW};

const PLAYBOOK: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: once, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  fatigue: {max: 1, window: 1d}
  actions:
    - type: mentor
      surfaces: [ide]
      title: Advice
      prompt: "Advise {{ signal.actor_id }}."
      fallback: "The fallback."
"#;

fn args(extra: &[&str]) -> mmm_host::config::ServeArgs {
    let mut argv = vec!["mmm-host"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().serve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flags_install_every_part() {
    let mock = crate::ports::Mock::default();
    let ports = format!("http://{}/ports", crate::ports::serve(mock).await);
    let eris = crate::forwarder::Eris::default();
    let eris_url = crate::forwarder::serve(eris.clone()).await;
    let redis = crate::fatigue::redis_url();
    let prefixless_actor = format!(
        "dev-{}",
        ts(NOW).as_second() ^ i64::from(std::process::id())
    );
    let mut flags = vec![
        "--iam-url",
        &ports,
        "--ubi-url",
        &ports,
        "--governance-url",
        &ports,
        "--llm-url",
        &ports,
        "--policy-url",
        &ports,
        "--ports-token",
        "port-secret",
        "--eris-url",
        &eris_url,
    ];
    if let Some(url) = &redis {
        flags.extend(["--redis-url", url.as_str()]);
    }
    let args = args(&flags);
    let db = sqlite().await;
    let plugins = Plugins::from_args(&args, &db.store, &PortTimeouts::default()).unwrap();
    plugins.fatigue.load(&*db.store, 1000).await.unwrap();
    let engine = plugins
        .apply(Engine::builder().playbooks(PlaybookSet::from_yaml(PLAYBOOK).unwrap()))
        .build();
    let key = LocalKey::from_seed([3; 32]);
    let verifier = Verifier::new(KeySet::fixed(vec![key.verification_key()]), None, None);
    let state = AppState::with_engine_and_metrics(
        Arc::clone(&db.store),
        verifier,
        Settings::default(),
        engine,
        Arc::clone(&plugins.metrics),
    )
    .with_fatigue(plugins.fatigue.clone());
    let forwarder = plugins.start(&state).await.unwrap();
    assert!(forwarder.is_some());

    let live = Arc::clone(&state.live);
    let actor = prefixless_actor.clone();
    let decisions = tokio::task::spawn_blocking(move || {
        let options = DecideOptions {
            now: Some(ts(NOW)),
            ..DecideOptions::default()
        };
        let signal = json!({"tenant_id": "acme", "actor_id": actor, "kind": "pr.opened",
                            "occurred_at": NOW});
        (0..2)
            .map(|_| {
                serde_json::to_value(live.engine().decide(&signal, None, &options).unwrap())
                    .unwrap()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // The LLM port wrote the mentor; the fatigue store let it through once.
    assert_eq!(decisions[0]["degraded"], json!([]), "{}", decisions[0]);
    assert_eq!(decisions[0]["actions"][0]["text"], "From the gateway.");
    assert_eq!(decisions[1]["actions"], json!([]), "{}", decisions[1]);
    assert_eq!(decisions[1]["suppressed"][0]["reason"], "fatigue_max");
    assert!(plugins.metrics.render().contains(
        r#"mmm_decisions_total{tenant_id="acme",actor_type="human",degraded_mode="none"} 2"#
    ));

    // The forwarder runs: a stored receipt reaches ERIS.
    db.store
        .append_receipts(&[crate::forwarder::row(1)])
        .await
        .unwrap();
    for _ in 0..500 {
        if !eris.taken.lock().unwrap().is_empty() {
            break;
        }
        // Real time: the forwarder is a background task on real time against a real HTTP server: polled, bounded.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(eris.taken.lock().unwrap().len(), 1);
    state.shutdown.begin();
    tokio::time::timeout(
        Duration::from_secs(10),
        state.shutdown.run_hooks(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    if let Some(url) = redis {
        // Clean the actor's Redis keys (no prefix in production keys).
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("mmm:fatigue:acme:{{{prefixless_actor}}}:*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_names_its_flag() {
    let db = sqlite().await;
    for (flag, value) in [
        ("--redis-url", "http://not-redis"),
        ("--iam-url", "not a url"),
        ("--policy-url", "ftp://x"),
    ] {
        let e = Plugins::from_args(&args(&[flag, value]), &db.store, &PortTimeouts::default())
            .unwrap_err();
        assert!(e.contains(flag), "{flag}: {e}");
    }
    let plugins = Plugins::from_args(
        &args(&["--eris-url", "mailto:x"]),
        &db.store,
        &PortTimeouts::default(),
    )
    .unwrap();
    let key = LocalKey::from_seed([3; 32]);
    let verifier = Verifier::new(KeySet::fixed(vec![key.verification_key()]), None, None);
    let state = AppState::new(Arc::clone(&db.store), verifier, Settings::default());
    let e = plugins.start(&state).await.unwrap_err();
    assert!(e.contains("--eris-url"), "{e}");
}

#[test]
fn the_section_5_port_names_are_aliases() {
    let a = args(&[
        "--signals-url",
        "http://u",
        "--data-governance-url",
        "http://g",
        "--receipts-url",
        "http://e",
    ]);
    assert_eq!(a.ubi_url.as_deref(), Some("http://u"));
    assert_eq!(a.governance_url.as_deref(), Some("http://g"));
    assert_eq!(a.eris_url.as_deref(), Some("http://e"));
}
