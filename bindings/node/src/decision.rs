//! The decision into JavaScript, on the hot path of every `decide`.
//!
//! N-API builds objects one property at a time, which is slower than V8's own `JSON.parse`;
//! and `JSON.parse` of the decision spends much of its time on the keys, which are the same
//! in every decision. So the decision is serialised *positionally* (arrays in a fixed
//! order, no keys) and a small builder, compiled once per engine, parses that and rebuilds
//! the SPEC §4 objects with object literals — about twice as fast as `JSON.parse` of the
//! keyed form (a typical nudge-1k decision: ~9 µs instead of ~19 µs). The result is
//! identical, key order included: the shared vectors compare it with Rust's own
//! serialisation, and the structs are destructured exhaustively below, so a field added to
//! the core's decision does not compile until it is added here and in the builder.
//!
//! `JSON.parse` spends most of its time making strings, so the positional form carries
//! as few as it can: words of the engine's vocabulary (action types, surfaces, reasons,
//! degraded codes, receipt statuses) travel as their index in the core's `ALL` list and
//! the builder maps them back through tables compiled into it; a suppression whose
//! detail is the previous one's (all the `max_actions` suppressions of a decision) carries
//! `0` instead of the text. See `docs/perf-notes/bind.md` for the figures.

use mmm_engine::{
    Action, ActionType, Decision, Degraded, Detail, PlaybookRef, Rationale, Reason, ReceiptRef,
    ReceiptStatus, Suppressed, Surface,
};
use napi::bindgen_prelude::{Function, FunctionRef, Unknown};
use napi::Env;
use serde::ser::{Serialize, SerializeTuple, Serializer};

/// Rebuilds a decision from its positional form; the indices match [`Positional`], and
/// `@WORDS@` becomes the vocabulary tables (see [`builder_source`]).
const BUILDER: &str = r"(function () {
  'use strict'
  @WORDS@
  const surface = (i) => SURFACES[i]
  const action = (a) => ({
    action_id: a[0], fingerprint: a[1], playbook: { id: a[2], version: a[3] }, type: TYPES[a[4]],
    category: a[5], priority: a[6], surfaces: a[7].map(surface), title: a[8], text: a[9], rendered: a[10],
    rationale: { why: a[11], trigger: a[12], evidence: a[13] }, requires_consent: a[14],
    dual_channel: a[15], operation: a[16], params: a[17], experiment: a[18],
  })
  const suppressed = (list) => {
    const out = []
    let detail = null
    for (const s of list) {
      if (s[5] !== 0) detail = s[5]
      out.push({
        playbook: { id: s[0], version: s[1] }, action_index: s[2], type: TYPES[s[3]],
        reason: REASONS[s[4]], detail,
      })
    }
    return out
  }
  return function mmmDecision(text) {
    const x = JSON.parse(text)
    const receipt = x[12] === null
      ? { receipt_id: x[10], status: STATUSES[x[11]] }
      : { receipt_id: x[10], status: STATUSES[x[11]], envelope: x[12] }
    return {
      decision_id: x[0], signal_id: x[1], tenant_id: x[2], actor_id: x[3], decided_at: x[4],
      actions: x[5].map(action), suppressed: suppressed(x[6]), degraded: x[7].map((i) => DEGRADED[i]),
      redacted: x[8], policy_snapshot_id: x[9], receipt, latency_us: x[13],
      latency_warning: x[14], explain: x[15],
    }
  }
})()";

/// The builder's source with its vocabulary tables: each word list in the order of the
/// core's `ALL`, which is what [`word`] indexes.
fn builder_source() -> Result<String, serde_json::Error> {
    let words = format!(
        "const TYPES = {}, SURFACES = {}, REASONS = {}, DEGRADED = {}, STATUSES = {}",
        serde_json::to_string(ActionType::ALL)?,
        serde_json::to_string(Surface::ALL)?,
        serde_json::to_string(Reason::ALL)?,
        serde_json::to_string(Degraded::ALL)?,
        serde_json::to_string(ReceiptStatus::ALL)?,
    );
    Ok(BUILDER.replace("@WORDS@", &words))
}

/// A vocabulary word as its index in `all` (the core's `ALL`, which lists every value).
struct Word<T: 'static>(&'static [T], T);

impl<T: PartialEq + Copy + Serialize> Serialize for Word<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.iter().position(|w| *w == self.1) {
            Some(i) => s.serialize_u64(i as u64),
            // Unreachable while `ALL` lists every value; the builder would read it as
            // `undefined`, so refuse rather than hand out a wrong decision.
            None => Err(serde::ser::Error::custom(
                "a word missing from its vocabulary",
            )),
        }
    }
}

/// A list of words, as indices.
struct Words<'a, T: 'static>(&'static [T], &'a [T]);

impl<T: PartialEq + Copy + Serialize> Serialize for Words<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|w| Word(self.0, *w)))
    }
}

/// The builder, compiled for one engine.
pub type Builder = FunctionRef<String, Unknown<'static>>;

