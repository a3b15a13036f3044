//! Receipts (SPEC §13): `GET /receipts` exports stored envelopes as NDJSON in chain order
//! (chain id, then `seq`), the input `mmm verify` reads; `GET /receipts/public-key` gives
//! the key they verify with.
//!
//! Chains are per replica, and a replica's chain interleaves every tenant's decisions.
//! The platform operator (`tenant_id: "*"`) exports whole chains (`?tenant=` narrows);
//! a tenant's admin exports its own tenant's receipts only, never another tenant's
//! (each verifies on its own; the links between them pass through other tenants'
//! receipts, so whole-chain checks are the operator's).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::QueryParams;
use crate::auth::extract::Admin;
use crate::auth::Caller;
use crate::error::{AppError, Problem};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(public_key))
}

/// Most envelopes one export answers.
pub const MAX_LIMIT: u32 = 10_000;

/// The NDJSON media type.
pub const NDJSON: &str = "application/x-ndjson";

/// The header naming the `seq` of the last envelope exported (page on with
/// `after_seq` set to it, with the same `chain_id`).
pub const LAST_SEQ: &str = "x-mmm-last-seq";

/// The export's query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only envelopes after this `seq` (default 0: from the start); a `seq` is at most
    /// 2^63 - 1, as the store keeps it.
    #[serde(default)]
    #[param(maximum = 9_223_372_036_854_775_807_u64)]
    pub after_seq: u64,
    /// At most this many envelopes, 1 to 10,000 (default 1,000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// Only this chain (a replica id); default: every chain, one after the other.
    pub chain_id: Option<String>,
    /// The platform operator: only this tenant's receipts. Anyone else: their own tenant
    /// (another answers 403).
    pub tenant: Option<String>,
}

/// Exports receipts.
#[utoipa::path(get, path = "/receipts", tag = "receipts", params(ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "one DSSE envelope per line, in chain order", body = String, content_type = "application/x-ndjson"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn export(
    State(state): State<AppState>,
    Admin(caller): Admin,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response, AppError> {
    let limit = query.limit.unwrap_or(1_000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    // A sequence number is a 64-bit signed integer in the store: a larger `after_seq` is
    // refused here, naming the parameter, rather than failing inside the store.
    if i64::try_from(query.after_seq).is_err() {
        return Err(AppError::invalid_field(
            "after_seq",
            format!("must be at most {}", i64::MAX),
        ));
    }
    let tenant = match (&query.tenant, caller.is_operator()) {
        (Some(t), _) => {
            caller.check_tenant_path(t)?;
            Some(t.clone())
        }
        (None, true) => None,
        (None, false) => Some(caller.tenant.clone()),
    };
    let rows = state
        .store
        .list_receipts(
            tenant.as_deref(),
            query.chain_id.as_deref(),
            query.after_seq,
            limit,
        )
        .await?;
    let mut body = String::with_capacity(rows.iter().map(|r| r.envelope.len() + 1).sum());
    for row in &rows {
        body.push_str(&row.envelope);
        body.push('\n');
    }
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    if let Some(last) = rows.last() {
        if let Ok(v) = HeaderValue::from_str(&last.seq.to_string()) {
            response.headers_mut().insert(LAST_SEQ, v);
        }
    }
    Ok(response)
}

/// The key receipts are signed with.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    /// `ed25519`.
    pub algorithm: &'static str,
    /// The public key, 64 hex digits (the file `mmm verify --public-key` reads).
    pub public_key: String,
    /// The `keyid` of the envelopes' signatures.
    pub key_id: String,
    /// The chain this replica signs.
    pub chain_id: String,
}

/// The public key receipts verify with (404 when this host signs none).
#[utoipa::path(get, path = "/receipts/public-key", tag = "receipts",
    security(("bearer" = [])),
    responses(
        (status = 200, body = PublicKey),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "receipts are disabled (no signing key)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn public_key(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<PublicKey>, AppError> {
    let chain = state.decisions.chain().ok_or_else(|| {
        AppError::NotFound(
            "this host signs no receipts (start it with --signing-key-file)".to_owned(),
        )
    })?;
    Ok(Json(PublicKey {
        algorithm: "ed25519",
        public_key: hex::encode(chain.public_key.as_bytes()),
        key_id: mmm_engine::receipt::key_id(&chain.public_key),
        chain_id: chain.id.clone(),
    }))
}
