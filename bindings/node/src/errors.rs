//! The engine's errors as JavaScript `Error`s, mapped by the core's stable code alone.
//! Every error thrown or rejected by the binding carries the fields of the core's
//! `ErrorInfo` as properties — `code`, `message`, `field`, `rule`, `file`, `line`,
//! `column`, `playbook` (`null` when not applicable) — and a `name` the core gives that
//! code (`codes::ALL`: `SignalError` for `SIGNAL_INVALID`, …), so that callers branch on
//! `err.code` and show the rest.

use mmm_engine::approval::ApprovalError as CoreApprovalError;
use mmm_engine::audit::AuditError;
use mmm_engine::outcome::OutcomeError as CoreOutcomeError;
use mmm_engine::receipt::ReceiptError as CoreReceiptError;
use mmm_engine::{codes, DecideError, ErrorInfo, LoadError, SettingsError};
use napi::bindgen_prelude::{Function, JsObjectValue, Null, Object, Unknown};
use napi::{Env, JsValue, Status};

/// Raised when the caller passes a value of the wrong type (Node's own code for it).
pub const INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";
/// Raised when the caller passes a value of the right type that is out of range or unknown.
pub const INVALID_ARG_VALUE: &str = "ERR_INVALID_ARG_VALUE";

/// Every error the binding can raise.
pub enum EngineError {
    /// Loading playbooks failed (every diagnostic is attached).
    Load(LoadError),
    /// A decision could not be made.
    Decide(DecideError),
    /// A receipt or a key does not verify; `index` names the envelope in a chain.
    Receipt(CoreReceiptError, Option<usize>),
    /// An outcome broke a rule.
    Outcome(CoreOutcomeError),
    /// An approval operation was refused.
    Approval(CoreApprovalError),
    /// A change could not be audited, or names no experiment.
    Audit(AuditError),
    /// An engine setting is invalid (its key as the caller wrote it).
    Config(SettingsError),
    /// An argument of the wrong type (`TypeError`).
    ArgType(String),
    /// An argument of the right type with a value that is not allowed (`RangeError`).
    ArgValue(String),
}

impl EngineError {
    /// The name shown in stack traces (the core's name for the code) and the `ErrorInfo`.
    fn parts(&self) -> (&'static str, ErrorInfo) {
        let info = match self {
            EngineError::Load(e) => e.info(),
            EngineError::Decide(e) => e.info(),
            EngineError::Receipt(e, _) => e.info(),
            EngineError::Outcome(e) => e.info(),
            EngineError::Approval(e) => e.info(),
            EngineError::Audit(e) => e.info(),
            EngineError::Config(e) => e.info(),
            EngineError::ArgType(m) => {
                return ("TypeError", ErrorInfo::new(INVALID_ARG_TYPE, m.clone()))
            }
            EngineError::ArgValue(m) => {
                return ("RangeError", ErrorInfo::new(INVALID_ARG_VALUE, m.clone()))
            }
        };
        (codes::error_name(&info.code), info)
    }

    /// Builds the JavaScript error object.
    pub fn to_js<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (name, info) = self.parts();
        // Built with the global constructors, so that `instanceof TypeError` holds where
        // Node's own argument errors would be TypeErrors.
        let constructor = match self {
            EngineError::ArgType(_) => "TypeError",
            EngineError::ArgValue(_) => "RangeError",
            _ => "Error",
        };
        let class: Function<'_, String, Unknown<'_>> =
            env.get_global()?.get_named_property(constructor)?;
        let mut err = class
            .new_instance(info.message.clone())?
            .coerce_to_object()?;
        if constructor == "Error" {
            err.set_named_property("name", name)?;
        }
        err.set_named_property("code", info.code.as_str())?;
        set_opt_str(&mut err, "field", info.field.as_deref())?;
        set_opt_str(&mut err, "rule", info.rule.as_deref())?;
        set_opt_str(&mut err, "file", info.file.as_deref())?;
        set_opt_num(&mut err, "line", info.line)?;
        set_opt_num(&mut err, "column", info.column)?;
        set_opt_str(&mut err, "playbook", info.playbook.as_deref())?;
        match self {
            EngineError::Load(e) => {
                let diagnostics = crate::json::to_js(env, &e.diagnostics)?;
                err.set_named_property("diagnostics", diagnostics)?;
            }
            EngineError::Receipt(_, Some(index)) => {
                err.set_named_property("index", u32::try_from(*index).unwrap_or(u32::MAX))?;
            }
            _ => {}
        }
        Ok(err)
    }

    /// The error as napi-rs returns it: throwing (or rejecting with) exactly this object.
    pub fn into_napi(self, env: &Env) -> napi::Error {
        match self.to_js(env) {
            Ok(obj) => napi::Error::from(obj.to_unknown()),
            // Building the object failed (an exception is pending, the env is closing):
            // fall back to napi-rs's own error, which still carries the code.
            Err(_) => {
                let (_, info) = self.parts();
                napi::Error::new(
                    Status::GenericFailure,
                    format!("{}: {}", info.code, info.message),
                )
            }
        }
    }
}

fn set_opt_str(obj: &mut Object<'_>, name: &str, value: Option<&str>) -> napi::Result<()> {
    match value {
        Some(v) => obj.set_named_property(name, v),
        None => obj.set_named_property(name, Null),
    }
}

fn set_opt_num(obj: &mut Object<'_>, name: &str, value: Option<usize>) -> napi::Result<()> {
    match value.and_then(|v| u32::try_from(v).ok()) {
        Some(v) => obj.set_named_property(name, v),
        None => obj.set_named_property(name, Null),
    }
}

/// Shorthand: a `TypeError` with Node's `ERR_INVALID_ARG_TYPE`.
pub fn arg_type(env: &Env, message: impl Into<String>) -> napi::Error {
    EngineError::ArgType(message.into()).into_napi(env)
}

/// Shorthand: a `RangeError` with Node's `ERR_INVALID_ARG_VALUE`.
pub fn arg_value(env: &Env, message: impl Into<String>) -> napi::Error {
    EngineError::ArgValue(message.into()).into_napi(env)
}
