//! Fatigue through decisions: cooldown, max per window, actor budget, atomicity.

use std::sync::Arc;

use mmm_engine::Reason;
use serde_json::json;

use crate::common::*;

fn limited(fatigue: &str) -> mmm_engine::Engine {
    engine(&playbook("pb", &format!("  triggers: [x.y]\n  fatigue: {fatigue}\n  actions:\n    - {{type: mirror, surfaces: [ide], title: T, text: a}}\n    - {{type: mirror, surfaces: [ide], title: T, text: b}}")))
}

fn fire(e: &mmm_engine::Engine, now: &str, ctx: serde_json::Value) -> mmm_engine::Decision {
    decide_at(e, &signal("x.y", json!({})), ctx, now)
}

#[test]
fn cooldown_counts_firings_not_actions() {
    let e = limited("{cooldown: 1h}");
    assert_eq!(
        fire(&e, "2026-11-22T10:00:00Z", json!(null)).actions.len(),
        2,
        "both actions of one firing"
    );
    let d = fire(&e, "2026-11-22T10:30:00Z", json!(null));
    assert_eq!(
        reasons(&d),
        [
            ("pb".into(), 0, Reason::FatigueCooldown),
            ("pb".into(), 1, Reason::FatigueCooldown)
        ]
    );
    assert_eq!(
        fire(&e, "2026-11-22T11:00:00Z", json!(null)).actions.len(),
        2
    );
}

#[test]
fn max_per_window_is_distinct_from_cooldown() {
    let e = limited("{max: 2, window: 1d}");
    assert_eq!(
        fire(&e, "2026-11-22T10:00:00Z", json!(null)).actions.len(),
        2
    );
    assert_eq!(
        fire(&e, "2026-11-22T10:01:00Z", json!(null)).actions.len(),
        2
    );
    let d = fire(&e, "2026-11-22T10:02:00Z", json!(null));
    assert_eq!(reasons(&d)[0].2, Reason::FatigueMax);
    assert_eq!(
        fire(&e, "2026-11-23T10:00:01Z", json!(null)).actions.len(),
        2
    );
}

#[test]
fn the_actor_budget_counts_actions_across_playbooks() {
    let e = engine(
        &[
            mirror("one", "x.y", "true"),
            mirror("two", "x.y", "true"),
            mirror("three", "x.y", "true"),
        ]
        .concat(),
    );
    let ctx = json!({"tenant_policy": {"budget": {"max": 2, "window": "1d"}}});
    let d = fire(&e, "2026-11-22T10:00:00Z", ctx.clone());
    assert_eq!(acted(&d), ["one mirror", "three mirror"]);
    assert_eq!(reasons(&d), [("two".into(), 0, Reason::ActorBudget)]);
    let d = fire(&e, "2026-11-22T12:00:00Z", ctx.clone());
    assert!(d.actions.is_empty());
    assert_eq!(
        d.suppressed
            .iter()
            .filter(|s| s.reason == Reason::ActorBudget)
            .count(),
        3
    );
    // Another actor has their own budget.
    let mut s = signal("x.y", json!({}));
    s["actor_id"] = json!("dev-2");
    assert_eq!(
        decide_at(&e, &s, ctx, "2026-11-22T12:00:00Z").actions.len(),
        2
    );
}

#[test]
fn suppressed_actions_do_not_count_against_fatigue() {
    let e = limited("{cooldown: 1h}");
    let d = fire(
        &e,
        "2026-11-22T10:00:00Z",
        json!({"tenant_policy": {"max_actions_per_decision": 0}}),
    );
    assert!(d.actions.is_empty());
    assert_eq!(
        fire(&e, "2026-11-22T10:01:00Z", json!(null)).actions.len(),
        2,
        "the capped firing was not recorded"
    );
}

#[test]
fn two_concurrent_decisions_never_both_pass_a_limit_of_one() {
    for round in 0..20 {
        let e = Arc::new(limited("{max: 1, window: 1d}"));
        let returned: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let e = Arc::clone(&e);
                    scope.spawn(move || fire(&e, "2026-11-22T10:00:00Z", json!(null)).actions.len())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            returned, 2,
            "round {round}: exactly one firing (two actions) may pass"
        );
    }
}
