//! `POST /decide` (SPEC §13): the engine's §4 decision for one signal.
//!
//! The host fills the context's `preferences` (the actor's, from the store) and
//! `tenant_policy` (the tenant's, from the store); a body that passes them, or a `policy`,
//! is refused with 422 naming the field. The engine runs on the blocking pool. What the
//! decision produced — its receipt, returned actions, approvals for dual-channel
//! multipliers, the tenant's counters — is group-committed by the
//! [`DecisionLog`](crate::receipts::DecisionLog) before the answer is sent: a 200 means
//! the receipt is on disk.

use axum::extract::State;
use axum::Json;
use jiff::Timestamp;
use mmm_engine::approval::{Approval, ApprovalState};
use mmm_engine::Quoted;
use mmm_engine::{ActionType, DecideError, DecideOptions, Decision, ErrorInfo};
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::JsonBody;
use crate::auth::extract::Decider;
use crate::auth::{Caller, Role};
use crate::error::{AppError, Problem};
use crate::receipts::{envelope_seq, DecisionRecord};
use crate::store::{DeliveryTarget, IssuedAction, ReceiptRow, SeenSignal};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(decide))
}

/// Context fields the host fills itself; a body may not pass them.
const HOST_FILLED: &[&str] = &["preferences", "tenant_policy", "policy"];

/// The request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// The §1 signal envelope; its `tenant_id` must be the token's tenant.
    #[schema(value_type = Object)]
    pub signal: Value,
    /// The §2 context, without `preferences`, `tenant_policy` and `policy` (the host
    /// fills those).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// Include the explain trace.
    #[serde(default)]
    pub explain: bool,
    /// The decision's `now` (RFC 3339), for replays and tests: `admin` only.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub now: Option<String>,
}

