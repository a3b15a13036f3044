//! Direct conversion between Python objects and the engine's JSON values (no JSON text in
//! between): dict ↔ object, list/tuple ↔ array, str, int, float, bool, None; an aware
//! `datetime` becomes an RFC 3339 string.

use mmm_engine::number::{child_path, refused, NumberIssue, PathSegment};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted from Python (beyond it, an error, not a stack overflow).
const MAX_DEPTH: usize = 128;

/// A value that cannot become JSON: where (a JSON path, `""` for the value itself) and
/// why. Numbers follow the engine's rules (`mmm_engine::number`).
#[derive(Debug)]
pub struct Refused {
    /// The JSON path, e.g. `payload.x` or `items[3]`.
    pub path: String,
    /// Why, in the engine's words.
    pub message: String,
    /// A wrong type (`TypeError`) rather than a wrong value (`ValueError`).
    pub type_error: bool,
}

impl Refused {
    fn value(message: String) -> Refused {
        Refused {
            path: String::new(),
            message,
            type_error: false,
        }
    }

    fn type_error(message: String) -> Refused {
        Refused {
            type_error: true,
            ..Refused::value(message)
        }
    }

    fn python(e: &PyErr) -> Refused {
        Refused::value(e.to_string())
    }

    /// The same refusal seen from the container that holds the value at `segment`
    /// (paths are built only on the way out of an error).
    fn within(mut self, segment: PathSegment<'_>) -> Refused {
        let inner = std::mem::take(&mut self.path);
        let outer = child_path("", segment);
        self.path = if inner.is_empty() {
            outer
        } else if inner.starts_with('[') {
            format!("{outer}{inner}")
        } else {
            format!("{outer}.{inner}")
        };
        self
    }

    /// As a Python exception, for values that are not signals, contexts or outcomes
    /// (port answers, settings).
    pub fn into_py(self) -> PyErr {
        let message = if self.path.is_empty() {
            self.message
        } else {
            format!("`{}`: {}", self.path, self.message)
        };
        if self.type_error {
            PyTypeError::new_err(message)
        } else {
            PyValueError::new_err(message)
        }
    }
}

/// A Python value as JSON; errors as Python exceptions.
pub fn to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_json_checked(obj).map_err(Refused::into_py)
}

/// A Python value as JSON, or where and why it cannot be.
pub fn to_json_checked(obj: &Bound<'_, PyAny>) -> Result<Value, Refused> {
    to_json_at(obj, 0)
}

/// A Python int as JSON: exact within 64 bits, refused beyond.
fn int_to_json(obj: &Bound<'_, PyAny>) -> Result<Value, Refused> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(Value::Number(u.into()));
    }
    // `str()` of a very long int raises (Python's limit on digits); say how long it is.
    let literal = match obj.str() {
        Ok(s) => s.to_string(),
        Err(_) => match obj.call_method0("bit_length") {
            Ok(bits) => format!("an integer of {bits} bits"),
            Err(_) => "an integer".to_owned(),
        },
    };
    Err(Refused::value(refused(NumberIssue::TooLarge, &literal)))
}

/// A Python float as JSON: NaN and infinities refused, `-0.0` read as `0`.
fn float_to_json(f: f64) -> Result<Value, Refused> {
    if f == 0.0 {
        // Both zeros: -0.0 becomes the integer 0, which every binding prints alike; 0.0
        // stays a float.
        return Ok(if f.is_sign_negative() {
            Value::Number(0u8.into())
        } else {
            Value::Number(Number::from_f64(0.0).unwrap_or_else(|| 0u8.into()))
        });
    }
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        let literal = if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        Refused::value(refused(NumberIssue::NotFinite, literal))
    })
}

/// The context's top-level keys that callers commonly write as literals (besides the
/// signal's fields, which come from the core's `SIGNAL_FIELDS`).
const CONTEXT_KEYS: [&str; 3] = ["actor", "tenant_policy", "recent_signals"];

