//! Approvals and outcomes of returned actions: the §8 dual-channel state machine over the
//! store, outcomes validated and counted, and tenant metrics. The action
//! and approval records are created in the store directly (the decide route creates them
//! in production).

use axum::http::{Method, StatusCode};
use jiff::{SignedDuration, Timestamp};
use mmm_engine::approval::{Approval, ApprovalState};
use mmm_host::store::{Count, IssuedAction, Scope};
use serde_json::json;

use crate::common::{hosts, Host};

const P: &str = "/v1/mmm";

pub async fn issue(host: &Host, tenant: &str, action_id: &str, actor: &str, kind: &str) {
    host.db
        .store
        .record_actions(&[IssuedAction {
            action_id: action_id.to_owned(),
            tenant: tenant.to_owned(),
            actor_id: actor.to_owned(),
            playbook_id: "exposed-secret".to_owned(),
            playbook_version: 1,
            action_type: kind.to_owned(),
            experiment: None,
            decided_at: Timestamp::now(),
        }])
        .await
        .unwrap();
}

pub async fn open_approval(
    host: &Host,
    tenant: &str,
    action_id: &str,
    actor: &str,
    expires_in_h: i64,
) {
    issue(host, tenant, action_id, actor, "multiplier").await;
    let now = Timestamp::now();
    host.db
        .store
        .insert_approval(&Approval {
            approval_id: format!("ap-{action_id}"),
            action_id: action_id.to_owned(),
            tenant_id: tenant.to_owned(),
            actor_id: actor.to_owned(),
            operation: Some("rotate_secret".to_owned()),
            state: ApprovalState::Pending,
            created_at: now - SignedDuration::from_hours(1),
            expires_at: now + SignedDuration::from_hours(expires_in_h),
            grants: vec![],
            rejection: None,
        })
        .await
        .unwrap();
}

fn channel(c: &str) -> serde_json::Value {
    json!({"channel": c})
}

