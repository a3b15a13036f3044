//! JavaScript objects as the engine's ports.
//!
//! The engine calls ports from its own threads (each call runs on its call pool, under a
//! timeout and a circuit breaker), but a JavaScript function can only run on the JS
//! thread. So a port call made by the engine becomes a [`Call`] on a [`Queue`], and the
//! calling engine thread waits for its [`Answer`]. Two things run queued calls on the JS
//! thread, and whichever comes first takes a call:
//!
//! - **the pump of a synchronous `decide`**: while `decide` runs, the JS thread does not
//!   sit blocked in the engine; the engine works on a helper thread and the JS thread
//!   waits on the queue, running each port call as it arrives, until the decision is done;
//! - **a threadsafe function** (napi `ThreadsafeFunction`) that every queued call wakes:
//!   when the JS thread is free — `decideAsync`, receipts retried by the outbox worker,
//!   deliveries finishing after `decide` returned — the event loop runs the queue.
//!
//! Nothing ever waits for the JS thread while holding it, so there is no deadlock: a port
//! that does not answer within its timeout is a dependency that is down.
//!
//! On the JS thread a call looks the method up on the port object and calls it. A thrown
//! exception is the dependency being down, except an error whose `code` is `REJECTED`,
//! which is a business answer (a deny, a not-found) that does not count against the
//! port's circuit breaker. An answer that is a Promise is awaited when the JS thread is
//! free; inside a synchronous `decide` it cannot be (the JS thread is busy in `decide`), so
//! it counts as down at once — unless `decideAsync` calls are in flight at that moment:
//! the binding cannot tell which decision a port call belongs to, so it then awaits the
//! promise, and the synchronous `decide` stops waiting for it at the port's timeout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use mmm_engine::ports::{
    ActorInfo, DataGovernance, Delivery, Iam, Llm, LlmRequest, LlmResponse, Policy, PortError,
    Receipts, RecentSignals, TenantConfig,
};
use mmm_engine::receipt::Envelope;
use mmm_engine::{Action, PolicySnapshot, Surface};
use mmm_engine::{FatigueError, FatigueRequest, FatigueStore, FatigueVerdict};
use napi::bindgen_prelude::{
    FnArgs, FromNapiValue, Function, FunctionRef, JsObjectValue, Object, Unknown,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsValue, Status, ValueType};
use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::convert::checked_text;
use crate::json::parse_text;

/// The ports an engine can take, with the option name (the key on the JS ports object)
/// and the method that must exist on the object.
pub const PORTS: &[(&str, &str)] = &[
    ("llm", "generate"),
    ("receipts", "emit"),
    ("policy", "snapshot"),
    ("iam", "validateActor"),
    ("signals", "recent"),
    ("dataGovernance", "tenantConfig"),
    ("delivery", "deliver"),
    ("fatigue", "checkAndRecord"),
    ("audit", "record"),
];

/// How a port call ended on the JS thread.
pub enum Answer {
    /// The answer, as JSON text.
    Value(String),
    /// The dependency is down (threw, answered with something that is not JSON, …).
    Down(String),
    /// A business answer: the port threw an error with `code: 'REJECTED'`.
    Rejected(String),
}

/// One port call waiting for the JS thread.
pub struct Call {
    port: &'static str,
    method: &'static str,
    /// The arguments, a JSON array.
    args: String,
    reply: SyncSender<Answer>,
    /// Set when the caller stopped waiting: the call is then skipped, not made late.
    abandoned: Arc<AtomicBool>,
}

/// What a waiting pump is woken for.
enum Wake {
    Work,
    Done,
}

#[derive(Default)]
struct State {
    calls: VecDeque<Call>,
    finished: Vec<u64>,
    next_token: u64,
}

/// Port calls waiting for the JS thread, and the bookkeeping of synchronous decides.
#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    /// Synchronous decides running on the JS thread (nested when a port decides).
    sync_depth: AtomicUsize,
    /// `decideAsync` calls in flight.
    in_async: AtomicUsize,
}

impl Queue {
    fn push(&self, call: Call) {
        self.state.lock().calls.push_back(call);
        self.ready.notify_all();
    }

    fn pop(&self) -> Option<Call> {
        self.state.lock().calls.pop_front()
    }

