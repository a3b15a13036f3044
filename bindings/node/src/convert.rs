//! Values across the boundary. JavaScript data goes to the engine through `JSON.stringify`
//! and comes back through `JSON.parse` (decisions through their own builder, see
//! `decision.rs`), so the binding sees exactly what a JSON API would:
//! `undefined` properties are dropped, a `Date` becomes its ISO string, `toJSON` is
//! honoured, and a cycle is an error rather than a crash. Both directions run in V8's own
//! JSON code, which is faster than walking objects property by property through N-API.
//!
//! Numbers follow the engine's rules (`mmm_engine::number`), which `JSON.stringify` alone
//! would break: NaN and infinities (which it turns into `null`) and integral numbers
//! beyond the safe integers (already rounded, perhaps) are refused naming their path; a
//! `BigInt` (which it cannot print) is exact and accepted up to 64 bits; `-0` prints as `0`,
//! as everywhere. The fast path is one plain `stringify`; only output that could hide
//! such a number (a `null`, an exponent, a long run of digits) or a `stringify` that
//! threw is checked again by a replacer that knows each value's path.

use mmm_engine::number::{refused, NumberIssue};
use mmm_engine::GivenSignal;
use napi::bindgen_prelude::{
    Buffer, FnArgs, FromNapiValue, Function, FunctionRef, JsObjectValue, Unknown,
};
use napi::{Env, JsValue, ValueType};
use serde_json::Value;

use crate::errors::{arg_type, arg_value};
use crate::json::json_object;

/// `JSON.stringify(value)`; `None` for what JSON cannot express at the top level
/// (`undefined`, a function). A thrown `TypeError` (a cycle, a `BigInt`) comes back as
/// `Err` with its message.
pub fn stringify(
    env: &Env,
    cached: Option<&Stringify>,
    value: Unknown<'_>,
) -> Result<Option<String>, String> {
    let run = || -> napi::Result<Option<String>> {
        let stringify: Function<'_, Unknown<'_>, Option<String>> = match cached {
            Some(cached) => cached.function(env)?,
            None => json_object(env)?.get_named_property("stringify")?,
        };
        stringify.call(value)
    };
    run().map_err(|e| e.reason)
}

/// `JSON.stringify`, looked up once by an engine (from the global `JSON`, as it was at the
/// engine's creation) instead of twice per decision: the two property reads cost about a
/// fifth of reading a signal.
pub struct Stringify(FunctionRef<Unknown<'static>, Option<String>>);

impl Stringify {
    pub fn new(env: &Env) -> napi::Result<Stringify> {
        let f: Function<'_, Unknown<'static>, Option<String>> =
            json_object(env)?.get_named_property("stringify")?;
        Ok(Stringify(f.create_ref()?))
    }

    fn function<'e>(
        &self,
        env: &'e Env,
    ) -> napi::Result<Function<'e, Unknown<'e>, Option<String>>> {
        // The reference is typed for values of any scope; the function it holds is the
        // same whatever the arguments' lifetime.
        Function::from_unknown(self.0.borrow_back(env)?.to_unknown())
    }
}

/// A value the engine does not accept: where (a JSON path, `""` for the value itself)
/// and why.
#[derive(Debug)]
pub struct Refused {
    /// The JSON path, e.g. `payload.x` or `items[3]`.
    pub path: String,
    /// Why, in the engine's words.
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

impl Refused {
    fn unreadable(why: impl std::fmt::Display) -> Refused {
        Refused {
            path: String::new(),
            message: format!(
                "cannot be read as JSON: {}",
                mmm_engine::Quoted(&why.to_string())
            ),
        }
    }
}

/// `JSON.stringify` with a replacer that applies the number rules: returns `[text]`,
/// `[null, path, issue, literal]` for a refused number, or `[text, bigints]` where each
/// BigInt became the string `marker + digits`.
const CHECKED_STRINGIFY: &str = r#"(function (value, marker) {
  const paths = new Map();
  let problem = null;
  let bigints = 0;
  const text = JSON.stringify(value, function (key, v) {
    if (problem !== null) return undefined;
    const parent = paths.get(this);
    const path = parent === undefined ? '' : Array.isArray(this) ? parent + '[' + key + ']'
      : parent === '' ? key : parent + '.' + key;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) problem = [path, 'not_finite', String(v)];
      else if (Number.isInteger(v) && !Number.isSafeInteger(v)) problem = [path, 'unsafe', String(v)];
      return v;
    }
    if (typeof v === 'bigint') {
      if (v < -(2n ** 63n) || v > 2n ** 64n - 1n) { problem = [path, 'too_large', v.toString()]; return undefined; }
      bigints += 1;
      return marker + v.toString();
    }
    if (v !== null && typeof v === 'object') paths.set(v, path);
    return v;
  });
  if (problem !== null) return [null, problem[0], problem[1], problem[2]];
  return [text === undefined ? null : text, bigints];
})"#;

