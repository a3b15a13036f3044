//! What signing costs a decision: nudge-1k `decide` with a signing key (the receipt is
//! built, chained and signed; with no receipts port the envelope is returned in the
//! decision) against the same engine without one. Target: signed ≤ unsigned + 25 µs.
//!
//! The group `ed25519_sign` measures the floor under that: Ed25519 alone over the PAE of a
//! real nudge-1k receipt payload (the bytes SPEC §7 signs), with AWS-LC (`aws-lc-rs`) as
//! the engine signs, and for comparison with ed25519-dalek (which holds the engine's keys
//! and verifies) and `ring`; all must give the same signature (Ed25519 is deterministic). `sha512_pae` is the hashing inside one signature: Ed25519
//! hashes the message twice.
//!
//! ```sh
//! cargo bench -p mmm-benches --bench signing
//! ```

// Setup failures are bugs in the benchmark, and a benchmark that cannot start should stop.
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mmm_benches::{in_turn, nudge_1k, NOW};
use mmm_engine::receipt::{decode_base64, pae, SigningKey, PAYLOAD_TYPE};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet, ReceiptStatus};

fn signing(c: &mut Criterion) {
    let workload = nudge_1k();
    let options = DecideOptions {
        now: Some(NOW),
        explain: false,
    };
    let mut group = c.benchmark_group("nudge_1k_signing");
    for (name, key) in [
        ("decide_unsigned", None),
        ("decide_signed", Some(SigningKey::from_bytes(&[7; 32]))),
    ] {
        let set = PlaybookSet::from_yaml(&workload.yaml).expect("nudge-1k loads");
        let mut builder = Engine::builder()
            .playbooks(set)
            .fatigue(Arc::new(InMemoryFatigue::new()));
        let expected = match key {
            Some(key) => {
                builder = builder.signing_key(key);
                ReceiptStatus::Emitted
            }
            None => ReceiptStatus::Disabled,
        };
        let engine = builder.build();
        let first = engine
            .decide(&workload.signals[0], None, &options)
            .expect("decides");
        assert_eq!(first.receipt.status, expected);
        let signals = &workload.signals;
        let mut next = in_turn(signals);
        group.bench_function(name, |b| {
            b.iter(|| black_box(engine.decide(black_box(next()), None, &options)));
        });
    }
    group.finish();
}

/// The PAE of a real nudge-1k receipt: what a signed decision hands to Ed25519.
fn real_pae() -> Vec<u8> {
    let workload = nudge_1k();
    let set = PlaybookSet::from_yaml(&workload.yaml).expect("nudge-1k loads");
    let engine = Engine::builder()
        .playbooks(set)
        .fatigue(Arc::new(InMemoryFatigue::new()))
        .signing_key(SigningKey::from_bytes(&[7; 32]))
        .build();
    let options = DecideOptions {
        now: Some(NOW),
        explain: false,
    };
    let decision = engine
        .decide(&workload.signals[0], None, &options)
        .expect("decides");
    let envelope = decision.receipt.envelope.expect("a signed envelope");
    let payload = decode_base64(&envelope.payload).expect("base64 payload");
    pae(PAYLOAD_TYPE, &payload)
}

fn ed25519_sign(c: &mut Criterion) {
    use ed25519_dalek::Signer as _;
    use sha2::Digest as _;

    let message = real_pae();
    let seed = [7; 32];
    let dalek = SigningKey::from_bytes(&seed);
    let ring = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("a seed");
    let aws_lc = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("a seed");
    let signature = dalek.sign(&message).to_bytes();
    assert!(
        signature.as_slice() == ring.sign(&message).as_ref()
            && signature.as_slice() == aws_lc.sign(&message).as_ref(),
        "Ed25519 is deterministic: all give the same signature"
    );
    let mut group = c.benchmark_group("ed25519_sign");
    group.throughput(criterion::Throughput::Bytes(message.len() as u64));
    group.bench_function("dalek", |b| {
        b.iter(|| black_box(dalek.sign(black_box(&message))));
    });
    group.bench_function("aws_lc", |b| {
        b.iter(|| black_box(aws_lc.sign(black_box(&message))));
    });
    group.bench_function("ring", |b| {
        b.iter(|| black_box(ring.sign(black_box(&message))));
    });
    group.bench_function("sha512_pae", |b| {
        b.iter(|| black_box(sha2::Sha512::digest(black_box(&message))));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = signing, ed25519_sign
}
criterion_main!(benches);
