//! The YAML layer: serde-saphyr (pure Rust, panic-free, with parse budgets) deserialises each
//! document into its typed form, after the position index has checked the limits; its errors
//! become diagnostics with the file's line and column and a message in the engine's words.
//! docs/decisions.md ("The YAML parser") says why serde-saphyr.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};

use super::limits::LoadLimits;
use super::positions::{self, DocPositions, Index, Pos};
use crate::error::{clean_message, field_name, Diagnostic, LoadError, Quoted};

/// The most characters of a user's value a message repeats.
/// serde-saphyr's settings: its budget sits at or above the [`LoadLimits`], which the index
/// has already enforced, so it is a second line only.
fn options(limits: &LoadLimits) -> serde_saphyr::Options {
    let nodes = usize::try_from(limits.max_nodes).unwrap_or(usize::MAX);
    let bytes = usize::try_from(limits.max_scalar_bytes).unwrap_or(usize::MAX);
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: limits.max_depth,
            flow_nesting_limit: limits.max_depth.saturating_add(1),
            max_nodes: nodes,
            max_total_scalar_bytes: bytes,
            max_events: nodes.saturating_mul(4).saturating_add(16),
            max_aliases: nodes,
            max_anchors: nodes,
            max_recorded_anchor_events: nodes.saturating_mul(4),
            max_recorded_anchor_bytes: bytes,
            max_documents: 1,
            enforce_alias_anchor_ratio: false,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: nodes.saturating_mul(4),
            max_replay_stack_depth: limits.max_depth,
        },
        // YAML 1.2: `yes`/`no`/`on`/`off` are strings, as they were with serde_yaml.
        strict_booleans: true,
        with_snippet: false,
    }
}

/// Serde's names for numbers are Rust's; a message says what a user writes.
fn expected_in_words(expected: &str) -> Cow<'_, str> {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "isize"
        | "usize" => Cow::Borrowed("an integer"),
        "f32" | "f64" => Cow::Borrowed("a number"),
        "bool" => Cow::Borrowed("a boolean"),
        "char" => Cow::Borrowed("a single character"),
        other => Cow::Borrowed(other),
    }
}

fn one_of(expected: &[&str]) -> String {
    let quoted: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    match quoted.as_slice() {
        [] => "there are no fields".to_owned(),
        [one] => format!("expected {one}"),
        [a, b] => format!("expected {a} or {b}"),
        many => format!("expected one of {}", many.join(", ")),
    }
}

fn breach_message(breach: &BudgetBreach, limits: &LoadLimits) -> String {
    match breach {
        BudgetBreach::Depth { .. } => positions::depth_message(limits),
        BudgetBreach::Documents { .. } => format!(
            "the file has more than the limit of {} documents",
            limits.max_documents
        ),
        BudgetBreach::ScalarBytes { .. } | BudgetBreach::RecordedAnchorBytes { .. } => format!(
            "the file's text values exceed the limit of {} bytes (aliases counted as the text they repeat)",
            limits.max_scalar_bytes
        ),
        _ => format!(
            "the file has more than the limit of {} nodes (aliases counted as the nodes they repeat)",
            limits.max_nodes
        ),
    }
}

/// A deserialisation error as a rule and a message in the engine's words.
fn describe(
    e: &serde_saphyr::Error,
    doc: &DocPositions,
    at: Option<Pos>,
    limits: &LoadLimits,
) -> (&'static str, String) {
    use serde_saphyr::Error as E;
    match e.without_snippet() {
        E::SerdeUnknownField {
            field, expected, ..
        } => (
            "unknown-field",
            format!("unknown field {}, {}", Quoted(field), one_of(expected)),
        ),
        E::SerdeMissingField { field, .. } => ("missing-field", format!("missing field `{field}`")),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            "invalid-type",
            format!(
                "invalid type: {}, expected {}",
                clean_message(unexpected),
                expected_in_words(expected)
            ),
        ),
        E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            "invalid-type",
            format!(
                "invalid value: {}, expected {}",
                clean_message(unexpected),
                expected_in_words(expected)
            ),
        ),
        E::InvalidScalar { ty, .. } => (
            "invalid-type",
            format!("invalid type: expected {}", expected_in_words(ty)),
        ),
        // A mapping where a list belongs, a list where text belongs, …
        E::Unexpected { expected, .. } => match *expected {
            "mapping start" => (
                "invalid-type",
                "invalid type: expected a mapping".to_owned(),
            ),
            "sequence start" => ("invalid-type", "invalid type: expected a list".to_owned()),
            "string scalar" | "scalar" => (
                "invalid-type",
                "invalid type: expected a single value, not a list or mapping".to_owned(),
            ),
            other => ("yaml", format!("expected {other}")),
        },
        E::NullIntoString { .. } => (
            "invalid-type",
            "invalid type: null, expected a string".to_owned(),
        ),
        E::DuplicateMappingKey { key, .. } => (
            "duplicate-key",
            match key {
                Some(k) => format!("the key {} appears twice in one mapping", Quoted(k)),
                None => "a key appears twice in one mapping".to_owned(),
            },
        ),
        E::NonFiniteFloat { value, .. } => {
            let field = at
                .and_then(|p| doc.path_at(p))
                .map(|p| format!(" at `{}`", field_name(&p)))
                .unwrap_or_default();
            (
                "invalid-number",
                format!(
                    "{}{field} is not a finite number; JSON, which `params` becomes, has no NaN or infinity",
                    Quoted(value)
                ),
            )
        }
        E::Budget { breach, .. } => ("limit", breach_message(breach, limits)),
        other => {
            let message = DefaultMessageFormatter.format_message(other);
            ("yaml", shown_message(&message))
        }
    }
}

