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
//!
//! Two more cuts (`docs/perf-notes/node.md`): the suppressions travel as one flat array,
//! six values each, instead of an array per suppression (V8 would build each only for
//! the builder to drop it); and the strings of the playbooks (playbook ids and
//! categories, a dozen or more per decision) are sent once per engine: the builder keeps
//! a table of those it has seen, and a synchronous `decide` sends the index of a string
//! already in it. The table grows only with what the playbooks say, and stops at
//! [`TABLE_LIMIT`] entries; a decision made off the JS thread (`decideAsync`) sends every
//! string as text, the builder taking either form.
//!
//! And two from issue 11's sixth round (`docs/perf-notes/round6.md`): an action's rendered
//! messages and its evidence travel flat too (surface index and message; path and value),
//! so that `JSON.parse` makes no keyed object for them and the builder's literals do; and
//! the rationale's `why`, `trigger` and evidence paths, which are the playbooks' strings,
//! go through the same table as the ids and categories.

use mmm_engine::{
    Action, ActionType, Decision, Degraded, Detail, Evidence, PlaybookRef, Rationale, Reason,
    ReceiptRef, ReceiptStatus, Rendered, Suppressed, Surface,
};
use std::cell::RefCell;
use std::collections::HashMap;

use napi::bindgen_prelude::{Function, FunctionRef, Unknown};
use napi::Env;
use parking_lot::Mutex;
use serde::ser::{Serialize, SerializeSeq, SerializeTuple, Serializer};

/// Rebuilds a decision from its positional form; the indices match [`Positional`], and
/// `@WORDS@` becomes the vocabulary tables (see [`builder_source`]). `TABLE` holds the
/// playbooks' strings sent so far (see [`Strings`]): `x[16]` is how many of them the
/// Rust side has recorded (`null` when this decision uses no index: `decideAsync`), `x[17]`
/// the strings that follow them. Truncating to `x[16]` first drops what a failed call
/// may have added without the Rust side recording it.
const BUILDER: &str = r"(function () {
  'use strict'
  @WORDS@
  const TABLE = []
  const str = (v) => (typeof v === 'number' ? TABLE[v] : v)
  const surface = (i) => SURFACES[i]
  const rendered = (flat) => {
    const out = {}
    for (let i = 0; i < flat.length; i += 2) out[SURFACES[flat[i]]] = flat[i + 1]
    return out
  }
  const evidence = (flat) => {
    const out = []
    for (let i = 0; i < flat.length; i += 2) out.push({ path: str(flat[i]), value: flat[i + 1] })
    return out
  }
  const action = (a) => ({
    action_id: a[0], fingerprint: a[1], playbook: { id: str(a[2]), version: a[3] }, type: TYPES[a[4]],
    category: str(a[5]), priority: a[6], surfaces: a[7].map(surface), title: a[8], text: a[9],
    rendered: rendered(a[10]), rationale: { why: str(a[11]), trigger: str(a[12]), evidence: evidence(a[13]) },
    requires_consent: a[14], dual_channel: a[15], operation: a[16], params: a[17], experiment: a[18],
  })
  const suppressed = (flat) => {
    const out = []
    let detail = null
    for (let i = 0; i < flat.length; i += 6) {
      if (flat[i + 5] !== 0) detail = flat[i + 5]
      out.push({
        playbook: { id: str(flat[i]), version: flat[i + 1] }, action_index: flat[i + 2],
        type: TYPES[flat[i + 3]], reason: REASONS[flat[i + 4]], detail,
      })
    }
    return out
  }
  return function mmmDecision(text) {
    const x = JSON.parse(text)
    const base = x[16]
    if (base !== null) {
      if (TABLE.length !== base) TABLE.length = base
      for (const s of x[17]) TABLE.push(s)
    }
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

/// Most strings the builder's table holds; past it, new strings travel as text.
pub const TABLE_LIMIT: usize = 65_536;

/// The builder, compiled for one engine, with what the Rust side knows of its table.
pub struct Builder {
    function: FunctionRef<String, Unknown<'static>>,
    strings: Mutex<Strings>,
}

/// The playbooks' strings the builder holds, by their index in its `TABLE`. Only a
/// synchronous `decide` (on the JS thread) reads or adds to it.
#[derive(Default)]
struct Strings {
    known: Known,
}

/// The strings the builder holds, by index; hashed with foldhash (the workspace's fast
/// hasher) rather than SipHash, which took ~250 instructions per playbook id. The keys are
/// the playbooks' own strings, at most [`TABLE_LIMIT`] of them.
type Known = HashMap<Box<str>, u32, foldhash::fast::RandomState>;

/// Compiles the builder (once per engine).
pub fn builder(env: &Env) -> napi::Result<Builder> {
    let source = builder_source().map_err(|e| napi::Error::from_reason(e.to_string()))?;
    let f: Function<'_, String, Unknown<'static>> = env.run_script(source)?;
    Ok(Builder {
        function: f.create_ref()?,
        strings: Mutex::new(Strings::default()),
    })
}

fn unserialisable(e: &serde_json::Error) -> napi::Error {
    napi::Error::from_reason(format!("the decision cannot be serialised: {e}"))
}

/// The decision as a JavaScript object.
pub fn to_js(env: &Env, builder: &Builder, decision: &Decision) -> napi::Result<Unknown<'static>> {
    // Held until the builder has run, so the table the text refers to is the one it reads.
    // No caller's JS runs meanwhile (ports are called before, inside the decision), so no
    // other decision can come in; `try_lock` all the same, so that one would send its
    // strings as text rather than wait for a lock its own thread holds.
    let Some(mut strings) = builder.strings.try_lock() else {
        let text = positional_text(decision).map_err(|e| unserialisable(&e))?;
        return from_text(env, builder, text);
    };
    let table = Table {
        known: &strings.known,
        fresh: RefCell::new(Vec::new()),
    };
    let text = serde_json::to_string(&Positional(decision, Some(&table)))
        .map_err(|e| unserialisable(&e))?;
    let fresh = table.fresh.into_inner();
    let object = from_text(env, builder, text)?;
    // The builder has added them: record their indices.
    let base = strings.known.len();
    for (i, s) in fresh.into_iter().enumerate() {
        let index = u32::try_from(base + i).unwrap_or(u32::MAX);
        strings.known.insert(s.into(), index);
    }
    Ok(object)
}

