//! Python objects as the engine's ports. The engine calls ports from its own threads with
//! the GIL released; each call attaches to the interpreter, calls the method named as in
//! SPEC §5, and reads the answer. An exception means the dependency is down (the degraded
//! modes apply); an exception of type `mmm_engine.Rejected` is a business answer; an
//! answer the engine cannot read is a dependency that is down too.

use mmm_engine::ports::{
    ActorInfo, DataGovernance, Delivery, Iam, Llm, LlmRequest, LlmResponse, Policy, PortError,
    Receipts, RecentSignals, TenantConfig,
};
use mmm_engine::receipt::Envelope;
use mmm_engine::{Action, PolicySnapshot, Surface};
use mmm_engine::{FatigueError, FatigueRequest, FatigueStore, FatigueVerdict};
use pyo3::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::convert::{to_json, to_py};
use crate::errors::class_for;

/// A Python object used as a port.
pub struct PyPort {
    obj: Py<PyAny>,
    name: &'static str,
}

impl PyPort {
    pub fn new(obj: Py<PyAny>, name: &'static str) -> Self {
        PyPort { obj, name }
    }

    /// Calls `method` with arguments built under the GIL; returns the answer as JSON.
    fn call(
        &self,
        method: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>,
    ) -> Result<Value, PortError> {
        Python::attach(|py| {
            let args = args(py)
                .map_err(|e| PortError::Unavailable(format!("{}.{method}: {e}", self.name)))?;
            let args = pyo3::types::PyTuple::new(py, args)
                .map_err(|e| PortError::Unavailable(format!("{}.{method}: {e}", self.name)))?;
            match self.obj.bind(py).call_method1(method, args) {
                Ok(answer) => to_json(&answer).map_err(|e| {
                    PortError::Unavailable(format!(
                        "{}.{method} returned data the engine cannot read: {e}",
                        self.name
                    ))
                }),
                Err(e) if e.is_instance(py, &class_for(py, mmm_engine::codes::REJECTED)) => {
                    Err(PortError::Rejected(e.to_string()))
                }
                Err(e) => Err(PortError::Unavailable(format!(
                    "{}.{method} raised {e}",
                    self.name
                ))),
            }
        })
    }

    fn typed<T: DeserializeOwned>(&self, method: &str, value: Value) -> Result<T, PortError> {
        serde_json::from_value(value).map_err(|e| {
            PortError::Unavailable(format!(
                "{}.{method} answered in the wrong shape: {}",
                self.name,
                mmm_engine::clean_message(&e.to_string())
            ))
        })
    }
}

fn s<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyAny> {
    pyo3::types::PyString::new(py, text).into_any()
}

fn json<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    to_py(py, &v)
}

impl Iam for PyPort {
    fn validate_actor(&self, tenant_id: &str, actor_id: &str) -> Result<ActorInfo, PortError> {
        let v = self.call("validate_actor", |py| {
            Ok(vec![s(py, tenant_id), s(py, actor_id)])
        })?;
        self.typed("validate_actor", v)
    }
}

impl RecentSignals for PyPort {
    fn recent(
        &self,
        tenant_id: &str,
        actor_id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, PortError> {
        let v = self.call("recent", |py| {
            Ok(vec![
                s(py, tenant_id),
                s(py, actor_id),
                limit.into_pyobject(py)?.into_any(),
            ])
        })?;
        self.typed("recent", v)
    }
}

impl DataGovernance for PyPort {
    fn tenant_config(&self, tenant_id: &str) -> Result<TenantConfig, PortError> {
        let v = self.call("tenant_config", |py| Ok(vec![s(py, tenant_id)]))?;
        self.typed("tenant_config", v)
    }
}

impl Policy for PyPort {
    fn snapshot(&self, tenant_id: &str) -> Result<PolicySnapshot, PortError> {
        let v = self.call("snapshot", |py| Ok(vec![s(py, tenant_id)]))?;
        self.typed("snapshot", v)
    }
}

impl Llm for PyPort {
    fn generate(&self, request: &LlmRequest) -> Result<LlmResponse, PortError> {
        let v = self.call("generate", |py| Ok(vec![json(py, request)?]))?;
        self.typed("generate", v)
    }
}

impl Receipts for PyPort {
    fn emit(&self, envelope: &Envelope) -> Result<(), PortError> {
        self.call("emit", |py| Ok(vec![json(py, envelope)?]))
            .map(|_| ())
    }
}

impl Delivery for PyPort {
    fn deliver(&self, action: &Action, surface: Surface, rendered: &str) -> Result<(), PortError> {
        self.call("deliver", |py| {
            Ok(vec![
                json(py, action)?,
                s(py, surface.as_str()),
                s(py, rendered),
            ])
        })
        .map(|_| ())
    }
}

/// A fatigue store written in Python: `check_and_record(request: dict) -> dict` answering
/// `{"verdict": "allowed", "actions": n}` or `{"verdict": "cooldown" | "max" | "budget"}`,
/// and `record(tenant_id, actor_id, playbook_id, at, actions)`.
impl FatigueStore for PyPort {
    fn check_and_record(
        &self,
        request: &FatigueRequest<'_>,
    ) -> Result<FatigueVerdict, FatigueError> {
        let req = request.to_json();
        let v = self
            .call("check_and_record", |py| Ok(vec![to_py(py, &req)?]))
            .map_err(|e| FatigueError::Unavailable(e.to_string()))?;
        FatigueVerdict::from_json(&v, request.actions)
    }

    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: jiff::Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError> {
        self.call("record", |py| {
            Ok(vec![
                s(py, tenant_id),
                s(py, actor_id),
                s(py, playbook_id),
                s(py, &at.to_string()),
                actions.into_pyobject(py)?.into_any(),
            ])
        })
        .map(|_| ())
        .map_err(|e| FatigueError::Unavailable(e.to_string()))
    }
}

/// An audit sink written in Python: `record(event: dict)`, the event as the core
/// serialises it (`kind`, `subject`, `by`, `at`, `before`, `after`). An exception means
/// the event was not recorded, so the change does not happen.
impl mmm_engine::audit::AuditSink for PyPort {
    fn record(&self, event: &mmm_engine::audit::AuditEvent) -> Result<(), String> {
        self.call("record", |py| Ok(vec![json(py, event)?]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
