//! Two real `mmm-host` replicas on one PostgreSQL database and the machine's Redis (issue
//! 9's acceptance, SPEC §13): a publish on one is decided with on the other within 2 s;
//! 200 concurrent decisions for one actor against a `max: 1` playbook, split across both,
//! return exactly one action (the others suppress it `fatigue_max`, and the firing is in
//! Redis); each replica's receipt chain verifies from seq 1 and holds exactly the
//! decisions it answered.
//!
//! The database is a fresh `mmm_replicas_<…>` on the server of `MMM_TEST_POSTGRES_URL`,
//! dropped at the end (also after a failure); the Redis keys are the test's own random
//! tenant's, deleted at the end. Both replicas verify tokens with one JWKS file and sign
//! receipts with one key, each on its own chain (`--replica-id`). Without the URLs the
//! test is skipped with a note; under `CI=true` it fails.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jiff::Timestamp;
use mmm_engine::receipt::{public_key_from_bytes, ChainVerifier, Envelope};
use mmm_host::auth::LocalKey;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::common::{claims, free_port, key_files, wait_ready};

/// How soon a replica must decide with a version another replica published (SPEC §13).
const FOLLOW_WITHIN: Duration = Duration::from_secs(2);
/// The step of the polls.
const STEP: Duration = Duration::from_millis(50);
/// The seed of the tokens' key (the JWKS both replicas read holds its public half).
const TOKEN_SEED: [u8; 32] = [23; 32];

/// The environment variable's value; `None` with a note when it is unset (a failure
/// under `CI=true`).
fn required(var: &str) -> Option<String> {
    if let Ok(value) = std::env::var(var) {
        return Some(value);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{var} is not set under CI=true: the two-replica test must run"
    );
    eprintln!("note: {var} is not set; the two-replica test is skipped");
    None
}

fn random_suffix() -> String {
    format!(
        "{}_{}_{:08x}",
        std::process::id(),
        Timestamp::now().as_millisecond() % 1_000_000,
        rand::random::<u32>()
    )
}

/// Runs `fut` to completion on a runtime of its own, on a thread of its own: for `Drop`,
/// which is sync and may run while the test's runtime is unwinding.
fn run_detached<F: std::future::Future<Output = ()> + Send + 'static>(fut: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(fut);
        }
    })
    .join();
}

/// A fresh database on the test server, dropped with its sessions when this is dropped.
struct Database {
    server: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(server: &str) -> Database {
        let name = format!("mmm_replicas_{}", random_suffix());
        let pool = sqlx::PgPool::connect(server)
            .await
            .unwrap_or_else(|e| panic!("MMM_TEST_POSTGRES_URL is set but unusable: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let mut url = reqwest::Url::parse(server).unwrap();
        url.set_path(&format!("/{name}"));
        Database {
            server: server.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        run_detached(async move {
            if let Ok(pool) = sqlx::PgPool::connect(&server).await {
                let dropped =
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                if let Err(e) = dropped {
                    eprintln!("warning: dropping the test database {name}: {e}");
                }
                pool.close().await;
            }
        });
    }
}

/// The test tenant's fatigue keys in Redis, deleted when this is dropped.
struct RedisKeys {
    url: String,
    pattern: String,
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let (url, pattern) = (self.url.clone(), self.pattern.clone());
        run_detached(async move {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                return;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
            }
        });
    }
}

/// One running `mmm-host`, killed when dropped (its log's tail printed when the test
/// failed).
struct Replica {
    name: String,
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(file) = std::fs::File::open(&self.log) {
                let lines: Vec<String> =
                    BufReader::new(file).lines().map_while(Result::ok).collect();
                let tail = lines.len().saturating_sub(40);
                eprintln!("--- the last lines of replica {}'s log ---", self.name);
                for line in lines.iter().skip(tail) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// What both replicas share.
struct Shared<'a> {
    database_url: &'a str,
    redis_url: &'a str,
    jwks: &'a Path,
    signing_key: &'a Path,
}

/// Starts a replica (not waiting for it): its own data directory, port and replica id;
/// no seed playbooks (its working directory has none); no `MMM_*` from the test's
/// environment.
fn spawn(name: &str, shared: &Shared<'_>) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("host.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mmm-host"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MMM_") {
            command.env_remove(key);
        }
    }
    let child = command
        .current_dir(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--log-format", "text"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--database-url", shared.database_url])
        .args(["--redis-url", shared.redis_url])
        .arg("--jwks-file")
        .arg(shared.jwks)
        .arg("--signing-key-file")
        .arg(shared.signing_key)
        .args(["--replica-id", name])
        // A correctness test, not a latency one: on a loaded machine a fatigue check may
        // wait for a CPU longer than the default 500 ms, and would then hold the action
        // back (`fatigue_cooldown`, "fatigue store unavailable").
        .args(["--fatigue-timeout-ms", "10000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Replica {
        name: name.to_owned(),
        child,
        base: format!("http://127.0.0.1:{port}/v1/mmm"),
        log,
        _dir: dir,
    }
}

