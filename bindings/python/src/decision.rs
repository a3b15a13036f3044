//! The decision straight into Python objects: the hot path of `decide` builds no
//! intermediate JSON tree. The shape is exactly the serde form of SPEC §4 (the shared
//! vectors compare the two).
//!
//! Most of a decision's conversion is dict building (a nudge-1k decision has about a dozen
//! dicts and 150 keys), so each dict shape is built once per interpreter, with its keys in
//! SPEC order and every value `None`, and a decision's dicts are copies of it:
//! `PyDict_Copy` clones the key table in one step, and each `set_item` then replaces a
//! value under a key that is already there (the same interned object, so the lookup is an
//! identity check) — no growing, rehashing or resizing key by key. The engine's fixed
//! vocabulary (types, reasons, surfaces, statuses, degraded codes) is interned once too.
//! Together they halve the instructions of a typical conversion (see
//! `docs/perf-notes/bind.md`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use mmm_engine::{
    Action, ActionType, Decision, Degraded, PlaybookRef, Reason, ReceiptStatus, SharedStr,
    Suppressed, Surface,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString};
use pyo3::{intern, IntoPyObjectExt};

use crate::convert::to_py;

/// Functions returning the interned Python string of one vocabulary word, from a table
/// built once per interpreter (interning anew on every use would create, hash and look up
/// a string each time).
macro_rules! vocabulary {
    ($($name:ident: $ty:ty;)+) => {$(
        fn $name<'py>(py: Python<'py>, value: $ty) -> Bound<'py, PyString> {
            static WORDS: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
            let words = WORDS.get_or_init(py, || {
                <$ty>::ALL
                    .iter()
                    .map(|w| PyString::intern(py, w.as_str()).unbind())
                    .collect()
            });
            <$ty>::ALL
                .iter()
                .position(|w| *w == value)
                .and_then(|i| words.get(i))
                .map_or_else(|| PyString::intern(py, value.as_str()), |w| w.bind(py).clone())
        }
    )+};
}

vocabulary! {
    action_type: ActionType;
    surface: Surface;
    reason: Reason;
    degraded: Degraded;
    receipt_status: ReceiptStatus;
}

/// The keys of each dict of a decision, in SPEC order.
const DECISION: &[&str] = &[
    "decision_id",
    "signal_id",
    "tenant_id",
    "actor_id",
    "decided_at",
    "actions",
    "suppressed",
    "degraded",
    "redacted",
    "policy_snapshot_id",
    "receipt",
    "latency_us",
    "latency_warning",
    "explain",
];
const ACTION: &[&str] = &[
    "action_id",
    "fingerprint",
    "playbook",
    "type",
    "category",
    "priority",
    "surfaces",
    "title",
    "text",
    "rendered",
    "rationale",
    "requires_consent",
    "dual_channel",
    "operation",
    "params",
    "experiment",
];
const SUPPRESSED: &[&str] = &["playbook", "action_index", "type", "reason", "detail"];
const PLAYBOOK: &[&str] = &["id", "version"];
const RATIONALE: &[&str] = &["why", "trigger", "evidence"];
const EVIDENCE: &[&str] = &["path", "value"];
const EXPERIMENT: &[&str] = &["id", "variant"];
// `envelope` is added after these when the receipt has one.
const RECEIPT: &[&str] = &["receipt_id", "status"];

/// One dict per shape, keys in order and values `None`, copied for each dict built.
struct Shapes {
    decision: Py<PyDict>,
    action: Py<PyDict>,
    suppressed: Py<PyDict>,
    playbook: Py<PyDict>,
    rationale: Py<PyDict>,
    evidence: Py<PyDict>,
    experiment: Py<PyDict>,
    receipt: Py<PyDict>,
}

fn shape(py: Python<'_>, keys: &[&str]) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    for key in keys {
        d.set_item(PyString::intern(py, key), py.None())?;
    }
    Ok(d.unbind())
}

fn shapes(py: Python<'_>) -> PyResult<&'static Shapes> {
    static SHAPES: PyOnceLock<Shapes> = PyOnceLock::new();
    SHAPES.get_or_try_init(py, || {
        Ok(Shapes {
            decision: shape(py, DECISION)?,
            action: shape(py, ACTION)?,
            suppressed: shape(py, SUPPRESSED)?,
            playbook: shape(py, PLAYBOOK)?,
            rationale: shape(py, RATIONALE)?,
            evidence: shape(py, EVIDENCE)?,
            experiment: shape(py, EXPERIMENT)?,
            receipt: shape(py, RECEIPT)?,
        })
    })
}

/// A new dict of the given shape (every value `None` until set).
fn new_dict<'py>(py: Python<'py>, shape: &Py<PyDict>) -> PyResult<Bound<'py, PyDict>> {
    shape.bind(py).copy()
}

fn opt_str<'py>(py: Python<'py>, s: Option<&str>) -> Bound<'py, PyAny> {
    match s {
        Some(s) => PyString::new(py, s).into_any(),
        None => py.None().into_bound(py),
    }
}

