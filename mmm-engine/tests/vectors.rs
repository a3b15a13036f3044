//! The shared test vectors (`tests/vectors/*.json`), replayed here and by the Python and
//! Node suites. Each vector holds playbooks (YAML text) and steps decided in order on one
//! engine; `expected` is the decision without the fields that differ per run.
//! Set `MMM_UPDATE_VECTORS=1` to rewrite `expected` from the current engine (then review
//! the diff).

use std::path::PathBuf;

use mmm_engine::{DecideOptions, Engine, EngineConfig, GivenSignal, PlaybookSet};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Removes what differs between runs: ids the engine generates and timings.
pub fn normalise(mut decision: Value) -> Value {
    if let Some(obj) = decision.as_object_mut() {
        obj.remove("decision_id");
        obj.remove("latency_us");
        obj.remove("latency_warning");
        if let Some(Value::Object(receipt)) = obj.get_mut("receipt") {
            receipt.remove("receipt_id");
        }
        if let Some(Value::Array(actions)) = obj.get_mut("actions") {
            for a in actions {
                if let Some(a) = a.as_object_mut() {
                    a.remove("action_id");
                }
            }
        }
    }
    decision
}

#[test]
fn shared_vectors_replay() {
    let update = std::env::var("MMM_UPDATE_VECTORS").is_ok_and(|v| v == "1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the shared vectors, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    // Through `decide` (the signal lent), then again on fresh engines through
    // `decide_owned` (the signal given) and `decide_given` with an object signal's members,
    // which must decide the same.
    for (file, way) in files.iter().map(|f| (f, Way::Lent)).chain(
        [Way::Owned, Way::Fields]
            .into_iter()
            .flat_map(|w| files.iter().map(move |f| (f, w))),
    ) {
        let update = update && way == Way::Lent;
        let mut vector: Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let set = PlaybookSet::from_yaml(vector["playbooks"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Real time: the `runaway` vector expects Rhai's operation limit to stop it. Under
        // a loaded debug build 100,000 operations can outlast the default 50 ms time limit,
        // which would then stop it first with another message; the time limit is raised so
        // that the operation limit, which the vector is about, always decides.
        let mut config = EngineConfig::default();
        config.condition_limits.time_limit = std::time::Duration::from_secs(600);
        let engine = Engine::builder().playbooks(set).config(config).build();
        for (i, step) in vector["steps"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            let options = DecideOptions {
                now: Some(step["now"].as_str().unwrap().parse().unwrap()),
                explain: step["explain"].as_bool().unwrap_or(false),
            };
            let ctx = step.get("context").filter(|c| !c.is_null()).cloned();
            let decided = match (way, step["signal"].as_object()) {
                (Way::Lent, _) => engine.decide(&step["signal"], ctx.as_ref(), &options),
                (Way::Fields, Some(obj)) => {
                    let fields = obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    engine.decide_given(GivenSignal::Fields(fields), ctx.as_ref(), &options)
                }
                (Way::Owned | Way::Fields, _) => {
                    engine.decide_owned(step["signal"].clone(), ctx.as_ref(), &options)
                }
            };
            let got = match decided {
                Ok(d) => normalise(serde_json::to_value(d).unwrap()),
                Err(e) => serde_json::json!({"error": e.info()}),
            };
            if update {
                step["expected"] = got;
            } else if step["expected"] != got {
                failures.push(format!(
                    "{} step {i} ({}):\nexpected {}\n     got {}",
                    file.display(),
                    way.name(),
                    serde_json::to_string(&step["expected"]).unwrap(),
                    serde_json::to_string(&got).unwrap()
                ));
            }
        }
        if update {
            std::fs::write(file, serde_json::to_string_pretty(&vector).unwrap() + "\n").unwrap();
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Golden receipts: a fixed key, chain id and payloads give these exact envelopes
/// (Ed25519 is deterministic), which every binding must reproduce and verify.
#[test]
fn golden_receipts() {
    use mmm_engine::receipt::{signing_key_from_bytes, verify_chain, Envelope, ReceiptSigner};
    let path = vectors_dir().join("receipts/golden.json");
    let update = std::env::var("MMM_UPDATE_VECTORS").is_ok_and(|v| v == "1");
    let mut golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let seed = golden["seed_hex"].as_str().unwrap().to_owned();
    let key = signing_key_from_bytes(seed.as_bytes()).unwrap();
    assert_eq!(
        hex::encode(key.verifying_key().as_bytes()),
        golden["public_key_hex"].as_str().unwrap()
    );
    let signer =
        ReceiptSigner::with_chain(key.clone(), golden["chain_id"].as_str().unwrap().to_owned());
    let mut envelopes = Vec::new();
    for entry in golden["receipts"].as_array_mut().unwrap() {
        let envelope = signer.sign(entry["payload"].clone()).unwrap();
        let line = serde_json::to_string(&envelope).unwrap();
        if update {
            entry["envelope_json"] = Value::String(line);
        } else {
            assert_eq!(
                entry["envelope_json"].as_str().unwrap(),
                line,
                "envelope bytes differ"
            );
        }
        envelopes.push(
            serde_json::from_str::<Envelope>(entry["envelope_json"].as_str().unwrap()).unwrap(),
        );
    }
    verify_chain(&envelopes, &key.verifying_key()).unwrap();
    if update {
        std::fs::write(&path, serde_json::to_string_pretty(&golden).unwrap() + "\n").unwrap();
    }
}

/// How the vectors' signals are handed to the engine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Lent,
    Owned,
    Fields,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Lent => "decide",
            Way::Owned => "decide_owned",
            Way::Fields => "decide_given(Fields)",
        }
    }
}