/// Whether plain `stringify` output could hide a number the rules refuse: NaN and
/// infinities print as `null`, large numbers as long digit runs or with an exponent.
fn suspicious(text: &str) -> bool {
    if text.contains("null") || text.contains("e+") {
        return true;
    }
    let mut run = 0;
    for b in text.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 16 {
            return true;
        }
    }
    false
}

/// Replaces every string `marker + digits` with that integer.
fn restore_bigints(value: &mut Value, marker: &str) {
    match value {
        Value::String(s) => {
            if let Some(digits) = s.strip_prefix(marker) {
                let n = digits
                    .parse::<i64>()
                    .map(serde_json::Number::from)
                    .or_else(|_| digits.parse::<u64>().map(serde_json::Number::from));
                if let Ok(n) = n {
                    *value = Value::Number(n);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| restore_bigints(v, marker)),
        Value::Object(map) => map.values_mut().for_each(|v| restore_bigints(v, marker)),
        _ => {}
    }
}

/// The slow path: `stringify` again with the replacer that knows paths.
fn checked_slow(env: &Env, value: Unknown<'_>) -> Result<Option<String>, Refused> {
    use std::hash::{BuildHasher, Hasher};
    // A marker no caller can guess, so no string of theirs is read as a BigInt.
    let nonce = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let marker = format!("\u{0}mmm-bigint-{nonce:016x}:");
    let run = || -> napi::Result<napi::bindgen_prelude::Array<'_>> {
        let check: Function<
            '_,
            napi::bindgen_prelude::FnArgs<(Unknown<'_>, String)>,
            napi::bindgen_prelude::Array<'_>,
        > = env.run_script(CHECKED_STRINGIFY)?;
        check.call((value, marker.clone()).into())
    };
    let result = run().map_err(|e| Refused::unreadable(&e.reason))?;
    let text: Option<String> = result
        .get(0)
        .map_err(|e| Refused::unreadable(&e.reason))?
        .flatten();
    let Some(text) = text else {
        let part = |i| -> String { result.get::<String>(i).ok().flatten().unwrap_or_default() };
        let (path, issue, literal) = (part(1), part(2), part(3));
        if issue.is_empty() {
            // `undefined` or a function at the top: JSON `null`.
            return Ok(None);
        }
        let issue = match issue.as_str() {
            "not_finite" => NumberIssue::NotFinite,
            "too_large" => NumberIssue::TooLarge,
            _ => NumberIssue::UnsafeInteger,
        };
        return Err(Refused {
            path,
            message: refused(issue, &literal),
        });
    };
    let bigints: u32 = result.get(1).ok().flatten().unwrap_or(0);
    if bigints == 0 {
        return Ok(Some(text));
    }
    let mut parsed: Value = serde_json::from_str(&text).map_err(Refused::unreadable)?;
    restore_bigints(&mut parsed, &marker);
    serde_json::to_string(&parsed)
        .map(Some)
        .map_err(Refused::unreadable)
}

/// A JavaScript value as JSON text under the engine's number rules; `None` for what JSON
/// cannot express at the top level (`undefined`, a function).
pub fn checked_text(
    env: &Env,
    cached: Option<&Stringify>,
    value: Unknown<'_>,
) -> Result<Option<String>, Refused> {
    match stringify(env, cached, value) {
        Ok(Some(text)) if !suspicious(&text) => Ok(Some(text)),
        Ok(None) => Ok(None),
        // A `null` that was NaN, a number past 2^53, a BigInt (stringify throws) or a
        // cycle (the replacer's stringify throws again, with the reason).
        Ok(Some(_)) | Err(_) => checked_slow(env, value),
    }
}

/// A JavaScript value as the engine's JSON; `undefined` and `null` are JSON `null`.
pub fn from_js(env: &Env, value: Unknown<'_>) -> Result<Value, Refused> {
    from_js_with(env, None, value)
}

/// [`from_js`] with an engine's [`Stringify`].
pub fn from_js_with(
    env: &Env,
    cached: Option<&Stringify>,
    value: Unknown<'_>,
) -> Result<Value, Refused> {
    match checked_text(env, cached, value)? {
        None => Ok(Value::Null),
        Some(text) => serde_json::from_str(&text).map_err(Refused::unreadable),
    }
}

/// Key material: a `Buffer` (the 32 bytes) or a hex string (its text, which the core
/// decodes); anything else is a `TypeError` naming the argument.
pub fn key_from_unknown(env: &Env, value: Unknown<'_>, what: &str) -> napi::Result<Vec<u8>> {
    if value.is_buffer()? {
        return Ok(Buffer::from_unknown(value)?.to_vec());
    }
    if value.get_type()? == ValueType::String {
        let text = String::from_unknown(value)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(arg_value(env, format!("`{what}` must not be empty")));
        }
        return Ok(text.as_bytes().to_vec());
    }
    Err(arg_type(
        env,
        format!("`{what}` must be a Buffer of 32 bytes or a hex string"),
    ))
}

/// The decision's `now`: an RFC 3339 string or a `Date`.
pub fn now_from(env: &Env, value: Unknown<'_>) -> napi::Result<Option<jiff::Timestamp>> {
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::String => {
            let text = String::from_unknown(value)?;
            mmm_engine::parse_timestamp(&text)
                .map(Some)
                .map_err(|e| arg_value(env, format!("`now`: {e}")))
        }
        ValueType::Object if value.is_date()? => {
            let ms = value.coerce_to_number()?.get_double()?;
            if !ms.is_finite() {
                return Err(arg_value(env, "`now` is an invalid Date"));
            }
            // Whole milliseconds: a Date has no finer resolution.
            #[expect(
                clippy::cast_possible_truncation,
                reason = "checked finite; Dates are whole ms"
            )]
            let ms = ms as i64;
            jiff::Timestamp::from_millisecond(ms)
                .map(Some)
                .map_err(|_| arg_value(env, "`now` is out of range"))
        }
        _ => Err(arg_type(env, "`now` must be an RFC 3339 string or a Date")),
    }
}

