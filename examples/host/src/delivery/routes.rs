//! `GET`/`PUT /tenants/{tenant_id}/delivery` (SPEC §13): the tenant's webhooks,
//! `{surface: {"url", "secret"}}`, for `admin`s of that tenant (or the operator).
//!
//! The secret is write-only, as a GitHub webhook's: `GET` (and the `PUT`'s answer) shows
//! `"secret": "[redacted]"`, and a `PUT` that sends that placeholder back is refused, so
//! a read-modify-write cannot replace a secret with it. The audit record of a change
//! carries the targets with their secrets redacted. A `PUT` replaces every target of the
//! tenant; `{}` removes them all (deliveries still queued for a removed surface are then
//! given up).

use axum::extract::State;
use axum::Json;
use mmm_engine::{field_name, Quoted, Surface};
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::Admin;
use crate::error::{AppError, Problem};
use crate::routes::policy::{check_tenant, TenantPath};
use crate::routes::{JsonBody, PathParams};
use crate::store::{DeliveryTarget, NewAudit};
use crate::AppState;

/// The longest webhook URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// The longest secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 256;

/// What `GET` shows instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_delivery, put_delivery))
}

/// The targets as `GET` shows them: by surface, secrets redacted.
fn shown(targets: &[DeliveryTarget]) -> Value {
    Value::Object(
        targets
            .iter()
            .map(|t| {
                let mut target = Map::new();
                target.insert("url".to_owned(), Value::String(t.url.clone()));
                target.insert("secret".to_owned(), Value::String(REDACTED.to_owned()));
                (t.surface.clone(), Value::Object(target))
            })
            .collect(),
    )
}

/// The tenant's webhooks, by surface (`{}`: none); secrets are never shown.
#[utoipa::path(get, path = "/tenants/{tenant_id}/delivery", tag = "tenants", params(TenantPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{surface: {\"url\", \"secret\": \"[redacted]\"}}`", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "not an admin, or another tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_delivery(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<TenantPath>,
) -> Result<Json<Value>, AppError> {
    check_tenant(&caller, &path.tenant_id)?;
    let targets = state.store.get_delivery_targets(&path.tenant_id).await?;
    Ok(Json(shown(&targets)))
}

