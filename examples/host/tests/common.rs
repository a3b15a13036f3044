//! The harness: every test runs on each backend — SQLite in a temporary directory always,
//! PostgreSQL in a fresh schema when `MMM_TEST_POSTGRES_URL` is set (skipped with a
//! message when it is not; a failure under `CI=true`) — and drives `app(state)` with
//! `oneshot`, no socket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use jiff::Timestamp;
use mmm_engine::Status;
use mmm_host::auth::{Claims, KeySet, LocalKey, Verifier};
use mmm_host::store::postgres::PgStore;
use mmm_host::store::sqlite::SqliteStore;
use mmm_host::store::{NewAudit, PlaybookMeta, PlaybookVersion, Store};
use mmm_host::{app, AppState, Settings};
use serde_json::Value;
use tower::ServiceExt;

/// A store on one backend, removed when dropped.
pub struct TestDb {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((url, schema)) = self.pg.take() else {
            return;
        };
        // Dropped from sync code (also after a panic): a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    // The test's runtime is gone: end its sessions (an open transaction
                    // would hold locks the drop waits for).
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                    )
                    .bind(&schema)
                    .execute(&pool)
                    .await;
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

impl TestDb {
    /// The same store, for a second replica (dropping it removes nothing).
    pub fn shared(&self) -> TestDb {
        TestDb {
            name: self.name,
            store: Arc::clone(&self.store),
            _dir: None,
            pg: None,
        }
    }
}

impl TestDb {
    /// The SQLite file, for a test that opens it beside the host.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("mmm.db"))
    }
}

static SKIP_NOTE: Once = Once::new();

/// Held by the tests that load the machine (real processes under hundreds of concurrent
/// requests, thousands of hostile requests): they run one at a time, so that none of them
/// starves another's bounded waits on a 2-core machine. The other tests run beside them.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Held (write) by the test that exports traces through a scoped subscriber, and (read)
/// by the tests that run a delivery worker. Observed: a worker's spans and events,
/// created on other threads under no subscriber while that test's scoped one is alive,
/// leave its spans disabled (no trace context), through state tracing shares across the
/// test binary. One process has one global subscriber, so the host itself is not exposed.
pub static TRACES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mmm.db").display());
    TestDb {
        name: "sqlite",
        store: Arc::new(SqliteStore::connect(&url).await.unwrap()),
        _dir: Some(dir),
        pg: None,
    }
}

pub async fn postgres() -> Option<TestDb> {
    postgres_via(None).await
}

/// PostgreSQL reached through `127.0.0.1:port` (a proxy a test stops and starts) instead
/// of the URL's own address; the schema is still dropped through the URL.
pub async fn postgres_via(port: Option<u16>) -> Option<TestDb> {
    let Ok(url) = std::env::var("MMM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "MMM_TEST_POSTGRES_URL is not set under CI=true: the PostgreSQL store tests must run"
        );
        SKIP_NOTE.call_once(|| {
            eprintln!("note: MMM_TEST_POSTGRES_URL is not set; PostgreSQL store tests skipped");
        });
        return None;
    };
    let schema = format!(
        "mmm_test_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::SeqCst),
        Timestamp::now().as_millisecond() % 100_000
    );
    let store_url = match port {
        None => url.clone(),
        Some(port) => {
            let (scheme, rest) = url.split_once("://").unwrap();
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
            format!(
                "{scheme}://{}127.0.0.1:{port}/{path}",
                user.unwrap_or_default()
            )
        }
    };
    let store = PgStore::connect(&store_url, Some(&schema))
        .await
        .unwrap_or_else(|e| panic!("MMM_TEST_POSTGRES_URL is set but unusable: {e}"));
    Some(TestDb {
        name: "postgres",
        store: Arc::new(store),
        _dir: None,
        pg: Some((url, schema)),
    })
}

/// Every backend available: SQLite, and PostgreSQL when configured.
pub async fn backends() -> Vec<TestDb> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub const NOW: &str = "2026-11-22T10:00:00Z";

