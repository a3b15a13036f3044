//! Preferences and snooze, and the tenant policy: stored, validated as a decision's
//! context, versioned with `ETag`/`If-Match`, audited, and isolated per tenant.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use jiff::Timestamp;
use mmm_host::store::Scope;
use serde_json::json;

use crate::common::{hosts, Host};

const P: &str = "/v1/mmm";

async fn audit_actions(host: &Host, tenant: &str) -> Vec<(String, String, serde_json::Value)> {
    host.db
        .store
        .list_audit(Scope::Only(tenant), Timestamp::UNIX_EPOCH, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.sub, a.after))
        .collect()
}

#[tokio::test]
async fn an_actor_reads_writes_and_snoozes_its_preferences() {
    for host in hosts().await {
        let dev = host.token("acme", &["developer"], "dev-1");
        let uri = format!("{P}/actors/dev-1/preferences");

        let empty = host.get(&uri, &dev).await;
        assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
        assert_eq!(empty.json(), json!({}));
        assert_eq!(empty.headers[header::ETAG], "\"0\"");

        let prefs = json!({"opt_out_categories": ["style"], "preferred_surfaces": ["ide"],
                           "quiet_hours": {"start": "19:00", "end": "08:00", "timezone": "Europe/Berlin"}});
        let put = host.json(Method::PUT, &uri, &dev, &prefs).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text);
        assert_eq!(put.json(), prefs);
        assert_eq!(put.headers[header::ETAG], "\"1\"");
        assert_eq!(host.get(&uri, &dev).await.json(), prefs);

        // Snooze for two hours, then until an instant, then end it.
        let before = Timestamp::now();
        let r = host
            .json(
                Method::POST,
                &format!("{uri}/snooze"),
                &dev,
                &json!({"for": "2h"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let until: Timestamp = r.json()["snooze_until"].as_str().unwrap().parse().unwrap();
        let two_h = jiff::SignedDuration::from_hours(2);
        assert!(until >= before + two_h && until <= Timestamp::now() + two_h);
        assert_eq!(
            r.json()["opt_out_categories"],
            json!(["style"]),
            "the rest stays"
        );

        let r = host
            .json(
                Method::POST,
                &format!("{uri}/snooze"),
                &dev,
                &json!({"until": "2999-01-01T09:00:00+01:00"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["snooze_until"], "2999-01-01T08:00:00Z");

        let r = host
            .call(
                Method::DELETE,
                &format!("{uri}/snooze"),
                Some(&dev),
                None,
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json(), prefs);

        // A service and an admin of the tenant may work on any of its actors.
        let service = host.token("acme", &["service"], "ide-backend");
        assert_eq!(host.get(&uri, &service).await.status, StatusCode::OK);
        let admin = host.admin("acme");
        assert_eq!(host.get(&uri, &admin).await.json(), prefs);

        // Every change is audited with the caller's `sub`.
        let audited = audit_actions(&host, "acme").await;
        let actions: Vec<(&str, &str)> = audited
            .iter()
            .map(|(a, s, _)| (a.as_str(), s.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("preferences.updated", "dev-1"),
                ("preferences.snoozed", "dev-1"),
                ("preferences.snoozed", "dev-1"),
                ("preferences.unsnoozed", "dev-1"),
            ]
        );
    }
}

#[tokio::test]
async fn preferences_are_validated_as_a_decision_context_is() {
    for host in hosts().await {
        let dev = host.token("acme", &["developer"], "dev-1");
        let uri = format!("{P}/actors/dev-1/preferences");
        for (body, field, says) in [
            (
                json!({"snooze_until": "tomorrow"}),
                "snooze_until",
                "RFC 3339",
            ),
            (
                json!({"quiet_hours": {"start": "7pm", "end": "08:00"}}),
                "quiet_hours.start",
                "HH:MM",
            ),
            (
                json!({"quiet_hours": {"start": "19:00", "end": "08:00", "timezone": "Mars/Base"}}),
                "quiet_hours.timezone",
                "IANA",
            ),
            (
                json!({"preferred_surfaces": ["fax"]}),
                "preferred_surfaces[0]",
                "fax",
            ),
            (
                json!({"opt_out_categories": "style"}),
                "opt_out_categories",
                "sequence",
            ),
            (json!({"mood": "grumpy"}), "mood", "unknown field"),
        ] {
            let r = host.json(Method::PUT, &uri, &dev, &body).await;
            let problem = r.problem(422, "INVALID_REQUEST");
            assert_eq!(problem["errors"][0]["field"], field, "{problem}");
            assert_eq!(problem["errors"][0]["code"], "CONTEXT_INVALID", "{problem}");
            assert!(problem.to_string().contains(says), "{problem}");
        }
        for (body, field) in [
            (json!({}), "body"),
            (
                json!({"for": "2h", "until": "2999-01-01T00:00:00Z"}),
                "body",
            ),
            (json!({"for": "2 hours"}), "for"),
            (json!({"until": "2020-01-01T00:00:00Z"}), "until"),
            (json!({"until": "soon"}), "until"),
            (json!({"for": 2}), "for"),
        ] {
            let r = host
                .json(Method::POST, &format!("{uri}/snooze"), &dev, &body)
                .await;
            let problem = r.problem(422, "INVALID_REQUEST");
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        }
        assert!(
            audit_actions(&host, "acme").await.is_empty(),
            "nothing stored"
        );
        assert!(host
            .db
            .store
            .get_preferences("acme", "dev-1")
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn preferences_belong_to_the_actor_and_its_tenant() {
    for host in hosts().await {
        let uri = format!("{P}/actors/dev-1/preferences");
        let dev = host.token("acme", &["developer"], "dev-1");
        host.json(
            Method::PUT,
            &uri,
            &dev,
            &json!({"opt_out_categories": ["style"]}),
        )
        .await;

        // Another actor of the tenant: 403.
        let peer = host.token("acme", &["developer", "author", "approver"], "dev-2");
        host.get(&uri, &peer).await.problem(403, "FORBIDDEN");
        host.json(Method::PUT, &uri, &peer, &json!({}))
            .await
            .problem(403, "FORBIDDEN");
        host.json(
            Method::POST,
            &format!("{uri}/snooze"),
            &peer,
            &json!({"for": "1h"}),
        )
        .await
        .problem(403, "FORBIDDEN");

        // Another tenant's admin sees its own tenant's actor of that name (none), never
        // acme's; naming acme answers 403.
        let other = host.admin("other");
        let r = host.get(&uri, &other).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json(), json!({}));
        host.get(&format!("{uri}?tenant=acme"), &other)
            .await
            .problem(403, "FORBIDDEN");
        // An actor of another tenant with the same id: its own preferences only.
        let namesake = host.token("other", &["developer"], "dev-1");
        assert_eq!(host.get(&uri, &namesake).await.json(), json!({}));
        host.json(
            Method::POST,
            &format!("{uri}/snooze"),
            &namesake,
            &json!({"for": "1h"}),
        )
        .await;
        assert_eq!(
            host.get(&uri, &dev).await.json(),
            json!({"opt_out_categories": ["style"]}),
            "acme's actor is untouched"
        );

        // The platform operator names the tenant.
        let operator = host.token("*", &["admin"], "ops");
        host.get(&uri, &operator)
            .await
            .problem(422, "INVALID_REQUEST");
        assert_eq!(
            host.get(&format!("{uri}?tenant=acme"), &operator)
                .await
                .json(),
            json!({"opt_out_categories": ["style"]})
        );
    }
}

#[tokio::test]
async fn a_tenant_policy_is_stored_with_a_version_and_audited() {
    for host in hosts().await {
        let admin = host.admin("acme");
        let uri = format!("{P}/tenants/acme/policy");
        let r = host.get(&uri, &admin).await;
        assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
        assert_eq!(r.headers[header::ETAG], "\"0\"");

        let policy = json!({"enabled_action_types": ["mirror", "mentor"], "max_actions_per_decision": 2,
                            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
                            "budget": {"max": 10, "window": "1d"}});
        let put = host
            .call_with(
                Method::PUT,
                &uri,
                Some(&admin),
                &[("if-match", "\"0\"")],
                Some("application/json"),
                policy.to_string(),
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text);
        assert_eq!(put.headers[header::ETAG], "\"1\"");
        let r = host.get(&uri, &admin).await;
        assert_eq!(r.json(), policy);
        assert_eq!(r.headers[header::ETAG], "\"1\"");

        // A write based on the old version is refused and changes nothing.
        let stale = host
            .call_with(
                Method::PUT,
                &uri,
                Some(&admin),
                &[("if-match", "\"0\"")],
                Some("application/json"),
                json!({"max_actions_per_decision": 1}).to_string(),
            )
            .await;
        stale.problem(409, "CONFLICT");
        assert_eq!(host.get(&uri, &admin).await.json(), policy);

        // Without If-Match, the write replaces what is stored.
        let r = host
            .json(
                Method::PUT,
                &uri,
                &admin,
                &json!({"max_actions_per_decision": 1}),
            )
            .await;
        assert_eq!(r.headers[header::ETAG], "\"2\"", "{}", r.text);

        let audited = audit_actions(&host, "acme").await;
        assert_eq!(audited.len(), 2);
        assert_eq!(
            (audited[0].0.as_str(), audited[0].1.as_str()),
            ("tenant_policy.updated", "admin@acme")
        );
        assert_eq!(audited[0].2, policy);
    }
}

#[tokio::test]
async fn a_tenant_policy_is_validated_and_isolated() {
    for host in hosts().await {
        let admin = host.admin("acme");
        let uri = format!("{P}/tenants/acme/policy");
        for (body, field) in [
            (
                json!({"enabled_surfaces": ["billboard"]}),
                "enabled_surfaces[0]",
            ),
            (
                json!({"budget": {"max": 10, "window": "a while"}}),
                "budget.window",
            ),
            (
                json!({"max_actions_per_decision": -1}),
                "max_actions_per_decision",
            ),
            (
                json!({"quiet_hours": {"start": "22:00", "end": "22:00"}}),
                "quiet_hours",
            ),
            (json!({"shiny": true}), "shiny"),
            (json!([1]), "body"),
        ] {
            let r = host.json(Method::PUT, &uri, &admin, &body).await;
            let problem = r.problem(422, "INVALID_REQUEST");
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        }
        host.json(
            Method::PUT,
            &uri,
            &admin,
            &json!({"max_actions_per_decision": 2}),
        )
        .await;

        let other = host.admin("other");
        host.get(&uri, &other).await.problem(403, "FORBIDDEN");
        host.json(Method::PUT, &uri, &other, &json!({}))
            .await
            .problem(403, "FORBIDDEN");
        assert_eq!(
            host.get(&format!("{P}/tenants/other/policy"), &other)
                .await
                .json(),
            json!({}),
            "other's policy is its own"
        );
        let author = host.token("acme", &["author", "service", "approver"], "alice");
        host.get(&uri, &author).await.problem(403, "FORBIDDEN");
        let operator = host.token("*", &["admin"], "ops");
        assert_eq!(
            host.get(&uri, &operator).await.json(),
            json!({"max_actions_per_decision": 2})
        );
    }
}
