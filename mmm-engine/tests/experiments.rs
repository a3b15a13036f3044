//! Experiments, outcomes and audited administration through the engine.

use std::sync::Arc;
use std::time::Duration;

use mmm_engine::audit::{AuditError, AuditEvent, AuditSink, MemoryAudit};
use mmm_engine::experiment::{hash_v2, ExperimentStatus};
use mmm_engine::{Clock, Decision, Engine, ManualClock, PlaybookSet, Reason};
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::*;

const SET: &str = "apiVersion: mmm/v1
kind: Playbook
metadata: {id: large-pr, version: 1, tenant: \"*\", status: published, category: code-review}
spec:
  triggers: [pr.opened]
  actions:
    - {type: mirror, surfaces: [pr_comment], title: Large change, text: \"This pull request changes {{ signal.payload.lines }} lines.\"}
    - {type: multiplier, surfaces: [ide], title: Stack, text: Creates one draft pull request per directory., operation: split_pr, reversible: true}
---
apiVersion: mmm/v1
kind: Experiment
metadata: {id: large-pr-copy, tenant: \"*\", status: active}
spec:
  playbook: large-pr
  strategy: fixed
  success_outcomes: [accepted, executed]
  variants:
    - {name: control, weight: 50}
    - {name: concise, weight: 40, set: {title: Big PR, text: \"{{ signal.payload.lines }} lines changed.\"}}
    - {name: holdout, weight: 10, holdout: true}
";

fn actor_with(pred: impl Fn(f64) -> bool) -> String {
    (0..10_000)
        .map(|i| format!("dev-{i}"))
        .find(|a| pred(hash_v2("acme:large-pr-copy", a)))
        .unwrap()
}

fn pr_for(actor: &str) -> serde_json::Value {
    let mut s = signal("pr.opened", json!({"lines": 420}));
    s["actor_id"] = json!(actor);
    s
}

#[test]
fn variants_change_wording_and_holdouts_hold_back() {
    let e = engine(SET);
    let concise = actor_with(|n| (0.5..0.9).contains(&n));
    let d = decide(&e, &pr_for(&concise), json!(null));
    assert_eq!(d.actions[0].title, "Big PR");
    assert_eq!(d.actions[0].text, "420 lines changed.");
    assert_eq!(
        serde_json::to_value(&d.actions[0].experiment).unwrap(),
        json!({"id": "large-pr-copy", "variant": "concise"})
    );
    // The multiplier's consent text is never rewritten.
    assert_eq!(
        d.actions[1].text,
        "Creates one draft pull request per directory."
    );

    let control = actor_with(|n| n < 0.5);
    let d = decide(&e, &pr_for(&control), json!(null));
    assert_eq!(d.actions[0].title, "Large change");
    assert_eq!(
        serde_json::to_value(&d.actions[0].experiment).unwrap(),
        json!({"id": "large-pr-copy", "variant": "control"})
    );

    let held = actor_with(|n| n >= 0.9);
    let d = decide(&e, &pr_for(&held), json!(null));
    assert!(d.actions.is_empty());
    assert_eq!(
        reasons(&d),
        [
            ("large-pr".into(), 0, Reason::ExperimentHoldout),
            ("large-pr".into(), 1, Reason::ExperimentHoldout)
        ]
    );
}

#[test]
fn experiments_never_override_policy_or_preferences() {
    let e = engine(SET);
    let concise = actor_with(|n| (0.5..0.9).contains(&n));
    let d = decide(
        &e,
        &pr_for(&concise),
        json!({"tenant_policy": {"enabled_action_types": ["multiplier"]},
        "preferences": {"opt_out_categories": []}}),
    );
    assert_eq!(
        reasons(&d),
        [("large-pr".into(), 0, Reason::ActionTypeDisabled)]
    );
    let d = decide(
        &e,
        &pr_for(&concise),
        json!({"preferences": {"opt_out_categories": ["code-review"]}}),
    );
    assert!(d.actions.is_empty());
    assert!(d.suppressed.iter().all(|s| s.reason == Reason::OptedOut));
}

/// The action's `experiment` as the decision JSON shows it (`null` when none).
fn experiment_of(d: &Decision, action: usize) -> serde_json::Value {
    serde_json::to_value(d).unwrap()["actions"][action]["experiment"].clone()
}

#[test]
fn assignment_follows_the_hash_and_is_deterministic_per_actor() {
    let e = engine(SET);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..50 {
        let actor = format!("dev-{i}");
        let n = hash_v2("acme:large-pr-copy", &actor);
        // 50/40/10: [0, 0.5) control, [0.5, 0.9) concise, [0.9, 1) holdout.
        let expected = if n < 0.5 {
            "control"
        } else if n < 0.9 {
            "concise"
        } else {
            "holdout"
        };
        seen.insert(expected);
        for _ in 0..2 {
            let d = decide(&e, &pr_for(&actor), json!(null));
            if expected == "holdout" {
                assert!(d.actions.is_empty(), "{actor} ({n})");
                assert_eq!(d.suppressed[0].reason, Reason::ExperimentHoldout);
            } else {
                assert_eq!(
                    experiment_of(&d, 0),
                    json!({"id": "large-pr-copy", "variant": expected}),
                    "{actor} ({n})"
                );
            }
        }
    }
    assert_eq!(seen.len(), 3, "fifty actors reach every variant: {seen:?}");
}

/// A playbook `nudge` on `x.y` with one mirror action, and an experiment on it whose spec
/// ends with `spec` (variants included).
fn with_experiment(spec: &str) -> String {
    format!(
        "apiVersion: mmm/v1
kind: Playbook
metadata: {{id: nudge, version: 1, tenant: \"*\", status: published}}
spec:
  triggers: [x.y]
  actions:
    - {{type: mirror, surfaces: [ide], title: T, text: original}}
---
apiVersion: mmm/v1
kind: Experiment
metadata: {{id: copy, tenant: \"*\", status: active}}
spec:
  playbook: nudge
{spec}"
    )
}

fn x_for(actor: &str) -> serde_json::Value {
    let mut s = signal("x.y", json!({}));
    s["actor_id"] = json!(actor);
    s
}

fn explained(e: &Engine, s: &serde_json::Value) -> serde_json::Value {
    let mut options = at(NOW);
    options.explain = true;
    serde_json::to_value(e.decide(s, None, &options).unwrap()).unwrap()
}

#[test]
fn actors_outside_coverage_see_the_playbook_unchanged_and_count_for_nothing() {
    // Coverage 0.5 of 50/50: [0, 0.25) a, [0.5, 0.75) b; the rest is not in it.
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let e = Engine::builder()
        .playbooks(
            PlaybookSet::from_yaml(&with_experiment(
                "  strategy: thompson
  coverage: 0.5
  min_samples: 1
  update_interval: 1s
  variants:
    - {name: a, weight: 50}
    - {name: b, weight: 50, set: {text: changed}}
",
            ))
            .unwrap(),
        )
        .clock(clock.clone())
        .build();
    let in_range = |n: f64| n < 0.25 || (0.5..0.75).contains(&n);
    let (mut inside, mut outside) = (0, 0);
    for i in 0..400 {
        let actor = format!("dev-{i}");
        let n = hash_v2("acme:copy", &actor);
        let d = explained(&e, &x_for(&actor));
        let action = &d["actions"][0];
        if in_range(n) {
            inside += 1;
            let variant = if n < 0.25 { "a" } else { "b" };
            assert_eq!(
                action["experiment"],
                json!({"id": "copy", "variant": variant})
            );
            assert_eq!(d["explain"][0]["experiment"]["variant"], variant);
            continue;
        }
        outside += 1;
        assert_eq!(action["text"], "original", "{actor} ({n})");
        assert_eq!(action["experiment"], json!(null), "{actor} ({n})");
        assert!(
            d["explain"][0].get("experiment").is_none(),
            "the explain trace says nothing about the experiment: {}",
            d["explain"][0]
        );
        // Outcomes of actors outside the experiment feed no arm: with one outcome
        // for `b` anywhere, Thompson (min_samples 1) would re-weight.
        e.record_outcome(
            &json!({"action_id": action["action_id"], "tenant_id": "acme",
            "actor_id": actor, "playbook_id": "nudge", "result": "accepted", "at": NOW}),
        )
        .unwrap();
    }
    assert!(inside > 100 && outside > 100, "{inside} in, {outside} out");
    clock.advance(Duration::from_secs(2));
    let a = (0..)
        .map(|i| format!("dev-{i}"))
        .find(|a| hash_v2("acme:copy", a) < 0.25)
        .unwrap();
    let d = explained(&e, &x_for(&a));
    e.record_outcome(
        &json!({"action_id": d["actions"][0]["action_id"], "tenant_id": "acme",
        "actor_id": a, "playbook_id": "nudge", "result": "accepted", "at": NOW}),
    )
    .unwrap();
    assert_eq!(
        e.experiment_weights("acme", "copy").unwrap(),
        [("a".to_owned(), 0.5), ("b".to_owned(), 0.5)],
        "`b` has no outcome of its own, so nothing was re-weighted"
    );
}

#[test]
fn coverage_keeps_a_holdout_from_holding_back_actors_outside_it() {
    let e = engine(&with_experiment(
        "  coverage: 0.2
  variants:
    - {name: hold, weight: 1, holdout: true}
",
    ));
    let (mut held, mut shown) = (0, 0);
    for i in 0..300 {
        let actor = format!("dev-{i}");
        let d = decide(&e, &x_for(&actor), json!(null));
        if hash_v2("acme:copy", &actor) < 0.2 {
            held += 1;
            assert!(d.actions.is_empty());
            assert_eq!(
                reasons(&d),
                [("nudge".into(), 0, Reason::ExperimentHoldout)]
            );
        } else {
            shown += 1;
            assert_eq!(d.actions[0].text, "original");
            assert!(d.suppressed.is_empty());
        }
    }
    assert!(held > 20 && shown > 200, "{held} held, {shown} shown");
}

#[test]
fn disjoint_ranges_of_one_namespace_never_share_an_actor() {
    let exp = |id: &str, playbook: &str, range: &str| {
        format!(
            "---
apiVersion: mmm/v1
kind: Experiment
metadata: {{id: {id}, tenant: \"*\", status: active}}
spec:
  playbook: {playbook}
  namespace: {{id: checkout, range: {range}}}
  variants:
    - {{name: a, weight: 1}}
    - {{name: b, weight: 1, set: {{text: b}}}}
"
        )
    };
    let set = format!(
        "{}{}{}{}",
        mirror("one", "x.y", "true"),
        mirror("two", "x.y", "true"),
        exp("first", "one", "[0, 0.4]"),
        exp("second", "two", "[0.4, 1]")
    );
    let e = engine(&set);
    let mut in_first = 0;
    for i in 0..2_000 {
        let actor = format!("actor-{i}");
        let d = serde_json::to_value(decide(&e, &x_for(&actor), json!(null))).unwrap();
        let experiments: Vec<&str> = d["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["experiment"]["id"].as_str())
            .collect();
        // The ranges cover [0, 1) between them, so each actor is in exactly one.
        assert_eq!(experiments.len(), 1, "{actor}: {experiments:?}");
        let position = mmm_engine::experiment::hash("__checkout", &actor, 1).unwrap();
        let expected = if position < 0.4 { "first" } else { "second" };
        assert_eq!(experiments[0], expected, "{actor} at {position}");
        in_first += usize::from(expected == "first");
    }
    assert!(
        (600..1_000).contains(&in_first),
        "{in_first} of 2000 in [0, 0.4)"
    );
}

#[test]
fn a_variant_of_weight_0_is_never_assigned() {
    let e = engine(&with_experiment(
        "  variants:
    - {name: a, weight: 1}
    - {name: off, weight: 0, set: {text: off}}
    - {name: c, weight: 1, set: {text: c}}
",
    ));
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..1_000 {
        let d = decide(&e, &x_for(&format!("dev-{i}")), json!(null));
        let variant = experiment_of(&d, 0)["variant"].as_str().unwrap().to_owned();
        *seen.entry(variant).or_insert(0) += 1;
    }
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["a", "c"], "{seen:?}");
    assert_eq!(
        e.experiment_weights("acme", "copy").unwrap()[1],
        ("off".to_owned(), 0.0)
    );
}

#[test]
fn a_single_holdout_variant_holds_every_actor_back() {
    let e = engine(&with_experiment(
        "  variants:
    - {name: everyone, weight: 1, holdout: true}
",
    ));
    for i in 0..200 {
        let d = decide(&e, &x_for(&format!("dev-{i}")), json!(null));
        assert!(d.actions.is_empty());
        assert_eq!(
            reasons(&d),
            [("nudge".into(), 0, Reason::ExperimentHoldout)]
        );
    }
}

#[test]
fn a_single_variant_reaches_every_actor() {
    let e = engine(&with_experiment(
        "  variants:
    - {name: new-copy, weight: 3, set: {text: new}}
",
    ));
    for i in 0..200 {
        let d = decide(&e, &x_for(&format!("dev-{i}")), json!(null));
        assert_eq!(d.actions[0].text, "new");
        assert_eq!(experiment_of(&d, 0)["variant"], "new-copy");
    }
}

#[test]
fn coverage_namespace_and_weights_are_checked_where_they_are_written() {
    let bad = with_experiment(
        "  coverage: 1.5
  namespace: {id: \" \", range: [0.5, 0.5]}
  variants:
    - {name: a, weight: -1}
    - {name: b, weight: .nan}
",
    );
    let err = PlaybookSet::from_yaml(&bad).unwrap_err();
    let found: Vec<(String, usize, usize, String)> = err
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.rule.clone(),
                d.line.unwrap(),
                d.column.unwrap(),
                d.message.clone(),
            )
        })
        .collect();
    let expected = [
        (
            "invalid-coverage",
            14,
            13,
            "coverage `1.5` must be a number from 0 to 1",
        ),
        ("invalid-namespace", 15, 19, "a namespace needs an id"),
        (
            "invalid-namespace",
            15,
            31,
            "namespace range `[0.5, 0.5]` must have 0 ≤ start < end ≤ 1",
        ),
        (
            "invalid-weight",
            17,
            25,
            "weight `-1` must be a number, 0 or above",
        ),
        (
            "invalid-weight",
            18,
            25,
            "weight `NaN` must be a number, 0 or above",
        ),
    ];
    for (rule, line, column, message) in expected {
        assert!(
            found
                .iter()
                .any(|f| (f.0.as_str(), f.1, f.2, f.3.as_str()) == (rule, line, column, message)),
            "missing {rule} at {line}:{column} `{message}` in {found:#?}"
        );
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");

    let rule_of = |spec: &str| {
        let err = PlaybookSet::from_yaml(&with_experiment(spec)).unwrap_err();
        let d = &err.diagnostics[0];
        (d.rule.clone(), d.line, d.message.clone())
    };
    assert_eq!(
        rule_of(
            "  variants:
    - {name: a, weight: 0}
    - {name: b, weight: 0}
"
        ),
        (
            "invalid-weight".into(),
            Some(15),
            "every variant has weight 0, so no actor would be assigned; give one a weight above 0"
                .into()
        )
    );
    assert_eq!(
        rule_of(
            "  variants: []
"
        )
        .0,
        "invalid-variants",
        "an experiment needs a variant"
    );
    assert_eq!(
        rule_of(
            "  coverage: .nan
  variants: [{name: a, weight: 1}]
"
        )
        .0,
        "invalid-coverage"
    );
    assert_eq!(
        rule_of(
            "  coverage: -0.1
  variants: [{name: a, weight: 1}]
"
        )
        .0,
        "invalid-coverage"
    );
    for range in [
        "[0.2]",
        "[0, 0.5, 1]",
        "[-0.1, 0.5]",
        "[0.5, 1.1]",
        "[0.7, 0.3]",
        "[0, .inf]",
    ] {
        let spec = format!(
            "  namespace: {{id: ns, range: {range}}}
  variants: [{{name: a, weight: 1}}]
"
        );
        let (rule, line, message) = rule_of(&spec);
        assert_eq!(
            (rule.as_str(), line),
            ("invalid-namespace", Some(14)),
            "{range}: {message}"
        );
    }
    assert_eq!(
        rule_of(
            "  variants:
    - {name: a, weight: 1.0e308}
    - {name: b, weight: 1.0e308}
"
        )
        .2,
        "the weights add up to more than a number can hold; use smaller weights"
    );
}

#[test]
fn pausing_an_experiment_is_audited_and_restores_the_playbook() {
    let audit = Arc::new(MemoryAudit::new());
    let e = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(SET).unwrap())
        .audit(audit.clone())
        .build();
    let held = actor_with(|n| n >= 0.9);
    assert!(decide(&e, &pr_for(&held), json!(null)).actions.is_empty());
    e.set_experiment_status("large-pr-copy", ExperimentStatus::Paused, "admin@acme")
        .unwrap();
    let d = decide(&e, &pr_for(&held), json!(null));
    assert_eq!(d.actions.len(), 2);
    assert_eq!(d.actions[0].experiment, None);
    let event = audit.events().pop().unwrap();
    assert_eq!(event.kind, "experiment.state_changed");
    assert_eq!(
        (event.before, event.after),
        (json!({"status": "active"}), json!({"status": "paused"}))
    );
    assert!(e
        .set_experiment_status("nope", ExperimentStatus::Paused, "admin")
        .is_err());
}

struct Broken;
impl AuditSink for Broken {
    fn record(&self, _: &AuditEvent) -> Result<(), String> {
        Err("audit log unreachable".into())
    }
}

#[test]
fn reloads_are_audited_and_nothing_changes_unaudited() {
    let audit = Arc::new(MemoryAudit::new());
    let e = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(SET).unwrap())
        .audit(audit.clone())
        .build();
    e.reload(PlaybookSet::from_yaml(&mirror("other", "pr.opened", "true")).unwrap())
        .unwrap();
    let event = audit.events().pop().unwrap();
    assert_eq!(event.kind, "playbook_set.replaced");
    assert_eq!(event.before["playbooks"][0]["id"], "large-pr");
    assert_eq!(event.after["playbooks"][0]["id"], "other");
    assert!(
        !event.after.to_string().contains("fired"),
        "texts are redacted"
    );

    let e = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(SET).unwrap())
        .audit(Arc::new(Broken))
        .build();
    let err: AuditError = e
        .reload(PlaybookSet::from_yaml(&mirror("other", "pr.opened", "true")).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("unreachable"));
    assert_eq!(
        e.playbooks().live()[0].id.as_ref(),
        "large-pr",
        "the old set stays"
    );
}

#[test]
fn outcomes_are_counted_per_tenant_never_per_actor() {
    let e = engine(SET);
    let actor = actor_with(|n| n < 0.5);
    let d = decide(&e, &pr_for(&actor), json!(null));
    let outcome = |action_id: &str, result: &str| json!({"action_id": action_id, "tenant_id": "acme", "actor_id": actor, "playbook_id": "large-pr", "result": result, "at": NOW});
    e.record_outcome(&outcome(&d.actions[0].action_id, "accepted"))
        .unwrap();
    e.record_outcome(&outcome(&d.actions[1].action_id, "executed"))
        .unwrap();
    e.record_outcome(&outcome("forgotten", "dismissed"))
        .unwrap();
    let counts = serde_json::to_value(e.outcome_counts("acme")).unwrap();
    assert_eq!(
        counts,
        json!([
            {"playbook_id": "large-pr", "type": "mirror", "result": "accepted", "count": 1},
            {"playbook_id": "large-pr", "type": "multiplier", "result": "executed", "count": 1},
            {"playbook_id": "large-pr", "type": "unknown", "result": "dismissed", "count": 1},
        ])
    );
    assert!(!counts.to_string().contains(&actor));
    assert!(e.outcome_counts("globex").is_empty());
    // An action is remembered with its decision's tenant: another tenant's outcome for it
    // is not tied to its type.
    let mut other = outcome(&d.actions[0].action_id, "accepted");
    other["tenant_id"] = json!("globex");
    e.record_outcome(&other).unwrap();
    assert_eq!(
        serde_json::to_value(e.outcome_counts("globex")).unwrap(),
        json!([{"playbook_id": "large-pr", "type": "unknown", "result": "accepted", "count": 1}])
    );
    let err = e.record_outcome(&json!({"action_id": "a", "tenant_id": "acme", "actor_id": "x", "playbook_id": "p", "result": "meh", "at": NOW})).unwrap_err();
    assert_eq!(err.field, "result");
}

#[test]
fn thompson_sampling_moves_towards_the_better_arm_in_a_seeded_simulation() {
    let set = "apiVersion: mmm/v1
kind: Playbook
metadata: {id: nudge, version: 1, tenant: \"*\", status: published}
spec:
  triggers: [x.y]
  actions:
    - {type: mirror, surfaces: [ide], title: T, text: original}
---
apiVersion: mmm/v1
kind: Experiment
metadata: {id: copy-test, tenant: \"*\", status: active}
spec:
  playbook: nudge
  strategy: thompson
  min_samples: 30
  update_interval: 1m
  variants:
    - {name: a, weight: 50}
    - {name: b, weight: 50, set: {text: better}}
";
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let e = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(set).unwrap())
        .clock(clock.clone())
        .build();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut trajectory = Vec::new();
    for round in 0..30 {
        for i in 0..40 {
            let mut s = signal("x.y", json!({}));
            s["actor_id"] = json!(format!("dev-{round}-{i}"));
            let now = clock.now().to_string();
            let d = decide_at(&e, &s, json!(null), &now);
            let a = &d.actions[0];
            let variant = a.experiment.as_ref().unwrap().variant.clone();
            let p = if variant == "b" { 0.6 } else { 0.2 };
            let result = if rng.random_bool(p) {
                "accepted"
            } else {
                "dismissed"
            };
            e.record_outcome(
                &json!({"action_id": a.action_id, "tenant_id": "acme", "actor_id": s["actor_id"],
                "playbook_id": "nudge", "result": result, "at": now}),
            )
            .unwrap();
        }
        clock.advance(Duration::from_secs(61));
        let w = e.experiment_weights("acme", "copy-test").unwrap();
        for (_, weight) in &w {
            assert!(*weight >= 0.01 - 1e-9, "round {round}: {w:?}");
        }
        trajectory.push(w[1].1);
    }
    let last = *trajectory.last().unwrap();
    assert!(last > 0.9, "b should dominate: {trajectory:?}");
    assert!(trajectory[0] <= last);
}

#[test]
fn a_reload_that_changes_the_variants_starts_thompson_afresh() {
    let exp = |variants: &str| {
        format!(
            "apiVersion: mmm/v1
kind: Playbook
metadata: {{id: nudge, version: 1, tenant: \"*\", status: published}}
spec:
  triggers: [x.y]
  actions:
    - {{type: mirror, surfaces: [ide], title: T, text: t}}
---
apiVersion: mmm/v1
kind: Experiment
metadata: {{id: copy-test, tenant: \"*\", status: active}}
spec:
  playbook: nudge
  strategy: thompson
  min_samples: 5
  update_interval: 1m
  variants:
{variants}"
        )
    };
    let two = "    - {name: a, weight: 1}\n    - {name: b, weight: 1}\n";
    let three =
        "    - {name: a, weight: 1}\n    - {name: b, weight: 1}\n    - {name: c, weight: 1}\n";
    let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    let e = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&exp(two)).unwrap())
        .clock(clock.clone())
        .build();
    for i in 0..60 {
        let mut s = signal("x.y", json!({}));
        s["actor_id"] = json!(format!("dev-{i}"));
        let d = decide(&e, &s, json!(null));
        let a = &d.actions[0];
        let good = a.experiment.as_ref().unwrap().variant == "b";
        e.record_outcome(&json!({"action_id": a.action_id, "tenant_id": "acme", "actor_id": s["actor_id"],
            "playbook_id": "nudge", "result": if good { "accepted" } else { "dismissed" }, "at": NOW})).unwrap();
    }
    let skewed = e.experiment_weights("acme", "copy-test").unwrap();
    assert!(skewed[1].1 > 0.8, "{skewed:?}");
    e.reload(PlaybookSet::from_yaml(&exp(three)).unwrap())
        .unwrap();
    let fresh = e.experiment_weights("acme", "copy-test").unwrap();
    assert_eq!(
        fresh.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    for (_, w) in &fresh {
        assert!((w - 1.0 / 3.0).abs() < 1e-9, "{fresh:?}");
    }
}

#[test]
fn experiment_ids_are_unique_and_tenant_experiments_stay_in_their_tenant() {
    let pb = "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: nudge, version: 1, tenant: \"*\", status: published}\nspec:\n  triggers: [x.y]\n  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]\n";
    let exp = |tenant: &str| {
        format!("---\napiVersion: mmm/v1\nkind: Experiment\nmetadata: {{id: copy, tenant: {tenant}, status: active}}\nspec:\n  playbook: nudge\n  variants:\n    - {{name: a, weight: 1}}\n    - {{name: b, weight: 3}}\n")
    };
    let err = PlaybookSet::from_yaml(&format!("{pb}{}{}", exp("acme"), exp("\"*\""))).unwrap_err();
    assert_eq!(err.diagnostics[0].rule, "duplicate-experiment");
    let e = engine(&format!("{pb}{}", exp("acme")));
    assert!(e.experiment_weights("acme", "copy").is_some());
    assert!(e.experiment_weights("globex", "copy").is_none());
    let mut s = signal("x.y", json!({}));
    s["tenant_id"] = json!("globex");
    assert_eq!(decide(&e, &s, json!(null)).actions[0].experiment, None);
}
