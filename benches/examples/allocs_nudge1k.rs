//! Heap allocations per nudge-1k decision, counted by a wrapping global allocator.
//!
//! Every allocation is an instruction count the profile does not show in one place (the
//! allocator, the copy, and the free when the decision is dropped), so the count is
//! tracked on its own:
//!
//! ```sh
//! cargo run --release -p mmm-benches --example allocs_nudge1k           # 2,000 decisions
//! cargo run --release -p mmm-benches --example allocs_nudge1k -- 200 40 # …and fail above 40
//! ```
//!
//! It warms the engine with 200 decisions, then counts over the given number (the
//! decisions are dropped inside the counted region, as a caller would drop them). With a
//! second argument it exits non-zero when a decision allocates more than that on average,
//! which is how CI keeps the figure from creeping back up without timing anything.

// Setup failures are bugs in the harness, and a harness that cannot start should stop.
#![expect(
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;

use mmm_benches::{nudge_1k, NOW};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

// `stats_alloc` keeps the `unsafe impl GlobalAlloc` out of this workspace, which forbids
// unsafe code.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map_or(2_000, |n| n.parse().expect("a number of decisions"));
    let limit: Option<f64> = args
        .next()
        .map(|n| n.parse().expect("a limit on allocations per decision"));
    let workload = nudge_1k();
    let set = PlaybookSet::from_yaml(&workload.yaml).expect("nudge-1k loads");
    let engine = Engine::builder()
        .playbooks(set)
        .fatigue(Arc::new(InMemoryFatigue::new()))
        .build();
    let options = DecideOptions {
        now: Some(NOW),
        explain: false,
    };
    // Warm the engine (thread-locals, caches, the fatigue store's maps) outside the count.
    for signal in workload.signals.iter().take(200) {
        black_box(engine.decide(signal, None, &options).expect("decides"));
    }
    let region = Region::new(GLOBAL);
    let mut actions = 0;
    let mut suppressed = 0;
    for signal in workload.signals.iter().skip(200).cycle().take(count) {
        let decision = engine
            .decide(black_box(signal), None, &options)
            .expect("decides");
        actions += decision.actions.len();
        suppressed += decision.suppressed.len();
        drop(black_box(decision));
    }
    let stats = region.change();
    #[expect(
        clippy::cast_precision_loss,
        reason = "counts far below 2^52; a per-decision average to one decimal"
    )]
    let per = |n: usize| n as f64 / count as f64;
    let allocations = per(stats.allocations + stats.reallocations);
    println!(
        "{count} decisions ({:.1} actions, {:.1} suppressions each): \
         {allocations:.1} allocations ({:.1} allocs + {:.1} reallocs), {:.0} bytes per decision",
        per(actions),
        per(suppressed),
        per(stats.allocations),
        per(stats.reallocations),
        per(stats.bytes_allocated),
    );
    if let Some(limit) = limit {
        if allocations > limit {
            eprintln!("more than {limit} allocations per decision");
            std::process::exit(1);
        }
    }
}
