//! The `mmm` command, run as a user would run it.

// Test code: a failed unwrap or index is a failed test, which is what it should be.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmm"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("mmm-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        Dir(dir)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PLAYBOOK: &str = "apiVersion: mmm/v1
kind: Playbook
metadata: {id: big, version: 1, tenant: \"*\", status: published}
spec:
  triggers: [pr.opened]
  when: signal.payload.lines > 400
  fatigue: {cooldown: 1h}
  actions:
    - type: mirror
      surfaces: [pr_comment]
      title: Large change
      text: \"{{ signal.payload.lines }} lines changed.\"
";

const SIGNAL: &str = r#"{"signal_id": "s1", "tenant_id": "acme", "actor_id": "dev", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z", "payload": {"lines": 420}}"#;

#[test]
fn validate_reports_positions_and_exits_1_on_errors() {
    let d = Dir::new("validate");
    let good = d.write("good.yaml", PLAYBOOK);
    let o = mmm(&["validate", &good]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bad = d.write(
        "bad.yaml",
        &PLAYBOOK.replace("surfaces: [pr_comment]", "surfaces: [pr_comment, fax]"),
    );
    let o = mmm(&["validate", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).trim(), format!("{bad}:10:30: error[invalid-surface]: surface `fax` must be `ide`, `pr_comment`, `ci_summary`, `alert` or `chat`"));
    let json = mmm(&["validate", "--format", "json", &bad]);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed[0]["line"], 10);
}

#[test]
fn lint_warnings_fail_only_under_strict() {
    let d = Dir::new("lint");
    let file = d.write(
        "nag.yaml",
        &PLAYBOOK.replace("lines changed.", "lines changed. You must act now."),
    );
    let o = mmm(&["validate", &file]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("warning[prescriptive-wording]"), "{out}");
    assert!(out.contains("warning[false-urgency]"), "{out}");
    let o = mmm(&["validate", "--strict", &file]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn decide_prints_the_decision_as_json() {
    let d = Dir::new("decide");
    d.write("big.yaml", PLAYBOOK);
    let signal = d.write("signal.json", SIGNAL);
    let o = mmm(&[
        "decide",
        "--playbooks",
        &d.path(),
        "--signal",
        &signal,
        "--now",
        "2026-11-22T10:00:00Z",
        "--explain",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let decision: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(decision["actions"][0]["text"], "420 lines changed.");
    assert_eq!(decision["explain"][0]["condition"], true);
    let bad = d.write(
        "bad.json",
        &SIGNAL.replace("\"kind\": \"pr.opened\"", "\"kind\": \"PR\""),
    );
    let o = mmm(&["decide", "--playbooks", &d.path(), "--signal", &bad]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error[SIGNAL_INVALID]") && err.contains("`kind`"),
        "{err}"
    );
}

#[test]
fn test_prints_the_count_last_and_fails_on_a_failing_case() {
    let d = Dir::new("suite");
    d.write("big.yaml", PLAYBOOK);
    let suite = "cases:
  - name: fires on a big PR
    signal: {tenant_id: acme, actor_id: dev, kind: pr.opened, occurred_at: 2026-11-22T10:00:00Z, payload: {lines: 420}}
    expect:
      actions: [{playbook: big, type: mirror, surfaces: [pr_comment], text_contains: \"420 lines\"}]
  - name: cooldown after an earlier firing
    now: 2026-11-22T10:30:00Z
    signal: {tenant_id: acme, actor_id: dev, kind: pr.opened, occurred_at: 2026-11-22T10:30:00Z, payload: {lines: 420}}
    history: [{playbook: big, at: 2026-11-22T10:00:00Z}]
    expect:
      actions: []
      suppressed: [{playbook: big, reason: fatigue_cooldown}]
      degraded: []
";
    d.write("tests/big.test.yaml", suite);
    let o = mmm(&["test", &d.path()]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(stdout(&o).lines().last(), Some("2 passed, 0 failed"));

    d.write(
        "tests/wrong.test.yaml",
        &suite
            .replace("\"420 lines\"", "\"999 lines\"")
            .replace("fatigue_cooldown", "fatigue_max"),
    );
    let o = mmm(&["test", &d.path(), "--coverage"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL") && out.contains("expected it to contain `999 lines`"),
        "{out}"
    );
    assert!(
        out.contains("suppressed: expected big any type fatigue_max"),
        "{out}"
    );
    assert!(out.contains("coverage: every action"), "{out}");
    assert_eq!(out.lines().last(), Some("2 passed, 2 failed"));
}

#[test]
fn coverage_lists_actions_no_case_returned() {
    let d = Dir::new("coverage");
    d.write("big.yaml", PLAYBOOK);
    d.write("tests/none.test.yaml", "cases:\n  - name: small\n    signal: {tenant_id: acme, actor_id: dev, kind: pr.opened, occurred_at: 2026-11-22T10:00:00Z, payload: {lines: 1}}\n    expect: {actions: []}\n");
    let out = stdout(&mmm(&["test", &d.path(), "--coverage"]));
    assert!(out.contains("big action 0 (mirror)"), "{out}");
}

#[test]
fn simulate_carries_fatigue_and_compares_sets() {
    let d = Dir::new("simulate");
    std::fs::create_dir_all(d.0.join("a")).unwrap();
    std::fs::create_dir_all(d.0.join("b")).unwrap();
    d.write("a/big.yaml", PLAYBOOK);
    d.write("b/big.yaml", &PLAYBOOK.replace("> 400", "> 500"));
    let lines = [
        SIGNAL.to_owned(),
        SIGNAL.replace("s1", "s2").replace("10:00:00Z", "10:20:00Z"),
        SIGNAL.replace("s1", "s3").replace("10:00:00Z", "11:30:00Z"),
    ];
    let signals = d.write("signals.jsonl", &(lines.join("\n") + "\n"));
    let out_file = d.0.join("decisions.jsonl").display().to_string();
    let a = format!("{}/a", d.path());
    let b = format!("{}/b", d.path());
    let o = mmm(&[
        "simulate",
        "--playbooks",
        &a,
        "--signals",
        &signals,
        "--against",
        &b,
        "--decisions-out",
        &out_file,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("replayed 3 signal(s)"), "{out}");
    assert!(
        out.contains("actions: mirror 2") && out.contains("suppressed: fatigue_cooldown 1"),
        "{out}"
    );
    assert!(out.contains("3 decision(s) differ"), "{out}");
    let decisions = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(decisions.lines().count(), 3);
}

#[test]
fn simulate_offers_earlier_signals_as_recent_signals() {
    let d = Dir::new("recent");
    d.write(
        "repeat.yaml",
        &PLAYBOOK
            .replace(
                "signal.payload.lines > 400",
                "recent_count(\"pr.*\", \"1h\") >= 1",
            )
            .replace("  fatigue: {cooldown: 1h}\n", ""),
    );
    let lines = [
        SIGNAL.to_owned(),
        SIGNAL.replace("s1", "s2").replace("10:00:00Z", "10:20:00Z"),
    ];
    let signals = d.write("signals.jsonl", &(lines.join("\n") + "\n"));
    let out = stdout(&mmm(&[
        "simulate",
        "--playbooks",
        &d.path(),
        "--signals",
        &signals,
    ]));
    assert!(out.contains("actions: mirror 1 "), "{out}");
}

/// A decision line without what differs from run to run (ids and latency).
fn stable_decision(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    for key in ["decision_id", "latency_us", "latency_warning"] {
        v[key] = serde_json::Value::Null;
    }
    if let Some(actions) = v["actions"].as_array_mut() {
        for a in actions {
            a["action_id"] = serde_json::Value::Null;
        }
    }
    v
}

#[test]
fn simulate_on_several_threads_prints_what_one_thread_prints() {
    let d = Dir::new("threads");
    std::fs::create_dir_all(d.0.join("a")).unwrap();
    std::fs::create_dir_all(d.0.join("b")).unwrap();
    d.write("a/big.yaml", PLAYBOOK);
    d.write("b/big.yaml", &PLAYBOOK.replace("> 400", "> 500"));
    // 5,000 lines (more than two rounds of 2,048) from 30 actors, minutes apart, with
    // lines that are not JSON and a signal the engine refuses.
    let lines: Vec<String> = (0..5000)
        .map(|i| match i % 211 {
            7 => "{oops".to_owned(),
            9 => r#"{"tenant_id": "acme", "actor_id": "x", "kind": "pr.opened"}"#.to_owned(),
            _ => SIGNAL
                .replace("\"s1\"", &format!("\"s{i}\""))
                .replace("\"dev\"", &format!("\"dev-{}\"", i % 30))
                .replace("420", &format!("{}", 300 + i % 200))
                .replace(
                    "2026-11-22T10:00:00Z",
                    &format!(
                        "2026-11-{:02}T{:02}:{:02}:00Z",
                        10 + i / 1440,
                        i / 60 % 24,
                        i % 60
                    ),
                ),
        })
        .collect();
    let signals = d.write("signals.jsonl", &(lines.join("\n") + "\n"));
    let (a, b) = (format!("{}/a", d.path()), format!("{}/b", d.path()));
    let run = |threads: &str| {
        let out_file =
            d.0.join(format!("decisions-{threads}.jsonl"))
                .display()
                .to_string();
        let o = mmm(&[
            "simulate",
            "--playbooks",
            &a,
            "--signals",
            &signals,
            "--against",
            &b,
            "--decisions-out",
            &out_file,
            "--threads",
            threads,
        ]);
        assert_eq!(o.status.code(), Some(1), "rejected lines fail the run");
        let decisions: Vec<serde_json::Value> = std::fs::read_to_string(&out_file)
            .unwrap()
            .lines()
            .map(stable_decision)
            .collect();
        (
            stdout(&o),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            decisions,
        )
    };
    let one = run("1");
    assert!(one.0.contains("suppressed: fatigue_cooldown"), "{}", one.0);
    assert!(one.0.contains("decision(s) differ"), "{}", one.0);
    assert!(
        one.1.contains(":8:") && one.1.contains(":10: error[SIGNAL_INVALID]"),
        "{}",
        one.1
    );
    assert!(one.2.len() > 4900);
    for threads in ["2", "5"] {
        assert!(run(threads) == one, "--threads {threads}");
    }
    let o = mmm(&[
        "simulate",
        "--playbooks",
        &a,
        "--signals",
        &signals,
        "--threads",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn schema_is_json_schema() {
    let o = mmm(&["schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(schema["properties"]["apiVersion"]["const"], "mmm/v1");
}

#[test]
fn the_bundled_library_is_clean_and_passes() {
    let playbooks = repo().join("playbooks").display().to_string();
    let o = mmm(&["validate", "--strict", &playbooks]);
    assert!(o.status.success(), "{}", stdout(&o));
    let o = mmm(&["test", &playbooks, "--coverage"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("coverage: every action"), "{out}");
}

#[test]
fn keygen_decide_verify_and_tamper_detection() {
    let d = Dir::new("receipts");
    d.write("big.yaml", PLAYBOOK);
    let signal = d.write("signal.json", SIGNAL);
    let key = format!("{}/key", d.path());
    assert!(mmm(&["keygen", "--out", &key]).status.success());
    let again = mmm(&["keygen", "--out", &key]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a key is never overwritten silently"
    );
    let receipts = format!("{}/receipts.jsonl", d.path());
    for minute in ["10:00", "10:01", "10:02"] {
        let now = format!("2026-11-22T{minute}:00Z");
        let o = mmm(&[
            "decide",
            "--playbooks",
            &d.path(),
            "--signal",
            &signal,
            "--now",
            &now,
            "--signing-key",
            &key,
            "--receipts-out",
            &receipts,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let decision: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(decision["receipt"]["status"], "emitted");
    }
    let public = format!("{key}.pub");
    let o = mmm(&["verify", "--public-key", &public, &receipts]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("3 receipt(s) verified") && stdout(&o).contains("seq 1 to 3"),
        "{}",
        stdout(&o)
    );

    // Tampering with line 2 is named.
    let text = std::fs::read_to_string(&receipts).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut env: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    env["payload"] =
        serde_json::Value::String(env["payload"].as_str().unwrap().replacen('e', "f", 1));
    let tampered = [lines[0].to_owned(), env.to_string(), lines[2].to_owned()].join("\n");
    let bad = d.write("tampered.jsonl", &tampered);
    let o = mmm(&["verify", "--public-key", &public, &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("tampered.jsonl:2: error[RECEIPT_INVALID]"),
        "{}",
        stdout(&o)
    );

    // A key that did not sign them.
    let other = format!("{}/other", d.path());
    assert!(mmm(&["keygen", "--out", &other]).status.success());
    let o = mmm(&["verify", "--public-key", &format!("{other}.pub"), &receipts]);
    assert!(
        stdout(&o).contains(":1: error[RECEIPT_INVALID]: bad signature"),
        "{}",
        stdout(&o)
    );
    // --receipts-out without a key is refused.
    let o = mmm(&[
        "decide",
        "--playbooks",
        &d.path(),
        "--signal",
        &signal,
        "--receipts-out",
        &receipts,
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn experiments_work_through_mmm_test() {
    let d = Dir::new("experiments");
    d.write("big.yaml", PLAYBOOK);
    d.write(
        "copy.yaml",
        "apiVersion: mmm/v1
kind: Experiment
metadata: {id: big-copy, tenant: \"*\", status: active}
spec:
  playbook: big
  variants:
    - {name: control, weight: 50}
    - {name: concise, weight: 40, set: {title: Big PR, text: \"{{ signal.payload.lines }} lines.\"}}
    - {name: holdout, weight: 10, holdout: true}
",
    );
    // hash_v2(\"acme:big-copy\", actor) decides the variant; these actors land in each.
    let pick = |lo: f64, hi: f64| {
        (0..10_000)
            .map(|i| format!("dev-{i}"))
            .find(|a| (lo..hi).contains(&mmm_engine::experiment::hash_v2("acme:big-copy", a)))
            .unwrap()
    };
    let (control, concise, holdout) = (pick(0.0, 0.5), pick(0.5, 0.9), pick(0.9, 1.0));
    let case = |name: &str, actor: &str, expect: &str| {
        format!("  - name: {name}\n    signal: {{tenant_id: acme, actor_id: {actor}, kind: pr.opened, occurred_at: 2026-11-22T10:00:00Z, payload: {{lines: 420}}}}\n    expect:\n{expect}\n")
    };
    let suite = format!(
        "cases:\n{}{}{}",
        case("control keeps the copy", &control, "      actions: [{playbook: big, variant: control, title: Large change}]"),
        case("concise sets the copy", &concise, "      actions: [{playbook: big, variant: concise, title: Big PR, text_contains: \"420 lines.\"}]"),
        case("holdout holds back", &holdout, "      actions: []\n      suppressed: [{playbook: big, reason: experiment_holdout}]"),
    );
    d.write("tests/copy.test.yaml", &suite);
    let o = mmm(&["test", &d.path()]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(stdout(&o).lines().last(), Some("3 passed, 0 failed"));
    // And a wrong variant expectation fails, naming it.
    d.write(
        "tests/copy.test.yaml",
        &suite.replace("variant: concise", "variant: control"),
    );
    let out = stdout(&mmm(&["test", &d.path()]));
    assert!(
        out.contains("variant: expected `control`, got `concise`"),
        "{out}"
    );
}

/// A key pair written as `mmm keygen` writes it (`key`, `key.pub`) and a signer of chain
/// `chain` with that key.
fn key_files(d: &Dir) -> (String, mmm_engine::receipt::SigningKey) {
    let (seed, public) = mmm_engine::receipt::generate_key();
    let key = d.write("key", &format!("{seed}\n"));
    d.write("key.pub", &format!("{public}\n"));
    (
        key,
        mmm_engine::receipt::signing_key_from_bytes(seed.as_bytes()).unwrap(),
    )
}

/// `n` receipt envelopes of chain `chain`, one JSON line each.
fn receipt_lines(key: &mmm_engine::receipt::SigningKey, chain: &str, n: usize) -> Vec<String> {
    let signer = mmm_engine::receipt::ReceiptSigner::with_chain(key.clone(), chain.into());
    (0..n)
        .map(|i| {
            let env = signer
                .sign(serde_json::json!({"receipt_id": format!("r-{i}")}))
                .unwrap();
            serde_json::to_string(&env).unwrap()
        })
        .collect()
}

fn verify_file(d: &Dir, name: &str, lines: &[String], extra: &[&str]) -> (Option<i32>, String) {
    let file = d.write(name, &(lines.join("\n") + "\n"));
    let public = format!("{}/key.pub", d.path());
    let mut args = vec!["verify", "--public-key", &public];
    args.extend_from_slice(extra);
    args.push(&file);
    let o = mmm(&args);
    (o.status.code(), stdout(&o))
}

#[test]
fn verify_from_start_catches_a_cut_head() {
    let d = Dir::new("verify-head");
    let (_, key) = key_files(&d);
    let lines = receipt_lines(&key, "c-1", 5);
    let (code, out) = verify_file(&d, "all.jsonl", &lines, &["--from-start"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("5 receipt(s) verified: chain c-1, seq 1 to 5"),
        "{out}"
    );
    // Without its first two lines the tail verifies on its own by default…
    let (code, out) = verify_file(&d, "tail.jsonl", &lines[2..], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("3 receipt(s) verified: chain c-1, seq 3 to 5"),
        "{out}"
    );
    // …and not when every chain must begin at seq 1.
    let (code, out) = verify_file(&d, "tail.jsonl", &lines[2..], &["--from-start"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("tail.jsonl:1: error[RECEIPT_INVALID]: chain broken: chain `c-1` begins at seq 3, not 1: its first receipts are missing"),
        "{out}"
    );
    // Every chain: a second chain whose head is cut is named at its first line.
    let mut two = lines.clone();
    two.extend(receipt_lines(&key, "c-2", 3).into_iter().skip(1));
    let (code, out) = verify_file(&d, "two.jsonl", &two, &["--from-start"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "two.jsonl:6: error[RECEIPT_INVALID]: chain broken: chain `c-2` begins at seq 2"
        ),
        "{out}"
    );
}

#[test]
fn verify_expect_count_catches_a_cut_tail() {
    let d = Dir::new("verify-tail");
    let (_, key) = key_files(&d);
    let lines = receipt_lines(&key, "c-1", 5);
    let (code, out) = verify_file(&d, "all.jsonl", &lines, &["--expect-count", "5"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = verify_file(&d, "cut.jsonl", &lines[..3], &[]);
    assert_eq!(
        code,
        Some(0),
        "a cut tail is a valid chain on its own: {out}"
    );
    let (code, out) = verify_file(&d, "cut.jsonl", &lines[..3], &["--expect-count", "5"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("cut.jsonl:4: error[RECEIPT_INVALID]: 3 receipt(s), 5 expected: the end of the file is missing"),
        "{out}"
    );
    let (code, out) = verify_file(&d, "all.jsonl", &lines, &["--expect-count", "4"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("all.jsonl:5: error[RECEIPT_INVALID]: more receipts than the 4 expected"),
        "{out}"
    );
    let o = mmm(&[
        "verify",
        "--public-key",
        &format!("{}/key.pub", d.path()),
        "--expect-count",
        "-1",
        &d.write("x.jsonl", ""),
    ]);
    assert_eq!(o.status.code(), Some(2), "clap refuses a negative count");
}

#[test]
fn verify_refuses_a_huge_line_and_names_it() {
    let d = Dir::new("verify-huge");
    let (_, key) = key_files(&d);
    let mut lines = receipt_lines(&key, "c-1", 2);
    // 64 MiB with no line break: refused once the first MiB is passed.
    lines.insert(1, "x".repeat(64 << 20));
    let (code, out) = verify_file(&d, "huge.jsonl", &lines, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("huge.jsonl:2: error[RECEIPT_INVALID]: line is longer than 1048576 bytes"),
        "{out}"
    );
    // Bytes that are not UTF-8 are named too.
    let file = d.0.join("binary.jsonl");
    std::fs::write(&file, [lines[0].as_bytes(), b"\n\xff\xfe\n"].concat()).unwrap();
    let o = mmm(&[
        "verify",
        "--public-key",
        &format!("{}/key.pub", d.path()),
        &file.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("binary.jsonl:2: error[RECEIPT_INVALID]: line is not UTF-8"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn verify_names_the_line_that_is_not_an_envelope() {
    let d = Dir::new("verify-garbage");
    let (_, key) = key_files(&d);
    let mut lines = receipt_lines(&key, "c-1", 3);
    lines.insert(2, r#"{"payload": "", "signatures": []}"#.to_owned());
    let (code, out) = verify_file(&d, "garbage.jsonl", &lines, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "garbage.jsonl:3: error[RECEIPT_INVALID]: malformed envelope: missing field `payloadType`"
        ),
        "{out}"
    );
    // Not JSON at all: the line is named too.
    lines[2] = "{".to_owned();
    let (code, out) = verify_file(&d, "garbage.jsonl", &lines, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("garbage.jsonl:3: error[RECEIPT_INVALID]: malformed envelope: "),
        "{out}"
    );
}

#[test]
fn verify_reads_a_file_of_many_receipts_in_several_chains() {
    let d = Dir::new("verify-many");
    let (_, key) = key_files(&d);
    // Small enough for a debug build; memory with large files is measured in
    // docs/receipts.md.
    let (a, b) = (receipt_lines(&key, "a", 300), receipt_lines(&key, "b", 300));
    // Two engines appending to one file: their receipts interleave.
    let lines: Vec<String> = a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect();
    let (code, out) = verify_file(
        &d,
        "many.jsonl",
        &lines,
        &["--from-start", "--expect-count", "600"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("600 receipt(s) verified in 2 chains, no gaps"),
        "{out}"
    );
    assert!(
        out.contains("chain a: seq 1 to 300 (300 receipt(s))"),
        "{out}"
    );
    assert!(
        out.contains("chain b: seq 1 to 300 (300 receipt(s))"),
        "{out}"
    );
    // One receipt removed from the middle of `b` is found, with the line after the gap.
    let mut cut = lines.clone();
    cut.remove(401);
    let (code, out) = verify_file(&d, "cut.jsonl", &cut, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "cut.jsonl:403: error[RECEIPT_INVALID]: chain broken: seq 202 does not follow 200"
        ),
        "{out}"
    );
}

#[test]
fn json_files_with_a_byte_order_mark_are_read() {
    let d = Dir::new("bom");
    d.write("big.yaml", PLAYBOOK);
    let signal = d.write("signal.json", &format!("\u{FEFF}{SIGNAL}"));
    let context = d.write("context.json", "\u{FEFF}{}");
    let o = mmm(&[
        "decide",
        "--playbooks",
        &d.path(),
        "--signal",
        &signal,
        "--context",
        &context,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let decision: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(decision["actions"][0]["text"], "420 lines changed.");
    let signals = d.write("signals.jsonl", &format!("\u{FEFF}{SIGNAL}\n"));
    let o = mmm(&["simulate", "--playbooks", &d.path(), "--signals", &signals]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout(&o).contains("replayed 1 signal(s)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn integers_beyond_64_bits_and_loose_timestamps_are_refused_by_field() {
    let d = Dir::new("numbers");
    d.write("big.yaml", PLAYBOOK);
    let huge = d.write(
        "huge.json",
        &SIGNAL.replace(
            "\"lines\": 420",
            "\"lines\": 123456789012345678901234567890",
        ),
    );
    let o = mmm(&["decide", "--playbooks", &d.path(), "--signal", &huge]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("field `payload.lines`") && err.contains("does not fit in 64 bits"),
        "{err}"
    );
    let signal = d.write("signal.json", SIGNAL);
    for now in [
        "2026-11-22 10:00:00Z",
        "2026-11-22T10:00:00+25:00",
        "2026-11-22T10:00Z",
    ] {
        let o = mmm(&[
            "decide",
            "--playbooks",
            &d.path(),
            "--signal",
            &signal,
            "--now",
            now,
        ]);
        assert_eq!(o.status.code(), Some(1), "{now}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("--now:") && err.contains("is not an RFC 3339 timestamp"),
            "{err}"
        );
    }
    let o = mmm(&[
        "decide",
        "--playbooks",
        &d.path(),
        "--signal",
        &signal,
        "--now",
        "9999-12-31T23:59:59Z",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Runs `mmm` with a 10 s ceiling that only guards against a hang (the child is killed then).
fn mmm_bounded(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_mmm"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("mmm {args:?} did not finish within 10 s");
        }
    }
}

#[test]
fn validate_refuses_hostile_yaml_with_a_diagnostic_and_exit_1_never_101() {
    let d = Dir::new("hostile");
    let mut deep_block = String::from("apiVersion: mmm/v1\nspec:\n");
    for i in 0..2_000 {
        deep_block.push_str(&format!("{}k:\n", " ".repeat(i + 1)));
    }
    let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 9].join(", ")
        ));
    }
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alias.yaml",
            "apiVersion: mmm/v1\nfoo: *nope\n".into(),
            ":2:6: error[yaml]",
        ),
        (
            "bom.yaml",
            "\u{feff}a: 1\nb: 2\n".into(),
            ":1:1: error[unknown-field]",
        ),
        ("deep-block.yaml", deep_block, ":66:"),
        (
            "deep-flow.yaml",
            format!(
                "apiVersion: mmm/v1\nspec: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            ":2:",
        ),
        ("bomb.yaml", bomb, "error[limit]"),
        (
            "nan.yaml",
            PLAYBOOK.replace("  fatigue: {cooldown: 1h}\n", "  priority: .nan\n"),
            ":7:13: error[invalid-type]",
        ),
        ("latin1.yaml", String::new(), ":1:7: error[encoding]"),
    ];
    for (name, text, expected) in cases {
        let path = if name == "latin1.yaml" {
            let path = d.0.join(name);
            std::fs::write(&path, b"kind: \xe9t\xe9\n").unwrap();
            path.display().to_string()
        } else {
            d.write(name, &text)
        };
        let o = mmm_bounded(&["validate", &path]);
        let out = stdout(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.starts_with(&path) && out.contains(expected),
            "{name}: {out}"
        );
    }
}

#[cfg(unix)]
#[test]
fn validate_refuses_devices_fifos_and_loops_in_a_directory_without_blocking() {
    let d = Dir::new("hostile-dir");
    d.write("good.yaml", PLAYBOOK);
    std::os::unix::fs::symlink("/dev/zero", d.0.join("zero.yaml")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(d.0.join("pipe.yaml"))
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(".", d.0.join("again")).unwrap();
    let o = mmm_bounded(&["validate", &d.path()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(out.contains("again:1:1: error[io]: symlink loop"), "{out}");
    assert!(out.contains("pipe.yaml:1:1: error[io]: is a FIFO"), "{out}");
    assert!(
        out.contains("zero.yaml:1:1: error[io]: is a device"),
        "{out}"
    );
}

#[test]
fn a_hostile_suite_file_fails_its_own_line_in_mmm_test() {
    let d = Dir::new("hostile-suite");
    d.write("big.yaml", PLAYBOOK);
    let suite = d.write("tests/a.test.yaml", "cases: *nope\n");
    let o = mmm_bounded(&["test", &d.path()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("FAIL {suite}:1:8: invalid test suite:")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("0 passed, 1 failed"), "{out}");
    // A big integer in a signal is refused, not rounded.
    let suite = d.write(
        "tests/a.test.yaml",
        "cases:\n  - name: big\n    signal: {tenant_id: acme, actor_id: dev, kind: pr.opened, occurred_at: 2026-11-22T10:00:00Z, payload: {lines: 123456789012345678901234567890}}\n",
    );
    let o = mmm_bounded(&["test", &d.path()]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("FAIL {suite}:3:"))
            && out.contains("`cases[0].signal.payload.lines` does not fit in 64 bits"),
        "{out}"
    );
}
