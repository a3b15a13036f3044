//! Playbooks (SPEC §13): list, get, create a draft, get a version, publish, deprecate,
//! delete a draft, validate and simulate. Playbooks live in the store; publish and
//! deprecate rebuild the live set at once on this replica (others follow within 2 s).
//!
//! Tenancy: a caller sees its tenant's playbooks and the global ones, and changes its
//! tenant's only; the platform operator (`tenant_id: "*"`) works on global documents, or
//! on one tenant's with `?tenant=`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::Timestamp;
use mmm_engine::simulate::{Replay, ReplayReport};
use mmm_engine::Quoted;
use mmm_engine::{codes, Diagnostic, Engine, ErrorInfo, Status};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PathParams, QueryParams, TextBody, YamlBody, PREFIX};
use crate::auth::extract::{Admin, Author};
use crate::auth::Caller;
use crate::error::{AppError, Problem};
use crate::live::{compile_one, source_name, strict_diagnostics, text_sha256, yaml_to_json};
use crate::store::{NewAudit, PlaybookMeta, PlaybookVersion, Scope, GLOBAL};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(validate))
        .routes(routes!(get_playbook))
        .routes(routes!(get_version, delete_version))
        .routes(routes!(publish))
        .routes(routes!(deprecate))
        .routes(routes!(simulate))
}

/// The diagnostics' file name for a document sent in a request.
pub(crate) const REQUEST_SOURCE: &str = "<request>";

/// `?tenant=`: the platform operator's choice of tenant (others may name only their own).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// For the platform operator: whose documents (default: the global ones, `*`).
    #[param(pattern = r"^(\*|[A-Za-z0-9._-]{1,64})$")]
    pub tenant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdPath {
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionPath {
    id: String,
    v: u32,
}

/// One version's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    /// The document's tenant, or `*`.
    pub tenant: String,
    /// Playbook id.
    pub id: String,
    /// Version.
    pub version: u32,
    /// `draft`, `published` or `deprecated`: the store's status, which is what counts
    /// (the text's own `status` is what it was authored with).
    pub status: String,
    /// Who created it.
    pub author: String,
    /// Created (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last status change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Last published.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<Timestamp>,
}

impl From<&PlaybookMeta> for VersionInfo {
    fn from(m: &PlaybookMeta) -> Self {
        VersionInfo {
            tenant: m.tenant.clone(),
            id: m.id.clone(),
            version: m.version,
            status: m.status.as_str().to_owned(),
            author: m.author.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            published_at: m.published_at,
        }
    }
}

/// One playbook of one tenant scope: its versions and the live one.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaybookEntry {
    /// The tenant, or `*`.
    pub tenant: String,
    /// Playbook id.
    pub id: String,
    /// The highest published version, which decides; none when nothing is published.
    pub live_version: Option<u32>,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// `GET /playbooks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaybookList {
    /// The tenant's playbooks and the global ones, by tenant and id.
    pub playbooks: Vec<PlaybookEntry>,
}

/// Which playbook decides for the caller's tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Serving {
    /// Whose playbook it is (the tenant's own replaces the global one).
    pub tenant: String,
    /// The live version.
    pub version: u32,
}

/// `GET /playbooks/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaybookDetail {
    /// Playbook id.
    pub id: String,
    /// The version deciding for the caller's tenant.
    pub serving: Option<Serving>,
    /// The tenant's playbook and the global one of this id.
    pub playbooks: Vec<PlaybookEntry>,
}

/// `POST /playbooks` → 201.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The stored version.
    #[serde(flatten)]
    pub version: VersionInfo,
    /// Lint warnings (allowed in drafts; they block publishing).
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<Diagnostic>,
}

/// `POST …/publish` and `…/deprecate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChanged {
    /// The version, after the change.
    #[serde(flatten)]
    pub version: VersionInfo,
    /// The version now live for this playbook's tenant scope (none: nothing published).
    pub live_version: Option<u32>,
}

/// `POST /playbooks/validate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Diagnostics {
    /// Every error and warning, as `mmm validate --strict --format json`.
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<Diagnostic>,
}

/// `POST …/simulate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Simulation {
    /// The version simulated.
    pub playbook: Serving,
    /// `primary`: the live set with this version as the live one of its playbook;
    /// `shadow`: the live set without it. `differences` lists the signals on which they
    /// decide differently.
    #[schema(value_type = Object)]
    pub report: ReplayReport,
}

