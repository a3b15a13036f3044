//! Fatigue in the host: the store-backed port (SQLite, PostgreSQL) and the Redis script
//! give the core's in-memory verdicts, never let two engines both pass a limit of one,
//! set TTLs, and fail fast (held back, never a hang) when Redis is down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration as StdDuration;

use jiff::Timestamp;
use mmm_engine::{
    DecideOptions, Duration, Engine, FatigueRequest, FatigueStore, FatigueVerdict, InMemoryFatigue,
    PlaybookSet,
};
use mmm_host::fatigue::{budget_key, firings_key, RedisFatigue, StoreFatigue};
use serde_json::{json, Value};
use tokio::runtime::Handle;

use crate::common::{backends, ts, NOW};

static REDIS_SKIP: Once = Once::new();
static PREFIXES: AtomicUsize = AtomicUsize::new(0);

/// The test Redis URL, or `None` (skipped with a message; a failure under `CI=true`).
pub fn redis_url() -> Option<String> {
    if let Ok(url) = std::env::var("MMM_TEST_REDIS_URL") {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "MMM_TEST_REDIS_URL is not set under CI=true: the Redis fatigue tests must run"
    );
    REDIS_SKIP.call_once(|| {
        eprintln!("note: MMM_TEST_REDIS_URL is not set; Redis fatigue tests skipped");
    });
    None
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    format!(
        "test:{}:{}:{}:",
        std::process::id(),
        PREFIXES.fetch_add(1, Ordering::SeqCst),
        Timestamp::now().as_millisecond()
    )
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes every key under `prefix`.
async fn clean(url: &str, prefix: &str) {
    let mut conn = redis_conn(url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

fn redis_store(url: &str, prefix: &str) -> Arc<RedisFatigue> {
    Arc::new(
        RedisFatigue::connect(url, Handle::current(), StdDuration::from_secs(2), prefix).unwrap(),
    )
}

/// One step of a case: seconds after NOW, playbook, actions wanted, cooldown, max,
/// budget, critical.
type Step = (
    i64,
    &'static str,
    u32,
    Option<&'static str>,
    Option<(u32, &'static str)>,
    Option<(u32, &'static str)>,
    bool,
);

fn cases() -> Vec<(&'static str, Vec<Step>)> {
    let cd = Some("1h");
    let day2 = Some((2, "1d"));
    let b3 = Some((3, "1d"));
    vec![
        (
            "cooldown",
            vec![
                (0, "a", 1, cd, None, None, false),
                (3599, "a", 1, cd, None, None, false),
                (3600, "a", 1, cd, None, None, false),
                (3601, "b", 1, cd, None, None, false),
            ],
        ),
        (
            "max per window",
            vec![
                (0, "a", 1, None, day2, None, false),
                (3600, "a", 1, None, day2, None, false),
                (7200, "a", 1, None, day2, None, false),
                (86_400, "a", 1, None, day2, None, false),
                (86_401, "a", 1, None, day2, None, false),
            ],
        ),
        (
            "budget across playbooks, critical spared",
            vec![
                (0, "a", 2, None, None, b3, false),
                (1, "b", 2, None, None, b3, false),
                (2, "c", 1, None, None, b3, false),
                (3, "d", 1, None, None, b3, true),
                (4, "e", 1, None, None, b3, false),
                (86_401, "e", 5, None, None, b3, false),
            ],
        ),
        (
            "replay out of order",
            vec![
                (7200, "a", 1, cd, None, None, false),
                (0, "a", 1, cd, None, None, false),
                (3000, "a", 1, cd, None, None, false),
                (10_800, "a", 1, cd, None, None, false),
            ],
        ),
        (
            // Two replicas' decisions reach the store in any order: the later `now`
            // checked first still counts against the earlier one.
            "a concurrent decision's later firing counts: max",
            vec![
                (1, "a", 1, None, Some((1, "1d")), None, false),
                (0, "a", 1, None, Some((1, "1d")), None, false),
            ],
        ),
        (
            "a concurrent decision's later firing counts: cooldown",
            vec![
                (1, "a", 1, cd, None, None, false),
                (0, "a", 1, cd, None, None, false),
            ],
        ),
        (
            "a concurrent decision's later firing counts: budget",
            vec![
                (1, "a", 1, None, None, Some((1, "1d")), false),
                (0, "b", 1, None, None, Some((1, "1d")), false),
            ],
        ),
        (
            "cooldown, max and budget together",
            vec![
                (0, "a", 2, cd, Some((1, "1d")), Some((2, "1h")), false),
                (60, "b", 1, None, None, Some((2, "1h")), false),
                (3600, "b", 1, None, None, Some((2, "1h")), false),
                (3601, "a", 1, cd, Some((1, "1d")), Some((2, "1h")), false),
                (86_400, "a", 3, cd, Some((1, "1d")), Some((2, "1h")), false),
            ],
        ),
        (
            "no limits: allowed and not recorded",
            vec![
                (0, "a", 3, None, None, None, false),
                (1, "a", 1, cd, None, None, false),
            ],
        ),
    ]
}

fn dur(s: Option<&str>) -> Option<Duration> {
    s.map(|s| Duration::parse(s).unwrap())
}

fn limit(l: Option<(u32, &str)>) -> Option<(u32, Duration)> {
    l.map(|(n, w)| (n, Duration::parse(w).unwrap()))
}

/// The verdicts `store` gives for every case (run on a blocking thread, as the engine).
async fn verdicts(store: Arc<dyn FatigueStore>, actor_tag: String) -> Vec<Vec<FatigueVerdict>> {
    tokio::task::spawn_blocking(move || {
        let base = ts(NOW);
        cases()
            .into_iter()
            .enumerate()
            .map(|(i, (_, steps))| {
                let actor = format!("dev-{actor_tag}-{i}");
                steps
                    .into_iter()
                    .map(|(at, pb, actions, cooldown, max, budget, critical)| {
                        let req = FatigueRequest {
                            tenant_id: "acme",
                            actor_id: &actor,
                            playbook_id: pb,
                            now: base + jiff::SignedDuration::from_secs(at),
                            actions,
                            cooldown: dur(cooldown),
                            max: limit(max),
                            budget: limit(budget),
                            critical,
                        };
                        store.check_and_record(&req).unwrap()
                    })
                    .collect()
            })
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_redis_give_the_core_verdicts() {
    let expected = verdicts(Arc::new(InMemoryFatigue::new()), "mem".into()).await;
    // The table exercises every verdict.
    let flat: Vec<_> = expected.iter().flatten().collect();
    for v in [
        FatigueVerdict::Cooldown,
        FatigueVerdict::Max,
        FatigueVerdict::Budget,
        FatigueVerdict::Allowed(1),
        FatigueVerdict::Allowed(2),
    ] {
        assert!(flat.contains(&&v), "{v:?} not exercised: {expected:?}");
    }
    // Whatever the order the checks arrive in, a limit of one passes once.
    let concurrent: Vec<_> = cases()
        .iter()
        .zip(&expected)
        .filter(|((name, _), _)| name.starts_with("a concurrent decision"))
        .map(|(_, verdicts)| verdicts.clone())
        .collect();
    use FatigueVerdict::{Allowed, Budget, Cooldown, Max};
    assert_eq!(
        concurrent,
        [
            vec![Allowed(1), Max],
            vec![Allowed(1), Cooldown],
            vec![Allowed(1), Budget]
        ]
    );
    for db in backends().await {
        let store = Arc::new(StoreFatigue::new(
            Arc::clone(&db.store),
            Handle::current(),
            StdDuration::from_secs(5),
        ));
        let got = verdicts(store, db.name.into()).await;
        for ((name, _), (want, got)) in cases().iter().zip(expected.iter().zip(&got)) {
            assert_eq!(want, got, "{}: case `{name}`", db.name);
        }
    }
    if let Some(url) = redis_url() {
        let prefix = unique_prefix();
        let got = verdicts(redis_store(&url, &prefix), "redis".into()).await;
        clean(&url, &prefix).await;
        for ((name, _), (want, got)) in cases().iter().zip(expected.iter().zip(&got)) {
            assert_eq!(want, got, "redis: case `{name}`");
        }
    }
}

const MAX_ONE: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: once-a-day, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  fatigue: {max: 1, window: 1d}
  actions:
    - type: mirror
      surfaces: [ide]
      title: Opened
      text: "Once a day."
"#;

pub fn engine_with(fatigue: Arc<dyn FatigueStore>) -> Engine {
    Engine::builder()
        .playbooks(PlaybookSet::from_yaml(MAX_ONE).unwrap())
        .fatigue(fatigue)
        .build()
}

pub fn signal(actor: &str) -> Value {
    json!({"tenant_id": "acme", "actor_id": actor, "kind": "pr.opened", "occurred_at": NOW})
}

/// Decides `n` times for one actor, alternating between the engines, all at once on
/// blocking threads; returns the decisions.
async fn concurrent(engines: &[Arc<Engine>], actor: &str, n: usize) -> Vec<Value> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let engine = Arc::clone(&engines[i % engines.len()]);
            let s = signal(actor);
            tokio::task::spawn_blocking(move || {
                let options = DecideOptions {
                    now: Some(ts(NOW)),
                    ..DecideOptions::default()
                };
                serde_json::to_value(engine.decide(&s, None, &options).unwrap()).unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn acted(decisions: &[Value]) -> usize {
    decisions
        .iter()
        .map(|d| d["actions"].as_array().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_redis_pass_a_limit_of_one_exactly_once() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    // Two replicas: each its own engine and its own Redis connection.
    let engines = [
        Arc::new(engine_with(redis_store(&url, &prefix))),
        Arc::new(engine_with(redis_store(&url, &prefix))),
    ];
    let decisions = concurrent(&engines, "dev-1", 200).await;
    assert_eq!(acted(&decisions), 1);
    let max_reasons = decisions
        .iter()
        .flat_map(|d| d["suppressed"].as_array().unwrap().clone())
        .filter(|s| s["reason"] == "fatigue_max")
        .count();
    assert_eq!(max_reasons, 199);

    // The keys expire when the window they serve ends.
    let mut conn = redis_conn(&url).await;
    let key = firings_key(&prefix, "acme", "dev-1", "once-a-day");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 86_400_000, "{key}: {ttl}");
    let members: i64 = redis::cmd("ZCARD")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, 1);
    clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_database_pass_a_limit_of_one_exactly_once() {
    for db in backends().await {
        let engines: Vec<_> = (0..2)
            .map(|_| {
                Arc::new(engine_with(Arc::new(StoreFatigue::new(
                    Arc::clone(&db.store),
                    Handle::current(),
                    StdDuration::from_secs(30),
                ))))
            })
            .collect();
        let decisions = concurrent(&engines, "dev-1", 200).await;
        assert_eq!(acted(&decisions), 1, "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_key_gets_the_budget_window_as_ttl() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = redis_store(&url, &prefix);
    let verdict = tokio::task::spawn_blocking(move || {
        store.check_and_record(&FatigueRequest {
            tenant_id: "acme",
            actor_id: "dev-2",
            playbook_id: "pb",
            now: Timestamp::now(),
            actions: 2,
            cooldown: Some(Duration::parse("10m").unwrap()),
            max: None,
            budget: Some((5, Duration::parse("1h").unwrap())),
            critical: false,
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(verdict, FatigueVerdict::Allowed(2));
    let conn = redis_conn(&url).await;
    let ttl = |key: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("PTTL")
                .arg(&key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let budget = ttl(budget_key(&prefix, "acme", "dev-2")).await;
    assert!(budget > 3_000_000 && budget <= 3_600_000, "{budget}");
    let firings = ttl(firings_key(&prefix, "acme", "dev-2", "pb")).await;
    assert!(firings > 0 && firings <= 600_000, "{firings}");
    clean(&url, &prefix).await;
}

/// A decision against a Redis that is down (nothing listening) or hangs (accepts and
/// never answers) comes back within the timeout, its actions held back as the core says
/// for a fatigue store that cannot answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_or_hanging_holds_actions_back_without_hanging() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_addr = hanging.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = hanging.accept().await {
            open.push(sock);
        }
    });
    for addr in [closed, hanging_addr] {
        let store = Arc::new(
            RedisFatigue::connect(
                &format!("redis://{addr}"),
                Handle::current(),
                StdDuration::from_millis(300),
                "",
            )
            .unwrap(),
        );
        let engine = Arc::new(engine_with(store));
        let decisions = tokio::time::timeout(
            StdDuration::from_secs(20),
            concurrent(&[engine], "dev-3", 2),
        )
        .await
        .expect("a decision hung on Redis");
        for d in decisions {
            assert_eq!(d["actions"], json!([]), "{d}");
            let s = &d["suppressed"][0];
            assert_eq!(s["reason"], "fatigue_cooldown", "{d}");
            let detail = s["detail"].as_str().unwrap();
            assert!(
                detail.contains("unavailable") && detail.contains("held back"),
                "{detail}"
            );
        }
    }
    held.abort();
}

/// `/ready` answers 503 while Redis (holding fatigue) is down, 200 when it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_fails_while_redis_is_down() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use mmm_host::fatigue::HostFatigue;
    use tower::ServiceExt;

    let host = crate::common::Host::new(crate::common::sqlite().await).await;
    let ready = |fatigue: Arc<RedisFatigue>| {
        let app = mmm_host::app(host.state.clone().with_fatigue(HostFatigue::Redis(fatigue)));
        async move {
            let response = app
                .oneshot(Request::get("/v1/mmm/ready").body(Body::empty()).unwrap())
                .await
                .unwrap();
            response.status()
        }
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = Arc::new(
        RedisFatigue::connect(
            &format!("redis://{closed}"),
            Handle::current(),
            StdDuration::from_millis(300),
            "",
        )
        .unwrap(),
    );
    assert_eq!(ready(down).await, StatusCode::SERVICE_UNAVAILABLE);
    if let Some(url) = redis_url() {
        assert_eq!(ready(redis_store(&url, "")).await, StatusCode::OK);
    }
}

/// A TCP proxy to `target` on `addr` (port 0: any), stopped by aborting its task (which
/// drops the listener and every connection).
async fn proxy(
    addr: std::net::SocketAddr,
    target: String,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            conns.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, task)
}

/// Redis going away and coming back: checks fail fast while it is away, and succeed
/// again afterwards without a new store (no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatigue_recovers_when_redis_comes_back() {
    let Some(url) = redis_url() else { return };
    let target = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let (addr, task) = proxy("127.0.0.1:0".parse().unwrap(), target.clone()).await;
    let prefix = unique_prefix();
    let store = Arc::new(
        RedisFatigue::connect(
            &format!("redis://{addr}"),
            Handle::current(),
            StdDuration::from_millis(500),
            &prefix,
        )
        .unwrap(),
    );
    let check = |store: Arc<RedisFatigue>, actor: &'static str| {
        tokio::task::spawn_blocking(move || {
            store.check_and_record(&FatigueRequest {
                tenant_id: "acme",
                actor_id: actor,
                playbook_id: "pb",
                now: ts(NOW),
                actions: 1,
                cooldown: None,
                max: Some((1, Duration::parse("1d").unwrap())),
                budget: None,
                critical: false,
            })
        })
    };
    assert_eq!(
        check(Arc::clone(&store), "a").await.unwrap().unwrap(),
        FatigueVerdict::Allowed(1)
    );
    task.abort();
    let _ = task.await;
    let down = check(Arc::clone(&store), "b").await.unwrap();
    assert!(down.is_err(), "{down:?}");
    // Back on the same address.
    let (_, task) = proxy(addr, target).await;
    let mut verdict = None;
    for _ in 0..50 {
        if let Ok(v) = check(Arc::clone(&store), "a").await.unwrap() {
            verdict = Some(v);
            break;
        }
        // Real time: Redis comes back on real time (a real server behind a proxy): polled, bounded.
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // The state survived: `a` already fired today.
    assert_eq!(verdict, Some(FatigueVerdict::Max));
    task.abort();
    clean(&url, &prefix).await;
}

const COOLDOWN: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: hourly, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  fatigue: {cooldown: 1h}
  actions:
    - type: mirror
      surfaces: [ide]
      title: Opened
      text: "At most hourly."
"#;

fn cooldown_engine(fatigue: Arc<dyn FatigueStore>) -> Arc<Engine> {
    Arc::new(
        Engine::builder()
            .playbooks(PlaybookSet::from_yaml(COOLDOWN).unwrap())
            .fatigue(fatigue)
            .build(),
    )
}

/// A host's life on one SQLite file: the in-memory fatigue authority loaded from it, and
/// a decision log writing the authority's firings.
async fn sqlite_life(
    url: &str,
) -> (
    Arc<dyn mmm_host::store::Store>,
    Arc<mmm_host::fatigue::MemoryFatigue>,
    Arc<mmm_host::receipts::DecisionLog>,
) {
    let store: Arc<dyn mmm_host::store::Store> = Arc::new(
        mmm_host::store::sqlite::SqliteStore::connect(url)
            .await
            .unwrap(),
    );
    let fatigue = Arc::new(mmm_host::fatigue::MemoryFatigue::new());
    fatigue.load(&*store, 1000).await.unwrap();
    let log = mmm_host::receipts::DecisionLog::start_with_journal(
        Arc::clone(&store),
        None,
        StdDuration::from_millis(1),
        Some(Arc::clone(fatigue.journal())),
    );
    (store, fatigue, log)
}

fn empty_record() -> mmm_host::receipts::DecisionRecord {
    mmm_host::receipts::DecisionRecord {
        receipt: None,
        actions: Vec::new(),
        approvals: Vec::new(),
        counts: ("acme".to_owned(), ts(NOW), Vec::new()),
        seen_signal: None,
        deliveries: Vec::new(),
    }
}

fn reasons(decisions: &[Value]) -> Vec<String> {
    decisions
        .iter()
        .flat_map(|d| d["suppressed"].as_array().unwrap().clone())
        .map(|s| s["reason"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_fatigue_authority_keeps_a_cooldown_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mmm.db").display());

    // Not loaded yet: held back, never a nag.
    let unloaded = mmm_host::fatigue::MemoryFatigue::new();
    let req = FatigueRequest {
        tenant_id: "acme",
        actor_id: "dev-1",
        playbook_id: "hourly",
        now: ts(NOW),
        actions: 1,
        cooldown: dur(Some("1h")),
        max: None,
        budget: None,
        critical: false,
    };
    assert!(unloaded.check_and_record(&req).is_err());

    // First life: 20 concurrent decisions for one actor, one acts; a decision submitted
    // after them commits (its batch carries the firing).
    let (store, fatigue, log) = sqlite_life(&url).await;
    let engine = cooldown_engine(Arc::clone(&fatigue) as Arc<dyn FatigueStore>);
    let first = concurrent(&[engine], "dev-1", 20).await;
    assert_eq!(acted(&first), 1);
    assert_eq!(
        reasons(&first)
            .iter()
            .filter(|r| *r == "fatigue_cooldown")
            .count(),
        19
    );
    assert_eq!(log.submit(empty_record()).await.unwrap(), Ok(()));
    assert!(fatigue.journal().is_empty());
    drop(log);
    store.close().await;

    // Second life on the same file: the cooldown holds for that actor, not for others.
    let (store, fatigue, log) = sqlite_life(&url).await;
    let engine = cooldown_engine(Arc::clone(&fatigue) as Arc<dyn FatigueStore>);
    let again = concurrent(&[Arc::clone(&engine)], "dev-1", 3).await;
    assert_eq!(acted(&again), 0);
    assert_eq!(reasons(&again), ["fatigue_cooldown"; 3]);
    let other = concurrent(&[engine], "dev-2", 1).await;
    assert_eq!(acted(&other), 1);

    // A firing with no decision after it is written too (the journal wakes the log).
    assert!(log.flush(StdDuration::from_secs(10)).await);
    assert!(fatigue.journal().is_empty());
    drop(log);
    store.close().await;
    let (store, fatigue, _log) = sqlite_life(&url).await;
    let engine = cooldown_engine(Arc::clone(&fatigue) as Arc<dyn FatigueStore>);
    let third = concurrent(&[engine], "dev-2", 2).await;
    assert_eq!(acted(&third), 0);
    store.close().await;
}
