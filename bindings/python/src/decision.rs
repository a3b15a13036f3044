//! The decision straight into Python objects: the hot path of `decide` builds no
//! intermediate JSON tree. The shape is exactly the serde form of SPEC §4 (the shared
//! vectors compare the two).
//!
//! Most of a decision's conversion is dict building (a nudge-1k decision has about 45 dicts
//! and 150 keys), so each dict shape is built once per interpreter, with its keys in
//! SPEC order and every value `None`, and a decision's dicts are copies of it:
//! `PyDict_Copy` clones the key table in one step, and each `set_item` then replaces a
//! value under a key that is already there (the same interned object, so the lookup is an
//! identity check) — no growing, rehashing or resizing key by key. The engine's fixed
//! vocabulary (types, reasons, surfaces, statuses, degraded codes) is interned once too.
//! Together they halve the instructions of a typical conversion (see
//! `docs/perf-notes/bind.md`). Each engine also keeps a few templates of the dicts that
//! mostly repeat between decisions (see [`Shared`]).

use std::sync::{Mutex, MutexGuard};

use mmm_engine::{
    Action, ActionType, Decision, Degraded, Detail, PlaybookRef, Reason, ReceiptStatus, SharedStr,
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
        let decision = shape(py, DECISION)?;
        decision
            .bind(py)
            .set_item(intern!(py, "latency_warning"), false)?;
        Ok(Shapes {
            decision,
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

/// A new dict of the given shape (its defaults until set: `None`, or as `shapes` says).
fn new_dict<'py>(py: Python<'py>, shape: &Py<PyDict>) -> PyResult<Bound<'py, PyDict>> {
    shape.bind(py).copy()
}

fn json<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    to_py(py, &v)
}

/// Templates of a decision's dicts that an engine keeps between decisions: a few action
/// dicts with the fields an action takes from its playbook already set, a few suppression
/// dicts with everything but the playbook set, a few evidence dicts with their path set,
/// and a few `{"id", "version"}` dicts with their version set. A dict is copied from a
/// template that fits and only its own fields are set.
///
/// The templates are few on purpose, and not kept per playbook: a decision's objects are
/// built from data the core has just read (warm in the CPU's cache), while anything kept
/// per playbook is read from memory when its playbook's turn comes. Measured on nudge-1k
/// (1,000 playbooks), per-playbook strings, `{"id", "version"}` dicts and templates saved
/// 17k instructions per call but cost 120 more last-level cache misses, and the call was
/// 13 % slower than with these (docs/perf-notes/round6.md).
///
/// Templates are copied, never handed out, and hold only immutable values (strings,
/// ints, bools, `None`), so every dict and list a decision returns is its own.
#[derive(Default)]
pub struct Shared {
    actions: Templates<ActionTemplate>,
    suppressed: Templates<SuppressedTemplate>,
    /// Keyed by the evidence path.
    evidence: Templates<SharedStr>,
    /// `{"id", "version"}` dicts with their version set, keyed by it: most playbooks of
    /// an engine share a version or a few.
    playbooks: Templates<u32>,
}

/// Templates of each kind an engine keeps.
const TEMPLATES: usize = 16;

/// Once a kind's templates are full, every `REPLACE_EVERY`-th miss makes a template that
/// replaces the oldest (so the set follows a change of playbooks); the other misses build
/// their dict field by field.
const REPLACE_EVERY: u32 = 64;

/// At most [`TEMPLATES`] templates of one kind: the values a template was made from (`K`)
/// and its dict. The first that fits is used.
struct Templates<K> {
    items: Vec<(K, Py<PyDict>)>,
    /// The slot the next replacement takes.
    next: usize,
    /// Misses since the set was full.
    misses: u32,
}

impl<K> Default for Templates<K> {
    fn default() -> Self {
        Templates {
            items: Vec::new(),
            next: 0,
            misses: 0,
        }
    }
}

impl<K> Templates<K> {
    /// A copy of the template whose values fit, or the dict `build` makes (kept as a
    /// template, with the values `key` gives, while there is room and every
    /// [`REPLACE_EVERY`]-th miss after).
    fn dict<'py>(
        &mut self,
        py: Python<'py>,
        fits: impl Fn(&K) -> bool,
        build: impl FnOnce() -> PyResult<Bound<'py, PyDict>>,
        key: impl FnOnce() -> K,
    ) -> PyResult<Bound<'py, PyDict>> {
        if let Some((_, dict)) = self.items.iter().find(|(k, _)| fits(k)) {
            return dict.bind(py).copy();
        }
        let d = build()?;
        if self.items.len() < TEMPLATES {
            self.items.push((key(), d.copy()?.unbind()));
        } else {
            self.misses = self.misses.wrapping_add(1);
            if self.misses.is_multiple_of(REPLACE_EVERY) {
                if let Some(slot) = self.items.get_mut(self.next) {
                    *slot = (key(), d.copy()?.unbind());
                }
                self.next = (self.next + 1) % TEMPLATES;
            }
        }
        Ok(d)
    }
}

