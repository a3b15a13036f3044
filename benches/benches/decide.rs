//! `decide` on nudge-1k: 1,000 playbooks over 20 kinds (50 candidates per kind), cycling
//! through 20,000 random signals. Target: median ≤ 10 µs without explain.
//!
//! ```sh
//! cargo bench -p mmm-benches --bench decide
//! ```

// Setup failures are bugs in the benchmark, and a benchmark that cannot start should stop.
#![expect(
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mmm_benches::{in_turn, kind, nudge_1k, NudgeSpec, NOW, TENANT};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet};

fn decide(c: &mut Criterion) {
    let workload = nudge_1k();
    let set = PlaybookSet::from_yaml(&workload.yaml).expect("nudge-1k loads");
    assert_eq!(set.len(), NudgeSpec::NUDGE_1K.playbooks);
    assert!(
        set.live().iter().all(|p| p.has_native_condition()),
        "nudge-1k conditions must run natively"
    );
    assert_eq!(set.candidate_refs(TENANT, &kind(7)).len(), 50);
    let engine = Engine::builder()
        .playbooks(set)
        .fatigue(Arc::new(InMemoryFatigue::new()))
        .build();

    let mut group = c.benchmark_group("nudge_1k");
    for (name, explain) in [("decide", false), ("decide_explain", true)] {
        let options = DecideOptions {
            now: Some(NOW),
            explain,
        };
        let signals = &workload.signals;
        // Every signal decides without error, and some produce actions.
        let acted: usize = signals
            .iter()
            .take(200)
            .map(|s| {
                engine
                    .decide(s, None, &options)
                    .expect("decides")
                    .actions
                    .len()
            })
            .sum();
        assert!(acted > 0, "nudge-1k signals should produce actions");
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
    targets = decide
}
criterion_main!(benches);