/// Builds the object from positional JSON made earlier (by `decideAsync`, off the JS thread).
pub fn from_text(env: &Env, builder: &Builder, text: String) -> napi::Result<Unknown<'static>> {
    builder.function.borrow_back(env)?.call(text)
}

/// Serialises a decision positionally, every string as text.
pub fn positional_text(decision: &Decision) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Positional(decision, None))
}

/// The builder's table while a decision is serialised: the strings it holds, and those
/// this decision adds (their indices follow the known ones, in this order).
struct Table<'a, 'd> {
    known: &'a Known,
    fresh: RefCell<Vec<&'d str>>,
}

/// A string of the playbooks: its index in the builder's table when there is one.
struct Shared<'a, 'd>(&'d str, Option<&'a Table<'a, 'd>>);

impl Serialize for Shared<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Shared(text, Some(table)) = *self else {
            return s.serialize_str(self.0);
        };
        if let Some(&index) = table.known.get(text) {
            return s.serialize_u32(index);
        }
        let mut fresh = table.fresh.borrow_mut();
        let at = match fresh.iter().position(|f| *f == text) {
            Some(at) => at,
            None if table.known.len() + fresh.len() < TABLE_LIMIT => {
                fresh.push(text);
                fresh.len() - 1
            }
            None => return s.serialize_str(text),
        };
        s.serialize_u64((table.known.len() + at) as u64)
    }
}

/// `x[16]` and `x[17]`: how many strings the table held, and those this decision added.
struct Fresh<'a, 'd>(Option<&'a Table<'a, 'd>>);

impl Serialize for Fresh<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_unit(),
            Some(table) => s.collect_seq(table.fresh.borrow().iter()),
        }
    }
}

/// The positional form of a decision: the fields in SPEC order, without keys, then the
/// builder's table (see [`BUILDER`]).
struct Positional<'a, 'd>(&'d Decision, Option<&'a Table<'a, 'd>>);

impl Serialize for Positional<'_, '_> {
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
        let table = self.1;
        let ReceiptRef {
            receipt_id,
            status,
            envelope,
        } = receipt;
        let mut t = s.serialize_tuple(18)?;
        t.serialize_element(decision_id)?;
        t.serialize_element(signal_id)?;
        t.serialize_element(tenant_id)?;
        t.serialize_element(actor_id)?;
        t.serialize_element(decided_at)?;
        t.serialize_element(&Actions(actions, table))?;
        t.serialize_element(&SuppressedList(suppressed, table))?;
        t.serialize_element(&Words(Degraded::ALL, degraded))?;
        t.serialize_element(redacted)?;
        t.serialize_element(policy_snapshot_id)?;
        t.serialize_element(receipt_id)?;
        t.serialize_element(&Word(ReceiptStatus::ALL, *status))?;
        t.serialize_element(envelope)?;
        t.serialize_element(latency_us)?;
        t.serialize_element(latency_warning)?;
        t.serialize_element(explain)?;
        // Last: the strings the fields above added to the table.
        t.serialize_element(&table.map(|t| t.known.len()))?;
        t.serialize_element(&Fresh(table))?;
        t.end()
    }
}

