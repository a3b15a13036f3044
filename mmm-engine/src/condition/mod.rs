//! Conditions. Each `when` is compiled once, at load, to a Rhai AST on the
//! sandboxed engine, and also to a native expression when it lies in the simple subset.

pub(crate) mod budget;
pub(crate) mod glob;
pub(crate) mod library;
pub(crate) mod native;
pub(crate) mod sandbox;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use rhai::{Dynamic, EvalAltResult, Position, Scope, AST};

use budget::Stop;
pub use sandbox::ConditionLimits;

use crate::env::{Env, Path};

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    ast: AST,
    native: Option<native::Expr>,
    /// At least as many operations as Rhai counts evaluating `native`: the native path is
    /// taken only when Rhai could not have run out of operations.
    native_operations: u64,
    /// The paths the condition reads, reported as evidence, with their dotted names.
    pub paths: Vec<(Path, String)>,
}

/// A condition that does not compile: the message and the 1-based position in the script.
#[derive(Debug, Clone)]
pub(crate) struct CompileError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// The sandboxed Rhai engine plus the placeholders conditions compile against.
pub(crate) struct Sandbox {
    engine: rhai::Engine,
    limits: ConditionLimits,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish()
    }
}

fn declared_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_constant("signal", Dynamic::UNIT);
    scope.push_constant("ctx", Dynamic::UNIT);
    scope
}

fn root_variable(mut expr: &rhai::Expr) -> Option<&str> {
    loop {
        match expr {
            rhai::Expr::Variable(x, ..) => return Some(x.1.as_str()),
            rhai::Expr::Dot(b, ..) | rhai::Expr::Index(b, ..) => expr = &b.lhs,
            _ => return None,
        }
    }
}

impl Sandbox {
    pub fn new(limits: ConditionLimits) -> Sandbox {
        Sandbox {
            engine: sandbox::engine(&limits),
            limits,
        }
    }

    /// Compiles a `when` script.
    pub fn compile(&self, src: &str) -> Result<Condition, CompileError> {
        let scope = declared_scope();
        let ast = self
            .engine
            .compile_with_scope(&scope, src)
            .map_err(|e| CompileError {
                message: e.err_type().to_string(),
                line: e.position().line().unwrap_or(1),
                column: e.position().position().unwrap_or(1),
            })?;
        // `signal` and `ctx` are read-only. Rhai reports most writes to a constant at run
        // time, but a direct property write (`signal.x = 1`) panics inside Rhai 1.27, so
        // every assignment rooted at either is refused here, at load.
        let mut refused: Option<CompileError> = None;
        ast.walk(&mut |nodes: &[rhai::ASTNode]| {
            if let Some(rhai::ASTNode::Stmt(rhai::Stmt::Assignment(x))) = nodes.last() {
                if let Some(name @ ("signal" | "ctx")) = root_variable(&x.1.lhs) {
                    let pos = x.0.position();
                    refused = Some(CompileError {
                        message: format!("conditions cannot modify `{name}`"),
                        line: pos.line().unwrap_or(1),
                        column: pos.position().unwrap_or(1),
                    });
                    return false;
                }
            }
            true
        });
        if let Some(e) = refused {
            return Err(e);
        }
        let native = native::parse(src);
        let native_operations = native.as_ref().map_or(0, native::operations_bound);
        let mut found = Vec::new();
        match &native {
            Some(expr) => native::paths(expr, &mut found),
            None => found = native::scan_paths(src),
        }
        let paths = found
            .into_iter()
            .map(|p| {
                let name = p.to_string();
                (p, name)
            })
            .collect();
        Ok(Condition {
            ast,
            native,
            native_operations,
            paths,
        })
    }
}

/// Per-decision Rhai state, built only if some condition needs Rhai.
pub(crate) struct RhaiState {
    scope: Option<Scope<'static>>,
    guard: Option<sandbox::StateGuard>,
}

