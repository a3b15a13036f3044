//! The decision into JavaScript, on the hot path of every `decide`.
//!
//! N-API builds objects one property at a time, which is slower than V8 building them from
//! object literals in JavaScript. So the decision crosses *packed* (see [`Packed`]): its
//! numbers (counts, vocabulary indices, flags, the lengths of its texts) as the code units
//! of one string, read with `charCodeAt`; its texts concatenated in a second string,
//! which the builder slices; and only the values that need JSON (`params`, `explain`,
//! experiments, the receipt envelope, unusual evidence values) as a JSON array, absent
//! from most decisions. A small builder, compiled once per engine, reads the three in
//! step and rebuilds the SPEC §4 objects with object literals. The result is identical,
//! key order included: the shared vectors compare it with Rust's own serialisation, and
//! the structs are destructured exhaustively below, so a field added to the core's
//! decision does not compile until it is added here and in the builder.
//!
//! Earlier forms, and what each cost (`docs/perf-notes/bind.md`, `node.md`, `round6.md`,
//! `round7.md`): N-API objects; `JSON.parse` of the keyed decision; `JSON.parse` of a
//! positional array, which still spent most of a call tokenising numbers and making
//! arrays the builder dropped. Packed, the builder parses nothing on a typical decision:
//! a nudge-1k decision's transport and building went from about 4.2 µs to 0.9 µs.
//!
//! The strings of the playbooks (ids, categories, the rationale's `why`, `trigger` and
//! evidence paths) are sent once per engine: the builder keeps a table of those it has
//! seen, and a synchronous `decide` sends the index of a string already in it. The table
//! grows only with what the playbooks say, and stops at [`TABLE_LIMIT`] entries; a
//! decision made off the JS thread (`decideAsync`) sends every string as text, the
//! builder taking either form. A suppression whose detail is the previous one's (all the
//! `max_actions` suppressions of a decision) carries no text.

use mmm_engine::{
    Action, ActionType, Decision, Degraded, Detail, Evidence, PlaybookRef, Rationale, Reason,
    ReceiptRef, ReceiptStatus, Suppressed, Surface,
};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;

use napi::bindgen_prelude::{FnArgs, Function, FunctionRef, Unknown, Utf16String};
use napi::Env;
use parking_lot::Mutex;
use serde::Serialize;

