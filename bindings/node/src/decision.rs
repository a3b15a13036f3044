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
    ReceiptRef, ReceiptStatus, Suppressed, Surface,
};
use std::collections::HashMap;

use napi::bindgen_prelude::{Function, FunctionRef, Unknown};
use napi::Env;
use parking_lot::Mutex;
use serde::Serialize;

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

/// A vocabulary word as its index in `all` (the core's `ALL`, which lists every value);
/// `None` only if `ALL` missed a value, which the builder would read as `undefined`, so
/// the caller refuses rather than hand out a wrong decision.
fn word<T: PartialEq>(all: &[T], value: &T) -> Option<usize> {
    all.iter().position(|w| w == value)
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

fn unserialisable(e: &impl std::fmt::Display) -> napi::Error {
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
        fresh: Vec::new(),
    };
    let mut w = Writer::new(Some(table));
    w.decision(decision).map_err(|e| unserialisable(&e))?;
    let (text, table) = w.finish();
    let fresh = table.map(|t| t.fresh).unwrap_or_default();
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
pub fn positional_text(decision: &Decision) -> Result<String, Unwritable> {
    let mut w = Writer::new(None);
    w.decision(decision)?;
    Ok(w.finish().0)
}

/// The builder's table while a decision is written: the strings it holds, and those this
/// decision adds (their indices follow the known ones, in this order).
struct Table<'a, 'd> {
    known: &'a Known,
    fresh: Vec<&'d str>,
}

/// Why a decision could not be written: a value `serde_json` refused (in `params`,
/// `explain` or the receipt envelope), or a word missing from its vocabulary.
#[derive(Debug)]
pub enum Unwritable {
    Json(serde_json::Error),
    Word,
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unwritable::Json(e) => write!(f, "{e}"),
            Unwritable::Word => f.write_str("a word missing from its vocabulary"),
        }
    }
}