    /// Starts a synchronous decide; returns the token its worker finishes with.
    pub fn begin_sync(&self) -> u64 {
        self.sync_depth.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock();
        state.next_token += 1;
        state.next_token
    }

    /// Ends a synchronous decide.
    pub fn end_sync(&self) {
        self.sync_depth.fetch_sub(1, Ordering::SeqCst);
    }

    /// Called by the worker of a synchronous decide when the decision is made.
    pub fn finish(&self, token: u64) {
        self.state.lock().finished.push(token);
        self.ready.notify_all();
    }

    /// Waits until there are calls to run or the decision of `token` is made.
    fn wait(&self, token: u64) -> Wake {
        let mut state = self.state.lock();
        loop {
            if let Some(i) = state.finished.iter().position(|t| *t == token) {
                state.finished.swap_remove(i);
                return Wake::Done;
            }
            if !state.calls.is_empty() {
                return Wake::Work;
            }
            self.ready.wait(&mut state);
        }
    }

    /// Counts a `decideAsync` in flight until the guard drops.
    pub fn async_guard(self: &Arc<Self>) -> AsyncGuard {
        self.in_async.fetch_add(1, Ordering::SeqCst);
        AsyncGuard(Arc::clone(self))
    }

    /// Whether a Promise answer can only have come from a synchronous decide, which cannot
    /// await it.
    fn promise_cannot_be_awaited(&self) -> bool {
        self.sync_depth.load(Ordering::SeqCst) > 0 && self.in_async.load(Ordering::SeqCst) == 0
    }
}

/// Keeps a `decideAsync` counted as in flight.
pub struct AsyncGuard(Arc<Queue>);

impl Drop for AsyncGuard {
    fn drop(&mut self) {
        self.0.in_async.fetch_sub(1, Ordering::SeqCst);
    }
}

type Wakeup = ThreadsafeFunction<(), (), (), Status, false, true>;

/// What port proxies share: the queue, and the way to wake the JS thread.
pub struct Bridge {
    pub queue: Arc<Queue>,
    wake: Wakeup,
    js_thread: ThreadId,
}

/// Sets up the JS side for a ports object: the dispatcher function (bound to the ports
/// object), the threadsafe function that wakes it, and a reference the synchronous pump
/// calls it through.
pub fn install(env: &Env, ports: Object<'_>) -> napi::Result<(Arc<Bridge>, FunctionRef<(), ()>)> {
    let queue = Arc::new(Queue::default());
    let q = Arc::clone(&queue);
    let dispatcher =
        env.create_function_from_closure::<(), (), _>("mmmPortDispatch", move |ctx| {
            let ports: Object<'_> = ctx.this()?;
            drain(ctx.env, &ports, &q);
            Ok(())
        })?;
    let bound = dispatcher.bind(ports)?;
    // Weak: a process with nothing else to do exits even though an engine could still call
    // a port (a late delivery is then dropped, as it would be on any exit).
    let wake: Wakeup = bound
        .build_threadsafe_function::<()>()
        .callee_handled::<false>()
        .weak::<true>()
        .build()?;
    let pump = bound.create_ref()?;
    let bridge = Arc::new(Bridge {
        queue,
        wake,
        js_thread: std::thread::current().id(),
    });
    Ok((bridge, pump))
}

/// Runs queued calls on the JS thread until none are left.
fn drain(env: &Env, ports: &Object<'_>, queue: &Queue) {
    while let Some(call) = queue.pop() {
        if call.abandoned.load(Ordering::SeqCst) {
            continue;
        }
        run(env, ports, queue, call);
    }
}

/// Runs the synchronous pump: `decide` has started on a worker thread with `token`; run
/// port calls on this (the JS) thread until it is done.
pub fn pump(env: &Env, queue: &Queue, dispatcher: &FunctionRef<(), ()>, token: u64) {
    loop {
        match queue.wait(token) {
            Wake::Done => return,
            Wake::Work => {
                // The dispatcher catches everything a port throws; an error here means the
                // environment is going away, and the worker's calls then time out.
                let _ = dispatcher.borrow_back(env).and_then(|f| f.call(()));
            }
        }
    }
}

fn send(reply: &SyncSender<Answer>, answer: Answer) {
    // The caller may have stopped waiting; its answer is then of no use to anyone.
    let _ = reply.try_send(answer);
}

