//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations as
//! the routers are built (utoipa-axum), so a routed path cannot be missing from it.

use std::sync::LazyLock;

use axum::Router;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, ResponseBuilder};
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
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes)
        .split_for_parts();
    complete(&mut doc);
    (router, doc)
}

/// What the host answers on every route, whatever the route (docs/host.md, "Bad input"),
/// added to each operation that does not document that status itself; and the rule every
/// path and query parameter is held to. Kept here, once, so that no route can forget it.
fn complete(doc: &mut Document) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            complete_responses(op);
            for param in op.parameters.iter_mut().flatten() {
                let RefOr::T(param) = param else {
                    continue;
                };
                let Some(RefOr::T(Schema::Object(schema))) = &mut param.schema else {
                    continue;
                };
                // A parameter is a string on the wire: an optional one is left out, never
                // `null` (utoipa writes `Option<T>` as `[T, "null"]`).
                if let SchemaType::Array(types) = &mut schema.schema_type {
                    types.retain(|t| *t != Type::Null);
                    if let [only] = types.as_slice() {
                        schema.schema_type = SchemaType::Type(only.clone());
                    }
                }
                if matches!(param.parameter_in, ParameterIn::Path | ParameterIn::Query) {
                    let is_string = matches!(&schema.schema_type, SchemaType::Type(Type::String));
                    if is_string && schema.pattern.is_none() {
                        schema.pattern = Some(NO_CONTROL_CHARACTER.to_owned());
                    }
                }
            }
        }
    }
}

/// No path or query parameter holds a control character (Unicode `Cc`, which is what
/// `char::is_control` tests): such a value answers 422 (`routes::PathParams`,
/// `routes::QueryParams`).
pub const NO_CONTROL_CHARACTER: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

fn complete_responses(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let mut common: Vec<(&str, &str)> = vec![
        (
            "422",
            "a bad path or query parameter (wrong type, undocumented, given twice, a control character) or body member, naming the field",
        ),
        (
            "503",
            "the database or another dependency the route needs is away, or the request took longer than `--request-timeout-seconds`",
        ),
    ];
    if has_body {
        common.push((
            "400",
            "a body that cannot be read: not the route's content type, malformed, not UTF-8",
        ));
        common.push(("413", "a body over `--body-limit`"));
    }
    if secured {
        common.push((
            "401",
            "no valid `Authorization: Bearer` token (missing, malformed, expired, another key)",
        ));
        common.push((
            "403",
            "a role the route does not admit, or a path, parameter or document naming another tenant",
        ));
    }
    for (status, description) in common {
        if op.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                crate::error::PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build();
        op.responses
            .responses
            .insert(status.to_owned(), RefOr::T(response));
    }
}

/// The document of every route, as served at `/v1/mmm/openapi.json`.
pub fn document() -> Document {
    split(crate::routes::router()).1
}

/// The document as JSON, built once.
pub static DOCUMENT_JSON: LazyLock<String> =
    LazyLock::new(|| document().to_json().unwrap_or_else(|_| "{}".to_owned()));
