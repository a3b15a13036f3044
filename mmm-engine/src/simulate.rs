//! Replaying recorded signals: the logic behind `mmm simulate` and a host's simulate route.
//!
//! A [`Replay`] feeds signals in order to a primary engine and, optionally, to a shadow
//! engine holding another playbook set. Each engine's fatigue state carries along, `now` is
//! each signal's `occurred_at`, and each actor's earlier accepted signals become the
//! `recent_signals` of the next one (what the UBI port supplies in production; a context
//! that gives its own wins). The [`ReplayReport`] tallies actions and suppressions per
//! playbook and lists the decisions that differ between the two sets.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::decision::Decision;
use crate::engine::{DecideOptions, Engine};
use crate::error::{DecideError, ErrorInfo};

/// Earlier signals kept per actor, as the context's `recent_signals` allows (≤ 50).
const HISTORY: usize = 50;

/// Counts for one playbook over a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Returned actions by action type.
    pub actions: BTreeMap<String, usize>,
    /// Suppressions by reason.
    pub suppressed: BTreeMap<String, usize>,
}

/// A signal whose decisions differ between the primary and the shadow set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The signal's position in the input (1-based line, or array index + 1).
    pub line: usize,
    /// The signal's kind.
    pub kind: String,
    /// The actor.
    pub actor_id: String,
    /// What the primary set did, one entry per action or suppression
    /// (`large-pr@3 mirror [pr_comment]`, `large-pr@3 mentor #1 suppressed:fatigue_cooldown`).
    pub primary: Vec<String>,
    /// What the shadow set did, in the same form.
    pub shadow: Vec<String>,
}

/// An input the primary engine refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// The input's position (1-based).
    pub line: usize,
    /// Why.
    pub error: ErrorInfo,
}

/// The result of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Signals decided by the primary set.
    pub replayed: usize,
    /// Inputs refused (invalid JSON or an invalid signal), in order.
    pub rejected: Vec<Rejected>,
    /// Per playbook id, what the primary set did.
    pub primary: BTreeMap<String, Tally>,
    /// Per playbook id, what the shadow set did (absent without a shadow).
    pub shadow: Option<BTreeMap<String, Tally>>,
    /// The decisions that differ between the two sets, in input order.
    pub differences: Vec<Difference>,
}

/// A replay in progress: feed it signals with [`Replay::step`], then [`Replay::finish`].
///
/// ```
/// use mmm_engine::{simulate::Replay, Engine, PlaybookSet};
/// let yaml = r#"
/// apiVersion: mmm/v1
/// kind: Playbook
/// metadata: {id: hello, version: 1, tenant: "*", status: published}
/// spec:
///   triggers: [pr.opened]
///   fatigue: {cooldown: 1h}
///   actions: [{type: mirror, surfaces: [ide], title: Hi, text: "A pull request was opened."}]
/// "#;
/// let primary = Engine::builder().playbooks(PlaybookSet::from_yaml(yaml).unwrap()).build();
/// let shadow = Engine::builder().playbooks(PlaybookSet::default()).build();
/// let mut replay = Replay::new(&primary, Some(&shadow));
/// for (i, at) in ["2026-11-22T10:00:00Z", "2026-11-22T10:30:00Z"].iter().enumerate() {
///     let signal = serde_json::json!({"tenant_id": "acme", "actor_id": "dev-1",
///         "kind": "pr.opened", "occurred_at": at});
///     replay.step(i + 1, &signal).unwrap();
/// }
/// let report = replay.finish();
/// assert_eq!(report.primary["hello"].actions["mirror"], 1);
/// assert_eq!(report.primary["hello"].suppressed["fatigue_cooldown"], 1);
/// assert_eq!(report.differences.len(), 2);
/// ```
pub struct Replay<'e> {
    primary: &'e Engine,
    shadow: Option<&'e Engine>,
    history: HashMap<(String, String), VecDeque<Value>>,
    report: ReplayReport,
}

impl<'e> Replay<'e> {
    /// A replay through `primary`, compared with `shadow` when given.
    pub fn new(primary: &'e Engine, shadow: Option<&'e Engine>) -> Self {
        Replay {
            primary,
            shadow,
            history: HashMap::new(),
            report: ReplayReport {
                shadow: shadow.map(|_| BTreeMap::new()),
                ..ReplayReport::default()
            },
        }
    }

