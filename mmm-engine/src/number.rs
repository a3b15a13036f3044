//! Numbers that enter the engine, by the same rules in every binding and the CLI
//! (docs/decisions.md, "Numbers"):
//!
//! - NaN and the infinities are refused: JSON cannot carry them, and turning them into
//!   `null` (what `JSON.stringify` does) silently changes what a condition sees;
//! - integers must fit in 64 bits (−2⁶³ to 2⁶⁴−1, what the engine holds exactly); a
//!   larger one is refused rather than rounded to a float;
//! - a JavaScript number beyond the safe integers (±(2⁵³−1)) is refused: it may already
//!   not be the integer that was meant (a BigInt of up to 64 bits is exact and accepted);
//! - `-0` is read as `0`, so that the same input gives the same decision and receipt in
//!   Rust, Python and Node (JavaScript's JSON has no negative zero).
//!
//! Errors name the field as a JSON path (`payload.x`, `recent_signals[0].payload.n`).

use serde_json::{Number, Value};

/// Why a number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumberIssue {
    /// NaN, Infinity or -Infinity.
    NotFinite,
    /// An integer outside −2⁶³ to 2⁶⁴−1.
    TooLarge,
    /// A JavaScript number beyond ±(2⁵³−1) (integral, so possibly already rounded).
    UnsafeInteger,
}

/// The message for a refused number, with the number as the caller wrote it (cut like any
/// user value).
///
/// ```
/// use mmm_engine::number::{refused, NumberIssue};
/// assert_eq!(
///     refused(NumberIssue::NotFinite, "NaN"),
///     "`NaN` is not a number JSON can carry; NaN and infinities are refused"
/// );
/// ```
pub fn refused(issue: NumberIssue, literal: &str) -> String {
    let shown = crate::error::Quoted(literal);
    match issue {
        NumberIssue::NotFinite => {
            format!("{shown} is not a number JSON can carry; NaN and infinities are refused")
        }
        NumberIssue::TooLarge => format!(
            "integer {shown} does not fit in 64 bits (-2^63 to 2^64-1); pass it as a string"
        ),
        NumberIssue::UnsafeInteger => format!(
            "{shown} is beyond JavaScript's safe integers (±(2^53-1)) and may not be the number \
             meant; pass a BigInt (up to 64 bits) or a string"
        ),
    }
}

/// A JSON path one segment longer: `a` + key → `a.key`, `a` + index → `a[3]`.
pub fn child_path(parent: &str, segment: PathSegment<'_>) -> String {
    match segment {
        PathSegment::Key(key) if parent.is_empty() => key.to_owned(),
        PathSegment::Key(key) => format!("{parent}.{key}"),
        PathSegment::Index(i) => format!("{parent}[{i}]"),
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, Copy)]
pub enum PathSegment<'a> {
    /// An object's key.
    Key(&'a str),
    /// An array's index.
    Index(usize),
}

/// Whether `n` is a negative zero.
fn is_negative_zero(n: &Number) -> bool {
    n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) && n.is_f64()
}

/// The integer zero, which every binding prints the same way.
fn zero() -> Value {
    Value::Number(Number::from(0u8))
}

/// Makes every `-0` in `value` a `0`, in place (the rule every binding applies at input).
///
/// ```
/// let mut v = serde_json::json!({"x": -0.0, "y": [-0.0, 1.5]});
/// mmm_engine::number::normalise_negative_zero(&mut v);
/// assert_eq!(v.to_string(), r#"{"x":0,"y":[0,1.5]}"#);
/// ```
pub fn normalise_negative_zero(value: &mut Value) {
    match value {
        Value::Number(n) if is_negative_zero(n) => *value = zero(),
        Value::Array(items) => items.iter_mut().for_each(normalise_negative_zero),
        Value::Object(map) => map.values_mut().for_each(normalise_negative_zero),
        _ => {}
    }
}

/// JSON text that cannot be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct JsonTextError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The JSON path of the value, when the text parsed but a number was refused.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl JsonTextError {
    /// The serialisable form (`JSON_INVALID`, with the line, the column and the field).
    pub fn info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo {
            field: self.field.clone(),
            line: Some(self.line),
            column: Some(self.column),
            ..crate::ErrorInfo::new(crate::codes::JSON_INVALID, self.to_string())
        }
    }
}