impl RhaiState {
    pub fn new() -> RhaiState {
        RhaiState {
            scope: None,
            guard: None,
        }
    }
}

/// What [`Condition::evaluate`] needs beyond the environment.
pub(crate) struct HelperInputs<'a> {
    pub now: jiff::Timestamp,
    pub recent: &'a [crate::context::RecentSignal],
    pub zone: &'a jiff::tz::TimeZone,
}

impl Condition {
    /// Whether this condition runs natively (no Rhai) when its inputs allow.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Evaluates the condition; `Err` carries a message for `condition_error`.
    pub fn evaluate<'a>(
        &'a self,
        sandbox: &Sandbox,
        env: &Env<'a>,
        helpers: &HelperInputs<'_>,
        state: &mut RhaiState,
        paths: &mut native::PathCache<'a>,
    ) -> Result<bool, String> {
        if let Some(expr) = &self.native {
            let max = sandbox.limits.max_operations;
            if max == 0 || self.native_operations <= max {
                if let Ok(result) = native::evaluate(expr, env, paths) {
                    return Ok(result);
                }
            }
        }
        self.evaluate_rhai(sandbox, env, helpers, state)
    }

    pub fn evaluate_rhai(
        &self,
        sandbox: &Sandbox,
        env: &Env<'_>,
        helpers: &HelperInputs<'_>,
        state: &mut RhaiState,
    ) -> Result<bool, String> {
        if state.guard.is_none() {
            state.guard = Some(sandbox::StateGuard::install(sandbox::HelperState {
                now: helpers.now,
                recent: helpers.recent.to_vec(),
                current_signal_id: env.signal.signal_id.clone(),
                zone: helpers.zone.clone(),
            }));
        }
        let scope = match &mut state.scope {
            Some(scope) => scope,
            None => {
                let mut scope = Scope::new();
                let signal = rhai::serde::to_dynamic(env.signal.to_json())
                    .map_err(|e| format!("signal cannot be given to the condition: {e}"))?;
                let ctx = rhai::serde::to_dynamic(env.ctx_value())
                    .map_err(|e| format!("context cannot be given to the condition: {e}"))?;
                scope.push_constant_dynamic("signal", signal);
                scope.push_constant_dynamic("ctx", ctx);
                state.scope.insert(scope)
            }
        };
        let base = scope.len();
        let limits = &sandbox.limits;
        budget::begin(limits.max_operations, Instant::now() + limits.time_limit);
        // Rhai is third-party code running on author-supplied scripts: a panic inside it
        // must cost this playbook its condition, not the caller its process.
        let result = catch_unwind(AssertUnwindSafe(|| {
            sandbox
                .engine
                .eval_ast_with_scope::<Dynamic>(scope, &self.ast)
        }));
        // A limit hit inside a native function stops the evaluation even when the script
        // went on (a function that swallowed the error, a value returned after it).
        let stop = budget::end();
        scope.rewind(base);
        match (stop, result) {
            (_, Err(_)) => Err("the condition crashed the script engine".to_owned()),
            (Some(stop), Ok(result)) => {
                let position = result.err().map_or(Position::NONE, |e| root(&e).position());
                Err(located(describe(stop, limits), position))
            }
            (None, Ok(Err(e))) => Err(e.to_string()),
            (None, Ok(Ok(value))) => value
                .as_bool()
                .map_err(|type_name| format!("the condition returned {type_name}, not a boolean")),
        }
    }
}

/// The error a script's error comes from, through the calls it went up.
fn root(mut e: &EvalAltResult) -> &EvalAltResult {
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = e {
        e = inner;
    }
    e
}

fn located(message: String, position: Position) -> String {
    if position.is_none() {
        message
    } else {
        format!("{message} ({position})")
    }
}