pub(crate) fn entries(metas: &[PlaybookMeta]) -> Vec<PlaybookEntry> {
    let mut map: BTreeMap<(String, String), Vec<&PlaybookMeta>> = BTreeMap::new();
    for m in metas {
        map.entry((m.tenant.clone(), m.id.clone()))
            .or_default()
            .push(m);
    }
    map.into_iter()
        .map(|((tenant, id), versions)| PlaybookEntry {
            live_version: versions
                .iter()
                .filter(|m| m.status == Status::Published)
                .map(|m| m.version)
                .max(),
            versions: versions.into_iter().map(VersionInfo::from).collect(),
            tenant,
            id,
        })
        .collect()
}

/// The tenant a request works on: the caller's own; the operator's `?tenant=` or `*`.
pub(crate) fn target_tenant(caller: &Caller, query: &TenantQuery) -> Result<String, AppError> {
    match &query.tenant {
        None => Ok(caller.tenant.clone()),
        Some(t) if caller.is_operator() => {
            if t == GLOBAL || crate::auth::valid_tenant(t) {
                Ok(t.clone())
            } else {
                Err(AppError::invalid_field(
                    "tenant",
                    format!("{} is not a tenant id", Quoted(t)),
                ))
            }
        }
        Some(t) if *t == caller.tenant => Ok(t.clone()),
        Some(t) => Err(AppError::Forbidden(format!(
            "the token is for tenant `{}`, not {}",
            caller.tenant,
            Quoted(t)
        ))),
    }
}

/// Whose documents a list shows: every tenant's for the platform operator without
/// `?tenant=` (`None`), else the one tenant [`target_tenant`] names.
pub(crate) fn list_tenant(
    caller: &Caller,
    query: &TenantQuery,
) -> Result<Option<String>, AppError> {
    if query.tenant.is_none() && caller.is_operator() {
        Ok(None)
    } else {
        target_tenant(caller, query).map(Some)
    }
}

/// The version a caller addresses: its tenant's own, else the global one.
pub(crate) async fn find_version(
    state: &AppState,
    tenant: &str,
    id: &str,
    v: u32,
) -> Result<PlaybookVersion, AppError> {
    if let Some(found) = state.store.get_playbook(tenant, id, v).await? {
        return Ok(found);
    }
    if tenant != GLOBAL {
        if let Some(found) = state.store.get_playbook(GLOBAL, id, v).await? {
            return Ok(found);
        }
    }
    Err(AppError::NotFound(format!(
        "no playbook {} version {v}",
        Quoted(id)
    )))
}

/// As [`find_version`], for a change: global documents only for the operator.
async fn find_writable(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
    id: &str,
    v: u32,
) -> Result<PlaybookVersion, AppError> {
    let found = find_version(state, tenant, id, v).await?;
    if caller.can_write(&found.meta.tenant) {
        Ok(found)
    } else {
        Err(AppError::Forbidden(
            "global playbooks are changed by the platform operator only".to_owned(),
        ))
    }
}

fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    meta: &PlaybookMeta,
    before: Value,
    after: Value,
) -> NewAudit {
    NewAudit::new(
        state.clock.now(),
        &meta.tenant,
        &caller.sub,
        action,
        &source_name(&meta.tenant, &meta.id, meta.version),
        before,
        after,
    )
}

/// Runs blocking engine work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(format!("blocking task failed: {e}")))
}

/// The tenant's playbooks and the global ones: versions, statuses and the live version.
#[utoipa::path(get, path = "/playbooks", tag = "playbooks", params(TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PlaybookList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Json<PlaybookList>, AppError> {
    let tenant = list_tenant(&caller, &query)?;
    let scope = tenant.as_deref().map_or(Scope::All, Scope::Tenant);
    let metas = state.store.list_playbooks(scope, None).await?;
    Ok(Json(PlaybookList {
        playbooks: entries(&metas),
    }))
}

