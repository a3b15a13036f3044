//! The audit log (SPEC §13, NFR-7): `GET /audit?since=`, for `admin`s. Every admin
//! mutation is there with the caller's `sub` and a redacted before/after (redacted when it
//! was written: secrets, payloads and document text never reach the log). A tenant's
//! admins see their tenant's records only; the platform operator sees every tenant's, or
//! one tenant's with `?tenant=` (`*` for the global documents').

use axum::extract::State;
use axum::Json;
use jiff::Timestamp;
use mmm_engine::parse_timestamp;
use mmm_engine::Quoted;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::QueryParams;
use crate::auth::extract::Admin;
use crate::error::{AppError, Problem};
use crate::store::{AuditRecord, Scope, GLOBAL};
use crate::AppState;

/// The most records one page holds.
pub const MAX_LIMIT: u32 = 1000;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// `?since=&after_id=&limit=&tenant=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Records at or after this instant (RFC 3339; default: all).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Records after this one (the previous page's `next_after_id`).
    #[param(minimum = 0)]
    pub after_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// For the platform operator: one tenant's records (`*`: the global documents').
    #[param(pattern = r"^(\*|[A-Za-z0-9._-]{1,64})$")]
    pub tenant: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the log.
    pub id: i64,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The tenant whose data changed (`*`: global documents).
    pub tenant: String,
    /// Who (the token's `sub`).
    pub sub: String,
    /// What (`tenant_policy.updated`, `experiment.activated`…).
    pub action: String,
    /// Which object.
    pub subject: String,
    /// Before, redacted; `null` when the change created the object.
    #[schema(value_type = Option<Object>)]
    pub before: serde_json::Value,
    /// After, redacted; `null` when the change removed the object.
    #[schema(value_type = Option<Object>)]
    pub after: serde_json::Value,
}

impl From<AuditRecord> for AuditEntry {
    fn from(a: AuditRecord) -> Self {
        AuditEntry {
            id: a.id,
            at: a.at,
            tenant: a.tenant,
            sub: a.sub,
            action: a.action,
            subject: a.subject,
            before: a.before,
            after: a.after,
        }
    }
}

/// `GET /audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Oldest first.
    pub records: Vec<AuditEntry>,
    /// Pass as `after_id` for the next page; absent when this page is the last.
    pub next_after_id: Option<i64>,
}

/// Admin mutations with the caller's `sub` and a redacted before/after, oldest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditPage),
        (status = 403, description = "not an admin, or another tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a bad parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_audit(
    State(state): State<AppState>,
    Admin(caller): Admin,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, AppError> {
    let since = match &query.since {
        Some(t) => parse_timestamp(t).map_err(|m| AppError::invalid_field("since", m))?,
        None => Timestamp::UNIX_EPOCH,
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let after_id = query.after_id.unwrap_or(0);
    if after_id < 0 {
        return Err(AppError::invalid_field("after_id", "must not be negative"));
    }
    let scope = match &query.tenant {
        Some(t) if t != GLOBAL && !crate::auth::valid_tenant(t) => {
            return Err(AppError::invalid_field(
                "tenant",
                format!("{} is not a tenant id", Quoted(t)),
            ))
        }
        Some(t) => {
            caller.check_tenant_path(t)?;
            Scope::Only(t)
        }
        None if caller.is_operator() => Scope::All,
        None => Scope::Only(&caller.tenant),
    };
    let records = state
        .store
        .list_audit(scope, since, after_id, limit)
        .await?;
    let full = records.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let next_after_id = records.last().map(|r| r.id).filter(|_| full);
    Ok(Json(AuditPage {
        records: records.into_iter().map(AuditEntry::from).collect(),
        next_after_id,
    }))
}
