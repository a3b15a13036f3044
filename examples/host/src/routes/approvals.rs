//! Dual-channel approvals (SPEC §8, §13): `POST /actions/{action_id}/approve` · `…/reject`
//! (body `{"channel": "ide"}`) and `GET /actions/{action_id}/approval-status`, for the
//! action's own actor or an `approver` of its tenant.
//!
//! The state machine is the core's ([`Approvals`]): `pending` → `partially_approved` on a
//! first channel → `approved` on another; a second approval on the same channel, or any
//! change of a terminal state (`approved`, `rejected`, `expired`), answers 409. It runs on
//! the blocking pool over the host's store through an `ApprovalStore` adapter: each transition is
//! computed by the core and written only when the stored record is still the one it was
//! computed from (else recomputed), so concurrent approvals on two replicas never both
//! count. The core's audit events of a transition go to the host's audit log.
//!
//! The decide route opens the approval records (one per dual-channel multiplier action);
//! an action without one answers 404 here.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use mmm_engine::approval::{Approval, ApprovalError, ApprovalStore, Approvals};
use mmm_engine::audit::{AuditEvent, AuditSink};
use mmm_engine::Quoted;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::playbooks::blocking;
use super::{JsonBody, PathParams};
use crate::auth::{Caller, Role};
use crate::error::{AppError, Problem};
use crate::store::{NewAudit, Store};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(approval_status))
}

/// Longest rejection reason kept.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionPath {
    pub action_id: String,
}

/// `POST …/approve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The channel this approval came through (`ide`, `chat`, `email`, a device id…):
    /// `[A-Za-z0-9._:-]{1,64}`. The second approval must come through another one.
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub channel: String,
}

/// `POST …/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// The channel the rejection came through.
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub channel: String,
    /// Why (at most 500 characters).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

fn check_channel(channel: &str) -> Result<(), AppError> {
    let ok = (1..=64).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid_field(
            "channel",
            format!("{} must match [A-Za-z0-9._:-]{{1,64}}", Quoted(channel)),
        ))
    }
}

/// Audit events of the core, kept until the transition is stored, then written to the
/// host's audit log (writing them from inside the store's transaction would wait for
/// the write connection that transaction holds).
#[derive(Debug, Default)]
struct Buffered(Mutex<Vec<AuditEvent>>);

impl AuditSink for Buffered {
    fn record(&self, event: &AuditEvent) -> Result<(), String> {
        self.0.lock().push(event.clone());
        Ok(())
    }
}

/// What a stored record changed into meanwhile (recompute the transition).
const CHANGED_MEANWHILE: &str = "the approval changed meanwhile";

/// The core's [`ApprovalStore`] over the host's store, for one tenant, called from the
/// blocking pool. `update` is optimistic: the core computes the change from the record
/// read, and the store writes it, under its row lock, only when the record is still that
/// one; otherwise the change is computed again from the newer record (its audit events
/// with it).
struct StoreApprovals {
    store: Arc<dyn Store>,
    tenant: String,
    handle: tokio::runtime::Handle,
    audit: Arc<Buffered>,
}

impl ApprovalStore for StoreApprovals {
    fn insert(&self, approval: Approval) -> Result<(), String> {
        self.handle
            .block_on(self.store.insert_approval(&approval))
            .map_err(|e| e.to_string())
    }

    fn get(&self, approval_id: &str) -> Result<Option<Approval>, String> {
        self.handle
            .block_on(self.store.get_approval(&self.tenant, approval_id))
            .map_err(|e| e.to_string())
    }

    fn update(
        &self,
        approval_id: &str,
        change: &mut dyn FnMut(&Approval) -> Result<Approval, ApprovalError>,
    ) -> Result<Approval, ApprovalError> {
        for _ in 0..8 {
            let current = self
                .get(approval_id)
                .map_err(ApprovalError::Unavailable)?
                .ok_or_else(|| ApprovalError::NotFound(approval_id.to_owned()))?;
            let mark = self.audit.0.lock().len();
            let forget = || self.audit.0.lock().truncate(mark);
            let next = change(&current).inspect_err(|_| forget())?;
            let written = next.clone();
            let mut write = move |row: &Approval| {
                if *row == current {
                    Ok(written.clone())
                } else {
                    Err(ApprovalError::Unavailable(CHANGED_MEANWHILE.to_owned()))
                }
            };
            match self.handle.block_on(self.store.update_approval(
                &self.tenant,
                approval_id,
                &mut write,
            )) {
                Ok(stored) => return Ok(stored),
                Err(ApprovalError::Unavailable(m)) if m == CHANGED_MEANWHILE => forget(),
                Err(e) => {
                    forget();
                    return Err(e);
                }
            }
        }
        Err(ApprovalError::Unavailable(
            "the approval kept changing; try again".to_owned(),
        ))
    }
}