/// A list of converted items, allocated at its final length.
fn list<'py, T: pyo3::PyTypeInfo>(
    py: Python<'py>,
    items: impl Iterator<Item = PyResult<Bound<'py, T>>>,
) -> PyResult<Bound<'py, PyList>> {
    let items = items.collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn json<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    to_py(py, &v)
}

/// Python objects every decision of one engine shares with the compiled playbooks, made
/// once instead of once per decision: the strings of the core's `SharedStr` texts
/// (playbook ids, categories, rationale texts, evidence paths) and, per playbook version,
/// a `{"id", "version"}` dict that each decision copies. Strings are immutable, so one
/// object may appear in many decisions; the dicts are never handed out, only copied.
///
/// Both maps are keyed by the text (the playbooks' by id and version): `SharedStr` keeps
/// short texts inline, so a text's address says nothing about it. A reload leaves the old
/// playbooks' entries behind until a map reaches `SHARED_LIMIT` entries and is emptied.
#[derive(Default)]
pub struct Shared {
    strings: HashMap<SharedStr, Py<PyString>, ByText>,
    playbooks: HashMap<(SharedStr, u32), Py<PyDict>, ByText>,
}

/// Entries a `Shared` map holds before it is emptied and refilled.
const SHARED_LIMIT: usize = 1 << 16;

/// The hasher of `Shared`'s keys: foldhash, the workspace's fast hasher (SipHash would
/// cost about as much as the string it saves).
type ByText = foldhash::fast::RandomState;

/// One decision's conversion: the shapes, and the engine's shared objects when they are
/// free to use (`None` converts without them: another conversion holds them, which only
/// happens if Python code run during a conversion, e.g. a finalizer, decides again).
struct Out<'s, 'py> {
    py: Python<'py>,
    shapes: &'static Shapes,
    shared: Option<MutexGuard<'s, Shared>>,
}

/// The suppression dict last built with its `type`, `reason` and `detail` set and the rest
/// `None`, copied for each following suppression that says the same (every `max_actions`
/// suppression of a decision does). Private to one conversion.
type LastSuppressed<'a, 'py> = Option<(&'a Suppressed, Bound<'py, PyDict>)>;

impl<'py> Out<'_, 'py> {
    /// The Python string of a shared text, made once per engine.
    fn text(&mut self, s: &SharedStr) -> Bound<'py, PyString> {
        let py = self.py;
        let Some(shared) = self.shared.as_mut() else {
            return PyString::new(py, s);
        };
        if let Some(obj) = shared.strings.get(s.as_str()) {
            return obj.bind(py).clone();
        }
        let obj = PyString::new(py, s);
        if shared.strings.len() >= SHARED_LIMIT {
            shared.strings.clear();
        }
        shared.strings.insert(s.clone(), obj.clone().unbind());
        obj
    }

    /// A fresh `{"id", "version"}` dict: a copy of the engine's for this playbook version.
    fn playbook(&mut self, p: &PlaybookRef) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let key = (p.id.clone(), p.version);
        if let Some(d) = self.shared.as_ref().and_then(|s| s.playbooks.get(&key)) {
            return d.bind(py).copy();
        }
        let d = new_dict(py, &self.shapes.playbook)?;
        d.set_item(intern!(py, "id"), self.text(&p.id))?;
        d.set_item(intern!(py, "version"), p.version)?;
        if let Some(shared) = self.shared.as_mut() {
            if shared.playbooks.len() >= SHARED_LIMIT {
                shared.playbooks.clear();
            }
            let template = d.copy()?.unbind();
            shared.playbooks.insert(key, template);
        }
        Ok(d)
    }

    fn action(&mut self, a: &Action) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let shapes = self.shapes;
        let d = new_dict(py, &shapes.action)?;
        d.set_item(intern!(py, "action_id"), &*a.action_id)?;
        d.set_item(intern!(py, "fingerprint"), &*a.fingerprint)?;
        d.set_item(intern!(py, "playbook"), self.playbook(&a.playbook)?)?;
        d.set_item(intern!(py, "type"), action_type(py, a.kind))?;
        d.set_item(intern!(py, "category"), self.text(&a.category))?;
        d.set_item(intern!(py, "priority"), a.priority)?;
        d.set_item(
            intern!(py, "surfaces"),
            list(py, a.surfaces.iter().map(|s| Ok(surface(py, *s))))?,
        )?;
        d.set_item(intern!(py, "title"), &*a.title)?;
        d.set_item(intern!(py, "text"), &*a.text)?;
        let rendered = PyDict::new(py);
        for (s, text) in &a.rendered {
            rendered.set_item(surface(py, *s), &**text)?;
        }
        d.set_item(intern!(py, "rendered"), rendered)?;
        let rationale = new_dict(py, &shapes.rationale)?;
        rationale.set_item(intern!(py, "why"), self.text(&a.rationale.why))?;
        rationale.set_item(intern!(py, "trigger"), self.text(&a.rationale.trigger))?;
        let mut evidence = Vec::with_capacity(a.rationale.evidence.len());
        for e in &a.rationale.evidence {
            let item = new_dict(py, &shapes.evidence)?;
            item.set_item(intern!(py, "path"), self.text(&e.path))?;
            item.set_item(intern!(py, "value"), to_py(py, &e.value)?)?;
            evidence.push(item);
        }
        rationale.set_item(intern!(py, "evidence"), PyList::new(py, evidence)?)?;
        d.set_item(intern!(py, "rationale"), rationale)?;
        d.set_item(intern!(py, "requires_consent"), a.requires_consent)?;
        d.set_item(intern!(py, "dual_channel"), a.dual_channel)?;
        // `operation`, `params` and `experiment` are `None` in the shape already.
        if let Some(operation) = &a.operation {
            d.set_item(intern!(py, "operation"), &**operation)?;
        }
        if let Some(params) = &a.params {
            d.set_item(intern!(py, "params"), to_py(py, params)?)?;
        }
        if let Some(e) = &a.experiment {
            let experiment = new_dict(py, &shapes.experiment)?;
            experiment.set_item(intern!(py, "id"), &*e.id)?;
            experiment.set_item(intern!(py, "variant"), &*e.variant)?;
            d.set_item(intern!(py, "experiment"), experiment)?;
        }
        Ok(d)
    }

    fn suppressed<'a>(
        &mut self,
        s: &'a Suppressed,
        last: &mut LastSuppressed<'a, 'py>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let template = match last {
            Some((prev, template))
                if prev.kind == s.kind && prev.reason == s.reason && prev.detail == s.detail =>
            {
                template.clone()
            }
            _ => {
                let template = new_dict(py, &self.shapes.suppressed)?;
                template.set_item(intern!(py, "type"), action_type(py, s.kind))?;
                template.set_item(intern!(py, "reason"), reason(py, s.reason))?;
                template.set_item(intern!(py, "detail"), s.detail.to_string())?;
                *last = Some((s, template.clone()));
                template
            }
        };
        let d = template.copy()?;
        d.set_item(intern!(py, "playbook"), self.playbook(&s.playbook)?)?;
        d.set_item(intern!(py, "action_index"), s.action_index)?;
        Ok(d)
    }
}

