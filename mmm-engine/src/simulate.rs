//! Replaying recorded signals: the logic behind `mmm simulate` and a host's simulate route.
//!
//! A [`Replay`] feeds signals in order to a primary engine and, optionally, to a shadow
//! engine holding another playbook set. Each engine's fatigue state carries along, `now` is
//! each signal's `occurred_at`, and each actor's earlier accepted signals become the
//! `recent_signals` of the next one (what the UBI port supplies in production; a context
//! that gives its own wins). The [`ReplayReport`] tallies actions and suppressions per
//! playbook and lists the decisions that differ between the two sets.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::context::RecentHistory;
use crate::decision::Decision;
use crate::engine::{DecideOptions, Engine};
use crate::error::{DecideError, ErrorInfo};
use crate::ids::SharedStr;
use crate::model::{ActionType, Reason};
use crate::plan::RECENT_SIGNALS_KEY;

mod parallel;

pub use parallel::{replay_lines, LineOutcome};

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
    /// Each actor's accepted signals (≤ 50, as the context's `recent_signals` allows),
    /// kept typed so that a replayed decision neither builds nor parses a JSON context.
    /// Tenant, then actor: looked up by the signal's `&str`s, allocating nothing once
    /// the actor is known.
    history: FastMap<String, FastMap<String, RecentHistory>>,
    /// What each set did, counted as it goes and sorted into the report at the end.
    primary_counts: Counts,
    shadow_counts: Option<Counts>,
    report: ReplayReport,
}

/// A map hashed with foldhash: the replay looks a playbook (or tenant and actor) up for
/// every action, suppression and signal, and SipHash was a tenth of a replayed signal.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Per playbook id, actions by type and suppressions by reason. Looked up by the id's
/// text (short, and hashed with foldhash): nothing is allocated once a playbook is known.
type Counts = FastMap<SharedStr, Counted>;

/// Actions by type and suppressions by reason, for one playbook, counted in the order of
/// `ActionType::ALL` and `Reason::ALL` (a replay counts every action and suppression).
struct Counted {
    actions: [usize; ActionType::ALL.len()],
    suppressed: [usize; Reason::ALL.len()],
}

impl Default for Counted {
    fn default() -> Self {
        Counted {
            actions: [0; ActionType::ALL.len()],
            suppressed: [0; Reason::ALL.len()],
        }
    }
}

impl Counted {
    fn add(&mut self, other: &Counted) {
        for (a, b) in self.actions.iter_mut().zip(other.actions) {
            *a += b;
        }
        for (a, b) in self.suppressed.iter_mut().zip(other.suppressed) {
            *a += b;
        }
    }
}

/// The count of `value` among `counts`, kept in the order of `all`.
fn slot<'c, T: PartialEq + Copy>(
    counts: &'c mut [usize],
    all: &[T],
    value: T,
) -> Option<&'c mut usize> {
    let i = all.iter().position(|v| *v == value)?;
    counts.get_mut(i)
}

/// The signal of an input: the input itself, or its `signal` member.
pub(crate) fn signal_of(input: &Value) -> &Value {
    input.get("signal").unwrap_or(input)
}

/// [`signal_of`] for an input the caller gives away.
fn into_signal(input: Value) -> Value {
    match input {
        Value::Object(mut map) => match map.remove("signal") {
            Some(signal) => signal,
            // Nothing was removed: the map is as it was.
            None => Value::Object(map),
        },
        other => other,
    }
}

/// A string member of a signal, `""` when absent or not a string.
pub(crate) fn text<'v>(signal: &'v Value, key: &str) -> &'v str {
    signal.get(key).and_then(Value::as_str).unwrap_or("")
}