/// One playbook: the tenant's and the global one of this id, and which decides.
#[utoipa::path(get, path = "/playbooks/{id}", tag = "playbooks",
    params(("id" = String, Path, description = "playbook id"), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PlaybookDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_playbook(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<IdPath>,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Json<PlaybookDetail>, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    let metas = state
        .store
        .list_playbooks(Scope::Tenant(&tenant), Some(&path.id))
        .await?;
    let playbooks = entries(&metas);
    if playbooks.is_empty() {
        return Err(AppError::NotFound(format!(
            "no playbook {}",
            Quoted(&path.id)
        )));
    }
    let serving = playbooks
        .iter()
        .filter(|e| e.tenant == tenant)
        .chain(playbooks.iter().filter(|e| e.tenant == GLOBAL))
        .find_map(|e| {
            e.live_version.map(|version| Serving {
                tenant: e.tenant.clone(),
                version,
            })
        });
    Ok(Json(PlaybookDetail {
        id: path.id,
        serving,
        playbooks,
    }))
}

/// Stores a new draft version: one playbook document, `status: draft`.
#[utoipa::path(post, path = "/playbooks", tag = "playbooks",
    request_body(content = Object, content_type = "application/yaml", description = "one playbook document (a YAML mapping) with `status: draft`"),
    security(("bearer" = [])),
    responses(
        (status = 201, body = Created),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the version exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid, with the diagnostics of `mmm validate`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create(
    State(state): State<AppState>,
    Author(caller): Author,
    YamlBody(yaml): YamlBody,
) -> Result<Response, AppError> {
    let (version, warnings) = create_draft(&state, &caller, yaml).await?;
    let tenant = &version.meta.tenant;
    let mut location = format!(
        "{PREFIX}/playbooks/{}/versions/{}",
        version.meta.id, version.meta.version
    );
    if caller.is_operator() && tenant != GLOBAL {
        location.push_str(&format!("?tenant={tenant}"));
    }
    let body = Created {
        version: VersionInfo::from(&version.meta),
        warnings,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Stores a draft from its YAML as `POST /playbooks` does (the console's "save" too):
/// the stored version and its lint warnings. 422 with the diagnostics when it does not
/// compile or is not a draft, 403 for another tenant's, 409 when the version exists.
pub(crate) async fn create_draft(
    state: &AppState,
    caller: &Caller,
    yaml: String,
) -> Result<(PlaybookVersion, Vec<Diagnostic>), AppError> {
    let text = yaml.clone();
    let (diagnostics, compiled) = blocking(move || {
        (
            strict_diagnostics(REQUEST_SOURCE, &text),
            compile_one(REQUEST_SOURCE, &text),
        )
    })
    .await?;
    let plan = match compiled {
        Ok(plan) => plan,
        Err(errors) => {
            let mut all: Vec<Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.is_error())
                .cloned()
                .collect();
            for e in errors {
                if !all.contains(&e) {
                    all.push(e);
                }
            }
            return Err(AppError::playbook_invalid(&all));
        }
    };
    let tenant = plan.tenant.clone().unwrap_or_else(|| GLOBAL.to_owned());
    if !caller.can_write(&tenant) {
        return Err(AppError::Forbidden(if tenant == GLOBAL {
            "only the platform operator writes global (`tenant: \"*\"`) playbooks".to_owned()
        } else {
            format!(
                "the token is for tenant `{}`, not {}",
                caller.tenant,
                Quoted(&tenant)
            )
        }));
    }
    if plan.status != Status::Draft {
        return Err(AppError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: codes::PLAYBOOK_INVALID,
            detail: "new versions are drafts: `metadata.status` must be `draft`; publish with `POST …/publish`".to_owned(),
            errors: vec![ErrorInfo {
                field: Some("metadata.status".to_owned()),
                playbook: Some(plan.id.to_string()),
                ..ErrorInfo::new(
                    codes::PLAYBOOK_INVALID,
                    format!("is `{}`; it must be `draft`", plan.status),
                )
            }],
        });
    }
    let now = state.clock.now();
    let version = PlaybookVersion {
        meta: PlaybookMeta {
            tenant: tenant.clone(),
            id: plan.id.to_string(),
            version: plan.version,
            status: Status::Draft,
            author: caller.sub.clone(),
            created_at: now,
            updated_at: now,
            published_at: None,
        },
        yaml,
    };
    let record = audit(
        state,
        caller,
        "playbook.created",
        &version.meta,
        Value::Null,
        json!({"status": "draft", "sha256": text_sha256(&version.yaml)}),
    );
    state.store.insert_playbook(&version, &record).await?;
    let warnings = diagnostics.into_iter().filter(|d| !d.is_error()).collect();
    Ok((version, warnings))
}

/// One version: the YAML as authored (`Accept: application/yaml`) or JSON (default) with
/// the store's metadata and the document.
#[utoipa::path(get, path = "/playbooks/{id}/versions/{v}", tag = "playbooks",
    params(("id" = String, Path), ("v" = u32, Path), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "JSON: metadata and `document`; YAML: the text as authored", body = Object),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<VersionPath>,
    QueryParams(query): QueryParams<TenantQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    let found = find_version(&state, &tenant, &path.id, path.v).await?;
    let wants_yaml = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("yaml"));
    if wants_yaml {
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    "application/yaml; charset=utf-8".to_owned(),
                ),
                (
                    header::HeaderName::from_static("x-mmm-status"),
                    found.meta.status.as_str().to_owned(),
                ),
            ],
            found.yaml,
        )
            .into_response());
    }
    let document = yaml_to_json(&found.yaml).map_err(AppError::Internal)?;
    let mut body = serde_json::to_value(VersionInfo::from(&found.meta))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    if let Some(map) = body.as_object_mut() {
        map.insert("document".to_owned(), document);
    }
    Ok(Json(body).into_response())
}

