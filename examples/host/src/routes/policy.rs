//! Tenant policy (SPEC §13): `GET`/`PUT /tenants/{tenant_id}/policy`, the §2
//! `tenant_policy` object, for `admin`s of that tenant. The decide route reads it from the
//! store for every decision of the tenant.
//!
//! Concurrency: `GET` answers an `ETag` (the stored revision, `"0"` when nothing is
//! stored); a `PUT` with `If-Match` is refused with 409 when the policy changed since.
//! A `PUT` without `If-Match` replaces whatever is stored.
//!
//! The helpers here (revision tags, the `?tenant=` of the platform operator, validation
//! through the core's context reader) serve the preferences routes too.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mmm_engine::Quoted;
use mmm_engine::{codes, Context, ErrorInfo};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{JsonBody, PathParams};
use crate::auth::extract::Admin;
use crate::auth::Caller;
use crate::error::{AppError, Problem};
use crate::store::{NewAudit, Versioned};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policy, put_policy))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Path)]
pub(crate) struct TenantPath {
    /// The tenant.
    #[param(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub tenant_id: String,
}

/// The `ETag` of a stored revision (`"0"`: nothing stored yet).
pub(crate) fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// The revision an `If-Match` header names, if the request has one.
///
/// # Errors
/// 422 naming `If-Match` when it is not one of our tags (`"3"`, `W/"3"`, or `3`).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, AppError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || AppError::invalid_field("If-Match", "must be the `ETag` of a `GET`, e.g. `\"3\"`");
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(bad()),
    }
}

/// A JSON answer with the document's `ETag`.
pub(crate) fn with_etag(body: Value, revision: i64) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(revision)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// A stored document and its revision; `{}` and 0 when nothing is stored.
pub(crate) fn stored(found: Option<Versioned>) -> (Value, i64) {
    found.map_or_else(|| (Value::Object(Map::new()), 0), |v| (v.value, v.revision))
}

/// Validates `value` as the context part `part` (`preferences`, `tenant_policy`) with the
/// core's context reader: the same rules, and the same messages, as a decision's context.
/// Fields are named relative to the body (`quiet_hours.start`).
///
/// # Errors
/// 422 `INVALID_REQUEST` whose `errors` carry the core's `CONTEXT_INVALID` and the field.
pub(crate) fn validate_part(part: &str, value: &Value) -> Result<(), AppError> {
    if !value.is_object() {
        return Err(AppError::invalid_field(
            "body",
            format!("the `{part}` object must be a JSON object"),
        ));
    }
    let mut context = Map::new();
    context.insert(part.to_owned(), value.clone());
    match Context::from_json(Some(&Value::Object(context))) {
        Ok(_) => Ok(()),
        Err(e) => {
            let prefix = format!("{part}.");
            let field = e
                .field
                .strip_prefix(&prefix)
                .map_or_else(|| e.field.clone(), str::to_owned);
            let field = if field == part {
                "body".to_owned()
            } else {
                field
            };
            Err(AppError::core(ErrorInfo {
                field: Some(field),
                ..ErrorInfo::new(codes::CONTEXT_INVALID, e.message)
            }))
        }
    }
}

/// The tenant's `tenant_policy` (`{}` when none is stored: every default of SPEC §2).
#[utoipa::path(get, path = "/tenants/{tenant_id}/policy", tag = "tenants", params(TenantPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the §2 `tenant_policy` object; `ETag` is its revision", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "not an admin, or another tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_policy(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<TenantPath>,
) -> Result<Response, AppError> {
    check_tenant(&caller, &path.tenant_id)?;
    let (value, revision) = stored(state.store.get_tenant_policy(&path.tenant_id).await?);
    Ok(with_etag(value, revision))
}

/// Replaces the tenant's `tenant_policy`, validated as a decision's context is. With
/// `If-Match`, refused (409) when the policy changed since that `ETag`.
#[utoipa::path(put, path = "/tenants/{tenant_id}/policy", tag = "tenants",
    params(TenantPath, ("If-Match" = Option<String>, Header, description = "the `ETag` of the policy this change is based on", pattern = r#"^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$"#)),
    request_body(content = Object, description = "the §2 `tenant_policy` object"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the stored policy; `ETag` is its new revision", body = Object),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "changed since `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid, naming the field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_policy(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<TenantPath>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AppError> {
    check_tenant(&caller, &path.tenant_id)?;
    let expected = if_match(&headers)?;
    validate_part("tenant_policy", &body)?;
    let (before, _) = stored(state.store.get_tenant_policy(&path.tenant_id).await?);
    let audit = NewAudit::new(
        state.clock.now(),
        &path.tenant_id,
        &caller.sub,
        "tenant_policy.updated",
        &path.tenant_id,
        before,
        body.clone(),
    );
    let saved = state
        .store
        .put_tenant_policy(&path.tenant_id, &body, expected, &audit)
        .await?;
    Ok(with_etag(saved.value, saved.revision))
}

/// A `/tenants/{tenant_id}/…` path: the caller's own tenant, or any for the operator; a
/// path naming `*` is refused (policies and metrics belong to real tenants).
pub(crate) fn check_tenant(caller: &Caller, tenant: &str) -> Result<(), AppError> {
    if !crate::auth::valid_tenant(tenant) {
        return Err(AppError::invalid_field(
            "tenant_id",
            format!("{} is not a tenant id", Quoted(tenant)),
        ));
    }
    caller.check_tenant_path(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn if_match_reads_our_tags_only() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        for (tag, n) in [("\"3\"", 3), ("W/\"4\"", 4), ("5", 5)] {
            h.insert(header::IF_MATCH, HeaderValue::from_static(tag));
            assert_eq!(if_match(&h).unwrap(), Some(n));
        }
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"abc\""));
        assert!(if_match(&h).is_err());
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(if_match(&h).is_err());
    }

    #[test]
    fn parts_are_validated_by_the_core_and_fields_named_in_the_body() {
        assert!(validate_part("tenant_policy", &json!({"max_actions_per_decision": 2})).is_ok());
        let AppError::Invalid { errors, .. } = validate_part(
            "tenant_policy",
            &json!({"quiet_hours": {"start": "25:00", "end": "07:00"}}),
        )
        .unwrap_err() else {
            panic!("not invalid")
        };
        assert_eq!(errors[0].field.as_deref(), Some("quiet_hours.start"));
        assert_eq!(errors[0].code, codes::CONTEXT_INVALID);
        let AppError::Invalid { errors, .. } =
            validate_part("preferences", &json!({"snooze": 1})).unwrap_err()
        else {
            panic!("not invalid")
        };
        assert!(errors[0].message.contains("unknown field"), "{errors:?}");
    }
}
