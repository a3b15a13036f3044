//! The functions conditions can call, besides the helpers.
//!
//! The engine starts empty (`Engine::new_raw`) and gets Rhai's packages, in one module:
//! arithmetic, logic, math, bit fields, function-pointer basics, iterators (ranges,
//! `chars`, `bits`), strings, arrays and maps. Not taken: the language-core package
//! (`sleep`, `exit`, `parse_json`, tags, function metadata), blobs and time (time is not
//! compiled in). Every function that survives was read for two properties:
//!
//! - it cannot build a value beyond the size limits before Rhai checks the size (Rhai
//!   checks a function's result after it returns, when a `replace` of a 128 KiB string by
//!   itself has already allocated gigabytes);
//! - it cannot run unbounded work inside one call (Rhai's budget is only consulted between
//!   operations, and its operation count restarts inside callbacks).
//!
//! Those that fail either are replaced here, registered under the same name and parameter
//! types (the engine's own functions shadow the packages'), by versions that compute the
//! size of the result first, or by an error saying the function is not available. The
//! documentation's list is in `docs/playbook-reference.md` ("What conditions can call").
//! Strings and the text of values are in `text.rs`, arrays and maps in `collections.rs`.

use std::any::TypeId;

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, ImmutableString, Map, Module, NativeCallContext,
    Position, INT,
};

use super::budget::{exceed, Stop};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Registers `f` under `name`, as pure or not as Rhai's own function of that name is (a
/// pure method may be called on the read-only `signal` and `ctx`).
macro_rules! register {
    ($engine:expr, $name:expr, pure: $pure:expr, $f:expr) => {
        FuncRegistration::new($name)
            .with_purity($pure)
            .register_into_engine($engine, $f);
    };
}

mod collections;
mod text;

/// Puts the condition library into `engine`.
pub(crate) fn install(engine: &mut Engine) {
    use rhai::packages::{
        ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage,
        BasicMapPackage, BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage,
        MoreStringPackage, Package,
    };
    // One module in the order of Rhai's standard package, with every function registered
    // up front: packages otherwise keep their functions in manifests searched one entry at a
    // time on each lookup, and evaluations start with empty resolution caches.
    let mut lib = Module::new();
    for package in [
        ArithmeticPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
        BitFieldPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
    ] {
        lib.combine_flatten((*package).clone());
    }
    lib.register_lazy_functions();
    lib.build_index();
    engine.register_global_module(lib.into());
    // The engine's own namespace is searched before any module: what is registered below
    // shadows the packages' functions of the same name and parameter types.
    remove_unavailable(engine);
    text::strings(engine);
    text::formatting(engine);
    collections::arrays(engine);
    collections::maps(engine);
}

fn t<T: 'static>() -> TypeId {
    TypeId::of::<T>()
}

/// Functions of the packages above that conditions cannot call, by parameter types.
/// Callbacks that may change the array they walk (`for_each`, `drain`, `retain`, `reduce`
/// — their callback sees each element as a mutable `this`), that collect callback results
/// (`zip`, maps' `map`), that swallow the callback's errors and go on (`sort`, `dedup`
/// with a comparer), the deprecated call-by-name forms, `to_blob` (blobs are not in scope)
/// and `to_json`.
fn remove_unavailable(engine: &mut Engine) {
    let (array, map, string, fnptr, int, dynamic) = (
        t::<Array>(),
        t::<Map>(),
        t::<ImmutableString>(),
        t::<FnPtr>(),
        t::<INT>(),
        t::<Dynamic>(),
    );
    let removed: &[(&'static str, &[TypeId])] = &[
        ("to_blob", &[string]),
        ("to_json", &[map]),
        ("for_each", &[array, fnptr]),
        ("find", &[array, fnptr, int]),
        ("find_map", &[array, fnptr]),
        ("find_map", &[array, fnptr, int]),
        ("index_of", &[array, fnptr, int]),
        ("reduce", &[array, fnptr]),
        ("reduce", &[array, fnptr, dynamic]),
        ("reduce", &[array, string]),
        ("reduce", &[array, string, dynamic]),
        ("reduce_rev", &[array, fnptr]),
        ("reduce_rev", &[array, fnptr, dynamic]),
        ("reduce_rev", &[array, string]),
        ("reduce_rev", &[array, string, dynamic]),
        ("drain", &[array, fnptr]),
        ("drain", &[array, string]),
        ("retain", &[array, fnptr]),
        ("retain", &[array, string]),
        ("dedup", &[array]),
        ("dedup", &[array, fnptr]),
        ("dedup", &[array, string]),
        ("sort", &[array, fnptr]),
        ("sort", &[array, string]),
        ("sort_by", &[array, fnptr]),
        ("order", &[array, fnptr]),
        ("order_by", &[array, fnptr]),
        ("zip", &[array, array, fnptr]),
        ("all", &[array, string]),
        ("some", &[array, string]),
        ("filter", &[array, string]),
        ("map", &[array, string]),
        ("drain", &[map, fnptr]),
        ("retain", &[map, fnptr]),
        ("filter", &[map, fnptr]),
        ("map", &[map, fnptr]),
    ];
    for &(name, params) in removed {
        engine.register_raw_fn(name, params, move |_, _| -> Res<Dynamic> {
            Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("`{name}` is not available in conditions").into(),
                Position::NONE,
            )))
        });
    }
}