/// The detail for a limit; the limits Rhai also checks itself read as Rhai words them.
fn describe(stop: Stop, limits: &ConditionLimits) -> String {
    match stop {
        Stop::Time => format!(
            "the condition ran longer than its time limit of {:?}",
            limits.time_limit
        ),
        Stop::Operations => "Too many operations".to_owned(),
        Stop::String => "Length of string too large".to_owned(),
        Stop::Array => "Size of array/BLOB too large".to_owned(),
        Stop::Map => "Size of object map too large".to_owned(),
        Stop::Depth => format!(
            "the condition built values nested deeper than {} levels",
            budget::MAX_VALUE_DEPTH
        ),
        Stop::GlobPattern(len) => format!(
            "glob: the pattern is {len} bytes, longer than `max_glob_pattern_size` ({} bytes)",
            limits.max_glob_pattern_size
        ),
        Stop::GlobText(len) => format!(
            "glob: the text is {len} bytes, longer than `max_glob_text_size` ({} bytes)",
            limits.max_glob_text_size
        ),
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::signal::Signal;

    fn random_value(rng: &mut StdRng) -> Option<Value> {
        Some(match rng.random_range(0..10) {
            0 => return None,
            1 => Value::Null,
            2 => json!(rng.random_bool(0.5)),
            3 | 4 => json!(rng.random_range(-3_i64..4)),
            5 => json!(f64::from(rng.random_range(-6_i32..7)) / 2.0),
            6 | 7 => json!(["a", "b", "B", "é", "", "10"][rng.random_range(0..6)]),
            8 => json!([1, 2]),
            _ => json!({"k": 1}),
        })
    }

    fn random_operand(rng: &mut StdRng) -> String {
        match rng.random_range(0..9) {
            0..=3 => format!(
                "signal.payload.{}",
                ["a", "b", "c", "d"][rng.random_range(0..4)]
            ),
            4 => "signal.payload.a.inner".to_owned(),
            5 => ["signal.kind", "ctx.x", "signal.repo.branch"][rng.random_range(0..3)].to_owned(),
            6 => rng.random_range(-3_i64..4).to_string(),
            7 => format!("{:.1}", f64::from(rng.random_range(-6_i32..7)) / 2.0),
            _ => ["\"a\"", "\"B\"", "\"10\"", "true", "false", "\"\""][rng.random_range(0..6)]
                .to_owned(),
        }
    }

    fn random_expr(rng: &mut StdRng, depth: u32) -> String {
        if depth == 0 || rng.random_bool(0.3) {
            let op = ["==", "!=", "<", "<=", ">", ">="][rng.random_range(0..6)];
            return match rng.random_range(0..5) {
                0 => format!(
                    "signal.payload.{}",
                    ["a", "b", "c", "d"][rng.random_range(0..4)]
                ),
                _ => format!("{} {op} {}", random_operand(rng), random_operand(rng)),
            };
        }
        match rng.random_range(0..4) {
            0 => format!("!({})", random_expr(rng, depth - 1)),
            1 => format!(
                "({}) && ({})",
                random_expr(rng, depth - 1),
                random_expr(rng, depth - 1)
            ),
            2 => format!(
                "{} || {}",
                random_expr(rng, depth - 1),
                random_expr(rng, depth - 1)
            ),
            _ => format!(
                "{} && {}",
                random_expr(rng, depth - 1),
                random_expr(rng, depth - 1)
            ),
        }
    }

    /// A panic inside the script engine (here, a native function that panics) costs the
    /// condition, not the process, and leaves the next evaluation a fresh budget.
    #[test]
    fn a_panic_is_a_condition_error() {
        let mut sandbox = Sandbox::new(ConditionLimits::default());
        sandbox
            .engine
            .register_fn("boom", || -> bool { panic!("boom") });
        let signal = Signal::from_json(
            &json!({"tenant_id": "t", "actor_id": "a", "kind": "k", "occurred_at": "2026-11-22T10:00:00Z"}),
            1 << 16,
        )
        .unwrap();
        let ctx = Map::new();
        let env = Env {
            signal: &signal,
            ctx: &ctx,
            now_text: "2026-11-22T10:00:00Z",
        };
        let helpers = HelperInputs {
            now: "2026-11-22T10:00:00Z".parse().unwrap(),
            recent: &[],
            zone: &jiff::tz::TimeZone::UTC,
        };
        let mut state = RhaiState::new();
        let boom = sandbox.compile("boom()").unwrap();
        assert_eq!(
            boom.evaluate_rhai(&sandbox, &env, &helpers, &mut state),
            Err("the condition crashed the script engine".to_owned())
        );
        let fine = sandbox.compile("let x = 1; x == 1").unwrap();
        assert_eq!(
            fine.evaluate_rhai(&sandbox, &env, &helpers, &mut state),
            Ok(true)
        );
    }

    /// The native evaluator must agree with Rhai on every input it does not give up on.
    #[test]
    fn native_evaluation_agrees_with_rhai() {
        let sandbox = Sandbox::new(ConditionLimits::default());
        let tight: Vec<Sandbox> = [3, 8, 16, 30]
            .into_iter()
            .map(|max_operations| {
                Sandbox::new(ConditionLimits {
                    max_operations,
                    ..ConditionLimits::default()
                })
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        let (mut native_runs, mut gave_up, mut limited) = (0, 0, 0);
        for _ in 0..3_000 {
            let src = random_expr(&mut rng, 3);
            let condition = sandbox
                .compile(&src)
                .unwrap_or_else(|e| panic!("{src}: {}", e.message));
            let native = condition
                .native
                .clone()
                .unwrap_or_else(|| panic!("{src} should be in the native subset"));
            for _ in 0..4 {
                let mut payload = Map::new();
                for key in ["a", "b", "c", "d"] {
                    if let Some(v) = random_value(&mut rng) {
                        payload.insert(key.to_owned(), v);
                    }
                }
                let signal = Signal::from_json(
                    &json!({"tenant_id": "t", "actor_id": "a", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z",
                            "repo": {"id": "r", "branch": "B"}, "payload": payload}),
                    1 << 16,
                )
                .unwrap();
                let ctx = json!({"x": random_value(&mut rng).unwrap_or(Value::Null)});
                let env = Env {
                    signal: &signal,
                    ctx: ctx.as_object().unwrap(),
                    now_text: "2026-11-22T10:00:00Z",
                };
                let helpers = HelperInputs {
                    now: "2026-11-22T10:00:00Z".parse().unwrap(),
                    recent: &[],
                    zone: &jiff::tz::TimeZone::UTC,
                };
                let rhai = condition.evaluate_rhai(&sandbox, &env, &helpers, &mut RhaiState::new());
                // The native path is only taken within an operation budget that covers Rhai's.
                let counted = budget::operations();
                assert!(
                    counted <= condition.native_operations,
                    "{src}: Rhai counted {counted} operations, the bound is {}",
                    condition.native_operations
                );
                match native::evaluate(&native, &env, &mut native::PathCache::default()) {
                    Ok(b) => {
                        native_runs += 1;
                        assert_eq!(rhai, Ok(b), "{src} with payload {payload:?}, ctx {ctx}");
                    }
                    Err(native::GiveUp) => gave_up += 1,
                }
                // With any operation limit, the engine's choice of path gives Rhai's answer,
                // "Too many operations" included.
                for tight in &tight {
                    let either = condition.evaluate(
                        tight,
                        &env,
                        &helpers,
                        &mut RhaiState::new(),
                        &mut native::PathCache::default(),
                    );
                    let rhai =
                        condition.evaluate_rhai(tight, &env, &helpers, &mut RhaiState::new());
                    assert_eq!(either, rhai, "{src} with payload {payload:?}, ctx {ctx}");
                    limited += usize::from(rhai.as_ref().is_err_and(|e| e.contains("Too many")));
                }
            }
        }
        // The subset must actually be exercised, not given up on.
        assert!(
            native_runs > 4_000 && limited > 1_000,
            "native ran {native_runs} times, gave up {gave_up}, {limited} ran out of operations"
        );
    }
}