fn run(env: &Env, ports: &Object<'_>, queue: &Queue, call: Call) {
    let result = match invoke(env, ports, &call) {
        Ok(result) => result,
        Err(answer) => return send(&call.reply, answer),
    };
    let is_promise = result.is_promise().unwrap_or(false);
    if !is_promise {
        return send(&call.reply, answer_of(env, result));
    }
    if queue.promise_cannot_be_awaited() && call.method != "deliver" {
        send(
            &call.reply,
            Answer::Down(format!(
                "{}.{} answered with a Promise inside a synchronous decide, which cannot await \
                 it; use decideAsync with ports that answer asynchronously",
                call.port, call.method
            )),
        );
        // Still handled, so that a later rejection is not an unhandled one.
        let _ = settle(env, result, None);
        return;
    }
    let reply = call.reply.clone();
    if let Err(e) = settle(env, result, Some(call.reply)) {
        send(
            &reply,
            Answer::Down(format!(
                "{}.{} answered with an unusable Promise: {}",
                call.port, call.method, e.reason
            )),
        );
    }
}

/// `Reflect.apply(target, thisArgument, argumentsList)`.
type ReflectApply<'e> = Function<'e, FnArgs<(Unknown<'e>, Unknown<'e>, Unknown<'e>)>, Unknown<'e>>;

/// Looks the method up and calls it; `Err` is the answer when it could not be called or
/// threw.
fn invoke<'e>(env: &'e Env, ports: &Object<'_>, call: &Call) -> Result<Unknown<'e>, Answer> {
    let down = |why: String| Answer::Down(format!("{}.{}: {why}", call.port, call.method));
    let lookup = || -> napi::Result<Option<(Unknown<'e>, Unknown<'e>)>> {
        let target: Unknown<'e> = ports.get_named_property(call.port)?;
        if !matches!(target.get_type()?, ValueType::Object | ValueType::Function) {
            return Ok(None);
        }
        let method: Unknown<'e> = target.coerce_to_object()?.get_named_property(call.method)?;
        if method.get_type()? != ValueType::Function {
            return Ok(None);
        }
        Ok(Some((target, method)))
    };
    let (target, method) = match lookup() {
        Ok(Some(found)) => found,
        Ok(None) => return Err(down("not a function on the port object".into())),
        Err(e) => return Err(down(e.reason)),
    };
    let args = parse_text(env, call.args.clone()).map_err(|e| down(e.reason))?;
    // `Reflect.apply(method, target, args)`: napi-rs's `call` hands back what the port
    // throws as an error (and clears it), where `apply` would leave it pending.
    let reflect_apply = || -> napi::Result<ReflectApply<'e>> {
        let reflect: Object<'_> = env.get_global()?.get_named_property("Reflect")?;
        reflect.get_named_property("apply")
    };
    let apply = reflect_apply().map_err(|e| down(e.reason))?;
    match apply.call(FnArgs::from((method, target, args))) {
        Ok(result) => Ok(result),
        Err(thrown) => Err(classify(env, thrown)),
    }
}