/// Compiles the builder (once per engine).
pub fn builder(env: &Env) -> napi::Result<Builder> {
    let source = builder_source().map_err(|e| napi::Error::from_reason(e.to_string()))?;
    let f: Function<'_, String, Unknown<'static>> = env.run_script(source)?;
    f.create_ref()
}

/// The decision as a JavaScript object.
pub fn to_js(env: &Env, builder: &Builder, decision: &Decision) -> napi::Result<Unknown<'static>> {
    let text = serde_json::to_string(&Positional(decision))
        .map_err(|e| napi::Error::from_reason(format!("the decision cannot be serialised: {e}")))?;
    from_text(env, builder, text)
}

/// Builds the object from positional JSON made earlier (by `decideAsync`, off the JS thread).
pub fn from_text(env: &Env, builder: &Builder, text: String) -> napi::Result<Unknown<'static>> {
    builder.borrow_back(env)?.call(text)
}

/// Serialises a decision positionally.
pub fn positional_text(decision: &Decision) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Positional(decision))
}

/// The positional form of a decision: the fields in SPEC order, without keys.
struct Positional<'a>(&'a Decision);

impl Serialize for Positional<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Decision {
            decision_id,
            signal_id,
            tenant_id,
            actor_id,
            decided_at,
            actions,
            suppressed,
            degraded,
            redacted,
            policy_snapshot_id,
            receipt,
            latency_us,
            latency_warning,
            explain,
        } = self.0;
        let ReceiptRef {
            receipt_id,
            status,
            envelope,
        } = receipt;
        let mut t = s.serialize_tuple(16)?;
        t.serialize_element(decision_id)?;
        t.serialize_element(signal_id)?;
        t.serialize_element(tenant_id)?;
        t.serialize_element(actor_id)?;
        t.serialize_element(decided_at)?;
        t.serialize_element(&Seq(actions, PositionalAction))?;
        t.serialize_element(&SuppressedList(suppressed))?;
        t.serialize_element(&Words(Degraded::ALL, degraded))?;
        t.serialize_element(redacted)?;
        t.serialize_element(policy_snapshot_id)?;
        t.serialize_element(receipt_id)?;
        t.serialize_element(&Word(ReceiptStatus::ALL, *status))?;
        t.serialize_element(envelope)?;
        t.serialize_element(latency_us)?;
        t.serialize_element(latency_warning)?;
        t.serialize_element(explain)?;
        t.end()
    }
}

/// A slice serialised through a positional wrapper.
struct Seq<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for Seq<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

struct PositionalAction<'a>(&'a Action);

impl Serialize for PositionalAction<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Action {
            action_id,
            fingerprint,
            playbook: PlaybookRef { id, version },
            kind,
            category,
            priority,
            surfaces,
            title,
            text,
            rendered,
            rationale:
                Rationale {
                    why,
                    trigger,
                    evidence,
                },
            requires_consent,
            dual_channel,
            operation,
            params,
            experiment,
        } = self.0;
        let mut t = s.serialize_tuple(19)?;
        t.serialize_element(action_id)?;
        t.serialize_element(fingerprint)?;
        t.serialize_element(id)?;
        t.serialize_element(version)?;
        t.serialize_element(&Word(ActionType::ALL, *kind))?;
        t.serialize_element(category)?;
        t.serialize_element(priority)?;
        t.serialize_element(&Words(Surface::ALL, surfaces))?;
        t.serialize_element(title)?;
        t.serialize_element(text)?;
        t.serialize_element(rendered)?;
        t.serialize_element(why)?;
        t.serialize_element(trigger)?;
        t.serialize_element(evidence)?;
        t.serialize_element(requires_consent)?;
        t.serialize_element(dual_channel)?;
        t.serialize_element(operation)?;
        t.serialize_element(params)?;
        t.serialize_element(experiment)?;
        t.end()
    }
}

/// The suppressions, each detail written only when it differs from the previous one's.
struct SuppressedList<'a>(&'a [Suppressed]);

impl Serialize for SuppressedList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut previous: Option<&Detail> = None;
        s.collect_seq(self.0.iter().map(|item| {
            let detail = &item.detail;
            let repeated = previous == Some(detail);
            previous = Some(detail);
            PositionalSuppressed(item, repeated)
        }))
    }
}

/// One suppression; `true` when its detail repeats the previous one's (written as `0`).
struct PositionalSuppressed<'a>(&'a Suppressed, bool);

impl Serialize for PositionalSuppressed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Suppressed {
            playbook: PlaybookRef { id, version },
            action_index,
            kind,
            reason,
            detail,
        } = self.0;
        let mut t = s.serialize_tuple(6)?;
        t.serialize_element(id)?;
        t.serialize_element(version)?;
        t.serialize_element(action_index)?;
        t.serialize_element(&Word(ActionType::ALL, *kind))?;
        t.serialize_element(&Word(Reason::ALL, *reason))?;
        if self.1 {
            t.serialize_element(&0u8)?;
        } else {
            t.serialize_element(detail)?;
        }
        t.end()
    }
}
