//! The budget every condition evaluation spends: operations, wall-clock time, and the
//! limit it was stopped at. Kept per thread, because evaluation is synchronous and never
//! leaves the calling thread; read by the sandbox (one tick per Rhai operation) and by the
//! native helpers of [`super::library`] that do long work.

use std::cell::Cell;
use std::time::Instant;

use rhai::{Dynamic, EvalAltResult, Position};

/// Values (arrays and maps) nested deeper than this cannot be compared, searched or turned
/// into text: those functions recurse once per level, through Rhai's call machinery, and a
/// value nested thousands deep would overflow the stack.
pub(crate) const MAX_VALUE_DEPTH: usize = 128;

/// Operations between two readings of the clock.
const CLOCK_EVERY: u64 = 32;

/// Why an evaluation was stopped. Once set it stays set until the evaluation ends, so a
/// function that swallows errors cannot carry on past a limit: its next operation stops too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Time,
    Operations,
    String,
    Array,
    Map,
    Depth,
    GlobPattern(usize),
    GlobText(usize),
}

/// The budget of the evaluation running on this thread. Operations are granted in slices
/// of [`CLOCK_EVERY`]: the common case is one decrement, and the clock is read, the limit
/// checked and the next slice granted once per slice.
struct Budget {
    /// Operations left in the current slice.
    slice: Cell<u64>,
    /// Operations not yet granted.
    left: Cell<u64>,
    max: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    stop: Cell<Option<Stop>>,
}

thread_local! {
    static BUDGET: Budget = const {
        Budget {
            slice: Cell::new(0),
            left: Cell::new(0),
            max: Cell::new(0),
            deadline: Cell::new(None),
            stop: Cell::new(None),
        }
    };
}

impl Budget {
    fn halt(&self, stop: Stop) -> Stop {
        // No operation passes once stopped: every one takes the slow path and sees the stop.
        self.slice.set(0);
        match self.stop.get() {
            Some(first) => first,
            None => {
                self.stop.set(Some(stop));
                stop
            }
        }
    }

    fn late(&self) -> bool {
        self.deadline.get().is_some_and(|d| Instant::now() > d)
    }

    /// The operation after a slice is used up.
    #[cold]
    fn next_slice(&self) -> Option<Stop> {
        if let Some(stop) = self.stop.get() {
            return Some(stop);
        }
        if self.late() {
            return Some(self.halt(Stop::Time));
        }
        let left = self.left.get();
        if left == 0 {
            return Some(self.halt(Stop::Operations));
        }
        let grant = left.min(CLOCK_EVERY);
        self.left.set(left - grant);
        // This operation is the first of the slice.
        self.slice.set(grant - 1);
        None
    }
}

/// Starts an evaluation's budget on this thread (`max_operations` 0: unlimited, as Rhai).
pub(crate) fn begin(max_operations: u64, deadline: Instant) {
    BUDGET.with(|b| {
        let max = if max_operations == 0 {
            u64::MAX
        } else {
            max_operations
        };
        let first = max.min(CLOCK_EVERY);
        b.max.set(max);
        b.slice.set(first);
        b.left.set(max - first);
        b.deadline.set(Some(deadline));
        b.stop.set(None);
    });
}

/// Ends the evaluation's budget; the limit it was stopped at, if any.
pub(crate) fn end() -> Option<Stop> {
    BUDGET.with(|b| {
        b.deadline.set(None);
        b.stop.take()
    })
}

/// Counts one Rhai operation (Rhai calls this before each). Rhai's own operation counter
/// restarts inside callbacks (`filter`, `some`, …), so the evaluation's total is kept here.
pub(crate) fn tick() -> Option<Stop> {
    BUDGET.with(|b| {
        let slice = b.slice.get();
        if slice > 0 {
            b.slice.set(slice - 1);
            return None;
        }
        b.next_slice()
    })
}

/// For native functions doing long work: `Err` when the evaluation must stop.
pub(crate) fn check() -> Result<(), Stop> {
    BUDGET.with(|b| {
        if let Some(stop) = b.stop.get() {
            return Err(stop);
        }
        if b.late() {
            return Err(b.halt(Stop::Time));
        }
        Ok(())
    })
}

/// The limit this thread's evaluation was stopped at, if any.
pub(crate) fn stopped() -> Option<Stop> {
    BUDGET.with(|b| b.stop.get())
}

/// Stops the evaluation at `stop` (or the limit it was stopped at before); the evaluation
/// ends at its next operation.
pub(crate) fn halt(stop: Stop) -> Stop {
    BUDGET.with(|b| b.halt(stop))
}

/// Stops the evaluation at `stop` and returns the error to raise. The error cannot be
/// caught by the script (`try`/`catch`), and the stop outlives it.
pub(crate) fn exceed(stop: Stop) -> Box<EvalAltResult> {
    let stop = halt(stop);
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from(stop),
        Position::NONE,
    ))
}

/// Operations counted so far in this thread's evaluation (for tests of the native path).
#[cfg(test)]
pub(crate) fn operations() -> u64 {
    BUDGET.with(|b| b.max.get() - b.left.get() - b.slice.get())
}
