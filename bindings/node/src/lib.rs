//! `mmm-engine` for Node.js: the engine in-process, with JavaScript objects as ports,
//! `Error`s that carry a stable `code`, a synchronous `decide` and a `decideAsync` that
//! decides off the JS thread. Data crosses as plain objects in the SPEC's JSON shapes
//! (snake_case keys); method and option names are camelCase. How ports are called — and
//! why that cannot deadlock — is explained in `ports.rs` and `docs/node.md`.

mod convert;
mod decision;
mod errors;
mod json;
mod ports;

/// mimalloc for the addon's Rust memory, with dynamic TLS (safe in a library loaded at run
/// time): see docs/decisions.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use mmm_engine::experiment::ExperimentStatus;
use mmm_engine::pool::ThreadPool;
use mmm_engine::receipt::{public_key_from_bytes, signing_key_from_bytes, Envelope};
use mmm_engine::{
    DecideArgument, DecideOptions, Engine as Core, EngineBuilder, EngineConfig, GivenSignal,
    PlaybookSet, PortName,
};
use napi::bindgen_prelude::{FromNapiValue, FunctionRef, JsObjectValue, Object, Unknown};
use napi::{Env, JsValue, ValueType};
use napi_derive::napi;
use serde_json::Value;

use convert::{from_js, from_js_with, key_from_unknown, now_from, Stringify};
use errors::{arg_type, arg_value, EngineError};
use json::to_js;
use ports::{Bridge, JsPort, PORTS};

/// Most threads of each decision pool; past it, decisions queue.
const MAX_DECIDE_THREADS: usize = 64;

/// Decisions of `decideAsync`, for every engine in the process, on the core's pool.
///
/// Not libuv's thread pool (napi's `AsyncTask`): a decision waits there for its ports, and
/// a JavaScript port that itself needs libuv's pool — `fs`, `dns.lookup` behind every HTTP
/// client, `crypto.pbkdf2`, `zlib` — would then queue behind the very decisions waiting
/// for it (four threads by default), stalling each until the port's timeout.
static ASYNC: LazyLock<ThreadPool> =
    LazyLock::new(|| ThreadPool::new("mmm-node-decide", MAX_DECIDE_THREADS));

/// Decisions of a synchronous `decide` with JS ports. A pool of their own: were they queued
/// behind `decideAsync` decisions that wait for the JS thread, the JS thread (waiting for
/// the synchronous decision) could not serve those, and both would stall until the
/// ports' timeouts.
static SYNC: LazyLock<ThreadPool> =
    LazyLock::new(|| ThreadPool::new("mmm-node-decide-sync", MAX_DECIDE_THREADS));

/// The `now` and `explain` of one decision, read from the options argument.
fn decide_options(env: &Env, options: Option<Object<'_>>) -> napi::Result<DecideOptions> {
    let mut out = DecideOptions::default();
    let Some(options) = options else {
        return Ok(out);
    };
    for key in Object::keys(&options)? {
        let value: Unknown<'_> = options.get_named_property(&key)?;
        match key.as_str() {
            "now" => out.now = now_from(env, value)?,
            "explain" => {
                out.explain = match value.get_type()? {
                    ValueType::Undefined | ValueType::Null => false,
                    ValueType::Boolean => bool::from_unknown(value)?,
                    _ => return Err(arg_type(env, "`explain` must be a boolean")),
                }
            }
            other => {
                return Err(arg_value(
                    env,
                    format!("unknown decide option `{other}` (expected `now`, `explain`)"),
                ))
            }
        }
    }
    Ok(out)
}

/// An optional options object: `undefined`, `null` or an object.
fn optional_object<'a>(
    env: &Env,
    value: Option<Unknown<'a>>,
    name: &str,
) -> napi::Result<Option<Object<'a>>> {
    match value {
        None => Ok(None),
        Some(v) => match v.get_type()? {
            ValueType::Undefined | ValueType::Null => Ok(None),
            ValueType::Object => Ok(Some(Object::from_unknown(v)?)),
            _ => Err(arg_type(env, format!("`{name}` must be an object"))),
        },
    }
}

/// A string argument; anything else is a `TypeError` naming the argument.
fn string_arg(env: &Env, value: Unknown<'_>, name: &str) -> napi::Result<String> {
    if value.get_type()? == ValueType::String {
        String::from_unknown(value)
    } else {
        Err(arg_type(env, format!("`{name}` must be a string")))
    }
}

