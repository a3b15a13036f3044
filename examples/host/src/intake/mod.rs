//! Broker intake (SPEC §13 "Intake and delivery"): signals taken from NATS JetStream
//! ([`nats`]) or RabbitMQ ([`amqp`]) are decided through the same path as `POST /decide`
//! ([`decide_signal`]), and only then acknowledged.
//!
//! A broker is a [`Connect`] (it connects, creates its stream or queues when absent and
//! starts consuming) yielding a [`Source`] of [`Message`]s; each message carries its own
//! [`Settle`] (ack, retry later, or dead-letter then ack). The loop ([`spawn`]) is the
//! same for every broker:
//!
//! - at most `in_flight` messages are being decided at once (the broker's prefetch
//!   bounds what waits in the client);
//! - a malformed message (not JSON, not an object, an invalid signal or context, any
//!   4xx-class error) goes to the dead letters with its error and is acknowledged;
//! - an unavailable database or port (any 5xx) leaves the message to the broker again,
//!   after `retry_delay`: it is retried, never lost;
//! - a `signal_id` decided within 24 h is acknowledged without a decision (`duplicate`);
//!   the marker is committed with the receipt, so a crash between the commit and the ack
//!   ends in a duplicate skip on redelivery, never in a second decision;
//! - on shutdown the loop stops taking messages, lets those in flight finish for a
//!   bounded time, abandons the rest unacknowledged (the broker delivers them again) and
//!   closes the connection.

pub mod amqp;
pub mod nats;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mmm_engine::DecideOptions;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;

use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::routes::decide::{check_context, decide_signal, signal_subject, DecideInput};
use crate::store::{GLOBAL, SEEN_WINDOW_MS};
use crate::AppState;

/// The RabbitMQ prefetch and the NATS batch and `max_ack_pending`, by default.
pub const DEFAULT_PREFETCH: u16 = 64;

/// The header naming a dead letter's error (its message).
pub const ERROR_HEADER: &str = "MMM-Error";
/// The header holding a dead letter's stable error code (`SIGNAL_INVALID`, …).
pub const ERROR_CODE_HEADER: &str = "MMM-Error-Code";
/// The W3C trace-context header read from broker messages.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// How often decided-signal markers older than 24 h are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// A broker-side failure (connecting, consuming, settling).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct IntakeError(pub String);

impl IntakeError {
    /// An error with `what` failed and why.
    pub fn new(what: &str, e: impl std::fmt::Display) -> Self {
        IntakeError(format!("{what}: {e}"))
    }
}

/// One message taken from a broker and not settled yet. Dropped without settling, it is
/// left unacknowledged: the broker delivers it again (NATS after its ack wait, RabbitMQ
/// when the channel closes).
pub struct Message {
    /// The message body, as published.
    pub body: Vec<u8>,
    /// The message's W3C `traceparent` header, when it has one: the decision's trace
    /// continues it (see [`decide_message`]).
    pub traceparent: Option<String>,
    /// How to settle it.
    pub settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("bytes", &self.body.len())
            .field("traceparent", &self.traceparent)
            .finish_non_exhaustive()
    }
}

/// The ways a message is settled with its broker.
#[async_trait]
pub trait Settle: Send + 'static {
    /// Acknowledges it: the broker forgets it.
    async fn ack(self: Box<Self>) -> Result<(), IntakeError>;
    /// Tells the broker the message is still being worked on (NATS: resets its ack
    /// wait), while its decision waits for the database.
    async fn in_progress(&self) -> Result<(), IntakeError>;
    /// Gives it back to be delivered again after `after` (NATS: a delayed nak; RabbitMQ:
    /// a pause, then a reject with requeue).
    async fn retry(self: Box<Self>, after: Duration) -> Result<(), IntakeError>;
    /// Publishes `body` to the dead letters with the error in its headers
    /// ([`ERROR_HEADER`], [`ERROR_CODE_HEADER`]), and once the broker has it, acknowledges
    /// the message. On an error nothing is acknowledged.
    async fn dead_letter(
        self: Box<Self>,
        body: &[u8],
        code: &str,
        message: &str,
    ) -> Result<(), IntakeError>;
}

