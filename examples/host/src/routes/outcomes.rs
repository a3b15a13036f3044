//! Outcomes (SPEC §9, §13): `POST /actions/{action_id}/outcome` with `{"result": …}`, for a
//! `service` or `admin` of the action's tenant. The outcome is validated by the core,
//! stored once per (action, result), and counted in the tenant's aggregates — `outcomes`
//! (playbook, type, result) and, for an action a variant shaped, `experiment_outcomes`
//! (experiment, variant, result) — in the same transaction. The engine hears of it too
//! (its outcome metric and Thompson statistics).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use mmm_engine::outcome::Outcome;
use mmm_engine::Quoted;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::approvals::ActionPath;
use super::playbooks::blocking;
use super::tenants::metric;
use super::{JsonBody, PathParams};
use crate::auth::extract::Decider;
use crate::error::{AppError, Problem};
use crate::store::{Count, OutcomeRecord};
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record_outcome))
}

/// How far in the future an outcome's `at` may be (clocks differ a little).
const MAX_FUTURE_SKEW: SignedDuration = SignedDuration::from_secs(300);

/// `POST …/outcome`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    /// `accepted`, `dismissed`, `snoozed`, `ignored`, `executed` or `failed`.
    pub result: String,
    /// When it happened (RFC 3339; default: now).
    pub at: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeRecorded {
    /// The action.
    pub action_id: String,
    /// The playbook it came from.
    pub playbook_id: String,
    /// The result.
    pub result: String,
    /// When it happened.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// False when this (action, result) was reported before (nothing counted twice).
    pub recorded: bool,
}

/// Records what the actor did with an action: 201 the first time an (action, result) is
/// reported, 200 for a repeat (which changes nothing).
#[utoipa::path(post, path = "/actions/{action_id}/outcome", tag = "outcomes",
    params(("action_id" = String, Path)),
    request_body = OutcomeBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = OutcomeRecorded),
        (status = 200, description = "reported before; nothing changed", body = OutcomeRecorded),
        (status = 403, description = "neither `service` nor `admin`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such action in the token's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid, naming the field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn record_outcome(
    State(state): State<AppState>,
    Decider(caller): Decider,
    PathParams(path): PathParams<ActionPath>,
    JsonBody(body): JsonBody<OutcomeBody>,
) -> Result<Response, AppError> {
    let action = state
        .store
        .get_action(&caller.tenant, &path.action_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no action {}", Quoted(&path.action_id))))?;
    let now = state.clock.now();
    let at = body.at.clone().unwrap_or_else(|| now.to_string());
    let value = json!({
        "action_id": action.action_id, "tenant_id": action.tenant, "actor_id": action.actor_id,
        "playbook_id": action.playbook_id, "result": body.result, "at": at,
    });
    let (outcome, at) = Outcome::from_json(&value).map_err(|e| {
        AppError::core_with(format!("field `{}`: {}", e.field, e.message), e.info())
    })?;
    if at > now.checked_add(MAX_FUTURE_SKEW).unwrap_or(now) {
        return Err(AppError::invalid_field(
            "at",
            format!("{at} is in the future"),
        ));
    }
    let result = outcome.result.as_str().to_owned();
    let mut counts = vec![Count {
        metric: metric::OUTCOMES.to_owned(),
        labels: vec![
            action.playbook_id.clone(),
            action.action_type.clone(),
            result.clone(),
        ],
        n: 1,
    }];
    if let Some((experiment, variant)) = &action.experiment {
        counts.push(Count {
            metric: metric::EXPERIMENT_OUTCOMES.to_owned(),
            labels: vec![experiment.clone(), variant.clone(), result.clone()],
            n: 1,
        });
    }
    let recorded = state
        .store
        .record_outcome(
            &OutcomeRecord {
                action_id: action.action_id.clone(),
                tenant: action.tenant.clone(),
                playbook_id: action.playbook_id.clone(),
                action_type: action.action_type.clone(),
                result: result.clone(),
                at,
            },
            &counts,
        )
        .await?;
    if recorded {
        // The engine's outcome metric, and its Thompson statistics when this replica
        // decided the action; the stored counts above are what the routes report.
        let engine = state.live.engine().clone();
        let _ = blocking(move || {
            if let Err(e) = engine.record_outcome(&value) {
                tracing::debug!(error = %e, "the engine did not take the outcome");
            }
        })
        .await;
    }
    let status = if recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(OutcomeRecorded {
            action_id: action.action_id,
            playbook_id: action.playbook_id,
            result,
            at,
            recorded,
        }),
    )
        .into_response())
}
