//! [`AppError`]: every failure a route can answer with, rendered as RFC 9457 problem
//! details (`application/problem+json`) with SPEC §13's stable codes. Validation errors
//! carry `errors`, built from the core's [`ErrorInfo`] (the one error shape every surface
//! shares). A 5xx never shows internals: it is logged with the request id and its body
//! says only that something failed, and the request id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mmm_engine::{codes, Diagnostic, ErrorInfo};
use serde::Serialize;

use crate::store::StoreError;

/// The problem-details media type.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// SPEC §13's stable codes.
pub mod code {
    /// 401: missing, invalid or expired token.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// 403: wrong role, or a path naming another tenant.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// 404.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// 409: exists already, wrong state, stale version.
    pub const CONFLICT: &str = "CONFLICT";
    /// 413.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// 422: an invalid signal.
    pub const SIGNAL_INVALID: &str = "SIGNAL_INVALID";
    /// 422: an invalid playbook or experiment document.
    pub const PLAYBOOK_INVALID: &str = "PLAYBOOK_INVALID";
    /// 400/422: any other invalid request.
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    /// 429.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// 503: the database (or another dependency a route cannot do without) is down.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// 500: a bug; the body shows nothing of it.
    pub const INTERNAL: &str = "INTERNAL";
}

/// How the host answers each of the core's error codes (`mmm_engine::codes::ALL`): the
/// HTTP status and the SPEC §13 code of the problem. The one place where a core code
/// becomes a status; `None` for a code the host does not know (answered 500, see
/// [`AppError::core`]).
pub fn core_status(core_code: &str) -> Option<(StatusCode, &'static str)> {
    let answer = match core_code {
        codes::SIGNAL_INVALID => (StatusCode::UNPROCESSABLE_ENTITY, code::SIGNAL_INVALID),
        codes::PLAYBOOK_INVALID => (StatusCode::UNPROCESSABLE_ENTITY, code::PLAYBOOK_INVALID),
        // Readable, but breaking a rule: a context, settings, an outcome, a duration, a
        // receipt, or a port's business answer about what the request names.
        codes::CONTEXT_INVALID
        | codes::CONFIG_INVALID
        | codes::OUTCOME_INVALID
        | codes::DURATION_INVALID
        | codes::RECEIPT_INVALID
        | codes::REJECTED => (StatusCode::UNPROCESSABLE_ENTITY, code::INVALID_REQUEST),
        // Not readable at all.
        codes::JSON_INVALID => (StatusCode::BAD_REQUEST, code::INVALID_REQUEST),
        codes::FORBIDDEN => (StatusCode::FORBIDDEN, code::FORBIDDEN),
        codes::NOT_FOUND => (StatusCode::NOT_FOUND, code::NOT_FOUND),
        // An approval in the wrong state for the operation, or through the wrong channel.
        codes::CONFLICT | codes::APPROVAL_REFUSED => (StatusCode::CONFLICT, code::CONFLICT),
        // The change did not happen because a dependency (the audit sink among them) is
        // down: worth retrying.
        codes::UNAVAILABLE | codes::AUDIT_FAILED => {
            (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE)
        }
        // A file on the host's side could not be read: the host's fault, not the caller's.
        codes::IO => (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL),
        _ => return None,
    };
    Some(answer)
}

tokio::task_local! {
    /// The current request's id, so a 5xx body can name it (set by [`crate::app`]).
    pub static REQUEST_ID: String;
}

