//! Errors, one typed enum per operation, and the single serialisable shape
//! ([`ErrorInfo`]) that the CLI, the bindings and the host all render from.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable error codes shared by every surface (Rust, Python, Node, CLI, HTTP).
pub mod codes {
    /// A playbook or experiment document is invalid.
    pub const PLAYBOOK_INVALID: &str = "PLAYBOOK_INVALID";
    /// The signal envelope is invalid.
    pub const SIGNAL_INVALID: &str = "SIGNAL_INVALID";
    /// The context passed beside the signal is invalid.
    pub const CONTEXT_INVALID: &str = "CONTEXT_INVALID";
    /// A dependency the decision cannot do without is down.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// The actor may not receive decisions (IAM says inactive).
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// A receipt failed verification.
    pub const RECEIPT_INVALID: &str = "RECEIPT_INVALID";
    /// A file could not be read.
    pub const IO: &str = "IO";
    /// An outcome is invalid.
    pub const OUTCOME_INVALID: &str = "OUTCOME_INVALID";
    /// An approval operation was refused (same channel, terminal state, not found).
    pub const APPROVAL_REFUSED: &str = "APPROVAL_REFUSED";
    /// The audit sink could not record a change, so it did not happen.
    pub const AUDIT_FAILED: &str = "AUDIT_FAILED";
    /// An engine setting is invalid (an unknown key, a negative duration, …).
    pub const CONFIG_INVALID: &str = "CONFIG_INVALID";
    /// What the operation names does not exist (an approval, an experiment).
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// The operation conflicts with the current state (an approval already terminal, a
    /// second approval through the first one's channel).
    pub const CONFLICT: &str = "CONFLICT";
    /// A port answered with a business error (a deny, a not-found): the dependency is up.
    pub const REJECTED: &str = "REJECTED";
    /// A duration is invalid (`24`, `0s`, `5y`).
    pub const DURATION_INVALID: &str = "DURATION_INVALID";
    /// JSON text cannot be read (a syntax error, a number beyond 64 bits).
    pub const JSON_INVALID: &str = "JSON_INVALID";

    /// Every code, each with the name both bindings give its errors (the Python exception
    /// class, the JavaScript error's `name`), so that they map errors by code alone.
    pub const ALL: &[(&str, &str)] = &[
        (PLAYBOOK_INVALID, "PlaybookError"),
        (SIGNAL_INVALID, "SignalError"),
        (CONTEXT_INVALID, "ContextError"),
        (UNAVAILABLE, "UnavailableError"),
        (FORBIDDEN, "ForbiddenError"),
        (RECEIPT_INVALID, "ReceiptError"),
        (IO, "IoError"),
        (OUTCOME_INVALID, "OutcomeError"),
        (APPROVAL_REFUSED, "ApprovalError"),
        (AUDIT_FAILED, "AuditFailedError"),
        (CONFIG_INVALID, "ConfigError"),
        (NOT_FOUND, "NotFoundError"),
        (CONFLICT, "ConflictError"),
        (REJECTED, "Rejected"),
        (DURATION_INVALID, "DurationError"),
        (JSON_INVALID, "JsonError"),
    ];

    /// The name the bindings give errors of `code` (see [`ALL`]); `MmmError`, the base
    /// class, for a code they do not know.
    ///
    /// ```
    /// use mmm_engine::codes;
    /// assert_eq!(codes::error_name(codes::SIGNAL_INVALID), "SignalError");
    /// assert_eq!(codes::error_name("SOMETHING_NEW"), "MmmError");
    /// ```
    pub fn error_name(code: &str) -> &'static str {
        ALL.iter()
            .find(|(c, _)| *c == code)
            .map_or("MmmError", |(_, name)| name)
    }
}

/// The most characters of a user value a message shows.
pub const QUOTED_MAX_CHARS: usize = 64;