pub fn playbook_yaml(tenant: &str, id: &str, version: u32, status: &str, text: &str) -> String {
    format!(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata:\n  id: {id}\n  version: {version}\n  tenant: \"{tenant}\"\n  status: {status}\n  category: general\nspec:\n  triggers: [pr.opened]\n  actions:\n    - type: mirror\n      surfaces: [ide]\n      title: Opened\n      text: \"{text}\"\n"
    )
}

pub fn version(tenant: &str, id: &str, v: u32, status: Status) -> PlaybookVersion {
    let now = ts(NOW);
    PlaybookVersion {
        meta: PlaybookMeta {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            version: v,
            status,
            author: "tester".to_owned(),
            created_at: now,
            updated_at: now,
            published_at: (status == Status::Published).then_some(now),
        },
        yaml: playbook_yaml(
            tenant,
            id,
            v,
            status.as_str(),
            &format!("{id} version {v} fired."),
        ),
    }
}

pub fn audit(tenant: &str, action: &str) -> NewAudit {
    NewAudit::new(
        ts(NOW),
        tenant,
        "tester",
        action,
        "subject",
        Value::Null,
        Value::Null,
    )
}

/// A host on a store, with a fixed local key for tokens.
pub struct Host {
    pub app: Router,
    pub state: AppState,
    pub db: TestDb,
    key: LocalKey,
}

pub const KEY_SEED: [u8; 32] = [7; 32];

/// The seed receipts are signed with in tests.
pub const RECEIPT_SEED: [u8; 32] = [11; 32];

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts a problem-details answer with this status and code.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert!(body["type"]
            .as_str()
            .unwrap()
            .starts_with("https://mmm-engine.dev/problems/"));
        body
    }
}

impl Host {
    pub async fn new(db: TestDb) -> Host {
        Host::with_settings(
            db,
            Settings {
                body_limit: 64 * 1024,
                ..Settings::default()
            },
        )
        .await
    }

    pub async fn with_settings(db: TestDb, settings: Settings) -> Host {
        let key = LocalKey::from_seed(KEY_SEED);
        let verifier = Verifier::new(KeySet::fixed(vec![key.verification_key()]), None, None);
        let state = AppState::new(Arc::clone(&db.store), verifier, settings);
        state.live.reload(&*db.store).await.unwrap();
        Host {
            app: app(state.clone()),
            state,
            db,
            key,
        }
    }

    /// A host deciding with the bundled library (imported into the store) and signing
    /// receipts with [`RECEIPT_SEED`] on the chain `chain` (resumed when stored).
    pub async fn signing(db: TestDb, chain: &str) -> Host {
        let key = LocalKey::from_seed(KEY_SEED);
        let verifier = Verifier::new(KeySet::fixed(vec![key.verification_key()]), None, None);
        let library = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks");
        mmm_host::live::import_seed(&*db.store, &library, Timestamp::now())
            .await
            .unwrap();
        let signing = mmm_engine::receipt::SigningKey::from_bytes(&RECEIPT_SEED);
        let (signer, chain) = mmm_host::engine_setup::open_chain(&*db.store, signing, chain)
            .await
            .unwrap();
        let engine = mmm_engine::Engine::builder()
            .audit(Arc::new(mmm_host::live::LogAudit))
            .receipt_signer(signer)
            .build();
        let settings = Settings {
            body_limit: 64 * 1024,
            ..Settings::default()
        };
        let state = AppState::with_engine(Arc::clone(&db.store), verifier, settings, engine)
            .with_chain(Some(chain), std::time::Duration::from_millis(2));
        state.live.reload(&*db.store).await.unwrap();
        Host {
            app: app(state.clone()),
            state,
            db,
            key,
        }
    }

