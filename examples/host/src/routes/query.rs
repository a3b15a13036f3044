//! Query parameters a route does not document are refused (422 `INVALID_REQUEST` naming
//! the parameter), for every route in one place: a misspelt `?limt=10` or a parameter a
//! route does not read would otherwise be ignored without a word, and the request done as
//! if it had not been sent. The documented parameters are read from the OpenAPI document,
//! so a route and its contract cannot drift apart. The routes' own [`super::QueryParams`]
//! then check the values.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use mmm_engine::field_name;

/// `(method in lower case, path template)` → the query parameters it documents.
static DOCUMENTED: LazyLock<HashMap<(String, String), Vec<String>>> = LazyLock::new(|| {
    let doc: serde_json::Value =
        serde_json::from_str(&crate::openapi::DOCUMENT_JSON).unwrap_or_default();
    let mut out = HashMap::new();
    if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                let names = op
                    .get("parameters")
                    .and_then(|p| p.as_array())
                    .map(|params| {
                        params
                            .iter()
                            .filter(|p| p.get("in").and_then(|i| i.as_str()) == Some("query"))
                            .filter_map(|p| p.get("name").and_then(|n| n.as_str()))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert((method.clone(), path.clone()), names);
            }
        }
    }
    out
});

/// The query parameters `method path` documents; `None` for a route the document does
/// not know (the fallback).
pub fn documented(method: &str, path: &str) -> Option<&'static [String]> {
    DOCUMENTED
        .get(&(method.to_ascii_lowercase(), path.to_owned()))
        .map(Vec::as_slice)
}

/// The first query parameter of `query` that `allowed` does not list, as a refusal.
pub fn check(query: &str, allowed: &[String]) -> Result<(), AppError> {
    for (name, _) in form_urlencoded::parse(query.as_bytes()) {
        if !allowed.iter().any(|a| *a == name) {
            let takes = if allowed.is_empty() {
                "this route takes no query parameters".to_owned()
            } else {
                format!("this route takes {}", allowed.join(", "))
            };
            return Err(AppError::invalid_field(
                &field_name(&name),
                format!("unknown query parameter; {takes}"),
            ));
        }
    }
    Ok(())
}

/// Middleware: refuses a request naming a query parameter its route does not document.
pub async fn refuse_undocumented(req: Request, next: Next) -> Response {
    if let (Some(query), Some(path)) = (req.uri().query(), req.extensions().get::<MatchedPath>()) {
        if let Some(allowed) = documented(req.method().as_str(), path.as_str()) {
            if let Err(e) = check(query, allowed) {
                return e.into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_parameters_come_from_the_openapi_document() {
        assert_eq!(documented("GET", "/v1/mmm/health"), Some(&[][..]));
        let audit = documented("get", "/v1/mmm/audit").unwrap_or_default();
        assert!(audit.iter().any(|p| p == "since"), "{audit:?}");
        assert_eq!(documented("GET", "/v1/mmm/nowhere"), None);
    }

    #[test]
    fn an_undocumented_parameter_is_named() {
        let allowed = vec!["tenant".to_owned()];
        assert!(check("tenant=acme&tenant=b", &allowed).is_ok());
        assert!(check("", &allowed).is_ok());
        let Err(AppError::Invalid { errors, .. }) = check("tenant=a&limt=10", &allowed) else {
            panic!("refused");
        };
        assert_eq!(errors[0].field.as_deref(), Some("limt"));
        assert!(
            errors[0].message.contains("takes tenant"),
            "{}",
            errors[0].message
        );
        let Err(AppError::Invalid { errors, .. }) = check("a%00b=1", &[]) else {
            panic!("refused");
        };
        assert_eq!(errors[0].field.as_deref(), Some("a\\u{0}b"));
    }
}
