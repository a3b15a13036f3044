//! The JSON bridge between serde and V8: a Rust value goes to JavaScript as JSON text
//! read by V8's own `JSON.parse` (faster than building objects property by property
//! through N-API). The lowest layer of the binding: errors and conversions both use it,
//! and it uses neither.

use napi::bindgen_prelude::{Function, JsObjectValue, Object, Unknown};
use napi::Env;
use serde::Serialize;

/// The global `JSON` object.
pub fn json_object(env: &Env) -> napi::Result<Object<'static>> {
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