/// A JWKS with the public half of `key_seed`, under the key id `LocalKey` mints with.
fn jwks(key_seed: [u8; 32]) -> String {
    let public = ed25519_dalek::SigningKey::from_bytes(&key_seed).verifying_key();
    let digest = sha2::Sha256::digest(public.as_bytes());
    let kid = hex::encode(&digest[..8]);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public.as_bytes());
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}]})
        .to_string()
}

fn playbook(tenant: &str, id: &str, trigger: &str, fatigue: &str) -> String {
    format!(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata:\n  id: {id}\n  version: 1\n  tenant: \"{tenant}\"\n  status: draft\n  category: general\nspec:\n  triggers: [{trigger}]\n{fatigue}  actions:\n    - type: mirror\n      surfaces: [ide]\n      title: Replicas\n      text: \"{id} fired.\"\n"
    )
}

fn signal(tenant: &str, actor: &str, kind: &str) -> Value {
    json!({"signal": {"tenant_id": tenant, "actor_id": actor, "kind": kind,
           "occurred_at": Timestamp::now().to_string(),
           "repo": {"id": "replicas/api", "branch": "main"}, "payload": {}}})
}

/// Creates the draft on `replica` and publishes it there.
async fn publish(client: &reqwest::Client, replica: &Replica, admin: &str, yaml: String, id: &str) {
    let r = client
        .post(format!("{}/playbooks", replica.base))
        .bearer_auth(admin)
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 201, "{}", r.text().await.unwrap());
    let r = client
        .post(format!(
            "{}/playbooks/{id}/versions/1/publish",
            replica.base
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap());
}