/// The fast path of `decide`'s arguments, in one call into JavaScript (compiled once per
/// engine): the options read there, and the signal and the context through
/// `JSON.stringify`, returned as one string `E N \0 F signal [\0 context]`:
///
/// - `E` is `1` for `explain: true`, else `0`;
/// - `N` is `-` for no `now`, `+` and the string given, or `d` and a `Date`'s milliseconds;
/// - `F` is `F` when the texts follow, or `S` alone when the signal or the context must be
///   read the careful way (`stringify` threw or dropped it);
///
/// or `undefined` when the options are not the common case (another key, a `now` or
/// `explain` of another type, an invalid `Date`), and the caller reads every argument on
/// its own, which gives the errors. The options are read first, so a getter among them
/// runs once whichever way the signal goes. Reading the options through N-API (their
/// keys, then each property) had cost as much as stringifying the signal.
const ARGUMENTS: &str = r"(function () {
  'use strict'
  const stringify = JSON.stringify
  const getTime = Date.prototype.getTime
  return function mmmArguments(signal, context, options) {
    let explain = false
    let now = '-'
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') return undefined
      for (const key in options) {
        const v = options[key]
        if (key === 'now') {
          if (typeof v === 'string') {
            if (v.includes('\0')) return undefined
            now = '+' + v
          } else if (v instanceof Date) {
            let ms
            try {
              ms = getTime.call(v)
            } catch {
              return undefined
            }
            if (!Number.isFinite(ms)) return undefined
            now = 'd' + ms
          } else if (v === undefined || v === null) now = '-'
          else return undefined
        } else if (key === 'explain') {
          if (typeof v === 'boolean') explain = v
          else if (v === undefined || v === null) explain = false
          else return undefined
        } else return undefined
      }
    }
    const head = (explain ? '1' : '0') + now + '\0'
    let s, c
    try {
      s = stringify(signal)
      c = context === undefined || context === null ? null : stringify(context)
    } catch {
      return head + 'S'
    }
    if (s === undefined || c === undefined) return head + 'S'
    return c === null ? head + 'F' + s : head + 'F' + s + '\0' + c
  }
})()";

/// `decide`'s arguments read by [`ARGUMENTS`].
pub struct Arguments(FunctionRef<ArgumentsIn, Option<String>>);

type ArgumentsIn = FnArgs<(
    Unknown<'static>,
    Option<Unknown<'static>>,
    Option<Unknown<'static>>,
)>;

/// What the fast path read: the options, and the signal and context unless they must be
/// read the careful way.
pub struct Read {
    pub now: Option<jiff::Timestamp>,
    pub explain: bool,
    /// The signal and the context, or `None` to read them with [`from_js_with`].
    pub inputs: Option<(GivenSignal, Option<Value>)>,
}

/// The signal of a JSON text as `decide` hands it to the engine: an object's members as
/// they are parsed (no map is built and hashed only for the engine to take it apart), or
/// the value as it is.
pub fn parse_signal(text: &str) -> serde_json::Result<GivenSignal> {
    if text.starts_with('{') {
        serde_json::from_str::<Members>(text).map(|m| GivenSignal::Fields(m.0))
    } else {
        serde_json::from_str(text).map(GivenSignal::Json)
    }
}

/// A JSON object's members in their order (a key given twice is kept twice; the engine
/// counts the last, as a map would).
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8).min(16));
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