    /// Decides one input: a signal envelope, or `{"signal", "context"?}`. `line` is its
    /// position in the input, used in the report.
    ///
    /// # Errors
    /// The primary engine's [`DecideError`]; the input is then recorded as rejected. A
    /// shadow engine's error only leaves that signal out of the comparison.
    pub fn step(&mut self, line: usize, input: &Value) -> Result<Decision, DecideError> {
        let (signal, context) = match input.get("signal") {
            Some(signal) => (signal, input.get("context").cloned()),
            None => (input, None),
        };
        let text = |key: &str| {
            signal
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let key = (text("tenant_id"), text("actor_id"));
        let mut context = context.unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(ctx) = context.as_object_mut() {
            let earlier = self.history.get(&key);
            ctx.entry("recent_signals").or_insert_with(|| {
                Value::Array(
                    earlier
                        .map(|e| e.iter().cloned().collect())
                        .unwrap_or_default(),
                )
            });
        }
        let options = DecideOptions {
            now: signal
                .get("occurred_at")
                .and_then(Value::as_str)
                .and_then(|s| crate::signal::parse_timestamp(s).ok()),
            explain: false,
        };
        let decision = match self.primary.decide(signal, Some(&context), &options) {
            Ok(d) => d,
            Err(e) => {
                self.reject(line, e.info());
                return Err(e);
            }
        };
        // Only a signal the engine accepted becomes part of the actor's history.
        let earlier = self
            .history
            .entry((decision.tenant_id.clone(), decision.actor_id.clone()))
            .or_default();
        earlier.push_front(signal.clone());
        earlier.truncate(HISTORY);
        self.report.replayed += 1;
        tally(&mut self.report.primary, &decision);
        if let (Some(shadow), Some(shadow_tally)) = (self.shadow, self.report.shadow.as_mut()) {
            if let Ok(other) = shadow.decide(signal, Some(&context), &options) {
                tally(shadow_tally, &other);
                let (a, b) = (outline(&decision), outline(&other));
                if a != b {
                    self.report.differences.push(Difference {
                        line,
                        kind: text("kind"),
                        actor_id: decision.actor_id.clone(),
                        primary: a,
                        shadow: b,
                    });
                }
            }
        }
        Ok(decision)
    }

    /// Records an input that could not be read (invalid JSON, for instance) as rejected.
    pub fn reject(&mut self, line: usize, error: ErrorInfo) {
        self.report.rejected.push(Rejected { line, error });
    }

    /// The report.
    pub fn finish(self) -> ReplayReport {
        self.report
    }
}

/// What a decision did, compactly, for comparing two sets.
fn outline(d: &Decision) -> Vec<String> {
    let mut out: Vec<String> = d
        .actions
        .iter()
        .map(|a| {
            let surfaces: Vec<&str> = a.surfaces.iter().map(|s| s.as_str()).collect();
            format!(
                "{}@{} {} [{}]",
                a.playbook.id,
                a.playbook.version,
                a.kind,
                surfaces.join(",")
            )
        })
        .collect();
    out.extend(d.suppressed.iter().map(|s| {
        format!(
            "{}@{} {} #{} suppressed:{}",
            s.playbook.id, s.playbook.version, s.kind, s.action_index, s.reason
        )
    }));
    out
}

fn tally(into: &mut BTreeMap<String, Tally>, d: &Decision) {
    for a in &d.actions {
        *into
            .entry(a.playbook.id.to_string())
            .or_default()
            .actions
            .entry(a.kind.to_string())
            .or_default() += 1;
    }
    for s in &d.suppressed {
        *into
            .entry(s.playbook.id.to_string())
            .or_default()
            .suppressed
            .entry(s.reason.to_string())
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PlaybookSet;
    use serde_json::json;

    fn engine(yaml: &str) -> Engine {
        Engine::builder()
            .playbooks(PlaybookSet::from_yaml(yaml).unwrap())
            .build()
    }

    const REPEAT: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: repeat, version: 1, tenant: "*", status: published}
spec:
  triggers: [ci.failed]
  when: recent_count("ci.failed", "1h") >= 1
  actions: [{type: mirror, surfaces: [ide], title: Again, text: "CI failed again."}]
"#;

    fn failed(actor: &str, at: &str) -> Value {
        json!({"tenant_id": "acme", "actor_id": actor, "kind": "ci.failed", "occurred_at": at})
    }

    #[test]
    fn each_actors_accepted_signals_become_their_recent_signals() {
        let primary = engine(REPEAT);
        let mut replay = Replay::new(&primary, None);
        let first = replay
            .step(1, &failed("a", "2026-11-22T10:00:00Z"))
            .unwrap();
        assert!(first.actions.is_empty());
        // Another actor's failure is not `a`'s history.
        let other = replay
            .step(2, &failed("b", "2026-11-22T10:10:00Z"))
            .unwrap();
        assert!(other.actions.is_empty());
        let second = replay
            .step(3, &failed("a", "2026-11-22T10:20:00Z"))
            .unwrap();
        assert_eq!(second.actions.len(), 1);
        let report = replay.finish();
        assert_eq!(report.replayed, 3);
        assert_eq!(report.shadow, None);
        assert_eq!(report.primary["repeat"].actions["mirror"], 1);
    }

    #[test]
    fn refused_inputs_are_reported_by_position_and_left_out_of_history() {
        let primary = engine(REPEAT);
        let mut replay = Replay::new(&primary, None);
        let bad = json!({"tenant_id": "acme", "actor_id": "a", "kind": "ci.failed"});
        let err = replay.step(1, &bad).unwrap_err();
        assert_eq!(err.info().field.as_deref(), Some("occurred_at"));
        replay.reject(
            2,
            ErrorInfo::new("SIGNAL_INVALID", "invalid JSON".to_owned()),
        );
        let next = replay
            .step(3, &failed("a", "2026-11-22T10:20:00Z"))
            .unwrap();
        assert!(next.actions.is_empty());
        let report = replay.finish();
        assert_eq!(report.replayed, 1);
        let lines: Vec<usize> = report.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn differences_show_what_each_set_did() {
        let primary = engine(REPEAT);
        let shadow = engine(&REPEAT.replace("version: 1", "version: 2").replace(
            "when: recent_count(\"ci.failed\", \"1h\") >= 1",
            "when: true",
        ));
        let mut replay = Replay::new(&primary, Some(&shadow));
        replay
            .step(
                7,
                &json!({"signal": failed("a", "2026-11-22T10:00:00Z"), "context": {}}),
            )
            .unwrap();
        let report = replay.finish();
        assert_eq!(
            report.differences,
            [Difference {
                line: 7,
                kind: "ci.failed".into(),
                actor_id: "a".into(),
                primary: vec![],
                shadow: vec!["repeat@2 mirror [ide]".into()],
            }]
        );
        assert_eq!(report.shadow.unwrap()["repeat"].actions["mirror"], 1);
    }
}
