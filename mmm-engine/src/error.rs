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

    pub(crate) fn at(mut self, pos: Option<crate::playbook::positions::Pos>) -> Self {
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
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
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
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SignalError {
            field: field.into(),
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

impl DecideError {
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
    fn signal_error_names_the_field_in_its_info() {
        let e = DecideError::from(SignalError::new("tenant_id", "is required"));
        let info = e.info();
        assert_eq!(info.code, "SIGNAL_INVALID");
        assert_eq!(info.field.as_deref(), Some("tenant_id"));
        assert!(info.message.contains("`tenant_id`"));
    }
}