/// A failure a route answers with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 400 or 422 with a stable code and the errors found.
    #[error("{detail}")]
    Invalid {
        /// 400 (unreadable) or 422 (readable but breaks a rule).
        status: StatusCode,
        /// `INVALID_REQUEST`, `PLAYBOOK_INVALID` or `SIGNAL_INVALID`.
        code: &'static str,
        /// One sentence.
        detail: String,
        /// Each problem, with its field or position.
        errors: Vec<ErrorInfo>,
    },
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// 400 `INVALID_REQUEST`: the request could not be read (malformed JSON or YAML).
    pub fn unreadable(detail: impl Into<String>, field: Option<String>) -> Self {
        let detail = detail.into();
        AppError::Invalid {
            status: StatusCode::BAD_REQUEST,
            code: code::INVALID_REQUEST,
            errors: vec![ErrorInfo {
                field,
                ..ErrorInfo::new(code::INVALID_REQUEST, detail.clone())
            }],
            detail,
        }
    }

    /// 422 `INVALID_REQUEST` naming the field that breaks a rule.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: code::INVALID_REQUEST,
            detail: format!("field `{field}`: {message}"),
            errors: vec![ErrorInfo {
                field: Some(field.to_owned()),
                ..ErrorInfo::new(code::INVALID_REQUEST, message)
            }],
        }
    }

    /// 422 `PLAYBOOK_INVALID` with the diagnostics found (errors, and warnings when they
    /// count as errors, as under `mmm validate --strict`).
    pub fn playbook_invalid(diagnostics: &[Diagnostic]) -> Self {
        let n = diagnostics.len();
        AppError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: code::PLAYBOOK_INVALID,
            detail: match diagnostics.first() {
                Some(d) if n == 1 => format!("the document is invalid: {}", d.message),
                _ => format!("the document is invalid: {n} problems"),
            },
            errors: diagnostics.iter().map(Diagnostic::info).collect(),
        }
    }

    /// The answer to one of the core's errors, by its code ([`core_status`]); the detail
    /// names the field when the error has one. A 4xx with a body of errors carries `info`.
    pub fn core(info: ErrorInfo) -> Self {
        let detail = match &info.field {
            Some(field) => format!("field `{field}`: {}", info.message),
            None => info.message.clone(),
        };
        AppError::core_with(detail, info)
    }

    /// [`AppError::core`] with a detail of the caller's (a 5xx or a 503 shows only the
    /// detail, so `info.message` may carry what a client must not see).
    pub fn core_with(detail: String, info: ErrorInfo) -> Self {
        let (status, code) =
            core_status(&info.code).unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL));
        match status {
            StatusCode::FORBIDDEN => AppError::Forbidden(detail),
            StatusCode::NOT_FOUND => AppError::NotFound(detail),
            StatusCode::CONFLICT => AppError::Conflict(detail),
            StatusCode::SERVICE_UNAVAILABLE => AppError::Unavailable(detail),
            s if s.is_server_error() => AppError::Internal(format!("{}: {}", info.code, detail)),
            status => AppError::Invalid {
                status,
                code,
                detail,
                errors: vec![info],
            },
        }
    }

    /// The status and the stable code the error answers with (a broker intake puts the
    /// code in its dead letter's header).
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        let (status, code, _) = self.parts();
        (status, code)
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            AppError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                code::UNAUTHENTICATED,
                "Unauthenticated",
            ),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, code::FORBIDDEN, "Forbidden"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, code::NOT_FOUND, "Not found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, code::CONFLICT, "Conflict"),
            AppError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                code::PAYLOAD_TOO_LARGE,
                "Payload too large",
            ),
            AppError::Invalid { status, code, .. } => (*status, code, "Invalid request"),
            AppError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                "Unavailable",
            ),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                "Internal error",
            ),
        }
    }
}

impl From<ErrorInfo> for AppError {
    fn from(info: ErrorInfo) -> Self {
        AppError::core(info)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::NotFound(m) => AppError::NotFound(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                AppError::Unavailable("the database is unavailable; try again shortly".to_owned())
            }
            StoreError::Internal(m) => AppError::Internal(m),
        }
    }
}

/// The problem-details body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `https://mmm-engine.dev/problems/<code in kebab-case>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong here.
    pub detail: String,
    /// The stable code (SPEC §13).
    pub code: String,
    /// For validation: each problem, with its field or file position.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<ErrorInfo>,
    /// For 5xx: the request id to quote when reporting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    /// A problem with no `errors`.
    pub fn new(status: StatusCode, code: &str, title: &str, detail: String) -> Self {
        Problem {
            kind: format!(
                "https://mmm-engine.dev/problems/{}",
                code.to_ascii_lowercase().replace('_', "-")
            ),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors: Vec::new(),
            request_id: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        let mut problem = match &self {
            AppError::Internal(message) => {
                tracing::error!(error = %message, request_id = request_id.as_deref().unwrap_or(""), "internal error");
                let mut p = Problem::new(
                    status,
                    code,
                    title,
                    "the request failed inside the host; quote the request id when reporting it"
                        .to_owned(),
                );
                p.request_id = request_id;
                p
            }
            AppError::Unavailable(message) => {
                let mut p = Problem::new(status, code, title, message.clone());
                p.request_id = request_id;
                p
            }
            AppError::Invalid { detail, .. } => Problem::new(status, code, title, detail.clone()),
            other => Problem::new(status, code, title, other.to_string()),
        };
        if let AppError::Invalid { errors, .. } = self {
            problem.errors = errors;
        }
        problem.into_response()
    }
}

