//! The playbook routes: the author's path from draft to live and back, on every backend,
//! and tenant isolation.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use mmm_engine::Status;
use serde_json::Value;

use crate::common::{hosts, playbook_yaml, version, Host};

const P: &str = "/v1/mmm";

async fn seed(host: &Host) {
    let s = &*host.db.store;
    s.insert_playbook(
        &version("*", "welcome", 1, Status::Published),
        &crate::common::audit("*", "seed"),
    )
    .await
    .unwrap();
    s.insert_playbook(
        &version("acme", "acme-only", 1, Status::Published),
        &crate::common::audit("acme", "seed"),
    )
    .await
    .unwrap();
    host.state.live.reload(s).await.unwrap();
}

fn live_version(host: &Host, tenant: &str, id: &str) -> Option<u32> {
    host.state
        .live
        .engine()
        .playbooks()
        .live_for(tenant, id)
        .map(|p| p.version)
}

#[tokio::test]
async fn a_draft_is_created_published_rolled_back_and_deleted() {
    for host in hosts().await {
        seed(&host).await;
        let author = host.token("acme", &["author"], "alice");
        let admin = host.admin("acme");

        // Create two drafts.
        for v in [1, 2] {
            let yaml = playbook_yaml("acme", "review", v, "draft", "A pull request was opened.");
            let r = host
                .post_yaml(&format!("{P}/playbooks"), &author, &yaml)
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            assert_eq!(
                r.headers.get(header::LOCATION).unwrap(),
                &format!("{P}/playbooks/review/versions/{v}")
            );
            let body = r.json();
            assert_eq!(
                (body["status"].as_str(), body["author"].as_str()),
                (Some("draft"), Some("alice"))
            );
        }
        let again = host
            .post_yaml(
                &format!("{P}/playbooks"),
                &author,
                &playbook_yaml("acme", "review", 1, "draft", "x happened."),
            )
            .await;
        again.problem(409, "CONFLICT");

        // A draft with a lint warning is stored, with the warning; publishing it is refused.
        let warned = playbook_yaml("acme", "review", 3, "draft", "You should split this.");
        let r = host
            .post_yaml(&format!("{P}/playbooks"), &author, &warned)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.json()["warnings"][0]["rule"], "prescriptive-wording");
        let refused = host
            .post(&format!("{P}/playbooks/review/versions/3/publish"), &admin)
            .await;
        let body = refused.problem(422, "PLAYBOOK_INVALID");
        assert_eq!(body["errors"][0]["rule"], "prescriptive-wording");
        assert_eq!(body["errors"][0]["file"], "acme/review@3");
        assert_eq!(body["errors"][0]["line"], 15);

        // Authors cannot publish; admins can, and the engine decides with it at once.
        host.post(&format!("{P}/playbooks/review/versions/1/publish"), &author)
            .await
            .problem(403, "FORBIDDEN");
        assert_eq!(live_version(&host, "acme", "review"), None);
        for v in [1, 2] {
            let r = host
                .post(
                    &format!("{P}/playbooks/review/versions/{v}/publish"),
                    &admin,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert_eq!(r.json()["live_version"], v);
        }
        assert_eq!(live_version(&host, "acme", "review"), Some(2));
        host.post(&format!("{P}/playbooks/review/versions/2/publish"), &admin)
            .await
            .problem(409, "CONFLICT");

        // Deprecating the live version makes the next-highest live (rollback).
        let r = host
            .post(
                &format!("{P}/playbooks/review/versions/2/deprecate"),
                &admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            (
                r.json()["status"].as_str(),
                r.json()["live_version"].as_u64()
            ),
            (Some("deprecated"), Some(1))
        );
        assert_eq!(live_version(&host, "acme", "review"), Some(1));
        host.post(
            &format!("{P}/playbooks/review/versions/2/deprecate"),
            &admin,
        )
        .await
        .problem(409, "CONFLICT");

        // The listing shows statuses and the live version.
        let list = host
            .get(&format!("{P}/playbooks/review"), &author)
            .await
            .json();
        assert_eq!(list["serving"]["version"], 1, "{list}");
        let statuses: Vec<&str> = list["playbooks"][0]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["published", "deprecated", "draft"]);

        // Versions as YAML (as authored) or JSON (with the store's status).
        let yaml = host
            .call(
                Method::GET,
                &format!("{P}/playbooks/review/versions/1"),
                Some(&author),
                None,
                Body::empty(),
            )
            .await;
        let json = yaml.json();
        assert_eq!(json["status"], "published");
        assert_eq!(
            json["document"]["metadata"]["status"], "draft",
            "the text as authored"
        );
        let mut req = axum::http::Request::builder()
            .uri(format!("{P}/playbooks/review/versions/1"))
            .header(header::AUTHORIZATION, format!("Bearer {author}"))
            .header(header::ACCEPT, "application/yaml");
        req = req.method(Method::GET);
        let r = tower::ServiceExt::oneshot(host.app.clone(), req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.headers().get("x-mmm-status").unwrap(), "published");
        let bytes = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(
            bytes,
            playbook_yaml("acme", "review", 1, "draft", "A pull request was opened.")
        );

        // Only drafts are deleted.
        let del = host
            .call(
                Method::DELETE,
                &format!("{P}/playbooks/review/versions/3"),
                Some(&author),
                None,
                Body::empty(),
            )
            .await;
        assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text);
        host.call(
            Method::DELETE,
            &format!("{P}/playbooks/review/versions/1"),
            Some(&author),
            None,
            Body::empty(),
        )
        .await
        .problem(409, "CONFLICT");
        host.get(&format!("{P}/playbooks/review/versions/3"), &author)
            .await
            .problem(404, "NOT_FOUND");

        // Every mutation is in the audit log, with the caller and no playbook text.
        let log = host
            .db
            .store
            .list_audit(
                mmm_host::store::Scope::Only("acme"),
                jiff::Timestamp::UNIX_EPOCH,
                0,
                100,
            )
            .await
            .unwrap();
        let actions: Vec<(&str, &str)> = log
            .iter()
            .filter(|r| r.action != "seed")
            .map(|r| (r.action.as_str(), r.sub.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("playbook.created", "alice"),
                ("playbook.created", "alice"),
                ("playbook.created", "alice"),
                ("playbook.published", "admin@acme"),
                ("playbook.published", "admin@acme"),
                ("playbook.deprecated", "admin@acme"),
                ("playbook.deleted", "alice"),
            ],
            "{}",
            host.db.name
        );
        assert!(
            !format!("{log:?}").contains("pull request was opened"),
            "no text in the audit log"
        );
    }
}