    /// A host whose engine (built by `build` from a builder holding the audit log, the
    /// receipt signer on `chain` and the metrics observer) feeds `metrics`, as `serve`
    /// wires it; `playbooks` (YAML documents) are imported first.
    pub async fn observed(
        db: TestDb,
        chain: &str,
        playbooks: &str,
        metrics: Arc<mmm_host::metrics::Metrics>,
        build: impl FnOnce(mmm_engine::EngineBuilder) -> mmm_engine::EngineBuilder,
    ) -> Host {
        let key = LocalKey::from_seed(KEY_SEED);
        let verifier = Verifier::new(KeySet::fixed(vec![key.verification_key()]), None, None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("playbooks.yaml"), playbooks).unwrap();
        mmm_host::live::import_seed(&*db.store, dir.path(), Timestamp::now())
            .await
            .unwrap();
        let signing = mmm_engine::receipt::SigningKey::from_bytes(&RECEIPT_SEED);
        let (signer, chain) = mmm_host::engine_setup::open_chain(&*db.store, signing, chain)
            .await
            .unwrap();
        let engine = build(
            mmm_engine::Engine::builder()
                .audit(Arc::new(mmm_host::live::LogAudit))
                .receipt_signer(signer)
                .observer(metrics.observer()),
        )
        .build();
        let settings = Settings {
            body_limit: 64 * 1024,
            ..Settings::default()
        };
        let state = AppState::with_engine_and_metrics(
            Arc::clone(&db.store),
            verifier,
            settings,
            engine,
            metrics,
        )
        .with_chain(Some(chain), std::time::Duration::from_millis(2));
        state.live.reload(&*db.store).await.unwrap();
        Host {
            app: app(state.clone()),
            state,
            db,
            key,
        }
    }

    /// A second replica on the same store.
    pub async fn new_on(other: &Host) -> Host {
        Host::new(other.db.shared()).await
    }

    pub fn token(&self, tenant: &str, roles: &[&str], sub: &str) -> String {
        self.key.mint(&claims(tenant, roles, sub, 3600)).unwrap()
    }