/// One decision on `base`: the status and the body.
async fn decide(client: &reqwest::Client, base: &str, token: &str, body: &Value) -> (u16, Value) {
    let r = client
        .post(format!("{base}/decide"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({"unparsed": text}));
    (status, value)
}

/// Whether the decision returned an action of `playbook`.
fn acted(decision: &Value, playbook: &str) -> bool {
    decision["actions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["playbook"]["id"] == playbook))
}

/// The receipt id of a 200 decision (signing is on: `emitted`).
fn receipt_id(decision: &Value) -> String {
    assert_eq!(decision["receipt"]["status"], "emitted", "{decision}");
    decision["receipt"]["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Decides for fresh actors on `replica` every 50 ms until a decision shows `playbook`'s
/// action; fails when a decision asked for later than [`FOLLOW_WITHIN`] after `since`
/// does not. Returns the receipt ids of the decisions made, and when the action came.
async fn until_acted(
    client: &reqwest::Client,
    replica: &Replica,
    token: &str,
    tenant: &str,
    kind: &str,
    playbook: &str,
    since: Instant,
) -> (Vec<String>, Duration) {
    let mut receipts = Vec::new();
    for attempt in 0.. {
        let actor = format!("probe-{}-{attempt}", replica.name);
        // Judged by when the request was sent, not answered: a decision asked for after
        // the 2 s must have it, whatever the machine's load makes its answer take.
        let sent = since.elapsed();
        let (status, d) = decide(client, &replica.base, token, &signal(tenant, &actor, kind)).await;
        assert_eq!(status, 200, "{d}");
        receipts.push(receipt_id(&d));
        if acted(&d, playbook) {
            return (receipts, since.elapsed());
        }
        assert!(
            sent <= FOLLOW_WITHIN,
            "replica {} did not decide with `{playbook}` {sent:?} after its publish ({attempt} tries before): {d}",
            replica.name
        );
        // Real time: two real processes: the 2 s follow is real time under test; polls are bounded.
        tokio::time::sleep(STEP).await;
    }
    unreachable!()
}

/// The receipt ids of `chain`, in order, after verifying it from seq 1 with the core's
/// verifier (what `mmm verify --from-start` runs).
async fn chain(
    client: &reqwest::Client,
    replica: &Replica,
    operator: &str,
    chain: &str,
    public: &Path,
) -> Vec<String> {
    let key =
        public_key_from_bytes(std::fs::read_to_string(public).unwrap().trim().as_bytes()).unwrap();
    let mut verifier = ChainVerifier::new(&key).from_start(true);
    let mut ids = Vec::new();
    let mut after = 0u64;
    loop {
        let r = client
            .get(format!(
                "{}/receipts?chain_id={chain}&after_seq={after}&limit=10000",
                replica.base
            ))
            .bearer_auth(operator)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        if text.is_empty() {
            return ids;
        }
        for line in text.lines() {
            let envelope: Envelope = serde_json::from_str(line).unwrap();
            let payload = verifier
                .verify(&envelope)
                .unwrap_or_else(|e| panic!("chain {chain}: {e}"));
            after = payload["chain"]["seq"].as_u64().unwrap();
            ids.push(payload["receipt_id"].as_str().unwrap().to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_follow_a_publish_and_never_both_pass_a_limit_of_one() {
    let _heavy = crate::common::HEAVY.lock().await;
    let (Some(server), Some(redis_url)) = (
        required("MMM_TEST_POSTGRES_URL"),
        required("MMM_TEST_REDIS_URL"),
    ) else {
        return;
    };
    let tenant = format!("replicas-{}", random_suffix().replace('_', "-"));
    // Declared before the replicas: dropped after they are killed.
    let database = Database::create(&server).await;
    let _redis = RedisKeys {
        url: redis_url.clone(),
        pattern: format!("mmm:fatigue:{tenant}:*"),
    };
    let files = tempfile::tempdir().unwrap();
    let jwks_path = files.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(TOKEN_SEED)).unwrap();
    let (signing_key, public_key) = key_files(files.path());
    let shared = Shared {
        database_url: &database.url,
        redis_url: &redis_url,
        jwks: &jwks_path,
        signing_key: &signing_key,
    };
    // Started together on an empty database: the migrations run once.
    let mut a = spawn("replica-a", &shared);
    let mut b = spawn("replica-b", &shared);
    wait_ready(&a.base, &mut a.child, Duration::from_secs(30), "replica-a").await;
    wait_ready(&b.base, &mut b.child, Duration::from_secs(30), "replica-b").await;

    let key = LocalKey::from_seed(TOKEN_SEED);
    let admin = key
        .mint(&claims(&tenant, &["admin"], "admin@replicas", 600))
        .unwrap();
    let service = key
        .mint(&claims(&tenant, &["service"], "bot@replicas", 600))
        .unwrap();
    let operator = key.mint(&claims("*", &["admin"], "operator", 600)).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut answered_a = Vec::new();
    let mut answered_b = Vec::new();

    // (1) Published on A, decided with on B within 2 s. B decides without it first.
    let (status, before) = decide(
        &client,
        &b.base,
        &service,
        &signal(&tenant, "early", "replica.published"),
    )
    .await;
    assert_eq!(status, 200, "{before}");
    assert!(!acted(&before, "replica-follow"), "{before}");
    answered_b.push(receipt_id(&before));
    publish(
        &client,
        &a,
        &admin,
        playbook(&tenant, "replica-follow", "replica.published", ""),
        "replica-follow",
    )
    .await;
    // Real time: two real processes: the 2 s follow is real time under test; polls are bounded.
    let published = Instant::now();
    let (receipts, took) = until_acted(
        &client,
        &b,
        &service,
        &tenant,
        "replica.published",
        "replica-follow",
        published,
    )
    .await;
    answered_b.extend(receipts);
    eprintln!("replica-b decided with replica-a's publish after {took:?}");

    // (2) A `max: 1` playbook, live on both replicas; then 200 decisions for one actor at
    // once, 100 on each, 32 in flight.
    publish(
        &client,
        &a,
        &admin,
        playbook(
            &tenant,
            "replica-max-one",
            "replica.burst",
            "  fatigue: {max: 1, window: 1d}\n",
        ),
        "replica-max-one",
    )
    .await;
    // Real time: two real processes: the 2 s follow is real time under test; polls are bounded.
    let published = Instant::now();
    for replica in [&a, &b] {
        let (receipts, _) = until_acted(
            &client,
            replica,
            &service,
            &tenant,
            "replica.burst",
            "replica-max-one",
            published,
        )
        .await;
        if replica.name == a.name {
            answered_a.extend(receipts);
        } else {
            answered_b.extend(receipts);
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut burst = tokio::task::JoinSet::new();
    let body = signal(&tenant, "burst-actor", "replica.burst");
    for i in 0..200 {
        let on_a = i % 2 == 0;
        let base = if on_a { a.base.clone() } else { b.base.clone() };
        let (client, token, body, limit) = (
            client.clone(),
            service.clone(),
            body.clone(),
            Arc::clone(&limit),
        );
        burst.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let (status, d) = decide(&client, &base, &token, &body).await;
            (on_a, status, d)
        });
    }
    let mut actions = Vec::new();
    let mut decided = 0;
    while let Some(joined) = burst.join_next().await {
        let (on_a, status, d) = joined.unwrap();
        assert_eq!(status, 200, "{d}");
        decided += 1;
        if on_a {
            answered_a.push(receipt_id(&d));
        } else {
            answered_b.push(receipt_id(&d));
        }
        if acted(&d, "replica-max-one") {
            actions.push(if on_a { "replica-a" } else { "replica-b" });
            continue;
        }
        let suppressed = d["suppressed"].as_array().cloned().unwrap_or_default();
        assert!(
            suppressed
                .iter()
                .any(|s| s["playbook"]["id"] == "replica-max-one" && s["reason"] == "fatigue_max"),
            "a decision neither acted nor suppressed the action `fatigue_max`: {d}"
        );
    }
    assert_eq!(decided, 200);
    assert_eq!(actions.len(), 1, "actions returned by {actions:?}");
    eprintln!("the one action of the burst came from {}", actions[0]);

    // The firing is in Redis, under the tenant's key: decide used Redis, not the database.
    let mut conn = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let firings: i64 = redis::cmd("ZCARD")
        .arg(format!(
            "mmm:fatigue:{tenant}:{{burst-actor}}:pb:replica-max-one"
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(firings, 1);

    // (3) Each replica's chain verifies from seq 1 and holds exactly what it answered.
    for (replica, answered) in [(&a, &answered_a), (&b, &answered_b)] {
        let stored = chain(&client, replica, &operator, &replica.name, &public_key).await;
        let stored: BTreeSet<String> = stored.into_iter().collect();
        let answered: BTreeSet<String> = answered.iter().cloned().collect();
        assert_eq!(stored, answered, "chain {}", replica.name);
    }
    drop((a, b));
    drop(database);
}