/// A library's message: its first line, cut to a sensible length, control characters escaped.
fn shown_message(message: &str) -> String {
    const MAX_CHARS: usize = 300;
    let first = message.lines().next().unwrap_or(message);
    let mut out = String::new();
    for (i, c) in first.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn one(d: Diagnostic) -> LoadError {
    LoadError {
        diagnostics: vec![d],
    }
}

/// Deserialises one indexed document of `text` as a `T`; an error names the file's line and
/// column.
pub(crate) fn document<T: DeserializeOwned>(
    file: &str,
    text: &str,
    doc: &DocPositions,
    limits: &LoadLimits,
) -> Result<T, LoadError> {
    let source = text.get(doc.source.clone()).unwrap_or("");
    serde_saphyr::from_str_with_options::<T>(source, options(limits)).map_err(|e| {
        let at = e.location().and_then(|l| {
            let line = usize::try_from(l.line()).ok().filter(|l| *l >= 1)?;
            let column = usize::try_from(l.column()).ok().filter(|c| *c >= 1)?;
            Some(Pos {
                line: line + doc.line_offset,
                column,
            })
        });
        let (rule, message) = describe(&e, doc, at, limits);
        one(Diagnostic::error(rule, message, file).at(at.or(doc.start)))
    })
}

/// Strips a leading byte-order mark (editors on Windows write one; it is not content).
pub(crate) fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Checks `text` against the limits and indexes it; a refusal is a diagnostic.
pub(crate) fn index(file: &str, text: &str, limits: &LoadLimits) -> (Index, Option<Diagnostic>) {
    if text.len() as u64 > limits.max_file_bytes {
        let d = Diagnostic::error(
            "limit",
            format!(
                "the file is {} bytes, over the limit of {} bytes",
                text.len(),
                limits.max_file_bytes
            ),
            file,
        )
        .at(Some(Pos { line: 1, column: 1 }));
        return (Index::default(), Some(d));
    }
    let mut index = positions::index(text, limits);
    let diagnostic = index
        .error
        .take()
        .map(|e| Diagnostic::error(e.rule, e.message, file).at(Some(e.pos)));
    (index, diagnostic)
}

/// Reads a YAML file's text (one document) as a `T`, with the same limits, the same checks
/// and the same positions as playbooks: for files that sit beside playbooks, such as the
/// `mmm test` suites.
///
/// # Errors
/// A [`LoadError`] with one diagnostic naming `file`, the line and column and what is wrong
/// (a syntax error, a limit, an unknown or missing field, a value of the wrong type).
///
/// ```
/// use mmm_engine::playbook::{read_yaml, LoadLimits};
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Point { x: i64 }
/// let p: Point = read_yaml("p.yaml", "x: 3\n", &LoadLimits::default()).unwrap();
/// assert_eq!(p.x, 3);
/// let e = read_yaml::<Point>("p.yaml", "x: 3\ny: 4\n", &LoadLimits::default()).unwrap_err();
/// assert_eq!(e.to_string(), "p.yaml:2:1: error[unknown-field]: unknown field `y`, expected `x`");
/// ```
pub fn read_yaml<T: DeserializeOwned>(
    file: &str,
    text: &str,
    limits: &LoadLimits,
) -> Result<T, LoadError> {
    let text = without_bom(text);
    let (index, error) = index(file, text, limits);
    if let Some(d) = error {
        return Err(one(d));
    }
    let mut docs = index.docs.iter().filter(|d| !d.empty);
    match (docs.next(), docs.next()) {
        (Some(doc), None) => document(file, text, doc, limits),
        (Some(_), Some(second)) => Err(one(Diagnostic::error(
            "yaml",
            "expected one document, found more",
            file,
        )
        .at(second.start))),
        (None, _) => Err(one(Diagnostic::error("yaml", "the file is empty", file)
            .at(Some(Pos { line: 1, column: 1 })))),
    }
}
