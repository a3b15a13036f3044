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

/// Python objects every decision of one engine shares with the compiled playbooks, made
/// once instead of once per decision:
/// - the strings of the core's `SharedStr` texts (playbook ids, categories, rationale
///   texts, evidence paths);
/// - per playbook version, its `{"id", "version"}` dict and templates of the action dicts
///   it produces (see `PlaybookObjects`);
/// - a few templates of suppression dicts (see `SuppressedTemplate`).
///
/// Strings, ints and bools are immutable, so one object may appear in many decisions; the
/// dicts kept here are never handed out, only copied, and every container of a decision is
/// its own.
///
/// The maps are keyed by the text (the playbooks' by id and version): `SharedStr` keeps
/// short texts inline, so a text's address says nothing about it. A reload leaves the old
/// playbooks' entries behind until the strings reach `SHARED_LIMIT` entries, the
/// playbooks `SHARED_LIMIT` entries or their action templates `TEMPLATE_LIMIT`, and that
/// map (or those templates) is emptied.
#[derive(Default)]
pub struct Shared {
    strings: HashMap<SharedStr, Py<PyString>, ByText>,
    playbooks: HashMap<(SharedStr, u32), PlaybookObjects, ByText>,
    /// Action templates held by `playbooks`, all entries together.
    templates: usize,
    /// Suppression templates, whatever the playbook (see `SuppressedTemplate`).
    suppressed: Vec<SuppressedTemplate>,
    /// The slot of `suppressed` the next new template takes once it is full.
    next_suppressed: usize,
}

/// Entries a `Shared` map holds before it is emptied and refilled.
const SHARED_LIMIT: usize = 1 << 16;

/// Action templates all playbooks together hold before they are emptied and refilled:
/// about 25 MB at most, whatever the playbooks.
const TEMPLATE_LIMIT: usize = 1 << 14;

/// Action templates one playbook version holds. A playbook whose actions differ from
/// decision to decision (a title read from the signal) stops adding templates here, and
/// its further variants are built field by field.
const TEMPLATES_PER_PLAYBOOK: usize = 4;

/// Suppression templates an engine keeps; a new one replaces the oldest.
const SUPPRESSED_TEMPLATES: usize = 16;

/// The hasher of `Shared`'s keys: foldhash, the workspace's fast hasher (SipHash would
/// cost about as much as the string it saves).
type ByText = foldhash::fast::RandomState;

/// What one playbook version's decisions share.
struct PlaybookObjects {
    /// `{"id", "version"}`, copied into each action and suppression.
    playbook: Py<PyDict>,
    /// Action dicts with the fields that come from the playbook set.
    actions: Vec<ActionTemplate>,
}

/// An action dict with the fields an action takes from its playbook already set (`type`,
/// `category`, `priority`, `title`, `requires_consent`, `dual_channel`, `operation`), the
/// values they were made from, and the rationale's dicts likewise. A decision's action
/// uses it when those values are equal, and sets only the rest.
struct ActionTemplate {
    kind: ActionType,
    category: SharedStr,
    priority: u8,
    title: String,
    requires_consent: bool,
    dual_channel: bool,
    operation: Option<String>,
    dict: Py<PyDict>,
    /// `{"why", "trigger", "evidence": None}` for this why and trigger.
    why: SharedStr,
    trigger: SharedStr,
    rationale: Py<PyDict>,
    /// `{"path", "value": None}` per evidence path, in the order the condition reads them.
    evidence: Vec<(SharedStr, Py<PyDict>)>,
}