/// A signal or context argument as JSON; what JSON cannot express, or a number the
/// engine refuses, is a `SignalError` or `ContextError` naming its JSON path, worded as
/// the core and the Python binding word it.
fn input(
    env: &Env,
    stringify: &Stringify,
    value: Unknown<'_>,
    argument: DecideArgument,
) -> napi::Result<Value> {
    from_js_with(env, Some(stringify), value).map_err(|e| {
        let error = mmm_engine::DecideError::unreadable_argument(argument, e.path, e.message);
        EngineError::Decide(error).into_napi(env)
    })
}

fn optional_context(
    env: &Env,
    stringify: &Stringify,
    context: Option<Unknown<'_>>,
) -> napi::Result<Option<Value>> {
    match context {
        Some(c) if !matches!(c.get_type()?, ValueType::Undefined | ValueType::Null) => {
            Ok(Some(input(env, stringify, c, DecideArgument::Context)?))
        }
        _ => Ok(None),
    }
}

/// Engine settings from the `config` option: the core's setting keys (`EngineConfig`),
/// written in camelCase (`ideDeadlineMs` for `ide_deadline_ms`); the core reads them and
/// its error names the key as the caller wrote it.
fn settings(env: &Env, config: Unknown<'_>) -> napi::Result<EngineConfig> {
    let refused = |key: String, message: String| {
        EngineError::Config(mmm_engine::SettingsError { key, message }).into_napi(env)
    };
    let json = from_js(env, config).map_err(|e| {
        let key = if e.path.is_empty() {
            "config".to_owned()
        } else {
            e.path
        };
        refused(key, e.message)
    })?;
    let json = match json {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (snake_case(&k), v)).collect())
        }
        other => other,
    };
    EngineConfig::from_json(&json).map_err(|e| refused(camel_case(&e.key), e.message))
}

/// `ideDeadlineMs` → `ide_deadline_ms`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `ide_deadline_ms` → `ideDeadlineMs`.
fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// How long a thread waits for a JS port's answer: a little past the engine's own timeout
/// for that port, which is what decides. The fatigue store has no engine timeout (it is
/// asked inside the decision, on the deciding thread), so it gets one second.
fn wait_limit(config: &EngineConfig, port: &str) -> Duration {
    let base = PortName::parse(&snake_case(port))
        .map_or(Duration::from_secs(1), |p| config.timeouts.get(p));
    base + Duration::from_millis(100)
}

/// The engine and what the JS side needs to run its ports.
struct Built {
    core: Core,
    bridge: Option<Arc<Bridge>>,
    dispatcher: Option<FunctionRef<(), ()>>,
    builder: Arc<decision::Builder>,
    stringify: Stringify,
    arguments: convert::Arguments,
}

fn build(env: &Env, set: PlaybookSet, options: Option<Object<'_>>) -> napi::Result<Built> {
    let mut config = EngineConfig::default();
    let mut signing_key = None;
    let mut ports: Vec<(&'static str, Unknown<'_>)> = Vec::new();
    if let Some(options) = &options {
        for key in Object::keys(options)? {
            let value: Unknown<'_> = options.get_named_property(&key)?;
            if matches!(value.get_type()?, ValueType::Undefined | ValueType::Null) {
                continue;
            }
            match key.as_str() {
                "signingKey" => {
                    let bytes = key_from_unknown(env, value, "signingKey")?;
                    let key = signing_key_from_bytes(&bytes)
                        .map_err(|e| EngineError::Receipt(e, None).into_napi(env))?;
                    signing_key = Some(key);
                }
                "config" => config = settings(env, value)?,
                name => {
                    let Some((port, method)) = PORTS.iter().find(|(p, _)| *p == name) else {
                        return Err(arg_value(
                            env,
                            format!(
                                "unknown engine option `{name}` (expected signingKey, config, or \
                                 a port: llm, receipts, policy, iam, signals, dataGovernance, \
                                 delivery, fatigue, audit)"
                            ),
                        ));
                    };
                    let has_method =
                        matches!(value.get_type()?, ValueType::Object | ValueType::Function)
                            && value
                                .coerce_to_object()?
                                .get_named_property::<Unknown<'_>>(method)?
                                .get_type()?
                                == ValueType::Function;
                    if !has_method {
                        return Err(arg_type(
                            env,
                            format!("the `{port}` port must be an object with a `{method}` method"),
                        ));
                    }
                    ports.push((port, value));
                }
            }
        }
    }
    let mut b: EngineBuilder = Core::builder().playbooks(set);
    if let Some(key) = signing_key {
        b = b.signing_key(key);
    }
    let (bridge, dispatcher) = if ports.is_empty() {
        (None, None)
    } else {
        let mut holder = Object::new(env)?;
        for (name, value) in &ports {
            holder.set_named_property(name, *value)?;
        }
        let (bridge, dispatcher) = ports::install(env, holder)?;
        for (name, _) in &ports {
            let port = Arc::new(JsPort::new(
                Arc::clone(&bridge),
                name,
                wait_limit(&config, name),
            ));
            b = match *name {
                "llm" => b.llm(port),
                "receipts" => b.receipts(port),
                "policy" => b.policy(port),
                "iam" => b.iam(port),
                "signals" => b.signals(port),
                "dataGovernance" => b.data_governance(port),
                "delivery" => b.delivery(port),
                "fatigue" => b.fatigue(port),
                _ => b.audit(port),
            };
        }
        (Some(bridge), Some(dispatcher))
    };
    Ok(Built {
        core: b.config(config).build(),
        bridge,
        dispatcher,
        builder: Arc::new(decision::builder(env)?),
        stringify: Stringify::new(env)?,
        arguments: convert::Arguments::new(env)?,
    })
}

