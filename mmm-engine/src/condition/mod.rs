//! Conditions. Each `when` is compiled once, at load, to a Rhai AST on the
//! sandboxed engine, and also to a flat native program when it lies in the simple subset.

pub(crate) mod budget;
pub(crate) mod glob;
pub(crate) mod library;
pub(crate) mod native;
pub(crate) mod program;
pub(crate) mod sandbox;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use rhai::{Dynamic, EvalAltResult, Position, Scope, AST};

use budget::Stop;
pub use sandbox::ConditionLimits;

use crate::env::{Env, Path};
use crate::ids::SharedStr;

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    ast: AST,
    native: Option<program::Program>,
    /// At least as many operations as Rhai counts evaluating `native`: the native path is
    /// taken only when Rhai could not have run out of operations.
    native_operations: u64,
    /// The paths the condition reads, reported as evidence, with their dotted names (made
    /// once here and shared by every evidence entry that names them).
    pub paths: Vec<(Path, SharedStr)>,
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
        let expr = native::parse(src);
        let native = expr.as_ref().and_then(program::Program::compile);
        let native_operations = expr.as_ref().map_or(0, native::operations_bound);
        let mut found = Vec::new();
        match (&expr, &native) {
            (Some(expr), Some(_)) => native::paths(expr, &mut found),
            _ => found = native::scan_paths(src),
        }
        let paths = found
            .into_iter()
            .map(|p| {
                let name = SharedStr::from(p.to_string());
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

/// A condition's [`program::Quick`] form, with the bound on the operations Rhai would count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuickCondition {
    quick: program::Quick,
    operations: u64,
}

impl QuickCondition {
    /// The condition's value, when the quick form can give it: the sandbox's operation
    /// limit lets the native path run (as in [`Condition::evaluate`]) and every path it
    /// reads is already resolved in `paths`.
    #[inline]
    pub fn evaluate(&self, sandbox: &Sandbox, paths: &program::PathCache<'_>) -> Option<bool> {
        let max = sandbox.limits.max_operations;
        if max != 0 && self.operations > max {
            return None;
        }
        self.quick.run(paths)
    }
}

impl Condition {
    /// The quick form of the condition, when it has one.
    pub fn quick(&self) -> Option<QuickCondition> {
        let quick = self.native.as_ref()?.quick()?;
        Some(QuickCondition {
            quick,
            operations: self.native_operations,
        })
    }

    /// Whether this condition runs natively (no Rhai) when its inputs allow.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Evaluates the condition; `Err` carries a message for `condition_error`.
    #[inline]
    pub fn evaluate<'a>(
        &'a self,
        sandbox: &Sandbox,
        env: &Env<'a>,
        helpers: &HelperInputs<'_>,
        state: &mut RhaiState,
        paths: &mut program::PathCache<'a>,
    ) -> Result<bool, String> {
        if let Some(program) = &self.native {
            let limits = &sandbox.limits;
            let max = limits.max_operations;
            if max == 0 || self.native_operations <= max {
                let glob_limits = (limits.max_glob_pattern_size, limits.max_glob_text_size);
                if let Ok(result) = program.run(env, paths, glob_limits) {
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

    fn random_path(rng: &mut StdRng) -> String {
        match rng.random_range(0..6) {
            0..=3 => format!(
                "signal.payload.{}",
                ["a", "b", "c", "d"][rng.random_range(0..4)]
            ),
            4 => "signal.payload.a.inner".to_owned(),
            _ => ["signal.kind", "ctx.x", "signal.repo.branch"][rng.random_range(0..3)].to_owned(),
        }
    }

    fn random_literal(rng: &mut StdRng) -> String {
        match rng.random_range(0..4) {
            0 => rng.random_range(-3_i64..4).to_string(),
            1 => format!("{:.1}", f64::from(rng.random_range(-6_i32..7)) / 2.0),
            _ => ["\"a\"", "\"B\"", "\"10\"", "true", "false", "\"\"", "\"é\""]
                [rng.random_range(0..7)]
            .to_owned(),
        }
    }

    /// A condition that cannot be more than a boolean leaf: a path, a comparison, or one of
    /// `in`, `starts_with` and `glob` on literals.
    fn random_leaf(rng: &mut StdRng) -> String {
        let op = ["==", "!=", "<", "<=", ">", ">="][rng.random_range(0..6)];
        match rng.random_range(0..9) {
            0 => random_path(rng),
            1 => {
                let items: Vec<String> = (0..rng.random_range(0..4))
                    .map(|_| random_literal(rng))
                    .collect();
                format!("{} in [{}]", random_path(rng), items.join(", "))
            }
            2 => format!(
                "{}.starts_with(\"{}\")",
                random_path(rng),
                ["", "a", "B", "1", "é", "pr."][rng.random_range(0..6)]
            ),
            3 => format!(
                "glob(\"{}\", {})",
                ["*", "a*", "?", "[a-c]", "*0", "B", "pr.*", "**/x", "{a,b}"]
                    [rng.random_range(0..9)],
                random_path(rng)
            ),
            _ => format!("{} {op} {}", random_operand(rng), random_operand(rng)),
        }
    }

    /// A signal whose payload holds random values (or nothing) under `a` to `d`, the
    /// payload itself (for messages), and a context with a random `x`.
    fn random_input(rng: &mut StdRng) -> (Map<String, Value>, Signal, Value) {
        let mut payload = Map::new();
        for key in ["a", "b", "c", "d"] {
            if let Some(v) = random_value(rng) {
                payload.insert(key.to_owned(), v);
            }
        }
        let signal = Signal::from_json(
            &json!({"tenant_id": "t", "actor_id": "a", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z",
                    "repo": {"id": "r", "branch": "B"}, "payload": payload}),
            1 << 16,
        )
        .unwrap();
        let ctx = json!({"x": random_value(rng).unwrap_or(Value::Null)});
        (payload, signal, ctx)
    }

    fn random_expr(rng: &mut StdRng, depth: u32) -> String {
        if depth == 0 || rng.random_bool(0.3) {
            return random_leaf(rng);
        }
        match rng.random_range(0..5) {
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
            3 => format!(
                "({}) {} ({})",
                random_expr(rng, depth - 1),
                ["==", "!=", "<", ">="][rng.random_range(0..4)],
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

    /// The native program must agree with Rhai on every input it does not give up on, and
    /// report the same evidence paths as the lexical scan used for Rhai conditions.
    #[test]
    fn native_evaluation_agrees_with_rhai() {
        // Time is not what this test compares: a loaded machine must not reach the limit.
        let limits = ConditionLimits {
            time_limit: std::time::Duration::from_secs(600),
            ..ConditionLimits::default()
        };
        let sandbox = Sandbox::new(limits.clone());
        let mut tight: Vec<Sandbox> = [3, 8, 16, 30]
            .into_iter()
            .map(|max_operations| {
                Sandbox::new(ConditionLimits {
                    max_operations,
                    ..limits.clone()
                })
            })
            .collect();
        // `glob` on a text or pattern past the sandbox's sizes is Rhai's error.
        tight.push(Sandbox::new(ConditionLimits {
            max_glob_pattern_size: 1,
            max_glob_text_size: 1,
            ..limits
        }));
        let mut rng = StdRng::seed_from_u64(7);
        let (mut native_runs, mut gave_up, mut limited, mut quick_runs) = (0, 0, 0, 0);
        // Native runs that returned, per form: `in`, `starts_with`, `glob`, `(…) OP (…)`.
        let mut forms = [0_usize; 4];
        for round in 0..3_000 {
            let src = random_expr(&mut rng, if round % 4 == 0 { 5 } else { 3 });
            let condition = sandbox
                .compile(&src)
                .unwrap_or_else(|e| panic!("{src}: {}", e.message));
            let native = condition
                .native
                .clone()
                .unwrap_or_else(|| panic!("{src} should be in the native subset"));
            let scanned: Vec<String> = native::scan_paths(&src)
                .iter()
                .map(ToString::to_string)
                .collect();
            let reported: Vec<&str> = condition.paths.iter().map(|(_, name)| &**name).collect();
            let scanned: Vec<&str> = scanned.iter().map(String::as_str).collect();
            assert_eq!(reported, scanned, "{src}");
            for _ in 0..4 {
                let (payload, signal, ctx) = random_input(&mut rng);
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
                let limits = &sandbox.limits;
                let glob_limits = (limits.max_glob_pattern_size, limits.max_glob_text_size);
                let mut cache = program::PathCache::default();
                match native.run(&env, &mut cache, glob_limits) {
                    Ok(b) => {
                        native_runs += 1;
                        assert_eq!(rhai, Ok(b), "{src} with payload {payload:?}, ctx {ctx}");
                        // The quick form, on the paths the run resolved, says the same.
                        if let Some(q) = native.quick().and_then(|q| q.run(&cache)) {
                            assert_eq!(q, b, "{src} quick, payload {payload:?}, ctx {ctx}");
                            quick_runs += 1;
                        }
                        let compared = [") == (", ") != (", ") < (", ") >= ("];
                        let seen = [
                            src.contains(" in ["),
                            src.contains(".starts_with("),
                            src.contains("glob("),
                            compared.iter().any(|form| src.contains(form)),
                        ];
                        for (count, seen) in forms.iter_mut().zip(seen) {
                            *count += usize::from(seen);
                        }
                    }
                    Err(native::GiveUp) => gave_up += 1,
                }
                // With any limit, the engine's choice of path gives Rhai's answer, "Too many
                // operations" and glob's size errors included.
                for tight in &tight {
                    let either = condition.evaluate(
                        tight,
                        &env,
                        &helpers,
                        &mut RhaiState::new(),
                        &mut program::PathCache::default(),
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
            native_runs > 3_500
                && limited > 1_000
                && forms.iter().all(|n| *n > 300)
                && quick_runs > 300,
            "native ran {native_runs} times ({forms:?} by form, {quick_runs} also quick), \
             gave up {gave_up}, {limited} ran out of operations"
        );
    }

    /// `&&` over comparisons with literals, however nested, runs every test without a
    /// short circuit: it must give Rhai's answer, also when a test the short circuit would
    /// skip reads a path outside the subset (the program then runs with the short circuit).
    #[test]
    fn conjunctions_agree_with_rhai() {
        let sandbox = Sandbox::new(ConditionLimits {
            time_limit: std::time::Duration::from_secs(600),
            ..ConditionLimits::default()
        });
        let mut rng = StdRng::seed_from_u64(11);
        let (mut runs, mut held, mut after_give_up, mut quick) = (0, 0, 0, 0);
        for _ in 0..1_500 {
            let ops = ["==", "!=", "<", "<=", ">", ">="];
            let mut src = String::new();
            for i in 0..rng.random_range(2..5) {
                let test = format!(
                    "{} {} {}",
                    random_path(&mut rng),
                    ops[rng.random_range(0..6)],
                    random_literal(&mut rng)
                );
                src = match i {
                    0 => test,
                    _ if rng.random_bool(0.5) => format!("({src}) && {test}"),
                    _ => format!("{src} && ({test})"),
                };
            }
            let condition = sandbox
                .compile(&src)
                .unwrap_or_else(|e| panic!("{src}: {}", e.message));
            let native = condition.native.clone().unwrap_or_else(|| panic!("{src}"));
            assert!(native.is_conjunction(), "{src}");
            for _ in 0..4 {
                let (payload, signal, ctx) = random_input(&mut rng);
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
                let mut cache = program::PathCache::default();
                let glob_limits = (1 << 10, 1 << 10);
                if let Ok(b) = native.run(&env, &mut cache, glob_limits) {
                    runs += 1;
                    held += usize::from(b);
                    assert_eq!(rhai, Ok(b), "{src} with payload {payload:?}, ctx {ctx}");
                    if let Some(q) = native.quick().and_then(|q| q.run(&cache)) {
                        assert_eq!(q, b, "{src} quick, payload {payload:?}, ctx {ctx}");
                        quick += 1;
                    }
                    after_give_up += usize::from(native.all_tests_give_up(&env));
                }
            }
        }
        assert!(
            runs > 2_000 && held > 50 && after_give_up > 300 && quick > 300,
            "{runs} native runs, {held} held, {after_give_up} answered by the short circuit, \
             {quick} by the quick form"
        );
    }

    /// The quick form answers only on resolved paths and within the sandbox's operation
    /// limit, where the native path would run; otherwise the condition runs as usual.
    #[test]
    fn the_quick_form_keeps_to_the_operation_limit_and_resolved_paths() {
        let sandbox = Sandbox::new(ConditionLimits::default());
        let tight = Sandbox::new(ConditionLimits {
            max_operations: 3,
            ..ConditionLimits::default()
        });
        let signal = Signal::from_json(
            &json!({"tenant_id": "t", "actor_id": "a", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z",
                    "payload": {"a": 3, "b": 1.5, "c": true}}),
            1 << 16,
        )
        .unwrap();
        let ctx = Map::new();
        let env = Env {
            signal: &signal,
            ctx: &ctx,
            now_text: "2026-11-22T10:00:00Z",
        };
        let held = sandbox
            .compile("signal.payload.a > 1 && signal.payload.b < 2 && signal.payload.c == true")
            .unwrap();
        let quick = held.quick().expect("a quick condition");
        let mut paths = program::PathCache::default();
        assert_eq!(
            quick.evaluate(&sandbox, &paths),
            None,
            "nothing resolved yet"
        );
        let native = held.native.as_ref().unwrap();
        assert_eq!(native.run(&env, &mut paths, (64, 64)).ok(), Some(true));
        assert_eq!(quick.evaluate(&sandbox, &paths), Some(true));
        assert_eq!(
            quick.evaluate(&tight, &paths),
            None,
            "over the operation limit"
        );
        let not_held = sandbox.compile("signal.payload.a >= 4.0").unwrap();
        assert_eq!(
            not_held.quick().unwrap().evaluate(&sandbox, &paths),
            Some(false)
        );
        // Strings, `||`, `!` and methods have no quick form.
        for src in [
            "signal.kind == \"pr.opened\"",
            "signal.payload.a > 1 || signal.payload.b < 2",
            "!(signal.payload.a > 1)",
            "signal.kind.starts_with(\"pr.\")",
            "signal.payload.a > 1 && signal.payload.a > 1 && signal.payload.a > 1 \
             && signal.payload.a > 1 && signal.payload.a > 1",
        ] {
            assert!(sandbox.compile(src).unwrap().quick().is_none(), "{src}");
        }
    }

    /// One decision's path cache serves every condition: a path resolved by one is read by
    /// the next, and a path outside the subset sends each condition that reads it to Rhai.
    #[test]
    fn conditions_share_the_path_cache() {
        let sandbox = Sandbox::new(ConditionLimits::default());
        let signal = Signal::from_json(
            &json!({"tenant_id": "t", "actor_id": "a", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z",
                    "payload": {"n": 3, "list": [1, 2]}}),
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
        let cases = [
            ("signal.payload.n > 2", Ok(true)),
            (
                "signal.payload.n in [1, 3] && signal.kind.starts_with(\"pr.\")",
                Ok(true),
            ),
            (
                "glob(\"pr.*\", signal.kind) && signal.payload.n != 3",
                Ok(false),
            ),
            ("signal.payload.list == 1", Ok(false)),
            ("signal.payload.list in [1]", Ok(false)),
            ("signal.payload.missing.starts_with(\"a\")", Err(())),
        ];
        let conditions: Vec<Condition> = cases
            .iter()
            .map(|(src, _)| sandbox.compile(src).unwrap())
            .collect();
        let mut state = RhaiState::new();
        let mut cache = program::PathCache::default();
        for ((src, expected), condition) in cases.iter().zip(&conditions) {
            assert!(condition.is_native(), "{src}");
            let got = condition
                .evaluate(&sandbox, &env, &helpers, &mut state, &mut cache)
                .map_err(|_| ());
            let rhai = condition
                .evaluate_rhai(&sandbox, &env, &helpers, &mut RhaiState::new())
                .map_err(|_| ());
            assert_eq!((&got, &rhai), (expected, expected), "{src}");
        }
    }

    /// Nesting past what the native parser or the program's stack takes runs on Rhai, with
    /// Rhai's answer.
    #[test]
    fn deep_nesting_falls_back_to_rhai() {
        let sandbox = Sandbox::new(ConditionLimits {
            max_expr_depth: 1024,
            ..ConditionLimits::default()
        });
        let not_30 = format!("{}signal.payload.n == 3", "!".repeat(30));
        let parens_40 = format!("{}signal.payload.n == 3{}", "(".repeat(40), ")".repeat(40));
        let mut compared = String::from("signal.payload.n == 3");
        for _ in 0..20 {
            compared = format!("true == ({compared})");
        }
        for (src, native) in [(not_30, true), (parens_40, false), (compared, false)] {
            let condition = sandbox.compile(&src).unwrap();
            assert_eq!(condition.is_native(), native, "{src}");
        }
    }
}
