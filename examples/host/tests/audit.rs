//! The audit log: admin mutations of the caller's tenant, redacted, paged; and every
//! resource route with the database gone.

use axum::http::{Method, StatusCode};
use jiff::Timestamp;
use serde_json::json;

use crate::common::hosts;

const P: &str = "/v1/mmm";

#[tokio::test]
async fn the_audit_log_shows_admin_mutations_of_the_tenant_only() {
    for host in hosts().await {
        let acme = host.admin("acme");
        let other = host.admin("other");
        host.json(
            Method::PUT,
            &format!("{P}/tenants/acme/policy"),
            &acme,
            &json!({"max_actions_per_decision": 2}),
        )
        .await;
        host.json(
            Method::PUT,
            &format!("{P}/tenants/other/policy"),
            &other,
            &json!({"max_actions_per_decision": 1}),
        )
        .await;

        let r = host.get(&format!("{P}/audit"), &acme).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let records = r.json()["records"].as_array().unwrap().clone();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0]["sub"], "admin@acme");
        assert_eq!(records[0]["action"], "tenant_policy.updated");
        assert_eq!(records[0]["before"], json!({}));
        assert_eq!(records[0]["after"], json!({"max_actions_per_decision": 2}));
        assert!(!r.text.contains("admin@other"));

        // since, paging.
        assert_eq!(
            host.get(&format!("{P}/audit?since=2999-01-01T00:00:00Z"), &acme)
                .await
                .json()["records"],
            json!([])
        );
        let operator = host.token("*", &["admin"], "ops");
        let page = host
            .get(&format!("{P}/audit?limit=1"), &operator)
            .await
            .json();
        assert_eq!(page["records"].as_array().unwrap().len(), 1);
        let next = page["next_after_id"].as_i64().unwrap();
        let page = host
            .get(&format!("{P}/audit?limit=1&after_id={next}"), &operator)
            .await
            .json();
        assert_eq!(page["records"][0]["sub"], "admin@other");

        // Naming another tenant, and roles.
        host.get(&format!("{P}/audit?tenant=other"), &acme)
            .await
            .problem(403, "FORBIDDEN");
        host.get(
            &format!("{P}/audit"),
            &host.token("acme", &["author", "service", "approver"], "x"),
        )
        .await
        .problem(403, "FORBIDDEN");
        for (query, field) in [
            ("since=soon", "since"),
            ("limit=0", "limit"),
            ("limit=5000", "limit"),
            ("after_id=x", "after_id"),
        ] {
            let problem = host
                .get(&format!("{P}/audit?{query}"), &acme)
                .await
                .problem(422, "INVALID_REQUEST");
            assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        }
    }
}

#[tokio::test]
async fn secrets_never_reach_the_audit_log() {
    for host in hosts().await {
        let admin = host.admin("acme");
        // A mutation whose record holds a secret (a delivery target, say): redacted when
        // written, so the route never has it.
        host.db
            .store
            .append_audit(&mmm_host::store::NewAudit::new(
                Timestamp::now(),
                "acme",
                "admin@acme",
                "delivery.updated",
                "acme",
                json!({}),
                json!({"ide": {"url": "https://hooks.example/ide", "secret": "hunter2"}}),
            ))
            .await
            .unwrap();
        let r = host.get(&format!("{P}/audit"), &admin).await;
        assert!(!r.text.contains("hunter2"), "{}", r.text);
        assert!(r.text.contains("[redacted]"), "{}", r.text);
    }
}

/// The database gone: every resource route answers 503 `UNAVAILABLE` (never a 500,
/// never a hang, nothing internal shown).
#[tokio::test]
async fn every_resource_route_answers_503_when_the_database_is_gone() {
    for host in hosts().await {
        crate::actions::open_approval(&host, "acme", "act-1", "dev-1", 24).await;
        let admin = host.admin("acme");
        let approver = host.token("acme", &["approver"], "lead");
        host.db.store.close().await;
        let json_body = |v: serde_json::Value| v.to_string();
        for (method, uri, token, body) in [
            (Method::GET, "/actors/dev-1/preferences", &admin, None),
            (
                Method::PUT,
                "/actors/dev-1/preferences",
                &admin,
                Some(json_body(json!({}))),
            ),
            (
                Method::POST,
                "/actors/dev-1/preferences/snooze",
                &admin,
                Some(json_body(json!({"for": "1h"}))),
            ),
            (
                Method::DELETE,
                "/actors/dev-1/preferences/snooze",
                &admin,
                None,
            ),
            (Method::GET, "/tenants/acme/policy", &admin, None),
            (
                Method::PUT,
                "/tenants/acme/policy",
                &admin,
                Some(json_body(json!({}))),
            ),
            (Method::GET, "/tenants/acme/metrics", &admin, None),
            (Method::GET, "/tenants/acme/delivery", &admin, None),
            (
                Method::PUT,
                "/tenants/acme/delivery",
                &admin,
                Some(json_body(
                    json!({"ide": {"url": "https://hooks.example/ide", "secret": "s"}}),
                )),
            ),
            (Method::GET, "/experiments", &admin, None),
            (Method::GET, "/experiments/copy", &admin, None),
            (Method::POST, "/experiments/copy/activate", &admin, None),
            (Method::POST, "/experiments/copy/deactivate", &admin, None),
            (
                Method::POST,
                "/actions/act-1/approve",
                &approver,
                Some(json_body(json!({"channel": "ide"}))),
            ),
            (
                Method::POST,
                "/actions/act-1/reject",
                &approver,
                Some(json_body(json!({"channel": "ide"}))),
            ),
            (
                Method::GET,
                "/actions/act-1/approval-status",
                &approver,
                None,
            ),
            (
                Method::POST,
                "/actions/act-1/outcome",
                &admin,
                Some(json_body(json!({"result": "accepted"}))),
            ),
            (Method::GET, "/audit", &admin, None),
        ] {
            let uri = format!("{P}{uri}");
            let r = match body {
                Some(b) => {
                    host.json(
                        method.clone(),
                        &uri,
                        token,
                        &serde_json::from_str(&b).unwrap(),
                    )
                    .await
                }
                None => {
                    host.call(
                        method.clone(),
                        &uri,
                        Some(token),
                        None,
                        axum::body::Body::empty(),
                    )
                    .await
                }
            };
            let problem = r.problem(503, "UNAVAILABLE");
            assert!(
                !r.text.contains("pool"),
                "{method} {uri}: no internals: {problem}"
            );
        }
        let created = host
            .post_yaml(
                &format!("{P}/experiments"),
                &admin,
                &crate::experiments::experiment_yaml(
                    "acme",
                    "copy",
                    "paused",
                    crate::experiments::TWO,
                ),
            )
            .await;
        created.problem(503, "UNAVAILABLE");
        let replaced = host
            .call(
                Method::PUT,
                &format!("{P}/experiments/copy"),
                Some(&admin),
                Some("application/yaml"),
                crate::experiments::experiment_yaml(
                    "acme",
                    "copy",
                    "paused",
                    crate::experiments::TWO,
                ),
            )
            .await;
        replaced.problem(503, "UNAVAILABLE");
    }
}