impl ActionTemplate {
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

/// A suppression dict with `action_index`, `type`, `reason` and `detail` set. These are
/// kept per engine, not per playbook: a decision's suppressions mostly say the same thing
/// of different playbooks (every `max_actions` suppression of a decision does), so a few
/// templates serve them all and stay in the CPU's cache, where one per playbook would be
/// read from memory for each suppression.
struct SuppressedTemplate {
    action_index: usize,
    kind: ActionType,
    reason: Reason,
    detail: Detail,
    dict: Py<PyDict>,
}

impl SuppressedTemplate {
    fn fits(&self, s: &Suppressed) -> bool {
        self.action_index == s.action_index
            && self.kind == s.kind
            && self.reason == s.reason
            && self.detail == s.detail
    }
}

impl ActionTemplate {
    /// The template of `a` (its strings made anew: a template is made once).
    fn new(py: Python<'_>, shapes: &Shapes, a: &Action) -> PyResult<ActionTemplate> {
        let dict = new_dict(py, &shapes.action)?;
        action_statics(py, &dict, a, |s| PyString::new(py, s))?;
        let rationale = rationale_statics(py, shapes, a, |s| PyString::new(py, s))?;
        let mut evidence = Vec::with_capacity(a.rationale.evidence.len());
        for e in &a.rationale.evidence {
            let item = evidence_path(py, shapes, PyString::new(py, &e.path))?;
            evidence.push((e.path.clone(), item.unbind()));
        }
        Ok(ActionTemplate {
            kind: a.kind,
            category: a.category.clone(),
            priority: a.priority,
            title: a.title.clone(),
            requires_consent: a.requires_consent,
            dual_channel: a.dual_channel,
            operation: a.operation.clone(),
            dict: dict.unbind(),
            why: a.rationale.why.clone(),
            trigger: a.rationale.trigger.clone(),
            rationale: rationale.unbind(),
            evidence,
        })
    }
}

/// Sets the fields an action takes from its playbook (`text` makes the category's string).
fn action_statics<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    a: &Action,
    mut text: impl FnMut(&SharedStr) -> Bound<'py, PyString>,
) -> PyResult<()> {
    d.set_item(intern!(py, "type"), action_type(py, a.kind))?;
    d.set_item(intern!(py, "category"), text(&a.category))?;
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

/// A rationale dict with `why` and `trigger` set (`evidence` still `None`).
fn rationale_statics<'py>(
    py: Python<'py>,
    shapes: &Shapes,
    a: &Action,
    mut text: impl FnMut(&SharedStr) -> Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyDict>> {
    let rationale = new_dict(py, &shapes.rationale)?;
    rationale.set_item(intern!(py, "why"), text(&a.rationale.why))?;
    rationale.set_item(intern!(py, "trigger"), text(&a.rationale.trigger))?;
    Ok(rationale)
}

/// An evidence dict with `path` set (`value` still `None`).
fn evidence_path<'py>(
    py: Python<'py>,
    shapes: &Shapes,
    path: Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyDict>> {
    let item = new_dict(py, &shapes.evidence)?;
    item.set_item(intern!(py, "path"), path)?;
    Ok(item)
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

/// The copies one action takes from its playbook's template: the action dict, and the
/// rationale's and each evidence item's where the template's fit (`None` where not).
struct ActionCopies<'py> {
    dict: Bound<'py, PyDict>,
    rationale: Option<Bound<'py, PyDict>>,
    evidence: Vec<Option<Bound<'py, PyDict>>>,
}

/// One decision's conversion: the shapes, and the engine's shared objects when they are
/// free to use (`None` converts without them: another conversion holds them, which only
/// happens if Python code run during a conversion, e.g. a finalizer, decides again).
struct Out<'s, 'py> {
    py: Python<'py>,
    shapes: &'static Shapes,
    shared: Option<MutexGuard<'s, Shared>>,
}

/// A playbook version's shared objects, with the count of templates all playbooks hold
/// (to add to when a template is made).
struct Entry<'a> {
    objects: &'a mut PlaybookObjects,
    templates: &'a mut usize,
}

