//! The threads decisions run on when JavaScript ports are involved: `decideAsync` always,
//! and a synchronous `decide` of an engine with JS ports (while the JS thread runs the
//! ports).
//!
//! Not libuv's thread pool (napi's `AsyncTask`): a decision waits there for its ports, and
//! a JavaScript port that itself needs libuv's pool — `fs`, `dns.lookup` behind every HTTP
//! client, `crypto.pbkdf2`, `zlib` — would then queue behind the very decisions waiting
//! for it (four threads by default), stalling each until the port's timeout. An elastic
//! pool of our own starts a thread when every existing one is busy, up to a cap, and keeps
//! idle threads for reuse.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::{Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Upper bound on the threads of one pool; past it, decisions queue.
const MAX_THREADS: usize = 64;

/// Decisions of `decideAsync`, for every engine in the process.
pub static ASYNC: LazyLock<Pool> = LazyLock::new(|| Pool::new(MAX_THREADS));

/// Decisions of a synchronous `decide` with JS ports. A pool of their own: were they queued
/// behind `decideAsync` decisions that wait for the JS thread, the JS thread (waiting for
/// the synchronous decision) could not serve those, and both would stall until the
/// ports' timeouts.
pub static SYNC: LazyLock<Pool> = LazyLock::new(|| Pool::new(MAX_THREADS));

pub struct Pool {
    shared: Arc<Shared>,
    max_threads: usize,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    threads: AtomicUsize,
    idle: AtomicUsize,
}

impl Pool {
    fn new(max_threads: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                threads: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
            }),
            max_threads: max_threads.max(1),
        }
    }

    fn spawn_worker(&self) -> bool {
        let shared = Arc::clone(&self.shared);
        shared.threads.fetch_add(1, Ordering::SeqCst);
        let started = std::thread::Builder::new()
            .name("mmm-node-decide".into())
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
                // A job catches its own panics; this keeps the thread if one does not.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            });
        if started.is_err() {
            self.shared.threads.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Runs `job` on the pool.
    ///
    /// # Errors
    /// When no thread exists and none can be started (the job would never run).
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> Result<(), &'static str> {
        let waiting = {
            let mut queue = self.shared.queue.lock();
            queue.push_back(Box::new(job));
            queue.len()
        };
        // More jobs waiting than threads idle: another thread, so that decisions waiting
        // for their ports do not hold up the ones behind them.
        if waiting > self.shared.idle.load(Ordering::SeqCst)
            && self.shared.threads.load(Ordering::SeqCst) < self.max_threads
            && !self.spawn_worker()
            && self.shared.threads.load(Ordering::SeqCst) == 0
        {
            let _ = self.shared.queue.lock().pop_back();
            return Err("no thread could be started for the decision");
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    #[test]
    fn waiting_jobs_get_threads_of_their_own_up_to_the_cap() {
        let pool = Pool::new(8);
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        for i in 0..8 {
            let tx = tx.clone();
            pool.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                tx.send(i).unwrap();
            })
            .unwrap();
        }
        let mut done: Vec<i32> = (0..8).map(|_| rx.recv().unwrap()).collect();
        done.sort_unstable();
        assert_eq!(done, (0..8).collect::<Vec<_>>());
        // Side by side, not one after another.
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
        assert!(pool.shared.threads.load(Ordering::SeqCst) <= 8);
    }

    #[test]
    fn past_the_cap_jobs_queue_and_still_run() {
        let pool = Pool::new(2);
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            let tx = tx.clone();
            pool.spawn(move || tx.send(i).unwrap()).unwrap();
        }
        let mut done: Vec<i32> = (0..10).map(|_| rx.recv().unwrap()).collect();
        done.sort_unstable();
        assert_eq!(done, (0..10).collect::<Vec<_>>());
        assert!(pool.shared.threads.load(Ordering::SeqCst) <= 2);
    }
}
