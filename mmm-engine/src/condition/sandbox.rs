//! The sandboxed Rhai engine conditions run on, the budget every evaluation spends, and
//! the helper functions conditions may call.
//!
//! The budget an evaluation spends is in [`super::budget`].
//!
//! What Rhai functions are in scope, and how those that could allocate or recurse beyond
//! the limits are replaced, is in [`super::library`].

use std::cell::RefCell;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rhai::{Dynamic, EvalAltResult, Position};

use super::budget::{check, exceed, tick, Stop};
use super::glob::{GlobCache, Stopped};
use crate::context::RecentSignal;
use crate::duration::Duration;
use crate::error::Quoted;
use crate::trigger::kind_matches;

/// Limits on what one condition may do. A condition that passes one is suppressed with
/// `condition_error`; the decision goes on.
#[derive(Debug, Clone)]
pub struct ConditionLimits {
    /// Rhai operations per evaluation, counted across every callback the evaluation makes.
    pub max_operations: u64,
    /// Function call depth (recursion).
    pub max_call_depth: usize,
    /// Expression nesting depth (at load time).
    pub max_expr_depth: usize,
    /// Longest string a condition may build, in bytes.
    pub max_string_size: usize,
    /// Largest array a condition may build (elements, nested ones included).
    pub max_array_size: usize,
    /// Largest map a condition may build (entries, nested ones included).
    pub max_map_size: usize,
    /// Wall-clock time per evaluation.
    pub time_limit: std::time::Duration,
    /// Longest pattern `glob` accepts, in bytes.
    pub max_glob_pattern_size: usize,
    /// Longest text `glob` matches, in bytes.
    pub max_glob_text_size: usize,
}

impl Default for ConditionLimits {
    fn default() -> Self {
        ConditionLimits {
            max_operations: 100_000,
            max_call_depth: 32,
            max_expr_depth: 64,
            max_string_size: 256 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            time_limit: std::time::Duration::from_millis(50),
            max_glob_pattern_size: 1024,
            max_glob_text_size: 4096,
        }
    }
}

/// Compiled glob patterns kept per engine: at most this many, in at most this many bytes.
const GLOB_CACHE_ENTRIES: usize = 1024;
const GLOB_CACHE_BYTES: usize = 1 << 20;

/// What the helpers need to know about the decision being made. Helpers are plain Rhai
/// functions, so the state reaches them through a thread-local set for the duration of a
/// decision (evaluation is synchronous and never leaves the calling thread).
pub(crate) struct HelperState {
    pub now: Timestamp,
    pub recent: Vec<RecentSignal>,
    pub current_signal_id: String,
    pub zone: TimeZone,
}

thread_local! {
    static STATE: RefCell<Option<HelperState>> = const { RefCell::new(None) };
}

/// Installs the helper state for this thread until dropped.
pub(crate) struct StateGuard(());

impl StateGuard {
    pub fn install(state: HelperState) -> StateGuard {
        STATE.with(|s| *s.borrow_mut() = Some(state));
        StateGuard(())
    }
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        STATE.with(|s| *s.borrow_mut() = None);
    }
}

fn runtime_error(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE))
}

fn with_state<T>(
    helper: &str,
    f: impl FnOnce(&HelperState) -> Result<T, Box<EvalAltResult>>,
) -> Result<T, Box<EvalAltResult>> {
    STATE.with(|s| match s.borrow().as_ref() {
        Some(state) => f(state),
        None => Err(runtime_error(format!(
            "{helper}: helpers are only available while deciding"
        ))),
    })
}

fn recent_count(pattern: &str, window: &str) -> Result<i64, Box<EvalAltResult>> {
    let window = Duration::parse(window).map_err(|_| {
        runtime_error(format!(
            "recent_count: the window {} is not a duration (a whole number and s, m, h or d, e.g. `1h`)",
            Quoted(window)
        ))
    })?;
    with_state("recent_count", |state| {
        let since = state.now.as_millisecond() - window.as_millis();
        let now = state.now.as_millisecond();
        let n = state
            .recent
            .iter()
            .filter(|r| r.signal_id.as_deref() != Some(state.current_signal_id.as_str()))
            .filter(|r| {
                let at = r.occurred_at.as_millisecond();
                since < at && at <= now
            })
            .filter(|r| kind_matches(pattern, &r.kind))
            .count();
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    })
}

fn hours_since(text: &str) -> Result<f64, Box<EvalAltResult>> {
    let at = crate::signal::parse_timestamp(text).map_err(|_| {
        runtime_error(format!(
            "hours_since: {} is not an RFC 3339 timestamp with an offset (e.g. `2026-11-22T10:00:00Z`)",
            Quoted(text)
        ))
    })?;
    with_state("hours_since", |state| {
        let ms = state.now.as_millisecond() - at.as_millisecond();
        // Milliseconds to hours; the precision lost in the cast is far below a millisecond.
        #[expect(
            clippy::cast_precision_loss,
            reason = "sub-millisecond precision is irrelevant here"
        )]
        Ok(ms as f64 / 3_600_000.0)
    })
}

fn local_hour() -> Result<i64, Box<EvalAltResult>> {
    with_state("local_hour", |state| {
        Ok(i64::from(state.now.to_zoned(state.zone.clone()).hour()))
    })
}

/// `glob(pattern, text)`: lengths checked first, the pattern compiled once per engine, the
/// match stopped when the evaluation runs out of time.
fn glob(
    cache: &GlobCache,
    limits: &ConditionLimits,
    pattern: &str,
    text: &str,
) -> Result<bool, Box<EvalAltResult>> {
    if pattern.len() > limits.max_glob_pattern_size {
        return Err(exceed(Stop::GlobPattern(pattern.len())));
    }
    if text.len() > limits.max_glob_text_size {
        return Err(exceed(Stop::GlobText(text.len())));
    }
    let matcher = cache
        .get(pattern)
        .map_err(|e| runtime_error(format!("glob: invalid pattern {}: {e}", Quoted(pattern))))?;
    matcher
        .is_match(text, check)
        .map_err(|Stopped(stop)| exceed(stop))
}

/// Builds the sandboxed engine: bounded, no `eval`, no modules, no closures, no I/O, and
/// only the functions [`super::library`] puts in scope.
pub(crate) fn engine(limits: &ConditionLimits) -> rhai::Engine {
    let mut engine = rhai::Engine::new_raw();
    super::library::install(&mut engine);
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_depth);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    // Currying copies values into function pointers, where no size limit sees them.
    engine.disable_symbol("curry");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(|_| tick().map(Dynamic::from));
    engine.register_fn("recent_count", recent_count);
    engine.register_fn("hours_since", hours_since);
    engine.register_fn("local_hour", local_hour);
    let cache = Arc::new(GlobCache::new(GLOB_CACHE_ENTRIES, GLOB_CACHE_BYTES));
    let glob_limits = limits.clone();
    engine.register_fn("glob", move |pattern: &str, text: &str| {
        glob(&cache, &glob_limits, pattern, text)
    });
    engine
}
