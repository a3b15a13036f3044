//! Helpers shared by the integration tests.

use mmm_engine::{DecideOptions, Decision, Engine, PlaybookSet, Reason};
use serde_json::{json, Value};

pub const NOW: &str = "2026-11-22T10:00:00Z";

/// A playbook document with one mirror action on `ide` (override with `extra` lines).
pub fn playbook(id: &str, spec: &str) -> String {
    format!(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {{id: {id}, version: 1, tenant: \"*\", status: published, category: general}}\nspec:\n{spec}\n---\n"
    )
}

pub fn mirror(id: &str, triggers: &str, when: &str) -> String {
    playbook(
        id,
        &format!(
            "  triggers: [{triggers}]\n  when: {when}\n  actions:\n    - {{type: mirror, surfaces: [ide], title: T, text: \"{id} fired\"}}"
        ),
    )
}

pub fn engine(yaml: &str) -> Engine {
    let set =
        PlaybookSet::from_yaml(yaml).unwrap_or_else(|e| panic!("playbooks should load:\n{e}"));
    Engine::builder().playbooks(set).build()
}

pub fn signal(kind: &str, payload: Value) -> Value {
    json!({"signal_id": "sig-1", "tenant_id": "acme", "actor_id": "dev-1", "kind": kind,
           "occurred_at": NOW, "repo": {"id": "acme/api", "branch": "feat/x"}, "payload": payload})
}

pub fn at(ts: &str) -> DecideOptions {
    DecideOptions {
        now: Some(ts.parse().unwrap()),
        explain: false,
    }
}

pub fn decide(engine: &Engine, signal: &Value, context: Value) -> Decision {
    decide_at(engine, signal, context, NOW)
}

pub fn decide_at(engine: &Engine, signal: &Value, context: Value, now: &str) -> Decision {
    let ctx = if context.is_null() {
        None
    } else {
        Some(&context)
    };
    engine.decide(signal, ctx, &at(now)).unwrap()
}

/// `id type` of each returned action, in order.
pub fn acted(d: &Decision) -> Vec<String> {
    d.actions
        .iter()
        .map(|a| format!("{} {}", a.playbook.id, a.kind))
        .collect()
}

/// `(id, index, reason)` of each suppression, sorted.
pub fn reasons(d: &Decision) -> Vec<(String, usize, Reason)> {
    let mut v: Vec<_> = d
        .suppressed
        .iter()
        .map(|s| (s.playbook.id.to_string(), s.action_index, s.reason))
        .collect();
    v.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
    v
}