impl<'e> Replay<'e> {
    /// A replay through `primary`, compared with `shadow` when given.
    pub fn new(primary: &'e Engine, shadow: Option<&'e Engine>) -> Self {
        Replay {
            primary,
            shadow,
            history: FastMap::default(),
            primary_counts: Counts::default(),
            shadow_counts: shadow.map(|_| Counts::default()),
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
        let decision = self.decide(line, input)?;
        self.remember(&decision, signal_of(input).clone());
        Ok(decision)
    }

    /// [`Replay::step`] for an input the caller no longer needs: its signal joins the
    /// actor's history without being copied.
    ///
    /// # Errors
    /// As [`Replay::step`].
    pub fn step_owned(&mut self, line: usize, input: Value) -> Result<Decision, DecideError> {
        let decision = self.decide(line, &input)?;
        self.remember(&decision, into_signal(input));
        Ok(decision)
    }

    /// Decides `input` through both sets and counts what they did; the signal is not yet
    /// part of its actor's history.
    fn decide(&mut self, line: usize, input: &Value) -> Result<Decision, DecideError> {
        let (signal, context) = match input.get("signal") {
            Some(signal) => (signal, input.get("context").cloned()),
            None => (input, None),
        };
        let options = DecideOptions {
            now: signal
                .get("occurred_at")
                .and_then(Value::as_str)
                .and_then(|s| crate::signal::parse_timestamp(s).ok()),
            explain: false,
        };
        let (primary, shadow) = (self.primary, self.shadow);
        let earlier = self
            .history
            .get_mut(text(signal, "tenant_id"))
            .and_then(|actors| actors.get_mut(text(signal, "actor_id")));
        // The actor's history stands for the context's `recent_signals` unless the input's
        // context gives its own (or is not an object, and so gets none).
        let typed = match &context {
            None => true,
            Some(Value::Object(c)) => !c.contains_key(RECENT_SIGNALS_KEY),
            Some(_) => false,
        } && earlier.as_deref().is_none_or(RecentHistory::typed_ok);
        let mut empty = RecentHistory::default();
        let (context, mut history) = if typed {
            let history = match earlier {
                Some(h) => h,
                None => &mut empty,
            };
            (context, Some(history))
        } else {
            let mut context = context.unwrap_or_else(|| Value::Object(Map::new()));
            if let Some(ctx) = context.as_object_mut() {
                ctx.entry(RECENT_SIGNALS_KEY).or_insert_with(|| {
                    earlier.map_or_else(|| Value::Array(Vec::new()), |h| h.to_json())
                });
            }
            (Some(context), None)
        };
        let decide = |engine: &Engine, history: Option<&mut RecentHistory>| match history {
            Some(h) => engine.decide_replayed(signal, context.as_ref(), h, &options),
            None => engine.decide(signal, context.as_ref(), &options),
        };
        let decision = match decide(primary, history.as_deref_mut()) {
            Ok(d) => d,
            Err(e) => {
                let error = e.info();
                self.report.rejected.push(Rejected { line, error });
                return Err(e);
            }
        };
        // The shadow decides on the same history, before this signal joins it.
        let other = shadow.map(|shadow| decide(shadow, history));
        self.report.replayed += 1;
        tally(&mut self.primary_counts, &decision);
        if let (Some(Ok(other)), Some(shadow_tally)) = (other, self.shadow_counts.as_mut()) {
            tally(shadow_tally, &other);
            let (a, b) = (outline(&decision), outline(&other));
            if a != b {
                self.report.differences.push(Difference {
                    line,
                    kind: text(signal, "kind").to_owned(),
                    actor_id: decision.actor_id.clone(),
                    primary: a,
                    shadow: b,
                });
            }
        }
        Ok(decision)
    }

    /// Adds an accepted `signal` to its actor's history (only a signal the engine
    /// accepted becomes part of it).
    fn remember(&mut self, decision: &Decision, signal: Value) {
        let (tenant, actor) = (&decision.tenant_id, &decision.actor_id);
        let actors = match self.history.get_mut(tenant.as_str()) {
            Some(actors) => actors,
            None => self.history.entry(tenant.clone()).or_default(),
        };
        match actors.get_mut(actor.as_str()) {
            Some(history) => history.push(signal),
            None => actors.entry(actor.clone()).or_default().push(signal),
        }
    }

    /// Reads and decides one NDJSON line (`None` when it is blank).
    pub(crate) fn step_line(&mut self, line: usize, text: &str) -> Option<LineOutcome> {
        Some(match parallel::parse_line(text)? {
            Ok(value) => LineOutcome::Decided(self.step_owned(line, value)),
            Err(e) => {
                self.reject(line, parallel::unreadable(&e));
                LineOutcome::Unreadable(e)
            }
        })
    }

    /// Takes over `other`'s actors (none of them known here), counts and report.
    pub(crate) fn absorb(&mut self, other: Replay<'e>) {
        for (tenant, actors) in other.history {
            self.history.entry(tenant).or_default().extend(actors);
        }
        add_counts(&mut self.primary_counts, other.primary_counts);
        if let (Some(mine), Some(theirs)) = (self.shadow_counts.as_mut(), other.shadow_counts) {
            add_counts(mine, theirs);
        }
        let report = other.report;
        self.report.replayed += report.replayed;
        self.report.rejected.extend(report.rejected);
        self.report.rejected.sort_by_key(|r| r.line);
        self.report.differences.extend(report.differences);
        self.report.differences.sort_by_key(|d| d.line);
    }

    /// Records an input that could not be read (invalid JSON, for instance) as rejected.
    pub fn reject(&mut self, line: usize, error: ErrorInfo) {
        self.report.rejected.push(Rejected { line, error });
    }

    /// The report.
    pub fn finish(self) -> ReplayReport {
        let mut report = self.report;
        report.primary = tallies(self.primary_counts);
        report.shadow = self.shadow_counts.map(tallies);
        report
    }
}

/// Adds `part`'s counts into `into`.
fn add_counts(into: &mut Counts, part: Counts) {
    for (id, counted) in part {
        into.entry(id).or_default().add(&counted);
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

fn tally(into: &mut Counts, d: &Decision) {
    // Looked up by the text first: a known id (nearly every one) is not copied.
    macro_rules! counted {
        ($id:expr) => {
            match into.get_mut($id.as_str()) {
                Some(counted) => counted,
                None => into.entry($id.clone()).or_default(),
            }
        };
    }
    for a in &d.actions {
        if let Some(n) = slot(
            &mut counted!(a.playbook.id).actions,
            ActionType::ALL,
            a.kind,
        ) {
            *n += 1;
        }
    }
    for s in &d.suppressed {
        if let Some(n) = slot(
            &mut counted!(s.playbook.id).suppressed,
            Reason::ALL,
            s.reason,
        ) {
            *n += 1;
        }
    }
}

fn tallies(counts: Counts) -> BTreeMap<String, Tally> {
    fn named<T: Copy>(
        all: &[T],
        counts: &[usize],
        name: fn(T) -> &'static str,
    ) -> BTreeMap<String, usize> {
        all.iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(v, n)| (name(*v).to_owned(), *n))
            .collect()
    }
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    for (id, counted) in counts {
        out.insert(
            id.as_str().to_owned(),
            Tally {
                actions: named(ActionType::ALL, &counted.actions, ActionType::as_str),
                suppressed: named(Reason::ALL, &counted.suppressed, Reason::as_str),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineConfig, PlaybookSet};
    use serde_json::json;
    use std::sync::Arc;

    pub(super) fn engine(yaml: &str) -> Engine {
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

    /// A decision as JSON, without what differs from run to run (ids, latency, the
    /// receipt's envelope, of which the hash of the inputs is kept).
    pub(super) fn stable(d: &Decision, engine: &Engine) -> Value {
        let mut v = serde_json::to_value(d).unwrap();
        let inputs = d.receipt.envelope.as_ref().map(|e| {
            let key = engine.receipt_public_key().unwrap();
            crate::receipt::verify_receipt(e, &key).unwrap()["inputs_sha256"].clone()
        });
        for key in ["decision_id", "latency_us", "latency_warning", "receipt"] {
            v.as_object_mut().unwrap().remove(key);
        }
        for a in v["actions"].as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("action_id");
        }
        v["inputs_sha256"] = inputs.unwrap_or(Value::Null);
        v
    }

    /// The replay as it was before typed history: each signal decided with a JSON
    /// context carrying the actor's earlier signals.
    fn replay_with_json_contexts(engine: &Engine, inputs: &[Value]) -> Vec<Option<Value>> {
        let mut history: HashMap<(String, String), std::collections::VecDeque<Value>> =
            HashMap::new();
        inputs
            .iter()
            .map(|input| {
                let (signal, context) = match input.get("signal") {
                    Some(signal) => (signal, input.get("context").cloned()),
                    None => (input, None),
                };
                let text = |k: &str| signal[k].as_str().unwrap_or("").to_owned();
                let key = (text("tenant_id"), text("actor_id"));
                let mut context = context.unwrap_or_else(|| json!({}));
                if let Some(ctx) = context.as_object_mut() {
                    let earlier = history.get(&key);
                    ctx.entry("recent_signals").or_insert_with(|| {
                        Value::Array(
                            earlier
                                .map(|e| e.iter().cloned().collect())
                                .unwrap_or_default(),
                        )
                    });
                }
                let options = DecideOptions {
                    now: signal["occurred_at"]
                        .as_str()
                        .and_then(|s| crate::signal::parse_timestamp(s).ok()),
                    explain: false,
                };
                let d = engine.decide(signal, Some(&context), &options).ok()?;
                let earlier = history
                    .entry((d.tenant_id.clone(), d.actor_id.clone()))
                    .or_default();
                earlier.push_front(signal.clone());
                earlier.truncate(50);
                Some(stable(&d, engine))
            })
            .collect()
    }

    /// Playbooks that read the history in every way a decision can: `recent_count`, a
    /// template on `ctx.recent_signals`, a script using `ctx` whole; and one that reads
    /// none of it.
    pub(super) const READERS: &str = r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: counts, version: 1, tenant: "*", status: published}
spec:
  triggers: [ci.failed]
  when: recent_count("ci.failed", "1h") >= 2
  actions: [{type: mirror, surfaces: [ide], title: Again, text: "CI failed again."}]
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: quotes, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  actions: [{type: mirror, surfaces: [ide], title: Last, text: "Before: {{ ctx.recent_signals.0.kind }}."}]
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: whole, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.merged]
  when: ctx.keys().len() > 1
  actions: [{type: mirror, surfaces: [ide], title: Whole, text: "The context has more than one key."}]
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: plain, version: 1, tenant: "*", status: published}
spec:
  triggers: [ci.failed, pr.opened, pr.merged, deploy.done]
  when: signal.payload.n > 1
  actions: [{type: mirror, surfaces: [ide], title: Plain, text: "n is {{ signal.payload.n }}."}]
"#;

    fn inputs() -> Vec<Value> {
        let kinds = ["ci.failed", "pr.opened", "pr.merged", "deploy.done"];
        let mut out = Vec::new();
        for i in 0..130_usize {
            let mut payload = json!({"n": i % 5, "nested": {"list": [{"k": i}]}});
            if i % 17 == 3 {
                payload["nested"]["list"][0]["token"] = json!("hunter2");
            }
            if i % 23 == 5 {
                payload["z"] = json!(-0.0);
            }
            let signal = json!({"tenant_id": "acme", "actor_id": format!("dev-{}", i % 3),
                "kind": kinds[i % 4], "occurred_at": format!("2026-11-22T10:{:02}:00Z", i % 60),
                "signal_id": format!("s-{i}"), "payload": payload});
            out.push(match i % 11 {
                // A context of its own, with and without recent signals of its own.
                4 => json!({"signal": signal, "context": {"actor": {"roles": ["dev"]}}}),
                7 => json!({"signal": signal, "context": {"recent_signals": []}}),
                8 => json!({"signal": signal, "context": {"tenant": {"config":
                    {"deny_payload_keys": ["k"]}}}}),
                9 => json!({"signal": signal, "context": null}),
                _ => signal,
            });
        }
        // One the engine refuses.
        out.insert(
            10,
            json!({"tenant_id": "acme", "actor_id": "dev-1", "kind": "ci.failed"}),
        );
        out
    }

    fn replay_typed(engine: &Engine, inputs: &[Value]) -> Vec<Option<Value>> {
        let mut replay = Replay::new(engine, None);
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| replay.step(i + 1, input).ok().map(|d| stable(&d, engine)))
            .collect()
    }