fn load_path(env: &Env, path: &str) -> napi::Result<PlaybookSet> {
    PlaybookSet::from_path(PathBuf::from(path)).map_err(|e| EngineError::Load(e).into_napi(env))
}

/// The engine. Build it with `Engine.fromPath` or `Engine.fromYaml`; it is safe to use
/// from any number of concurrent `decideAsync` calls.
#[napi]
pub struct Engine {
    core: Core,
    bridge: Option<Arc<Bridge>>,
    dispatcher: Option<FunctionRef<(), ()>>,
    builder: Arc<decision::Builder>,
    /// `JSON.stringify`, for reading signals and contexts.
    stringify: Stringify,
    /// `decide`'s arguments in the common case.
    arguments: convert::Arguments,
}

impl Engine {
    /// A decision's arguments: in one call into JavaScript in the common case (see
    /// [`convert::Arguments`]), otherwise each on its own, with its errors.
    fn arguments(
        &self,
        env: &Env,
        signal: Unknown<'_>,
        context: Option<Unknown<'_>>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<(GivenSignal, Option<Value>, DecideOptions)> {
        if let Some(read) = self.arguments.read(env, signal, context, options) {
            let decide = DecideOptions {
                now: read.now,
                explain: read.explain,
            };
            let (signal, context) = match read.inputs {
                Some(inputs) => inputs,
                None => (
                    GivenSignal::Json(input(env, &self.stringify, signal, DecideArgument::Signal)?),
                    optional_context(env, &self.stringify, context)?,
                ),
            };
            return Ok((signal, context, decide));
        }
        let options = optional_object(env, options, "options")?;
        let signal =
            GivenSignal::Json(input(env, &self.stringify, signal, DecideArgument::Signal)?);
        let context = optional_context(env, &self.stringify, context)?;
        let options = decide_options(env, options)?;
        Ok((signal, context, options))
    }

    fn from_built(built: Built) -> Engine {
        Engine {
            core: built.core,
            bridge: built.bridge,
            dispatcher: built.dispatcher,
            builder: built.builder,
            stringify: built.stringify,
            arguments: built.arguments,
        }
    }

    /// Runs `work` on the engine where its ports can reach the JS thread: directly when no
    /// JS port is configured, otherwise on a pool thread while this (the JS) thread runs the
    /// port calls it makes (the audit sink of an approval, the ports of a decision).
    fn run_here<T: Send + 'static>(
        &self,
        env: &Env,
        work: impl FnOnce(&Core) -> T + Send + 'static,
    ) -> napi::Result<T> {
        let (Some(bridge), Some(dispatcher)) = (&self.bridge, &self.dispatcher) else {
            return Ok(work(&self.core));
        };
        let queue = Arc::clone(&bridge.queue);
        let token = queue.begin_sync();
        let core = self.core.clone();
        let (done, outcome) = std::sync::mpsc::sync_channel(1);
        let worker_queue = Arc::clone(&queue);
        let started = SYNC.spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&core)));
            // The result first, then the wake-up: the pump reads it right after.
            let _ = done.send(result);
            worker_queue.finish(token);
        });
        if started.is_ok() {
            ports::pump(env, &queue, dispatcher, token);
        }
        queue.end_sync();
        started
            .ok()
            .and_then(|()| outcome.recv().ok())
            .and_then(Result::ok)
            .ok_or_else(|| napi::Error::from_reason("the engine call could not be run"))
    }
}

