//! Hostile conditions are contained: each ends in `condition_error` for its playbook, with
//! a detail naming the limit or the helper, while the rest of the decision goes on — and
//! within bounded time and memory. Memory is bounded by construction: several of these
//! conditions would allocate gigabytes (and abort the test binary) if a limit were checked
//! after the allocation instead of before. Time is guarded by a generous ceiling on a
//! thread, only so that a regression fails instead of hanging; no test measures speed.

use std::sync::mpsc;
use std::time::Duration;

use mmm_engine::{ConditionLimits, Decision, Engine, EngineConfig, PlaybookSet, Reason};
use serde_json::json;

use crate::common::*;

/// Decides one signal against the `hostile` playbook and a harmless `fine` one, on a thread
/// with the default 2 MiB stack, within a generous ceiling.
fn decide_hostile(when: &str, limits: ConditionLimits) -> Decision {
    let yaml = [
        mirror("hostile", "x.y", &format!("'{}'", when.replace('\'', "''"))),
        mirror("fine", "x.y", "true"),
    ]
    .concat();
    let set = PlaybookSet::from_yaml(&yaml).unwrap_or_else(|e| panic!("{when}: {e}"));
    let engine = Engine::builder()
        .playbooks(set)
        .config(EngineConfig {
            condition_limits: limits,
            ..EngineConfig::default()
        })
        .build();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let d = decide(&engine, &signal("x.y", json!({})), json!(null));
            let _ = tx.send(d);
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{when}: no decision within the guard (hung or crashed)"))
}

/// The detail of `hostile`'s `condition_error`; the other playbook acted.
fn contained(when: &str, limits: ConditionLimits) -> String {
    let d = decide_hostile(when, limits);
    assert_eq!(
        acted(&d),
        ["fine mirror"],
        "{when}: the rest of the decision goes on"
    );
    let s = &d.suppressed[0];
    assert_eq!(
        (s.playbook.id.as_str(), s.reason),
        ("hostile", Reason::ConditionError),
        "{when}"
    );
    s.detail.to_string()
}

/// Whether `hostile` acted (its condition held), with no suppression at all.
fn holds(when: &str, limits: ConditionLimits) -> bool {
    let d = decide_hostile(when, limits);
    assert!(d.suppressed.is_empty(), "{when}: {:?}", d.suppressed);
    acted(&d).contains(&"hostile mirror".to_owned())
}

/// Limits where only the limit under test can stop the condition: operations and time are
/// plentiful (the thread's ceiling still guards the test).
fn only(limits: ConditionLimits) -> ConditionLimits {
    ConditionLimits {
        max_operations: u64::MAX,
        time_limit: Duration::from_secs(600),
        ..limits
    }
}

fn plenty() -> ConditionLimits {
    only(ConditionLimits::default())
}

/// `let s = …` holding `n` bytes of `x`, built inside the condition.
fn big(name: &str, n: usize) -> String {
    format!("let {name} = \"\"; {name}.pad({n}, \"x\");")
}

// --- operations, recursion and time ----------------------------------------------------

#[test]
fn an_endless_loop_runs_out_of_operations() {
    // A time limit no loaded machine reaches first: the operation count ends the loop.
    let limits = ConditionLimits {
        time_limit: Duration::from_secs(600),
        ..ConditionLimits::default()
    };
    let detail = contained("loop { } true", limits);
    assert!(detail.contains("Too many operations"), "{detail}");
}

#[test]
fn unbounded_recursion_runs_out_of_call_depth() {
    let detail = contained("fn f(x) { f(x + 1) } f(1)", ConditionLimits::default());
    assert!(detail.contains("Stack overflow"), "{detail}");
}

#[test]
fn wall_clock_time_is_bounded() {
    let limits = ConditionLimits {
        max_operations: u64::MAX,
        time_limit: Duration::from_millis(20),
        ..ConditionLimits::default()
    };
    let detail = contained("let x = 0; loop { x += 1; }", limits);
    assert!(detail.contains("time limit of 20ms"), "{detail}");
}

/// Inside a script function, the time limit is still named as such.
#[test]
fn the_time_limit_is_named_inside_functions_too() {
    let limits = ConditionLimits {
        max_operations: u64::MAX,
        time_limit: Duration::from_millis(20),
        ..ConditionLimits::default()
    };
    let detail = contained("fn f() { loop { } } f()", limits);
    assert!(detail.contains("time limit of 20ms"), "{detail}");
}

