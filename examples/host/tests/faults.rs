//! Faults: the database going away and coming back. While it is away `/ready` fails and
//! decisions and writes answer 503 `UNAVAILABLE` in bounded time (never a 500, never a
//! hang, nothing half-written); when it is back the same host serves again, without a
//! restart. PostgreSQL is reached through a loopback TCP proxy the test stops (every
//! connection cut, new ones refused) and starts again; its sessions are also terminated
//! with `pg_terminate_backend`. SQLite is locked by another process's write transaction.
//! (The pool closed for good is tests/health.rs, tests/decide.rs and tests/audit.rs;
//! Redis is tests of the fatigue store.)

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use mmm_engine::Status;
use parking_lot::Mutex;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::common::{audit, postgres_via, sqlite, version, Host, Reply};

const P: &str = "/v1/mmm";

/// Longest any one answer may take while the database is away: the pools' acquire
/// time-outs (5 s PostgreSQL, busy time-out 5 s SQLite) with room to spare. A bound on
/// a hang, not a measure of speed.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

async fn bounded(what: &str, f: impl std::future::Future<Output = Reply>) -> Reply {
    tokio::time::timeout(ANSWER_WITHIN, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {ANSWER_WITHIN:?}: a hang"))
}

/// A loopback TCP proxy: `stop` cuts every connection and refuses new ones, `start`
/// listens again on the same port.
struct Proxy {
    port: u16,
    target: String,
    task: Option<JoinHandle<()>>,
    /// The local ports of the proxy's connections to the target (PostgreSQL's
    /// `client_port` of each session it carries).
    client_ports: Arc<Mutex<Vec<u16>>>,
}

fn listen(port: u16) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    socket.listen(64).unwrap()
}

