//! Whether a decision's cost depends on the playbooks loaded or only on its candidates:
//! the same 50 candidates for the benchmarked kind, with 500 playbooks loaded (10 kinds'
//! worth) and with 10,000 (200 kinds' worth). Target: the two medians within 1.5× of each
//! other.
//!
//! ```sh
//! cargo bench -p mmm-benches --bench scaling
//! ```

// Setup failures are bugs in the benchmark, and a benchmark that cannot start should stop.
#![expect(
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mmm_benches::{in_turn, kind, scaling, NOW, SEED, TENANT};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet};

/// Candidates for the benchmarked kind, whatever the number of playbooks loaded.
const CANDIDATES: usize = 50;

fn decide_by_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling_50_candidates");
    let options = DecideOptions {
        now: Some(NOW),
        explain: false,
    };
    for total in [500, 10_000] {
        let workload = scaling(total, CANDIDATES, 2_000, SEED);
        let set = PlaybookSet::from_yaml(&workload.yaml).expect("scaling workload loads");
        assert_eq!(set.len(), total);
        assert_eq!(set.candidate_refs(TENANT, &kind(0)).len(), CANDIDATES);
        let engine = Engine::builder()
            .playbooks(set)
            .fatigue(Arc::new(InMemoryFatigue::new()))
            .build();
        let signals = &workload.signals;
        let mut next = in_turn(signals);
        group.bench_with_input(BenchmarkId::new("decide", total), &engine, |b, engine| {
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
    targets = decide_by_size
}
criterion_main!(benches);
