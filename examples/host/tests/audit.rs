//! The audit log: admin mutations of the caller's tenant, redacted, paged.

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