/// The tenant's approval of an action, for its actor or an approver.
async fn find(state: &AppState, caller: &Caller, action_id: &str) -> Result<Approval, AppError> {
    let approval = state
        .store
        .get_approval_for_action(&caller.tenant, action_id)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!("no approval for action {}", Quoted(action_id)))
        })?;
    if caller.has_any(&[Role::Approver]) || caller.sub == approval.actor_id {
        Ok(approval)
    } else {
        Err(AppError::Forbidden(
            "approvals are the action's actor's, or an `approver`'s".to_owned(),
        ))
    }
}

/// By the error's code ([`crate::error::core_status`]): not found 404, a wrong state or
/// channel 409, the store down 503.
fn app_error(e: ApprovalError) -> AppError {
    let info = e.info();
    match e {
        ApprovalError::NotFound(m) => {
            AppError::core_with(format!("no approval {}", Quoted(&m)), info)
        }
        // The store's message may name hosts: it is logged, not shown.
        ApprovalError::Unavailable(m) => {
            tracing::warn!(error = %m, "approval store unavailable");
            AppError::core_with(
                "the database is unavailable; try again shortly".to_owned(),
                info,
            )
        }
        other => AppError::core_with(other.to_string(), info),
    }
}

/// Runs one operation of the core's state machine over the store, then writes its audit
/// events.
async fn run(
    state: &AppState,
    caller: &Caller,
    operation: impl FnOnce(&Approvals) -> Result<Approval, ApprovalError> + Send + 'static,
) -> Result<Approval, AppError> {
    let audit = Arc::new(Buffered::default());
    let approvals = Approvals::new(
        Arc::new(StoreApprovals {
            store: Arc::clone(&state.store),
            tenant: caller.tenant.clone(),
            handle: tokio::runtime::Handle::current(),
            audit: Arc::clone(&audit),
        }),
        Arc::clone(&state.clock),
        Arc::clone(&audit) as Arc<dyn AuditSink>,
    );
    let result = blocking(move || operation(&approvals)).await?;
    let events = std::mem::take(&mut *audit.0.lock());
    for event in events {
        let entry = NewAudit::new(
            event.at,
            &caller.tenant,
            event.by.as_deref().unwrap_or(&caller.sub),
            &event.kind,
            &event.subject,
            event.before,
            event.after,
        );
        // The transition is stored; a lost audit record is logged, not undone.
        if let Err(e) = state.store.append_audit(&entry).await {
            tracing::error!(error = %e, kind = %entry.action, subject = %entry.subject, "an approval's audit record was not written");
        }
    }
    result.map_err(app_error)
}

/// Approves a dual-channel action through a channel: the first approval makes it
/// `partially_approved`, a second on another channel `approved`.
#[utoipa::path(post, path = "/actions/{action_id}/approve", tag = "approvals",
    params(("action_id" = String, Path)),
    request_body = ApproveBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the approval after the change", body = Object),
        (status = 403, description = "neither the action's actor nor an approver", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no approval for this action in the token's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "approved on this channel already, or in a terminal state", body = Problem, content_type = "application/problem+json"),
    ))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<ActionPath>,
    JsonBody(body): JsonBody<ApproveBody>,
) -> Result<Json<Approval>, AppError> {
    check_channel(&body.channel)?;
    let found = find(&state, &caller, &path.action_id).await?;
    let by = caller.sub.clone();
    let approval = run(&state, &caller, move |a| {
        a.approve(&found.approval_id, &body.channel, &by)
    })
    .await?;
    Ok(Json(approval))
}

/// Rejects a dual-channel action (from any non-terminal state).
#[utoipa::path(post, path = "/actions/{action_id}/reject", tag = "approvals",
    params(("action_id" = String, Path)),
    request_body = RejectBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the rejected approval", body = Object),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "in a terminal state", body = Problem, content_type = "application/problem+json"),
    ))]
async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<ActionPath>,
    JsonBody(body): JsonBody<RejectBody>,
) -> Result<Json<Approval>, AppError> {
    check_channel(&body.channel)?;
    let reason = body.reason.unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(AppError::invalid_field(
            "reason",
            format!("is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    let found = find(&state, &caller, &path.action_id).await?;
    let by = caller.sub.clone();
    let reason = format!("{reason} (via {})", body.channel);
    let approval = run(&state, &caller, move |a| {
        a.reject(&found.approval_id, &by, reason.trim_start())
    })
    .await?;
    Ok(Json(approval))
}

/// Where an action's approval stands (an approval past `expires_at` is recorded as
/// `expired` when read).
#[utoipa::path(get, path = "/actions/{action_id}/approval-status", tag = "approvals",
    params(("action_id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the approval: `state`, `grants` (channel, approver, at), `expires_at`, `rejection`", body = Object),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn approval_status(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<ActionPath>,
) -> Result<Json<Value>, AppError> {
    let found = find(&state, &caller, &path.action_id).await?;
    let approval = run(&state, &caller, move |a| a.get(&found.approval_id)).await?;
    serde_json::to_value(approval)
        .map(Json)
        .map_err(|e| AppError::Internal(e.to_string()))
}