/// Decides for one signal.
#[utoipa::path(post, path = "/decide", tag = "decide",
    request_body(content = DecideRequest, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the §4 decision; its receipt, when signing is on, is stored", body = Object),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "wrong role, another tenant's signal, `now` without `admin`, or IAM refuses the actor", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`SIGNAL_INVALID`, or `INVALID_REQUEST` naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the database (or IAM) is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
async fn decide(
    State(state): State<AppState>,
    Decider(caller): Decider,
    JsonBody(body): JsonBody<DecideRequest>,
) -> Result<Json<Decision>, AppError> {
    let context = check_context(body.context)?;
    let now = match &body.now {
        None => None,
        Some(_) if !caller.has_any(&[Role::Admin]) => {
            return Err(AppError::Forbidden(
                "`now` is for replays and tests: it needs the role admin".to_owned(),
            ))
        }
        Some(text) => {
            Some(mmm_engine::parse_timestamp(text).map_err(|m| AppError::invalid_field("now", m))?)
        }
    };
    let (tenant, actor) = signal_subject(&caller, &body.signal)?;
    let options = DecideOptions {
        now,
        explain: body.explain,
    };
    let input = DecideInput {
        signal: body.signal,
        context,
        options,
        tenant,
        actor,
        mark_seen: false,
    };
    let decision = decide_signal(&state, input).await?;
    Ok(Json(decision))
}

/// One decision to make, whatever brought it (HTTP, a broker).
pub(crate) struct DecideInput {
    /// The §1 signal.
    pub signal: Value,
    /// The §2 context; it has passed [`check_context`].
    pub context: Option<Value>,
    /// The engine's options.
    pub options: DecideOptions,
    /// The signal's tenant, as [`signal_subject`] read it.
    pub tenant: Option<String>,
    /// The signal's actor, as [`signal_subject`] read it.
    pub actor: Option<String>,
    /// Commit the signal's decided marker (`decided_signals`) with the receipt, so that a
    /// redelivery is recognised (the broker intakes).
    pub mark_seen: bool,
}

/// Decides for one signal whose tenant the caller may decide for, and commits what the
/// decision wrote (receipt, actions, approvals, counters) before returning: the one path
/// every intake (HTTP, brokers) takes.
pub(crate) async fn decide_signal(
    state: &AppState,
    input: DecideInput,
) -> Result<Decision, AppError> {
    let span = crate::telemetry::decide_span(input.tenant.as_deref(), input.actor.as_deref());
    decide_traced(state, input, &span)
        .instrument(span.clone())
        .await
}

/// [`decide_signal`] inside its `mmm.decide` span.
async fn decide_traced(
    state: &AppState,
    input: DecideInput,
    span: &tracing::Span,
) -> Result<Decision, AppError> {
    let DecideInput {
        signal,
        context,
        options,
        tenant,
        actor,
        mark_seen,
    } = input;
    if let Some(why) = state.decisions.refuses() {
        return Err(AppError::Unavailable(why.to_owned()));
    }
    // The tenant's webhooks, read beside its context (from memory on SQLite): the
    // decision's deliveries are queued with its receipt.
    let targets = async {
        match tenant.as_deref() {
            Some(t) => state.store.get_delivery_targets(t).await,
            None => Ok(Vec::new()),
        }
    };
    let (context, targets) = tokio::join!(
        fill_context(state, context, tenant.as_deref(), actor.as_deref()),
        targets
    );
    let (context, targets) = (context?, targets?);

    let engine = state.live.engine().clone();
    let log = std::sync::Arc::clone(&state.decisions);
    let wall = state.clock.now();
    let shape = crate::telemetry::SignalShape::of(&signal);
    // Traces on: the core's stages become children of this decision's span.
    let tracer = crate::telemetry::tracer();
    // Decide, and hand the record to the log, in one blocking task: once the engine has
    // signed a receipt it reaches the log even if this request is abandoned meanwhile.
    // The decision span's trace context (traces on), stored with its deliveries: read
    // here, where the span's subscriber is current (not on the blocking thread).
    let traceparent = crate::telemetry::traceparent_of(&span.context());
    let in_span = span.clone();
    let decided = tokio::task::spawn_blocking(move || {
        // The engine's log lines (a port down) carry the decision's ids.
        let _entered = in_span.enter();
        let (decided, started, stages) =
            crate::telemetry::collect_core_spans(tracer.is_some(), || {
                engine.decide_owned(signal, context.as_ref(), &options)
            });
        let mut decision = decided?;
        let chain = log.chain().map(|c| c.id.as_str());
        let mut record = record(
            &decision,
            engine.config().approval_ttl,
            wall,
            chain,
            &targets,
            traceparent.as_deref(),
        )?;
        let queued = !record.deliveries.is_empty();
        if mark_seen {
            record.seen_signal = Some(SeenSignal {
                tenant: decision.tenant_id.clone(),
                signal_id: decision.signal_id.clone(),
                decided_at: wall,
            });
        }
        decision.receipt.envelope = None;
        Ok::<_, AppError>((decision, log.submit(record), started, stages, queued))
    })
    .await
    .map_err(|e| AppError::Internal(format!("the decision task failed: {e}")));
    let (decision, committed, started, stages, queued) = match decided {
        Ok(Ok(d)) => d,
        Ok(Err(e)) | Err(e) => {
            span.record("otel.status_code", "error");
            return Err(e);
        }
    };
    if let Some(tracer) = crate::telemetry::tracer() {
        crate::telemetry::export_core_spans(&tracer, &span.context(), started, &stages);
    }
    crate::telemetry::record_decision(span, &decision, &shape);
    state
        .metrics
        .observe_surface_latency(shape.surface(), decision.latency_us);
    match committed.await {
        Ok(Ok(())) => {
            if queued {
                state.delivery_wake.notify_one();
            }
        }
        Ok(Err(e)) => {
            span.record("otel.status_code", "error");
            return Err(e.into());
        }
        Err(_) => {
            span.record("otel.status_code", "error");
            return Err(AppError::Unavailable(
                "the decision log has stopped".to_owned(),
            ));
        }
    }
    tracing::debug!(
        actions = decision.actions.len(),
        suppressed = decision.suppressed.len(),
        "decided"
    );
    Ok(decision)
}

/// The body's context: an object (or absent) without the fields the host fills.
pub(crate) fn check_context(context: Option<Value>) -> Result<Option<Value>, AppError> {
    match context {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if let Some(field) = HOST_FILLED.iter().find(|f| map.contains_key(**f)) {
                return Err(AppError::invalid_field(
                    &format!("context.{field}"),
                    format!(
                        "is filled by the host from its store and ports; do not pass `{field}`"
                    ),
                ));
            }
            Ok(Some(Value::Object(map)))
        }
        Some(_) => Err(AppError::invalid_field("context", "must be a JSON object")),
    }
}

