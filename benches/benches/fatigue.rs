//! Fatigue check-and-record on `InMemoryFatigue`, alone and under two contending threads.
//! Target: ≤ 1 µs per check-and-record under 2 contending threads.
//!
//! Each request names one of eight playbooks in turn, with a 1 h cooldown, at most 3
//! firings per 7 days and an actor budget of 10 actions a day, one simulated minute after
//! the previous request (see `FatigueLoad`). Each sample starts from an empty store.
//!
//! With two threads, both run `iters` requests at once, released together by a barrier;
//! the time reported is the slower thread's, divided by `iters`: the latency of one
//! check-and-record while another thread hammers the same store (the same actor's lock, or
//! another actor's in the same map).
//!
//! ```sh
//! cargo bench -p mmm-benches --bench fatigue
//! ```

// Setup failures are bugs in the benchmark, and a benchmark that cannot start should stop.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mmm_benches::FatigueLoad;
use mmm_engine::{FatigueStore, FatigueVerdict, InMemoryFatigue};

/// Runs `iters` requests for `actor` and returns the time they took.
fn run(store: &InMemoryFatigue, load: &FatigueLoad, actor: &str, iters: u64) -> Duration {
    let start = Instant::now();
    for n in 0..iters {
        black_box(
            store
                .check_and_record(black_box(&load.request(actor, n)))
                .unwrap(),
        );
    }
    start.elapsed()
}

/// Two threads, one per actor in `actors`, each running `iters` requests at once; the
/// slower thread's time.
fn contended(load: &FatigueLoad, actors: [&str; 2], iters: u64) -> Duration {
    let store = InMemoryFatigue::new();
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let handles = actors.map(|actor| {
            let (store, barrier) = (&store, &barrier);
            scope.spawn(move || {
                barrier.wait();
                run(store, load, actor, iters)
            })
        });
        handles
            .into_iter()
            .map(|h| h.join().expect("a fatigue thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

fn fatigue(c: &mut Criterion) {
    let load = FatigueLoad::new().expect("fatigue limits parse");
    // The load exercises every verdict, not just the cheap ones.
    let store = InMemoryFatigue::new();
    let verdicts: Vec<FatigueVerdict> = (0..10_000)
        .map(|n| store.check_and_record(&load.request("dev-0", n)).unwrap())
        .collect();
    for wanted in [
        FatigueVerdict::Allowed(1),
        FatigueVerdict::Cooldown,
        FatigueVerdict::Max,
        FatigueVerdict::Budget,
    ] {
        assert!(
            verdicts.contains(&wanted),
            "the fatigue load never yields {wanted:?}"
        );
    }

    let mut group = c.benchmark_group("fatigue_check_and_record");
    group.bench_function("1_thread", |b| {
        b.iter_custom(|iters| run(&InMemoryFatigue::new(), &load, "dev-0", iters));
    });
    group.bench_function("2_threads/distinct_actors", |b| {
        b.iter_custom(|iters| contended(&load, ["dev-0", "dev-1"], iters));
    });
    group.bench_function("2_threads/same_actor", |b| {
        b.iter_custom(|iters| contended(&load, ["dev-0", "dev-0"], iters));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = fatigue
}
criterion_main!(benches);