#[napi]
impl Engine {
    /// Loads the playbooks under `path` (a file or a directory).
    #[napi(factory, ts_args_type = "path: string, options?: EngineOptions | null")]
    pub fn from_path(
        env: &Env,
        path: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Engine> {
        let options = optional_object(env, options, "options")?;
        let path = string_arg(env, path, "path")?;
        let set = load_path(env, &path)?;
        Ok(Engine::from_built(build(env, set, options)?))
    }

    /// Loads playbooks from YAML text (one or more documents).
    #[napi(factory, ts_args_type = "text: string, options?: EngineOptions | null")]
    pub fn from_yaml(
        env: &Env,
        text: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Engine> {
        let options = optional_object(env, options, "options")?;
        let text = string_arg(env, text, "text")?;
        let set = PlaybookSet::from_yaml(&text).map_err(|e| EngineError::Load(e).into_napi(env))?;
        Ok(Engine::from_built(build(env, set, options)?))
    }

    /// Decides what to show for one signal, on the calling thread. JS ports are called on
    /// the JS thread while the decision waits for them; they must answer synchronously.
    #[napi(
        ts_args_type = "signal: Signal, context?: Context | null, options?: DecideOptions | null",
        ts_return_type = "Decision"
    )]
    pub fn decide<'e>(
        &self,
        env: &'e Env,
        signal: Unknown<'_>,
        context: Option<Unknown<'_>>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Unknown<'e>> {
        let (signal, context, options) = self.arguments(env, signal, context, options)?;
        let decided = self.run_here(env, move |core| {
            core.decide_given(signal, context.as_ref(), &options)
        })?;
        match decided {
            Ok(decision) => decision::to_js(env, &self.builder, &decision),
            Err(e) => Err(EngineError::Decide(e).into_napi(env)),
        }
    }