    pub fn admin(&self, tenant: &str) -> String {
        self.token(tenant, &["admin"], &format!("admin@{tenant}"))
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let response = self
            .app
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Any request, as built.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A request with extra headers (`If-Match`, `Accept`…).
    pub async fn call_with(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let response = self
            .app
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A JSON request.
    pub async fn json(&self, method: Method, uri: &str, token: &str, body: &Value) -> Reply {
        self.call(
            method,
            uri,
            Some(token),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Reply {
        self.call(Method::GET, uri, Some(token), None, Body::empty())
            .await
    }

    pub async fn post_yaml(&self, uri: &str, token: &str, yaml: &str) -> Reply {
        self.call(
            Method::POST,
            uri,
            Some(token),
            Some("application/yaml"),
            yaml.to_owned(),
        )
        .await
    }

    pub async fn post_json(&self, uri: &str, token: &str, body: &Value) -> Reply {
        self.call(
            Method::POST,
            uri,
            Some(token),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    pub async fn post(&self, uri: &str, token: &str) -> Reply {
        self.call(Method::POST, uri, Some(token), None, Body::empty())
            .await
    }
}

pub fn claims(tenant: &str, roles: &[&str], sub: &str, ttl: i64) -> Claims {
    let now = Timestamp::now().as_second();
    Claims {
        tenant_id: tenant.to_owned(),
        sub: sub.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        exp: u64::try_from(now + ttl).unwrap_or(0),
        iat: Some(u64::try_from(now).unwrap()),
        iss: None,
        aud: None,
    }
}

/// Each backend's host.
pub async fn hosts() -> Vec<Host> {
    let mut out = Vec::new();
    for db in backends().await {
        out.push(Host::new(db).await);
    }
    out
}

/// What the store holds that a refused request must not change.
pub async fn snapshot(store: &dyn Store) -> String {
    let playbooks = store
        .list_playbooks(mmm_host::store::Scope::All, None)
        .await
        .unwrap();
    let audit = store
        .list_audit(
            mmm_host::store::Scope::All,
            Timestamp::UNIX_EPOCH,
            0,
            10_000,
        )
        .await
        .unwrap();
    format!(
        "{playbooks:?}\n{audit:?}\n{}",
        store.playbook_revision().await.unwrap()
    )
}

// ---- the binary itself, for the tests that start real processes ------------------------

/// A free loopback port (bound and released; the host binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A receipt signing key as `mmm keygen` writes it (the hex seed, and the hex public key
/// beside it in `.pub`): the two paths.
pub fn key_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (seed, public) = mmm_engine::receipt::generate_key();
    let key = dir.join("receipts.key");
    let public_path = dir.join("receipts.key.pub");
    std::fs::write(&key, format!("{seed}\n")).unwrap();
    std::fs::write(&public_path, format!("{public}\n")).unwrap();
    (key, public_path)
}

/// Waits until `GET {base}/ready` answers 2xx, polling every 50 ms for at most `within`;
/// fails at once (with `what`) when the process exits first.
pub async fn wait_ready(
    base: &str,
    child: &mut std::process::Child,
    within: std::time::Duration,
    what: &str,
) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    // Real time: a real process starts on real time: polled, bounded only to catch a hang.
    let started = std::time::Instant::now();
    loop {
        let ready = client.get(format!("{base}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what}: the host exited ({status}) before it was ready");
        }
        assert!(
            started.elapsed() < within,
            "{what}: the host was not ready within {within:?}"
        );
        // Real time: a real process starts on real time: polled, bounded only to catch a hang.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A browser on the console: keeps the cookies the host sets, sends them back, and fills
/// in the CSRF token of the last page it read.
pub struct Browser<'a> {
    host: &'a Host,
    cookies: std::collections::BTreeMap<String, String>,
    /// The `csrf` value of the last page read.
    pub csrf: String,
    /// The `Set-Cookie` headers of the last response, as sent.
    pub set_cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    /// A browser without cookies.
    pub fn new(host: &'a Host) -> Browser<'a> {
        Browser {
            host,
            cookies: Default::default(),
            csrf: String::new(),
            set_cookies: Vec::new(),
        }
    }

    /// A browser signed in with `token` through the sign-in page.
    pub async fn signed_in(host: &'a Host, token: &str) -> Browser<'a> {
        let mut b = Browser::new(host);
        let page = b.get("/ui/signin").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let reply = b.post_form("/ui/signin", &[("token", token)]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
        assert!(b.cookies.contains_key("mmm_session"), "no session cookie");
        let home = b.get("/ui/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.text);
        b
    }

    /// Whether the browser holds a cookie.
    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }

    /// Forgets a cookie.
    pub fn drop_cookie(&mut self, name: &str) {
        self.cookies.remove(name);
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, reply: &Reply) {
        self.set_cookies = reply
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        for line in self.set_cookies.clone() {
            let first = line.split(';').next().unwrap_or("");
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            let gone = line.contains("Max-Age=0") || value.is_empty();
            if gone {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        if let Some(at) = reply.text.find("name=\"csrf\" value=\"") {
            let rest = &reply.text[at + 19..];
            if let Some(end) = rest.find('"') {
                self.csrf = rest[..end].to_owned();
            }
        }
    }

    /// A request with this browser's cookies and the given headers.
    pub async fn request(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            req = req.header(header::COOKIE, self.cookie_header());
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let reply = self
            .host
            .send(req.body(body.map_or_else(Body::empty, Body::from)).unwrap())
            .await;
        self.remember(&reply);
        reply
    }

    /// `GET`.
    pub async fn get(&mut self, uri: &str) -> Reply {
        self.request(Method::GET, uri, &[], None).await
    }

    /// `POST` of a form, with the CSRF token of the last page read.
    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(uri, &all, &[]).await
    }

    /// `POST` of exactly these fields (no CSRF token added) with extra headers.
    pub async fn post_raw(
        &mut self,
        uri: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.request(Method::POST, uri, headers, Some(body)).await
    }

    /// `POST` of a form, then `GET` of where it redirected (the page with its message).
    pub async fn submit(&mut self, uri: &str, fields: &[(&str, &str)]) -> Reply {
        let reply = self.post_form(uri, fields).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
        let to = reply.headers[header::LOCATION].to_str().unwrap().to_owned();
        self.get(&to).await
    }
}