/// The fields an action takes from its playbook (`type`, `category`, `priority`, `title`,
/// `requires_consent`, `dual_channel`, `operation`): what an action template is made from.
struct ActionTemplate {
    kind: ActionType,
    category: SharedStr,
    priority: u8,
    title: String,
    requires_consent: bool,
    dual_channel: bool,
    operation: Option<String>,
}

impl ActionTemplate {
    fn of(a: &Action) -> Self {
        ActionTemplate {
            kind: a.kind,
            category: a.category.clone(),
            priority: a.priority,
            title: a.title.clone(),
            requires_consent: a.requires_consent,
            dual_channel: a.dual_channel,
            operation: a.operation.clone(),
        }
    }

    fn fits(&self, a: &Action) -> bool {
        self.kind == a.kind
            && self.priority == a.priority
            && self.requires_consent == a.requires_consent
            && self.dual_channel == a.dual_channel
            && self.category == a.category
            && self.title == a.title
            && self.operation == a.operation
    }
}

/// A suppression's `action_index`, `type`, `reason` and `detail`: what a suppression
/// template is made from. A decision's suppressions mostly say the same thing of different
/// playbooks (every `max_actions` suppression of a decision does), so a few templates
/// serve them all.
struct SuppressedTemplate {
    action_index: usize,
    kind: ActionType,
    reason: Reason,
    detail: Detail,
}

impl SuppressedTemplate {
    fn of(s: &Suppressed) -> Self {
        SuppressedTemplate {
            action_index: s.action_index,
            kind: s.kind,
            reason: s.reason,
            detail: s.detail.clone(),
        }
    }

    fn fits(&self, s: &Suppressed) -> bool {
        self.action_index == s.action_index
            && self.kind == s.kind
            && self.reason == s.reason
            && self.detail == s.detail
    }
}

/// Sets the fields an action takes from its playbook.
fn action_statics<'py>(py: Python<'py>, d: &Bound<'py, PyDict>, a: &Action) -> PyResult<()> {
    d.set_item(intern!(py, "type"), action_type(py, a.kind))?;
    d.set_item(intern!(py, "category"), &*a.category)?;
    d.set_item(intern!(py, "priority"), a.priority)?;
    d.set_item(intern!(py, "title"), &*a.title)?;
    d.set_item(intern!(py, "requires_consent"), a.requires_consent)?;
    d.set_item(intern!(py, "dual_channel"), a.dual_channel)?;
    // `None` in the shape already.
    if let Some(operation) = &a.operation {
        d.set_item(intern!(py, "operation"), &**operation)?;
    }
    Ok(())
}

/// A suppression dict with everything but `playbook` set.
fn suppressed_statics<'py>(
    py: Python<'py>,
    shapes: &Shapes,
    s: &Suppressed,
) -> PyResult<Bound<'py, PyDict>> {
    let d = new_dict(py, &shapes.suppressed)?;
    d.set_item(intern!(py, "action_index"), s.action_index)?;
    d.set_item(intern!(py, "type"), action_type(py, s.kind))?;
    d.set_item(intern!(py, "reason"), reason(py, s.reason))?;
    d.set_item(intern!(py, "detail"), s.detail.to_string())?;
    Ok(d)
}

/// One decision's conversion: the shapes, and the engine's templates when they are free
/// to use (`None` converts without them: another conversion holds them, which only
/// happens if Python code run during a conversion, e.g. a finalizer, decides again).
struct Out<'s, 'py> {
    py: Python<'py>,
    shapes: &'static Shapes,
    shared: Option<MutexGuard<'s, Shared>>,
}

