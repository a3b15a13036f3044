//! What signing costs a decision: nudge-1k `decide` with a signing key (the receipt is
//! built, chained and signed; with no receipts port the envelope is returned in the
//! decision) against the same engine without one. Target: signed ≤ unsigned + 25 µs.
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
use mmm_engine::receipt::SigningKey;
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = signing
}
criterion_main!(benches);
