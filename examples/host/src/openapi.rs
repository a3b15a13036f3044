//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations as
//! the routers are built (utoipa-axum), so a routed path cannot be missing from it.

use std::sync::LazyLock;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mmm-host",
        description = "The reference HTTP host of mmm-engine (SPEC §13). Errors are RFC 9457 problem details (`application/problem+json`).",
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Splits the routes into the axum router and the document describing them.
pub fn split(routes: OpenApiRouter<AppState>) -> (Router<AppState>, Document) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes)
        .split_for_parts()
}

/// The document of every route, as served at `/v1/mmm/openapi.json`.
pub fn document() -> Document {
    split(crate::routes::router()).1
}

/// The document as JSON, built once.
pub static DOCUMENT_JSON: LazyLock<String> =
    LazyLock::new(|| document().to_json().unwrap_or_else(|_| "{}".to_owned()));