/// `sleep` is not in the sandbox: it ignored the time limit and held the decision as long
/// as the author asked.
#[test]
fn sleep_is_not_available() {
    let detail = contained("sleep(3600); true", ConditionLimits::default());
    assert!(detail.contains("Function not found: sleep"), "{detail}");
}

/// The language-core functions that end or inspect the script are gone too.
#[test]
fn exit_and_parse_json_are_not_available() {
    for when in ["exit(true)", "parse_json(\"[1]\") == [1]"] {
        let detail = contained(when, ConditionLimits::default());
        assert!(detail.contains("Function not found"), "{when}: {detail}");
    }
}

/// Rhai's operation count restarts inside each callback; the budget counts them all.
#[test]
fn operations_are_counted_across_callbacks() {
    let limits = ConditionLimits {
        time_limit: Duration::from_secs(600),
        ..ConditionLimits::default()
    };
    let detail = contained(
        "let a = []; a.pad(1000, 0); a.some(|x| { let i = 0; while i < 200 { i += 1; } false })",
        limits,
    );
    assert!(detail.contains("Too many operations"), "{detail}");
}

// --- sizes, checked before the allocation ---------------------------------------------

/// The reported case: 128 KiB replaced by itself is 16 GiB; it is refused from the sizes.
#[test]
fn replace_is_refused_before_it_allocates() {
    let when = format!("{} s.replace(\"x\", s); true", big("s", 128 * 1024));
    let detail = contained(&when, plenty());
    assert!(detail.contains("Length of string too large"), "{detail}");
}

#[test]
fn every_replace_form_is_checked() {
    for call in [
        "s.replace('x', s)",
        "s.replace(\"x\", 'é')",
        "s.replace('x', 'é')",
    ] {
        let when = format!("{} {call}; true", big("s", 200 * 1024));
        let detail = contained(&when, plenty());
        assert!(
            detail.contains("Length of string too large"),
            "{call}: {detail}"
        );
    }
}

/// `pad` counts characters but the limit is in bytes; an empty padding looped forever.
#[test]
fn pad_is_checked_in_bytes_and_an_empty_padding_does_nothing() {
    let detail = contained("let s = \"\"; s.pad(200000, \"é\"); true", plenty());
    assert!(detail.contains("Length of string too large"), "{detail}");
    assert!(holds(
        "let s = \"a\"; s.pad(10, \"\"); s == \"a\"",
        ConditionLimits::default()
    ));
}

/// Upper-casing can triple a string's length (`ΐ` becomes three characters).
#[test]
fn case_changes_are_checked() {
    for call in ["s.to_upper()", "s.make_upper()"] {
        let when = format!("let s = \"\"; s.pad(100000, \"ΐ\"); {call}; true");
        let detail = contained(&when, plenty());
        assert!(
            detail.contains("Length of string too large"),
            "{call}: {detail}"
        );
    }
}

#[test]
fn splitting_stops_at_the_array_limit() {
    for call in [
        "s.split(\"\")",
        "s.split('x')",
        "s.split_rev(\"x\")",
        "s.to_chars()",
    ] {
        let when = format!("{} {call}.len() > 0", big("s", 200 * 1024));
        let detail = contained(&when, plenty());
        assert!(
            detail.contains("Size of array/BLOB too large"),
            "{call}: {detail}"
        );
    }
}

/// Concatenating a value turns it into text first; the text is built within the limit.
#[test]
fn concatenation_and_interpolation_are_checked() {
    // 9,000 strings of 27 bytes fit the limit (243,000 bytes); their text does not.
    let array = "let a = []; a.pad(9000, s);";
    for tail in [
        "let t = \"x\" + a; true",
        "let t = a + \"x\"; true",
        "let t = \"x\"; t += a; true",
        "let t = \"x\"; t.append(a); true",
        "let t = `${a}`; true",
        "a.to_string().len() > 0",
        "a.to_debug().len() > 0",
    ] {
        let when = format!("let s = \"y\"; s.pad(27, \"y\"); {array} {tail}");
        let detail = contained(&when, plenty());
        assert!(
            detail.contains("Length of string too large"),
            "{tail}: {detail}"
        );
    }
}