/// Deletes a draft (any other status: 409).
#[utoipa::path(delete, path = "/playbooks/{id}/versions/{v}", tag = "playbooks",
    params(("id" = String, Path), ("v" = u32, Path), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not a draft", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_version(
    State(state): State<AppState>,
    Author(caller): Author,
    PathParams(path): PathParams<VersionPath>,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<StatusCode, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    let found = find_writable(&state, &caller, &tenant, &path.id, path.v).await?;
    let m = &found.meta;
    let record = audit(
        &state,
        &caller,
        "playbook.deleted",
        m,
        json!({"status": m.status, "sha256": text_sha256(&found.yaml)}),
        Value::Null,
    );
    state
        .store
        .delete_playbook_draft(&m.tenant, &m.id, m.version, &record)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn live_version(state: &AppState, meta: &PlaybookMeta) -> Result<Option<u32>, AppError> {
    Ok(state
        .store
        .list_playbooks(Scope::Only(&meta.tenant), Some(&meta.id))
        .await?
        .iter()
        .filter(|m| m.status == Status::Published)
        .map(|m| m.version)
        .max())
}

async fn change_status(
    state: &AppState,
    caller: &Caller,
    found: &PlaybookVersion,
    to: Status,
    action: &str,
) -> Result<StatusChanged, AppError> {
    let m = &found.meta;
    let record = audit(
        state,
        caller,
        action,
        m,
        json!({"status": m.status}),
        json!({"status": to, "sha256": text_sha256(&found.yaml)}),
    );
    let changed = state
        .store
        .set_playbook_status(&m.tenant, &m.id, m.version, m.status, to, &record)
        .await?;
    // This replica swaps at once; a failure here leaves the follower to retry.
    if let Err(e) = state.live.reload(&*state.store).await {
        tracing::warn!(error = %e, "reloading after a status change failed; the follower retries");
    }
    Ok(StatusChanged {
        live_version: live_version(state, &changed).await?,
        version: VersionInfo::from(&changed),
    })
}

/// Publishes a draft or deprecated version. Refused (422) when `mmm validate --strict`
/// would refuse its text; atomic; every replica decides with it within 2 s.
#[utoipa::path(post, path = "/playbooks/{id}/versions/{v}/publish", tag = "playbooks",
    params(("id" = String, Path), ("v" = u32, Path), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = StatusChanged),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already published, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "fails `mmm validate --strict`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn publish(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<VersionPath>,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Json<StatusChanged>, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    publish_version(&state, &caller, &tenant, &path.id, path.v)
        .await
        .map(Json)
}

/// Publishes a version as `POST …/publish` does (the console's confirmation too); the
/// caller's role is checked by the caller of this function.
pub(crate) async fn publish_version(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
    id: &str,
    v: u32,
) -> Result<StatusChanged, AppError> {
    let found = find_writable(state, caller, tenant, id, v).await?;
    if found.meta.status == Status::Published {
        return Err(AppError::Conflict(format!(
            "playbook `{}` version {} is published already",
            found.meta.id, found.meta.version
        )));
    }
    let (name, text) = (
        source_name(&found.meta.tenant, &found.meta.id, found.meta.version),
        found.yaml.clone(),
    );
    let diagnostics = blocking(move || strict_diagnostics(&name, &text)).await?;
    if !diagnostics.is_empty() {
        return Err(AppError::playbook_invalid(&diagnostics));
    }
    change_status(
        state,
        caller,
        &found,
        Status::Published,
        "playbook.published",
    )
    .await
}

