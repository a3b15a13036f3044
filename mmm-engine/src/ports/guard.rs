//! Running port calls safely: each call goes through its breaker, runs on the engine's
//! call pool, and is waited for no longer than its timeout. A panic in the port, a
//! timeout or an error all come back as [`PortError::Unavailable`].

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::breaker::{CircuitBreaker, Permit};
use super::PortError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// An elastic pool of threads for port calls. Threads are started when every existing one
/// is busy (a hung port holds its thread), up to a cap; idle threads stay for reuse.
pub(crate) struct CallPool {
    shared: Arc<Shared>,
    max_threads: usize,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    threads: AtomicUsize,
    idle: AtomicUsize,
}

impl CallPool {
    pub fn new(max_threads: usize) -> CallPool {
        CallPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                threads: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
            }),
            max_threads: max_threads.max(1),
        }
    }

    fn spawn_worker(&self) {
        let shared = Arc::clone(&self.shared);
        shared.threads.fetch_add(1, Ordering::SeqCst);
        let started = std::thread::Builder::new()
            .name("mmm-port-call".into())
            .spawn(move || loop {
                let job = {
                    let mut queue = shared.queue.lock();
                    loop {
                        if let Some(job) = queue.pop_front() {
                            break job;
                        }
                        shared.idle.fetch_add(1, Ordering::SeqCst);
                        shared.ready.wait(&mut queue);
                        shared.idle.fetch_sub(1, Ordering::SeqCst);
                    }
                };
                job();
            });
        if started.is_err() {
            self.shared.threads.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn submit(&self, job: Job) {
        let need_thread = self.shared.idle.load(Ordering::SeqCst) == 0
            && self.shared.threads.load(Ordering::SeqCst) < self.max_threads;
        self.shared.queue.lock().push_back(job);
        if need_thread {
            self.spawn_worker();
        }
        self.shared.ready.notify_one();
    }

    /// Runs a job on the pool without waiting for it (no breaker: it calls no port).
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.submit(Box::new(job));
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
        self.submit(Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(call))
                .unwrap_or_else(|_| Err(PortError::Unavailable("the port panicked".into())));
            let _ = tx.send(result);
        }));
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
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(b.state(), BreakerState::Closed, "two failures so far");
    }

    #[test]
    fn calls_run_side_by_side() {
        let pool = CallPool::new(8);
        let b = breaker();
        let started = Instant::now();
        let calls: Vec<_> = (0..4)
            .map(|i| {
                pool.start(&b, Duration::from_secs(2), move || {
                    std::thread::sleep(Duration::from_millis(100));
                    Ok(i)
                })
            })
            .collect();
        let results: Vec<_> = calls.into_iter().map(Pending::wait).collect();
        assert_eq!(results, [Ok(0), Ok(1), Ok(2), Ok(3)]);
        assert!(
            started.elapsed() < Duration::from_millis(350),
            "{:?}",
            started.elapsed()
        );
    }
}
