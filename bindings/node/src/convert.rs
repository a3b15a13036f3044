//! Values across the boundary. JavaScript data goes to the engine through `JSON.stringify`
//! and comes back through `JSON.parse` (decisions through their own builder, see
//! `decision.rs`), so the binding sees exactly what a JSON API would:
//! `undefined` properties are dropped, a `Date` becomes its ISO string, `toJSON` is
//! honoured, and a cycle or a `BigInt` is an error rather than a crash. Both directions
//! run in V8's own JSON code, which is faster than walking objects property by property
//! through N-API.

use napi::bindgen_prelude::{Buffer, FromNapiValue, Function, JsObjectValue, Object, Unknown};
use napi::{Env, JsValue, ValueType};
use serde::Serialize;
use serde_json::Value;

use crate::errors::{arg_type, arg_value};

fn json_object(env: &Env) -> napi::Result<Object<'static>> {
    env.get_global()?.get_named_property("JSON")
}

/// Serialises `value` and parses it into a JavaScript value.
pub fn to_js<'e>(env: &Env, value: &impl Serialize) -> napi::Result<Unknown<'e>> {
    let text = serde_json::to_string(value)
        .map_err(|e| napi::Error::from_reason(format!("cannot serialise: {e}")))?;
    parse_text(env, text)
}

/// Parses JSON text into a JavaScript value.
pub fn parse_text<'e>(env: &Env, text: String) -> napi::Result<Unknown<'e>> {
    let parse: Function<'_, String, Unknown<'e>> = json_object(env)?.get_named_property("parse")?;
    parse.call(text)
}

/// `JSON.stringify(value)`; `None` for what JSON cannot express at the top level
/// (`undefined`, a function). A thrown `TypeError` (a cycle, a `BigInt`) comes back as
/// `Err` with its message.
pub fn stringify(env: &Env, value: Unknown<'_>) -> Result<Option<String>, String> {
    let run = || -> napi::Result<Option<String>> {
        let stringify: Function<'_, Unknown<'_>, Option<String>> =
            json_object(env)?.get_named_property("stringify")?;
        stringify.call(value)
    };
    run().map_err(|e| e.reason)
}

/// A JavaScript value as the engine's JSON; `undefined` and `null` are JSON `null`.
pub fn from_js(env: &Env, value: Unknown<'_>) -> Result<Value, String> {
    match stringify(env, value)? {
        None => Ok(Value::Null),
        Some(text) => serde_json::from_str(&text).map_err(|e| e.to_string()),
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
            text.parse::<jiff::Timestamp>().map(Some).map_err(|_| {
                arg_value(
                    env,
                    format!("`now` `{text}` is not an RFC 3339 timestamp with an offset"),
                )
            })
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
