//! Experiments (SPEC §3, §13): list, create, get and replace experiment documents
//! (`author`/`admin`), activate and deactivate them (`admin`). An active experiment is
//! part of the live set the engine decides with ([`crate::live`]): activation and
//! deactivation rebuild it at once on this replica, the others follow as for playbooks.
//!
//! Statuses: the store's status counts, not the text's. A new or replaced document is
//! stored `paused` or `completed` as written (a text saying `active` is refused: activation
//! is its own, admin-only, step); an active experiment is not edited (deactivate first).
//!
//! Statistics: `GET /experiments/{id}` adds, per variant, the exposures and outcomes of the
//! caller's tenant, from the counters `exposures` (experiment, variant) and
//! `experiment_outcomes` (experiment, variant, result) — see [`super::tenants`]. The decide
//! route adds [`exposure_counts`] of each decision; the outcome route the outcome counters.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use mmm_engine::experiment::{ExperimentPlan, ExperimentStatus};
use mmm_engine::Quoted;
use mmm_engine::{codes, Decision, Diagnostic, ErrorInfo, Reason};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::playbooks::{blocking, list_tenant, target_tenant, TenantQuery};
use super::policy::{etag, if_match};
use super::tenants::metric;
use super::{PathParams, QueryParams, YamlBody, PREFIX};
use crate::auth::extract::{Admin, Author};
use crate::auth::Caller;
use crate::error::{AppError, Problem};
use crate::live::{
    compile_experiment, experiment_conflict, experiment_diagnostics, text_sha256, yaml_to_json,
    ACTIVE,
};
use crate::store::{Count, ExperimentRecord, NewAudit, Scope, GLOBAL};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_experiment, replace))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
}

/// The diagnostics' file name for a document sent in a request.
const REQUEST_SOURCE: &str = "<request>";

/// The status a deactivated experiment gets.
const PAUSED: &str = "paused";

/// The counters one decision adds for experiments: one `exposures` (experiment, variant)
/// per experiment and variant the decision exposed the actor to — a returned action a
/// variant shaped, or a playbook suppressed for a holdout variant (`experiment_holdout`).
/// Several actions of one playbook are one exposure. An actor outside every variant's
/// range is not exposed (SPEC §3), and neither is one whose every shaped action another
/// gate suppressed (the decision does not show the variant then).
pub fn exposure_counts(decision: &Decision) -> Vec<Count> {
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for a in &decision.actions {
        if let Some(e) = &a.experiment {
            seen.insert((e.id.clone(), e.variant.clone()));
        }
    }
    for s in &decision.suppressed {
        if s.reason == Reason::ExperimentHoldout {
            if let Some(pair) = holdout_of(&s.detail.to_string()) {
                seen.insert(pair);
            }
        }
    }
    seen.into_iter()
        .map(|(experiment, variant)| Count {
            metric: metric::EXPOSURES.to_owned(),
            labels: vec![experiment, variant],
            n: 1,
        })
        .collect()
}

/// The (experiment, variant) of an `experiment_holdout` suppression's detail, which the
/// core writes as ``the actor is in holdout `<variant>` of experiment `<id>` ``
/// (a test decides with a holdout experiment, so a change of wording is noticed).
fn holdout_of(detail: &str) -> Option<(String, String)> {
    let rest = detail.strip_prefix("the actor is in holdout `")?;
    let rest = rest.strip_suffix('`')?;
    let (variant, experiment) = rest.rsplit_once("` of experiment `")?;
    Some((experiment.to_owned(), variant.to_owned()))
}

