//! The durability promise with the real binary on SQLite and a signing key: a host killed
//! with SIGKILL under load, then restarted, holds the receipt of every decision it
//! answered with 200, and its chain verifies from seq 1 without a gap; SIGTERM under load
//! ends the host with exit 0 within 10 s, every 200 with its receipt stored.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmm_engine::receipt::{public_key_from_bytes, ChainVerifier, Envelope};
use serde_json::{json, Value};

use crate::common::{free_port, key_files, wait_ready};

struct Running {
    child: Child,
    base: String,
    token: String,
}

/// Starts the host on `data` (SQLite, the bundled library, signing with `key`) and waits
/// until it is ready; returns it with its printed admin token (tenant `demo`).
async fn start(data: &Path, key: &Path) -> Running {
    let port = free_port();
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmm-host"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--log-format", "text"])
        .arg("--data-dir")
        .arg(data)
        .arg("--seed-playbooks")
        .arg(&library)
        .arg("--signing-key-file")
        .arg(key)
        .env_remove("MMM_DATABASE_URL")
        .env_remove("MMM_REPLICA_ID")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut announced = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if announced {
                let _ = tx.send(line);
                announced = false;
            } else {
                announced = line.starts_with("admin token for tenant `demo`");
            }
        }
    });
    let token = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the host prints an admin token");
    let base = format!("http://127.0.0.1:{port}/v1/mmm");
    wait_ready(&base, &mut child, Duration::from_secs(30), "kill test").await;
    Running { child, base, token }
}

/// Nothing outlives a failed test: the host is killed (a no-op when it has exited).
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(actor: usize) -> Value {
    json!({"signal": {"tenant_id": "demo", "actor_id": format!("dev-{actor}"), "kind": "pr.opened",
           "occurred_at": "2026-11-24T10:00:00Z", "repo": {"id": "demo/api", "branch": "feat/x"},
           "payload": {"lines_changed": 420, "files_changed": 12}}})
}

/// One decision; the receipt id when it answered 200.
async fn decide(client: &reqwest::Client, host: &str, token: &str, actor: usize) -> Option<String> {
    let r = client
        .post(format!("{host}/decide"))
        .bearer_auth(token)
        .json(&signal(actor))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let d: Value = r.json().await.ok()?;
    assert_eq!(d["receipt"]["status"], "emitted", "{d}");
    d["receipt"]["receipt_id"].as_str().map(str::to_owned)
}

/// Every receipt id of the export, after checking the chain from seq 1 with the core's
/// verifier (what `mmm verify --from-start` runs).
async fn exported(host: &Running, public: &Path) -> Vec<String> {
    let key =
        public_key_from_bytes(std::fs::read_to_string(public).unwrap().trim().as_bytes()).unwrap();
    let client = reqwest::Client::new();
    let mut verifier = ChainVerifier::new(&key).from_start(true);
    let mut ids = Vec::new();
    let mut after = 0u64;
    loop {
        let r = client
            .get(format!(
                "{}/receipts?after_seq={after}&limit=10000",
                host.base
            ))
            .bearer_auth(&host.token)
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
            let payload = verifier.verify(&envelope).unwrap();
            after = payload["chain"]["seq"].as_u64().unwrap();
            ids.push(payload["receipt_id"].as_str().unwrap().to_owned());
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    // Real time: real processes under real load: real time is what is under test (bounds catch hangs only).
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "the host did not exit within {within:?}"
        );
        // Real time: real processes under real load: real time is what is under test (bounds catch hangs only).
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_answered_receipt_and_the_chain_continues() {
    let _heavy = crate::common::HEAVY.lock().await;
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = key_files(keys.path());
    let mut host = start(data.path(), &key).await;

    // 500 decisions at once; the host is killed once 150 have been answered.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let answered = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for actor in 0..500 {
        let (client, base, token) = (client.clone(), host.base.clone(), host.token.clone());
        let (answered, count) = (Arc::clone(&answered), Arc::clone(&count));
        tasks.push(tokio::spawn(async move {
            if let Some(id) = decide(&client, &base, &token, actor).await {
                answered.lock().unwrap().push(id);
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Real time: real processes under real load: real time is what is under test (bounds catch hangs only).
    let started = Instant::now();
    while count.load(Ordering::SeqCst) < 150 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the host answered only {} decisions",
            count.load(Ordering::SeqCst)
        );
        // Real time: real processes under real load: real time is what is under test (bounds catch hangs only).
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    host.child.kill().unwrap(); // SIGKILL
    wait_exit(&mut host.child, Duration::from_secs(10));
    for t in tasks {
        t.await.unwrap();
    }
    let answered: BTreeSet<String> = answered.lock().unwrap().iter().cloned().collect();
    assert!(
        answered.len() >= 150 && answered.len() < 500,
        "{}",
        answered.len()
    );

    // Restarted: every answered decision's receipt is there, and the chain goes on.
    let mut host = start(data.path(), &key).await;
    let stored: BTreeSet<String> = exported(&host, &public).await.into_iter().collect();
    let missing: Vec<&String> = answered.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} answered decisions have no receipt",
        missing.len()
    );
    let before = stored.len();
    let id = decide(&client, &host.base, &host.token, 1000)
        .await
        .unwrap();
    let after = exported(&host, &public).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last(), Some(&id));
    host.child.kill().unwrap();
    wait_exit(&mut host.child, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_0_within_10s_with_every_answer_stored() {
    let _heavy = crate::common::HEAVY.lock().await;
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = key_files(keys.path());
    let mut host = start(data.path(), &key).await;

    // 64 connections deciding in a loop until the host stops answering.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let answered = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..64 {
        let (client, base, token) = (client.clone(), host.base.clone(), host.token.clone());
        let (answered, stop) = (Arc::clone(&answered), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < 2_000 {
                match decide(&client, &base, &token, w * 10_000 + i).await {
                    Some(id) => answered.lock().unwrap().push(id),
                    None => return,
                }
                i += 1;
            }
        }));
    }
    // Real time: real processes under real load: real time is what is under test (bounds catch hangs only).
    let started = Instant::now();
    while answered.lock().unwrap().len() < 100 {
        assert!(started.elapsed() < Duration::from_secs(120));
        // Real time: real processes under real load: real time is what is under test (bounds catch hangs only).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = host.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_exit(&mut host.child, Duration::from_secs(10));
    assert!(status.success(), "exit {status}");
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let answered: BTreeSet<String> = answered.lock().unwrap().iter().cloned().collect();

    let mut host = start(data.path(), &key).await;
    let stored: BTreeSet<String> = exported(&host, &public).await.into_iter().collect();
    let missing = answered.difference(&stored).count();
    assert_eq!(missing, 0, "answered decisions without a receipt");
    host.child.kill().unwrap();
    wait_exit(&mut host.child, Duration::from_secs(10));
}