    #[test]
    fn an_owned_input_replays_as_a_borrowed_one() {
        let inputs = inputs();
        let primary = engine(READERS);
        let shadow = engine(&READERS.replace("> 1", "> 2"));
        let (mut borrowed, mut owned) = (
            Replay::new(&primary, Some(&shadow)),
            Replay::new(&primary, Some(&shadow)),
        );
        for (i, input) in inputs.iter().enumerate() {
            let a = borrowed.step(i + 1, input).ok();
            let b = owned.step_owned(i + 1, input.clone()).ok();
            assert_eq!(
                a.map(|d| stable(&d, &primary)),
                b.map(|d| stable(&d, &primary)),
                "input {i}"
            );
        }
        let (a, b) = (borrowed.finish(), owned.finish());
        assert!(!a.differences.is_empty() && !a.rejected.is_empty());
        assert_eq!(a, b);
    }

    #[test]
    fn the_signal_of_an_input() {
        let signal = json!({"kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z"});
        let wrapped = json!({"context": {"a": 1}, "signal": signal, "z": 2});
        assert_eq!(signal_of(&wrapped), &signal);
        assert_eq!(into_signal(wrapped), signal);
        assert_eq!(signal_of(&signal), &signal);
        assert_eq!(into_signal(signal.clone()), signal);
        assert_eq!(into_signal(json!([1])), json!([1]));
    }

