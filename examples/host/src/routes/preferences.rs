//! Actor preferences (SPEC §13): `GET`/`PUT /actors/{actor_id}/preferences`, the §2
//! `preferences` object, and `POST`/`DELETE /actors/{actor_id}/preferences/snooze`. For
//! the actor itself (`sub` = `actor_id`), or an `admin`/`service` of its tenant
//! ([`PreferencesOf`]). The decide route reads them from the store for every decision.
//!
//! Every change is in the audit log (the caller's `sub`, before and after). `ETag` and
//! `If-Match` work as for the tenant policy.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use jiff::Timestamp;
use mmm_engine::Quoted;
use mmm_engine::{parse_timestamp, Duration};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::policy::{if_match, stored, validate_part, with_etag};
use super::{JsonBody, QueryParams};
use crate::auth::extract::PreferencesOf;
use crate::error::{AppError, Problem};
use crate::store::{NewAudit, StoreError};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_preferences, put_preferences))
        .routes(routes!(snooze, unsnooze))
}

/// `?tenant=`: the platform operator names the actor's tenant (required for it); others
/// may name only their own.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActorTenantQuery {
    /// The actor's tenant (the platform operator's choice; default: the token's).
    #[param(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub tenant: Option<String>,
}

/// `POST …/snooze`: exactly one of `until` and `for`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeBody {
    /// Snooze until this instant (RFC 3339 with an offset).
    pub until: Option<String>,
    /// Snooze for this long from now (`30m`, `2h`, `1d`).
    #[serde(rename = "for")]
    pub for_: Option<String>,
}

/// The longest actor id (as in a signal, SPEC §1).
const MAX_ACTOR_CHARS: usize = 128;

/// The tenant whose actor this is; the actor id checked as a signal's is.
pub(crate) fn actor_tenant(
    who: &PreferencesOf,
    query: &ActorTenantQuery,
) -> Result<String, AppError> {
    let n = who.actor_id.chars().count();
    if n == 0 || n > MAX_ACTOR_CHARS {
        return Err(AppError::invalid_field(
            "actor_id",
            format!("must be 1 to {MAX_ACTOR_CHARS} characters"),
        ));
    }
    let caller = &who.caller;
    match &query.tenant {
        Some(t) if !crate::auth::valid_tenant(t) => Err(AppError::invalid_field(
            "tenant",
            format!("{} is not a tenant id", Quoted(t)),
        )),
        Some(t) => {
            caller.check_tenant_path(t)?;
            Ok(t.clone())
        }
        None if caller.is_operator() => Err(AppError::invalid_field(
            "tenant",
            "the platform operator names the actor's tenant with `?tenant=`",
        )),
        None => Ok(caller.tenant.clone()),
    }
}

/// The actor's preferences (`{}` when none are stored).
#[utoipa::path(get, path = "/actors/{actor_id}/preferences", tag = "preferences",
    params(("actor_id" = String, Path), ActorTenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the §2 `preferences` object; `ETag` is its revision", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "another actor's, without `admin` or `service`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_preferences(
    State(state): State<AppState>,
    who: PreferencesOf,
    QueryParams(query): QueryParams<ActorTenantQuery>,
) -> Result<Response, AppError> {
    let tenant = actor_tenant(&who, &query)?;
    let (value, revision) = stored(state.store.get_preferences(&tenant, &who.actor_id).await?);
    Ok(with_etag(value, revision))
}