/// A broker's stream of messages.
#[async_trait]
pub trait Source: Send + 'static {
    /// The next message. An error means the subscription is lost: the loop connects again.
    async fn next(&mut self) -> Result<Message, IntakeError>;
    /// Stops taking messages (the messages in flight can still be settled).
    async fn stop(&mut self);
    /// Closes the connection: what was not settled goes back to the broker.
    async fn close(self: Box<Self>);
}

/// Connects to a broker, creating its stream or queues when absent (idempotent), and
/// starts consuming.
#[async_trait]
pub trait Connect: Send + Sync + 'static {
    /// `nats` or `amqp` (the `source` label of `mmm_intake_messages_total`).
    fn name(&self) -> &'static str;
    /// A source consuming from the broker.
    async fn connect(&self) -> Result<Box<dyn Source>, IntakeError>;
}

/// What the loop does beside the broker's own settings.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// Most messages being decided at once.
    pub in_flight: usize,
    /// How long a message that could not be decided now (5xx) waits before it is
    /// delivered again.
    pub retry_delay: Duration,
    /// How long the messages in flight may take to finish once the host stops.
    pub grace: Duration,
    /// How often a message whose decision is still under way is reported in progress
    /// (well under the NATS ack wait).
    pub progress_every: Duration,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            in_flight: 16,
            retry_delay: Duration::from_secs(1),
            grace: Duration::from_secs(8),
            progress_every: Duration::from_secs(5),
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Decided, receipt committed: acknowledge.
    Decided,
    /// Decided within the last 24 h already: acknowledge without deciding.
    Duplicate,
    /// Malformed: to the dead letters, then acknowledge.
    DeadLetter {
        /// The stable error code.
        code: &'static str,
        /// The error's message.
        message: String,
    },
    /// Not decidable now (the database or a port is away): deliver again later.
    Retry {
        /// Why.
        why: String,
    },
}

impl Verdict {
    /// The `result` label of `mmm_intake_messages_total`.
    pub fn result(&self) -> &'static str {
        match self {
            Verdict::Decided => "decided",
            Verdict::Duplicate => "duplicate",
            Verdict::DeadLetter { .. } => "dead_lettered",
            Verdict::Retry { .. } => "retried",
        }
    }

    fn from_error(e: &AppError) -> Verdict {
        let (status, code) = e.status_and_code();
        if status.is_client_error() {
            Verdict::DeadLetter {
                code,
                message: e.to_string(),
            }
        } else {
            if matches!(e, AppError::Internal(_)) {
                tracing::error!(error = %e, "deciding a broker message failed inside the host; it will be delivered again");
            }
            Verdict::Retry { why: e.to_string() }
        }
    }
}

/// A decodable message: the signal and its context, checked as `POST /decide` checks
/// them, with the signal's tenant and actor.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The §1 signal.
    pub signal: Value,
    /// The §2 context (without the fields the host fills).
    pub context: Option<Value>,
    /// The signal's tenant, when it names one.
    pub tenant: Option<String>,
    /// The signal's actor, when it names one.
    pub actor: Option<String>,
}

impl Decoded {
    /// (tenant, signal id) when the signal names both: the key redeliveries are
    /// recognised by. A signal without a `signal_id` gets a fresh one from the engine and
    /// cannot be recognised again.
    pub fn dedupe_key(&self) -> Option<(String, String)> {
        let id = self.signal.get("signal_id").and_then(Value::as_str)?;
        Some((self.tenant.clone()?, id.to_owned()))
    }
}

/// Brokers are trusted like the platform operator: a message may be for any tenant.
fn broker_caller() -> Caller {
    Caller {
        tenant: GLOBAL.to_owned(),
        sub: "broker-intake".to_owned(),
        roles: [Role::Service].into_iter().collect(),
    }
}

