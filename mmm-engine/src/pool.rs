//! The engine's one thread pool: an elastic pool that starts a thread when more jobs wait
//! than threads are idle (a job blocked on a hung port holds its thread), up to a cap, and
//! keeps idle threads for reuse. The engine runs its port calls on one; the Node binding
//! runs its decisions on two more (see `docs/node.md`), so there is one implementation.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// No thread exists to run the job and none could be started (the job is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no thread could be started for the job")]
pub struct SpawnError;

impl SpawnError {
    /// The serialisable form (`UNAVAILABLE`: the process cannot start a thread now).
    pub fn info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo::new(crate::codes::UNAVAILABLE, self.to_string())
    }
}

/// An elastic thread pool. Jobs run in the order given; a job's panic is caught and
/// the thread kept.
pub struct ThreadPool {
    shared: Arc<Shared>,
    max_threads: usize,
    name: &'static str,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    threads: AtomicUsize,
    idle: AtomicUsize,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("name", &self.name)
            .field("max_threads", &self.max_threads)
            .field("threads", &self.threads())
            .finish()
    }
}

impl ThreadPool {
    /// A pool whose threads are named `name`, at most `max_threads` of them (at least
    /// one). No thread is started before the first job.
    pub fn new(name: &'static str, max_threads: usize) -> ThreadPool {
        ThreadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                threads: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
            }),
            max_threads: max_threads.max(1),
            name,
        }
    }

    /// Threads started so far (they are never stopped).
    pub fn threads(&self) -> usize {
        self.shared.threads.load(Ordering::SeqCst)
    }

    fn spawn_worker(&self) -> bool {
        let shared = Arc::clone(&self.shared);
        shared.threads.fetch_add(1, Ordering::SeqCst);
        let started = std::thread::Builder::new()
            .name(self.name.into())
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
                // A panicking job loses its own result only; the thread stays.
                let _ = catch_unwind(AssertUnwindSafe(job));
            });
        if started.is_err() {
            self.shared.threads.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Runs `job` on the pool, starting a thread when more jobs wait than threads are
    /// idle and the cap allows; past the cap, jobs queue.
    ///
    /// # Errors
    /// [`SpawnError`] when no thread exists and none can be started: the job would
    /// never run, so it is dropped and the caller told.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> Result<(), SpawnError> {
        let waiting = {
            let mut queue = self.shared.queue.lock();
            queue.push_back(Box::new(job));
            queue.len()
        };
        if waiting > self.shared.idle.load(Ordering::SeqCst)
            && self.threads() < self.max_threads
            && !self.spawn_worker()
            && self.threads() == 0
        {
            let _ = self.shared.queue.lock().pop_back();
            return Err(SpawnError);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Each job waits (boundedly) until all `n` have started: they can only all finish
    /// with `true` when they run side by side.
    fn side_by_side(pool: &ThreadPool, n: usize) -> Vec<bool> {
        let started = Arc::new((Mutex::new(0usize), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        for _ in 0..n {
            let (started, tx) = (Arc::clone(&started), tx.clone());
            pool.spawn(move || {
                let (count, cv) = &*started;
                let mut count = count.lock();
                *count += 1;
                cv.notify_all();
                let all = !cv
                    .wait_while_for(&mut count, |c| *c < n, Duration::from_secs(10))
                    .timed_out();
                tx.send(all).unwrap();
            })
            .unwrap();
        }
        (0..n).map(|_| rx.recv().unwrap()).collect()
    }

    #[test]
    fn waiting_jobs_get_threads_of_their_own_up_to_the_cap() {
        let pool = ThreadPool::new("test-pool", 8);
        assert_eq!(side_by_side(&pool, 8), vec![true; 8]);
        assert!(pool.threads() <= 8);
    }

    #[test]
    fn past_the_cap_jobs_queue_and_still_run() {
        let pool = ThreadPool::new("test-pool", 2);
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            let tx = tx.clone();
            pool.spawn(move || tx.send(i).unwrap()).unwrap();
        }
        let mut done: Vec<i32> = (0..10).map(|_| rx.recv().unwrap()).collect();
        done.sort_unstable();
        assert_eq!(done, (0..10).collect::<Vec<_>>());
        assert!(pool.threads() <= 2);
    }

    #[test]
    fn a_panicking_job_keeps_its_thread() {
        let pool = ThreadPool::new("test-pool", 1);
        pool.spawn(|| panic!("boom")).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn(move || tx.send(7).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(7));
        assert_eq!(pool.threads(), 1);
    }
}