#[test]
fn huge_arrays_are_refused() {
    let limits = only(ConditionLimits {
        max_array_size: 1_000,
        ..ConditionLimits::default()
    });
    let detail = contained("let a = []; loop { a.push(1); }", limits);
    assert!(detail.contains("Size of array/BLOB too large"), "{detail}");
}

#[test]
fn huge_maps_are_refused() {
    let limits = only(ConditionLimits {
        max_map_size: 1_000,
        ..ConditionLimits::default()
    });
    let detail = contained(
        "let m = #{}; let i = 0; loop { m.set(`k${i}`, i); i += 1; }",
        limits,
    );
    assert!(detail.contains("Size of object map too large"), "{detail}");
}

/// Rhai checks a map grown by index assignment (`m[k] = v`) only when the map is next
/// passed to a function; a loop that only assigns is stopped by the time limit.
#[test]
fn a_map_grown_by_assignment_is_stopped_by_time() {
    let limits = ConditionLimits {
        max_operations: u64::MAX,
        time_limit: Duration::from_millis(50),
        ..ConditionLimits::default()
    };
    let when = format!(
        "{} let m = #{{}}; let i = 0; loop {{ m[s + i] = i; i += 1; }}",
        big("s", 1000)
    );
    let detail = contained(&when, limits);
    assert!(detail.contains("time limit of 50ms"), "{detail}");
}

/// `map` collects its callback's results; the result is checked as it grows.
#[test]
fn map_checks_its_result_as_it_grows() {
    // Closures cannot capture: each call builds its own 200 KiB string.
    let when = format!(
        "let a = []; a.pad(10000, 0); a.map(|x| {{ {} s }}).len() > 0",
        big("s", 200 * 1024)
    );
    let detail = contained(&when, plenty());
    assert!(detail.contains("Length of string too large"), "{detail}");
}

/// A callback sees a copy of each element: padding `this` grew the array it walked (to
/// 2 GB with 10,000 elements), and no check saw it.
#[test]
fn callbacks_cannot_grow_the_array_they_walk() {
    let when = "let a = []; a.pad(100, \"x\"); a.some(|| { this.pad(204800, \"x\"); false }); a[0] == \"x\"";
    assert!(holds(when, plenty()));
}

/// Callbacks that would mutate, collect or swallow errors are not in scope.
#[test]
fn unsafe_callbacks_are_not_available() {
    for call in [
        "a.for_each(|| this = 1)",
        "a.sort(|x, y| x - y)",
        "a.dedup(|x, y| x == y)",
        "a.zip(a, |x, y| x + y)",
        "a.reduce(|acc, x| acc + x)",
        "a.retain(|x| x > 0)",
    ] {
        let when = format!("let a = [1, 2]; {call}; true");
        let detail = contained(&when, ConditionLimits::default());
        assert!(
            detail.contains("is not available in conditions"),
            "{call}: {detail}"
        );
    }
}

/// Currying copied values into function pointers, which no size limit sees.
#[test]
fn curry_is_refused_at_load() {
    let yaml = mirror("curried", "x.y", "'curry(Fn(\"f\"), [1]) != ()'");
    let err = PlaybookSet::from_yaml(&yaml).unwrap_err().to_string();
    assert!(err.contains("'curry' is disabled"), "{err}");
    let yaml = mirror("curried", "x.y", "'Fn(\"f\").curry([1]) != ()'");
    assert!(PlaybookSet::from_yaml(&yaml).is_err());
}

// --- nesting ---------------------------------------------------------------------------

/// Values nested a thousand deep overflowed a 2 MiB stack in `==` and `contains` (each
/// level is a call through Rhai's call machinery); they and the text of such values are
/// refused past a fixed depth.
#[test]
fn deeply_nested_values_are_refused_not_a_stack_overflow() {
    let build = "let a = []; for i in 0..1200 { a.push(a.split(0)); }";
    for use_ in [
        "a == a",
        "[a].contains(a)",
        "a.to_string().len() > 0",
        "`${a}` != \"\"",
    ] {
        let when = format!("{build} {use_}");
        let detail = contained(&when, plenty());
        assert!(
            detail.contains("nested deeper than 128 levels"),
            "{use_}: {detail}"
        );
    }
}