/// The signal's tenant and actor, when it names them as strings (else the engine says
/// what is wrong with the signal). Another tenant's signal answers 403.
pub(crate) fn signal_subject(
    caller: &Caller,
    signal: &Value,
) -> Result<(Option<String>, Option<String>), AppError> {
    let text = |key: &str| signal.get(key).and_then(Value::as_str).map(str::to_owned);
    let tenant = text("tenant_id");
    if let Some(t) = &tenant {
        if !caller.is_operator() && *t != caller.tenant {
            return Err(AppError::Forbidden(format!(
                "the token is for tenant `{}`; the signal's `tenant_id` is {}",
                caller.tenant,
                Quoted(t)
            )));
        }
    }
    let actor = text("actor_id");
    // An actor id is opaque (SPEC §1) but names records the host keeps (preferences,
    // actions, approvals): as in a path, it holds no control character.
    if let Some(a) = actor.as_deref().filter(|a| a.chars().any(char::is_control)) {
        return Err(AppError::Invalid {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            code: crate::error::code::SIGNAL_INVALID,
            detail: format!(
                "field `signal.actor_id`: {} holds a control character",
                Quoted(a)
            ),
            errors: vec![mmm_engine::ErrorInfo {
                field: Some("signal.actor_id".to_owned()),
                ..mmm_engine::ErrorInfo::new(
                    crate::error::code::SIGNAL_INVALID,
                    "an actor id holds no control character".to_owned(),
                )
            }],
        });
    }
    Ok((tenant, actor))
}