/// Reads a message body: `{"signal", "context"?}` or a bare signal (an object without a
/// `signal` field), with the checks of `POST /decide` (the context's host-filled fields,
/// the actor id). `limit` is the largest body accepted (the HTTP body limit).
///
/// # Errors
/// The 4xx-class error naming what is wrong.
pub fn decode(body: &[u8], limit: usize) -> Result<Decoded, AppError> {
    if body.len() > limit {
        return Err(AppError::PayloadTooLarge(format!(
            "the message has {} bytes; the host takes at most {limit}",
            body.len()
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::unreadable(format!("the message is not JSON: {e}"), None))?;
    let Value::Object(map) = value else {
        return Err(AppError::invalid_field(
            "message",
            "must be a JSON object: a signal, or {\"signal\", \"context\"}",
        ));
    };
    let (signal, context) = signal_and_context(map)?;
    let (tenant, actor) = signal_subject(&broker_caller(), &signal)?;
    Ok(Decoded {
        signal,
        context,
        tenant,
        actor,
    })
}

/// Splits `{"signal", "context"?}`, or takes a bare signal (an object without a `signal`
/// field), checking the context as `POST /decide` does. Shared by the broker intake and
/// the console's decision explorer.
///
/// # Errors
/// A field other than `signal` and `context` beside `signal`; a signal that is not an
/// object; a context passing what the host fills.
pub(crate) fn signal_and_context(
    mut map: serde_json::Map<String, Value>,
) -> Result<(Value, Option<Value>), AppError> {
    let (signal, context) = if map.contains_key("signal") {
        if let Some(other) = map.keys().find(|k| *k != "signal" && *k != "context") {
            return Err(AppError::invalid_field(
                other,
                "is not a field of an intake message (`signal`, `context`)",
            ));
        }
        let context = map.remove("context");
        (map.remove("signal").unwrap_or(Value::Null), context)
    } else {
        (Value::Object(map), None)
    };
    if !signal.is_object() {
        return Err(AppError::invalid_field("signal", "must be a JSON object"));
    }
    Ok((signal, check_context(context)?))
}

/// The (tenant, signal id) pairs being decided in this process: a second delivery of one
/// of them waits (is retried) instead of racing the first.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<(String, String)>>);

/// Holds a key of [`InFlight`] until dropped.
struct Claim<'a> {
    set: &'a InFlight,
    key: (String, String),
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set.0.lock().remove(&self.key);
    }
}

impl InFlight {
    fn claim(&self, key: (String, String)) -> Option<Claim<'_>> {
        // The guard is released before a claim exists: a claim's drop takes the lock.
        let fresh = self.0.lock().insert(key.clone());
        if fresh {
            Some(Claim { set: self, key })
        } else {
            None
        }
    }
}

/// Decides one message: decode, skip a signal id decided within 24 h, decide (the
/// receipt, the record and the decided marker are committed before this returns).
pub async fn handle(
    state: &AppState,
    source: &str,
    message_body: &[u8],
    traceparent: Option<&str>,
    in_flight: &InFlight,
) -> Verdict {
    let decoded = match decode(message_body, state.settings.body_limit) {
        Ok(d) => d,
        Err(e) => return Verdict::from_error(&e),
    };
    let key = decoded.dedupe_key();
    let _claim = match key {
        Some(key) => match in_flight.claim(key) {
            Some(claim) => Some(claim),
            None => {
                return Verdict::Retry {
                    why: "a delivery of the same signal_id is being decided".to_owned(),
                }
            }
        },
        None => None,
    };
    if let Some((tenant, id)) = decoded.dedupe_key() {
        let since = state
            .clock
            .now()
            .checked_sub(jiff::SignedDuration::from_millis(SEEN_WINDOW_MS))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        match state.store.signal_decided_since(&tenant, &id, since).await {
            Ok(true) => return Verdict::Duplicate,
            Ok(false) => {}
            Err(e) => return Verdict::from_error(&AppError::from(e)),
        }
    }
    let span = tracing::info_span!("intake.message", source = %source);
    match decide_message(state, decoded, traceparent)
        .instrument(span)
        .await
    {
        Ok(()) => Verdict::Decided,
        Err(e) => Verdict::from_error(&e),
    }
}

