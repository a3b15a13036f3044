//! `decide` on the bundled `playbooks/` directory with the example large pull request
//! (`examples/signals/large-pr.json`, `pr.opened`, 420 lines in 12 files) and the example
//! context (`examples/signals/context.json`). The bundled conditions use `?.`, `??`,
//! `glob` and `recent_count`, so they run on Rhai. For information; no target.
//!
//! - `large_pr_first`: the actor has no fatigue history (the store is emptied before every
//!   iteration, outside the measurement), so `large-pr` fires.
//! - `large_pr_repeat`: the same signal again for an actor who just got it, so `large-pr`'s
//!   24 h cooldown suppresses it.
//!
//! ```sh
//! cargo bench -p mmm-benches --bench bundled
//! ```

// Setup failures are bugs in the benchmark, and a benchmark that cannot start should stop.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use mmm_benches::{bundled_playbooks_dir, large_pr_example, ResettableFatigue};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet, Reason};

fn bundled(c: &mut Criterion) {
    let dir = bundled_playbooks_dir();
    let set = PlaybookSet::from_path(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
        .unwrap();
    let (signal, context, now) = large_pr_example().unwrap();
    let options = DecideOptions {
        now: Some(now),
        explain: false,
    };
    let candidates = set.candidate_refs("acme", "pr.opened");
    assert!(
        candidates.iter().any(|(id, _)| id == "large-pr"),
        "{candidates:?}"
    );

    let mut group = c.benchmark_group("bundled_playbooks");

    let fresh = Arc::new(ResettableFatigue::new());
    let engine = Engine::builder()
        .playbooks_shared(Arc::new(set))
        .fatigue(Arc::clone(&fresh) as _)
        .build();
    let first = engine
        .decide(&signal, Some(&context), &options)
        .expect("decides");
    assert!(
        first.actions.iter().any(|a| a.playbook.id == "large-pr"),
        "large-pr should fire: {first:#?}"
    );
    group.bench_function("large_pr_first", |b| {
        b.iter_batched(
            || fresh.reset(),
            |()| engine.decide(black_box(&signal), Some(&context), &options),
            BatchSize::SmallInput,
        );
    });

    let repeat = Engine::builder()
        .playbooks_shared(engine.playbooks())
        .fatigue(Arc::new(InMemoryFatigue::new()))
        .build();
    repeat
        .decide(&signal, Some(&context), &options)
        .expect("decides");
    let again = repeat
        .decide(&signal, Some(&context), &options)
        .expect("decides");
    assert!(
        again
            .suppressed
            .iter()
            .any(|s| s.playbook.id == "large-pr" && s.reason == Reason::FatigueCooldown),
        "large-pr should be in cooldown: {again:#?}"
    );
    group.bench_function("large_pr_repeat", |b| {
        b.iter(|| black_box(repeat.decide(black_box(&signal), Some(&context), &options)));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = bundled
}
criterion_main!(benches);