#[tokio::test]
async fn two_channels_approve_and_terminal_states_never_change() {
    for host in hosts().await {
        open_approval(&host, "acme", "act-1", "dev-1", 24).await;
        let dev = host.token("acme", &["developer"], "dev-1");
        let approver = host.token("acme", &["approver"], "lead");
        let status = format!("{P}/actions/act-1/approval-status");

        assert_eq!(host.get(&status, &dev).await.json()["state"], "pending");
        let r = host
            .json(
                Method::POST,
                &format!("{P}/actions/act-1/approve"),
                &dev,
                &channel("ide"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["state"], "partially_approved");
        // The same channel again: refused, nothing changes.
        host.json(
            Method::POST,
            &format!("{P}/actions/act-1/approve"),
            &approver,
            &channel("ide"),
        )
        .await
        .problem(409, "CONFLICT");
        let r = host
            .json(
                Method::POST,
                &format!("{P}/actions/act-1/approve"),
                &approver,
                &channel("chat"),
            )
            .await;
        assert_eq!(r.json()["state"], "approved", "{}", r.text);
        let grants: Vec<(String, String)> = r.json()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["channel"].as_str().unwrap().to_owned(),
                    g["approver"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            grants,
            [
                ("ide".to_owned(), "dev-1".to_owned()),
                ("chat".to_owned(), "lead".to_owned())
            ]
        );
        // Terminal.
        host.json(
            Method::POST,
            &format!("{P}/actions/act-1/reject"),
            &approver,
            &channel("chat"),
        )
        .await
        .problem(409, "CONFLICT");
        host.json(
            Method::POST,
            &format!("{P}/actions/act-1/approve"),
            &dev,
            &channel("email"),
        )
        .await
        .problem(409, "CONFLICT");
        assert_eq!(
            host.get(&status, &approver).await.json()["state"],
            "approved"
        );

        // Reject from pending, with a reason.
        open_approval(&host, "acme", "act-2", "dev-1", 24).await;
        let r = host
            .json(
                Method::POST,
                &format!("{P}/actions/act-2/reject"),
                &dev,
                &json!({"channel": "chat", "reason": "not now"}),
            )
            .await;
        assert_eq!(r.json()["state"], "rejected", "{}", r.text);
        assert_eq!(
            r.json()["rejection"],
            json!(["dev-1", "not now (via chat)"])
        );

        // Expiry is recorded when read, and an expired approval is terminal.
        open_approval(&host, "acme", "act-3", "dev-1", -1).await;
        assert_eq!(
            host.get(&format!("{P}/actions/act-3/approval-status"), &dev)
                .await
                .json()["state"],
            "expired"
        );
        host.json(
            Method::POST,
            &format!("{P}/actions/act-3/approve"),
            &dev,
            &channel("ide"),
        )
        .await
        .problem(409, "CONFLICT");
        assert_eq!(
            host.db
                .store
                .get_approval("acme", "ap-act-3")
                .await
                .unwrap()
                .unwrap()
                .state,
            ApprovalState::Expired
        );

        // Every transition is in the audit log with who did it.
        let audited: Vec<String> = host
            .db
            .store
            .list_audit(Scope::Only("acme"), Timestamp::UNIX_EPOCH, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| format!("{} {} {}", a.action, a.sub, a.subject))
            .collect();
        assert_eq!(
            audited,
            [
                "approval.partially_approved dev-1 ap-act-1",
                "approval.approved lead ap-act-1",
                "approval.rejected dev-1 ap-act-2",
                "approval.expired dev-1 ap-act-3",
            ]
        );
    }
}

#[tokio::test]
async fn approvals_are_the_actors_or_an_approvers_of_the_tenant() {
    for host in hosts().await {
        open_approval(&host, "acme", "act-1", "dev-1", 24).await;
        let peer = host.token("acme", &["developer", "admin", "service"], "dev-2");
        host.json(
            Method::POST,
            &format!("{P}/actions/act-1/approve"),
            &peer,
            &channel("ide"),
        )
        .await
        .problem(403, "FORBIDDEN");
        host.get(&format!("{P}/actions/act-1/approval-status"), &peer)
            .await
            .problem(403, "FORBIDDEN");
        // Another tenant's approver, or its actor of the same name: as if absent.
        for token in [
            host.token("other", &["approver"], "lead"),
            host.token("other", &["developer"], "dev-1"),
        ] {
            host.json(
                Method::POST,
                &format!("{P}/actions/act-1/approve"),
                &token,
                &channel("ide"),
            )
            .await
            .problem(404, "NOT_FOUND");
            host.json(
                Method::POST,
                &format!("{P}/actions/act-1/reject"),
                &token,
                &channel("ide"),
            )
            .await
            .problem(404, "NOT_FOUND");
            host.get(&format!("{P}/actions/act-1/approval-status"), &token)
                .await
                .problem(404, "NOT_FOUND");
        }
        // An action without an approval (not a dual-channel multiplier).
        issue(&host, "acme", "plain", "dev-1", "mirror").await;
        let dev = host.token("acme", &["developer"], "dev-1");
        host.get(&format!("{P}/actions/plain/approval-status"), &dev)
            .await
            .problem(404, "NOT_FOUND");
        assert_eq!(
            host.db
                .store
                .get_approval("acme", "ap-act-1")
                .await
                .unwrap()
                .unwrap()
                .state,
            ApprovalState::Pending
        );
    }
}

#[tokio::test]
async fn outcomes_are_validated_stored_once_and_counted() {
    for host in hosts().await {
        issue(&host, "acme", "act-1", "dev-1", "mirror").await;
        let service = host.token("acme", &["service"], "ide-backend");
        let uri = format!("{P}/actions/act-1/outcome");
        let r = host
            .json(Method::POST, &uri, &service, &json!({"result": "accepted"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            (
                r.json()["recorded"].as_bool(),
                r.json()["playbook_id"].as_str()
            ),
            (Some(true), Some("exposed-secret"))
        );
        // A repeat changes nothing.
        let r = host
            .json(Method::POST, &uri, &service, &json!({"result": "accepted"}))
            .await;
        assert_eq!(
            (r.status, r.json()["recorded"].as_bool()),
            (StatusCode::OK, Some(false))
        );
        let admin = host.admin("acme");
        let r = host
            .json(
                Method::POST,
                &uri,
                &admin,
                &json!({"result": "executed", "at": "2026-11-22T10:00:00+01:00"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.json()["at"], "2026-11-22T09:00:00Z");

        let counts = host
            .db
            .store
            .counts(
                "acme",
                Some("outcomes"),
                Timestamp::UNIX_EPOCH,
                Timestamp::now() + SignedDuration::from_hours(1),
            )
            .await
            .unwrap();
        let as_pairs: Vec<(Vec<String>, i64)> =
            counts.into_iter().map(|c| (c.labels, c.n)).collect();
        let labels = |r: &str| {
            vec![
                "exposed-secret".to_owned(),
                "mirror".to_owned(),
                r.to_owned(),
            ]
        };
        assert_eq!(as_pairs, [(labels("accepted"), 1), (labels("executed"), 1)]);

        for (body, field, code) in [
            (json!({"result": "loved"}), "result", "OUTCOME_INVALID"),
            (json!({"result": 3}), "result", "INVALID_REQUEST"),
            (
                json!({"result": "accepted", "at": "yesterday"}),
                "at",
                "OUTCOME_INVALID",
            ),
            (
                json!({"result": "accepted", "at": "2999-01-01T00:00:00Z"}),
                "at",
                "INVALID_REQUEST",
            ),
            (
                json!({"result": "accepted", "mood": "happy"}),
                "mood",
                "INVALID_REQUEST",
            ),
            (json!({}), "result", "INVALID_REQUEST"),
        ] {
            let problem = host
                .json(Method::POST, &uri, &service, &body)
                .await
                .problem(422, "INVALID_REQUEST");
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
            assert_eq!(problem["errors"][0]["code"], code, "{body}: {problem}");
        }
    }
}

#[tokio::test]
async fn outcomes_belong_to_the_actions_tenant() {
    for host in hosts().await {
        issue(&host, "acme", "act-1", "dev-1", "mirror").await;
        let uri = format!("{P}/actions/act-1/outcome");
        let other = host.token("other", &["service", "admin"], "svc");
        host.json(Method::POST, &uri, &other, &json!({"result": "accepted"}))
            .await
            .problem(404, "NOT_FOUND");
        let dev = host.token("acme", &["developer", "approver", "author"], "dev-1");
        host.json(Method::POST, &uri, &dev, &json!({"result": "accepted"}))
            .await
            .problem(403, "FORBIDDEN");
        host.json(
            Method::POST,
            &format!("{P}/actions/nope/outcome"),
            &host.admin("acme"),
            &json!({"result": "accepted"}),
        )
        .await
        .problem(404, "NOT_FOUND");
        let counts = host
            .db
            .store
            .counts(
                "acme",
                None,
                Timestamp::UNIX_EPOCH,
                Timestamp::now() + SignedDuration::from_hours(1),
            )
            .await
            .unwrap();
        assert!(counts.is_empty(), "{counts:?}");
    }
}

fn count(metric: &str, labels: &[&str], n: i64) -> Count {
    Count {
        metric: metric.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        n,
    }
}

#[tokio::test]
async fn tenant_metrics_are_aggregates_over_a_window() {
    for host in hosts().await {
        let s = &*host.db.store;
        let at: Timestamp = "2026-11-22T10:30:00Z".parse().unwrap();
        s.add_counts(
            "acme",
            at,
            &[
                count("decisions", &[], 3),
                count("actions", &["large-pr", "mirror"], 2),
                count("actions", &["large-pr", "mentor"], 1),
                count("actions", &["flaky-test", "mirror"], 1),
                count("suppressed", &["cooldown", "large-pr", "mirror"], 2),
                count("outcomes", &["large-pr", "mirror", "accepted"], 1),
                count("exposures", &["copy", "concise"], 1),
            ],
        )
        .await
        .unwrap();
        s.add_counts(
            "acme",
            "2026-11-20T10:00:00Z".parse().unwrap(),
            &[count("decisions", &[], 100)],
        )
        .await
        .unwrap();
        s.add_counts("other", at, &[count("decisions", &[], 50)])
            .await
            .unwrap();

        let admin = host.admin("acme");
        let uri = format!(
            "{P}/tenants/acme/metrics?since=2026-11-22T00:00:00Z&until=2026-11-23T00:00:00Z"
        );
        let r = host.get(&uri, &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let m = r.json();
        assert_eq!(m["decisions"], 3);
        assert_eq!(
            m["actions"],
            json!({"total": 4, "by_type": {"mentor": 1, "mirror": 3}, "by_playbook": {"flaky-test": 1, "large-pr": 3}})
        );
        assert_eq!(
            m["suppressions"],
            json!({"total": 2, "by_reason": {"cooldown": 2}})
        );
        assert_eq!(
            m["outcomes"],
            json!({"total": 1, "by_result": {"accepted": 1}, "by_playbook": {"large-pr": 1}})
        );
        assert!(!r.text.contains("dev-"), "never per actor: {}", r.text);
        // The default window is the last 24 hours.
        assert_eq!(
            host.get(&format!("{P}/tenants/acme/metrics"), &admin)
                .await
                .json()["decisions"],
            0
        );

        // Isolation and roles.
        host.get(&uri, &host.admin("other"))
            .await
            .problem(403, "FORBIDDEN");
        assert_eq!(
            host.get(&uri.replace("acme", "other"), &host.admin("other"))
                .await
                .json()["decisions"],
            50
        );
        host.get(
            &uri,
            &host.token("acme", &["service", "author", "approver"], "svc"),
        )
        .await
        .problem(403, "FORBIDDEN");
        for (query, field) in [
            ("since=yesterday", "since"),
            ("until=2026-13-01T00:00:00Z", "until"),
            (
                "since=2026-11-23T00:00:00Z&until=2026-11-22T00:00:00Z",
                "since",
            ),
            ("actor=dev-1", "query"),
        ] {
            let problem = host
                .get(&format!("{P}/tenants/acme/metrics?{query}"), &admin)
                .await
                .problem(422, "INVALID_REQUEST");
            assert!(
                problem["errors"][0]["field"]
                    .as_str()
                    .unwrap()
                    .contains(field)
                    || field == "query",
                "{query}: {problem}"
            );
        }
    }
}

#[tokio::test]
async fn concurrent_approvals_are_counted_once_each() {
    let (ide, chat) = (channel("ide"), channel("chat"));
    for host in hosts().await {
        open_approval(&host, "acme", "act-1", "dev-1", 24).await;
        open_approval(&host, "acme", "act-2", "dev-1", 24).await;
        let dev = host.token("acme", &["developer"], "dev-1");
        let approver = host.token("acme", &["approver"], "lead");
        // Two channels at once: both count, in some order.
        let uri = format!("{P}/actions/act-1/approve");
        let (a, b) = tokio::join!(
            host.json(Method::POST, &uri, &dev, &ide),
            host.json(Method::POST, &uri, &approver, &chat),
        );
        assert_eq!(
            (a.status, b.status),
            (StatusCode::OK, StatusCode::OK),
            "{} {}",
            a.text,
            b.text
        );
        let stored = host
            .db
            .store
            .get_approval("acme", "ap-act-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.state, ApprovalState::Approved);
        assert_eq!(stored.grants.len(), 2);
        // One channel twice at once: one counts, the other is refused.
        let uri = format!("{P}/actions/act-2/approve");
        let (a, b) = tokio::join!(
            host.json(Method::POST, &uri, &dev, &ide),
            host.json(Method::POST, &uri, &approver, &ide),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{} {}", a.text, b.text);
        let stored = host
            .db
            .store
            .get_approval("acme", "ap-act-2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.state, stored.grants.len()),
            (ApprovalState::PartiallyApproved, 1)
        );
    }
}