impl<'py> Out<'_, 'py> {
    /// A `{"id", "version"}` dict.
    fn playbook(&mut self, p: &PlaybookRef) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let shapes = self.shapes;
        let build = || {
            let d = new_dict(py, &shapes.playbook)?;
            d.set_item(intern!(py, "version"), p.version)?;
            Ok(d)
        };
        let d = match self.shared.as_deref_mut() {
            Some(shared) => shared
                .playbooks
                .dict(py, |v| *v == p.version, build, || p.version),
            None => build(),
        }?;
        d.set_item(intern!(py, "id"), &*p.id)?;
        Ok(d)
    }

    /// An action dict with the fields it takes from its playbook set.
    fn action_dict(&mut self, a: &Action) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let shapes = self.shapes;
        let build = || {
            let d = new_dict(py, &shapes.action)?;
            action_statics(py, &d, a)?;
            Ok(d)
        };
        match self.shared.as_deref_mut() {
            Some(shared) => shared
                .actions
                .dict(py, |t| t.fits(a), build, || ActionTemplate::of(a)),
            None => build(),
        }
    }

    /// An evidence dict with `path` set.
    fn evidence_dict(&mut self, path: &SharedStr) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let shapes = self.shapes;
        let build = || {
            let d = new_dict(py, &shapes.evidence)?;
            d.set_item(intern!(py, "path"), &**path)?;
            Ok(d)
        };
        match self.shared.as_deref_mut() {
            Some(shared) => shared
                .evidence
                .dict(py, |p| p == path, build, || path.clone()),
            None => build(),
        }
    }

    fn action(&mut self, a: &Action) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let shapes = self.shapes;
        let d = self.action_dict(a)?;
        d.set_item(intern!(py, "action_id"), &*a.action_id)?;
        d.set_item(intern!(py, "fingerprint"), &*a.fingerprint)?;
        d.set_item(intern!(py, "playbook"), self.playbook(&a.playbook)?)?;
        d.set_item(
            intern!(py, "surfaces"),
            PyList::new(py, a.surfaces.iter().map(|s| surface(py, *s)))?,
        )?;
        d.set_item(intern!(py, "text"), &*a.text)?;
        let rendered = PyDict::new(py);
        for (s, text) in &a.rendered {
            rendered.set_item(surface(py, *s), &**text)?;
        }
        d.set_item(intern!(py, "rendered"), rendered)?;
        let rationale = new_dict(py, &shapes.rationale)?;
        rationale.set_item(intern!(py, "why"), &*a.rationale.why)?;
        rationale.set_item(intern!(py, "trigger"), &*a.rationale.trigger)?;
        let mut evidence = Vec::with_capacity(a.rationale.evidence.len());
        for e in &a.rationale.evidence {
            let item = self.evidence_dict(&e.path)?;
            item.set_item(intern!(py, "value"), to_py(py, &e.value)?)?;
            evidence.push(item);
        }
        rationale.set_item(intern!(py, "evidence"), PyList::new(py, evidence)?)?;
        d.set_item(intern!(py, "rationale"), rationale)?;
        // `params` and `experiment` are `None` in the shape and the templates.
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

    fn suppressed(&mut self, s: &Suppressed) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let shapes = self.shapes;
        let build = || suppressed_statics(py, shapes, s);
        let d = match self.shared.as_deref_mut() {
            Some(shared) => {
                shared
                    .suppressed
                    .dict(py, |t| t.fits(s), build, || SuppressedTemplate::of(s))?
            }
            None => build()?,
        };
        d.set_item(intern!(py, "playbook"), self.playbook(&s.playbook)?)?;
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
    let mut sup = Vec::with_capacity(decision.suppressed.len());
    for s in &decision.suppressed {
        sup.push(out.suppressed(s)?);
    }
    drop(out);
    d.set_item(intern!(py, "suppressed"), PyList::new(py, sup)?)?;
    d.set_item(
        intern!(py, "degraded"),
        PyList::new(py, decision.degraded.iter().map(|c| degraded(py, *c)))?,
    )?;
    d.set_item(
        intern!(py, "redacted"),
        PyList::new(py, decision.redacted.iter().map(|r| PyString::new(py, r)))?,
    )?;
    // `policy_snapshot_id` and `receipt_id` are `None`, and `latency_warning` `False`, in
    // the shapes.
    if let Some(id) = &decision.policy_snapshot_id {
        d.set_item(intern!(py, "policy_snapshot_id"), &**id)?;
    }
    let receipt = new_dict(py, &shapes.receipt)?;
    if let Some(id) = &decision.receipt.receipt_id {
        receipt.set_item(intern!(py, "receipt_id"), &**id)?;
    }
    receipt.set_item(
        intern!(py, "status"),
        receipt_status(py, decision.receipt.status),
    )?;
    if let Some(envelope) = &decision.receipt.envelope {
        receipt.set_item(intern!(py, "envelope"), json(py, envelope)?)?;
    }
    d.set_item(intern!(py, "receipt"), receipt)?;
    d.set_item(intern!(py, "latency_us"), decision.latency_us)?;
    if decision.latency_warning {
        d.set_item(intern!(py, "latency_warning"), true)?;
    }
    if let Some(e) = &decision.explain {
        d.set_item(intern!(py, "explain"), json(py, e)?)?;
    }
    d.into_bound_py_any(py)
}
