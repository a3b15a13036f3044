//! RFC 8785 (JCS) bytes of a JSON value, written straight from the value.
//!
//! `serde_json_canonicalizer` canonicalises anything serialisable, and pays for that
//! generality: it buffers every object member in its own vectors, re-parses each key to
//! sort it and writes through a boxed writer, which made canonicalising a receipt cost
//! more than signing it. Receipts are `serde_json::Value`s, whose strings and integers
//! need none of that. This writer produces the same bytes (the differential test below
//! checks it against the crate) and hands the one hard part, ECMAScript number formatting
//! of non-integers and very large integers, to the crate.

use serde_json::{Map, Number, Value};

use super::{Envelope, ReceiptError};
use crate::Signal;

/// Integers up to 2^53 in magnitude are exact doubles, which ECMAScript prints as their
/// decimal digits; beyond it the double's formatting (`1e+21`, rounding) applies.
const EXACT: u64 = 1 << 53;

/// Appends the canonical bytes of `value` to `out`.
///
/// # Errors
/// [`ReceiptError::Malformed`] when a number cannot be canonicalised (never for numbers a
/// `Value` holds, which are finite).
pub(crate) fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), ReceiptError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

/// The canonical bytes of `value`.
///
/// # Errors
/// As [`write_value`].
pub(crate) fn to_vec(value: &Value) -> Result<Vec<u8>, ReceiptError> {
    let mut out = Vec::with_capacity(512);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Members in JCS order: keys compared as UTF-16 code units (which differs from the
/// byte order of UTF-8 only between characters above U+FFFF and those from U+E000 up).
pub(crate) fn write_object(
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
) -> Result<(), ReceiptError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_unstable_by(|(a, _), (b, _)| {
        if a.is_ascii() && b.is_ascii() {
            a.cmp(b)
        } else {
            a.encode_utf16().cmp(b.encode_utf16())
        }
    });
    out.push(b'{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(key, out);
        out.push(b':');
        write_value(value, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string as JCS writes it: `"` and `\` escaped, control characters as `\b`,
/// `\t`, `\n`, `\f`, `\r` or `\u00xx` (lower-case hex), everything else as is. That is
/// exactly serde_json's compact string form.
pub(crate) fn write_str(s: &str, out: &mut Vec<u8>) {
    // Without an early exit the scan compiles to vector instructions: the strings that
    // matter here are a receipt's base64 payload, kilobytes long.
    let plain = !s.bytes().fold(false, |bad, b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a vector cannot fail, nor can serialising a string.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// An unsigned integer as JCS writes it.
pub(crate) fn write_u64(n: u64, out: &mut Vec<u8>) {
    if n <= EXACT {
        // Writing to a vector cannot fail, nor can serialising an integer.
        let _ = serde_json::to_writer(&mut *out, &n);
    } else {
        // Past 2^53 the double's form applies; a finite number always canonicalises.
        let _ = write_number(&Number::from(n), out);
    }
}

/// Writes the members of one JSON object, which the caller gives in JCS order.
pub(crate) struct Members<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Members<'a> {
    /// Members appended to `out` (no braces: the caller writes them, or splices the run).
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Members { out, first: true }
    }

    /// Writes `"key":` (after a comma unless first) and returns the buffer for the value.
    /// Keys are the receipt's own member names, which JSON writes as they are (no quote,
    /// backslash or control character); one that is not is escaped all the same.
    pub fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.out.reserve(key.len() + 3);
            self.out.push(b'"');
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(b"\":");
        } else {
            write_str(key, self.out);
            self.out.push(b':');
        }
        self.out
    }
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), ReceiptError> {
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        // Writing to a vector cannot fail, nor can serialising an integer.
        let _ = serde_json::to_writer(&mut *out, &i);
        return Ok(());
    }
    serde_json_canonicalizer::to_writer(n, out).map_err(|e| ReceiptError::Malformed(e.to_string()))
}

/// Appends the canonical bytes of a signal's JSON form ([`Signal::to_json`]), written from
/// its fields without building that value: members `actor_id`, `actor_type`, `kind`,
/// `occurred_at`, `payload`, `repo` (`branch`, `id`, `path`), `signal_id`, `source`,
/// `surface`, `tenant_id`, in that order, which is JCS order; absent ones are `null`.
///
/// # Errors
/// As [`write_value`] (for numbers in the payload).
pub(crate) fn write_signal(signal: &Signal, out: &mut Vec<u8>) -> Result<(), ReceiptError> {
    fn write_opt(text: Option<&str>, out: &mut Vec<u8>) {
        match text {
            Some(text) => write_str(text, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'{');
    let mut m = Members::new(out);
    write_str(&signal.actor_id, m.key("actor_id"));
    write_str(signal.actor_type.as_str(), m.key("actor_type"));
    write_str(&signal.kind, m.key("kind"));
    write_str(&signal.occurred_at_text, m.key("occurred_at"));
    write_object(&signal.payload, m.key("payload"))?;
    let repo = m.key("repo");
    match &signal.repo {
        None => repo.extend_from_slice(b"null"),
        Some(r) => {
            repo.push(b'{');
            let mut members = Members::new(repo);
            write_opt(r.branch.as_deref(), members.key("branch"));
            write_opt(r.id.as_deref(), members.key("id"));
            write_opt(r.path.as_deref(), members.key("path"));
            repo.push(b'}');
        }
    }
    write_str(&signal.signal_id, m.key("signal_id"));
    write_opt(signal.source.as_deref(), m.key("source"));
    write_opt(signal.surface.map(|s| s.as_str()), m.key("surface"));
    write_str(&signal.tenant_id, m.key("tenant_id"));
    out.push(b'}');
    Ok(())
}

/// Appends the canonical bytes of an envelope (the form its successor's `prev_sha256`
/// hashes): members `payload`, `payloadType`, `signatures`, and in each signature
/// `keyid` (when set) and `sig`, in that order, which is JCS order.
pub(crate) fn write_envelope(envelope: &Envelope, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"payload\":");
    write_str(&envelope.payload, out);
    out.extend_from_slice(b",\"payloadType\":");
    write_str(&envelope.payload_type, out);
    out.extend_from_slice(b",\"signatures\":[");
    for (i, signature) in envelope.signatures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        if let Some(keyid) = &signature.keyid {
            out.extend_from_slice(b"\"keyid\":");
            write_str(keyid, out);
            out.push(b',');
        }
        out.extend_from_slice(b"\"sig\":");
        write_str(&signature.sig, out);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::receipt::EnvelopeSignature;

    fn crate_bytes(value: &impl serde::Serialize) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(value).unwrap()
    }

    #[test]
    fn values_canonicalise_as_the_reference_crate_does() {
        let values = [
            json!(null),
            json!(true),
            json!([false, 0, -0.0, 1.5, -7, 1e21, 1e-7, 123456789012345678_u64]),
            json!(9_007_199_254_740_992_i64),
            json!(9_007_199_254_740_993_i64),
            json!(-9_007_199_254_740_993_i64),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.1),
            json!(5e-324),
            json!(1.7976931348623157e308),
            json!(100.0),
            json!({"b": 1, "a": {"z": [], "y": {}}, "": "empty key", "aa": null}),
            json!({"\u{e000}": 1, "\u{1f600}": 2, "é": 3, "e": 4, "E": 5, "\u{7f}": 6}),
            json!({"quote\"": "a\"b\\c/d", "ctl": "\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}"}),
            json!({"unicode": "h\u{e9}llo \u{2028}\u{2029} \u{1f600} \u{fffd}"}),
            json!({"nested": [{"b": [1, {"d": 2, "c": 3}]}, "x"], "a": -1.25e-10}),
        ];
        for value in values {
            assert_eq!(
                String::from_utf8(to_vec(&value).unwrap()).unwrap(),
                String::from_utf8(crate_bytes(&value)).unwrap(),
                "{value}"
            );
        }
    }

    #[test]
    fn signals_are_written_as_their_json_form() {
        let signals = [
            json!({"tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened",
                "occurred_at": "2026-11-22T10:00:00Z"}),
            json!({"tenant_id": "acme", "actor_id": "dev-\"2\"\u{e9}", "kind": "ci.failed",
                "occurred_at": "2026-11-22T10:00:00+01:00", "signal_id": "s-1",
                "actor_type": "agent", "source": "gh\tactions", "surface": "pr_comment",
                "repo": {"id": "acme/api", "branch": "main"},
                "payload": {"z": [1, 2.5, null], "\u{e000}": {"b": true, "a": "x\ny"},
                    "\u{1f600}": -7, "big": 12345678901234567890_u64}}),
            json!({"tenant_id": "t", "actor_id": "a", "kind": "k", "signal_id": "s-2",
                "occurred_at": "2026-11-22T10:00:00Z", "actor_type": "service",
                "repo": {"path": "src/\\lib.rs"}, "surface": "ide", "payload": {}}),
        ];
        for json in signals {
            let signal = Signal::from_json(&json, 64 * 1024).unwrap();
            let mut out = Vec::new();
            write_signal(&signal, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(crate_bytes(&signal.to_json())).unwrap(),
                "{json}"
            );
        }
    }

    #[test]
    fn envelopes_canonicalise_as_the_reference_crate_does() {
        let signature = |keyid: Option<&str>| EnvelopeSignature {
            keyid: keyid.map(str::to_owned),
            sig: "ab+/cd==".into(),
        };
        for signatures in [
            vec![],
            vec![signature(Some("0123456789abcdef"))],
            vec![signature(None), signature(Some("k\"ey"))],
        ] {
            let envelope = Envelope {
                payload_type: "application/vnd.mmm.receipt+json".into(),
                payload: "eyJhIjoxfQ==".into(),
                signatures,
            };
            let mut out = Vec::new();
            write_envelope(&envelope, &mut out);
            assert_eq!(out, crate_bytes(&envelope));
        }
    }
}
