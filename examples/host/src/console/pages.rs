//! The console's areas: each module renders its pages and handles its forms.

use axum::Router;

use crate::AppState;

/// Every area's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(super::preferences::router())
        .merge(super::overview::router())
        .merge(super::explorer::router())
        .merge(super::playbooks::router())
}