impl<'py> Out<'_, 'py> {
    /// The Python string of a shared text, made once per engine.
    fn text(&mut self, s: &SharedStr) -> Bound<'py, PyString> {
        let py = self.py;
        match self.shared.as_deref_mut() {
            Some(shared) => text(py, &mut shared.strings, s),
            None => PyString::new(py, s),
        }
    }

    /// The shared objects of a playbook version, made on first use; `None` without the
    /// engine's cache. When all playbooks hold `TEMPLATE_LIMIT` templates, they are all
    /// dropped first (the `{"id", "version"}` dicts stay).
    fn entry(&mut self, p: &PlaybookRef) -> PyResult<Option<Entry<'_>>> {
        let py = self.py;
        let shapes = self.shapes;
        let Some(shared) = self.shared.as_deref_mut() else {
            return Ok(None);
        };
        let Shared {
            strings,
            playbooks,
            templates,
            ..
        } = shared;
        if *templates >= TEMPLATE_LIMIT {
            for objects in playbooks.values_mut() {
                objects.actions.clear();
            }
            *templates = 0;
        }
        if playbooks.len() >= SHARED_LIMIT && !playbooks.contains_key(&(p.id.clone(), p.version)) {
            playbooks.clear();
            *templates = 0;
        }
        let objects = match playbooks.entry((p.id.clone(), p.version)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let d = new_dict(py, &shapes.playbook)?;
                d.set_item(intern!(py, "id"), text(py, strings, &p.id))?;
                d.set_item(intern!(py, "version"), p.version)?;
                v.insert(PlaybookObjects {
                    playbook: d.unbind(),
                    actions: Vec::new(),
                })
            }
        };
        Ok(Some(Entry { objects, templates }))
    }

    /// A fresh `{"id", "version"}` dict.
    fn playbook(&mut self, p: &PlaybookRef) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        if let Some(entry) = self.entry(p)? {
            return entry.objects.playbook.bind(py).copy();
        }
        let d = new_dict(py, &self.shapes.playbook)?;
        d.set_item(intern!(py, "id"), PyString::new(py, &p.id))?;
        d.set_item(intern!(py, "version"), p.version)?;
        Ok(d)
    }

    /// The action's `{"id", "version"}` and its copies of the playbook's template, if one
    /// fits (made here if there is none yet and room for it).
    fn action_copies(
        &mut self,
        a: &Action,
    ) -> PyResult<Option<(Bound<'py, PyDict>, Option<ActionCopies<'py>>)>> {
        let py = self.py;
        let shapes = self.shapes;
        let Some(entry) = self.entry(&a.playbook)? else {
            return Ok(None);
        };
        let Entry { objects, templates } = entry;
        let playbook = objects.playbook.bind(py).copy()?;
        let found = match objects.actions.iter().position(|t| t.fits(a)) {
            Some(i) => Some(i),
            None if objects.actions.len() < TEMPLATES_PER_PLAYBOOK => {
                objects.actions.push(ActionTemplate::new(py, shapes, a)?);
                *templates += 1;
                Some(objects.actions.len() - 1)
            }
            None => None,
        };
        let Some(t) = found.and_then(|i| objects.actions.get(i)) else {
            return Ok(Some((playbook, None)));
        };
        let rationale = if t.why == a.rationale.why && t.trigger == a.rationale.trigger {
            Some(t.rationale.bind(py).copy()?)
        } else {
            None
        };
        let mut evidence = Vec::with_capacity(a.rationale.evidence.len());
        for (i, e) in a.rationale.evidence.iter().enumerate() {
            evidence.push(match t.evidence.get(i) {
                Some((path, item)) if *path == e.path => Some(item.bind(py).copy()?),
                _ => None,
            });
        }
        let copies = ActionCopies {
            dict: t.dict.bind(py).copy()?,
            rationale,
            evidence,
        };
        Ok(Some((playbook, Some(copies))))
    }

    fn action(&mut self, a: &Action) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let shapes = self.shapes;
        let (playbook, copies) = match self.action_copies(a)? {
            Some((playbook, copies)) => (playbook, copies),
            None => (self.playbook(&a.playbook)?, None),
        };
        let (d, rationale, evidence_copies) = match copies {
            Some(c) => (c.dict, c.rationale, c.evidence),
            None => {
                let d = new_dict(py, &shapes.action)?;
                action_statics(py, &d, a, |s| self.text(s))?;
                (d, None, Vec::new())
            }
        };
        d.set_item(intern!(py, "action_id"), &*a.action_id)?;
        d.set_item(intern!(py, "fingerprint"), &*a.fingerprint)?;
        d.set_item(intern!(py, "playbook"), playbook)?;
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
        let rationale = match rationale {
            Some(r) => r,
            None => rationale_statics(py, shapes, a, |s| self.text(s))?,
        };
        let mut evidence = Vec::with_capacity(a.rationale.evidence.len());
        let mut copies = evidence_copies.into_iter();
        for e in &a.rationale.evidence {
            let item = match copies.next().flatten() {
                Some(item) => item,
                None => evidence_path(py, shapes, self.text(&e.path))?,
            };
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
        let d = match self.shared.as_deref_mut() {
            None => suppressed_statics(py, shapes, s)?,
            Some(shared) => match shared.suppressed.iter().find(|t| t.fits(s)) {
                Some(t) => t.dict.bind(py).copy()?,
                None => {
                    let d = suppressed_statics(py, shapes, s)?;
                    let template = SuppressedTemplate {
                        action_index: s.action_index,
                        kind: s.kind,
                        reason: s.reason,
                        detail: s.detail.clone(),
                        dict: d.copy()?.unbind(),
                    };
                    if shared.suppressed.len() < SUPPRESSED_TEMPLATES {
                        shared.suppressed.push(template);
                    } else if let Some(slot) = shared.suppressed.get_mut(shared.next_suppressed) {
                        *slot = template;
                        shared.next_suppressed =
                            (shared.next_suppressed + 1) % SUPPRESSED_TEMPLATES;
                    }
                    d
                }
            },
        };
        d.set_item(intern!(py, "playbook"), self.playbook(&s.playbook)?)?;
        Ok(d)
    }
}

/// The Python string of a shared text, from (or into) the engine's map.
fn text<'py>(
    py: Python<'py>,
    strings: &mut HashMap<SharedStr, Py<PyString>, ByText>,
    s: &SharedStr,
) -> Bound<'py, PyString> {
    if let Some(obj) = strings.get(s.as_str()) {
        return obj.bind(py).clone();
    }
    let obj = PyString::new(py, s);
    if strings.len() >= SHARED_LIMIT {
        strings.clear();
    }
    strings.insert(s.clone(), obj.clone().unbind());
    obj
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