/// The context with the actor's preferences and the tenant's policy from the store.
pub(crate) async fn fill_context(
    state: &AppState,
    context: Option<Value>,
    tenant: Option<&str>,
    actor: Option<&str>,
) -> Result<Option<Value>, AppError> {
    let Some(tenant) = tenant else {
        return Ok(context);
    };
    let preferences = async {
        match actor {
            Some(actor) => state.store.get_preferences(tenant, actor).await,
            None => Ok(None),
        }
    };
    let (preferences, policy) = tokio::join!(preferences, state.store.get_tenant_policy(tenant));
    let (preferences, policy) = (preferences?, policy?);
    if preferences.is_none() && policy.is_none() {
        return Ok(context);
    }
    let mut map = match context {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(p) = preferences {
        map.insert("preferences".to_owned(), p.value);
    }
    if let Some(p) = policy {
        map.insert("tenant_policy".to_owned(), p.value);
    }
    Ok(Some(Value::Object(map)))
}

/// What the decision writes: its receipt, returned actions, approvals for dual-channel
/// multipliers (opened at `wall`, the host's clock), the tenant's counters and the
/// webhook deliveries of its actions to the tenant's `targets` (due at `wall`, their
/// spans children of `traceparent`, the decision's span).
fn record(
    decision: &Decision,
    approval_ttl: std::time::Duration,
    wall: Timestamp,
    chain_id: Option<&str>,
    targets: &[DeliveryTarget],
    traceparent: Option<&str>,
) -> Result<DecisionRecord, AppError> {
    let decided_at: Timestamp = decision.decided_at.parse().unwrap_or(wall);
    let tenant = &decision.tenant_id;
    let receipt = match (&decision.receipt.envelope, &decision.receipt.receipt_id) {
        (Some(envelope), Some(receipt_id)) => {
            let seq = envelope_seq(envelope).ok_or_else(|| {
                AppError::Internal("a signed receipt has no chain position".to_owned())
            })?;
            let envelope = serde_json::to_string(envelope)
                .map_err(|e| AppError::Internal(format!("serialising a receipt: {e}")))?;
            let chain_id = chain_id
                .ok_or_else(|| {
                    AppError::Internal("the engine signs receipts on no known chain".to_owned())
                })?
                .to_owned();
            Some(ReceiptRow {
                chain_id,
                seq,
                receipt_id: receipt_id.clone(),
                tenant: tenant.clone(),
                envelope,
                stored_at: wall,
            })
        }
        _ => None,
    };
    let actions = decision
        .actions
        .iter()
        .map(|a| IssuedAction {
            action_id: a.action_id.to_string(),
            tenant: tenant.clone(),
            actor_id: decision.actor_id.clone(),
            playbook_id: a.playbook.id.to_string(),
            playbook_version: a.playbook.version,
            action_type: a.kind.as_str().to_owned(),
            experiment: a
                .experiment
                .as_ref()
                .map(|e| (e.id.clone(), e.variant.clone())),
            decided_at,
        })
        .collect();
    let ttl = jiff::SignedDuration::try_from(approval_ttl)
        .unwrap_or(jiff::SignedDuration::from_hours(24));
    let approvals = decision
        .actions
        .iter()
        .filter(|a| a.dual_channel && a.kind == ActionType::Multiplier)
        .map(|a| Approval {
            approval_id: uuid::Uuid::now_v7().to_string(),
            action_id: a.action_id.to_string(),
            tenant_id: tenant.clone(),
            actor_id: decision.actor_id.clone(),
            operation: a.operation.clone(),
            state: ApprovalState::Pending,
            created_at: wall,
            expires_at: wall.checked_add(ttl).unwrap_or(wall),
            grants: Vec::new(),
            rejection: None,
        })
        .collect();
    let counts = super::tenants::decision_counts(decision);
    let deliveries =
        crate::delivery::queue(decision, targets, wall, traceparent).map_err(AppError::Internal)?;
    Ok(DecisionRecord {
        receipt,
        actions,
        approvals,
        counts: (tenant.clone(), decided_at, counts),
        seen_signal: None,
        deliveries,
    })
}

/// A field of the signal or context as the body names it (`signal.kind`).
fn prefixed(part: &str, field: &str) -> String {
    if field == part || field.starts_with(&format!("{part}.")) {
        field.to_owned()
    } else {
        format!("{part}.{field}")
    }
}

impl From<DecideError> for AppError {
    /// By the error's code ([`crate::error::core_status`]); the field is named as the body
    /// names it (`signal.kind`, `context.repo`).
    fn from(e: DecideError) -> Self {
        let info = e.info();
        match e {
            DecideError::Signal(err) => AppError::core_with(
                format!("the signal is invalid: {err}"),
                ErrorInfo {
                    field: Some(prefixed("signal", &err.field)),
                    ..info
                },
            ),
            DecideError::Context(err) => AppError::core_with(
                format!("the context is invalid: {err}"),
                ErrorInfo {
                    field: Some(prefixed("context", &err.field)),
                    ..info
                },
            ),
            DecideError::Forbidden(m) => AppError::core_with(m, info),
            // The port's own message may name hosts or addresses: it is logged, and the
            // answer names only the dependency.
            DecideError::Unavailable {
                dependency,
                message,
            } => {
                tracing::warn!(dependency = %dependency, error = %message, "a dependency of decide is down");
                AppError::core_with(
                    format!(
                        "`{dependency}`, which the decision needs, is unavailable; try again shortly"
                    ),
                    info,
                )
            }
            // The enum may grow (it is `non_exhaustive`): an error added later is
            // answered by its code.
            _ => AppError::core(info),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_problems_without_internals() {
        let down = AppError::from(DecideError::Unavailable {
            dependency: mmm_engine::PortName::Iam,
            message: "connection refused to 10.0.0.5:8443".to_owned(),
        });
        match down {
            AppError::Unavailable(m) => {
                assert!(m.contains("`iam`"), "{m}");
                assert!(!m.contains("10.0.0.5"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            AppError::from(DecideError::Forbidden("actor dev-1 is inactive".to_owned())),
            AppError::Forbidden(_)
        ));
        let invalid = AppError::from(DecideError::Signal(mmm_engine::SignalError::new(
            "repo.id",
            "must be a string",
        )));
        match invalid {
            AppError::Invalid { code, errors, .. } => {
                assert_eq!(code, crate::error::code::SIGNAL_INVALID);
                assert_eq!(errors[0].field.as_deref(), Some("signal.repo.id"));
                assert_eq!(errors[0].code, "SIGNAL_INVALID");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_filled_context_fields_are_refused_by_name() {
        for field in HOST_FILLED {
            let e = check_context(Some(serde_json::json!({ *field: {} }))).unwrap_err();
            assert!(e.to_string().contains(&format!("context.{field}")), "{e}");
        }
        assert!(check_context(Some(serde_json::json!({"actor": {}})))
            .unwrap()
            .is_some());
        assert!(check_context(Some(Value::Null)).unwrap().is_none());
    }
}
