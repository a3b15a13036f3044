//! A fixed number of nudge-1k decisions with a signing key (every decision builds, chains
//! and signs its receipt; with no receipts port the envelope is returned in the decision),
//! for counting instructions with callgrind. `unsigned` runs the same engine without a key,
//! so the difference of the two counts is what signing costs. `aws_lc` (as the engine
//! signs), `dalek` and `ring` sign the PAE of a real receipt payload `count` times with that
//! library alone (the floor: what Ed25519 over the contract's bytes costs, with nothing
//! around it). Valgrind hides some CPU features, so a library may run another code path
//! under callgrind than natively: compare wall times with `cargo bench --bench signing`.
//!
//! ```sh
//! cargo build --release -p mmm-benches --example callgrind_signing
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/signing.cg \
//!     --toggle-collect='callgrind_signing::decide_loop' \
//!     target/release/examples/callgrind_signing 2000 [signed|unsigned]
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/ed25519.cg \
//!     --toggle-collect='callgrind_signing::sign_loop' \
//!     target/release/examples/callgrind_signing 2000 [aws_lc|dalek|ring]
//! callgrind_annotate /tmp/signing.cg | head -30    # total Ir / 2000 = per decision
//! ```

// Setup failures are bugs in the harness, and a harness that cannot start should stop.
#![expect(
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Arc;

use ed25519_dalek::Signer as _;
use mmm_benches::{nudge_1k, NOW};
use mmm_engine::receipt::{decode_base64, pae, SigningKey, PAYLOAD_TYPE};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet, ReceiptStatus};
use serde_json::Value;

/// Decides `count` signals, cycling through `signals`; the region callgrind measures.
#[inline(never)]
fn decide_loop(engine: &Engine, signals: &[Value], options: &DecideOptions, count: usize) -> usize {
    let mut payload_bytes = 0;
    for signal in signals.iter().cycle().take(count) {
        let decision = engine
            .decide(black_box(signal), None, options)
            .expect("decides");
        // Base64 length: the payload's size, ×4/3.
        payload_bytes += decision
            .receipt
            .envelope
            .as_ref()
            .map_or(0, |e| e.payload.len() / 4 * 3);
        black_box(decision);
    }
    payload_bytes
}

/// Signs `message` `count` times with one library; the region callgrind measures.
#[inline(never)]
fn sign_loop(message: &[u8], library: &str, count: usize) -> u8 {
    let seed = [7; 32];
    let dalek = SigningKey::from_bytes(&seed);
    let ring = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("a seed");
    let aws_lc = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("a seed");
    let first = |s: &[u8]| s.first().copied().unwrap_or_default();
    let mut last = 0;
    for _ in 0..count {
        last ^= match library {
            "ring" => first(ring.sign(black_box(message)).as_ref()),
            "aws_lc" => first(aws_lc.sign(black_box(message)).as_ref()),
            _ => dalek.sign(black_box(message)).to_bytes()[0],
        };
    }
    last
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map_or(2_000, |n| n.parse().expect("a number of decisions"));
    let mode = args.next().unwrap_or_else(|| "signed".to_owned());
    let signed = mode != "unsigned";
    let workload = nudge_1k();
    let set = PlaybookSet::from_yaml(&workload.yaml).expect("nudge-1k loads");
    let mut builder = Engine::builder()
        .playbooks(set)
        .fatigue(Arc::new(InMemoryFatigue::new()));
    if signed {
        builder = builder.signing_key(SigningKey::from_bytes(&[7; 32]));
    }
    let engine = builder.build();
    let options = DecideOptions {
        now: Some(NOW),
        explain: false,
    };
    // Warm the engine (thread-locals, caches) outside the measured region.
    for signal in workload.signals.iter().take(200) {
        let decision = engine.decide(signal, None, &options).expect("decides");
        let expected = if signed {
            ReceiptStatus::Emitted
        } else {
            ReceiptStatus::Disabled
        };
        assert_eq!(decision.receipt.status, expected);
    }
    if ["aws_lc", "dalek", "ring"].contains(&mode.as_str()) {
        let decision = engine
            .decide(workload.signals.first().expect("a signal"), None, &options)
            .expect("decides");
        let envelope = decision.receipt.envelope.expect("a signed envelope");
        let message = pae(
            PAYLOAD_TYPE,
            &decode_base64(&envelope.payload).expect("base64 payload"),
        );
        let last = sign_loop(&message, &mode, count);
        println!(
            "{count} {mode} signatures over a PAE of {} bytes ({last})",
            message.len()
        );
        return;
    }
    let payload_bytes = decide_loop(&engine, &workload.signals, &options, count);
    println!(
        "{count} decisions, signed receipt payloads of {} bytes on average",
        payload_bytes / count.max(1)
    );
}
