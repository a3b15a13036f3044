//! The binary itself: first start on embedded defaults (SQLite in the data directory, the
//! bundled playbooks imported, a printed admin token that works), and SIGTERM ending it
//! with exit 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn first_start_serves_the_library_with_the_printed_token_and_sigterm_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let library = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmm-host"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "text",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--seed-playbooks")
        .arg(&library)
        .env_remove("MMM_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The token is the line after the one announcing it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut announced = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if announced {
                let _ = tx.send(line);
                return;
            }
            announced = line.starts_with("admin token for tenant `demo`");
        }
    });
    let token = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the host prints an admin token");
    let base = format!("http://127.0.0.1:{port}/v1/mmm");
    let client = reqwest::Client::new();
    // Real time: a real process and its signals: real time is what is under test (bounds catch hangs only).
    let started = Instant::now();
    loop {
        let ready = client.get(format!("{base}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the host never became ready"
        );
        // Real time: a real process and its signals: real time is what is under test (bounds catch hangs only).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list: serde_json::Value = client
        .get(format!("{base}/playbooks"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"large-pr"), "{list}");
    assert!(data.path().join("mmm.db").exists());

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // Real time: a real process and its signals: real time is what is under test (bounds catch hangs only).
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM did not end the host within 10 s"
        );
        // Real time: a real process and its signals: real time is what is under test (bounds catch hangs only).
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status}");
}