/// The actions, positionally.
struct Actions<'a, 'd>(&'d [Action], Option<&'a Table<'a, 'd>>);

impl Serialize for Actions<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|a| PositionalAction(a, self.1)))
    }
}

struct PositionalAction<'a, 'd>(&'d Action, Option<&'a Table<'a, 'd>>);

impl Serialize for PositionalAction<'_, '_> {
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
        t.serialize_element(&Shared(id, self.1))?;
        t.serialize_element(version)?;
        t.serialize_element(&Word(ActionType::ALL, *kind))?;
        t.serialize_element(&Shared(category, self.1))?;
        t.serialize_element(priority)?;
        t.serialize_element(&Words(Surface::ALL, surfaces))?;
        t.serialize_element(title)?;
        t.serialize_element(text)?;
        t.serialize_element(&FlatRendered(rendered))?;
        t.serialize_element(&Shared(why, self.1))?;
        t.serialize_element(&Shared(trigger, self.1))?;
        t.serialize_element(&FlatEvidence(evidence, self.1))?;
        t.serialize_element(requires_consent)?;
        t.serialize_element(dual_channel)?;
        t.serialize_element(operation)?;
        t.serialize_element(params)?;
        t.serialize_element(experiment)?;
        t.end()
    }
}

/// The rendered messages as one flat array, two values each: the surface (its index) and
/// the message, in surface order (the order of the object the builder makes of them).
struct FlatRendered<'d>(&'d Rendered);

impl Serialize for FlatRendered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_seq(None)?;
        for (surface, text) in self.0.iter() {
            t.serialize_element(&Word(Surface::ALL, *surface))?;
            t.serialize_element(text)?;
        }
        t.end()
    }
}

/// The evidence as one flat array, two values each: the path (a string of the playbooks,
/// see [`Shared`]) and the value.
struct FlatEvidence<'a, 'd>(&'d [Evidence], Option<&'a Table<'a, 'd>>);

impl Serialize for FlatEvidence<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len() * 2)?;
        for Evidence { path, value } in self.0 {
            t.serialize_element(&Shared(path, self.1))?;
            t.serialize_element(value)?;
        }
        t.end()
    }
}

/// The suppressions as one flat array, six values each; a detail is written only when it
/// differs from the previous one's (otherwise `0`).
struct SuppressedList<'a, 'd>(&'d [Suppressed], Option<&'a Table<'a, 'd>>);

impl Serialize for SuppressedList<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len() * 6)?;
        let mut previous: Option<&Detail> = None;
        for item in self.0 {
            let Suppressed {
                playbook: PlaybookRef { id, version },
                action_index,
                kind,
                reason,
                detail,
            } = item;
            t.serialize_element(&Shared(id, self.1))?;
            t.serialize_element(version)?;
            t.serialize_element(action_index)?;
            t.serialize_element(&Word(ActionType::ALL, *kind))?;
            t.serialize_element(&Word(Reason::ALL, *reason))?;
            if previous == Some(detail) {
                t.serialize_element(&0u8)?;
            } else {
                t.serialize_element(detail)?;
            }
            previous = Some(detail);
        }
        t.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(table: &Table<'_, 'a>, items: &[&'a str]) -> String {
        let shared: Vec<Shared<'_, 'a>> = items
            .iter()
            .copied()
            .map(|s| Shared(s, Some(table)))
            .collect();
        serde_json::to_string(&(shared, Fresh(Some(table)))).unwrap_or_default()
    }

    #[test]
    fn known_strings_go_as_indices_new_ones_after_them_once() {
        let mut known = Known::default();
        known.insert("pb-1".into(), 0);
        known.insert("size".into(), 1);
        let table = Table {
            known: &known,
            fresh: RefCell::new(Vec::new()),
        };
        assert_eq!(
            texts(&table, &["size", "pb-2", "pb-1", "pb-2", "pb-3"]),
            r#"[[1,2,0,2,3],["pb-2","pb-3"]]"#
        );
        // Without a table (decideAsync), every string is text.
        assert_eq!(
            serde_json::to_string(&(Shared("pb-1", None), Fresh(None))).unwrap_or_default(),
            r#"["pb-1",null]"#
        );
    }

    #[test]
    fn a_full_table_takes_no_more_strings() {
        let mut known = Known::default();
        for i in 0..TABLE_LIMIT - 1 {
            known.insert(i.to_string().into(), u32::try_from(i).unwrap_or(u32::MAX));
        }
        let table = Table {
            known: &known,
            fresh: RefCell::new(Vec::new()),
        };
        let last = (TABLE_LIMIT - 1).to_string();
        assert_eq!(
            texts(&table, &["new", "newer", "new", "7"]),
            format!(r#"[[{last},"newer",{last},7],["new"]]"#)
        );
    }
}