/// Deprecates a published version; when it was the live one, the next-highest published
/// version becomes live (rollback).
#[utoipa::path(post, path = "/playbooks/{id}/versions/{v}/deprecate", tag = "playbooks",
    params(("id" = String, Path), ("v" = u32, Path), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = StatusChanged),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not published, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
    ))]
async fn deprecate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<VersionPath>,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Json<StatusChanged>, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    deprecate_version(&state, &caller, &tenant, &path.id, path.v)
        .await
        .map(Json)
}

/// Deprecates a version as `POST …/deprecate` does (the console's confirmation too);
/// the caller's role is checked by the caller of this function.
pub(crate) async fn deprecate_version(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
    id: &str,
    v: u32,
) -> Result<StatusChanged, AppError> {
    let found = find_writable(state, caller, tenant, id, v).await?;
    if found.meta.status != Status::Published {
        return Err(AppError::Conflict(format!(
            "playbook `{}` version {} is {}; only published versions are deprecated",
            found.meta.id, found.meta.version, found.meta.status
        )));
    }
    change_status(
        state,
        caller,
        &found,
        Status::Deprecated,
        "playbook.deprecated",
    )
    .await
}

/// Validates YAML as `mmm validate --strict` does, without storing anything.
#[utoipa::path(post, path = "/playbooks/validate", tag = "playbooks",
    request_body(content = serde_json::Value, content_type = "application/yaml",
        description = "YAML text: any document (one that is not a playbook gets diagnostics saying why)"),
    security(("bearer" = [])),
    responses((status = 200, body = Diagnostics)))]
async fn validate(
    Author(_caller): Author,
    YamlBody(yaml): YamlBody,
) -> Result<Json<Diagnostics>, AppError> {
    let diagnostics = blocking(move || strict_diagnostics(REQUEST_SOURCE, &yaml)).await?;
    Ok(Json(Diagnostics { diagnostics }))
}

/// Replays signals (a JSON array, or NDJSON) through the live set with this version as
/// its playbook's live one, and through the live set without it, and compares them
/// (`mmm simulate --against`). Nothing is stored; signals of other tenants are refused
/// line by line.
#[utoipa::path(post, path = "/playbooks/{id}/versions/{v}/simulate", tag = "playbooks",
    params(("id" = String, Path), ("v" = u32, Path), TenantQuery),
    request_body(content(
            (SignalArray = "application/json"),
            (SignalLines = "application/x-ndjson"),
        ),
        description = "signals, at least one: a JSON array (`application/json`) or one per line (`application/x-ndjson`), each an envelope or `{signal, context}`"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Simulation),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn simulate(
    State(state): State<AppState>,
    Author(caller): Author,
    PathParams(path): PathParams<VersionPath>,
    QueryParams(query): QueryParams<TenantQuery>,
    body: TextBody,
) -> Result<Json<Simulation>, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    simulate_version(&state, &caller, &tenant, &path.id, path.v, &body)
        .await
        .map(Json)
}

/// The published versions a caller's decisions use: its tenant's and the global ones
/// (every tenant's for the platform operator).
pub(crate) async fn published_for(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
) -> Result<Vec<PlaybookVersion>, AppError> {
    let relevant =
        |m: &PlaybookMeta| caller.is_operator() || m.tenant == tenant || m.tenant == GLOBAL;
    Ok(state
        .store
        .published_playbooks()
        .await?
        .into_iter()
        .filter(|v| relevant(&v.meta))
        .collect())
}

