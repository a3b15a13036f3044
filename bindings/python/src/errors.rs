//! The engine's errors as Python exceptions, mapped by the core's stable code alone: one
//! class per code of `mmm_engine::codes::ALL`, named as the core names it
//! (`SignalError` for `SIGNAL_INVALID`, …), every one a subclass of `MmmError`. The classes
//! are made from that list when the module loads, so a code the core adds gets its class
//! without a change here. Every exception carries the structured fields of `ErrorInfo` as
//! attributes: `code`, `message`, `field`, `rule`, `file`, `line`, `column`, `playbook`
//! (None when not applicable); each class has its `code` as a class attribute.

use std::collections::HashMap;
use std::ffi::CString;

use mmm_engine::{codes, ErrorInfo, LoadError};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyType};

create_exception!(
    mmm_engine,
    MmmError,
    PyException,
    "Base class of every mmm-engine error."
);

/// Classes whose parent is another code's class rather than `MmmError`: a context error
/// is a signal error (the context travels with the signal), an unreadable playbook file a
/// playbook error.
const PARENTS: &[(&str, &str)] = &[
    ("ContextError", "SignalError"),
    ("IoError", "PlaybookError"),
];

static CLASSES: PyOnceLock<HashMap<&'static str, Py<PyType>>> = PyOnceLock::new();

fn make_classes(py: Python<'_>) -> PyResult<HashMap<&'static str, Py<PyType>>> {
    let mut classes: HashMap<&'static str, Py<PyType>> = HashMap::new();
    for (code, name) in codes::ALL {
        let base = match PARENTS.iter().find(|(child, _)| *child == *name) {
            Some((_, parent)) => classes
                .get(parent)
                .ok_or_else(|| {
                    PyRuntimeError::new_err(format!("{parent} must come before {name}"))
                })?
                .bind(py)
                .clone(),
            None => py.get_type::<MmmError>(),
        };
        let dict = PyDict::new(py);
        dict.set_item("code", *code)?;
        let qualified = CString::new(format!("mmm_engine.{name}"))?;
        let doc = CString::new(format!(
            "An mmm-engine error with code `{code}` (see the attributes of MmmError)."
        ))?;
        // A second reference: `new_type` drops the one it is given before Python reads it.
        let class = PyErr::new_type(
            py,
            &qualified,
            Some(&doc),
            Some(&base),
            Some(dict.clone().into_any().unbind()),
        )?;
        drop(dict);
        classes.insert(name, class);
    }
    Ok(classes)
}

/// Every class, by name (made on first use).
pub fn classes(py: Python<'_>) -> PyResult<&HashMap<&'static str, Py<PyType>>> {
    CLASSES.get_or_try_init(py, || make_classes(py))
}

/// The class of errors with `code` (`MmmError` for a code the binding does not know).
pub fn class_for<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyType> {
    classes(py)
        .ok()
        .and_then(|c| c.get(codes::error_name(code)))
        .map_or_else(|| py.get_type::<MmmError>(), |c| c.bind(py).clone())
}

/// The exception for `info`: the class of its code, carrying the fields as attributes.
pub fn raise(py: Python<'_>, info: &ErrorInfo) -> PyErr {
    let err = PyErr::from_type(class_for(py, &info.code), info.message.clone());
    let value = err.value(py);
    let set = |name: &str, v: Option<Bound<'_, PyAny>>| {
        let _ = value.setattr(name, v.unwrap_or_else(|| py.None().into_bound(py)));
    };
    let s = |t: &Option<String>| t.as_ref().map(|t| PyString::new(py, t).into_any());
    let n = |t: Option<usize>| {
        t.and_then(|t| t.into_pyobject(py).ok())
            .map(|t| t.into_any())
    };
    set("code", Some(PyString::new(py, &info.code).into_any()));
    set("message", Some(PyString::new(py, &info.message).into_any()));
    set("field", s(&info.field));
    set("rule", s(&info.rule));
    set("file", s(&info.file));
    set("line", n(info.line));
    set("column", n(info.column));
    set("playbook", s(&info.playbook));
    err
}

/// A playbook load error, with every diagnostic (for callers that show them all).
pub fn load_error(py: Python<'_>, e: &LoadError) -> PyErr {
    let err = raise(py, &e.info());
    let all: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
    let _ = err.value(py).setattr("diagnostics", all);
    err
}

/// A receipt error with a message (a malformed envelope, a bad key).
pub fn receipt_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, &ErrorInfo::new(codes::RECEIPT_INVALID, message))
}

/// Adds every class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MmmError", py.get_type::<MmmError>())?;
    for (name, class) in classes(py)? {
        m.add(*name, class.bind(py))?;
    }
    let by_code = PyDict::new(py);
    for (code, _) in codes::ALL {
        by_code.set_item(*code, class_for(py, code))?;
    }
    m.add("ERROR_CLASSES", by_code)?;
    Ok(())
}