/// An experiment's record, without its text.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentInfo {
    /// Tenant, or `*`.
    pub tenant: String,
    /// Experiment id.
    pub id: String,
    /// `active`, `paused` or `completed`: the store's status, which counts.
    pub status: String,
    /// Increases with every change (the `ETag`).
    pub revision: i64,
    /// Who created it.
    pub author: String,
    /// Created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&ExperimentRecord> for ExperimentInfo {
    fn from(r: &ExperimentRecord) -> Self {
        ExperimentInfo {
            tenant: r.tenant.clone(),
            id: r.id.clone(),
            status: r.status.clone(),
            revision: r.revision,
            author: r.author.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `GET /experiments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentList {
    /// The tenant's experiments and the global ones, by tenant and id.
    pub experiments: Vec<ExperimentInfo>,
}

/// One variant with the caller's tenant's statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantStats {
    /// Name.
    pub name: String,
    /// Weight as written.
    pub weight: f64,
    /// Whether it is a holdout.
    pub holdout: bool,
    /// Decisions that exposed an actor to it.
    pub exposures: i64,
    /// Outcomes of actions it shaped, by result.
    pub outcomes: BTreeMap<String, i64>,
    /// Outcomes among the experiment's `success_outcomes`.
    pub successes: i64,
}

/// `GET /experiments/{id}` (and the answer of every change).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentDetail {
    /// The record.
    #[serde(flatten)]
    pub info: ExperimentInfo,
    /// The playbook it shapes.
    pub playbook: String,
    /// The document as JSON.
    #[schema(value_type = Object)]
    pub document: Value,
    /// Whose statistics `variants` shows.
    pub statistics_tenant: String,
    /// Each variant, in order, with its exposures and outcomes.
    pub variants: Vec<VariantStats>,
    /// Lint warnings of a stored text (allowed until activation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdPath {
    id: String,
}

fn invalid_status(id: &str) -> AppError {
    AppError::Invalid {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: codes::PLAYBOOK_INVALID,
        detail: "experiments are activated with `POST …/activate`: `metadata.status` must be `paused` or `completed`".to_owned(),
        errors: vec![ErrorInfo {
            field: Some("metadata.status".to_owned()),
            playbook: Some(id.to_owned()),
            ..ErrorInfo::new(
                codes::PLAYBOOK_INVALID,
                "is `active`; it must be `paused` or `completed`".to_owned(),
            )
        }],
    }
}

fn status_str(status: ExperimentStatus) -> &'static str {
    match status {
        ExperimentStatus::Active => ACTIVE,
        ExperimentStatus::Paused => PAUSED,
        ExperimentStatus::Completed => "completed",
    }
}

/// Checks and compiles a text: errors (and, with `strict`, warnings) refuse it.
async fn compile(yaml: &str, strict: bool) -> Result<(ExperimentPlan, Vec<Diagnostic>), AppError> {
    let text = yaml.to_owned();
    let (diagnostics, compiled) = blocking(move || {
        (
            experiment_diagnostics(REQUEST_SOURCE, &text),
            compile_experiment(REQUEST_SOURCE, &text),
        )
    })
    .await?;
    match compiled {
        Ok(plan) if !strict || diagnostics.is_empty() => Ok((plan, diagnostics)),
        Ok(_) => Err(AppError::playbook_invalid(&diagnostics)),
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
            Err(AppError::playbook_invalid(&all))
        }
    }
}

/// The experiment a caller addresses: its tenant's own, else the global one.
async fn find(state: &AppState, tenant: &str, id: &str) -> Result<ExperimentRecord, AppError> {
    if let Some(found) = state.store.get_experiment(tenant, id).await? {
        return Ok(found);
    }
    if tenant != GLOBAL {
        if let Some(found) = state.store.get_experiment(GLOBAL, id).await? {
            return Ok(found);
        }
    }
    Err(AppError::NotFound(format!("no experiment {}", Quoted(id))))
}

/// As [`find`], for a change: global experiments only for the operator.
async fn find_writable(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
    id: &str,
) -> Result<ExperimentRecord, AppError> {
    let found = find(state, tenant, id).await?;
    if caller.can_write(&found.tenant) {
        Ok(found)
    } else {
        Err(AppError::Forbidden(
            "global experiments are changed by the platform operator only".to_owned(),
        ))
    }
}

/// The detail of a record, with `tenant`'s statistics.
async fn detail(
    state: &AppState,
    record: &ExperimentRecord,
    tenant: &str,
    warnings: Vec<Diagnostic>,
) -> Result<ExperimentDetail, AppError> {
    let text = record.yaml.clone();
    let name = format!("{}/experiment:{}", record.tenant, record.id);
    let (plan, document) =
        blocking(move || (compile_experiment(&name, &text), yaml_to_json(&text))).await?;
    let document = document.map_err(AppError::Internal)?;
    let (playbook, variants, success) = match &plan {
        Ok(plan) => (
            plan.playbook.clone(),
            plan.variants
                .iter()
                .map(|v| (v.name.clone(), v.weight, v.holdout))
                .collect::<Vec<_>>(),
            plan.success.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ),
        // A stored text that no longer compiles (after an engine upgrade) still shows.
        Err(_) => (String::new(), Vec::new(), Vec::new()),
    };
    let until = state
        .clock
        .now()
        .checked_add(SignedDuration::from_hours(1))
        .unwrap_or(Timestamp::MAX);
    let mut exposures: BTreeMap<String, i64> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for c in state
        .store
        .counts(tenant, None, record.created_at, until)
        .await?
    {
        let label = |i: usize| c.labels.get(i).cloned().unwrap_or_default();
        if c.labels.first() != Some(&record.id) {
            continue;
        }
        match c.metric.as_str() {
            metric::EXPOSURES => *exposures.entry(label(1)).or_default() += c.n,
            metric::EXPERIMENT_OUTCOMES => {
                *outcomes
                    .entry(label(1))
                    .or_default()
                    .entry(label(2))
                    .or_default() += c.n;
            }
            _ => {}
        }
    }
    Ok(ExperimentDetail {
        info: ExperimentInfo::from(record),
        playbook,
        document,
        statistics_tenant: tenant.to_owned(),
        variants: variants
            .into_iter()
            .map(|(name, weight, holdout)| {
                let outcomes = outcomes.remove(&name).unwrap_or_default();
                VariantStats {
                    exposures: exposures.get(&name).copied().unwrap_or(0),
                    successes: outcomes
                        .iter()
                        .filter(|(r, _)| success.contains(&r.as_str()))
                        .map(|(_, n)| *n)
                        .sum(),
                    outcomes,
                    name,
                    weight,
                    holdout,
                }
            })
            .collect(),
        warnings,
    })
}

fn respond(status: StatusCode, body: ExperimentDetail, location: Option<String>) -> Response {
    let revision = body.info.revision;
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(revision)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    record: &ExperimentRecord,
    before: Value,
    after: Value,
) -> NewAudit {
    NewAudit::new(
        state.clock.now(),
        &record.tenant,
        &caller.sub,
        action,
        &record.id,
        before,
        after,
    )
}

/// The tenant's experiments and the global ones.
#[utoipa::path(get, path = "/experiments", tag = "experiments", params(TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ExperimentList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Json<ExperimentList>, AppError> {
    let tenant = list_tenant(&caller, &query)?;
    let scope = tenant.as_deref().map_or(Scope::All, Scope::Tenant);
    let records = state.store.list_experiments(scope).await?;
    Ok(Json(ExperimentList {
        experiments: records.iter().map(ExperimentInfo::from).collect(),
    }))
}

/// Stores a new experiment (one §3 `Experiment` document, `status: paused` or
/// `completed`); activate it with `POST …/activate`.
#[utoipa::path(post, path = "/experiments", tag = "experiments",
    request_body(content = Object, content_type = "application/yaml", description = "one experiment document (a YAML mapping)"),
    security(("bearer" = [])),
    responses(
        (status = 201, body = ExperimentDetail),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the id exists for this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid, with the diagnostics of `mmm validate`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create(
    State(state): State<AppState>,
    Author(caller): Author,
    YamlBody(yaml): YamlBody,
) -> Result<Response, AppError> {
    let (plan, diagnostics) = compile(&yaml, false).await?;
    let tenant = plan.tenant.clone().unwrap_or_else(|| GLOBAL.to_owned());
    if !caller.can_write(&tenant) {
        return Err(AppError::Forbidden(if tenant == GLOBAL {
            "only the platform operator writes global (`tenant: \"*\"`) experiments".to_owned()
        } else {
            format!(
                "the token is for tenant `{}`, not {}",
                caller.tenant,
                Quoted(&tenant)
            )
        }));
    }
    if plan.status == ExperimentStatus::Active {
        return Err(invalid_status(&plan.id));
    }
    let now = state.clock.now();
    let record = ExperimentRecord {
        tenant: tenant.clone(),
        id: plan.id.clone(),
        status: status_str(plan.status).to_owned(),
        yaml,
        author: caller.sub.clone(),
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    let entry = audit(
        &state,
        &caller,
        "experiment.created",
        &record,
        Value::Null,
        json!({"status": record.status, "playbook": plan.playbook, "sha256": text_sha256(&record.yaml)}),
    );
    let stored = state.store.insert_experiment(&record, &entry).await?;
    let mut location = format!("{PREFIX}/experiments/{}", stored.id);
    if caller.is_operator() && tenant != GLOBAL {
        location.push_str(&format!("?tenant={tenant}"));
    }
    let warnings = diagnostics.into_iter().filter(|d| !d.is_error()).collect();
    let body = detail(&state, &stored, &tenant, warnings).await?;
    Ok(respond(StatusCode::CREATED, body, Some(location)))
}