/// A user value as a message shows it: in backticks, cut after [`QUOTED_MAX_CHARS`]
/// characters (then `…` and the value's full length), with control characters, line
/// breaks and invisible or reordering characters (bidi overrides, zero-width and tag
/// characters) escaped as `\u{…}`. A message therefore stays short, cannot carry a
/// terminal escape sequence and cannot reorder what is around it, whatever the input.
///
/// ```
/// use mmm_engine::Quoted;
/// assert_eq!(Quoted("dev-42").to_string(), "`dev-42`");
/// assert_eq!(Quoted("a\u{1b}[31mb").to_string(), "`a\\u{1b}[31mb`");
/// let long = "x".repeat(1000);
/// assert_eq!(
///     Quoted(&long).to_string(),
///     format!("`{}…` (1000 characters)", "x".repeat(64))
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        let cut = write_escaped(f, self.0, QUOTED_MAX_CHARS)?;
        f.write_str("`")?;
        if cut {
            write!(f, " ({} characters)", self.0.chars().count())?;
        }
        Ok(())
    }
}

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Writes at most `max` characters of `text`, escaping what [`Quoted`] escapes, and `…`
/// when it cut; says whether it did.
fn write_escaped(f: &mut impl fmt::Write, text: &str, max: usize) -> Result<bool, fmt::Error> {
    for (i, c) in text.chars().enumerate() {
        if i == max {
            f.write_char('…')?;
            return Ok(true);
        }
        match c {
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if crate::text::needs_escape(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    Ok(false)
}

/// A user value used as a field name (an unknown key, a JSON path): escaped and cut like
/// [`Quoted`], without the backticks, which the message around it supplies.
/// A path is allowed more room than a value: its last segment is the informative one.
///
/// ```
/// assert_eq!(mmm_engine::field_name("context.repo\u{202e}x"), "context.repo\\u{202e}x");
/// assert_eq!(mmm_engine::field_name(&"k".repeat(500)).chars().count(), 201);
/// ```
pub fn field_name(text: &str) -> String {
    const FIELD_MAX_CHARS: usize = 200;
    let mut out = String::with_capacity(text.len().min(FIELD_MAX_CHARS + 8));
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, text, FIELD_MAX_CHARS);
    out
}

/// A message written by a library (serde's "unknown variant `…`", "invalid type: string
/// \"…\"") that may carry a user value: every part in backticks or double quotes is cut
/// like [`Quoted`], and control and hidden characters are escaped everywhere.
///
/// ```
/// let long = "v".repeat(1000);
/// let m = mmm_engine::clean_message(&format!("unknown variant `{long}`, expected `ide`"));
/// assert_eq!(m, format!("unknown variant `{}…`, expected `ide`", "v".repeat(64)));
/// ```
pub fn clean_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(512));
    let mut quote: Option<char> = None;
    let mut inside = 0usize;
    let mut skipping = false;
    let mut escaped = false;
    for c in message.chars() {
        if let Some(q) = quote {
            let closes = c == q && !(q == '"' && escaped);
            escaped = q == '"' && c == '\\' && !escaped;
            if closes {
                quote = None;
                skipping = false;
                out.push(c);
                continue;
            }
            if skipping {
                continue;
            }
            if inside == QUOTED_MAX_CHARS {
                out.push('…');
                skipping = true;
                continue;
            }
            inside += 1;
        } else if c == '`' || c == '"' {
            quote = Some(c);
            inside = 0;
            escaped = false;
            out.push(c);
            continue;
        }
        match c {
            c if crate::text::needs_escape(c) => {
                let _ = fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The document cannot be loaded.
    Error,
    /// The document loads, but something in it should be looked at (the nudge-language lint).
    Warning,
}

impl Severity {
    /// `error` or `warning`, as diagnostics are printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding about a playbook file, with where it is.
///
/// Renders as `file:line:col: error[rule]: message`, the format of `mmm validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A short stable rule name, such as `unknown-field` or `prescriptive-wording`.
    pub rule: String,
    /// What is wrong, in words.
    pub message: String,
    /// The file (or `<yaml>` for text loaded from memory).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The playbook (or experiment) id, when known.
    pub playbook: Option<String>,
}

impl Diagnostic {
    pub(crate) fn error(rule: &str, message: impl Into<String>, file: &str) -> Self {
        Diagnostic {
            severity: Severity::Error,
            rule: rule.to_owned(),
            message: message.into(),
            file: file.to_owned(),
            line: None,
            column: None,
            playbook: None,
        }
    }

    pub(crate) fn warning(rule: &str, message: impl Into<String>, file: &str) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(rule, message, file)
        }
    }

    pub(crate) fn at(mut self, pos: Option<Pos>) -> Self {
        if let Some(pos) = pos {
            self.line = Some(pos.line);
            self.column = Some(pos.column);
        }
        self
    }

    pub(crate) fn in_playbook(mut self, id: Option<&str>) -> Self {
        if self.playbook.is_none() {
            self.playbook = id.map(str::to_owned);
        }
        self
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The serialisable form of this diagnostic.
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            code: if self.rule == "io" {
                codes::IO
            } else {
                codes::PLAYBOOK_INVALID
            }
            .to_owned(),
            message: self.message.clone(),
            rule: Some(self.rule.clone()),
            field: None,
            file: Some(self.file.clone()),
            line: self.line,
            column: self.column,
            playbook: self.playbook.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = self.severity.as_str();
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.file,
            self.line.unwrap_or(1),
            self.column.unwrap_or(1),
            severity,
            self.rule,
            self.message
        )
    }
}

