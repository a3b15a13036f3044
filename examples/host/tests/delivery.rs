//! Webhook delivery against a receiver on loopback (an axum server in the test): the
//! targets routes (validation naming the field, auth, the write-only secret, audit), one
//! signed POST per (action, surface), retries with a growing ceiling, dead deliveries,
//! resumption by a new worker on the same store, two workers sharing one queue, and the
//! per-target breaker opening and closing, with the metrics of each.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use mmm_engine::ports::BreakerConfig;
use mmm_engine::Status;
use mmm_host::delivery::worker::{backoff_ceiling, spawn, DeliveryConfig};
use mmm_host::store::{PlaybookMeta, PlaybookVersion, QueuedDelivery, Scope};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::{audit, backends, Host, TestDb};

const P: &str = "/v1/mmm";
const SECRET: &str = "s3cret-for-tests";

// ---- the receiver ----------------------------------------------------------------------

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Taken {
    at: Instant,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone)]
struct Receiver {
    /// The status it answers.
    status: Arc<AtomicU16>,
    /// Answer 503 to this many requests first, then `status`.
    fail_first: Arc<AtomicUsize>,
    taken: Arc<Mutex<Vec<Taken>>>,
}

impl Receiver {
    fn new(status: u16) -> Receiver {
        Receiver {
            status: Arc::new(AtomicU16::new(status)),
            fail_first: Arc::new(AtomicUsize::new(0)),
            taken: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn taken(&self) -> Vec<Taken> {
        self.taken.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.taken.lock().unwrap().len()
    }
}

async fn take(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    r.taken.lock().unwrap().push(Taken {
        at: Instant::now(),
        headers,
        body,
    });
    if r.fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::from_u16(r.status.load(Ordering::SeqCst)).unwrap()
}

/// Serves `receiver`; the base URL (`http://127.0.0.1:port`).
async fn serve(receiver: Receiver) -> String {
    let app = Router::new()
        .route("/hooks/{surface}", post(take))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// What a receiver does: recompute the HMAC of the exact body with the shared secret.
fn verify(secret: &str, taken: &Taken) -> bool {
    let Some(sig) = taken
        .headers
        .get("x-mmm-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(taken.body.as_bytes());
    mac.verify_slice(&hex::decode(sig).unwrap_or_default())
        .is_ok()
}

// ---- the host ----------------------------------------------------------------------------

/// A playbook of tenant `acme` firing on `pr.opened` with two actions: the first for the
/// IDE and pull-request comments, the second for chat.
fn playbook() -> PlaybookVersion {
    let now = Timestamp::now();
    let yaml = "apiVersion: mmm/v1\nkind: Playbook\nmetadata:\n  id: deliver-me\n  version: 1\n  tenant: \"acme\"\n  status: published\n  category: general\nspec:\n  triggers: [pr.opened]\n  actions:\n    - type: mirror\n      surfaces: [ide, pr_comment]\n      title: Opened\n      text: \"A pull request was opened.\"\n    - type: mirror\n      surfaces: [chat]\n      title: Said\n      text: \"Someone opened a pull request.\"\n";
    PlaybookVersion {
        meta: PlaybookMeta {
            tenant: "acme".to_owned(),
            id: "deliver-me".to_owned(),
            version: 1,
            status: Status::Published,
            author: "tester".to_owned(),
            created_at: now,
            updated_at: now,
            published_at: Some(now),
        },
        yaml: yaml.to_owned(),
    }
}

/// A host on `db` deciding with [`playbook`] (stored once per store).
async fn host(db: TestDb) -> Host {
    if db
        .store
        .list_playbooks(Scope::Only("acme"), Some("deliver-me"))
        .await
        .unwrap()
        .is_empty()
    {
        db.store
            .insert_playbook(&playbook(), &audit("acme", "playbook.created"))
            .await
            .unwrap();
    }
    Host::new(db).await
}

fn signal(n: usize) -> Value {
    json!({"signal_id": format!("0193a0b0-0000-7000-8000-{n:012}"),
           "tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened", "source": "scm",
           "occurred_at": "2026-11-24T10:00:00Z",
           "repo": {"id": "acme/api", "branch": "feat/x"}})
}

async fn decide(host: &Host, n: usize) -> Value {
    let token = host.token("acme", &["service"], "svc");
    let r = host
        .post_json(
            &format!("{P}/decide"),
            &token,
            &json!({"signal": signal(n)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

async fn put_targets(host: &Host, base: &str, surfaces: &[&str]) {
    let body: serde_json::Map<String, Value> = surfaces
        .iter()
        .map(|s| {
            (
                (*s).to_owned(),
                json!({"url": format!("{base}/hooks/{s}"), "secret": SECRET}),
            )
        })
        .collect();
    let r = host
        .json(
            Method::PUT,
            &format!("{P}/tenants/acme/delivery"),
            &host.admin("acme"),
            &Value::Object(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Small waits, so the tests run in well under a second of backoff each.
fn fast() -> DeliveryConfig {
    DeliveryConfig {
        timeout: Duration::from_secs(2),
        concurrency: 4,
        base_backoff: Duration::from_millis(40),
        max_backoff: Duration::from_millis(160),
        max_attempts: 4,
        idle: Duration::from_millis(20),
        breaker: BreakerConfig {
            failure_threshold: 1000,
            ..BreakerConfig::default()
        },
        retention: Duration::from_secs(3600),
    }
}

async fn start(host: &Host, config: DeliveryConfig) {
    let s = &host.state;
    spawn(
        std::sync::Arc::clone(&s.store),
        std::sync::Arc::clone(&s.metrics),
        std::sync::Arc::clone(&s.clock),
        config,
        std::sync::Arc::clone(&s.delivery_wake),
        &s.shutdown,
    )
    .await
    .unwrap();
}

async fn stop(host: &Host) {
    host.state.shutdown.begin();
    host.state.shutdown.run_hooks(Duration::from_secs(5)).await;
}

async fn deliveries(host: &Host) -> Vec<QueuedDelivery> {
    host.db
        .store
        .list_deliveries("acme", None, 1000)
        .await
        .unwrap()
}

/// Polls `$check` (an expression that may `.await`) every 10 ms until it holds, failing
/// after `$within`.
macro_rules! until {
    ($within:expr, $what:expr, $check:expr) => {{
        let started = Instant::now();
        while !$check {
            assert!(
                started.elapsed() < $within,
                "{}: not within {:?}",
                $what,
                $within
            );
            // Real time: the worker sends over real sockets on its own schedule; polled,
            // bounded only to catch a hang.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }};
}

async fn all_in(host: &Host, state: &str) -> bool {
    let rows = deliveries(host).await;
    !rows.is_empty() && rows.iter().all(|d| d.state == state)
}

fn metric(host: &Host, line_start: &str) -> Option<f64> {
    host.state
        .metrics
        .render()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// ---- routes ------------------------------------------------------------------------------

#[tokio::test]
async fn targets_are_validated_admin_only_and_the_secret_is_write_only() {
    for db in backends().await {
        let host = host(db).await;
        let uri = format!("{P}/tenants/acme/delivery");
        let admin = host.admin("acme");
        assert_eq!(
            host.get(&uri, &admin).await.json(),
            json!({}),
            "{}",
            host.db.name
        );

        for (body, field) in [
            (json!([]), "body"),
            (
                json!({"email": {"url": "https://a.example", "secret": "s"}}),
                "email",
            ),
            (
                json!({"ide": {"url": "ftp://a.example", "secret": "s"}}),
                "ide.url",
            ),
            (
                json!({"ide": {"url": "https://user:pw@a.example", "secret": "s"}}),
                "ide.url",
            ),
            (
                json!({"ide": {"url": "https://a.example", "secret": ""}}),
                "ide.secret",
            ),
            (
                json!({"ide": {"url": "https://a.example", "secret": "[redacted]"}}),
                "ide.secret",
            ),
            (
                json!({"ide": {"url": "https://a.example", "secret": "s", "retries": 3}}),
                "ide.retries",
            ),
        ] {
            let r = host.json(Method::PUT, &uri, &admin, &body).await;
            let problem = r.problem(422, "INVALID_REQUEST");
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        }

        let body = json!({"ide": {"url": "https://hooks.example/ide", "secret": SECRET},
                          "chat": {"url": "http://chat.example/hook", "secret": "other"}});
        // Not an admin, another tenant's path, no token.
        let service = host.token("acme", &["service"], "svc");
        host.json(Method::PUT, &uri, &service, &body)
            .await
            .problem(403, "FORBIDDEN");
        host.json(
            Method::PUT,
            &format!("{P}/tenants/other/delivery"),
            &admin,
            &body,
        )
        .await
        .problem(403, "FORBIDDEN");
        host.get(&format!("{P}/tenants/other/delivery"), &admin)
            .await
            .problem(403, "FORBIDDEN");
        host.call(Method::GET, &uri, None, None, axum::body::Body::empty())
            .await
            .problem(401, "UNAUTHENTICATED");
        assert!(deliveries(&host).await.is_empty());

        let r = host.json(Method::PUT, &uri, &admin, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let shown = json!({"chat": {"url": "http://chat.example/hook", "secret": "[redacted]"},
                           "ide": {"url": "https://hooks.example/ide", "secret": "[redacted]"}});
        assert_eq!(r.json(), shown);
        assert_eq!(host.get(&uri, &admin).await.json(), shown);
        // The operator reads any tenant's.
        let operator = host.admin("*");
        assert_eq!(host.get(&uri, &operator).await.json(), shown);
        // Stored with the secret; audited without it.
        let stored = host.db.store.get_delivery_targets("acme").await.unwrap();
        assert!(stored.iter().any(|t| t.secret == SECRET));
        let log = host
            .db
            .store
            .list_audit(Scope::Only("acme"), Timestamp::UNIX_EPOCH, 0, 100)
            .await
            .unwrap();
        let entry = log
            .iter()
            .find(|a| a.action == "delivery_targets.updated")
            .expect("audited");
        assert_eq!(entry.after, shown);
        assert!(!format!("{log:?}").contains(SECRET));
        // `{}` removes them, and reads are not served from a stale cache.
        host.json(Method::PUT, &uri, &admin, &json!({})).await;
        assert_eq!(host.get(&uri, &admin).await.json(), json!({}));
    }
}

// ---- delivery ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_goes_once_to_each_targeted_surface_signed() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let host = host(db).await;
        let receiver = Receiver::new(204);
        let base = serve(receiver.clone()).await;
        // `ide` and `chat` have webhooks; `pr_comment` has none.
        put_targets(&host, &base, &["ide", "chat"]).await;
        start(&host, fast()).await;
        let decision = decide(&host, 1).await;
        let actions = decision["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 2, "{decision}");

        // Real time: see `until!`.
        until!(Duration::from_secs(10), "both delivered", {
            all_in(&host, "done").await && receiver.count() >= 2
        });
        let taken = receiver.taken();
        assert_eq!(taken.len(), 2, "one POST per (action, surface): {taken:?}");
        let mut seen = Vec::new();
        for t in &taken {
            assert!(verify(SECRET, t), "the receiver verifies the signature");
            assert!(!verify("wrong", t));
            assert_eq!(t.headers["content-type"], "application/json");
            let body: Value = serde_json::from_str(&t.body).unwrap();
            assert_eq!(
                t.headers["x-mmm-delivery"],
                body["delivery_id"].as_str().unwrap()
            );
            let surface = body["surface"].as_str().unwrap().to_owned();
            let rendered = body["rendered"].as_object().unwrap();
            assert_eq!(rendered.keys().collect::<Vec<_>>(), [&surface], "{body}");
            assert_eq!(body["decision_id"], decision["decision_id"]);
            assert_eq!(body["tenant_id"], "acme");
            assert_eq!(body["actor_id"], "dev-1");
            let action = actions
                .iter()
                .find(|a| a["action_id"] == body["action_id"])
                .expect("an action of the decision");
            assert_eq!(body["title"], action["title"]);
            assert_eq!(body["rendered"][&surface], action["rendered"][&surface]);
            seen.push(surface);
        }
        seen.sort();
        assert_eq!(seen, ["chat", "ide"]);
        for d in deliveries(&host).await {
            assert_eq!((d.attempts, d.last_error.as_deref()), (1, None), "{d:?}");
        }
        assert_eq!(
            metric(
                &host,
                r#"mmm_delivery_attempts_total{channel="ide",result="ok"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            metric(
                &host,
                r#"mmm_delivery_attempts_total{channel="chat",result="ok"}"#
            ),
            Some(1.0)
        );
        // Real time: a short look for a stray second delivery.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(receiver.count(), 2);
        until!(Duration::from_secs(5), "the depth gauge", {
            metric(&host, "mmm_delivery_queue_depth") == Some(0.0)
        });
        stop(&host).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_a_growing_ceiling_then_given_up() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let host = host(db).await;
        let receiver = Receiver::new(500);
        let base = serve(receiver.clone()).await;
        put_targets(&host, &base, &["chat"]).await;
        let config = fast();
        start(&host, config.clone()).await;
        decide(&host, 1).await;

        // Real time: see `until!`.
        until!(Duration::from_secs(10), "given up", {
            all_in(&host, "dead").await
        });
        let taken = receiver.taken();
        assert_eq!(taken.len(), 4, "max_attempts requests, no more");
        let ids: Vec<_> = taken
            .iter()
            .map(|t| t.headers["x-mmm-delivery"].clone())
            .collect();
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "one delivery id on every retry"
        );
        // Each retry waits at most its ceiling (base × 2^(n-1), capped), plus the
        // worker's poll and scheduling slack.
        for (n, pair) in taken.windows(2).enumerate() {
            let gap = pair[1].at - pair[0].at;
            let attempt = u32::try_from(n + 1).unwrap();
            let ceiling = backoff_ceiling(attempt, config.base_backoff, config.max_backoff);
            assert!(
                gap <= ceiling + Duration::from_millis(400),
                "retry {attempt} waited {gap:?}, ceiling {ceiling:?}"
            );
        }
        assert!(backoff_ceiling(2, config.base_backoff, config.max_backoff) > config.base_backoff);
        let rows = deliveries(&host).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].attempts, 4);
        assert_eq!(
            rows[0].last_error.as_deref(),
            Some("the webhook answered 500 Internal Server Error")
        );
        assert_eq!(
            metric(
                &host,
                r#"mmm_delivery_attempts_total{channel="chat",result="failed"}"#
            ),
            Some(4.0)
        );
        assert_eq!(
            metric(&host, r#"mmm_delivery_dead_total{channel="chat"}"#),
            Some(1.0)
        );
        // Real time: a short look for a retry of a dead delivery.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(receiver.count(), 4);
        stop(&host).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_fails_then_succeeds_is_done_once() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let host = host(db).await;
        let receiver = Receiver::new(200);
        receiver.fail_first.store(2, Ordering::SeqCst);
        let base = serve(receiver.clone()).await;
        put_targets(&host, &base, &["ide"]).await;
        start(&host, fast()).await;
        decide(&host, 1).await;
        // Real time: see `until!`.
        until!(Duration::from_secs(10), "delivered", {
            all_in(&host, "done").await
        });
        let rows = deliveries(&host).await;
        assert_eq!(rows[0].attempts, 3, "{rows:?}");
        assert_eq!(receiver.count(), 3);
        assert_eq!(
            metric(
                &host,
                r#"mmm_delivery_attempts_total{channel="ide",result="failed"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            metric(&host, r#"mmm_delivery_dead_total{channel="ide"}"#),
            None
        );
        stop(&host).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_resumes_what_a_stopped_one_left() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let first = host(db).await;
        let receiver = Receiver::new(503);
        let base = serve(receiver.clone()).await;
        put_targets(&first, &base, &["ide", "chat"]).await;
        // Queued with the decision, before any worker runs.
        decide(&first, 1).await;
        let queued = deliveries(&first).await;
        assert_eq!(queued.len(), 2);
        assert!(queued
            .iter()
            .all(|d| d.state == "pending" && d.attempts == 0));

        // A worker that fails once for each, then stops (the host restarting).
        start(
            &first,
            DeliveryConfig {
                base_backoff: Duration::from_millis(300),
                max_backoff: Duration::from_millis(300),
                max_attempts: 100,
                ..fast()
            },
        )
        .await;
        // Real time: see `until!`.
        until!(Duration::from_secs(10), "one failed attempt each", {
            deliveries(&first).await.iter().all(|d| d.attempts >= 1)
        });
        stop(&first).await;
        let attempts = receiver.count();

        // The receiver recovers; a new host on the same store delivers each once more.
        receiver.status.store(200, Ordering::SeqCst);
        let second = host(first.db.shared()).await;
        start(&second, fast()).await;
        // Real time: see `until!`.
        until!(Duration::from_secs(10), "resumed", {
            all_in(&second, "done").await
        });
        assert_eq!(receiver.count(), attempts + 2);
        stop(&second).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_queue_send_each_delivery_once() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let a = host(db).await;
        let b = host(a.db.shared()).await;
        let receiver = Receiver::new(200);
        let base = serve(receiver.clone()).await;
        put_targets(&a, &base, &["ide", "chat"]).await;
        for n in 0..20 {
            decide(&a, n).await;
        }
        start(&a, fast()).await;
        start(&b, fast()).await;
        // Real time: see `until!`.
        until!(Duration::from_secs(20), "all delivered", {
            all_in(&a, "done").await
        });
        let taken = receiver.taken();
        let mut ids: Vec<_> = taken
            .iter()
            .map(|t| t.headers["x-mmm-delivery"].to_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40);
        assert_eq!(taken.len(), 40, "no delivery sent twice");
        stop(&a).await;
        stop(&b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_webhook_gives_its_deliveries_up_unattempted() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let host = host(db).await;
        let receiver = Receiver::new(200);
        let base = serve(receiver.clone()).await;
        put_targets(&host, &base, &["ide"]).await;
        decide(&host, 1).await;
        put_targets(&host, &base, &["chat"]).await;
        start(&host, fast()).await;
        // Real time: see `until!`.
        until!(Duration::from_secs(10), "given up", {
            all_in(&host, "dead").await
        });
        let rows = deliveries(&host).await;
        assert_eq!(rows[0].attempts, 0);
        assert!(rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no webhook for `ide`"));
        assert_eq!(receiver.count(), 0);
        assert_eq!(
            metric(&host, r#"mmm_delivery_dead_total{channel="ide"}"#),
            Some(1.0)
        );
        stop(&host).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_opens_its_breaker_and_recovery_closes_it() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let host = host(db).await;
        let receiver = Receiver::new(503);
        let base = serve(receiver.clone()).await;
        put_targets(&host, &base, &["ide"]).await;
        let open_for = Duration::from_millis(600);
        start(
            &host,
            DeliveryConfig {
                base_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(10),
                max_attempts: 1000,
                breaker: BreakerConfig {
                    failure_threshold: 3,
                    open_for,
                    half_open_probes: 1,
                    success_threshold: 1,
                },
                ..fast()
            },
        )
        .await;
        for n in 0..3 {
            decide(&host, n).await;
        }
        let gauge = r#"mmm_circuit_state{name="delivery:ide"}"#;
        // Real time: see `until!`.
        until!(Duration::from_secs(10), "open", {
            metric(&host, gauge) == Some(1.0)
        });
        // While open, nothing is sent and no attempt is counted.
        // Real time: see `until!` (the last failures' results are being recorded).
        until!(Duration::from_secs(5), "attempts recorded", {
            let attempts: u32 = deliveries(&host).await.iter().map(|d| d.attempts).sum();
            attempts as usize == receiver.count()
        });
        let sent = receiver.count();
        let attempts: u32 = deliveries(&host).await.iter().map(|d| d.attempts).sum();
        // Real time: part of the breaker's open period, which runs on the real clock.
        tokio::time::sleep(open_for / 3).await;
        assert_eq!(receiver.count(), sent, "nothing sent while open");
        let still: u32 = deliveries(&host).await.iter().map(|d| d.attempts).sum();
        assert_eq!(still, attempts, "waiting is not an attempt");
        // Real time: see `until!` (the worker counts the queue when it goes idle).
        until!(Duration::from_secs(5), "the depth while open", {
            metric(&host, "mmm_delivery_queue_depth") == Some(3.0)
        });
        assert!(deliveries(&host)
            .await
            .iter()
            .any(|d| d.last_error.as_deref() == Some("the target's circuit breaker is open")));

        // The receiver recovers: the probe after the open period succeeds, the breaker
        // closes and everything waiting goes out.
        receiver.status.store(200, Ordering::SeqCst);
        // Real time: see `until!`.
        until!(Duration::from_secs(10), "delivered after recovery", {
            all_in(&host, "done").await
        });
        until!(Duration::from_secs(5), "closed", {
            metric(&host, gauge) == Some(0.0)
        });
        assert_eq!(
            metric(&host, r#"mmm_circuit_state{name="delivery:chat"}"#),
            Some(0.0)
        );
        stop(&host).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_retried_without_opening_the_breaker_and_outages_name_themselves() {
    // See `common::TRACES`.
    let _traces = crate::common::TRACES.read().await;
    for db in backends().await {
        let host = host(db).await;
        // `ide` answers 404 (the receiver is up and refuses); `chat` points at a port
        // nothing listens on.
        let receiver = Receiver::new(404);
        let base = serve(receiver.clone()).await;
        let closed = format!("http://127.0.0.1:{}", crate::common::free_port());
        let targets = json!({"ide": {"url": format!("{base}/hooks/ide"), "secret": SECRET},
                             "chat": {"url": format!("{closed}/hooks/chat"), "secret": SECRET}});
        let r = host
            .json(
                Method::PUT,
                &format!("{P}/tenants/acme/delivery"),
                &host.admin("acme"),
                &targets,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        start(
            &host,
            DeliveryConfig {
                breaker: BreakerConfig {
                    failure_threshold: 2,
                    ..BreakerConfig::default()
                },
                ..fast()
            },
        )
        .await;
        decide(&host, 1).await;
        // Real time: see `until!`.
        until!(Duration::from_secs(10), "the refused delivery given up", {
            deliveries(&host)
                .await
                .iter()
                .any(|d| d.surface == "ide" && d.state == "dead")
        });
        let rows = deliveries(&host).await;
        let ide = rows.iter().find(|d| d.surface == "ide").unwrap();
        assert_eq!(
            ide.attempts, 4,
            "every attempt was made: a 4xx never opened the breaker"
        );
        assert_eq!(
            ide.last_error.as_deref(),
            Some("the webhook answered 404 Not Found")
        );
        assert_eq!(receiver.count(), 4);
        assert_eq!(
            metric(&host, r#"mmm_circuit_state{name="delivery:ide"}"#),
            Some(0.0)
        );
        // The unreachable webhook failed twice and its breaker opened: it waits.
        // Real time: see `until!`.
        until!(
            Duration::from_secs(10),
            "the unreachable webhook's breaker open",
            {
                metric(&host, r#"mmm_circuit_state{name="delivery:chat"}"#) == Some(1.0)
                    && deliveries(&host)
                        .await
                        .iter()
                        .any(|d| d.surface == "chat" && d.attempts == 2)
            }
        );
        let rows = deliveries(&host).await;
        let chat = rows.iter().find(|d| d.surface == "chat").unwrap();
        assert_eq!(chat.state, "pending");
        assert!(
            matches!(
                chat.last_error.as_deref(),
                Some("cannot connect to the webhook" | "the target's circuit breaker is open")
            ),
            "{chat:?}"
        );
        assert!(
            !format!("{rows:?}").contains(SECRET),
            "no secret is kept with a delivery"
        );
        stop(&host).await;
    }
}

#[tokio::test]
async fn a_lapsed_claim_cannot_record_and_done_deliveries_are_pruned() {
    use mmm_host::store::{DecisionBatch, DeliveryResult};
    for db in backends().await {
        let s = &db.store;
        let t0 = crate::common::ts(crate::common::NOW);
        let at = |ms: i64| t0 + jiff::SignedDuration::from_millis(ms);
        let row = |id: &str, action: &str| QueuedDelivery {
            id: id.to_owned(),
            tenant: "acme".to_owned(),
            surface: "ide".to_owned(),
            action_id: action.to_owned(),
            decision_id: "dec".to_owned(),
            body: "{}".to_owned(),
            attempts: 0,
            next_attempt_at: t0,
            state: "pending".to_owned(),
            last_error: None,
            created_at: t0,
            traceparent: (id == "d1")
                .then(|| "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        };
        let batch = |rows: Vec<QueuedDelivery>| DecisionBatch {
            deliveries: rows,
            ..DecisionBatch::default()
        };
        s.record_decisions(&batch(vec![row("d1", "a1"), row("d2", "a2")]))
            .await
            .unwrap();
        // The same (action, surface) again (a redelivered signal) is not queued twice.
        s.record_decisions(&batch(vec![row("d3", "a1")]))
            .await
            .unwrap();
        let listed = s.list_deliveries("acme", None, 10).await.unwrap();
        assert_eq!(listed.len(), 2, "{}", db.name);
        // The deciding span's trace context travels with the delivery.
        let d1 = listed.iter().find(|d| d.id == "d1").unwrap();
        assert_eq!(
            d1.traceparent.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(s.delivery_queue_depth().await.unwrap(), 2);

        // Not due yet; then due, claimed by A for 10 s.
        assert!(s
            .claim_deliveries(at(-1), at(10_000), "A", 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            s.claim_deliveries(t0, at(10_000), "A", 10)
                .await
                .unwrap()
                .len(),
            2
        );
        // Nobody else takes them within the lease; B does once it lapsed.
        assert!(s
            .claim_deliveries(at(5_000), at(15_000), "B", 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            s.claim_deliveries(at(11_000), at(21_000), "B", 1)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            s.claim_deliveries(at(11_000), at(21_000), "B", 10)
                .await
                .unwrap()
                .len(),
            1
        );
        // A's late results are refused; B's recorded.
        assert!(!s
            .finish_delivery("d1", "A", &DeliveryResult::Done, at(12_000))
            .await
            .unwrap());
        assert!(s
            .finish_delivery("d1", "B", &DeliveryResult::Done, at(12_000))
            .await
            .unwrap());
        let dead = DeliveryResult::Dead {
            error: "gone".to_owned(),
            attempted: true,
        };
        assert!(s
            .finish_delivery("d2", "B", &dead, at(12_000))
            .await
            .unwrap());
        assert!(!s
            .finish_delivery("d2", "B", &DeliveryResult::Done, at(12_000))
            .await
            .unwrap());
        assert_eq!(s.delivery_queue_depth().await.unwrap(), 0);
        let dead_rows = s.list_deliveries("acme", Some("dead"), 10).await.unwrap();
        assert_eq!(dead_rows.len(), 1);
        assert_eq!(
            (dead_rows[0].attempts, dead_rows[0].last_error.as_deref()),
            (1, Some("gone"))
        );

        // Done ones go after their retention; dead ones stay.
        assert_eq!(s.prune_deliveries(at(12_000)).await.unwrap(), 0);
        assert_eq!(s.prune_deliveries(at(12_001)).await.unwrap(), 1);
        let left = s.list_deliveries("acme", None, 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].state, "dead");
    }
}