/// The answer for a thrown value: `REJECTED` is a business answer, anything else is the
/// dependency being down.
fn classify(env: &Env, thrown: napi::Error) -> Answer {
    use napi::bindgen_prelude::ToNapiValue as _;
    let reason = thrown.reason.clone();
    let Ok(value) = thrown.into_unknown(env) else {
        return Answer::Down(reason);
    };
    let code = value
        .coerce_to_object()
        .ok()
        .filter(|_| value.get_type().is_ok_and(|t| t == ValueType::Object))
        .and_then(|o| o.get_named_property::<Unknown<'_>>("code").ok())
        .filter(|c| c.get_type().is_ok_and(|t| t == ValueType::String))
        .and_then(|c| String::from_unknown(c).ok());
    let described = describe(value).unwrap_or(reason);
    if code.as_deref() == Some(mmm_engine::codes::REJECTED) {
        Answer::Rejected(described)
    } else {
        Answer::Down(described)
    }
}

fn describe(value: Unknown<'_>) -> Option<String> {
    let text = value
        .coerce_to_string()
        .ok()?
        .into_utf8()
        .ok()?
        .into_owned()
        .ok()?;
    Some(text)
}

/// The answer for a returned (or resolved) value.
fn answer_of(env: &Env, value: Unknown<'_>) -> Answer {
    match checked_text(env, None, value) {
        Ok(Some(text)) => Answer::Value(text),
        Ok(None) => Answer::Value("null".to_owned()),
        Err(e) => Answer::Down(format!("answered with data the engine refuses: {e}")),
    }
}

/// Attaches handlers to a Promise (any thenable) that send its outcome to `reply`.
fn settle(env: &Env, promise: Unknown<'_>, reply: Option<SyncSender<Answer>>) -> napi::Result<()> {
    let slot = Arc::new(Mutex::new(reply));
    let on_value_slot = Arc::clone(&slot);
    let on_value = env.create_function_from_closure::<(), (), _>("onPortAnswer", move |ctx| {
        if let Some(reply) = on_value_slot.lock().take() {
            let answer = match ctx.get::<Unknown<'_>>(0) {
                Ok(value) => answer_of(ctx.env, value),
                Err(_) => Answer::Value("null".to_owned()),
            };
            send(&reply, answer);
        }
        Ok(())
    })?;
    let on_error = env.create_function_from_closure::<(), (), _>("onPortError", move |ctx| {
        if let Some(reply) = slot.lock().take() {
            let answer = match ctx.get::<Unknown<'_>>(0) {
                Ok(value) => classify(ctx.env, napi::Error::from(value)),
                Err(_) => Answer::Down("rejected without a reason".to_owned()),
            };
            send(&reply, answer);
        }
        Ok(())
    })?;
    type Handler<'a> = Function<'a, (), ()>;
    let then: Function<'_, FnArgs<(Handler<'_>, Handler<'_>)>, Unknown<'_>> =
        promise.coerce_to_object()?.get_named_property("then")?;
    then.bind(promise)?
        .call(FnArgs::from((on_value, on_error)))?;
    Ok(())
}

/// A JavaScript object used as one port.
pub struct JsPort {
    bridge: Arc<Bridge>,
    name: &'static str,
    /// How long the calling thread waits; the engine's own timeout for the port is
    /// shorter, so this only bounds how long a thread can be held.
    limit: Duration,
}

impl JsPort {
    pub fn new(bridge: Arc<Bridge>, name: &'static str, limit: Duration) -> JsPort {
        JsPort {
            bridge,
            name,
            limit,
        }
    }

