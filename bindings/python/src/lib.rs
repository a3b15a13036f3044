//! `mmm_engine` for Python: the engine in-process, with Python objects as ports, Python
//! exceptions, and no GIL held while Rust works.

mod convert;
mod decision;
mod errors;
mod ports;

/// mimalloc for the extension's Rust memory, with dynamic TLS (safe in a module Python
/// loads at run time; `tests/test_loading.py`): see docs/decisions.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mmm_engine::experiment::ExperimentStatus;
use mmm_engine::receipt::{
    public_key_from_bytes, signing_key_from_bytes, verify_chain as verify_chain_rs, Envelope,
};
use mmm_engine::{
    DecideArgument, DecideOptions, Engine as Core, EngineBuilder, GivenSignal, PlaybookSet,
    PortName,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use serde_json::Value;

use convert::{to_json, to_json_checked, to_json_members, to_py, Refused};
use errors::{load_error, raise, receipt_error};
use ports::PyPort;

/// Key material as `bytes` (32) or a hex `str`.
fn key_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_cow()?.trim().as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(
        "a key must be bytes (32) or a hex str",
    ))
}

struct Ports {
    config: Option<Py<PyAny>>,
    signing_key: Option<Py<PyAny>>,
    llm: Option<Py<PyAny>>,
    receipts: Option<Py<PyAny>>,
    policy: Option<Py<PyAny>>,
    iam: Option<Py<PyAny>>,
    signals: Option<Py<PyAny>>,
    data_governance: Option<Py<PyAny>>,
    delivery: Option<Py<PyAny>>,
    fatigue: Option<Py<PyAny>>,
    audit: Option<Py<PyAny>>,
}

/// Engine settings from a dict of the core's setting keys (`EngineConfig`: `ide_deadline_ms`,
/// …), read by the core; an error is a `ConfigError` naming the key.
fn settings(py: Python<'_>, config: Option<&Py<PyAny>>) -> PyResult<mmm_engine::EngineConfig> {
    let Some(config) = config else {
        return Ok(mmm_engine::EngineConfig::default());
    };
    let refused = |key: String, message: String| {
        raise(py, &mmm_engine::SettingsError { key, message }.info())
    };
    let map = to_json_checked(config.bind(py)).map_err(|e| {
        let key = if e.path.is_empty() {
            "config".to_owned()
        } else {
            e.path
        };
        refused(key, e.message)
    })?;
    mmm_engine::EngineConfig::from_json(&map).map_err(|e| raise(py, &e.info()))
}

fn build(py: Python<'_>, set: PlaybookSet, ports: Ports) -> PyResult<Core> {
    let config = settings(py, ports.config.as_ref())?;
    let mut b: EngineBuilder = Core::builder().playbooks(set).config(config);
    if let Some(key) = &ports.signing_key {
        let bytes = key_bytes(key.bind(py))?;
        let key = signing_key_from_bytes(&bytes).map_err(|e| receipt_error(py, e.to_string()))?;
        b = b.signing_key(key);
    }
    let port = |p: &Option<Py<PyAny>>, name: &'static str| {
        p.as_ref()
            .map(|o| Arc::new(PyPort::new(o.clone_ref(py), name)))
    };
    if let Some(p) = port(&ports.llm, "llm") {
        b = b.llm(p);
    }
    if let Some(p) = port(&ports.receipts, "receipts") {
        b = b.receipts(p);
    }
    if let Some(p) = port(&ports.policy, "policy") {
        b = b.policy(p);
    }
    if let Some(p) = port(&ports.iam, "iam") {
        b = b.iam(p);
    }
    if let Some(p) = port(&ports.signals, "signals") {
        b = b.signals(p);
    }
    if let Some(p) = port(&ports.data_governance, "data_governance") {
        b = b.data_governance(p);
    }
    if let Some(p) = port(&ports.delivery, "delivery") {
        b = b.delivery(p);
    }
    if let Some(p) = port(&ports.fatigue, "fatigue") {
        b = b.fatigue(p);
    }
    if let Some(p) = port(&ports.audit, "audit") {
        b = b.audit(p);
    }
    Ok(b.build())
}

fn load_path(py: Python<'_>, path: PathBuf) -> PyResult<PlaybookSet> {
    py.detach(|| PlaybookSet::from_path(&path))
        .map_err(|e| load_error(py, &e))
}

/// The signal or the context as JSON; a value that cannot be read is a `SignalError` or
/// `ContextError` naming its JSON path, worded as the core and the Node binding word it.
fn json_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, what: DecideArgument) -> PyResult<Value> {
    to_json_checked(obj).map_err(|e| arg_error(py, e, what))
}