impl Proxy {
    fn new(target: String) -> Proxy {
        let mut proxy = Proxy {
            port: 0,
            target,
            task: None,
            client_ports: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.start();
        proxy
    }

    fn start(&mut self) {
        let listener = listen(self.port);
        self.port = listener.local_addr().unwrap().port();
        let target = self.target.clone();
        let ports = Arc::clone(&self.client_ports);
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: every connection is cut when the proxy stops.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        let target = target.clone();
                        let ports = Arc::clone(&ports);
                        connections.spawn(async move {
                            let Ok(mut outbound) = TcpStream::connect(&target).await else {
                                return;
                            };
                            if let Ok(local) = outbound.local_addr() {
                                ports.lock().push(local.port());
                            }
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// `host:port` of `MMM_TEST_POSTGRES_URL`.
fn postgres_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

fn signal(actor: &str) -> Value {
    json!({"signal": {"tenant_id": "acme", "actor_id": actor, "kind": "pr.opened",
                      "occurred_at": "2026-11-24T10:00:00Z"}})
}

/// A host deciding with one published playbook of tenant `acme`.
async fn seeded(db: crate::common::TestDb) -> Host {
    let host = Host::new(db).await;
    let s = &*host.db.store;
    s.insert_playbook(
        &version("acme", "pb", 1, Status::Published),
        &audit("acme", "seed"),
    )
    .await
    .unwrap();
    host.state.live.reload(s).await.unwrap();
    host
}

struct Calls<'a> {
    host: &'a Host,
    service: String,
    admin: String,
}

impl Calls<'_> {
    fn new(host: &Host) -> Calls<'_> {
        Calls {
            host,
            service: host.token("acme", &["service"], "ide-backend"),
            admin: host.admin("acme"),
        }
    }

    async fn ready(&self) -> Reply {
        let uri = format!("{P}/ready");
        bounded(
            "ready",
            self.host.call(Method::GET, &uri, None, None, Body::empty()),
        )
        .await
    }

    async fn decide(&self, actor: &str) -> Reply {
        let uri = format!("{P}/decide");
        bounded(
            "decide",
            self.host.post_json(&uri, &self.service, &signal(actor)),
        )
        .await
    }

    async fn put_policy(&self, max: u32) -> Reply {
        let uri = format!("{P}/tenants/acme/policy");
        let body = json!({"max_actions_per_decision": max});
        bounded(
            "put policy",
            self.host.json(Method::PUT, &uri, &self.admin, &body),
        )
        .await
    }

    async fn policy(&self) -> Value {
        let uri = format!("{P}/tenants/acme/policy");
        let r = bounded("get policy", self.host.get(&uri, &self.admin)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()
    }

    /// Polls `/ready` (at most 30 s) until it answers 200.
    async fn until_ready(&self) {
        // Real time: the database and the proxy run on real time: polled, bounded only to catch a hang.
        let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
        loop {
            let r = self.ready().await;
            if r.status == StatusCode::OK {
                return;
            }
            assert!(r.status.as_u16() == 503, "ready: {} {}", r.status, r.text);
            assert!(
                // Real time: the database and the proxy run on real time: polled, bounded only to catch a hang.
                tokio::time::Instant::now() < deadline,
                "not ready again within {ANSWER_WITHIN:?}: {}",
                r.text
            );
            // Real time: the database and the proxy run on real time: polled, bounded only to catch a hang.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn all_serve(&self, actor: &str, max: u32) {
        let r = self.ready().await;
        assert_eq!(r.status, StatusCode::OK, "ready: {}", r.text);
        let r = self.decide(actor).await;
        assert_eq!(r.status, StatusCode::OK, "decide: {}", r.text);
        let r = self.put_policy(max).await;
        assert_eq!(r.status, StatusCode::OK, "put policy: {}", r.text);
        assert_eq!(self.policy().await["max_actions_per_decision"], max);
    }
}

#[tokio::test]
async fn postgres_going_away_answers_503_and_the_host_recovers_without_restart() {
    let Ok(url) = std::env::var("MMM_TEST_POSTGRES_URL") else {
        // `postgres_via` says why (and fails under CI=true).
        assert!(postgres_via(None).await.is_none());
        return;
    };
    let mut proxy = Proxy::new(postgres_address(&url));
    let host = seeded(postgres_via(Some(proxy.port)).await.unwrap()).await;
    let calls = Calls::new(&host);
    calls.all_serve("dev-1", 2).await;

    proxy.stop().await;
    let ready = calls.ready().await;
    ready.problem(503, "UNAVAILABLE");
    calls.decide("dev-2").await.problem(503, "UNAVAILABLE");
    let refused = calls.put_policy(5).await.problem(503, "UNAVAILABLE");
    assert!(
        !refused.to_string().contains("127.0.0.1"),
        "a 503 shows no internals: {refused}"
    );

    proxy.start();
    calls.until_ready().await;
    // The refused write left nothing behind.
    assert_eq!(calls.policy().await["max_actions_per_decision"], 2);
    calls.all_serve("dev-3", 3).await;
    proxy.stop().await;
}

#[tokio::test]
async fn postgres_sessions_terminated_answer_503_or_serve_never_500() {
    let Ok(url) = std::env::var("MMM_TEST_POSTGRES_URL") else {
        assert!(postgres_via(None).await.is_none());
        return;
    };
    let mut proxy = Proxy::new(postgres_address(&url));
    let host = seeded(postgres_via(Some(proxy.port)).await.unwrap()).await;
    let calls = Calls::new(&host);
    calls.all_serve("dev-1", 2).await;

    // Every session of this host ended by the server (as a failover or an operator does),
    // the server itself still up: found by the proxy's ports, so no other test's.
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let ports: Vec<i32> = proxy
        .client_ports
        .lock()
        .iter()
        .map(|p| i32::from(*p))
        .collect();
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1)",
    )
    .bind(&ports)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "no session of the host was found");
    admin.close().await;

    // A request on a connection that was cut answers 503 at worst, never 500; the pool
    // replaces the connections and the host serves again without a restart.
    for (i, r) in [
        calls.decide("dev-2").await,
        calls.put_policy(4).await,
        calls.ready().await,
    ]
    .iter()
    .enumerate()
    {
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE,
            "request {i}: {} {}",
            r.status,
            r.text
        );
        if r.status != StatusCode::OK {
            r.problem(503, "UNAVAILABLE");
        }
    }
    calls.until_ready().await;
    calls.all_serve("dev-3", 3).await;
    proxy.stop().await;
}

#[tokio::test]
async fn sqlite_locked_by_another_process_answers_503_and_the_host_recovers() {
    let db = sqlite().await;
    let file = db.sqlite_file().unwrap();
    let host = seeded(db).await;
    let calls = Calls::new(&host);
    calls.all_serve("dev-1", 2).await;

    // Another process (a backup tool, a second host on the same file) holds the write
    // lock: writes wait the busy time-out, then answer 503; reads go on.
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    calls.put_policy(5).await.problem(503, "UNAVAILABLE");
    calls.decide("dev-2").await.problem(503, "UNAVAILABLE");
    assert_eq!(calls.ready().await.status, StatusCode::OK, "reads go on");
    assert_eq!(calls.policy().await["max_actions_per_decision"], 2);

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    calls.all_serve("dev-3", 3).await;
}