fn string_limit(ctx: &NativeCallContext) -> usize {
    ctx.engine().max_string_size()
}

/// Refuses a string of `len` bytes before it is built.
fn check_string(ctx: &NativeCallContext, len: Option<usize>) -> Res<()> {
    let max = string_limit(ctx);
    match len {
        Some(len) if max == 0 || len <= max => Ok(()),
        _ => Err(exceed(Stop::String)),
    }
}

/// Refuses an array of `len` elements before it is built.
fn check_array(ctx: &NativeCallContext, len: usize) -> Res<()> {
    let max = ctx.engine().max_array_size();
    if max > 0 && len > max {
        return Err(exceed(Stop::Array));
    }
    Ok(())
}

/// Bytes left under the string limit after `used` (`usize::MAX` when unlimited).
fn room_after(ctx: &NativeCallContext, used: usize) -> usize {
    match string_limit(ctx) {
        0 => usize::MAX,
        max => max.saturating_sub(used),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::condition::{ConditionLimits, HelperInputs, RhaiState, Sandbox};
    use crate::env::Env;
    use crate::signal::Signal;

    fn run(sandbox: &Sandbox, src: &str) -> Result<bool, String> {
        let condition = sandbox
            .compile(src)
            .map_err(|e| format!("does not compile: {}", e.message))?;
        let signal = Signal::from_json(
            &json!({"tenant_id": "t", "actor_id": "a", "kind": "pr.opened",
                    "occurred_at": "2026-11-22T10:00:00Z",
                    "payload": {"labels": ["a", "b"], "n": 3}}),
            1 << 16,
        )
        .map_err(|e| e.to_string())?;
        let ctx = serde_json::Map::new();
        let env = Env {
            signal: &signal,
            ctx: &ctx,
            now_text: "2026-11-22T10:00:00Z",
        };
        let helpers = HelperInputs {
            now: jiff::Timestamp::UNIX_EPOCH,
            recent: &[],
            zone: &jiff::tz::TimeZone::UTC,
        };
        condition.evaluate_rhai(sandbox, &env, &helpers, &mut RhaiState::new())
    }

    /// Every function `docs/playbook-reference.md` lists as in scope works, with Rhai's
    /// meaning; every function it lists as removed is refused.
    #[test]
    fn the_documented_library() {
        let sandbox = Sandbox::new(ConditionLimits::default());
        for src in [
            // numbers
            "abs(-2) == 2 && sign(-3) == -1 && min(1, 2) == 1 && max(1.5, 2) == 2.0",
            "floor(1.5) == 1.0 && ceiling(1.5) == 2.0 && round(1.5) == 2.0 && int(1.5) == 1.0",
            "fraction(1.5) == 0.5 && sqrt(4.0) == 2.0 && exp(0.0) == 1.0 && ln(1.0) == 0.0",
            "log(100.0) == 2.0 && sin(0.0) == 0.0 && !is_nan(1.0) && is_finite(1.0)",
            "to_int(1.9) == 1 && to_float(2) == 2.0 && parse_int(\"12\") == 12",
            "parse_float(\"1.5\") == 1.5 && 255.to_hex() == \"ff\" && 8.to_octal() == \"10\"",
            "5.to_binary() == \"101\" && 5.get_bit(0) && 2 ** 3 == 8 && 7 % 4 == 3",
            // strings
            "let s = \"Hello\"; s.len() == 5 && s.bytes() == 5 && !s.is_empty()",
            "let s = \"Hello\"; s.contains(\"ell\") && s.starts_with(\"He\") && s.ends_with('o')",
            "let s = \"Hello\"; s.index_of('l') == 2 && s.get(1) == 'e' && s.sub_string(1, 3) == \"ell\"",
            "\"a,b\".split(\",\") == [\"a\", \"b\"] && \"a,b\".split_rev(',') == [\"b\", \"a\"]",
            "\"a b\".split() == [\"a\", \"b\"] && \"ab\".to_chars() == ['a', 'b']",
            "let n = 0; for c in \"abc\".chars() { n += 1; } n == 3",
            "\"aB\".to_upper() == \"AB\" && \"aB\".to_lower() == \"ab\"",
            "let s = \"aXa\"; s.replace(\"a\", \"bb\"); s == \"bbXbb\"",
            "let s = \"a\"; s.pad(3, '-'); s == \"a--\"",
            "let s = \" a \"; s.trim(); s == \"a\"",
            "let s = \"abcd\"; s.crop(1, 2); s == \"bc\"",
            "let s = \"abcd\"; s.truncate(2); s.remove('b'); s == \"a\"",
            "let s = \"abc\"; s.pop() == 'c' && s == \"ab\"",
            "let s = \"abc\"; s.set(0, 'x'); s.make_upper(); s == \"XBC\"",
            "let s = \"ABC\"; s.make_lower(); s.clear(); s == \"\"",
            "min(\"a\", \"b\") == \"a\" && max(\"a\", \"b\") == \"b\"",
            "let s = \"n\" + 1; s += [2]; s.append(#{x: 3}); s == \"n1[2]#{\\\"x\\\": 3}\"",
            "`n${1 + 1}` == \"n2\" && [1, \"a\"].to_string() == \"[1, \\\"a\\\"]\"",
            "\"a\\tb\".to_debug() == \"\\\"a\\\\tb\\\"\"",
            // arrays
            "let a = [1, 2, 3]; a.len() == 3 && !a.is_empty() && a.contains(2) && 3 in a",
            "let a = [1, 2, 3]; a.index_of(2) == 1 && a.index_of(|x| x > 1) == 1 && a.get(0) == 1",
            "let a = [\"x\", \"y\"]; a.index_of(\"y\") == 1 && a.index_of(\"y\", 1) == 1",
            "let a = [1]; a.set(0, 5); a.push(6); a.insert(0, 4); a.append([7]); a == [4, 5, 6, 7]",
            "let a = [1, 2, 3]; a.pop() == 3 && a.shift() == 1 && a.remove(0) == 2 && a == []",
            "let a = [1, 2, 3, 4]; a.extract(1, 2) == [2, 3] && a.split(2) == [3, 4] && a == [1, 2]",
            "let a = [1, 2, 3, 4]; a.chop(3); a.truncate(2); a == [2, 3]",
            "let a = [1, 2, 3, 4]; a.drain(0..1) == [1] && a.retain(0..2) == [4] && a == [2, 3]",
            "let a = [1, 2, 3]; a.splice(1, 1, [9, 9]); a.pad(5, 0); a.reverse(); a == [0, 3, 9, 9, 1]",
            "let a = [3, 1, 2]; a.order() == [1, 2, 3] && { a.sort(); a == [1, 2, 3] }",
            "let a = [1, 2, 3]; a.some(|x| x > 2) && a.all(|x| x > 0) && a.filter(|x| x > 1) == [2, 3]",
            "let a = [1, 2, 3]; a.find(|x| x > 1) == 2 && a.map(|x| x * 2) == [2, 4, 6] && [1] + [2] == [1, 2]",
            "[1, [2]] != [1, [3]] && signal.payload.labels == [\"a\", \"b\"]",
            "signal.payload.labels.contains(\"a\") && signal.payload.labels.some(|l| l == \"b\")",
            // maps
            "let m = #{a: 1}; m.len() == 1 && !m.is_empty() && m.contains(\"a\") && \"a\" in m",
            "let m = #{a: 1}; m.set(\"b\", 2); m.get(\"b\") == 2 && m.remove(\"a\") == 1 && m.keys() == [\"b\"]",
            "let m = #{a: 1}; m.mixin(#{b: 2}); m.fill_with(#{a: 9}); m += #{c: 3}; m.values() == [1, 2, 3]",
            "#{a: [1]} == #{a: [1]} && #{a: 1} != #{a: 2} && (#{a: 1} + #{b: 2}).len() == 2",
            // ranges
            "let r = 1..4; r.start == 1 && r.end == 4 && r.contains(2) && !r.is_empty()",
            "(1..=3).is_inclusive() && (1..3).is_exclusive() && { let n = 0; for i in range(0, 10, 2) { n += i; } n == 20 }",
            // keywords
            "type_of(1) == \"i64\" && is_def_var(\"signal\") && Fn(\"abs\").call(-1) == 1",
        ] {
            assert_eq!(run(&sandbox, src), Ok(true), "{src}");
        }
        for (src, error) in [
            ("sleep(1); true", "Function not found: sleep"),
            ("exit(true)", "Function not found: exit"),
            ("parse_json(\"1\") == 1", "Function not found: parse_json"),
            ("#{a: 1}.to_json() != \"\"", "`to_json` is not available"),
            ("\"a\".to_blob() != ()", "`to_blob` is not available"),
            ("[1].for_each(|| 1); true", "`for_each` is not available"),
            ("[1].reduce(|a, b| a) == 1", "`reduce` is not available"),
            (
                "[1].reduce_rev(|a, b| a) == 1",
                "`reduce_rev` is not available",
            ),
            ("[1].find_map(|x| x) == 1", "`find_map` is not available"),
            ("[1].drain(|x| true) == [1]", "`drain` is not available"),
            ("[1].retain(|x| true) == [1]", "`retain` is not available"),
            ("let a = [1]; a.dedup(); true", "`dedup` is not available"),
            (
                "let a = [1]; a.sort(|x, y| 0); true",
                "`sort` is not available",
            ),
            ("[1].order(|x, y| 0) == [1]", "`order` is not available"),
            ("[1].zip([2], |x, y| x) == [1]", "`zip` is not available"),
            ("[1].filter(\"f\") == [1]", "`filter` is not available"),
            (
                "#{a: 1}.filter(|k, v| true) == #{}",
                "`filter` is not available",
            ),
            ("#{a: 1}.map(|k, v| v) == #{}", "`map` is not available"),
        ] {
            let got = run(&sandbox, src);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(error)),
                "{src}: {got:?}"
            );
        }
    }
}
