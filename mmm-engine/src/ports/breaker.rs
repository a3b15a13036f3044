//! A circuit breaker per port (SPEC §5–§6): open after 5 consecutive failures, half-open
//! after 60 s admitting at most 2 concurrent probes, closed after 2 successful probes,
//! reopened (timer restarted) by any failure while half-open. Business answers (a deny, a
//! not-found) count as neither success nor failure. Time comes from the injected clock.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::Clock;

/// Thresholds of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before admitting probes.
    pub open_for: std::time::Duration,
    /// Concurrent probes admitted while half-open.
    pub half_open_probes: u32,
    /// Successful probes that close it again.
    pub success_threshold: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: std::time::Duration::from_secs(60),
            half_open_probes: 2,
            success_threshold: 2,
        }
    }
}

pub use crate::model::BreakerState;

/// Called on every state change with (from, to).
pub type TransitionHook = Arc<dyn Fn(BreakerState, BreakerState) + Send + Sync>;

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at_us: i64,
    probes_in_flight: u32,
    probe_successes: u32,
    /// Bumped on every transition, so that answers to calls admitted in an earlier state
    /// cannot move the current one.
    generation: u64,
}

/// A thread-safe circuit breaker.
pub struct CircuitBreaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    hook: Option<TransitionHook>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("config", &self.config)
            .field("state", &self.state())
            .finish()
    }
}

/// The breaker refused the call: the dependency counts as down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

/// Permission for one call. Report how it went with [`Permit::success`],
/// [`Permit::failure`] or [`Permit::neutral`]. A permit dropped unreported counts nothing:
/// the caller abandoned the call (another dependency failed first, say), which says
/// nothing about this dependency. Timeouts are reported as failures explicitly.
#[must_use]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    generation: u64,
    probe: bool,
    done: bool,
}

enum Outcome {
    Success,
    Failure,
    Neutral,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        CircuitBreaker {
            config,
            clock,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at_us: 0,
                probes_in_flight: 0,
                probe_successes: 0,
                generation: 0,
            }),
            hook: None,
        }
    }

    /// Calls `hook(from, to)` on every transition (for metrics).
    #[must_use]
    pub fn with_hook(mut self, hook: TransitionHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The current state (an open breaker whose time is up reads as half-open).
    pub fn state(&self) -> BreakerState {
        let inner = self.inner.lock();
        match inner.state {
            BreakerState::Open if self.open_elapsed(&inner) => BreakerState::HalfOpen,
            state => state,
        }
    }

    fn open_elapsed(&self, inner: &Inner) -> bool {
        let open_us = i64::try_from(self.config.open_for.as_micros()).unwrap_or(i64::MAX);
        self.clock
            .now()
            .as_microsecond()
            .saturating_sub(inner.opened_at_us)
            >= open_us
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState) -> (BreakerState, BreakerState) {
        let from = inner.state;
        inner.state = to;
        inner.generation += 1;
        inner.probes_in_flight = 0;
        inner.probe_successes = 0;
        match to {
            BreakerState::Open => inner.opened_at_us = self.clock.now().as_microsecond(),
            BreakerState::Closed => inner.failures = 0,
            BreakerState::HalfOpen => {}
        }
        (from, to)
    }

    fn notify(&self, change: Option<(BreakerState, BreakerState)>) {
        if let (Some((from, to)), Some(hook)) = (change, &self.hook) {
            hook(from, to);
        }
    }

    /// Asks to make a call.
    ///
    /// # Errors
    /// [`Rejected`] while open, or half-open with every probe slot taken.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, Rejected> {
        let mut change = None;
        let result = {
            let mut inner = self.inner.lock();
            if inner.state == BreakerState::Open && self.open_elapsed(&inner) {
                change = Some(self.transition(&mut inner, BreakerState::HalfOpen));
            }
            match inner.state {
                BreakerState::Closed => Ok((inner.generation, false)),
                BreakerState::Open => Err(Rejected),
                BreakerState::HalfOpen if inner.probes_in_flight < self.config.half_open_probes => {
                    inner.probes_in_flight += 1;
                    Ok((inner.generation, true))
                }
                BreakerState::HalfOpen => Err(Rejected),
            }
        };
        self.notify(change);
        let (generation, probe) = result?;
        Ok(Permit {
            breaker: Arc::clone(self),
            generation,
            probe,
            done: false,
        })
    }

    fn report(&self, generation: u64, probe: bool, outcome: Outcome) {
        let mut change = None;
        {
            let mut inner = self.inner.lock();
            if inner.generation != generation {
                return;
            }
            match (inner.state, outcome) {
                (BreakerState::Closed, Outcome::Success) => inner.failures = 0,
                (BreakerState::Closed, Outcome::Failure) => {
                    inner.failures += 1;
                    if inner.failures >= self.config.failure_threshold {
                        change = Some(self.transition(&mut inner, BreakerState::Open));
                    }
                }
                (BreakerState::HalfOpen, Outcome::Success) if probe => {
                    inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                    inner.probe_successes += 1;
                    if inner.probe_successes >= self.config.success_threshold {
                        change = Some(self.transition(&mut inner, BreakerState::Closed));
                    }
                }
                (BreakerState::HalfOpen, Outcome::Failure) => {
                    change = Some(self.transition(&mut inner, BreakerState::Open));
                }
                (BreakerState::HalfOpen, Outcome::Neutral) if probe => {
                    inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                }
                _ => {}
            }
        }
        self.notify(change);
    }
}