/// The single serialisable error shape: `{code, message, rule?, field?, file?, line?, column?, playbook?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// A stable code from [`codes`].
    pub code: String,
    /// A human-readable message.
    pub message: String,
    /// For playbook errors: the rule broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For signal and context errors: the field, as a dotted path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The file, when the error is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The playbook concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
}

impl ErrorInfo {
    /// An error with a code and a message, and no position or field.
    pub fn new(code: &str, message: String) -> Self {
        ErrorInfo {
            code: code.to_owned(),
            message,
            rule: None,
            field: None,
            file: None,
            line: None,
            column: None,
            playbook: None,
        }
    }
}

/// Loading playbooks failed: every error found, with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_diagnostics(.diagnostics))]
pub struct LoadError {
    /// The errors (never empty); warnings are not included.
    pub diagnostics: Vec<Diagnostic>,
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    out
}

impl LoadError {
    /// The serialisable form of the first error (the one a short message shows).
    pub fn info(&self) -> ErrorInfo {
        match self.diagnostics.first() {
            Some(d) => d.info(),
            None => ErrorInfo::new(codes::PLAYBOOK_INVALID, "invalid playbooks".to_owned()),
        }
    }
}

/// The signal envelope broke a rule of SPEC §1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid signal: field `{field}`: {message}")]
pub struct SignalError {
    /// The field, as a dotted path (`tenant_id`, `repo.branch`, `payload`).
    pub field: String,
    /// The rule broken.
    pub message: String,
}

impl SignalError {
    /// An error about `field` (a dotted path; a user's key in it is shown escaped and
    /// cut, like [`Quoted`]).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SignalError {
            field: field_name(&field.into()),
            message: message.into(),
        }
    }
}

/// The context passed beside the signal broke a rule of SPEC §2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid context: field `{field}`: {message}")]
pub struct ContextError {
    /// The field, as a dotted path (`tenant_policy.quiet_hours.start`).
    pub field: String,
    /// The rule broken.
    pub message: String,
}

impl ContextError {
    /// An error about `field` (a dotted path; a user's key in it is shown escaped and
    /// cut, like [`Quoted`]).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ContextError {
            field: field_name(&field.into()),
            message: message.into(),
        }
    }
}

