//! Liveness, readiness, metrics and the OpenAPI document: the routes that need no token.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "the process is alive", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
    /// The store revision the live playbook set was built from.
    pub playbook_revision: i64,
}

/// Readiness: the first playbook set is loaded, the database answers, and so does Redis
/// when fatigue lives there.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "ready to decide", body = Ready),
        (status = 503, description = "not ready: no playbook set yet, or the database or Redis is unreachable", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, AppError> {
    let Some(revision) = state.live.revision() else {
        return Err(AppError::Unavailable(
            "the playbook set is not loaded yet".to_owned(),
        ));
    };
    state.store.ping().await?;
    if let Some(fatigue) = &state.fatigue {
        fatigue.ready().await.map_err(AppError::Unavailable)?;
    }
    Ok(Json(Ready {
        status: "ready",
        database: state.store.backend(),
        playbook_revision: revision,
    }))
}

/// Prometheus metrics, text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.scrape(&state),
    )
}

/// This document: OpenAPI 3.1 of every route.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "the OpenAPI document", body = Object)))]
async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT_JSON.as_str(),
    )
}
