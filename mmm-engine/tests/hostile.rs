//! Hostile conditions are contained: each ends in `condition_error` within bounded time.

use std::time::{Duration, Instant};

use mmm_engine::{ConditionLimits, Engine, EngineConfig, PlaybookSet, Reason};
use serde_json::json;

use crate::common::*;

fn contained(when: &str, limits: ConditionLimits) -> String {
    let set = PlaybookSet::from_yaml(
        &[
            mirror("hostile", "x.y", &format!("'{when}'")),
            mirror("fine", "x.y", "true"),
        ]
        .concat(),
    )
    .unwrap();
    let e = Engine::builder()
        .playbooks(set)
        .config(EngineConfig {
            condition_limits: limits,
            ..EngineConfig::default()
        })
        .build();
    let started = Instant::now();
    let d = decide(&e, &signal("x.y", json!({})), json!(null));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{when}: took {:?}",
        started.elapsed()
    );
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
    s.detail.clone()
}

#[test]
fn an_endless_loop_runs_out_of_operations() {
    let detail = contained("loop { } true", ConditionLimits::default());
    assert!(detail.contains("Too many operations"), "{detail}");
}

#[test]
fn unbounded_recursion_runs_out_of_call_depth() {
    let detail = contained("fn f(x) { f(x + 1) } f(1)", ConditionLimits::default());
    assert!(detail.contains("Stack overflow"), "{detail}");
}

#[test]
fn a_200_mb_string_is_refused() {
    let detail = contained(
        "let s = \"aaaaaaaaaa\"; loop { s += s; }",
        ConditionLimits::default(),
    );
    assert!(detail.contains("string too large"), "{detail}");
}

#[test]
fn huge_arrays_are_refused() {
    let detail = contained(
        "let a = []; loop { a.push(1); }",
        ConditionLimits {
            max_operations: u64::MAX,
            ..ConditionLimits::default()
        },
    );
    assert!(
        detail.contains("array") || detail.contains("time limit"),
        "{detail}"
    );
}

#[test]
fn wall_clock_time_is_bounded() {
    let limits = ConditionLimits {
        max_operations: u64::MAX,
        time_limit: Duration::from_millis(20),
        ..ConditionLimits::default()
    };
    let started = Instant::now();
    let detail = contained("let x = 0; loop { x += 1; }", limits);
    assert!(detail.contains("time limit"), "{detail}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn conditions_cannot_leak_state_into_each_other() {
    let yaml = [
        mirror("first", "x.y", "'let leaked = 1; true'"),
        mirror("second", "x.y", "'let leaked = 2; leaked == 2'"),
    ]
    .concat();
    let e = engine(&yaml);
    assert_eq!(
        decide(&e, &signal("x.y", json!({})), json!(null))
            .actions
            .len(),
        2
    );
}
