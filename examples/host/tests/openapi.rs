//! The OpenAPI document covers every route, and every documented route is routed.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, StatusCode};

use crate::common::{sqlite, Host};

/// The routes SPEC §13 lists that this host serves so far (later routes join the list).
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/mmm/health"),
    ("get", "/v1/mmm/ready"),
    ("get", "/v1/mmm/metrics"),
    ("get", "/v1/mmm/openapi.json"),
    ("get", "/v1/mmm/playbooks"),
    ("post", "/v1/mmm/playbooks"),
    ("get", "/v1/mmm/playbooks/{id}"),
    ("get", "/v1/mmm/playbooks/{id}/versions/{v}"),
    ("delete", "/v1/mmm/playbooks/{id}/versions/{v}"),
    ("post", "/v1/mmm/playbooks/{id}/versions/{v}/publish"),
    ("post", "/v1/mmm/playbooks/{id}/versions/{v}/deprecate"),
    ("post", "/v1/mmm/playbooks/{id}/versions/{v}/simulate"),
    ("post", "/v1/mmm/playbooks/validate"),
    ("get", "/v1/mmm/actors/{actor_id}/preferences"),
    ("put", "/v1/mmm/actors/{actor_id}/preferences"),
    ("post", "/v1/mmm/actors/{actor_id}/preferences/snooze"),
    ("delete", "/v1/mmm/actors/{actor_id}/preferences/snooze"),
    ("get", "/v1/mmm/tenants/{tenant_id}/policy"),
    ("put", "/v1/mmm/tenants/{tenant_id}/policy"),
    ("get", "/v1/mmm/tenants/{tenant_id}/metrics"),
    ("get", "/v1/mmm/tenants/{tenant_id}/delivery"),
    ("put", "/v1/mmm/tenants/{tenant_id}/delivery"),
    ("get", "/v1/mmm/experiments"),
    ("post", "/v1/mmm/experiments"),
    ("get", "/v1/mmm/experiments/{id}"),
    ("put", "/v1/mmm/experiments/{id}"),
    ("post", "/v1/mmm/experiments/{id}/activate"),
    ("post", "/v1/mmm/experiments/{id}/deactivate"),
    ("post", "/v1/mmm/actions/{action_id}/approve"),
    ("post", "/v1/mmm/actions/{action_id}/reject"),
    ("get", "/v1/mmm/actions/{action_id}/approval-status"),
    ("post", "/v1/mmm/actions/{action_id}/outcome"),
    ("get", "/v1/mmm/audit"),
    ("post", "/v1/mmm/decide"),
    ("get", "/v1/mmm/receipts"),
    ("get", "/v1/mmm/receipts/public-key"),
];

fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(mmm_host::openapi::document()).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

#[test]
fn every_spec_route_is_documented_and_nothing_else() {
    let expected: BTreeSet<(String, String)> = SPEC_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented(), expected);
}

#[tokio::test]
async fn every_documented_route_is_routed_and_served() {
    let host = Host::new(sqlite().await).await;
    let served = host.get("/v1/mmm/openapi.json", "unused").await;
    assert_eq!(served.status, StatusCode::OK);
    let doc = served.json();
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true),
        "{}",
        doc["openapi"]
    );
    for (method, path) in documented() {
        let uri = path
            .replace("{id}", "x")
            .replace("{v}", "1")
            .replace("{actor_id}", "a")
            .replace("{tenant_id}", "t")
            .replace("{action_id}", "x");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = host
            .call(method.clone(), &uri, None, None, Body::empty())
            .await;
        // Routed: answered by the route (401 without a token, or its answer), never the
        // fallback's `no such route` nor a wrong-method 405.
        assert!(
            r.status != StatusCode::METHOD_NOT_ALLOWED && !r.text.contains("no such route"),
            "{method} {uri} is documented but not routed: {} {}",
            r.status,
            r.text
        );
    }
}

/// API routes are only ever added through `utoipa_axum::routes!`, which documents them: a
/// plain `.route(` in the sources would route a path the document does not show. The one
/// exception is the console (`src/console/`), whose HTML pages are not API operations: each
/// of its routes must lie under `/ui`.
#[test]
fn no_route_bypasses_the_document() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let console = src.join("console");
    let mut stack = vec![src];
    let mut console_routes = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if path.starts_with(&console) {
                    for (at, _) in text.match_indices(".route(") {
                        let rest = text[at + ".route(".len()..].trim_start();
                        assert!(
                            rest.starts_with("\"/ui/") || rest.starts_with("\"/ui\""),
                            "{}: a console route outside /ui: {}",
                            path.display(),
                            &rest[..rest.len().min(40)]
                        );
                        console_routes += 1;
                    }
                    continue;
                }
                for needle in [".route(", ".route_service(", ".nest_service("] {
                    assert!(
                        !text.contains(needle),
                        "{} uses `{needle}`: route through `routes!` so it is documented",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(console_routes > 0, "the console's routes were found");
}

/// What any route may answer (docs/host.md, "Bad input") is documented on every operation,
/// as problem details, so a client (and schemathesis, `scripts/fuzz-api.sh`) finds every
/// status it can get; an optional parameter is left out, never `null`; and every path and
/// query string parameter states the rule that it holds no control character (or a
/// stricter pattern).
#[test]
fn every_operation_documents_what_every_route_may_answer() {
    let doc = serde_json::to_value(mmm_host::openapi::document()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut statuses = vec!["422", "503"];
            if op.get("requestBody").is_some() {
                statuses.extend(["400", "413"]);
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                statuses.extend(["401", "403"]);
            }
            for status in statuses {
                let response = &op["responses"][status];
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} does not document {status} as problem details: {response}"
                );
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                let schema = &param["schema"];
                let name = &param["name"];
                assert!(
                    !schema["type"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|t| t == "null")),
                    "{method} {path} `{name}` may be null: {schema}"
                );
                if matches!(param["in"].as_str(), Some("path" | "query"))
                    && schema["type"] == "string"
                {
                    assert!(
                        schema["pattern"].is_string(),
                        "{method} {path} `{name}` has no pattern: {schema}"
                    );
                }
            }
        }
    }
    let health = &doc["paths"]["/v1/mmm/health"]["get"]["responses"];
    assert!(health.get("401").is_none(), "{health}");
    let ctrl = &doc["paths"]["/v1/mmm/receipts"]["get"]["parameters"];
    let chain = ctrl
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "chain_id")
        .unwrap();
    assert_eq!(
        chain["schema"]["pattern"],
        mmm_host::openapi::NO_CONTROL_CHARACTER
    );
}