    /// Decides off the JS thread; the JS thread stays free to run ports (which may answer
    /// with Promises) and everything else.
    #[napi(
        ts_args_type = "signal: Signal, context?: Context | null, options?: DecideOptions | null",
        ts_return_type = "Promise<Decision>"
    )]
    pub fn decide_async<'e>(
        &self,
        env: &'e Env,
        signal: Unknown<'_>,
        context: Option<Unknown<'_>>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Object<'e>> {
        let (signal, context, options) = self.arguments(env, signal, context, options)?;
        type Resolver = Box<dyn FnOnce(Env) -> napi::Result<Unknown<'static>> + Send>;
        let (deferred, promise) = env.create_deferred::<Unknown<'static>, Resolver>()?;
        let core = self.core.clone();
        let builder = Arc::clone(&self.builder);
        let guard = self.bridge.as_ref().map(|b| b.queue.async_guard());
        let job = move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                core.decide_given(signal, context.as_ref(), &options)
            }));
            drop(guard);
            // Serialised here, off the JS thread; only the builder runs on it.
            let settled = result.map(|r| r.map(|d| decision::pack(&d)));
            deferred.resolve(Box::new(move |env: Env| match settled {
                Ok(Ok(Ok(packed))) => decision::from_packed(&env, &builder, packed),
                Ok(Ok(Err(e))) => Err(napi::Error::from_reason(format!(
                    "the decision cannot be serialised: {e}"
                ))),
                Ok(Err(e)) => Err(EngineError::Decide(e).into_napi(&env)),
                Err(_) => Err(napi::Error::from_reason("the decision could not be run")),
            }));
        };
        ASYNC
            .spawn(job)
            .map_err(|why| napi::Error::from_reason(why.to_string()))?;
        Ok(promise)
    }

    /// Records what the actor did with an action (`accepted`, `dismissed`, `snoozed`,
    /// `ignored`, `executed`, `failed`).
    #[napi(ts_args_type = "outcome: Outcome")]
    pub fn record_outcome(&self, env: &Env, outcome: Unknown<'_>) -> napi::Result<()> {
        let value = from_js(env, outcome).map_err(|e| {
            EngineError::Outcome(mmm_engine::outcome::OutcomeError {
                field: if e.path.is_empty() {
                    "outcome".into()
                } else {
                    e.path
                },
                message: e.message,
            })
            .into_napi(env)
        })?;
        self.core
            .record_outcome(&value)
            .map_err(|e| EngineError::Outcome(e).into_napi(env))
    }

    /// Outcome counts for a tenant, by playbook, action type and result.
    #[napi(ts_args_type = "tenantId: string", ts_return_type = "OutcomeCount[]")]
    pub fn outcome_counts<'e>(
        &self,
        env: &'e Env,
        tenant_id: Unknown<'_>,
    ) -> napi::Result<Unknown<'e>> {
        let tenant_id = string_arg(env, tenant_id, "tenantId")?;
        to_js(env, &self.core.outcome_counts(&tenant_id))
    }

    /// Replaces the playbooks with those under `path`, atomically: a failed reload throws
    /// and keeps the old set; decisions see the old set or the new one, never a mix.
    #[napi(ts_args_type = "path: string")]
    pub fn reload(&self, env: &Env, path: Unknown<'_>) -> napi::Result<()> {
        let path = string_arg(env, path, "path")?;
        let set = load_path(env, &path)?;
        self.run_here(env, move |core| core.reload(set))?
            .map_err(|e| EngineError::Audit(e).into_napi(env))
    }

    /// As `reload`, from YAML text.
    #[napi(ts_args_type = "text: string")]
    pub fn reload_yaml(&self, env: &Env, text: Unknown<'_>) -> napi::Result<()> {
        let text = string_arg(env, text, "text")?;
        let set = PlaybookSet::from_yaml(&text).map_err(|e| EngineError::Load(e).into_napi(env))?;
        self.run_here(env, move |core| core.reload(set))?
            .map_err(|e| EngineError::Audit(e).into_napi(env))
    }

    /// Opens a dual-channel approval for a multiplier action (an action of a decision).
    #[napi(
        ts_args_type = "action: Action, tenantId: string, actorId: string",
        ts_return_type = "Approval"
    )]
    pub fn request_approval<'e>(
        &self,
        env: &'e Env,
        action: Unknown<'_>,
        tenant_id: Unknown<'_>,
        actor_id: Unknown<'_>,
    ) -> napi::Result<Unknown<'e>> {
        let tenant_id = string_arg(env, tenant_id, "tenantId")?;
        let actor_id = string_arg(env, actor_id, "actorId")?;
        let value =
            from_js(env, action).map_err(|e| arg_type(env, format!("not an action: {e}")))?;
        let action: mmm_engine::Action = serde_json::from_value(value).map_err(|e| {
            arg_value(
                env,
                format!(
                    "not an action: {}",
                    mmm_engine::clean_message(&e.to_string())
                ),
            )
        })?;
        let approval = self
            .run_here(env, move |core| {
                core.approvals().request(&action, &tenant_id, &actor_id)
            })?
            .map_err(|e| EngineError::Approval(e).into_napi(env))?;
        to_js(env, &approval)
    }

    /// Approves on `channel`; the second approval must come through another channel.
    #[napi(
        ts_args_type = "approvalId: string, channel: string, approver: string",
        ts_return_type = "Approval"
    )]
    pub fn approve<'e>(
        &self,
        env: &'e Env,
        approval_id: Unknown<'_>,
        channel: Unknown<'_>,
        approver: Unknown<'_>,
    ) -> napi::Result<Unknown<'e>> {
        let approval_id = string_arg(env, approval_id, "approvalId")?;
        let channel = string_arg(env, channel, "channel")?;
        let approver = string_arg(env, approver, "approver")?;
        let approval = self
            .run_here(env, move |core| {
                core.approvals().approve(&approval_id, &channel, &approver)
            })?
            .map_err(|e| EngineError::Approval(e).into_napi(env))?;
        to_js(env, &approval)
    }

    /// Rejects an approval that is not yet terminal.
    #[napi(
        ts_args_type = "approvalId: string, by: string, reason: string",
        ts_return_type = "Approval"
    )]
    pub fn reject<'e>(
        &self,
        env: &'e Env,
        approval_id: Unknown<'_>,
        by: Unknown<'_>,
        reason: Unknown<'_>,
    ) -> napi::Result<Unknown<'e>> {
        let approval_id = string_arg(env, approval_id, "approvalId")?;
        let by = string_arg(env, by, "by")?;
        let reason = string_arg(env, reason, "reason")?;
        let approval = self
            .run_here(env, move |core| {
                core.approvals().reject(&approval_id, &by, &reason)
            })?
            .map_err(|e| EngineError::Approval(e).into_napi(env))?;
        to_js(env, &approval)
    }

    /// The approval (`expired` once past its time).
    #[napi(ts_args_type = "approvalId: string", ts_return_type = "Approval")]
    pub fn get_approval<'e>(
        &self,
        env: &'e Env,
        approval_id: Unknown<'_>,
    ) -> napi::Result<Unknown<'e>> {
        let approval_id = string_arg(env, approval_id, "approvalId")?;
        let approval = self
            .run_here(env, move |core| core.approvals().get(&approval_id))?
            .map_err(|e| EngineError::Approval(e).into_napi(env))?;
        to_js(env, &approval)
    }

    /// Current variant weights of an experiment for a tenant (normalised to 1), or `null`
    /// when no such experiment applies.
    #[napi(
        ts_args_type = "tenantId: string, experimentId: string",
        ts_return_type = "Record<string, number> | null"
    )]
    pub fn experiment_weights<'e>(
        &self,
        env: &'e Env,
        tenant_id: Unknown<'_>,
        experiment_id: Unknown<'_>,
    ) -> napi::Result<Unknown<'e>> {
        let tenant_id = string_arg(env, tenant_id, "tenantId")?;
        let experiment_id = string_arg(env, experiment_id, "experimentId")?;
        let weights = self
            .core
            .experiment_weights(&tenant_id, &experiment_id)
            .map(|w| {
                w.into_iter()
                    .map(|(name, weight)| (name, Value::from(weight)))
                    .collect::<serde_json::Map<String, Value>>()
            });
        to_js(env, &weights)
    }

    /// Sets an experiment's status; the change is audited.
    #[napi(ts_args_type = "experimentId: string, status: ExperimentStatus, by: string")]
    pub fn set_experiment_status(
        &self,
        env: &Env,
        experiment_id: Unknown<'_>,
        status: Unknown<'_>,
        by: Unknown<'_>,
    ) -> napi::Result<()> {
        let experiment_id = string_arg(env, experiment_id, "experimentId")?;
        let status = string_arg(env, status, "status")?;
        let by = string_arg(env, by, "by")?;
        let status = ExperimentStatus::parse(&status)
            .ok_or_else(|| arg_value(env, "status must be `active`, `paused` or `completed`"))?;
        self.run_here(env, move |core| {
            core.set_experiment_status(&experiment_id, status, &by)
        })?
        .map_err(|e| EngineError::Audit(e).into_napi(env))
    }

    /// Tries now to deliver the receipts waiting in the outbox (a background worker also
    /// does, every 100 ms).
    #[napi]
    pub fn flush_outbox(&self) {
        self.core.flush_outbox();
    }

    /// Receipts waiting for the receipts port: in the outbox, or being delivered from it.
    #[napi(getter)]
    pub fn outbox_length(&self) -> u32 {
        u32::try_from(self.core.outbox_len()).unwrap_or(u32::MAX)
    }

    /// A port's circuit breaker: `closed`, `open` or `half_open`.
    #[napi(
        ts_args_type = "port: PortName",
        ts_return_type = "'closed' | 'open' | 'half_open'"
    )]
    pub fn breaker_state(&self, env: &Env, port: Unknown<'_>) -> napi::Result<String> {
        let port = string_arg(env, port, "port")?;
        let name = PortName::parse(&port).ok_or_else(|| {
            arg_value(
                env,
                format!(
                    "unknown port {} (expected {})",
                    mmm_engine::Quoted(&port),
                    PortName::expected()
                ),
            )
        })?;
        Ok(self.core.breaker_state(name).as_str().to_owned())
    }

    /// The public key receipts are signed with (hex), or `null` when signing is off.
    #[napi(getter)]
    pub fn receipt_public_key(&self) -> Option<String> {
        self.core
            .receipt_public_key()
            .map(|k| k.as_bytes().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Checks playbook files: every error and lint warning (an empty list when all is well).
#[napi(ts_args_type = "path: string", ts_return_type = "Diagnostic[]")]
pub fn validate<'e>(env: &'e Env, path: Unknown<'_>) -> napi::Result<Unknown<'e>> {
    let path = string_arg(env, path, "path")?;
    let found = mmm_engine::check_paths(&[PathBuf::from(path)]);
    to_js(env, &found)
}

/// An envelope given as an object or as its JSON line, read by the core.
fn envelope_arg(env: &Env, envelope: Unknown<'_>) -> Result<Envelope, String> {
    let parsed = if envelope.get_type().map_err(|e| e.reason)? == ValueType::String {
        Envelope::parse(&String::from_unknown(envelope).map_err(|e| e.reason)?)
    } else {
        Envelope::from_json(from_js(env, envelope).map_err(|e| e.to_string())?)
    };
    parsed.map_err(|e| match e {
        mmm_engine::receipt::ReceiptError::Malformed(why) => why,
        other => other.to_string(),
    })
}

fn malformed(env: &Env, why: String, index: Option<usize>) -> napi::Error {
    EngineError::Receipt(mmm_engine::receipt::ReceiptError::Malformed(why), index).into_napi(env)
}

/// Verifies one receipt envelope (an object or its JSON line) against a public key and
/// returns its payload.
#[napi(
    ts_args_type = "envelope: Envelope | string, publicKey: Buffer | string",
    ts_return_type = "ReceiptPayload"
)]
pub fn verify_receipt<'e>(
    env: &'e Env,
    envelope: Unknown<'_>,
    public_key: Unknown<'_>,
) -> napi::Result<Unknown<'e>> {
    let key = public_key_from_bytes(&key_from_unknown(env, public_key, "publicKey")?)
        .map_err(|e| EngineError::Receipt(e, None).into_napi(env))?;
    let envelope = envelope_arg(env, envelope).map_err(|why| malformed(env, why, None))?;
    let payload = mmm_engine::receipt::verify_receipt(&envelope, &key)
        .map_err(|e| EngineError::Receipt(e, None).into_napi(env))?;
    to_js(env, &payload)
}

