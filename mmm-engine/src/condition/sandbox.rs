//! The sandboxed Rhai engine conditions run on, and the helper functions they may call.

use std::cell::RefCell;
use std::time::Instant;

use dashmap::DashMap;
use globset::{GlobBuilder, GlobMatcher};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rhai::{Dynamic, EvalAltResult, Position};

use crate::context::RecentSignal;
use crate::duration::Duration;
use crate::trigger::kind_matches;

/// Limits on what one condition may do. A condition that passes one is suppressed with
/// `condition_error`; the decision goes on.
#[derive(Debug, Clone)]
pub struct ConditionLimits {
    /// Rhai operations per evaluation.
    pub max_operations: u64,
    /// Function call depth (recursion).
    pub max_call_depth: usize,
    /// Expression nesting depth (at load time).
    pub max_expr_depth: usize,
    /// Longest string a condition may build, in bytes.
    pub max_string_size: usize,
    /// Largest array a condition may build.
    pub max_array_size: usize,
    /// Largest map a condition may build.
    pub max_map_size: usize,
    /// Wall-clock time per evaluation.
    pub time_limit: std::time::Duration,
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
        }
    }
}

/// What the helpers need to know about the decision being made. Helpers are plain Rhai
/// functions, so the state reaches them through a thread-local set for the duration of an
/// evaluation (evaluation is synchronous and never leaves the calling thread).
pub(crate) struct HelperState {
    pub now: Timestamp,
    pub recent: Vec<RecentSignal>,
    pub current_signal_id: String,
    pub zone: TimeZone,
    pub deadline: Instant,
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

    pub fn set_deadline(&self, deadline: Instant) {
        STATE.with(|s| {
            if let Some(state) = s.borrow_mut().as_mut() {
                state.deadline = deadline;
            }
        });
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
    f: impl FnOnce(&HelperState) -> Result<T, Box<EvalAltResult>>,
) -> Result<T, Box<EvalAltResult>> {
    STATE.with(|s| match s.borrow().as_ref() {
        Some(state) => f(state),
        None => Err(runtime_error(
            "helpers are only available while deciding".into(),
        )),
    })
}

fn recent_count(pattern: &str, window: &str) -> Result<i64, Box<EvalAltResult>> {
    let window = Duration::parse(window).map_err(|e| runtime_error(e.to_string()))?;
    with_state(|state| {
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
    let at = crate::signal::parse_timestamp(text).map_err(runtime_error)?;
    with_state(|state| {
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
    with_state(|state| Ok(i64::from(state.now.to_zoned(state.zone.clone()).hour())))
}

/// Compiled glob patterns, shared by all evaluations; bounded so that conditions building
/// patterns from payload text cannot grow it without limit.
pub(crate) struct GlobCache {
    map: DashMap<String, GlobMatcher>,
}

const GLOB_CACHE_MAX: usize = 1024;

impl GlobCache {
    fn matches(&self, pattern: &str, text: &str) -> Result<bool, Box<EvalAltResult>> {
        if let Some(m) = self.map.get(pattern) {
            return Ok(m.is_match(text));
        }
        let matcher = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| runtime_error(format!("invalid glob `{pattern}`: {e}")))?
            .compile_matcher();
        let result = matcher.is_match(text);
        if self.map.len() < GLOB_CACHE_MAX {
            self.map.insert(pattern.to_owned(), matcher);
        }
        Ok(result)
    }
}

/// Builds the sandboxed engine: bounded, no `eval`, no modules, no closures, no I/O.
pub(crate) fn engine(limits: &ConditionLimits) -> rhai::Engine {
    let mut engine = rhai::Engine::new();
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_depth);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(|ops| {
        if ops % 512 == 0 {
            let late = STATE.with(|s| {
                s.borrow()
                    .as_ref()
                    .is_some_and(|state| Instant::now() > state.deadline)
            });
            if late {
                return Some(Dynamic::from("condition exceeded its time limit"));
            }
        }
        None
    });
    engine.register_fn("recent_count", recent_count);
    engine.register_fn("hours_since", hours_since);
    engine.register_fn("local_hour", local_hour);
    let globs = std::sync::Arc::new(GlobCache {
        map: DashMap::new(),
    });
    engine.register_fn("glob", move |pattern: &str, text: &str| {
        globs.matches(pattern, text)
    });
    engine
}