/// Replaces the actor's preferences, validated as a decision's context is. With
/// `If-Match`, refused (409) when they changed since that `ETag`.
#[utoipa::path(put, path = "/actors/{actor_id}/preferences", tag = "preferences",
    params(("actor_id" = String, Path), ActorTenantQuery,
           ("If-Match" = Option<String>, Header, description = "the `ETag` this change is based on", pattern = r#"^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$"#)),
    request_body(content = Object, description = "the §2 `preferences` object"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the stored preferences; `ETag` is the new revision", body = Object),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "changed since `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid, naming the field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_preferences(
    State(state): State<AppState>,
    who: PreferencesOf,
    QueryParams(query): QueryParams<ActorTenantQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AppError> {
    let tenant = actor_tenant(&who, &query)?;
    let expected = if_match(&headers)?;
    validate_part("preferences", &body)?;
    let (before, _) = stored(state.store.get_preferences(&tenant, &who.actor_id).await?);
    let audit = NewAudit::new(
        state.clock.now(),
        &tenant,
        &who.caller.sub,
        "preferences.updated",
        &who.actor_id,
        before,
        body.clone(),
    );
    let saved = state
        .store
        .put_preferences(&tenant, &who.actor_id, &body, expected, &audit)
        .await?;
    Ok(with_etag(saved.value, saved.revision))
}

/// When a snooze request ends.
fn snooze_end(body: &SnoozeBody, now: Timestamp) -> Result<Timestamp, AppError> {
    let end = match (&body.until, &body.for_) {
        (Some(until), None) => {
            parse_timestamp(until).map_err(|m| AppError::invalid_field("until", m))?
        }
        (None, Some(for_)) => {
            let d =
                Duration::parse(for_).map_err(|e| AppError::invalid_field("for", e.to_string()))?;
            now.checked_add(jiff::SignedDuration::from_millis(d.as_millis()))
                .map_err(|_| AppError::invalid_field("for", "is too long"))?
        }
        _ => {
            return Err(AppError::invalid_field(
                "body",
                "give exactly one of `until` (RFC 3339) and `for` (e.g. `2h`)",
            ))
        }
    };
    if end <= now {
        let field = if body.until.is_some() { "until" } else { "for" };
        return Err(AppError::invalid_field(
            field,
            format!("the snooze would end at {end}, which is not in the future"),
        ));
    }
    Ok(end)
}

/// Reads, changes and writes the actor's preferences, retrying when another writer got
/// in between (the caller named no revision: the change applies to the newest).
async fn change(
    state: &AppState,
    tenant: &str,
    who: &PreferencesOf,
    action: &str,
    edit: impl Fn(&mut Map<String, Value>),
) -> Result<Response, AppError> {
    let saved = change_preferences(state, tenant, &who.actor_id, &who.caller.sub, action, |p| {
        edit(p);
        Ok(())
    })
    .await?;
    Ok(with_etag(saved.value, saved.revision))
}

/// Reads an actor's preferences, applies `edit`, validates the result as a decision's
/// context is, and writes it with an audit record (`action`, by `sub`, before and
/// after), retrying when another writer got in between. Shared by the API and the
/// console, so both change preferences by the same rules.
///
/// # Errors
/// What `edit` refuses; 422 when the result is not valid preferences; store errors.
pub(crate) async fn change_preferences(
    state: &AppState,
    tenant: &str,
    actor_id: &str,
    sub: &str,
    action: &str,
    edit: impl Fn(&mut Map<String, Value>) -> Result<(), AppError>,
) -> Result<crate::store::Versioned, AppError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (before, revision) = stored(state.store.get_preferences(tenant, actor_id).await?);
        let mut after = before.as_object().cloned().unwrap_or_default();
        edit(&mut after)?;
        let after = Value::Object(after);
        validate_part("preferences", &after)?;
        let audit = NewAudit::new(
            state.clock.now(),
            tenant,
            sub,
            action,
            actor_id,
            before,
            after.clone(),
        );
        match state
            .store
            .put_preferences(tenant, actor_id, &after, Some(revision), &audit)
            .await
        {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Conflict(_)) if attempts < 3 => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Snoozes the actor: `{"until": RFC 3339}` or `{"for": "2h"}` sets `snooze_until`
/// (non-critical nudges stop until then).
#[utoipa::path(post, path = "/actors/{actor_id}/preferences/snooze", tag = "preferences",
    params(("actor_id" = String, Path), ActorTenantQuery),
    request_body = SnoozeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the preferences with `snooze_until`", body = Object),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "neither or both of `until` and `for`, or not in the future", body = Problem, content_type = "application/problem+json"),
    ))]
async fn snooze(
    State(state): State<AppState>,
    who: PreferencesOf,
    QueryParams(query): QueryParams<ActorTenantQuery>,
    JsonBody(body): JsonBody<SnoozeBody>,
) -> Result<Response, AppError> {
    let tenant = actor_tenant(&who, &query)?;
    let end = snooze_end(&body, state.clock.now())?.to_string();
    change(&state, &tenant, &who, "preferences.snoozed", |prefs| {
        prefs.insert("snooze_until".to_owned(), Value::String(end.clone()));
    })
    .await
}

/// Ends the actor's snooze (removes `snooze_until`).
#[utoipa::path(delete, path = "/actors/{actor_id}/preferences/snooze", tag = "preferences",
    params(("actor_id" = String, Path), ActorTenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the preferences without `snooze_until`", body = Object),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn unsnooze(
    State(state): State<AppState>,
    who: PreferencesOf,
    QueryParams(query): QueryParams<ActorTenantQuery>,
) -> Result<Response, AppError> {
    let tenant = actor_tenant(&who, &query)?;
    change(&state, &tenant, &who, "preferences.unsnoozed", |prefs| {
        prefs.remove("snooze_until");
    })
    .await
}