/// Decides a decoded message through the one decide path, marking its signal decided in
/// the same commit as its receipt.
///
/// `traceparent` is the broker message's W3C trace context: the decision's `mmm.decide`
/// span continues that trace (a missing or malformed one starts a new trace).
pub async fn decide_message(
    state: &AppState,
    decoded: Decoded,
    traceparent: Option<&str>,
) -> Result<(), AppError> {
    let parent = crate::telemetry::parent_from_traceparent(traceparent, None);
    let input = DecideInput {
        signal: decoded.signal,
        context: decoded.context,
        options: DecideOptions::default(),
        tenant: decoded.tenant,
        actor: decoded.actor,
        mark_seen: true,
    };
    let decision = decide_signal(state, input);
    crate::telemetry::with_parent(parent, decision)
        .await
        .map(|_| ())
}

/// Handles one message and settles it.
async fn process(
    state: AppState,
    source: &'static str,
    message: Message,
    settings: IntakeSettings,
    in_flight: Arc<InFlight>,
) {
    let Message {
        body,
        traceparent,
        settle,
    } = message;
    // A decision whose commit fails waits for the decision log's retry (the message
    // must not go back while its record may still commit): meanwhile the broker is told
    // the message is in progress, so that it does not deliver it elsewhere.
    let work = handle(&state, source, &body, traceparent.as_deref(), &in_flight);
    tokio::pin!(work);
    let mut ticks = tokio::time::interval(settings.progress_every.max(Duration::from_millis(100)));
    ticks.tick().await;
    let verdict = loop {
        tokio::select! {
            verdict = &mut work => break verdict,
            _ = ticks.tick() => {
                if let Err(e) = settle.in_progress().await {
                    tracing::debug!(source, error = %e, "reporting a message in progress failed");
                }
            }
        }
    };
    // A decision is counted once it is made (its record committed), before the ack: a
    // task stopped while the ack is on its way must not leave a decided message counted
    // nowhere (the broker may have it acknowledged already).
    if verdict == Verdict::Decided {
        state.metrics.observe_intake(source, verdict.result());
    }
    let settled = match &verdict {
        Verdict::Decided | Verdict::Duplicate => settle.ack().await,
        Verdict::DeadLetter { code, message } => {
            tracing::info!(source, code, error = %message, "a malformed broker message goes to the dead letters");
            settle.dead_letter(&body, code, message).await
        }
        Verdict::Retry { why } => {
            tracing::warn!(source, error = %why, "a broker message cannot be decided now; it will be delivered again");
            settle.retry(settings.retry_delay).await
        }
    };
    match settled {
        Ok(()) if verdict != Verdict::Decided => {
            state.metrics.observe_intake(source, verdict.result());
        }
        Ok(()) => {}
        Err(e) => {
            // Unsettled: the broker delivers it again (a decided one is then skipped).
            tracing::warn!(source, result = verdict.result(), error = %e, "settling a broker message failed; the broker will deliver it again");
        }
    }
}

/// Resolves once the host is stopping (or the shutdown is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Runs the intake from `connect` until the host stops (`state.shutdown`).
pub fn spawn(
    state: AppState,
    connect: Arc<dyn Connect>,
    settings: IntakeSettings,
) -> JoinHandle<()> {
    tokio::spawn(run(state, connect, settings))
}