/// The problem for a response some layer produced without a body of ours (an unknown
/// route, a wrong method, a body over the limit, a time-out).
pub fn problem_for_status(status: StatusCode) -> Problem {
    let (code, title, detail) = match status {
        StatusCode::NOT_FOUND => (code::NOT_FOUND, "Not found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            code::INVALID_REQUEST,
            "Method not allowed",
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            code::PAYLOAD_TOO_LARGE,
            "Payload too large",
            "the request body is larger than the host accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            code::INVALID_REQUEST,
            "Unsupported media type",
            "the request body's content type is not one this route reads",
        ),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => (
            code::UNAVAILABLE,
            "Unavailable",
            "the request took too long and was abandoned",
        ),
        StatusCode::UNAUTHORIZED => (
            code::UNAUTHENTICATED,
            "Unauthenticated",
            "a valid bearer token is required",
        ),
        StatusCode::FORBIDDEN => (code::FORBIDDEN, "Forbidden", "not allowed"),
        s if s.is_client_error() => (
            code::INVALID_REQUEST,
            "Invalid request",
            "the request is invalid",
        ),
        _ => (
            code::INTERNAL,
            "Internal error",
            "the request failed inside the host; quote the request id when reporting it",
        ),
    };
    let mut p = Problem::new(status, code, title, detail.to_owned());
    if status.is_server_error() {
        p.request_id = REQUEST_ID.try_with(Clone::clone).ok();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_5xx_names_the_request_id_and_nothing_of_the_cause() {
        let response = REQUEST_ID
            .scope("req-7".to_owned(), async {
                AppError::Internal("connection to 10.0.0.5 refused: password for admin".to_owned())
                    .into_response()
            })
            .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body(response).await;
        assert_eq!(body["request_id"], "req-7");
        assert_eq!(body["code"], "INTERNAL");
        assert!(!body.to_string().contains("10.0.0.5"), "{body}");
        assert!(!body.to_string().contains("password"), "{body}");
    }

    #[tokio::test]
    async fn every_core_code_has_its_status() {
        for (core_code, _) in codes::ALL {
            let (status, problem_code) = core_status(core_code)
                .unwrap_or_else(|| panic!("`{core_code}` has no status in `core_status`"));
            let info = ErrorInfo {
                field: Some("a.b".to_owned()),
                ..ErrorInfo::new(core_code, "is wrong".to_owned())
            };
            let response = AppError::from(info).into_response();
            assert_eq!(response.status(), status, "{core_code}");
            let body = body(response).await;
            assert_eq!(body["code"], problem_code, "{core_code}");
            if status.is_client_error() && status != StatusCode::FORBIDDEN {
                assert_eq!(body["detail"], "field `a.b`: is wrong", "{core_code}");
            }
        }
        let want = [
            (codes::NOT_FOUND, 404),
            (codes::CONFLICT, 409),
            (codes::APPROVAL_REFUSED, 409),
            (codes::UNAVAILABLE, 503),
            (codes::AUDIT_FAILED, 503),
            (codes::FORBIDDEN, 403),
            (codes::SIGNAL_INVALID, 422),
            (codes::PLAYBOOK_INVALID, 422),
            (codes::CONTEXT_INVALID, 422),
            (codes::CONFIG_INVALID, 422),
            (codes::OUTCOME_INVALID, 422),
            (codes::DURATION_INVALID, 422),
            (codes::RECEIPT_INVALID, 422),
            (codes::REJECTED, 422),
            (codes::JSON_INVALID, 400),
            (codes::IO, 500),
        ];
        assert_eq!(want.len(), codes::ALL.len());
        for (core_code, status) in want {
            assert_eq!(
                core_status(core_code).map(|(s, _)| s.as_u16()),
                Some(status),
                "{core_code}"
            );
        }
        // A code the host does not know is its own failure, not the caller's.
        assert!(core_status("SOMETHING_NEW").is_none());
        let unknown =
            AppError::from(ErrorInfo::new("SOMETHING_NEW", "x".to_owned())).into_response();
        assert_eq!(unknown.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn validation_problems_carry_the_error_shape_every_surface_shares() {
        let response =
            AppError::invalid_field("metadata.status", "must be `draft`").into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = body(response).await;
        assert_eq!(
            body["type"],
            "https://mmm-engine.dev/problems/invalid-request"
        );
        assert_eq!(
            body["errors"],
            serde_json::json!([{"code": "INVALID_REQUEST", "message": "must be `draft`", "field": "metadata.status"}])
        );
        assert!(body.get("request_id").is_none(), "only 5xx carry it");
    }
}
