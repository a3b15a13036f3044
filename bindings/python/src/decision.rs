//! The decision straight into Python objects, keys interned: the hot path of `decide`
//! builds no intermediate JSON tree. The shape is exactly the serde form of SPEC §4 (the
//! shared vectors compare the two).

use mmm_engine::{Action, Decision, Detail, Suppressed};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use pyo3::{intern, IntoPyObjectExt};

use crate::convert::to_py;

/// An interned Python string for the engine's fixed vocabulary (types, reasons, surfaces,
/// degraded codes): created once per interpreter, shared by every decision.
fn word<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyString> {
    PyString::intern(py, s)
}

fn opt_str<'py>(py: Python<'py>, s: Option<&str>) -> Bound<'py, PyAny> {
    match s {
        Some(s) => PyString::new(py, s).into_any(),
        None => py.None().into_bound(py),
    }
}

fn playbook<'py>(py: Python<'py>, id: &str, version: u32) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), id)?;
    d.set_item(intern!(py, "version"), version)?;
    Ok(d)
}

fn json<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    to_py(py, &v)
}

fn action<'py>(py: Python<'py>, a: &Action) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "action_id"), a.action_id.as_str())?;
    d.set_item(intern!(py, "fingerprint"), a.fingerprint.as_str())?;
    d.set_item(
        intern!(py, "playbook"),
        playbook(py, &a.playbook.id, a.playbook.version)?,
    )?;
    d.set_item(intern!(py, "type"), word(py, a.kind.as_str()))?;
    d.set_item(intern!(py, "category"), &*a.category)?;
    d.set_item(intern!(py, "priority"), a.priority)?;
    let surfaces = PyList::empty(py);
    for s in a.surfaces.iter() {
        surfaces.append(word(py, s.as_str()))?;
    }
    d.set_item(intern!(py, "surfaces"), surfaces)?;
    d.set_item(intern!(py, "title"), &a.title)?;
    d.set_item(intern!(py, "text"), &a.text)?;
    let rendered = PyDict::new(py);
    for (surface, text) in &a.rendered {
        rendered.set_item(word(py, surface.as_str()), text)?;
    }
    d.set_item(intern!(py, "rendered"), rendered)?;
    let rationale = PyDict::new(py);
    rationale.set_item(intern!(py, "why"), &*a.rationale.why)?;
    rationale.set_item(intern!(py, "trigger"), &*a.rationale.trigger)?;
    let evidence = PyList::empty(py);
    for e in &a.rationale.evidence {
        let item = PyDict::new(py);
        item.set_item(intern!(py, "path"), &*e.path)?;
        item.set_item(intern!(py, "value"), to_py(py, &e.value)?)?;
        evidence.append(item)?;
    }
    rationale.set_item(intern!(py, "evidence"), evidence)?;
    d.set_item(intern!(py, "rationale"), rationale)?;
    d.set_item(intern!(py, "requires_consent"), a.requires_consent)?;
    d.set_item(intern!(py, "dual_channel"), a.dual_channel)?;
    d.set_item(
        intern!(py, "operation"),
        opt_str(py, a.operation.as_deref()),
    )?;
    d.set_item(
        intern!(py, "params"),
        match &a.params {
            Some(p) => to_py(py, p)?,
            None => py.None().into_bound(py),
        },
    )?;
    d.set_item(
        intern!(py, "experiment"),
        match &a.experiment {
            Some(e) => {
                let d = PyDict::new(py);
                d.set_item(intern!(py, "id"), &e.id)?;
                d.set_item(intern!(py, "variant"), &e.variant)?;
                d.into_any()
            }
            None => py.None().into_bound(py),
        },
    )?;
    Ok(d)
}

/// The last detail converted, reused when the next suppression says the same (all the
/// `max_actions` suppressions of a decision do).
type LastDetail<'a, 'py> = Option<(&'a Detail, Bound<'py, PyString>)>;

fn suppressed<'a, 'py>(
    py: Python<'py>,
    s: &'a Suppressed,
    last: &mut LastDetail<'a, 'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(
        intern!(py, "playbook"),
        playbook(py, &s.playbook.id, s.playbook.version)?,
    )?;
    d.set_item(intern!(py, "action_index"), s.action_index)?;
    d.set_item(intern!(py, "type"), word(py, s.kind.as_str()))?;
    d.set_item(intern!(py, "reason"), word(py, s.reason.as_str()))?;
    let detail = match last {
        Some((detail, obj)) if **detail == s.detail => obj.clone(),
        _ => {
            let obj = PyString::new(py, &s.detail.to_string());
            *last = Some((&s.detail, obj.clone()));
            obj
        }
    };
    d.set_item(intern!(py, "detail"), detail)?;
    Ok(d)
}

pub fn to_py_decision<'py>(py: Python<'py>, decision: &Decision) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "decision_id"), decision.decision_id.as_str())?;
    d.set_item(intern!(py, "signal_id"), &decision.signal_id)?;
    d.set_item(intern!(py, "tenant_id"), &decision.tenant_id)?;
    d.set_item(intern!(py, "actor_id"), &decision.actor_id)?;
    d.set_item(intern!(py, "decided_at"), &decision.decided_at)?;
    let actions = PyList::empty(py);
    for a in &decision.actions {
        actions.append(action(py, a)?)?;
    }
    d.set_item(intern!(py, "actions"), actions)?;
    let sup = PyList::empty(py);
    let mut last: LastDetail<'_, 'py> = None;
    for s in &decision.suppressed {
        sup.append(suppressed(py, s, &mut last)?)?;
    }
    d.set_item(intern!(py, "suppressed"), sup)?;
    let degraded = PyList::empty(py);
    for code in &decision.degraded {
        degraded.append(word(py, code.as_str()))?;
    }
    d.set_item(intern!(py, "degraded"), degraded)?;
    let redacted = PyList::empty(py);
    for r in &decision.redacted {
        redacted.append(r)?;
    }
    d.set_item(intern!(py, "redacted"), redacted)?;
    d.set_item(
        intern!(py, "policy_snapshot_id"),
        opt_str(py, decision.policy_snapshot_id.as_deref()),
    )?;
    let receipt = PyDict::new(py);
    receipt.set_item(
        intern!(py, "receipt_id"),
        opt_str(py, decision.receipt.receipt_id.as_deref()),
    )?;
    receipt.set_item(
        intern!(py, "status"),
        word(py, decision.receipt.status.as_str()),
    )?;
    if let Some(envelope) = &decision.receipt.envelope {
        receipt.set_item(intern!(py, "envelope"), json(py, envelope)?)?;
    }
    d.set_item(intern!(py, "receipt"), receipt)?;
    d.set_item(intern!(py, "latency_us"), decision.latency_us)?;
    d.set_item(intern!(py, "latency_warning"), decision.latency_warning)?;
    d.set_item(
        intern!(py, "explain"),
        match &decision.explain {
            Some(e) => json(py, e)?,
            None => py.None().into_bound(py),
        },
    )?;
    d.into_bound_py_any(py)
}