/// A decision could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    /// The signal is invalid.
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// The context is invalid.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// IAM says the actor may not receive decisions (inactive or unknown): HTTP 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A dependency the decision cannot do without (IAM) is down: HTTP 503.
    #[error("unavailable: {dependency} is down: {message}")]
    Unavailable {
        /// The port.
        dependency: crate::model::PortName,
        /// What happened.
        message: String,
    },
}

/// A JSON argument of `decide`, as a binding names it in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideArgument {
    /// The signal (`SignalError`, `SIGNAL_INVALID`).
    Signal,
    /// The context (`ContextError`, `CONTEXT_INVALID`).
    Context,
}

impl DecideArgument {
    /// The argument's name: `signal` or `context`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecideArgument::Signal => "signal",
            DecideArgument::Context => "context",
        }
    }
}

impl DecideError {
    /// A `decide` argument a binding could not read as JSON: `path` is the JSON path of
    /// the value within it (empty for the argument itself). The error names the path, or
    /// the argument when the path is empty.
    pub fn unreadable_argument(
        argument: DecideArgument,
        path: String,
        message: String,
    ) -> DecideError {
        let field = if path.is_empty() {
            argument.as_str().to_owned()
        } else {
            path
        };
        match argument {
            DecideArgument::Signal => DecideError::Signal(SignalError::new(field, message)),
            DecideArgument::Context => DecideError::Context(ContextError::new(field, message)),
        }
    }

