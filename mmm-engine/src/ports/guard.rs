//! Running port calls safely: each call goes through its breaker, runs on the engine's
//! call pool, and is waited for no longer than its timeout. A panic in the port, a
//! timeout or an error all come back as [`PortError::Unavailable`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::breaker::{CircuitBreaker, Permit};
use super::PortError;
use crate::pool::{SpawnError, ThreadPool};

/// The pool port calls run on (the engine's [`ThreadPool`]), with the breaker and the
/// timeout around each call.
pub(crate) struct CallPool {
    pool: ThreadPool,
}

impl CallPool {
    pub fn new(max_threads: usize) -> CallPool {
        CallPool {
            pool: ThreadPool::new("mmm-port-call", max_threads),
        }
    }

    /// Runs a job on the pool without waiting for it (no breaker: it calls no port).
    ///
    /// # Errors
    /// [`SpawnError`] when no thread can run it.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> Result<(), SpawnError> {
        self.pool.spawn(job)
    }

    /// Runs `call` through `breaker`, on the pool, waiting at most `timeout`.
    pub fn call<T: Send + 'static>(
        &self,
        breaker: &Arc<CircuitBreaker>,
        timeout: Duration,
        call: impl FnOnce() -> Result<T, PortError> + Send + 'static,
    ) -> Result<T, PortError> {
        self.start(breaker, timeout, call).wait()
    }

    /// Starts `call` through `breaker` on the pool and returns a handle to wait on, so
    /// that independent port calls run side by side.
    pub fn start<T: Send + 'static>(
        &self,
        breaker: &Arc<CircuitBreaker>,
        timeout: Duration,
        call: impl FnOnce() -> Result<T, PortError> + Send + 'static,
    ) -> Pending<T> {
        let started = Instant::now();
        if timeout.is_zero() {
            return Pending::Refused("no time left in the decision's deadline");
        }
        let Ok(permit) = breaker.try_acquire() else {
            return Pending::Refused("circuit breaker open");
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let spawned = self.pool.spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(call))
                .unwrap_or_else(|_| Err(PortError::Unavailable("the port panicked".into())));
            let _ = tx.send(result);
        });
        if spawned.is_err() {
            permit.failure();
            return Pending::Refused("no thread could be started for the call");
        }
        Pending::Running {
            rx,
            permit,
            started,
            timeout,
        }
    }
}

/// A port call started with [`CallPool::start`].
pub(crate) enum Pending<T> {
    /// Not started: the breaker is open or no time is left.
    Refused(&'static str),
    /// On the pool.
    Running {
        rx: mpsc::Receiver<Result<T, PortError>>,
        permit: Permit,
        started: Instant,
        timeout: Duration,
    },
}

impl<T> Pending<T> {
    /// Waits for the answer, at most until the call's timeout (counted from its start),
    /// and reports the outcome to the breaker.
    pub fn wait(self) -> Result<T, PortError> {
        let (rx, permit, started, timeout) = match self {
            Pending::Refused(why) => return Err(PortError::Unavailable(why.into())),
            Pending::Running {
                rx,
                permit,
                started,
                timeout,
            } => (rx, permit, started, timeout),
        };
        match rx.recv_timeout(timeout.saturating_sub(started.elapsed())) {
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
            Ok(Err(PortError::Rejected(why))) => {
                permit.neutral();
                Err(PortError::Rejected(why))
            }
            Ok(Err(e)) => {
                permit.failure();
                Err(e)
            }
            Err(_) => {
                permit.failure();
                Err(PortError::Unavailable(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::ports::breaker::{BreakerConfig, BreakerState};

    fn breaker() -> Arc<CircuitBreaker> {
        Arc::new(CircuitBreaker::new(
            BreakerConfig::default(),
            Arc::new(SystemClock),
        ))
    }

    #[test]
    fn answers_errors_panics_and_hangs() {
        let pool = CallPool::new(8);
        let b = breaker();
        let t = Duration::from_millis(200);
        assert_eq!(pool.call(&b, t, || Ok(7)), Ok(7));
        assert_eq!(
            pool.call::<()>(&b, t, || Err(PortError::Rejected("no".into()))),
            Err(PortError::Rejected("no".into()))
        );
        // Generous: the default panic hook may symbolise a backtrace before the answer.
        let panicked = pool.call::<()>(&b, Duration::from_secs(10), || panic!("boom"));
        assert_eq!(
            panicked,
            Err(PortError::Unavailable("the port panicked".into()))
        );
        let (_hold, never) = mpsc::channel::<()>();
        let started = Instant::now();
        let hung = pool.call::<()>(&b, Duration::from_millis(50), move || {
            let _ = never.recv();
            Ok(())
        });
        assert!(matches!(hung, Err(PortError::Unavailable(ref m)) if m.contains("no answer")));
        // Bounded by the call's timeout, not by the port (which never answers).
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(b.state(), BreakerState::Closed, "two failures so far");
    }

    #[test]
    fn calls_run_side_by_side() {
        let pool = CallPool::new(8);
        let b = breaker();
        // Each call waits (boundedly) until all four have started: all four answer
        // `true` only when they run side by side.
        let started = Arc::new((parking_lot::Mutex::new(0usize), parking_lot::Condvar::new()));
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let started = Arc::clone(&started);
                pool.start(&b, Duration::from_secs(20), move || {
                    let (count, cv) = &*started;
                    let mut count = count.lock();
                    *count += 1;
                    cv.notify_all();
                    Ok(!cv
                        .wait_while_for(&mut count, |c| *c < 4, Duration::from_secs(10))
                        .timed_out())
                })
            })
            .collect();
        let results: Vec<_> = calls.into_iter().map(Pending::wait).collect();
        assert_eq!(results, [Ok(true), Ok(true), Ok(true), Ok(true)]);
    }
}