/// One experiment: the document, its status and, per variant, the exposures and
/// outcomes of the caller's tenant. `ETag` is its revision.
#[utoipa::path(get, path = "/experiments/{id}", tag = "experiments",
    params(("id" = String, Path), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ExperimentDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_experiment(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<IdPath>,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Response, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    let found = find(&state, &tenant, &path.id).await?;
    let body = detail(&state, &found, &tenant, Vec::new()).await?;
    Ok(respond(StatusCode::OK, body, None))
}

/// Replaces a paused or completed experiment's document (an active one: 409,
/// deactivate first). With `If-Match`, refused (409) when it changed since that `ETag`.
#[utoipa::path(put, path = "/experiments/{id}", tag = "experiments",
    params(("id" = String, Path), TenantQuery,
           ("If-Match" = Option<String>, Header, description = "the `ETag` this change is based on", pattern = r#"^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$"#)),
    request_body(content = Object, content_type = "application/yaml", description = "the experiment document (a YAML mapping)"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ExperimentDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "active, or changed since `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn replace(
    State(state): State<AppState>,
    Author(caller): Author,
    PathParams(path): PathParams<IdPath>,
    QueryParams(query): QueryParams<TenantQuery>,
    headers: HeaderMap,
    YamlBody(yaml): YamlBody,
) -> Result<Response, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    let expected = if_match(&headers)?;
    let found = find_writable(&state, &caller, &tenant, &path.id).await?;
    let (plan, diagnostics) = compile(&yaml, false).await?;
    let text_tenant = plan.tenant.as_deref().unwrap_or(GLOBAL);
    if plan.id != found.id || text_tenant != found.tenant {
        let (field, is, want) = if plan.id == found.id {
            (
                "metadata.tenant",
                text_tenant.to_owned(),
                found.tenant.clone(),
            )
        } else {
            ("metadata.id", plan.id.clone(), found.id.clone())
        };
        return Err(AppError::invalid_field(
            field,
            format!(
                "is {}; a replacement keeps the experiment's {}",
                Quoted(&is),
                Quoted(&want)
            ),
        ));
    }
    if plan.status == ExperimentStatus::Active {
        return Err(invalid_status(&plan.id));
    }
    if found.status == ACTIVE {
        return Err(AppError::Conflict(format!(
            "experiment `{}` is active; deactivate it before changing it",
            found.id
        )));
    }
    let status = status_str(plan.status);
    let entry = audit(
        &state,
        &caller,
        "experiment.updated",
        &found,
        json!({"status": found.status, "revision": found.revision, "sha256": text_sha256(&found.yaml)}),
        json!({"status": status, "sha256": text_sha256(&yaml)}),
    );
    let updated = state
        .store
        .update_experiment(
            &found.tenant,
            &found.id,
            expected.unwrap_or(found.revision),
            &yaml,
            status,
            &entry,
        )
        .await?;
    let warnings = diagnostics.into_iter().filter(|d| !d.is_error()).collect();
    let body = detail(&state, &updated, &tenant, warnings).await?;
    Ok(respond(StatusCode::OK, body, None))
}

/// Changes an experiment's status and rebuilds the live set on this replica.
async fn set_status(
    state: &AppState,
    caller: &Caller,
    tenant: &str,
    found: &ExperimentRecord,
    to: &str,
    action: &str,
) -> Result<Response, AppError> {
    let entry = audit(
        state,
        caller,
        action,
        found,
        json!({"status": found.status}),
        json!({"status": to}),
    );
    let updated = state
        .store
        .update_experiment(
            &found.tenant,
            &found.id,
            found.revision,
            &found.yaml,
            to,
            &entry,
        )
        .await?;
    // This replica swaps at once; a failure here leaves the follower to retry.
    if let Err(e) = state.live.reload(&*state.store).await {
        tracing::warn!(error = %e, "reloading after an experiment change failed; the follower retries");
    }
    let body = detail(state, &updated, tenant, Vec::new()).await?;
    Ok(respond(StatusCode::OK, body, None))
}

/// Activates an experiment: it joins the live set (every replica within 2 s). Refused
/// (422) when `mmm validate --strict` would refuse its text; 409 when it is active, when
/// its playbook has no published version for its tenant, or when another active
/// experiment has its id or shapes its playbook for the same tenant scope.
#[utoipa::path(post, path = "/experiments/{id}/activate", tag = "experiments",
    params(("id" = String, Path), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ExperimentDetail),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "fails `mmm validate --strict`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn activate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<IdPath>,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Response, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    let found = find_writable(&state, &caller, &tenant, &path.id).await?;
    if found.status == ACTIVE {
        return Err(AppError::Conflict(format!(
            "experiment `{}` is active already",
            found.id
        )));
    }
    let (plan, _) = compile(&found.yaml, true).await?;
    // The same rules the live set is assembled by: against the published playbooks and
    // the other active experiments.
    let live = state.live.engine().playbooks();
    let plans: Vec<&mmm_engine::Plan> = live.versions().iter().map(AsRef::as_ref).collect();
    let others: Vec<&ExperimentPlan> = live
        .experiments()
        .iter()
        .map(AsRef::as_ref)
        .filter(|e| !(e.id == found.id && e.tenant.as_deref().unwrap_or(GLOBAL) == found.tenant))
        .collect();
    if let Some(why) = experiment_conflict(&plan, &plans, &others) {
        return Err(AppError::Conflict(why));
    }
    set_status(
        &state,
        &caller,
        &tenant,
        &found,
        ACTIVE,
        "experiment.activated",
    )
    .await
}

/// Deactivates an active experiment (it becomes `paused`): it leaves the live set and the
/// playbook acts as written.
#[utoipa::path(post, path = "/experiments/{id}/deactivate", tag = "experiments",
    params(("id" = String, Path), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ExperimentDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not active", body = Problem, content_type = "application/problem+json"),
    ))]
async fn deactivate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<IdPath>,
    QueryParams(query): QueryParams<TenantQuery>,
) -> Result<Response, AppError> {
    let tenant = target_tenant(&caller, &query)?;
    let found = find_writable(&state, &caller, &tenant, &path.id).await?;
    if found.status != ACTIVE {
        return Err(AppError::Conflict(format!(
            "experiment `{}` is {}; only active experiments are deactivated",
            found.id, found.status
        )));
    }
    set_status(
        &state,
        &caller,
        &tenant,
        &found,
        PAUSED,
        "experiment.deactivated",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::holdout_of;

    #[test]
    fn holdout_details_are_read_back() {
        assert_eq!(
            holdout_of("the actor is in holdout `hold` of experiment `copy-test`"),
            Some(("copy-test".to_owned(), "hold".to_owned()))
        );
        assert_eq!(
            holdout_of("the actor is in holdout `a` of experiment `b` of experiment `c`"),
            Some(("c".to_owned(), "a` of experiment `b".to_owned()))
        );
        assert_eq!(holdout_of("snoozed"), None);
    }
}
