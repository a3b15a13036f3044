//! The routes, one module per resource, each with a `router()` merged by
//! [`crate::app`]; and the extractors every route reads its input with, so that bad input
//! always answers problem details naming the field (never axum's plain-text rejections).

pub mod approvals;
pub mod audit;
pub mod decide;
pub mod experiments;
pub mod health;
pub mod outcomes;
pub mod playbooks;
pub mod policy;
pub mod preferences;
pub mod query;
pub mod receipts;
pub mod tenants;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use mmm_engine::{clean_message, field_name, Quoted};
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;

use crate::error::AppError;
use crate::AppState;

/// The prefix of every route (SPEC §13).
pub const PREFIX: &str = "/v1/mmm";

/// Every resource's routes, merged under [`PREFIX`]. Later resources add their
/// `router()` here.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().nest(
        PREFIX,
        OpenApiRouter::new()
            .merge(health::router())
            .merge(playbooks::router())
            .merge(preferences::router())
            .merge(policy::router())
            .merge(tenants::router())
            .merge(experiments::router())
            .merge(approvals::router())
            .merge(outcomes::router())
            .merge(audit::router())
            .merge(decide::router())
            .merge(receipts::router())
            .merge(crate::delivery::routes::router()),
    )
}

/// Path parameters; a parameter of the wrong type answers 422 naming it (a 404 would
/// suggest the resource is missing, when the request is what is wrong).
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        use axum::extract::rejection::PathRejection;
        // No identifier the host keeps holds a control character: such a value is refused
        // before it can reach a store (PostgreSQL refuses NUL in text) or a log line.
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            for (name, value) in raw.iter() {
                if value.chars().any(char::is_control) {
                    return Err(AppError::invalid_field(
                        &field_name(name),
                        format!(
                            "{} holds a control character, which no identifier may",
                            Quoted(value)
                        ),
                    ));
                }
            }
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let message = clean_message(&e.body_text());
                let field = match e.into_kind() {
                    axum::extract::path::ErrorKind::ParseErrorAtKey { key, .. }
                    | axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } => Some(key),
                    axum::extract::path::ErrorKind::DeserializeError { key, .. } => Some(key),
                    _ => None,
                };
                Err(match field {
                    Some(field) => AppError::invalid_field(&field, message),
                    None => AppError::unreadable(message, None),
                })
            }
            Err(e) => Err(AppError::Internal(e.body_text())),
        }
    }
}

/// Query parameters, unknown ones refused, each error naming its parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or("");
        // As in paths: no value the host reads holds a control character.
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if value.chars().any(char::is_control) {
                return Err(AppError::invalid_field(
                    &field_name(&name),
                    format!(
                        "{} holds a control character, which no parameter may",
                        Quoted(&value)
                    ),
                ));
            }
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|e| {
                // Parameter names and values are the caller's: escaped and cut as the
                // core quotes user values.
                let field = field_name(&e.path().to_string());
                let message = clean_message(&e.inner().to_string());
                if field == "." || field.is_empty() {
                    AppError::invalid_field("query", message)
                } else {
                    AppError::invalid_field(&field, message)
                }
            })
    }
}

/// The raw body, with the body limit answered as 413.
async fn body(req: Request, state: &AppState) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge(format!(
                "the request body is larger than {} bytes",
                state.settings.body_limit
            ))
        } else {
            AppError::unreadable(
                format!("the request body cannot be read: {}", e.body_text()),
                None,
            )
        }
    })
}

/// Whether the request's content type is one of `accepted` (parameters ignored).
fn content_type_is(req: &Request, accepted: &[&str]) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|v| accepted.contains(&v.as_str()))
}

/// A JSON body: `application/json` required; syntax errors answer 400, wrong types and
/// unknown fields 422, each naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        if !content_type_is(&req, &["application/json"]) {
            return Err(AppError::unreadable(
                "the body must be JSON with `Content-Type: application/json`",
                None,
            ));
        }
        let bytes = body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads JSON, naming the field of a type error. Keys and values in the message are the
/// caller's: escaped and cut as the core quotes user values.
///
/// The whole body is one JSON value: anything but white space after it is a syntax error
/// (400), never ignored.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let field = field_name(&e.path().to_string());
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // A missing field is named itself, not the object that lacks it.
                let message = inner.to_string();
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split_once('`'))
                    .map(|(name, _)| field_name(name));
                let field = match (missing, field.as_str()) {
                    (Some(name), ".") => name,
                    (Some(name), path) => format!("{path}.{name}"),
                    (None, ".") => "body".to_owned(),
                    (None, path) => path.to_owned(),
                };
                AppError::invalid_field(&field, clean_message(&message))
            }
            _ => AppError::unreadable(
                format!(
                    "the body is not valid JSON: {}",
                    clean_message(&inner.to_string())
                ),
                None,
            ),
        }
    })?;
    de.end().map_err(|e| {
        AppError::unreadable(
            format!(
                "the body is not valid JSON: more after the value: {}",
                clean_message(&e.to_string())
            ),
            None,
        )
    })?;
    Ok(value)
}

/// A YAML document as text: `application/yaml` (or `text/yaml`, `application/x-yaml`)
/// required, UTF-8.
pub struct YamlBody(pub String);

/// The content types read as YAML.
pub const YAML_TYPES: &[&str] = &["application/yaml", "text/yaml", "application/x-yaml"];

impl FromRequest<AppState> for YamlBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        if !content_type_is(&req, YAML_TYPES) {
            return Err(AppError::unreadable(
                "the body must be YAML with `Content-Type: application/yaml`",
                None,
            ));
        }
        let bytes = body(req, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(YamlBody)
            .map_err(|e| AppError::unreadable(format!("the body is not UTF-8: {e}"), None))
    }
}

/// A body read as text whatever its type (NDJSON or a JSON array of signals).
pub struct TextBody {
    /// The content type, lower-cased, without parameters.
    pub content_type: String,
    /// The text.
    pub text: String,
}

impl FromRequest<AppState> for TextBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let bytes = body(req, state).await?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|e| AppError::unreadable(format!("the body is not UTF-8: {e}"), None))?;
        Ok(TextBody { content_type, text })
    }
}
