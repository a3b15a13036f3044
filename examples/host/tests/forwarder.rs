//! The ERIS forwarder against a mock ERIS on loopback that fails the first calls: every
//! receipt arrives once (deduped by its idempotency key), in order, is marked forwarded,
//! and the forwarder stops cleanly on shutdown, even in the middle of a long backoff.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use mmm_host::forwarder::{spawn, ForwarderConfig};
use mmm_host::metrics::Metrics;
use mmm_host::shutdown::Shutdown;
use mmm_host::store::ReceiptRow;

use crate::common::{backends, ts, NOW};

#[derive(Clone, Default)]
pub struct Eris {
    pub fail_first: Arc<AtomicUsize>,
    /// Answer 400 (a refusal) to everything.
    pub refuse: Arc<std::sync::atomic::AtomicBool>,
    pub posts: Arc<AtomicUsize>,
    /// (idempotency key, body) of every receipt taken, once each.
    pub taken: Arc<Mutex<Vec<(String, String)>>>,
}

async fn take(State(eris): State<Eris>, headers: HeaderMap, body: String) -> StatusCode {
    let n = eris.posts.fetch_add(1, Ordering::SeqCst);
    if eris.refuse.load(Ordering::SeqCst) {
        return StatusCode::BAD_REQUEST;
    }
    if n < eris.fail_first.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut taken = eris.taken.lock().unwrap();
    if !taken.iter().any(|(k, _)| k == key) {
        taken.push((key.to_owned(), body));
    }
    StatusCode::ACCEPTED
}

pub async fn serve(eris: Eris) -> String {
    let app = Router::new()
        .route("/v1/receipts", post(take))
        .with_state(eris);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1/receipts")
}

pub fn row(seq: u64) -> ReceiptRow {
    ReceiptRow {
        chain_id: "chain-a".into(),
        seq,
        receipt_id: format!("rcpt-{seq}"),
        tenant: "acme".into(),
        envelope: format!(
            r#"{{"payloadType":"application/vnd.mmm.receipt+json","payload":"{seq}","signatures":[]}}"#
        ),
        stored_at: ts(NOW),
    }
}