/// Reads JSON text as the engine reads input: a UTF-8 byte-order mark at the start is
/// skipped, integers beyond 64 bits are refused (serde_json would make them floats,
/// silently), and `-0` becomes `0`.
///
/// # Errors
/// [`JsonTextError`] with the line and column, and the field for a refused number.
///
/// ```
/// use mmm_engine::number::parse_json;
/// assert_eq!(parse_json("\u{FEFF}{\"x\": -0.0}").unwrap().to_string(), r#"{"x":0}"#);
/// let e = parse_json(r#"{"payload": {"n": [1, 123456789012345678901234567890]}}"#).unwrap_err();
/// assert_eq!(e.field.as_deref(), Some("payload.n[1]"));
/// ```
pub fn parse_json(text: &str) -> Result<Value, JsonTextError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut value: Value = serde_json::from_str(text).map_err(|e| JsonTextError {
        line: e.line(),
        column: e.column(),
        field: None,
        message: format!(
            "invalid JSON: {}",
            crate::error::clean_message(&e.to_string())
        ),
    })?;
    if let Some((start, end)) = wide_integer(text) {
        let before = text.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(1, |l| l.chars().count() + 1);
        return Err(JsonTextError {
            line,
            column,
            field: Some(crate::error::field_name(&path_at(text, start))),
            message: refused(NumberIssue::TooLarge, text.get(start..end).unwrap_or("")),
        });
    }
    normalise_negative_zero(&mut value);
    Ok(value)
}

/// The byte range of the first integer literal of valid JSON `text` that does not fit in
/// 64 bits.
fn wide_integer(text: &str) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => i = string_end(b, i),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while b.get(i).is_some_and(|c| {
                    c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')
                }) {
                    i += 1;
                }
                let literal = text.get(start..i).unwrap_or("");
                let integer = !literal.contains(['.', 'e', 'E']);
                if integer && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                    return Some((start, i));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The index just past the string that opens at `b[start]` (a `"`).
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// The JSON path of the value that starts at byte `target` of valid JSON `text`.
fn path_at(text: &str, target: usize) -> String {
    enum Frame {
        Object {
            key: Option<(usize, usize)>,
            expect_key: bool,
        },
        Array {
            index: usize,
        },
    }
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < target {
        let Some(&c) = b.get(i) else { break };
        match c {
            b'{' => stack.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                None => {}
            },
            b'"' => {
                let end = string_end(b, i);
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut() {
                    if *expect_key {
                        *key = Some((i, end));
                        *expect_key = false;
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object {
                key: Some((s, e)), ..
            } => {
                let key: String = text
                    .get(*s..*e)
                    .and_then(|k| serde_json::from_str(k).ok())
                    .unwrap_or_default();
                path = child_path(&path, PathSegment::Key(&key));
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path = child_path(&path, PathSegment::Index(*index)),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_64_bits_are_refused_with_their_path() {
        let e = parse_json(
            "{\n  \"a\": \"x\\\"1234567890123456789012\",\n  \"payload\": {\"ok\": [18446744073709551615, -9223372036854775808],\n    \"n\": -9223372036854775809}}",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("payload.n"));
        assert_eq!((e.line, e.column), (4, 10));
        assert!(e
            .message
            .starts_with("integer `-9223372036854775809` does not fit in 64 bits"));
        let e = parse_json(r#"[{"k": 1}, {"k": [0, 1e400]}]"#).unwrap_err();
        assert!(
            e.message.contains("invalid JSON") && e.field.is_none(),
            "{e}"
        );
        let e = parse_json(r#"[{"k": 1}, {"k": [0, 100000000000000000000]}]"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("[1].k[1]"));
    }

    #[test]
    fn floats_of_any_size_and_64_bit_integers_are_kept() {
        let v = parse_json(
            r#"{"f": 1e300, "g": 1.5, "u": 18446744073709551615, "i": -9223372036854775808}"#,
        )
        .unwrap();
        assert_eq!(v["u"].as_u64(), Some(u64::MAX));
        assert_eq!(v["i"].as_i64(), Some(i64::MIN));
        assert_eq!(v["f"].as_f64(), Some(1e300));
    }

    #[test]
    fn negative_zero_is_zero() {
        let v = parse_json(r#"{"a": -0, "b": -0.0, "c": [-0e5], "d": 0.0}"#).unwrap();
        assert_eq!(v.to_string(), r#"{"a":0,"b":0,"c":[0],"d":0.0}"#);
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(parse_json("\u{FEFF}[1]").unwrap(), serde_json::json!([1]));
        assert!(parse_json("[1]\u{FEFF}").is_err());
    }
}