/// A `decide` argument's value that cannot become JSON, as the engine's error for it.
fn arg_error(py: Python<'_>, e: Refused, what: DecideArgument) -> PyErr {
    let error = mmm_engine::DecideError::unreadable_argument(what, e.path, e.message);
    raise(py, &error.info())
}

/// A signal as `decide` hands it to the engine: a dict's members as they are read (see
/// `convert::to_json_members`), anything else as its JSON value (the engine refuses what
/// is not an object, with its own error).
fn signal_arg(py: Python<'_>, signal: &Bound<'_, PyAny>) -> PyResult<GivenSignal> {
    match signal.cast::<PyDict>() {
        Ok(d) => to_json_members(d)
            .map(GivenSignal::Fields)
            .map_err(|e| arg_error(py, e, DecideArgument::Signal)),
        Err(_) => json_arg(py, signal, DecideArgument::Signal).map(GivenSignal::Json),
    }
}

/// The engine. Safe to share between threads; every call releases the GIL while the
/// engine works.
#[pyclass(frozen, module = "mmm_engine._native")]
struct Engine {
    core: Core,
    /// Templates of its decisions' dicts (`decision::Shared`).
    shared: Mutex<decision::Shared>,
}

impl Engine {
    fn new(core: Core) -> Engine {
        Engine {
            core,
            shared: Mutex::default(),
        }
    }
}