#[test]
fn moderately_nested_values_still_compare() {
    // Real time: the default operation and size limits are under test, not the clock; a
    // loaded debug build can take longer than the default 50 ms, so time is plentiful.
    let limits = ConditionLimits {
        time_limit: Duration::from_secs(600),
        ..ConditionLimits::default()
    };
    assert!(holds(
        "let a = []; for i in 0..100 { a.push(a.split(0)); } a == a && [a].contains(a)",
        limits
    ));
}

// --- helpers ---------------------------------------------------------------------------

/// The reported case: a pattern of many stars against a long run of `a` took 22 s in
/// globset and answered `false`. Within the limits it is now one linear pass.
#[test]
fn glob_is_linear() {
    let pattern = format!("{}ab", "*a".repeat(100));
    let when = format!("let t = \"\"; t.pad(4096, \"a\"); !glob(\"{pattern}\", t)");
    assert!(holds(&when, plenty()));
}

#[test]
fn glob_refuses_a_text_or_pattern_over_its_limits() {
    let when = format!("{} glob(\"*a*b\", s)", big("s", 128 * 1024));
    let detail = contained(&when, ConditionLimits::default());
    assert!(
        detail.contains(
            "glob: the text is 131072 bytes, longer than `max_glob_text_size` (4096 bytes)"
        ),
        "{detail}"
    );
    let when = format!("{} glob(p, \"x\")", big("p", 2000));
    let detail = contained(&when, ConditionLimits::default());
    assert!(
        detail.contains("glob: the pattern is 2000 bytes, longer than `max_glob_pattern_size`"),
        "{detail}"
    );
}

/// The limits are not errors a condition can catch and turn into `false`.
#[test]
fn a_glob_limit_cannot_be_caught() {
    let when = format!(
        "{} let r = false; try {{ r = glob(\"*\", s); }} catch {{ r = false; }} r",
        big("s", 8192)
    );
    let detail = contained(&when, ConditionLimits::default());
    assert!(detail.contains("max_glob_text_size"), "{detail}");
}

#[test]
fn an_invalid_glob_is_an_error_not_false() {
    let detail = contained("glob(\"[\", \"x\")", ConditionLimits::default());
    assert!(
        detail.contains("glob: invalid pattern `[`: unclosed character class"),
        "{detail}"
    );
}

/// The deadline holds inside one `glob` call: with no time at all, the match (millions
/// of steps) stops at its first check instead of running to the end.
#[test]
fn glob_checks_the_deadline_while_matching() {
    let limits = ConditionLimits {
        time_limit: Duration::ZERO,
        ..ConditionLimits::default()
    };
    let pattern = format!("{}ab", "*a".repeat(500));
    let when = format!("glob(\"{pattern}\", \"{}\")", "a".repeat(4000));
    let detail = contained(&when, limits);
    assert!(detail.contains("time limit of 0ns"), "{detail}");
}

#[test]
fn helper_errors_name_the_helper_and_quote_briefly() {
    let detail = contained(
        "recent_count(\"x\", \"1w\") > 0",
        ConditionLimits::default(),
    );
    assert!(
        detail.contains("recent_count: the window `1w` is not a duration"),
        "{detail}"
    );
    let when = format!("{} hours_since(s) > 1.0", big("s", 100_000));
    let detail = contained(&when, ConditionLimits::default());
    assert!(detail.contains("hours_since: `xxxx"), "{detail}");
    assert!(
        detail.len() < 300,
        "the detail quotes the value briefly: {detail}"
    );
}

// --- isolation -------------------------------------------------------------------------

/// Conditions share one scope per decision; a variable one defines must be gone for the
/// next (checked without defining it again).
#[test]
fn conditions_cannot_leak_state_into_each_other() {
    let yaml = [
        playbook(
            "first",
            "  triggers: [x.y]\n  priority: 90\n  when: 'let leaked = 1; true'\n  actions:\n    - {type: mirror, surfaces: [ide], title: T, text: first}",
        ),
        playbook(
            "second",
            "  triggers: [x.y]\n  priority: 10\n  when: '!is_def_var(\"leaked\")'\n  actions:\n    - {type: mirror, surfaces: [ide], title: T, text: second}",
        ),
    ]
    .concat();
    let d = decide(&engine(&yaml), &signal("x.y", json!({})), json!(null));
    assert!(d.suppressed.is_empty(), "{:?}", d.suppressed);
    assert_eq!(acted(&d), ["first mirror", "second mirror"]);
}