/// The set with `found` as its playbook's live version, and the set without it (the
/// live one when `found` is not published).
pub(crate) async fn sets_with_and_without(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
    found: &PlaybookVersion,
) -> Result<(mmm_engine::PlaybookSet, mmm_engine::PlaybookSet), AppError> {
    let target = (found.meta.tenant.clone(), found.meta.id.clone());
    let published = published_for(state, caller, tenant).await?;
    let same = |v: &PlaybookVersion| (v.meta.tenant.clone(), v.meta.id.clone()) == target;
    let mut with: Vec<(PlaybookVersion, Status)> = published
        .iter()
        .filter(|v| !same(v))
        .map(|v| (v.clone(), Status::Published))
        .collect();
    with.push((found.clone(), Status::Published));
    let without: Vec<(PlaybookVersion, Status)> = published
        .into_iter()
        .filter(|v| !(same(v) && v.meta.version == found.meta.version))
        .map(|v| (v, Status::Published))
        .collect();
    let with = state.live.compile_set(with).await?;
    let without = state.live.compile_set(without).await?;
    Ok((with, without))
}

/// The shadow comparison of `POST …/simulate` (the console's too): the caller's role is
/// checked by the caller of this function.
pub(crate) async fn simulate_version(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
    id: &str,
    v: u32,
    body: &TextBody,
) -> Result<Simulation, AppError> {
    let found = find_version(state, tenant, id, v).await?;
    let inputs = read_signals(body, state.settings.simulate_max_signals)?;
    let (with, without) = sets_with_and_without(state, caller, tenant, &found).await?;
    let own_tenant = (!caller.is_operator()).then(|| caller.tenant.clone());
    let report = blocking(move || {
        let primary = Engine::builder().playbooks(with).build();
        let shadow = Engine::builder().playbooks(without).build();
        let mut replay = Replay::new(&primary, Some(&shadow));
        for (line, input) in inputs {
            let value = match input {
                Ok(v) => v,
                Err(info) => {
                    replay.reject(line, info);
                    continue;
                }
            };
            let signal = value.get("signal").unwrap_or(&value);
            if let (Some(own), Some(t)) =
                (&own_tenant, signal.get("tenant_id").and_then(Value::as_str))
            {
                if t != own {
                    replay.reject(
                        line,
                        ErrorInfo {
                            field: Some("tenant_id".to_owned()),
                            ..ErrorInfo::new(
                                crate::error::code::FORBIDDEN,
                                format!("the signal is for tenant {}, not `{own}`", Quoted(t)),
                            )
                        },
                    );
                    continue;
                }
            }
            // A refusal is recorded in the report by the replay itself.
            let _ = replay.step(line, &value);
        }
        replay.finish()
    })
    .await?;
    Ok(Simulation {
        playbook: Serving {
            tenant: found.meta.tenant.clone(),
            version: found.meta.version,
        },
        report,
    })
}

type Input = (usize, Result<Value, ErrorInfo>);

/// The simulate body as a JSON array (OpenAPI only): at least one signal, each a value
/// the replay decides or rejects in its report.
#[derive(ToSchema)]
#[schema(min_items = 1)]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document; the route reads the text"
)]
struct SignalArray(Vec<Value>);

/// The simulate body as NDJSON (OpenAPI only): at least one line that is not blank.
#[derive(ToSchema)]
#[schema(pattern = r"\S")]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document; the route reads the text"
)]
struct SignalLines(String);

/// Reads signals: a JSON array, or one JSON value per line (blank lines skipped), at most
/// `max`. A line that is not JSON is refused in the report, not the whole request.
fn read_signals(body: &TextBody, max: usize) -> Result<Vec<Input>, AppError> {
    let too_many = || {
        AppError::invalid_field(
            "body",
            format!("at most {max} signals may be simulated at once"),
        )
    };
    let trimmed = body.text.trim_start();
    if trimmed.is_empty() {
        return Err(AppError::invalid_field("body", "no signals were sent"));
    }
    if body.content_type == "application/json" || trimmed.starts_with('[') {
        let values: Vec<Value> = super::parse_json(body.text.as_bytes())?;
        if values.is_empty() {
            return Err(AppError::invalid_field("body", "no signals were sent"));
        }
        if values.len() > max {
            return Err(too_many());
        }
        return Ok(values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i + 1, Ok(v)))
            .collect());
    }
    let mut out = Vec::new();
    for (i, line) in body.text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if out.len() == max {
            return Err(too_many());
        }
        out.push((
            i + 1,
            serde_json::from_str::<Value>(line).map_err(|e| {
                ErrorInfo::new(
                    crate::error::code::INVALID_REQUEST,
                    format!("invalid JSON: {e}"),
                )
            }),
        ));
    }
    Ok(out)
}