    /// The serialisable form of this error.
    pub fn info(&self) -> ErrorInfo {
        match self {
            DecideError::Signal(e) => ErrorInfo {
                field: Some(e.field.clone()),
                ..ErrorInfo::new(codes::SIGNAL_INVALID, e.to_string())
            },
            DecideError::Context(e) => ErrorInfo {
                field: Some(e.field.clone()),
                ..ErrorInfo::new(codes::CONTEXT_INVALID, e.to_string())
            },
            DecideError::Forbidden(_) => ErrorInfo::new(codes::FORBIDDEN, self.to_string()),
            DecideError::Unavailable { .. } => ErrorInfo::new(codes::UNAVAILABLE, self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_argument_names_its_path_or_itself() {
        let at = |argument, path: &str| {
            DecideError::unreadable_argument(argument, path.to_owned(), "bad".to_owned()).info()
        };
        let inner = at(DecideArgument::Signal, "payload.x");
        assert_eq!(inner.code, codes::SIGNAL_INVALID);
        assert_eq!(inner.field.as_deref(), Some("payload.x"));
        let whole = at(DecideArgument::Context, "");
        assert_eq!(whole.code, codes::CONTEXT_INVALID);
        assert_eq!(whole.field.as_deref(), Some("context"));
    }

    #[test]
    fn diagnostic_renders_in_the_validate_format() {
        let mut d = Diagnostic::error("unknown-field", "unknown field `foo`", "a.yaml");
        d.line = Some(3);
        d.column = Some(5);
        assert_eq!(
            d.to_string(),
            "a.yaml:3:5: error[unknown-field]: unknown field `foo`"
        );
    }

    #[test]
    fn quoted_escapes_controls_and_hidden_characters_and_cuts_long_values() {
        assert_eq!(
            Quoted("a\nb\t\u{1b}[31m").to_string(),
            "`a\\nb\\t\\u{1b}[31m`"
        );
        assert_eq!(
            Quoted("x\u{202E}\u{2066}\u{200B}\u{E0041}\u{2028}\u{85}").to_string(),
            "`x\\u{202e}\\u{2066}\\u{200b}\\u{e0041}\\u{2028}\\u{85}`"
        );
        assert_eq!(Quoted("Café 漢字").to_string(), "`Café 漢字`");
        let long = "é".repeat(10 << 20);
        let shown = Quoted(&long).to_string();
        assert_eq!(
            shown,
            format!("`{}…` ({} characters)", "é".repeat(64), 10 << 20)
        );
    }

    #[test]
    fn library_messages_are_cut_and_escaped_inside_quotes() {
        let long = "v".repeat(5000);
        let m = clean_message(&format!(
            "unknown variant `{long}\u{1b}`, expected one of `ide`, `chat`"
        ));
        assert_eq!(
            m,
            format!(
                "unknown variant `{}…`, expected one of `ide`, `chat`",
                "v".repeat(64)
            )
        );
        let m = clean_message(&format!(
            "invalid type: string \"a\\\"{long}\", expected u32"
        ));
        assert!(m.ends_with("…\", expected u32") && m.len() < 120, "{m}");
        assert_eq!(clean_message("bad \u{202E} here"), "bad \\u{202e} here");
    }

    #[test]
    fn unavailable_names_the_port_by_its_spec_name() {
        let e = DecideError::Unavailable {
            dependency: crate::model::PortName::DataGovernance,
            message: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "unavailable: data_governance is down: connection refused"
        );
        assert_eq!(e.info().code, codes::UNAVAILABLE);
    }

    #[test]
    fn every_code_is_listed_once_with_one_name() {
        let source = include_str!("error.rs");
        let module =
            &source[source.find("pub mod codes {").unwrap()..source.find("pub const ALL").unwrap()];
        let declared: Vec<&str> = module
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub const "))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert!(declared.len() >= 16, "{declared:?}");
        let listed: Vec<&str> = codes::ALL.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            declared, listed,
            "every code in `codes`, in order, is in `codes::ALL`"
        );
        let mut names: Vec<&str> = codes::ALL.iter().map(|(_, n)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), codes::ALL.len(), "one name per code");
    }

    #[test]
    fn every_public_error_type_gives_a_listed_code() {
        use crate::approval::{ApprovalError, ApprovalState};
        use crate::audit::AuditError;
        let cases = [
            (ApprovalError::NotFound("a".into()).info(), codes::NOT_FOUND),
            (
                ApprovalError::NotDualChannel("a".into()).info(),
                codes::APPROVAL_REFUSED,
            ),
            (
                ApprovalError::SameChannel("ide".into()).info(),
                codes::CONFLICT,
            ),
            (
                ApprovalError::Terminal(ApprovalState::Approved).info(),
                codes::CONFLICT,
            ),
            (
                ApprovalError::Unavailable("down".into()).info(),
                codes::UNAVAILABLE,
            ),
            (
                AuditError::Unavailable("down".into()).info(),
                codes::AUDIT_FAILED,
            ),
            (
                AuditError::UnknownExperiment("e".into()).info(),
                codes::NOT_FOUND,
            ),
            (
                crate::FatigueError::Full { max_actors: 1 }.info(),
                codes::UNAVAILABLE,
            ),
            (
                crate::Duration::parse("0s").unwrap_err().info(),
                codes::DURATION_INVALID,
            ),
            (
                crate::PortError::Rejected("no".into()).info(),
                codes::REJECTED,
            ),
            (
                crate::PortError::Unavailable("x".into()).info(),
                codes::UNAVAILABLE,
            ),
            (
                crate::number::parse_json("{").unwrap_err().info(),
                codes::JSON_INVALID,
            ),
            (
                crate::EngineConfig::from_json(&serde_json::json!({"x": 1}))
                    .unwrap_err()
                    .info(),
                codes::CONFIG_INVALID,
            ),
        ];
        for (info, code) in cases {
            assert_eq!(info.code, code, "{info:?}");
            assert_ne!(codes::error_name(&info.code), "MmmError");
        }
        let json = crate::number::parse_json("{\"a\": [1, 123456789012345678901234567890]}")
            .unwrap_err()
            .info();
        assert_eq!((json.field.as_deref(), json.line), (Some("a[1]"), Some(1)));
    }

    #[test]
    fn signal_error_names_the_field_in_its_info() {
        let e = DecideError::from(SignalError::new("tenant_id", "is required"));
        let info = e.info();
        assert_eq!(info.code, "SIGNAL_INVALID");
        assert_eq!(info.field.as_deref(), Some("tenant_id"));
        assert!(info.message.contains("`tenant_id`"));
    }
}
