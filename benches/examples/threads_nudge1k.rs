//! Decisions per second on nudge-1k from one thread and from two threads sharing one
//! [`Engine`], each thread deciding its own half of the signals; prints the median of
//! several rounds and the ratio (target: 2 threads ≥ 1.8× one on a 2-core machine).
//!
//! The rounds alternate one thread and two, so that a neighbour taking a core for a while
//! on a shared machine costs both about equally; run it when `uptime` shows a low load.
//!
//! ```sh
//! cargo build --release -p mmm-benches --example threads_nudge1k
//! target/release/examples/threads_nudge1k [seconds per run, default 2] [rounds, default 5]
//! ```

// Setup failures are bugs in the harness, and a harness that cannot start should stop.
#![expect(
    clippy::expect_used,
    reason = "a benchmark that cannot set up is a bug in the benchmark: it stops with the reason"
)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mmm_benches::{nudge_1k, NOW};
use mmm_engine::{DecideOptions, Engine, InMemoryFatigue, PlaybookSet};
use serde_json::Value;

/// Decides signals from `signals` in turn until `for_how_long` has passed; the count.
fn decide_for(engine: &Engine, signals: &[Value], for_how_long: Duration) -> u64 {
    let options = DecideOptions {
        now: Some(NOW),
        explain: false,
    };
    let started = Instant::now();
    let mut done = 0u64;
    // The clock is read once per 64 decisions, so that reading it costs nothing measurable.
    for chunk in signals.chunks(64).cycle() {
        for signal in chunk {
            black_box(
                engine
                    .decide(black_box(signal), None, &options)
                    .expect("decides"),
            );
        }
        done += chunk.len() as u64;
        if started.elapsed() >= for_how_long {
            break;
        }
    }
    done
}

/// The CPU time this process has used, in seconds, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Clock ticks are 10 ms, fine over runs of seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `)`.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// One run: decisions per second of wall time, and CPU microseconds per decision.
#[derive(Debug, Clone, Copy)]
struct Run {
    rate: f64,
    cpu_us: f64,
}

/// Decisions per second with one thread per slice of `slices`, all starting together.
fn rate(engine: &Engine, slices: &[&[Value]], for_how_long: Duration) -> Run {
    let start = Arc::new(Barrier::new(slices.len()));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let done: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = slices
            .iter()
            .map(|slice| {
                let start = Arc::clone(&start);
                scope.spawn(move || {
                    start.wait();
                    decide_for(engine, slice, for_how_long)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a deciding thread finishes"))
            .sum()
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map_or(f64::NAN, |(after, before)| after - before);
    Run {
        rate: done as f64 / wall,
        cpu_us: cpu * 1e6 / done as f64,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args
        .next()
        .map_or(2.0, |s| s.parse().expect("seconds per run"));
    let rounds: usize = args.next().map_or(5, |n| n.parse().expect("rounds"));
    let for_how_long = Duration::from_secs_f64(seconds);

    let workload = nudge_1k();
    let set = PlaybookSet::from_yaml(&workload.yaml).expect("nudge-1k loads");
    let engine = Engine::builder()
        .playbooks(set)
        .fatigue(Arc::new(InMemoryFatigue::new()))
        .build();
    let (first, second) = workload.signals.split_at(workload.signals.len() / 2);
    // Warm both threads' paths (and the engine's caches) before measuring.
    rate(&engine, &[first, second], Duration::from_millis(500));

    let (mut one, mut two) = (Vec::new(), Vec::new());
    let (mut one_cpu, mut two_cpu) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let a = rate(&engine, &[first], for_how_long);
        let b = rate(&engine, &[first, second], for_how_long);
        println!(
            "round {round}: 1 thread {:9.0}/s ({:.2} CPU µs each)  2 threads {:9.0}/s ({:.2} CPU µs each)  ratio {:.2}",
            a.rate,
            a.cpu_us,
            b.rate,
            b.cpu_us,
            b.rate / a.rate
        );
        one.push(a.rate);
        two.push(b.rate);
        one_cpu.push(a.cpu_us);
        two_cpu.push(b.cpu_us);
    }
    let (one, two) = (median(&mut one), median(&mut two));
    let (one_cpu, two_cpu) = (median(&mut one_cpu), median(&mut two_cpu));
    println!(
        "median of {rounds}: 1 thread {one:.0}/s, 2 threads {two:.0}/s, ratio {:.2}",
        two / one
    );
    // On a machine busy with other work the wall-clock ratio says more about the
    // neighbours than about the engine; CPU time per decision says what sharing costs:
    // with nothing shared, a decision takes the same CPU time whether another thread
    // decides alongside or not, and two free cores would give 2 × (one ÷ two).
    println!(
        "CPU per decision: 1 thread {one_cpu:.2} µs, 2 threads {two_cpu:.2} µs; \
         ratio on two free cores ≈ {:.2}",
        2.0 * one_cpu / two_cpu
    );
}
