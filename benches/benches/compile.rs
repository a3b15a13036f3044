//! Compiling nudge-1k's 1,000 playbooks: `PlaybookSet::from_yaml` on one 1,000-document
//! YAML text (parsing, validation, condition and template compilation, indexing).
//! Target: median ≤ 200 ms.
//!
//! ```sh
//! cargo bench -p mmm-benches --bench compile
//! ```

// Setup failures are bugs in the benchmark, and a benchmark that cannot start should stop.
#![expect(
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use mmm_benches::{nudge_1k, NudgeSpec};
use mmm_engine::PlaybookSet;

fn compile(c: &mut Criterion) {
    let workload = nudge_1k();
    let set = PlaybookSet::from_yaml(&workload.yaml).expect("nudge-1k loads");
    assert_eq!(set.len(), NudgeSpec::NUDGE_1K.playbooks);
    drop(set);

    let mut group = c.benchmark_group("compile");
    // Each iteration takes tens of milliseconds: few samples of equal size (flat sampling)
    // keep the run short.
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    group.bench_function("nudge_1k", |b| {
        b.iter(|| black_box(PlaybookSet::from_yaml(black_box(&workload.yaml))));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    targets = compile
}
criterion_main!(benches);