impl Arguments {
    pub fn new(env: &Env) -> napi::Result<Arguments> {
        let f: Function<'_, ArgumentsIn, Option<String>> = env.run_script(ARGUMENTS)?;
        Ok(Arguments(f.create_ref()?))
    }

    /// The arguments read in the common case; `None` when the caller must read them one by
    /// one (which also gives any error).
    pub fn read(
        &self,
        env: &Env,
        signal: Unknown<'_>,
        context: Option<Unknown<'_>>,
        options: Option<Unknown<'_>>,
    ) -> Option<Read> {
        // The reference is typed for values of any scope; the function it holds is the
        // same whatever the arguments' lifetime.
        type Args<'a> = FnArgs<(Unknown<'a>, Option<Unknown<'a>>, Option<Unknown<'a>>)>;
        let f: Function<'_, Args<'_>, Option<String>> =
            Function::from_unknown(self.0.borrow_back(env).ok()?.to_unknown()).ok()?;
        let text = f.call((signal, context, options).into()).ok()??;
        parse_read(&text)
    }
}

/// Splits the fast path's string (see [`ARGUMENTS`]) and parses its parts; `None` when the
/// options must be read the careful way (a `now` that is not a timestamp, so that the
/// error is the careful path's). A text that may hide a number the engine refuses sends
/// the signal and the context the careful way.
fn parse_read(text: &str) -> Option<Read> {
    let (head, rest) = text.split_once('\0')?;
    let explain = match head.as_bytes().first()? {
        b'1' => true,
        b'0' => false,
        _ => return None,
    };
    let now = head.get(1..)?;
    let now = if now == "-" {
        None
    } else if let Some(text) = now.strip_prefix('+') {
        Some(mmm_engine::parse_timestamp(text).ok()?)
    } else {
        let ms: i64 = now.strip_prefix('d')?.parse().ok()?;
        Some(jiff::Timestamp::from_millisecond(ms).ok()?)
    };
    let inputs = rest.strip_prefix('F').and_then(|texts| {
        let (signal, context) = match texts.split_once('\0') {
            Some((s, c)) => (s, Some(c)),
            None => (texts, None),
        };
        if suspicious(signal) || context.is_some_and(suspicious) {
            return None;
        }
        let signal = parse_signal(signal).ok()?;
        let context = match context {
            Some(c) => Some(serde_json::from_str(c).ok()?),
            None => None,
        };
        Some((signal, context))
    });
    Some(Read {
        now,
        explain,
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_signal_is_read_as_its_members_in_order() {
        let text =
            r#"{"kind":"pr.opened","tenant_id":"acme","kind":"ci.failed","n":[1,{"a":null}]}"#;
        let Ok(GivenSignal::Fields(fields)) = parse_signal(text) else {
            panic!("an object is read as its members");
        };
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["kind", "tenant_id", "kind", "n"]);
        assert_eq!(
            fields.last().map(|(_, v)| v),
            Some(&json!([1, {"a": null}]))
        );
    }

    #[test]
    fn any_other_signal_is_read_as_it_is() {
        for text in ["[1,2]", "\"s\"", "null", "3"] {
            let Ok(GivenSignal::Json(value)) = parse_signal(text) else {
                panic!("{text} is read as a value");
            };
            assert_eq!(serde_json::to_string(&value).ok().as_deref(), Some(text));
        }
        for bad in ["{", "{\"a\":1}x", "{\"a\"}", "[1,"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_engine_decides_the_same_on_members_as_on_the_object() {
        let engine = mmm_engine::Engine::builder().build();
        let options = mmm_engine::DecideOptions {
            now: "2026-11-22T10:00:01Z".parse().ok(),
            explain: true,
        };
        for text in [
            r#"{"tenant_id":"acme","actor_id":"dev-42","kind":"pr.opened","occurred_at":"2026-11-22T10:00:00Z","signal_id":"s-1"}"#,
            r#"{"tenant_id":"acme","colour":1}"#,
        ] {
            let Ok(arg) = parse_signal(text) else {
                panic!("{text}");
            };
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                panic!("{text}");
            };
            let a = engine.decide_given(arg, None, &options);
            let b = engine.decide(&value, None, &options);
            let show = |r: Result<mmm_engine::Decision, mmm_engine::DecideError>| match r {
                // Each decision has its own id and latency.
                Ok(d) => serde_json::to_value(&d).map_or_else(
                    |e| e.to_string(),
                    |mut v| {
                        if let Some(o) = v.as_object_mut() {
                            o.remove("decision_id");
                            o.remove("latency_us");
                        }
                        v.to_string()
                    },
                ),
                Err(e) => e.to_string(),
            };
            assert_eq!(show(a), show(b), "{text}");
        }
    }
}