/// Verifies a chain of envelopes in order (signatures, `seq`, `prev_sha256`) and returns
/// their payloads. The error's `index` names the first envelope that does not verify.
#[napi(
    ts_args_type = "envelopes: Array<Envelope | string>, publicKey: Buffer | string",
    ts_return_type = "ReceiptPayload[]"
)]
pub fn verify_chain<'e>(
    env: &'e Env,
    envelopes: Unknown<'_>,
    public_key: Unknown<'_>,
) -> napi::Result<Unknown<'e>> {
    if !envelopes.is_array()? {
        return Err(arg_type(env, "`envelopes` must be an array"));
    }
    let key = public_key_from_bytes(&key_from_unknown(env, public_key, "publicKey")?)
        .map_err(|e| EngineError::Receipt(e, None).into_napi(env))?;
    let envelopes = Vec::<Unknown<'_>>::from_unknown(envelopes)?
        .into_iter()
        .enumerate()
        .map(|(i, e)| envelope_arg(env, e).map_err(|why| malformed(env, why, Some(i))))
        .collect::<napi::Result<Vec<_>>>()?;
    match mmm_engine::receipt::verify_chain(&envelopes, &key) {
        Ok(payloads) => to_js(env, &payloads),
        Err(fault) => Err(EngineError::Receipt(fault.error, Some(fault.index)).into_napi(env)),
    }
}

/// A new Ed25519 signing key: `[seedHex, publicKeyHex]`.
#[napi(ts_return_type = "[seedHex: string, publicKeyHex: string]")]
pub fn generate_key() -> Vec<String> {
    let (seed, public) = mmm_engine::receipt::generate_key();
    vec![seed, public]
}

/// An `Error` with `code: 'REJECTED'`, for a port to throw as a business answer (a deny, a
/// not-found): the dependency is up, and its circuit breaker does not count it.
#[napi(
    ts_args_type = "message: string",
    ts_return_type = "Error & { code: 'REJECTED' }"
)]
pub fn rejected<'e>(env: &'e Env, message: Unknown<'_>) -> napi::Result<Object<'e>> {
    let message = string_arg(env, message, "message")?;
    let class: napi::bindgen_prelude::Function<'_, String, Unknown<'_>> =
        env.get_global()?.get_named_property("Error")?;
    let mut err = class.new_instance(message)?.coerce_to_object()?;
    err.set_named_property("code", mmm_engine::codes::REJECTED)?;
    Ok(err)
}

/// The engine's version, as recorded in receipts.
#[napi]
pub const ENGINE_VERSION: &str = mmm_engine::ENGINE_VERSION;