#[pymethods]
impl Engine {
    /// Loads the playbooks under `path` (a file or a directory).
    #[staticmethod]
    #[pyo3(signature = (path, *, signing_key=None, llm=None, receipts=None, policy=None, iam=None, signals=None, data_governance=None, delivery=None, fatigue=None, audit=None, config=None))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one keyword argument per port, as Python callers pass them; pyo3 maps each to a parameter"
    )]
    fn from_path(
        py: Python<'_>,
        path: PathBuf,
        signing_key: Option<Py<PyAny>>,
        llm: Option<Py<PyAny>>,
        receipts: Option<Py<PyAny>>,
        policy: Option<Py<PyAny>>,
        iam: Option<Py<PyAny>>,
        signals: Option<Py<PyAny>>,
        data_governance: Option<Py<PyAny>>,
        delivery: Option<Py<PyAny>>,
        fatigue: Option<Py<PyAny>>,
        audit: Option<Py<PyAny>>,
        config: Option<Py<PyAny>>,
    ) -> PyResult<Engine> {
        let set = load_path(py, path)?;
        let ports = Ports {
            config,
            signing_key,
            llm,
            receipts,
            policy,
            iam,
            signals,
            data_governance,
            delivery,
            fatigue,
            audit,
        };
        Ok(Engine::new(build(py, set, ports)?))
    }

    /// Loads playbooks from YAML text.
    #[staticmethod]
    #[pyo3(signature = (text, *, signing_key=None, llm=None, receipts=None, policy=None, iam=None, signals=None, data_governance=None, delivery=None, fatigue=None, audit=None, config=None))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one keyword argument per port, as Python callers pass them; pyo3 maps each to a parameter"
    )]
    fn from_yaml(
        py: Python<'_>,
        text: &str,
        signing_key: Option<Py<PyAny>>,
        llm: Option<Py<PyAny>>,
        receipts: Option<Py<PyAny>>,
        policy: Option<Py<PyAny>>,
        iam: Option<Py<PyAny>>,
        signals: Option<Py<PyAny>>,
        data_governance: Option<Py<PyAny>>,
        delivery: Option<Py<PyAny>>,
        fatigue: Option<Py<PyAny>>,
        audit: Option<Py<PyAny>>,
        config: Option<Py<PyAny>>,
    ) -> PyResult<Engine> {
        let text = text.to_owned();
        let set = py
            .detach(|| PlaybookSet::from_yaml(&text))
            .map_err(|e| load_error(py, &e))?;
        let ports = Ports {
            config,
            signing_key,
            llm,
            receipts,
            policy,
            iam,
            signals,
            data_governance,
            delivery,
            fatigue,
            audit,
        };
        Ok(Engine::new(build(py, set, ports)?))
    }

    /// Decides what to show for one signal.
    #[pyo3(signature = (signal, context=None, *, now=None, explain=false))]
    fn decide<'py>(
        &self,
        py: Python<'py>,
        signal: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        now: Option<&Bound<'py, PyAny>>,
        explain: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let signal = signal_arg(py, signal)?;
        let context = match context {
            Some(c) if !c.is_none() => Some(json_arg(py, c, DecideArgument::Context)?),
            _ => None,
        };
        let now = match now {
            Some(n) if !n.is_none() => {
                // A str (the usual form) is read directly; a datetime through `to_json`.
                let text = match n.cast::<PyString>() {
                    Ok(s) => s
                        .to_cow()
                        .map_err(|e| PyValueError::new_err(e.to_string()))?,
                    Err(_) => match to_json(n)? {
                        Value::String(s) => std::borrow::Cow::Owned(s),
                        _ => {
                            return Err(PyTypeError::new_err(
                                "now must be an RFC 3339 str or an aware datetime",
                            ))
                        }
                    },
                };
                Some(
                    mmm_engine::parse_timestamp(&text)
                        .map_err(|e| PyValueError::new_err(format!("now: {e}")))?,
                )
            }
            _ => None,
        };
        let core = &self.core;
        // The signal and the context are dropped in the closure too: freeing them needs no
        // GIL, so other threads run meanwhile.
        let decision = py
            .detach(move || {
                let options = DecideOptions { now, explain };
                core.decide_given(signal, context.as_ref(), &options)
            })
            .map_err(|e| raise(py, &e.info()))?;
        decision::to_py_decision(py, &decision, &self.shared)
    }

    /// Records what the actor did with an action.
    fn record_outcome(&self, py: Python<'_>, outcome: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = to_json_checked(outcome).map_err(|e| {
            let error = mmm_engine::outcome::OutcomeError {
                field: if e.path.is_empty() {
                    "outcome".to_owned()
                } else {
                    e.path
                },
                message: e.message,
            };
            raise(py, &error.info())
        })?;
        let core = &self.core;
        py.detach(|| core.record_outcome(&value))
            .map_err(|e| raise(py, &e.info()))
    }

    /// Replaces the playbooks with those under `path`, atomically: a failed reload keeps
    /// the old set.
    fn reload(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let set = load_path(py, path)?;
        let core = &self.core;
        py.detach(|| core.reload(set))
            .map_err(|e| raise(py, &e.info()))
    }

    /// Outcome counts for a tenant (by playbook, type and result).
    fn outcome_counts<'py>(&self, py: Python<'py>, tenant_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let core = &self.core;
        let counts = py
            .detach(|| serde_json::to_value(core.outcome_counts(tenant_id)))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        to_py(py, &counts)
    }

    /// Opens a dual-channel approval for a multiplier action (a dict from a decision).
    fn request_approval<'py>(
        &self,
        py: Python<'py>,
        action: &Bound<'py, PyAny>,
        tenant_id: &str,
        actor_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action: mmm_engine::Action = serde_json::from_value(to_json(action)?).map_err(|e| {
            PyValueError::new_err(format!(
                "not an action: {}",
                mmm_engine::clean_message(&e.to_string())
            ))
        })?;
        let core = &self.core;
        let approval = py
            .detach(|| core.approvals().request(&action, tenant_id, actor_id))
            .map_err(|e| raise(py, &e.info()))?;
        approval_to_py(py, &approval)
    }

    /// Approves on `channel`.
    fn approve<'py>(
        &self,
        py: Python<'py>,
        approval_id: &str,
        channel: &str,
        approver: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = &self.core;
        let a = py
            .detach(|| core.approvals().approve(approval_id, channel, approver))
            .map_err(|e| raise(py, &e.info()))?;
        approval_to_py(py, &a)
    }

    /// Rejects.
    fn reject<'py>(
        &self,
        py: Python<'py>,
        approval_id: &str,
        by: &str,
        reason: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = &self.core;
        let a = py
            .detach(|| core.approvals().reject(approval_id, by, reason))
            .map_err(|e| raise(py, &e.info()))?;
        approval_to_py(py, &a)
    }

    /// The approval (expired when past its time).
    fn get_approval<'py>(&self, py: Python<'py>, approval_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let core = &self.core;
        let a = py
            .detach(|| core.approvals().get(approval_id))
            .map_err(|e| raise(py, &e.info()))?;
        approval_to_py(py, &a)
    }

    /// Current variant weights of an experiment for a tenant, or None.
    fn experiment_weights<'py>(
        &self,
        py: Python<'py>,
        tenant_id: &str,
        experiment_id: &str,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let core = &self.core;
        match py.detach(|| core.experiment_weights(tenant_id, experiment_id)) {
            None => Ok(None),
            Some(w) => {
                let d = PyDict::new(py);
                for (name, weight) in w {
                    d.set_item(name, weight)?;
                }
                Ok(Some(d))
            }
        }
    }

    /// Sets an experiment's status (`active`, `paused`, `completed`); audited.
    fn set_experiment_status(
        &self,
        py: Python<'_>,
        experiment_id: &str,
        status: &str,
        by: &str,
    ) -> PyResult<()> {
        let status = ExperimentStatus::parse(status).ok_or_else(|| {
            PyValueError::new_err("status must be `active`, `paused` or `completed`")
        })?;
        let core = &self.core;
        py.detach(|| core.set_experiment_status(experiment_id, status, by))
            .map_err(|e| raise(py, &e.info()))
    }

    /// Tries now to deliver queued receipts.
    fn flush_outbox(&self, py: Python<'_>) {
        let core = &self.core;
        py.detach(|| core.flush_outbox());
    }

    /// Receipts waiting for the receipts port: in the outbox, or being delivered from it.
    #[getter]
    fn outbox_len(&self) -> usize {
        self.core.outbox_len()
    }

    /// A port's circuit-breaker state: `closed`, `open` or `half_open` (the core's words).
    fn breaker_state(&self, port: &str) -> PyResult<&'static str> {
        let name = PortName::parse(port).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown port {} (expected {})",
                mmm_engine::Quoted(port),
                PortName::expected()
            ))
        })?;
        Ok(self.core.breaker_state(name).as_str())
    }

    /// The receipts public key (hex), when signing is on.
    #[getter]
    fn receipt_public_key(&self) -> Option<String> {
        self.core
            .receipt_public_key()
            .map(|k| k.as_bytes().iter().map(|b| format!("{b:02x}")).collect())
    }
}