/// The keys of the engine's inputs (a signal's fields, a context's top-level keys).
fn known_keys() -> impl Iterator<Item = &'static str> {
    mmm_engine::SIGNAL_FIELDS.into_iter().chain(CONTEXT_KEYS)
}

/// A dict key's text. A key that is the interned string of one of `known_keys` (a key
/// written as a literal in Python source is interned) is recognised by identity and its
/// text taken from the table: under the stable ABI for Python 3.9, reading a `str`'s UTF-8
/// goes through a temporary `bytes` object, which costs more than the comparisons.
fn key_text(key: &Bound<'_, PyString>) -> Result<String, Refused> {
    // Each known key's interned string and text side by side, so that the search is one
    // plain loop over pairs (zipping two iterators, one of them a chain, cost four times
    // as much per key).
    static KEYS: PyOnceLock<Vec<(Py<PyString>, &'static str)>> = PyOnceLock::new();
    let py = key.py();
    let interned = KEYS.get_or_init(py, || {
        known_keys()
            .map(|k| (PyString::intern(py, k).unbind(), k))
            .collect()
    });
    let ptr = key.as_ptr();
    if let Some((_, text)) = interned.iter().find(|(known, _)| known.as_ptr() == ptr) {
        return Ok((*text).to_owned());
    }
    key.to_cow()
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| Refused::python(&e))
}

/// A dict's members, in its order, as JSON: what [`to_json_checked`] makes the object of,
/// with the same errors. A signal goes to the engine this way (`GivenSignal::Fields`),
/// so that no map is built and hashed only for the engine to take it apart.
pub fn to_json_members(d: &Bound<'_, PyDict>) -> Result<Vec<(String, Value)>, Refused> {
    let mut out = Vec::with_capacity(d.len());
    members(d, 0, |key, value| out.push((key, value)))?;
    Ok(out)
}

/// Each member of the dict at `depth` (its values one level deeper), in order, to `add`.
fn members(
    d: &Bound<'_, PyDict>,
    depth: usize,
    mut add: impl FnMut(String, Value),
) -> Result<(), Refused> {
    for (k, v) in d.iter() {
        let key = k
            .cast::<PyString>()
            .map_err(|_| Refused::type_error("dict keys must be strings".to_owned()))
            .and_then(key_text)?;
        let value = to_json_at(&v, depth + 1).map_err(|e| e.within(PathSegment::Key(&key)))?;
        add(key, value);
    }
    Ok(())
}

fn to_json_at(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, Refused> {
    if depth > MAX_DEPTH {
        return Err(Refused::value(format!(
            "is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // The most common types first (the types below are disjoint, so the order changes
    // nothing else).
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(
            s.to_cow().map_err(|e| Refused::python(&e))?.into_owned(),
        ));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        members(d, depth, |key, value| {
            map.insert(key, value);
        })?;
        return Ok(Value::Object(map));
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return int_to_json(obj);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return float_to_json(f.value());
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .enumerate()
            .map(|(i, v)| to_json_at(&v, depth + 1).map_err(|e| e.within(PathSegment::Index(i))))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .enumerate()
            .map(|(i, v)| to_json_at(&v, depth + 1).map_err(|e| e.within(PathSegment::Index(i))))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    let is_datetime = obj.hasattr("isoformat").map_err(|e| Refused::python(&e))?
        && obj.hasattr("tzinfo").map_err(|e| Refused::python(&e))?;
    if is_datetime {
        let naive = obj
            .getattr("tzinfo")
            .map_err(|e| Refused::python(&e))?
            .is_none();
        if naive {
            return Err(Refused::value(
                "datetimes must be timezone-aware".to_owned(),
            ));
        }
        return obj
            .call_method0("isoformat")
            .and_then(|s| s.extract())
            .map(Value::String)
            .map_err(|e| Refused::python(&e));
    }
    let name = obj
        .get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string());
    Err(Refused::type_error(format!(
        "cannot convert a `{name}` to JSON"
    )))
}

pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|item| to_py(py, item))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