/// The decision as the dict of SPEC §4. `shared` is the engine's cache of the objects its
/// decisions share with the playbooks (see `Shared`).
pub fn to_py_decision<'py>(
    py: Python<'py>,
    decision: &Decision,
    shared: &Mutex<Shared>,
) -> PyResult<Bound<'py, PyAny>> {
    let shapes = shapes(py)?;
    let mut out = Out {
        py,
        shapes,
        // Not `lock`: a conversion that finds the cache held (see `Out`) must not wait for
        // it, and a poisoned cache is simply not used.
        shared: shared.try_lock().ok(),
    };
    let d = new_dict(py, &shapes.decision)?;
    d.set_item(intern!(py, "decision_id"), &*decision.decision_id)?;
    d.set_item(intern!(py, "signal_id"), &*decision.signal_id)?;
    d.set_item(intern!(py, "tenant_id"), &*decision.tenant_id)?;
    d.set_item(intern!(py, "actor_id"), &*decision.actor_id)?;
    d.set_item(intern!(py, "decided_at"), &*decision.decided_at)?;
    let mut actions = Vec::with_capacity(decision.actions.len());
    for a in &decision.actions {
        actions.push(out.action(a)?);
    }
    d.set_item(intern!(py, "actions"), PyList::new(py, actions)?)?;
    let mut last: LastSuppressed<'_, 'py> = None;
    let mut sup = Vec::with_capacity(decision.suppressed.len());
    for s in &decision.suppressed {
        sup.push(out.suppressed(s, &mut last)?);
    }
    drop(out);
    d.set_item(intern!(py, "suppressed"), PyList::new(py, sup)?)?;
    d.set_item(
        intern!(py, "degraded"),
        list(py, decision.degraded.iter().map(|c| Ok(degraded(py, *c))))?,
    )?;
    d.set_item(
        intern!(py, "redacted"),
        list(
            py,
            decision.redacted.iter().map(|r| Ok(PyString::new(py, r))),
        )?,
    )?;
    d.set_item(
        intern!(py, "policy_snapshot_id"),
        opt_str(py, decision.policy_snapshot_id.as_deref()),
    )?;
    let receipt = new_dict(py, &shapes.receipt)?;
    receipt.set_item(
        intern!(py, "receipt_id"),
        opt_str(py, decision.receipt.receipt_id.as_deref()),
    )?;
    receipt.set_item(
        intern!(py, "status"),
        receipt_status(py, decision.receipt.status),
    )?;
    if let Some(envelope) = &decision.receipt.envelope {
        receipt.set_item(intern!(py, "envelope"), json(py, envelope)?)?;
    }
    d.set_item(intern!(py, "receipt"), receipt)?;
    d.set_item(intern!(py, "latency_us"), decision.latency_us)?;
    d.set_item(intern!(py, "latency_warning"), decision.latency_warning)?;
    if let Some(e) = &decision.explain {
        d.set_item(intern!(py, "explain"), json(py, e)?)?;
    }
    d.into_bound_py_any(py)
}