/// Rebuilds a decision from its packed form (see [`Packed`]); the order of the reads
/// matches [`Writer::decision`], and `@WORDS@` becomes the vocabulary tables (see
/// [`builder_source`]). `TABLE` holds the playbooks' strings sent so far (see
/// [`Strings`]); the first number of a decision is how many of them the Rust side has
/// recorded, plus one (`0` when this decision uses no table: `decideAsync`), and `F` the
/// strings this decision adds to them. Truncating to that count first drops what a failed
/// call may have added without the Rust side recording it.
///
/// Objects are made with literals, in SPEC order, so their shape and key order are those
/// of the serde form.
const BUILDER: &str = r"(function () {
  'use strict'
  @WORDS@
  const TABLE = []
  return function mmmDecision(I, T, J, F) {
    let p = 0
    let q = 0
    let j = 0
    const values = J === null ? null : JSON.parse(J)
    const int = () => {
      let c = I.charCodeAt(p++)
      if (c < 0x8000) return c
      let v = c & 0x7fff
      let m = 0x8000
      for (;;) {
        c = I.charCodeAt(p++)
        if (c < 0x8000) return v + c * m
        v += (c & 0x7fff) * m
        m *= 0x8000
      }
    }
    const text = () => {
      const n = int()
      return T.slice(q, (q += n))
    }
    const optText = () => {
      const n = int()
      return n === 0 ? null : T.slice(q, (q += n - 1))
    }
    const json = () => values[j++]
    const optJson = () => (int() === 0 ? null : values[j++])
    const shared = () => {
      const i = int()
      return i === 0 ? text() : TABLE[i - 1]
    }
    const value = () => {
      const tag = int()
      return tag === 1 ? int() : tag === 2 ? text() : values[j++]
    }
    const base = int()
    if (base !== 0) {
      if (TABLE.length !== base - 1) TABLE.length = base - 1
      if (F !== null) for (const s of JSON.parse(F)) TABLE.push(s)
    }
    const decision_id = text()
    const signal_id = text()
    const tenant_id = text()
    const actor_id = text()
    const decided_at = text()
    const actions = []
    for (let n = int(); n > 0; n--) {
      const action_id = text()
      const fingerprint = text()
      const playbook = { id: shared(), version: int() }
      const type = TYPES[int()]
      const category = shared()
      const priority = int()
      const surfaces = []
      for (let k = int(); k > 0; k--) surfaces.push(SURFACES[int()])
      const title = text()
      const message = text()
      const rendered = {}
      for (let k = int(); k > 0; k--) {
        const surface = SURFACES[int()]
        rendered[surface] = text()
      }
      const why = shared()
      const trigger = shared()
      const evidence = []
      for (let k = int(); k > 0; k--) {
        const path = shared()
        evidence.push({ path, value: value() })
      }
      const flags = int()
      const operation = optText()
      const params = optJson()
      const experiment = optJson()
      actions.push({
        action_id, fingerprint, playbook, type, category, priority, surfaces, title, text: message,
        rendered, rationale: { why, trigger, evidence }, requires_consent: (flags & 1) !== 0,
        dual_channel: (flags & 2) !== 0, operation, params, experiment,
      })
    }
    const suppressed = []
    let detail = null
    for (let n = int(); n > 0; n--) {
      const playbook = { id: shared(), version: int() }
      const action_index = int()
      const type = TYPES[int()]
      const reason = REASONS[int()]
      if (int() !== 0) detail = text()
      suppressed.push({ playbook, action_index, type, reason, detail })
    }
    const degraded = []
    for (let n = int(); n > 0; n--) degraded.push(DEGRADED[int()])
    const redacted = []
    for (let n = int(); n > 0; n--) redacted.push(text())
    const policy_snapshot_id = optText()
    const receipt_id = optText()
    const status = STATUSES[int()]
    const receipt = int() === 0
      ? { receipt_id, status }
      : { receipt_id, status, envelope: json() }
    const latency_us = value()
    const latency_warning = int() !== 0
    const explain = optJson()
    return {
      decision_id, signal_id, tenant_id, actor_id, decided_at, actions, suppressed, degraded,
      redacted, policy_snapshot_id, receipt, latency_us, latency_warning, explain,
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

/// The builder's arguments: the packed numbers, the texts, the values only JSON can
/// carry, and the table's new strings.
type Args = FnArgs<(Utf16String, String, Option<String>, Option<String>)>;

/// The builder, compiled for one engine, with what the Rust side knows of its table.
pub struct Builder {
    function: FunctionRef<Args, Unknown<'static>>,
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
    let f: Function<'_, Args, Unknown<'static>> = env.run_script(source)?;
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
    // Held until the builder has run, so the table the numbers refer to is the one it
    // reads. No caller's JS runs meanwhile (ports are called before, inside the decision),
    // so no other decision can come in; `try_lock` all the same, so that one would send
    // its strings as text rather than wait for a lock its own thread holds.
    let Some(mut strings) = builder.strings.try_lock() else {
        return from_packed(
            env,
            builder,
            pack(decision).map_err(|e| unserialisable(&e))?,
        );
    };
    let table = Table {
        known: &strings.known,
        fresh: Vec::new(),
    };
    let mut w = Writer::new(Some(table));
    w.decision(decision).map_err(|e| unserialisable(&e))?;
    let (packed, table) = w.finish();
    let fresh = table.map(|t| t.fresh).unwrap_or_default();
    let object = from_packed(env, builder, packed)?;
    // The builder has added them: record their indices.
    let base = strings.known.len();
    for (i, s) in fresh.into_iter().enumerate() {
        let index = u32::try_from(base + i).unwrap_or(u32::MAX);
        strings.known.insert(s.into(), index);
    }
    Ok(object)
}

/// Builds the object from a decision packed earlier (by `decideAsync`, off the JS thread).
pub fn from_packed(env: &Env, builder: &Builder, packed: Packed) -> napi::Result<Unknown<'static>> {
    let Packed {
        numbers,
        texts,
        json,
        fresh,
    } = packed;
    builder
        .function
        .borrow_back(env)?
        .call((Utf16String::from(numbers), texts, json, fresh).into())
}

/// Packs a decision, every string as text.
pub fn pack(decision: &Decision) -> Result<Packed, Unwritable> {
    let mut w = Writer::new(None);
    w.decision(decision)?;
    Ok(w.finish().0)
}

/// A decision as the builder reads it: three streams, read in step by the builder.
///
/// - `numbers`, a JavaScript string of UTF-16 code units read with `charCodeAt`: every
///   count, index, flag and small number, and the length of every text. A number below
///   2¹⁵ is one unit; a larger one is written 15 bits at a time, low bits first, each unit
///   but the last with its top bit set.
/// - `texts`: every string of the decision, one after the other, sliced out by the
///   builder with the lengths of `numbers` (in UTF-16 units, JavaScript's string length).
/// - `json`: the values only JSON can carry (`params`, `explain`, experiments, the receipt
///   envelope, evidence values other than strings and safe integers), as one JSON array,
///   or `None` when the decision has none (most decisions).
///
/// `JSON.parse` of a keyed decision spent most of its time tokenising and on numbers; here
/// a number is one `charCodeAt`, and a string a slice of one string made once, so nothing
/// is parsed on most decisions (`docs/perf-notes/round7.md`).
pub struct Packed {
    numbers: Vec<u16>,
    texts: String,
    json: Option<String>,
    /// The strings this decision adds to the builder's table, as a JSON array.
    fresh: Option<String>,
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

/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`);
/// larger ones travel as JSON, so that they round as `JSON.parse` rounds them.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// A string's length in UTF-16 code units (JavaScript's `length`).
fn js_len(s: &str) -> u64 {
    let units = if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    };
    units as u64
}

/// Packs a decision (see [`Packed`]), in the order the builder reads it.
struct Writer<'a, 'd> {
    numbers: Vec<u16>,
    texts: String,
    json: Vec<u8>,
    table: Option<Table<'a, 'd>>,
}

impl<'a, 'd> Writer<'a, 'd> {
    fn new(table: Option<Table<'a, 'd>>) -> Self {
        Writer {
            numbers: Vec::with_capacity(256),
            texts: String::with_capacity(1024),
            json: Vec::new(),
            table,
        }
    }

    fn finish(self) -> (Packed, Option<Table<'a, 'd>>) {
        let json = if self.json.is_empty() {
            None
        } else {
            let mut text = Vec::with_capacity(self.json.len() + 2);
            text.push(b'[');
            text.extend_from_slice(&self.json);
            text.push(b']');
            // serde_json writes UTF-8 only, so this never replaces anything.
            Some(
                String::from_utf8(text)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            )
        };
        let fresh = match &self.table {
            Some(t) if !t.fresh.is_empty() => serde_json::to_string(&t.fresh).ok(),
            _ => None,
        };
        let packed = Packed {
            numbers: self.numbers,
            texts: self.texts,
            json,
            fresh,
        };
        (packed, self.table)
    }

    fn int(&mut self, mut n: u64) {
        while n >= 0x8000 {
            self.numbers.push(0x8000 | (n & 0x7fff) as u16);
            n >>= 15;
        }
        self.numbers.push(n as u16);
    }

    fn count(&mut self, n: usize) {
        self.int(n as u64);
    }

    fn text(&mut self, s: &str) {
        self.int(js_len(s));
        self.texts.push_str(s);
    }

    /// `None` as `0`, a string as its length plus one, then the string.
    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            None => self.int(0),
            Some(s) => {
                self.int(js_len(s) + 1);
                self.texts.push_str(s);
            }
        }
    }

    /// A sentence written through `Display`, straight into the texts.
    fn display(&mut self, d: &impl std::fmt::Display) {
        let at = self.texts.len();
        let _ = write!(self.texts, "{d}");
        let len = self.texts.get(at..).map_or(0, js_len);
        self.int(len);
    }

    fn json(&mut self, v: &(impl Serialize + ?Sized)) -> Result<(), Unwritable> {
        if !self.json.is_empty() {
            self.json.push(b',');
        }
        serde_json::to_writer(&mut self.json, v).map_err(Unwritable::Json)
    }

    /// `None` as `0`; a value as `1`, then the value in the JSON stream.
    fn opt_json<T: Serialize>(&mut self, v: Option<&T>) -> Result<(), Unwritable> {
        match v {
            None => {
                self.int(0);
                Ok(())
            }
            Some(v) => {
                self.int(1);
                self.json(v)
            }
        }
    }

    /// A value of any shape: `1` and a safe non-negative integer, `2` and a string, or `0`
    /// and the value in the JSON stream.
    fn value(&mut self, v: &Value) -> Result<(), Unwritable> {
        match v {
            Value::Number(n) if n.as_u64().is_some_and(|u| u <= MAX_SAFE) => {
                self.int(1);
                self.int(n.as_u64().unwrap_or_default());
                Ok(())
            }
            Value::String(s) => {
                self.int(2);
                self.text(s);
                Ok(())
            }
            other => {
                self.int(0);
                self.json(other)
            }
        }
    }

    /// A `u64` written as [`Writer::value`] writes a number.
    fn number(&mut self, n: u64) -> Result<(), Unwritable> {
        if n <= MAX_SAFE {
            self.int(1);
            self.int(n);
            Ok(())
        } else {
            self.int(0);
            self.json(&n)
        }
    }

    fn word<T: PartialEq>(&mut self, all: &[T], value: &T) -> Result<(), Unwritable> {
        let index = word(all, value).ok_or(Unwritable::Word)?;
        self.count(index);
        Ok(())
    }

    /// A string of the playbooks: its index in the builder's table plus one when there is
    /// a table (a new string is added to it, unless it is full), otherwise `0` and the
    /// text.
    fn shared(&mut self, text: &'d str) {
        let Some(table) = self.table.as_mut() else {
            self.int(0);
            return self.text(text);
        };
        if let Some(&index) = table.known.get(text) {
            return self.int(u64::from(index) + 1);
        }
        let at = match table.fresh.iter().position(|f| *f == text) {
            Some(at) => at,
            None if table.known.len() + table.fresh.len() < TABLE_LIMIT => {
                table.fresh.push(text);
                table.fresh.len() - 1
            }
            None => {
                self.int(0);
                return self.text(text);
            }
        };
        let index = table.known.len() + at;
        self.count(index + 1);
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
        // First: how many strings the table held (plus one), `0` for no table.
        let base = self.table.as_ref().map_or(0, |t| t.known.len() + 1);
        self.count(base);
        self.text(decision_id);
        self.text(signal_id);
        self.text(tenant_id);
        self.text(actor_id);
        self.text(decided_at);
        self.count(actions.len());
        for a in actions {
            self.action(a)?;
        }
        self.suppressed(suppressed)?;
        self.count(degraded.len());
        for code in degraded {
            self.word(Degraded::ALL, code)?;
        }
        self.count(redacted.len());
        for r in redacted {
            self.text(r);
        }
        self.opt_text(policy_snapshot_id.as_deref());
        self.opt_text(receipt_id.as_deref());
        self.word(ReceiptStatus::ALL, status)?;
        self.opt_json(envelope.as_ref())?;
        self.number(*latency_us)?;
        self.int(u64::from(*latency_warning));
        self.opt_json(explain.as_ref())
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
        self.text(action_id);
        self.text(fingerprint);
        self.shared(id);
        self.int(u64::from(*version));
        self.word(ActionType::ALL, kind)?;
        self.shared(category);
        self.int(u64::from(*priority));
        self.count(surfaces.len());
        for s in surfaces.iter() {
            self.word(Surface::ALL, s)?;
        }
        self.text(title);
        self.text(text);
        // The rendered messages in surface order (the order of the object the builder
        // makes of them).
        self.count(rendered.iter().count());
        for (surface, message) in rendered.iter() {
            self.word(Surface::ALL, surface)?;
            self.text(message);
        }
        self.shared(why);
        self.shared(trigger);
        self.count(evidence.len());
        for Evidence { path, value } in evidence {
            self.shared(path);
            self.value(value)?;
        }
        self.int(u64::from(*requires_consent) | u64::from(*dual_channel) << 1);
        self.opt_text(operation.as_deref());
        self.opt_json(params.as_ref())?;
        self.opt_json(experiment.as_ref())
    }

    /// The suppressions; a detail is written only when it differs from the previous
    /// one's (`0` instead: all the `max_actions` suppressions of a decision).
    fn suppressed(&mut self, list: &'d [Suppressed]) -> Result<(), Unwritable> {
        self.count(list.len());
        let mut previous: Option<&Detail> = None;
        for item in list {
            let Suppressed {
                playbook: PlaybookRef { id, version },
                action_index,
                kind,
                reason,
                detail,
            } = item;
            self.shared(id);
            self.int(u64::from(*version));
            self.count(*action_index);
            self.word(ActionType::ALL, kind)?;
            self.word(Reason::ALL, reason)?;
            if previous == Some(detail) {
                self.int(0);
            } else {
                self.int(1);
                self.display(detail);
            }
            previous = Some(detail);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the numbers back as the builder does.
    fn ints(units: &[u16]) -> Vec<u64> {
        let mut out = Vec::new();
        let mut it = units.iter();
        while let Some(&c) = it.next() {
            let (mut v, mut shift, mut c) = (0u64, 0u32, c);
            while c >= 0x8000 {
                v |= u64::from(c & 0x7fff) << shift;
                shift += 15;
                c = it.next().copied().unwrap_or_default();
            }
            out.push(v | u64::from(c) << shift);
        }
        out
    }

    /// The numbers and the table's new strings the writer sends for `items`.
    fn shared(known: &Known, items: &[&'static str]) -> (Vec<u64>, String, Option<String>) {
        let mut w = Writer::new(Some(Table {
            known,
            fresh: Vec::new(),
        }));
        for item in items {
            w.shared(item);
        }
        let (packed, _) = w.finish();
        (ints(&packed.numbers), packed.texts, packed.fresh)
    }

    #[test]
    fn numbers_of_any_size_read_back() {
        let cases = [0, 1, 0x7fff, 0x8000, 0xffff, 1 << 30, MAX_SAFE, u64::MAX];
        let mut w = Writer::new(None);
        for n in cases {
            w.int(n);
        }
        assert_eq!(ints(&w.finish().0.numbers), cases);
    }

    #[test]
    fn known_strings_go_as_indices_new_ones_after_them_once() {
        let mut known = Known::default();
        known.insert("pb-1".into(), 0);
        known.insert("size".into(), 1);
        let (numbers, texts, fresh) = shared(&known, &["size", "pb-2", "pb-1", "pb-2", "pb-3"]);
        assert_eq!(numbers, [2, 3, 1, 3, 4]);
        assert_eq!(texts, "");
        assert_eq!(fresh.as_deref(), Some(r#"["pb-2","pb-3"]"#));
        // Without a table (decideAsync), every string is text.
        let mut w = Writer::new(None);
        w.shared("pb-1");
        let (packed, _) = w.finish();
        assert_eq!(
            (ints(&packed.numbers), packed.texts.as_str()),
            (vec![0, 4], "pb-1")
        );
        assert_eq!(packed.fresh, None);
    }

    #[test]
    fn a_full_table_takes_no_more_strings() {
        let mut known = Known::default();
        for i in 0..TABLE_LIMIT - 1 {
            known.insert(i.to_string().into(), u32::try_from(i).unwrap_or(u32::MAX));
        }
        let last = TABLE_LIMIT as u64;
        let (numbers, texts, fresh) = shared(&known, &["new", "newer", "new", "7"]);
        assert_eq!(numbers, [last, 0, 5, last, 8]);
        assert_eq!(texts, "newer");
        assert_eq!(fresh.as_deref(), Some(r#"["new"]"#));
    }

    #[test]
    fn text_lengths_are_javascript_lengths() {
        let cases = [
            "",
            "plain text, 420 lines",
            "quote \" and backslash \\",
            "controls \n \t \r \u{0} \u{1f} \u{7f}",
            "unicode é ✓ 𝄞 \u{2028}\u{2029}",
        ];
        for case in cases {
            let mut w = Writer::new(None);
            w.text(case);
            let (packed, _) = w.finish();
            let units = case.encode_utf16().count() as u64;
            assert_eq!(ints(&packed.numbers), [units], "{case:?}");
            assert_eq!(packed.texts, case);
        }
    }

    #[test]
    fn values_travel_as_numbers_texts_or_json() {
        let mut w = Writer::new(None);
        for v in [
            serde_json::json!(207),
            serde_json::json!("main"),
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!(MAX_SAFE + 1),
            serde_json::json!({"a": [true, null]}),
        ] {
            w.value(&v).unwrap_or_default();
        }
        let (packed, _) = w.finish();
        assert_eq!(ints(&packed.numbers), [1, 207, 2, 4, 0, 0, 0, 0]);
        assert_eq!(packed.texts, "main");
        assert_eq!(
            packed.json.as_deref(),
            Some(r#"[-1,1.5,9007199254740992,{"a":[true,null]}]"#)
        );
    }
}
