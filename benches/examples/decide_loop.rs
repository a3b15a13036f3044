//! A fixed loop of decisions for instruction counting, where wall-clock medians are too
//! noisy to compare: `valgrind --tool=callgrind` counts the instructions of `run` only.
//!
//! ```sh
//! cargo build --release -p mmm-benches --example decide_loop
//! valgrind --tool=callgrind --toggle-collect='decide_loop::run' \
//!     target/release/examples/decide_loop nudge_1k 2000
//! ```
//!
//! Workloads: `nudge_1k` (native conditions), `rhai_starts_with` and `rhai_recent_count`
//! (50 candidates each, conditions on Rhai; see the `conditions` benchmark), and `bundled`
//! (the bundled playbooks and the example large pull request and context, with `glob`,
//! `recent_count` and `?.`; fatigue lets `large-pr` fire once, then repeats are in cooldown).

// A harness that cannot set up should stop with the reason.
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Arc;

use mmm_benches::{
    bundled_playbooks_dir, condition_workload, large_pr_example, nudge_1k, ConditionPath, Workload,
    NOW, SEED,
};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet};

#[inline(never)]
fn run(engine: &Engine, workload: &Workload, now: jiff::Timestamp, n: usize) -> usize {
    let options = DecideOptions {
        now: Some(now),
        explain: false,
    };
    let context = workload.context.as_ref();
    let mut acted = 0;
    for i in 0..n {
        let signal = &workload.signals[i % workload.signals.len()];
        let decision = engine
            .decide(black_box(signal), context, &options)
            .expect("decides");
        acted += decision.actions.len();
    }
    acted
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "nudge_1k".to_owned());
    let n: usize = args.next().map_or(2_000, |n| n.parse().expect("a count"));
    let mut now = NOW;
    let workload = match name.as_str() {
        "bundled" => {
            let (signal, context, at) = large_pr_example().expect("the example loads");
            now = at;
            let yaml = std::fs::read_dir(bundled_playbooks_dir())
                .expect("playbooks/")
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .map(|p| std::fs::read_to_string(p).expect("a playbook"))
                .collect::<Vec<_>>()
                .join("\n---\n");
            Workload {
                yaml,
                signals: vec![signal],
                context: Some(context),
            }
        }
        "nudge_1k" => nudge_1k(),
        "rhai_starts_with" => condition_workload(ConditionPath::RhaiStartsWith, 50, 2_000, SEED),
        "rhai_recent_count" => condition_workload(ConditionPath::RhaiRecentCount, 50, 2_000, SEED),
        other => panic!("unknown workload `{other}`"),
    };
    let set = PlaybookSet::from_yaml(&workload.yaml).expect("the workload loads");
    let engine = Engine::builder()
        .playbooks(set)
        .fatigue(Arc::new(InMemoryFatigue::new()))
        .build();
    let acted = run(&engine, &workload, now, n);
    println!("{name}: {n} decisions, {acted} actions");
}