fn fast(url: &str) -> ForwarderConfig {
    ForwarderConfig {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        idle: Duration::from_millis(20),
        batch: 2,
        ..ForwarderConfig::new(url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_eris_once_each_after_failures_and_are_marked() {
    for db in backends().await {
        let eris = Eris::default();
        eris.fail_first.store(3, Ordering::SeqCst);
        let url = serve(eris.clone()).await;
        let rows: Vec<_> = (1..=5).map(row).collect();
        db.store.append_receipts(&rows).await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let shutdown = Shutdown::new();
        let forwarder = spawn(
            Arc::clone(&db.store),
            Arc::clone(&metrics),
            fast(&url),
            &shutdown,
        )
        .await
        .unwrap();
        forwarder.wake();
        // Bounded wait for the outbox to drain.
        let mut left = usize::MAX;
        for _ in 0..500 {
            left = db.store.unforwarded_receipts(100).await.unwrap().len();
            if left == 0 {
                break;
            }
            // Real time: the forwarder is a background task on real time against a real HTTP server: polled, bounded.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(left, 0, "{}: receipts left in the outbox", db.name);
        let taken = eris.taken.lock().unwrap().clone();
        let keys: Vec<_> = taken.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            ["rcpt-1", "rcpt-2", "rcpt-3", "rcpt-4", "rcpt-5"],
            "{}",
            db.name
        );
        assert_eq!(taken[0].1, rows[0].envelope);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"mmm_eris_receipt_emission_total{tenant_id="acme",result="forwarded"} 5"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"mmm_eris_receipt_emission_total{tenant_id="acme",result="failed"} 3"#),
            "{text}"
        );

        // A receipt sent twice (marking failed after ERIS took it) is taken once.
        let again = Eris::default();
        let url = serve(again.clone()).await;
        let client = reqwest::Client::new();
        for _ in 0..2 {
            client
                .post(&url)
                .header("Idempotency-Key", "rcpt-1")
                .body(rows[0].envelope.clone())
                .send()
                .await
                .unwrap();
        }
        assert_eq!(again.taken.lock().unwrap().len(), 1);

        shutdown.begin();
        tokio::time::timeout(
            Duration::from_secs(10),
            shutdown.run_hooks(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_forwarder_in_the_middle_of_a_long_backoff() {
    let db = crate::common::sqlite().await;
    let eris = Eris::default();
    eris.fail_first.store(usize::MAX, Ordering::SeqCst);
    let url = serve(eris.clone()).await;
    db.store.append_receipts(&[row(1)]).await.unwrap();
    let shutdown = Shutdown::new();
    let config = ForwarderConfig {
        base_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        ..fast(&url)
    };
    spawn(
        Arc::clone(&db.store),
        Arc::new(Metrics::new()),
        config,
        &shutdown,
    )
    .await
    .unwrap();
    for _ in 0..500 {
        if eris.posts.load(Ordering::SeqCst) > 0 {
            break;
        }
        // Real time: the forwarder is a background task on real time against a real HTTP server: polled, bounded.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(eris.posts.load(Ordering::SeqCst), 1);
    shutdown.begin();
    // The hook may take a minute; it must return long before (the backoff is an hour).
    tokio::time::timeout(
        Duration::from_secs(10),
        shutdown.run_hooks(Duration::from_secs(60)),
    )
    .await
    .expect("the forwarder's hook did not return");
    // Nothing was lost: the receipt waits for the next start.
    assert_eq!(db.store.unforwarded_receipts(10).await.unwrap().len(), 1);
    let unique: HashSet<_> = eris
        .taken
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert!(unique.is_empty());
}

#[tokio::test]
async fn an_eris_url_that_is_not_http_names_its_flag() {
    let db = crate::common::sqlite().await;
    let e = spawn(
        Arc::clone(&db.store),
        Arc::new(Metrics::new()),
        ForwarderConfig::new("file:///tmp/x"),
        &Shutdown::new(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("--eris-url"), "{e}");
}

/// A receipt ERIS refuses (4xx) is counted `refused` and stays in the outbox (retried),
/// and the receipts after it wait: order is kept, nothing is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_receipts_stay_in_the_outbox_and_are_counted() {
    let db = crate::common::sqlite().await;
    let eris = Eris::default();
    eris.refuse.store(true, Ordering::SeqCst);
    let url = serve(eris.clone()).await;
    db.store.append_receipts(&[row(1), row(2)]).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let shutdown = Shutdown::new();
    spawn(
        Arc::clone(&db.store),
        Arc::clone(&metrics),
        fast(&url),
        &shutdown,
    )
    .await
    .unwrap();
    let refused = r#"mmm_eris_receipt_emission_total{tenant_id="acme",result="refused"} "#;
    for _ in 0..500 {
        if eris.posts.load(Ordering::SeqCst) >= 3 {
            break;
        }
        // Real time: the forwarder is a background task on real time against a real HTTP server: polled, bounded.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(eris.posts.load(Ordering::SeqCst) >= 3);
    assert!(metrics.render().contains(refused), "{}", metrics.render());
    assert_eq!(db.store.unforwarded_receipts(10).await.unwrap().len(), 2);
    // ERIS accepts again: everything goes, in order.
    eris.refuse.store(false, Ordering::SeqCst);
    for _ in 0..500 {
        if db.store.unforwarded_receipts(10).await.unwrap().is_empty() {
            break;
        }
        // Real time: the forwarder is a background task on real time against a real HTTP server: polled, bounded.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let keys: Vec<_> = eris
        .taken
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(keys, ["rcpt-1", "rcpt-2"]);
    shutdown.begin();
    tokio::time::timeout(
        Duration::from_secs(10),
        shutdown.run_hooks(Duration::from_secs(60)),
    )
    .await
    .unwrap();
}