/// Whether `s` can be written between quotes as it is: no quote, backslash or control
/// character, the only bytes JSON escapes. Checked without branching per byte, so the
/// compiler checks many bytes at a time; a string that fails goes through `serde_json`.
fn plain(s: &str) -> bool {
    s.bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

/// Writes the positional form of a decision (see [`BUILDER`]): the fields in SPEC order,
/// without keys, then the builder's table. Hand-written rather than derived through serde:
/// `serde_json` checks every byte of every string for escapes one at a time, which was a
/// tenth of a Node call (the ids and fingerprints alone, about 650 instructions each).
/// Values of any shape (`params`, `explain`, the envelope, evidence values) still go
/// through `serde_json`.
struct Writer<'a, 'd> {
    out: Vec<u8>,
    table: Option<Table<'a, 'd>>,
}

impl<'a, 'd> Writer<'a, 'd> {
    fn new(table: Option<Table<'a, 'd>>) -> Self {
        Writer {
            out: Vec::with_capacity(2048),
            table,
        }
    }

    fn finish(self) -> (String, Option<Table<'a, 'd>>) {
        // Only whole UTF-8 strings and ASCII were written, so this never replaces anything.
        let text = match String::from_utf8(self.out) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        (text, self.table)
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn comma(&mut self) {
        self.out.push(b',');
    }

    fn str(&mut self, s: &str) -> Result<(), Unwritable> {
        if plain(s) {
            self.out.reserve(s.len() + 2);
            self.out.push(b'"');
            self.out.extend_from_slice(s.as_bytes());
            self.out.push(b'"');
            Ok(())
        } else {
            self.value(s)
        }
    }

    fn opt_str(&mut self, s: Option<&str>) -> Result<(), Unwritable> {
        match s {
            Some(s) => self.str(s),
            None => {
                self.raw(b"null");
                Ok(())
            }
        }
    }

    fn uint(&mut self, n: u64) {
        let mut buffer = itoa::Buffer::new();
        self.out.extend_from_slice(buffer.format(n).as_bytes());
    }

    fn bool(&mut self, b: bool) {
        self.raw(if b { b"true" } else { b"false" });
    }

    fn word<T: PartialEq>(&mut self, all: &[T], value: &T) -> Result<(), Unwritable> {
        let index = word(all, value).ok_or(Unwritable::Word)?;
        self.uint(index as u64);
        Ok(())
    }

    fn words<T: PartialEq>(&mut self, all: &[T], values: &[T]) -> Result<(), Unwritable> {
        self.list(values, |w, v| w.word(all, v))
    }

    /// A JSON array of `items`, each written by `each`.
    fn list<I>(
        &mut self,
        items: impl IntoIterator<Item = I>,
        mut each: impl FnMut(&mut Self, I) -> Result<(), Unwritable>,
    ) -> Result<(), Unwritable> {
        self.out.push(b'[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.comma();
            }
            each(self, item)?;
        }
        self.out.push(b']');
        Ok(())
    }

    fn value(&mut self, v: &(impl Serialize + ?Sized)) -> Result<(), Unwritable> {
        serde_json::to_writer(&mut self.out, v).map_err(Unwritable::Json)
    }

    /// A string of the playbooks: its index in the builder's table when there is one (a
    /// new string is added to the table, unless it is full), otherwise the text.
    fn shared(&mut self, text: &'d str) -> Result<(), Unwritable> {
        let Some(table) = self.table.as_mut() else {
            return self.str(text);
        };
        if let Some(&index) = table.known.get(text) {
            self.uint(u64::from(index));
            return Ok(());
        }
        let at = match table.fresh.iter().position(|f| *f == text) {
            Some(at) => at,
            None if table.known.len() + table.fresh.len() < TABLE_LIMIT => {
                table.fresh.push(text);
                table.fresh.len() - 1
            }
            None => return self.str(text),
        };
        let index = table.known.len() + at;
        self.uint(index as u64);
        Ok(())
    }

    fn decision(&mut self, d: &'d Decision) -> Result<(), Unwritable> {
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
        } = d;
        let ReceiptRef {
            receipt_id,
            status,
            envelope,
        } = receipt;
        self.out.push(b'[');
        self.str(decision_id)?;
        self.comma();
        self.str(signal_id)?;
        self.comma();
        self.str(tenant_id)?;
        self.comma();
        self.str(actor_id)?;
        self.comma();
        self.str(decided_at)?;
        self.comma();
        self.list(actions, Self::action)?;
        self.comma();
        self.suppressed(suppressed)?;
        self.comma();
        self.words(Degraded::ALL, degraded)?;
        self.comma();
        self.list(redacted, |w, r| w.str(r))?;
        self.comma();
        self.opt_str(policy_snapshot_id.as_deref())?;
        self.comma();
        self.opt_str(receipt_id.as_deref())?;
        self.comma();
        self.word(ReceiptStatus::ALL, status)?;
        self.comma();
        self.value(envelope)?;
        self.comma();
        self.uint(*latency_us);
        self.comma();
        self.bool(*latency_warning);
        self.comma();
        self.value(explain)?;
        self.comma();
        // Last: how many strings the table held, and those the fields above added to it.
        match self.table.take() {
            None => self.raw(b"null,null"),
            Some(table) => {
                self.uint(table.known.len() as u64);
                self.comma();
                let written = self.list(&table.fresh, |w, f| w.str(f));
                self.table = Some(table);
                written?;
            }
        }
        self.out.push(b']');
        Ok(())
    }

    fn action(&mut self, a: &'d Action) -> Result<(), Unwritable> {
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
        } = a;
        self.out.push(b'[');
        self.str(action_id)?;
        self.comma();
        self.str(fingerprint)?;
        self.comma();
        self.shared(id)?;
        self.comma();
        self.uint(u64::from(*version));
        self.comma();
        self.word(ActionType::ALL, kind)?;
        self.comma();
        self.shared(category)?;
        self.comma();
        self.uint(u64::from(*priority));
        self.comma();
        self.words(Surface::ALL, surfaces)?;
        self.comma();
        self.str(title)?;
        self.comma();
        self.str(text)?;
        self.comma();
        // The rendered messages, flat: surface (its index) and message, in surface order
        // (the order of the object the builder makes of them).
        self.list(rendered.iter(), |w, (surface, message)| {
            w.word(Surface::ALL, surface)?;
            w.comma();
            w.str(message)
        })?;
        self.comma();
        self.shared(why)?;
        self.comma();
        self.shared(trigger)?;
        self.comma();
        // The evidence, flat: path (a string of the playbooks) and value.
        self.list(evidence, |w, Evidence { path, value }| {
            w.shared(path)?;
            w.comma();
            w.value(value)
        })?;
        self.comma();
        self.bool(*requires_consent);
        self.comma();
        self.bool(*dual_channel);
        self.comma();
        self.opt_str(operation.as_deref())?;
        self.comma();
        self.value(params)?;
        self.comma();
        self.value(experiment)?;
        self.out.push(b']');
        Ok(())
    }

    /// The suppressions as one flat array, six values each; a detail is written only when
    /// it differs from the previous one's (otherwise `0`).
    fn suppressed(&mut self, list: &'d [Suppressed]) -> Result<(), Unwritable> {
        let mut previous: Option<&Detail> = None;
        self.list(list, |w, item| {
            let Suppressed {
                playbook: PlaybookRef { id, version },
                action_index,
                kind,
                reason,
                detail,
            } = item;
            w.shared(id)?;
            w.comma();
            w.uint(u64::from(*version));
            w.comma();
            w.uint(*action_index as u64);
            w.comma();
            w.word(ActionType::ALL, kind)?;
            w.comma();
            w.word(Reason::ALL, reason)?;
            w.comma();
            if previous == Some(detail) {
                w.out.push(b'0');
            } else {
                w.value(detail)?;
            }
            previous = Some(detail);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings as the writer sends them, then the table's new strings.
    fn texts(known: &Known, items: &[&str]) -> String {
        let mut w = Writer::new(Some(Table {
            known,
            fresh: Vec::new(),
        }));
        w.list(items, |w, s| w.shared(s)).unwrap_or_default();
        let (text, table) = w.finish();
        let fresh = table.map(|t| t.fresh).unwrap_or_default();
        format!(
            "{text}{}",
            serde_json::to_string(&fresh).unwrap_or_default()
        )
    }

    #[test]
    fn known_strings_go_as_indices_new_ones_after_them_once() {
        let mut known = Known::default();
        known.insert("pb-1".into(), 0);
        known.insert("size".into(), 1);
        assert_eq!(
            texts(&known, &["size", "pb-2", "pb-1", "pb-2", "pb-3"]),
            r#"[1,2,0,2,3]["pb-2","pb-3"]"#
        );
        // Without a table (decideAsync), every string is text.
        let mut w = Writer::new(None);
        w.shared("pb-1").unwrap_or_default();
        assert_eq!(w.finish().0, r#""pb-1""#);
    }

    #[test]
    fn a_full_table_takes_no_more_strings() {
        let mut known = Known::default();
        for i in 0..TABLE_LIMIT - 1 {
            known.insert(i.to_string().into(), u32::try_from(i).unwrap_or(u32::MAX));
        }
        let last = (TABLE_LIMIT - 1).to_string();
        assert_eq!(
            texts(&known, &["new", "newer", "new", "7"]),
            format!(r#"[{last},"newer",{last},7]["new"]"#)
        );
    }

    #[test]
    fn strings_are_written_exactly_as_serde_json_writes_them() {
        let cases = [
            "",
            "plain text, 420 lines",
            "quote \" and backslash \\",
            "controls \n \t \r \u{1} \u{1f} \u{7f}",
            "unicode é ✓ 𝄞 \u{2028}\u{2029}",
            "</script>",
        ];
        for case in cases {
            let mut w = Writer::new(None);
            w.str(case).unwrap_or_default();
            assert_eq!(
                w.finish().0,
                serde_json::to_string(case).unwrap_or_default(),
                "{case:?}"
            );
        }
    }
}