fn approval_to_py<'py>(
    py: Python<'py>,
    a: &mmm_engine::approval::Approval,
) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(a).map_err(|e| PyValueError::new_err(e.to_string()))?;
    to_py(py, &v)
}

/// Checks playbook files: every error and lint warning, as dicts.
#[pyfunction]
fn validate<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
    let found = py.detach(|| mmm_engine::check_paths(&[path]));
    let v = serde_json::to_value(found).map_err(|e| PyValueError::new_err(e.to_string()))?;
    to_py(py, &v)
}

fn envelope_arg(py: Python<'_>, envelope: &Bound<'_, PyAny>) -> PyResult<Envelope> {
    let parsed = match envelope.cast::<PyString>() {
        Ok(s) => Envelope::parse(&s.to_cow()?),
        Err(_) => Envelope::from_json(to_json(envelope)?),
    };
    parsed.map_err(|e| raise(py, &e.info()))
}

/// Verifies one receipt envelope (a dict or a JSON line) and returns its payload.
#[pyfunction]
fn verify_receipt<'py>(
    py: Python<'py>,
    envelope: &Bound<'py, PyAny>,
    public_key: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let env = envelope_arg(py, envelope)?;
    let key = public_key_from_bytes(&key_bytes(public_key)?).map_err(|e| raise(py, &e.info()))?;
    let payload = py
        .detach(|| mmm_engine::receipt::verify_receipt(&env, &key))
        .map_err(|e| raise(py, &e.info()))?;
    to_py(py, &payload)
}

/// Verifies a chain of envelopes in order; returns the payloads. The error names the
/// 0-based index of the first bad envelope (attribute `index`).
#[pyfunction]
fn verify_chain<'py>(
    py: Python<'py>,
    envelopes: Vec<Bound<'py, PyAny>>,
    public_key: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let envs = envelopes
        .iter()
        .map(|e| envelope_arg(py, e))
        .collect::<PyResult<Vec<_>>>()?;
    let key = public_key_from_bytes(&key_bytes(public_key)?).map_err(|e| raise(py, &e.info()))?;
    match py.detach(|| verify_chain_rs(&envs, &key)) {
        Ok(payloads) => to_py(py, &Value::Array(payloads)),
        Err(fault) => {
            let err = raise(py, &fault.error.info());
            let _ = err.value(py).setattr("index", fault.index);
            Err(err)
        }
    }
}

/// A new signing key: (hex seed, hex public key).
#[pyfunction]
fn generate_key() -> (String, String) {
    mmm_engine::receipt::generate_key()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(verify_receipt, m)?)?;
    m.add_function(wrap_pyfunction!(verify_chain, m)?)?;
    m.add_function(wrap_pyfunction!(generate_key, m)?)?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