#[tokio::test]
async fn validate_reports_what_mmm_validate_strict_reports() {
    for host in hosts().await {
        let author = host.token("acme", &["author"], "alice");
        let ok = host
            .post_yaml(
                &format!("{P}/playbooks/validate"),
                &author,
                &playbook_yaml("acme", "x", 1, "draft", "A pull request was opened."),
            )
            .await;
        assert_eq!(ok.json(), serde_json::json!({"diagnostics": []}));
        let bad = playbook_yaml("acme", "x", 1, "draft", "Hurry, act now.");
        let r = host
            .post_yaml(&format!("{P}/playbooks/validate"), &author, &bad)
            .await
            .json();
        let rules: Vec<&str> = r["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["rule"].as_str().unwrap())
            .collect();
        assert!(
            !rules.is_empty() && rules.iter().all(|r| *r == "false-urgency"),
            "{r}"
        );
        assert_eq!(r["diagnostics"][0]["severity"], "warning");
        assert_eq!(r["diagnostics"][0]["file"], "<request>");
        let broken = host
            .post_yaml(
                &format!("{P}/playbooks/validate"),
                &author,
                "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: Bad!}\n",
            )
            .await
            .json();
        assert!(
            broken["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["severity"] == "error"),
            "{broken}"
        );
    }
}

#[tokio::test]
async fn simulate_compares_the_live_set_with_and_without_the_version() {
    for host in hosts().await {
        seed(&host).await;
        let author = host.token("acme", &["author"], "alice");
        let draft = playbook_yaml("acme", "welcome", 2, "draft", "Version two fired.");
        // `welcome` v2 as the acme tenant's own replaces the global one for acme.
        let draft = draft.replace("id: welcome", "id: welcome-two");
        host.post_yaml(&format!("{P}/playbooks"), &author, &draft)
            .await;
        let signals = [
            r#"{"tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z"}"#,
            "not json",
            r#"{"tenant_id": "other", "actor_id": "dev-1", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z"}"#,
            r#"{"tenant_id": "acme", "actor_id": "dev-2", "kind": "ci.failed", "occurred_at": "2026-11-22T10:00:00Z"}"#,
        ]
        .join("\n");
        let r = host
            .call(
                Method::POST,
                &format!("{P}/playbooks/welcome-two/versions/2/simulate"),
                Some(&author),
                Some("application/x-ndjson"),
                signals,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let report = &r.json()["report"];
        assert_eq!(report["replayed"], 2, "{report}");
        let rejected: Vec<(u64, &str)> = report["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["line"].as_u64().unwrap(),
                    x["error"]["code"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(rejected, [(2, "INVALID_REQUEST"), (3, "FORBIDDEN")]);
        assert_eq!(
            report["primary"]["welcome-two"]["actions"]["mirror"], 1,
            "{report}"
        );
        assert_eq!(report["shadow"].get("welcome-two"), None, "{report}");
        let differences = report["differences"].as_array().unwrap();
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0]["line"], 1);
        let names = |side: &str| -> Vec<String> {
            differences[0][side]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().split(' ').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names("primary"),
            ["acme-only@1", "welcome@1", "welcome-two@2"]
        );
        assert_eq!(names("shadow"), ["acme-only@1", "welcome@1"]);
        // Nothing changed: the draft is still a draft, the live set as it was.
        assert_eq!(live_version(&host, "acme", "welcome-two"), None);
        // A JSON array works too.
        let array = host
            .call(
                Method::POST,
                &format!("{P}/playbooks/welcome-two/versions/2/simulate"),
                Some(&author),
                Some("application/json"),
                r#"[{"signal": {"tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z"}}]"#,
            )
            .await;
        assert_eq!(array.json()["report"]["replayed"], 1, "{}", array.text);
    }
}

#[tokio::test]
async fn another_tenant_never_sees_or_changes_a_tenants_playbooks() {
    for host in hosts().await {
        seed(&host).await;
        let acme = host.token("acme", &["admin", "author"], "alice");
        host.post_yaml(
            &format!("{P}/playbooks"),
            &acme,
            &playbook_yaml("acme", "secret-pb", 1, "draft", "Secret thing happened."),
        )
        .await;
        let other = host.token("other", &["admin", "author"], "mallory");

        let list = host.get(&format!("{P}/playbooks"), &other).await.json();
        let ids: Vec<&str> = list["playbooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["welcome"], "{}: only global playbooks", host.db.name);
        assert!(!host
            .get(&format!("{P}/playbooks"), &other)
            .await
            .text
            .contains("acme"));

        for uri in [
            format!("{P}/playbooks/secret-pb"),
            format!("{P}/playbooks/secret-pb/versions/1"),
            format!("{P}/playbooks/acme-only"),
        ] {
            host.get(&uri, &other).await.problem(404, "NOT_FOUND");
        }
        for action in ["publish", "deprecate", "simulate"] {
            let r = host
                .call(
                    Method::POST,
                    &format!("{P}/playbooks/secret-pb/versions/1/{action}"),
                    Some(&other),
                    Some("application/json"),
                    "[]",
                )
                .await;
            r.problem(404, "NOT_FOUND");
        }
        host.call(
            Method::DELETE,
            &format!("{P}/playbooks/secret-pb/versions/1"),
            Some(&other),
            None,
            Body::empty(),
        )
        .await
        .problem(404, "NOT_FOUND");
        // Naming the other tenant is forbidden, and so is writing into it.
        host.get(&format!("{P}/playbooks?tenant=acme"), &other)
            .await
            .problem(403, "FORBIDDEN");
        host.post_yaml(
            &format!("{P}/playbooks"),
            &other,
            &playbook_yaml("acme", "planted", 1, "draft", "Planted."),
        )
        .await
        .problem(403, "FORBIDDEN");
        // Global playbooks are visible but changed by the platform operator only.
        host.post(
            &format!("{P}/playbooks/welcome/versions/1/deprecate"),
            &other,
        )
        .await
        .problem(403, "FORBIDDEN");
        host.post_yaml(
            &format!("{P}/playbooks"),
            &other,
            &playbook_yaml("*", "global-x", 1, "draft", "Global."),
        )
        .await
        .problem(403, "FORBIDDEN");
        let operator = host.token("*", &["admin", "author"], "root");
        let r = host
            .post_yaml(
                &format!("{P}/playbooks"),
                &operator,
                &playbook_yaml("*", "global-x", 1, "draft", "Global."),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let r = host
            .get(
                &format!("{P}/playbooks/secret-pb/versions/1?tenant=acme"),
                &operator,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "the operator reads any tenant: {}",
            r.text
        );
        let all = host.get(&format!("{P}/playbooks"), &operator).await.json();
        assert_eq!(all["playbooks"].as_array().unwrap().len(), 4, "{all}");
        let _: Value = all;
    }
}

#[tokio::test]
async fn another_replica_follows_a_publish() {
    for host in hosts().await {
        let other = Host::new_on(&host).await;
        let author = host.token("acme", &["author", "admin"], "alice");
        host.post_yaml(
            &format!("{P}/playbooks"),
            &author,
            &playbook_yaml("acme", "shared", 1, "draft", "Shared."),
        )
        .await;
        host.post(&format!("{P}/playbooks/shared/versions/1/publish"), &author)
            .await;
        assert_eq!(live_version(&host, "acme", "shared"), Some(1));
        assert_eq!(live_version(&other, "acme", "shared"), None, "not yet");
        assert!(other
            .state
            .live
            .reload_if_changed(&*other.db.store)
            .await
            .unwrap());
        assert_eq!(live_version(&other, "acme", "shared"), Some(1));
        assert!(
            !other
                .state
                .live
                .reload_if_changed(&*other.db.store)
                .await
                .unwrap(),
            "nothing new"
        );
    }
}

/// Replicas follow without being asked: on PostgreSQL the `NOTIFY` of the publishing
/// transaction wakes them (the poll is set to a minute, so only the notification can be
/// what woke it); on SQLite the revision poll does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_replica_picks_up_a_publish_by_itself() {
    for host in hosts().await {
        let other = Host::new_on(&host).await;
        let poll = if host.db.name == "postgres" {
            std::time::Duration::from_secs(60)
        } else {
            std::time::Duration::from_millis(100)
        };
        let follower = std::sync::Arc::clone(&other.state.live)
            .follow(
                std::sync::Arc::clone(&other.db.store),
                poll,
                other.state.shutdown.stopping(),
            )
            .await;
        let admin = host.token("acme", &["author", "admin"], "alice");
        host.post_yaml(
            &format!("{P}/playbooks"),
            &admin,
            &playbook_yaml("acme", "followed", 1, "draft", "Followed."),
        )
        .await;
        host.post(
            &format!("{P}/playbooks/followed/versions/1/publish"),
            &admin,
        )
        .await;
        // Real time: the follower is a background task on real time: polled, bounded only to catch a hang.
        let started = std::time::Instant::now();
        while live_version(&other, "acme", "followed").is_none() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{}: the other replica did not follow within 5 s",
                host.db.name
            );
            // Real time: the follower is a background task on real time: polled, bounded only to catch a hang.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        other.state.shutdown.begin();
        follower.await.unwrap();
    }
}