    #[test]
    fn counts_of_one_id_held_at_two_addresses_are_counted_together() {
        let yaml = REPEAT.replace(
            "when: recent_count(\"ci.failed\", \"1h\") >= 1",
            "when: true",
        );
        let e = engine(&yaml);
        let one = e
            .decide(
                &failed("a", "2026-11-22T10:00:00Z"),
                None,
                &DecideOptions::default(),
            )
            .unwrap();
        let mut two = one.clone();
        two.actions[0].playbook.id = SharedStr::from(Arc::<str>::from("repeat"));
        let mut counts = Counts::default();
        tally(&mut counts, &one);
        tally(&mut counts, &two);
        tally(&mut counts, &two);
        assert_eq!(counts.len(), 1);
        let report = tallies(counts);
        assert_eq!(report.len(), 1);
        assert_eq!(report["repeat"].actions["mirror"], 3);
    }

    #[test]
    fn an_engine_that_remembers_no_actions_counts_their_outcomes_as_unknown() {
        let yaml = REPEAT.replace(
            "when: recent_count(\"ci.failed\", \"1h\") >= 1",
            "when: true",
        );
        for remember in [true, false] {
            let e = Engine::builder()
                .playbooks(PlaybookSet::from_yaml(&yaml).unwrap())
                .remember_actions(remember)
                .build();
            let d = e
                .decide(
                    &failed("a", "2026-11-22T10:00:00Z"),
                    None,
                    &DecideOptions::default(),
                )
                .unwrap();
            e.record_outcome(
                &json!({"action_id": d.actions[0].action_id, "tenant_id": "acme",
                "actor_id": "a", "playbook_id": "repeat", "result": "accepted",
                "at": "2026-11-22T10:01:00Z"}),
            )
            .unwrap();
            let counts = serde_json::to_value(e.outcome_counts("acme")).unwrap();
            let kind = if remember { "mirror" } else { "unknown" };
            assert_eq!(counts[0]["type"], kind);
        }
    }