impl Permit {
    /// The call succeeded.
    pub fn success(mut self) {
        self.done = true;
        self.breaker
            .report(self.generation, self.probe, Outcome::Success);
    }

    /// The call failed: an error, a timeout, a panic, malformed data.
    pub fn failure(mut self) {
        self.done = true;
        self.breaker
            .report(self.generation, self.probe, Outcome::Failure);
    }

    /// The dependency answered with a business error (deny, not-found): it is up, but
    /// the call proves nothing either way.
    pub fn neutral(mut self) {
        self.done = true;
        self.breaker
            .report(self.generation, self.probe, Outcome::Neutral);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker
                .report(self.generation, self.probe, Outcome::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    fn setup() -> (Arc<ManualClock>, Arc<CircuitBreaker>) {
        let clock = Arc::new(ManualClock::new("2026-11-22T10:00:00Z".parse().unwrap()));
        let breaker = Arc::new(CircuitBreaker::new(BreakerConfig::default(), clock.clone()));
        (clock, breaker)
    }

    fn fail(b: &Arc<CircuitBreaker>, n: usize) {
        for _ in 0..n {
            b.try_acquire().unwrap().failure();
        }
    }

    #[test]
    fn the_fifth_consecutive_failure_opens_not_the_fourth() {
        let (_, b) = setup();
        fail(&b, 4);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, 1);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.try_acquire().err(), Some(Rejected));
    }

    #[test]
    fn a_success_resets_the_count() {
        let (_, b) = setup();
        fail(&b, 4);
        b.try_acquire().unwrap().success();
        fail(&b, 4);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn business_errors_count_nothing() {
        let (_, b) = setup();
        fail(&b, 4);
        for _ in 0..10 {
            b.try_acquire().unwrap().neutral();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, 1);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "neutral answers neither reset nor add"
        );
    }

    #[test]
    fn half_open_after_exactly_the_open_time() {
        let (clock, b) = setup();
        fail(&b, 5);
        clock.advance(Duration::from_millis(59_999));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_err());
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn half_open_admits_two_concurrent_probes_and_two_successes_close() {
        let (clock, b) = setup();
        fail(&b, 5);
        clock.advance(Duration::from_secs(60));
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        assert!(
            b.try_acquire().is_err(),
            "a third concurrent probe is rejected"
        );
        p1.success();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let p3 = b.try_acquire().unwrap();
        p2.success();
        assert_eq!(b.state(), BreakerState::Closed);
        p3.failure(); // admitted in the half-open state: too late to matter
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_half_open_failure_reopens_and_restarts_the_timer() {
        let (clock, b) = setup();
        fail(&b, 5);
        clock.advance(Duration::from_secs(60));
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_millis(59_999));
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn an_abandoned_permit_counts_nothing_but_frees_its_probe_slot() {
        let (clock, b) = setup();
        for _ in 0..10 {
            drop(b.try_acquire().unwrap());
        }
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, 5);
        clock.advance(Duration::from_secs(60));
        drop(b.try_acquire().unwrap());
        drop(b.try_acquire().unwrap());
        assert!(
            b.try_acquire().is_ok(),
            "abandoned probes give their slots back"
        );
    }

    #[test]
    fn many_threads_cause_one_transition_per_edge() {
        let (clock, plain) = setup();
        let opened = Arc::new(AtomicUsize::new(0));
        let half = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (o, h, c) = (opened.clone(), half.clone(), closed.clone());
        drop(plain);
        let b = Arc::new(
            CircuitBreaker::new(BreakerConfig::default(), clock.clone()).with_hook(Arc::new(
                move |_, to| {
                    match to {
                        BreakerState::Open => o.fetch_add(1, Ordering::SeqCst),
                        BreakerState::HalfOpen => h.fetch_add(1, Ordering::SeqCst),
                        BreakerState::Closed => c.fetch_add(1, Ordering::SeqCst),
                    };
                },
            )),
        );
        let hammer = |outcome: fn(Permit)| {
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        for _ in 0..200 {
                            if let Ok(p) = b.try_acquire() {
                                outcome(p);
                            }
                        }
                    });
                }
            });
        };
        hammer(Permit::failure);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(60));
        hammer(Permit::success);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(half.load(Ordering::SeqCst), 1);
        assert_eq!(closed.load(Ordering::SeqCst), 1);
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }
}