async fn run(state: AppState, connect: Arc<dyn Connect>, settings: IntakeSettings) {
    let name = connect.name();
    let mut stopping = state.shutdown.stopping();
    let permits = Arc::new(Semaphore::new(settings.in_flight.max(1)));
    let in_flight = Arc::new(InFlight::default());
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(200);
    let mut current: Option<Box<dyn Source>> = None;
    'connect: loop {
        if *stopping.borrow() {
            break;
        }
        let connected = tokio::select! {
            c = connect.connect() => c,
            () = stopped(&mut stopping) => break 'connect,
        };
        let source = match connected {
            Ok(source) => {
                tracing::info!(source = name, "broker intake consuming");
                backoff = Duration::from_millis(200);
                current.insert(source)
            }
            Err(e) => {
                tracing::warn!(source = name, error = %e, retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX), "cannot consume from the broker");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopped(&mut stopping) => break 'connect,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        loop {
            while tasks.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => p,
                () = stopped(&mut stopping) => break 'connect,
            };
            let Ok(permit) = permit else {
                break 'connect;
            };
            let next = tokio::select! {
                m = source.next() => m,
                () = stopped(&mut stopping) => break 'connect,
            };
            match next {
                Ok(message) => {
                    let state = state.clone();
                    let settings = settings.clone();
                    let in_flight = Arc::clone(&in_flight);
                    tasks.spawn(async move {
                        process(state, name, message, settings, in_flight).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(source = name, error = %e, "the broker subscription was lost; connecting again");
                    if let Some(old) = current.take() {
                        old.close().await;
                    }
                    continue 'connect;
                }
            }
        }
    }
    // Stopping: take nothing more, let what is in flight finish (bounded), abandon the
    // rest unacknowledged, then close.
    if let Some(source) = current.as_mut() {
        source.stop().await;
    }
    let left = tasks.len();
    if left > 0 {
        tracing::info!(
            source = name,
            in_flight = left,
            "stopping: finishing the broker messages in flight"
        );
    }
    let finished = tokio::time::timeout(settings.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(source = name, abandoned = tasks.len(), "stopping: broker messages abandoned unacknowledged; the broker will deliver them again");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    if let Some(source) = current.take() {
        source.close().await;
    }
    tracing::info!(source = name, "broker intake stopped");
}

/// Purges decided-signal markers older than 24 h now and every [`PURGE_INTERVAL`], until
/// the host stops.
pub fn spawn_purge(state: AppState, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut stopping = state.shutdown.stopping();
        loop {
            let before = state
                .clock
                .now()
                .checked_sub(jiff::SignedDuration::from_millis(SEEN_WINDOW_MS))
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            match state.store.prune_decided_signals(before).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(purged = n, "decided-signal markers older than 24 h purged")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging decided-signal markers failed; trying again later")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stopped(&mut stopping) => return,
            }
        }
    })
}

/// The intakes the flags configure, running.
#[derive(Debug, Default)]
pub struct Intakes {
    tasks: Vec<JoinHandle<()>>,
}

