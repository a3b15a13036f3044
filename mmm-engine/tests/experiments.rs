//! Experiments, outcomes and audited administration through the engine.

use std::sync::Arc;
use std::time::Duration;

use mmm_engine::audit::{AuditError, AuditEvent, AuditSink, MemoryAudit};
use mmm_engine::experiment::{hash_v2, ExperimentStatus};
use mmm_engine::{Clock, Engine, ManualClock, PlaybookSet, Reason};
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

#[test]
fn assignment_is_deterministic_per_actor() {
    let e = engine(SET);
    for i in 0..50 {
        let actor = format!("dev-{i}");
        let a = decide(&e, &pr_for(&actor), json!(null));
        let b = decide(&e, &pr_for(&actor), json!(null));
        assert_eq!(
            a.actions.first().map(|x| x.experiment.clone()),
            b.actions.first().map(|x| x.experiment.clone())
        );
    }
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