    #[test]
    fn typed_history_decides_as_the_json_context_did() {
        let set = || PlaybookSet::from_yaml(READERS).unwrap();
        let inputs = inputs();
        let key = || crate::receipt::signing_key_from_bytes(&[9u8; 32]).unwrap();
        let small = || EngineConfig {
            max_context_bytes: 6_000,
            ..EngineConfig::default()
        };
        let builds: [&dyn Fn() -> Engine; 3] = [
            &|| Engine::builder().playbooks(set()).build(),
            &|| {
                Engine::builder()
                    .playbooks(set())
                    .signing_key(key())
                    .build()
            },
            &|| Engine::builder().playbooks(set()).config(small()).build(),
        ];
        for build in builds {
            let before = replay_with_json_contexts(&build(), &inputs);
            let now = replay_typed(&build(), &inputs);
            assert_eq!(now.len(), before.len());
            for (i, (a, b)) in now.iter().zip(&before).enumerate() {
                assert_eq!(a, b, "input {i}");
            }
            // The cases are exercised: redactions in history, refusals, actions.
            let all: Vec<&Value> = now.iter().flatten().collect();
            assert!(all
                .iter()
                .any(|d| d["redacted"].to_string().contains("recent_signals")));
            assert!(all
                .iter()
                .any(|d| !d["actions"].as_array().unwrap().is_empty()));
            assert!(now.iter().any(Option::is_none));
        }
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