impl Intakes {
    /// Starts an intake per configured broker (`--nats-url`, `--amqp-url`) and the
    /// markers' purge when there is one. Call inside the runtime.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn start(state: &AppState, args: &crate::config::ServeArgs) -> Result<Intakes, String> {
        let mut connects: Vec<Arc<dyn Connect>> = Vec::new();
        if let Some(config) = nats::NatsConfig::from_args(args)? {
            connects.push(Arc::new(nats::NatsConnect::new(config)));
        }
        if let Some(config) = amqp::AmqpConfig::from_args(args)? {
            connects.push(Arc::new(amqp::AmqpConnect::new(config)));
        }
        if connects.is_empty() {
            return Ok(Intakes::default());
        }
        let settings = IntakeSettings {
            in_flight: usize::from(args.intake_in_flight.max(1)),
            retry_delay: Duration::from_millis(args.intake_retry_delay_ms),
            grace: Duration::from_secs(args.shutdown_grace_seconds),
            // A third of the NATS ack wait (RabbitMQ needs none).
            progress_every: Duration::from_secs(args.nats_ack_wait_seconds.max(1))
                .checked_div(3)
                .unwrap_or(Duration::from_secs(1)),
        };
        let mut tasks = vec![spawn_purge(state.clone(), PURGE_INTERVAL)];
        for connect in connects {
            tasks.push(spawn(state.clone(), connect, settings.clone()));
        }
        Ok(Intakes { tasks })
    }

    /// Waits for the intakes to stop (they stop when the host's shutdown begins).
    pub async fn join(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a broker intake task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signal() -> Value {
        json!({"signal_id": "s-1", "tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened"})
    }

    fn code_of(body: &[u8]) -> (u16, &'static str, String) {
        let e = decode(body, 1024).unwrap_err();
        let (status, code) = e.status_and_code();
        (status.as_u16(), code, e.to_string())
    }

    #[test]
    fn a_bare_signal_and_an_envelope_decode_alike() {
        let bare = decode(signal().to_string().as_bytes(), 1024).unwrap();
        assert_eq!(bare.signal, signal());
        assert_eq!(bare.context, None);
        assert_eq!(bare.tenant.as_deref(), Some("acme"));
        assert_eq!(bare.actor.as_deref(), Some("dev-1"));
        assert_eq!(
            bare.dedupe_key(),
            Some(("acme".to_owned(), "s-1".to_owned()))
        );
        let body = json!({"signal": signal(), "context": {"actor": {"type": "human"}}});
        let wrapped = decode(body.to_string().as_bytes(), 1024).unwrap();
        assert_eq!(wrapped.signal, signal());
        assert_eq!(wrapped.context, Some(json!({"actor": {"type": "human"}})));
        let no_id = decode(
            json!({"tenant_id": "acme", "kind": "pr.opened"})
                .to_string()
                .as_bytes(),
            1024,
        )
        .unwrap();
        assert_eq!(no_id.dedupe_key(), None);
    }

    #[test]
    fn malformed_messages_are_4xx_naming_what_is_wrong() {
        let (status, code, message) = code_of(b"not json");
        assert_eq!((status, code), (400, "INVALID_REQUEST"));
        assert!(message.contains("not JSON"), "{message}");
        let (status, _, message) = code_of(b"[1]");
        assert_eq!(status, 422);
        assert!(message.contains("JSON object"), "{message}");
        let (_, _, message) = code_of(json!({"signal": 3}).to_string().as_bytes());
        assert!(message.contains("`signal`"), "{message}");
        let (_, _, message) = code_of(
            json!({"signal": signal(), "now": "x"})
                .to_string()
                .as_bytes(),
        );
        assert!(message.contains("`now`"), "{message}");
        let (_, _, message) = code_of(
            json!({"signal": signal(), "context": {"tenant_policy": {}}})
                .to_string()
                .as_bytes(),
        );
        assert!(message.contains("context.tenant_policy"), "{message}");
        let (_, code, _) = code_of(
            json!({"tenant_id": "acme", "actor_id": "a\u{7}b"})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(code, "SIGNAL_INVALID");
        let big = vec![b' '; 2048];
        let (status, code, _) = code_of(&big);
        assert_eq!((status, code), (413, "PAYLOAD_TOO_LARGE"));
    }

    #[test]
    fn client_errors_dead_letter_and_server_errors_retry() {
        let dead = Verdict::from_error(&AppError::invalid_field("signal", "bad"));
        assert!(matches!(
            dead,
            Verdict::DeadLetter {
                code: "INVALID_REQUEST",
                ..
            }
        ));
        assert_eq!(dead.result(), "dead_lettered");
        let forbidden = Verdict::from_error(&AppError::Forbidden("inactive".to_owned()));
        assert!(matches!(
            forbidden,
            Verdict::DeadLetter {
                code: "FORBIDDEN",
                ..
            }
        ));
        let retry = Verdict::from_error(&AppError::Unavailable("db".to_owned()));
        assert!(matches!(retry, Verdict::Retry { .. }));
        assert_eq!(retry.result(), "retried");
        assert!(matches!(
            Verdict::from_error(&AppError::Internal("bug".to_owned())),
            Verdict::Retry { .. }
        ));
        assert_eq!(Verdict::Decided.result(), "decided");
        assert_eq!(Verdict::Duplicate.result(), "duplicate");
    }

    #[test]
    fn a_key_in_flight_is_claimed_once_until_released() {
        let set = InFlight::default();
        let key = ("acme".to_owned(), "s-1".to_owned());
        let first = set.claim(key.clone()).unwrap();
        assert!(set.claim(key.clone()).is_none());
        // The refused claim released nothing: the first still holds the key.
        assert!(set.claim(key.clone()).is_none());
        drop(first);
        assert!(set.claim(key).is_some());
    }
}
