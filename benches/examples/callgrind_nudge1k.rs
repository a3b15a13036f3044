//! A fixed number of nudge-1k decisions, for counting instructions with callgrind.
//!
//! Criterion medians move by 10–30 % on a shared machine; an instruction count does not.
//! The decisions run inside [`decide_loop`], which callgrind is told to measure:
//!
//! ```sh
//! cargo build --release -p mmm-benches --example callgrind_nudge1k
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/nudge1k.cg \
//!     --toggle-collect='callgrind_nudge1k::decide_loop' \
//!     target/release/examples/callgrind_nudge1k 2000
//! callgrind_annotate /tmp/nudge1k.cg | head -30    # total Ir / 2000 = per decision
//! ```

// Setup failures are bugs in the harness, and a harness that cannot start should stop.
#![expect(
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Arc;

use mmm_benches::{nudge_1k, NOW};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet};
use serde_json::Value;

/// Decides `count` signals, cycling through `signals`; the region callgrind measures.
#[inline(never)]
fn decide_loop(engine: &Engine, signals: &[Value], options: &DecideOptions, count: usize) -> usize {
    let mut actions = 0;
    for signal in signals.iter().cycle().take(count) {
        let decision = engine
            .decide(black_box(signal), None, options)
            .expect("decides");
        actions += decision.actions.len();
        black_box(decision);
    }
    actions
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(2_000, |n| n.parse().expect("a number of decisions"));
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
    // Warm the engine (thread-locals, caches) outside the measured region.
    for signal in workload.signals.iter().take(200) {
        black_box(engine.decide(signal, None, &options).expect("decides"));
    }
    let actions = decide_loop(&engine, &workload.signals, &options, count);
    println!("{count} decisions, {actions} actions");
}