    fn call(&self, method: &'static str, args: Value) -> Result<Value, PortError> {
        let what = || format!("{}.{method}", self.name);
        if std::thread::current().id() == self.bridge.js_thread {
            // Waiting here for the JS thread would wait for ourselves.
            return Err(PortError::Unavailable(format!(
                "{} was called on the JS thread, which cannot wait for itself",
                what()
            )));
        }
        let args = serde_json::to_string(&args)
            .map_err(|e| PortError::Unavailable(format!("{}: {e}", what())))?;
        let (reply, answer): (SyncSender<Answer>, Receiver<Answer>) = sync_channel(1);
        let abandoned = Arc::new(AtomicBool::new(false));
        self.bridge.queue.push(Call {
            port: self.name,
            method,
            args,
            reply,
            abandoned: Arc::clone(&abandoned),
        });
        // When the JS thread is in a synchronous decide it pumps the queue itself; the
        // wake-up is then a no-op that finds the queue empty.
        let _ = self
            .bridge
            .wake
            .call((), ThreadsafeFunctionCallMode::NonBlocking);
        match answer.recv_timeout(self.limit) {
            Ok(Answer::Value(text)) => serde_json::from_str(&text).map_err(|e| {
                PortError::Unavailable(format!("{} answered with unreadable JSON: {e}", what()))
            }),
            Ok(Answer::Down(why)) => Err(PortError::Unavailable(format!("{} threw {why}", what()))),
            Ok(Answer::Rejected(why)) => Err(PortError::Rejected(why)),
            Err(_) => {
                abandoned.store(true, Ordering::SeqCst);
                Err(PortError::Unavailable(format!(
                    "{} did not answer within {:?}",
                    what(),
                    self.limit
                )))
            }
        }
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

impl Iam for JsPort {
    fn validate_actor(&self, tenant_id: &str, actor_id: &str) -> Result<ActorInfo, PortError> {
        let v = self.call("validateActor", json!([tenant_id, actor_id]))?;
        self.typed("validateActor", v)
    }
}

impl RecentSignals for JsPort {
    fn recent(
        &self,
        tenant_id: &str,
        actor_id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, PortError> {
        let v = self.call("recent", json!([tenant_id, actor_id, limit]))?;
        self.typed("recent", v)
    }
}

impl DataGovernance for JsPort {
    fn tenant_config(&self, tenant_id: &str) -> Result<TenantConfig, PortError> {
        let v = self.call("tenantConfig", json!([tenant_id]))?;
        self.typed("tenantConfig", v)
    }
}

impl Policy for JsPort {
    fn snapshot(&self, tenant_id: &str) -> Result<PolicySnapshot, PortError> {
        let v = self.call("snapshot", json!([tenant_id]))?;
        self.typed("snapshot", v)
    }
}

impl Llm for JsPort {
    fn generate(&self, request: &LlmRequest) -> Result<LlmResponse, PortError> {
        let v = self.call("generate", json!([request]))?;
        self.typed("generate", v)
    }
}

impl Receipts for JsPort {
    fn emit(&self, envelope: &Envelope) -> Result<(), PortError> {
        self.call("emit", json!([envelope])).map(|_| ())
    }
}

impl Delivery for JsPort {
    fn deliver(&self, action: &Action, surface: Surface, rendered: &str) -> Result<(), PortError> {
        self.call("deliver", json!([action, surface.as_str(), rendered]))
            .map(|_| ())
    }
}

/// A fatigue store written in JavaScript: `checkAndRecord(request)` answering
/// `{verdict: 'allowed', actions: n}` or `{verdict: 'cooldown' | 'max' | 'budget'}`, and
/// `record(tenantId, actorId, playbookId, at, actions)`.
impl FatigueStore for JsPort {
    fn check_and_record(
        &self,
        request: &FatigueRequest<'_>,
    ) -> Result<FatigueVerdict, FatigueError> {
        let req = request.to_json();
        let v = self
            .call("checkAndRecord", json!([req]))
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
        self.call(
            "record",
            json!([tenant_id, actor_id, playbook_id, at.to_string(), actions]),
        )
        .map(|_| ())
        .map_err(|e| FatigueError::Unavailable(e.to_string()))
    }
}

/// An audit sink written in JavaScript: `record(event)`, the event as the core serialises
/// it (`kind`, `subject`, `by`, `at`, `before`, `after`). A throw means the event was not
/// recorded, so the change does not happen.
impl mmm_engine::audit::AuditSink for JsPort {
    fn record(&self, event: &mmm_engine::audit::AuditEvent) -> Result<(), String> {
        self.call("record", json!([event]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(queue: &Queue) -> Receiver<Answer> {
        let (reply, answer) = sync_channel(1);
        queue.push(Call {
            port: "policy",
            method: "snapshot",
            args: "[]".into(),
            reply,
            abandoned: Arc::new(AtomicBool::new(false)),
        });
        answer
    }

    #[test]
    fn a_pump_wakes_for_calls_and_ends_with_its_own_decision() {
        let queue = Arc::new(Queue::default());
        let outer = queue.begin_sync();
        let inner = queue.begin_sync();
        assert_ne!(outer, inner);
        let _answer = call(&queue);
        assert!(matches!(queue.wait(outer), Wake::Work));
        assert!(queue.pop().is_some());
        // Another decision finishing does not end this pump.
        let q = Arc::clone(&queue);
        let finisher = std::thread::spawn(move || {
            q.finish(inner);
            std::thread::sleep(std::time::Duration::from_millis(20));
            q.finish(outer);
        });
        assert!(matches!(queue.wait(outer), Wake::Done));
        assert!(matches!(queue.wait(inner), Wake::Done));
        finisher.join().unwrap();
        queue.end_sync();
        queue.end_sync();
        assert_eq!(queue.sync_depth.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn promises_can_be_awaited_unless_only_a_synchronous_decide_is_running() {
        let queue = Arc::new(Queue::default());
        assert!(!queue.promise_cannot_be_awaited());
        let token = queue.begin_sync();
        assert!(queue.promise_cannot_be_awaited());
        let guard = queue.async_guard();
        assert!(!queue.promise_cannot_be_awaited());
        drop(guard);
        assert!(queue.promise_cannot_be_awaited());
        queue.finish(token);
        queue.end_sync();
        assert!(!queue.promise_cannot_be_awaited());
    }
}
