//! The cost of the Rhai path next to the native one: `decide` with the same thresholds and
//! signals, for 1 and for 50 candidates whose conditions run natively
//! (`signal.payload.lines > T && signal.payload.files > F`), through a method call
//! (`… && signal.repo.branch.starts_with("release/")`, on Rhai until `starts_with` on a
//! literal joined the native subset), or on Rhai through a helper
//! (`… && recent_count("ci.failed", "1h") > 2`). Every variant passes the same context
//! (five recent signals). For information; no target.
//!
//! ```sh
//! cargo bench -p mmm-benches --bench conditions
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
use mmm_benches::{condition_workload, in_turn, ConditionPath, NOW, SEED};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet};

fn conditions(c: &mut Criterion) {
    let mut group = c.benchmark_group("condition_path");
    let options = DecideOptions {
        now: Some(NOW),
        explain: false,
    };
    for candidates in [1, 50] {
        for path in ConditionPath::ALL {
            let workload = condition_workload(path, candidates, 2_000, SEED);
            let set = PlaybookSet::from_yaml(&workload.yaml).expect("condition workload loads");
            let native = path.is_native();
            assert!(set
                .live()
                .iter()
                .all(|p| p.has_native_condition() == native));
            let engine = Engine::builder()
                .playbooks(set)
                .fatigue(Arc::new(InMemoryFatigue::new()))
                .build();
            let context = workload.context.as_ref();
            let signals = &workload.signals;
            // No condition errors: every candidate's condition evaluated.
            for signal in signals.iter().take(100) {
                let decision = engine.decide(signal, context, &options).expect("decides");
                assert!(
                    decision
                        .suppressed
                        .iter()
                        .all(|s| s.reason.as_str() != "condition_error"),
                    "{}: {:?}",
                    path.name(),
                    decision.suppressed
                );
            }
            let mut next = in_turn(signals);
            let id = BenchmarkId::new(path.name(), candidates);
            group.bench_with_input(id, &engine, |b, engine| {
                b.iter(|| black_box(engine.decide(black_box(next()), context, &options)));
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = conditions
}
criterion_main!(benches);