/// Replaces the tenant's webhooks: `{surface: {"url", "secret"}}` with surfaces among
/// `ide`, `pr_comment`, `ci_summary`, `alert` and `chat`; `url` an absolute `http(s)` URL
/// without credentials; `secret` the HMAC key the receiver verifies `X-MMM-Signature`
/// with.
#[utoipa::path(put, path = "/tenants/{tenant_id}/delivery", tag = "tenants", params(TenantPath),
    request_body(content = Object, description = "`{surface: {\"url\", \"secret\"}}`"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the stored webhooks, secrets redacted", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "not an admin, or another tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid, naming the field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_delivery(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<TenantPath>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, AppError> {
    check_tenant(&caller, &path.tenant_id)?;
    let targets = parse_targets(&body)?;
    let before = state.store.get_delivery_targets(&path.tenant_id).await?;
    let audit = NewAudit::new(
        state.clock.now(),
        &path.tenant_id,
        &caller.sub,
        "delivery_targets.updated",
        &path.tenant_id,
        shown(&before),
        shown(&targets),
    );
    state
        .store
        .put_delivery_targets(&path.tenant_id, &targets, &audit)
        .await?;
    Ok(Json(shown(&targets)))
}

/// Reads and validates a `PUT` body; errors name the field (`ide.url`).
///
/// # Errors
/// 422 `INVALID_REQUEST` naming the first bad field.
pub fn parse_targets(body: &Value) -> Result<Vec<DeliveryTarget>, AppError> {
    let Value::Object(map) = body else {
        return Err(AppError::invalid_field(
            "body",
            "must be a JSON object of surfaces: `{\"ide\": {\"url\": …, \"secret\": …}}`",
        ));
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        let Some(surface) = Surface::parse(key) else {
            return Err(AppError::invalid_field(
                &field_name(key),
                format!(
                    "{} is not a surface: expected {}",
                    Quoted(key),
                    Surface::expected()
                ),
            ));
        };
        let surface = surface.as_str();
        let Value::Object(target) = value else {
            return Err(AppError::invalid_field(
                surface,
                "must be an object `{\"url\": …, \"secret\": …}`",
            ));
        };
        if let Some(unknown) = target
            .keys()
            .find(|k| !matches!(k.as_str(), "url" | "secret"))
        {
            return Err(AppError::invalid_field(
                &format!("{surface}.{}", field_name(unknown)),
                "unknown field: a target has `url` and `secret`",
            ));
        }
        let url = check_url(surface, target.get("url"))?;
        let secret = check_secret(surface, target.get("secret"))?;
        out.push(DeliveryTarget {
            surface: surface.to_owned(),
            url,
            secret,
        });
    }
    Ok(out)
}

fn check_url(surface: &str, value: Option<&Value>) -> Result<String, AppError> {
    let field = format!("{surface}.url");
    let bad = |m: String| AppError::invalid_field(&field, m);
    let Some(value) = value else {
        return Err(bad("is required".to_owned()));
    };
    let Some(text) = value.as_str() else {
        return Err(bad("must be a string".to_owned()));
    };
    if text.len() > MAX_URL_BYTES {
        return Err(bad(format!("is longer than {MAX_URL_BYTES} bytes")));
    }
    if text.chars().any(char::is_control) {
        return Err(bad("holds a control character".to_owned()));
    }
    let url = reqwest::Url::parse(text)
        .map_err(|e| bad(format!("{} is not an absolute URL: {e}", Quoted(text))))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(format!(
            "{} is not an `http://` or `https://` URL",
            Quoted(text)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials (they would be shown and audited); the signature authenticates the host".to_owned(),
        ));
    }
    Ok(text.to_owned())
}

fn check_secret(surface: &str, value: Option<&Value>) -> Result<String, AppError> {
    let field = format!("{surface}.secret");
    let bad = |m: &str| AppError::invalid_field(&field, m);
    let Some(value) = value else {
        return Err(bad("is required"));
    };
    let Some(text) = value.as_str() else {
        return Err(bad("must be a string"));
    };
    if text.is_empty() {
        return Err(bad("must not be empty"));
    }
    if text.len() > MAX_SECRET_BYTES {
        return Err(bad(&format!("is longer than {MAX_SECRET_BYTES} bytes")));
    }
    // Stored as text (PostgreSQL holds no NUL) and typed by people: printable only.
    if text.chars().any(char::is_control) {
        return Err(bad("holds a control character"));
    }
    if text == REDACTED {
        return Err(bad(
            "is the placeholder `GET` shows; send the secret itself (it is write-only)",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(e: AppError) -> String {
        match e {
            AppError::Invalid { errors, .. } => errors[0].field.clone().unwrap_or_default(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn targets_are_validated_field_by_field() {
        let ok =
            parse_targets(&json!({"ide": {"url": "https://hooks.example/ide", "secret": "s"}}))
                .unwrap();
        assert_eq!(ok[0].surface, "ide");
        assert_eq!(field(parse_targets(&json!([])).unwrap_err()), "body");
        assert_eq!(
            field(parse_targets(&json!({"email": {}})).unwrap_err()),
            "email"
        );
        assert_eq!(
            field(parse_targets(&json!({"ide": "x"})).unwrap_err()),
            "ide"
        );
        assert_eq!(
            field(
                parse_targets(&json!({"ide": {"url": "https://a.example", "secret": "s", "x": 1}}))
                    .unwrap_err()
            ),
            "ide.x"
        );
        for url in [
            json!(null),
            json!("ftp://a.example/x"),
            json!("/relative"),
            json!("https://u:p@a.example/"),
            json!(format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES))),
            json!("https://a.example/\u{0}"),
        ] {
            assert_eq!(
                field(parse_targets(&json!({"chat": {"url": url, "secret": "s"}})).unwrap_err()),
                "chat.url",
                "{url}"
            );
        }
        for secret in [
            json!(""),
            json!(7),
            json!(REDACTED),
            json!("s".repeat(MAX_SECRET_BYTES + 1)),
            json!("a\u{0}b"),
        ] {
            assert_eq!(
                field(
                    parse_targets(&json!({"alert": {"url": "http://a.example", "secret": secret}}))
                        .unwrap_err()
                ),
                "alert.secret"
            );
        }
        assert!(parse_targets(&json!({"alert": {"url": "http://a.example"}})).is_err());
    }
}
