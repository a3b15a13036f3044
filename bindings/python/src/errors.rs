//! One exhaustive mapping from the engine's errors to Python exceptions. Every exception
//! carries the structured fields of `ErrorInfo` as attributes: `code`, `message`, `field`,
//! `rule`, `file`, `line`, `column`, `playbook` (None when not applicable).

use mmm_engine::approval::ApprovalError as CoreApprovalError;
use mmm_engine::audit::AuditError;
use mmm_engine::outcome::OutcomeError as CoreOutcomeError;
use mmm_engine::receipt::ReceiptError as CoreReceiptError;
use mmm_engine::{codes, DecideError, ErrorInfo, LoadError};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    _native,
    MmmError,
    PyException,
    "Base class of every mmm-engine error."
);
create_exception!(
    _native,
    PlaybookError,
    MmmError,
    "A playbook or experiment document is invalid, or cannot be read."
);
create_exception!(
    _native,
    SignalError,
    MmmError,
    "The signal envelope is invalid."
);
create_exception!(
    _native,
    ContextError,
    SignalError,
    "The context passed beside the signal is invalid."
);
create_exception!(
    _native,
    UnavailableError,
    MmmError,
    "A dependency the decision cannot do without (IAM) is down."
);
create_exception!(
    _native,
    ForbiddenError,
    MmmError,
    "IAM says the actor is inactive or unknown."
);
create_exception!(
    _native,
    ReceiptError,
    MmmError,
    "A receipt or a key does not verify."
);
create_exception!(_native, OutcomeError, MmmError, "The outcome is invalid.");
create_exception!(
    _native,
    ApprovalError,
    MmmError,
    "An approval operation was refused."
);
create_exception!(
    _native,
    AuditFailedError,
    MmmError,
    "The audit sink could not record a change, so it did not happen."
);
create_exception!(
    _native,
    Rejected,
    PyException,
    "Raise from a port for a business answer (a deny, a not-found): the dependency is up, \
     and its circuit breaker does not count it as a failure."
);

/// Builds an exception of type `T` carrying `info` as attributes.
fn raise<T: pyo3::type_object::PyTypeInfo>(py: Python<'_>, info: &ErrorInfo) -> PyErr {
    let err = PyErr::from_type(T::type_object(py), info.message.clone());
    let value = err.value(py);
    let set = |name: &str, v: Option<Bound<'_, PyAny>>| {
        let _ = value.setattr(name, v.unwrap_or_else(|| py.None().into_bound(py)));
    };
    let s = |t: &Option<String>| {
        t.as_ref()
            .map(|t| pyo3::types::PyString::new(py, t).into_any())
    };
    let n = |t: Option<usize>| {
        t.and_then(|t| t.into_pyobject(py).ok())
            .map(|t| t.into_any())
    };
    set(
        "code",
        Some(pyo3::types::PyString::new(py, &info.code).into_any()),
    );
    set(
        "message",
        Some(pyo3::types::PyString::new(py, &info.message).into_any()),
    );
    set("field", s(&info.field));
    set("rule", s(&info.rule));
    set("file", s(&info.file));
    set("line", n(info.line));
    set("column", n(info.column));
    set("playbook", s(&info.playbook));
    err
}

/// Every error the binding can raise, from the engine's error types.
pub enum EngineError {
    Load(LoadError),
    Decide(DecideError),
    Receipt(CoreReceiptError),
    Outcome(CoreOutcomeError),
    Approval(CoreApprovalError),
    Audit(AuditError),
}

impl EngineError {
    pub fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            EngineError::Load(e) => {
                let info = e.info();
                let err = raise::<PlaybookError>(py, &info);
                // Every diagnostic, for callers that show them all.
                let all: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
                let _ = err.value(py).setattr("diagnostics", all);
                err
            }
            EngineError::Decide(e) => {
                let info = e.info();
                match &e {
                    DecideError::Signal(_) => raise::<SignalError>(py, &info),
                    DecideError::Context(_) => raise::<ContextError>(py, &info),
                    DecideError::Forbidden(_) => raise::<ForbiddenError>(py, &info),
                    DecideError::Unavailable { .. } => raise::<UnavailableError>(py, &info),
                    // The core may grow new errors; they are still MmmErrors with a code.
                    _ => raise::<MmmError>(py, &info),
                }
            }
            EngineError::Receipt(e) => raise::<ReceiptError>(py, &e.info()),
            EngineError::Outcome(e) => raise::<OutcomeError>(py, &e.info()),
            EngineError::Approval(e) => {
                raise::<ApprovalError>(py, &ErrorInfo::new(codes::APPROVAL_REFUSED, e.to_string()))
            }
            EngineError::Audit(e) => {
                raise::<AuditFailedError>(py, &ErrorInfo::new(codes::AUDIT_FAILED, e.to_string()))
            }
        }
    }
}

pub fn receipt_error(py: Python<'_>, message: String) -> PyErr {
    raise::<ReceiptError>(py, &ErrorInfo::new(codes::RECEIPT_INVALID, message))
}
