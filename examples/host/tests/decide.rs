//! `POST /decide` and the receipts routes: the §4 decision with the host's context, the
//! receipt stored before the answer (group commit), actions, approvals and counters
//! recorded, receipts exported as `mmm verify` reads them, tenant isolation.

use jiff::Timestamp;
use mmm_engine::receipt::{ChainVerifier, Envelope};
use mmm_host::store::Store;
use serde_json::{json, Value};

use crate::common::{audit, backends, ts, Host, RECEIPT_SEED};

const DECIDE: &str = "/v1/mmm/decide";
const RECEIPTS: &str = "/v1/mmm/receipts";

fn large_pr(tenant: &str, actor: &str) -> Value {
    json!({"tenant_id": tenant, "actor_id": actor, "kind": "pr.opened", "source": "scm",
           "occurred_at": "2026-11-24T10:00:00Z", "surface": "pr_comment",
           "repo": {"id": format!("{tenant}/api"), "branch": "feat/x"},
           "payload": {"lines_changed": 420, "files_changed": 12}})
}

fn force_push(tenant: &str) -> Value {
    json!({"tenant_id": tenant, "actor_id": "dev-7", "kind": "branch.force_pushed",
           "occurred_at": "2026-11-24T10:00:00Z",
           "repo": {"id": format!("{tenant}/api"), "branch": "main"},
           "payload": {"branch_protected": true, "commits_removed": 3,
                       "before_sha": "abc123", "after_sha": "def456"}})
}

fn service(host: &Host, tenant: &str) -> String {
    host.token(tenant, &["service"], "bot")
}

fn public_key() -> mmm_engine::receipt::VerifyingKey {
    mmm_engine::receipt::SigningKey::from_bytes(&RECEIPT_SEED).verifying_key()
}

/// Verifies an NDJSON export as `mmm verify --from-start` does; returns the receipts'
/// payloads.
fn verify_export(text: &str) -> Vec<Value> {
    let key = public_key();
    let mut verifier = ChainVerifier::new(&key).from_start(true);
    let mut payloads = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let envelope: Envelope = serde_json::from_str(line).unwrap();
        payloads.push(verifier.verify(&envelope).unwrap());
    }
    payloads
}

async fn counts(store: &dyn Store, tenant: &str) -> Vec<(String, Vec<String>, i64)> {
    store
        .counts(
            tenant,
            None,
            Timestamp::UNIX_EPOCH,
            ts("2100-01-01T00:00:00Z"),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.metric, c.labels, c.n))
        .collect()
}

#[tokio::test]
async fn a_decision_is_answered_after_its_receipt_actions_and_counters_are_stored() {
    for db in backends().await {
        let host = Host::signing(db, "replica-a").await;
        let token = service(&host, "acme");
        let r = host
            .post_json(
                DECIDE,
                &token,
                &json!({"signal": large_pr("acme", "dev-42")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let d = r.json();
        assert_eq!(d["tenant_id"], "acme");
        assert_eq!(d["actions"][0]["playbook"]["id"], "large-pr", "{d}");
        assert_eq!(d["receipt"]["status"], "emitted");
        assert!(
            d["receipt"].get("envelope").is_none(),
            "the §4 receipt is its id and status: {d}"
        );
        assert!(d["explain"].is_null());
        let receipt_id = d["receipt"]["receipt_id"].as_str().unwrap();
        let action_id = d["actions"][0]["action_id"].as_str().unwrap();

        let s = &*host.db.store;
        let stored = s.list_receipts(None, None, 0, 10).await.unwrap();
        assert_eq!(stored.len(), 1, "{}", host.db.name);
        assert_eq!(stored[0].receipt_id, receipt_id);
        assert_eq!(stored[0].tenant, "acme");
        assert_eq!(stored[0].chain_id, "replica-a");
        let action = s.get_action("acme", action_id).await.unwrap().unwrap();
        assert_eq!(action.playbook_id, "large-pr");
        assert_eq!(action.actor_id, "dev-42");
        assert!(s.get_action("other", action_id).await.unwrap().is_none());
        let c = counts(s, "acme").await;
        assert!(c.contains(&("decisions".into(), vec![], 1)), "{c:?}");
        assert!(
            c.contains(&(
                "actions".into(),
                vec!["large-pr".into(), "mirror".into()],
                1
            )),
            "{c:?}"
        );

        // The receipt says what was decided, and verifies.
        let export = host.get(RECEIPTS, &host.admin("acme")).await;
        assert_eq!(export.status, 200, "{}", export.text);
        assert_eq!(
            export.headers["content-type"], "application/x-ndjson",
            "{:?}",
            export.headers
        );
        let payloads = verify_export(&export.text);
        assert_eq!(payloads.len(), 1);
        assert_eq!(payloads[0]["decision_id"], d["decision_id"]);
        assert_eq!(payloads[0]["actions"][0]["action_id"], action_id);
        assert_eq!(payloads[0]["chain"]["id"], "replica-a");

        // Explain on request; `now` for admins.
        let r = host
            .post_json(
                DECIDE,
                &host.admin("acme"),
                &json!({"signal": large_pr("acme", "dev-43"), "explain": true,
                        "now": "2026-11-24T10:00:05Z"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let d = r.json();
        assert_eq!(d["decided_at"], "2026-11-24T10:00:05Z");
        assert!(d["explain"].is_array(), "{d}");
    }
}

#[tokio::test]
async fn dual_channel_multipliers_open_an_approval() {
    for db in backends().await {
        let host = Host::signing(db, "replica-a").await;
        let r = host
            .post_json(
                DECIDE,
                &service(&host, "acme"),
                &json!({"signal": force_push("acme")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let d = r.json();
        let multiplier = d["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "multiplier")
            .unwrap_or_else(|| panic!("{d}"));
        assert_eq!(multiplier["dual_channel"], true);
        let id = multiplier["action_id"].as_str().unwrap();
        let approval = host
            .db
            .store
            .get_approval_for_action("acme", id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(approval.actor_id, "dev-7");
        assert_eq!(approval.operation.as_deref(), Some("restore_branch"));
        assert_eq!(
            serde_json::to_value(approval.state).unwrap(),
            json!("pending")
        );
        let mirror = d["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "mirror")
            .unwrap();
        assert!(host
            .db
            .store
            .get_approval_for_action("acme", mirror["action_id"].as_str().unwrap())
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn the_host_fills_preferences_and_tenant_policy_from_its_store() {
    for db in backends().await {
        let host = Host::signing(db, "replica-a").await;
        let s = &*host.db.store;
        s.put_tenant_policy(
            "acme",
            &json!({"enabled_action_types": ["mentor"]}),
            None,
            &audit("acme", "tenant_policy.updated"),
        )
        .await
        .unwrap();
        s.put_preferences(
            "beta",
            "dev-42",
            &json!({"opt_out_categories": ["code-review"]}),
            None,
            &audit("beta", "preferences.updated"),
        )
        .await
        .unwrap();
        let reasons = |d: &Value| -> Vec<String> {
            d["suppressed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["reason"].as_str().unwrap().to_owned())
                .collect()
        };
        let acme = host
            .post_json(
                DECIDE,
                &service(&host, "acme"),
                &json!({"signal": large_pr("acme", "dev-42")}),
            )
            .await
            .json();
        assert!(
            acme["actions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["type"] == "mentor"),
            "{acme}"
        );
        assert!(
            reasons(&acme).contains(&"action_type_disabled".to_owned()),
            "{acme}"
        );
        // Another tenant's policy and another actor's preferences do not apply.
        let beta = host
            .post_json(
                DECIDE,
                &service(&host, "beta"),
                &json!({"signal": large_pr("beta", "dev-42")}),
            )
            .await
            .json();
        assert!(reasons(&beta).contains(&"opted_out".to_owned()), "{beta}");
        let other_actor = host
            .post_json(
                DECIDE,
                &service(&host, "beta"),
                &json!({"signal": large_pr("beta", "dev-9")}),
            )
            .await
            .json();
        assert_eq!(other_actor["actions"][0]["playbook"]["id"], "large-pr");
        let c = counts(s, "acme").await;
        for disabled in ["mirror", "multiplier"] {
            let labels = vec![
                "action_type_disabled".into(),
                "large-pr".into(),
                disabled.into(),
            ];
            assert!(c.contains(&("suppressed".into(), labels, 1)), "{c:?}");
        }
    }
}

#[tokio::test]
async fn tenants_decide_and_export_only_their_own() {
    for db in backends().await {
        let host = Host::signing(db, "replica-a").await;
        for tenant in ["acme", "beta", "acme"] {
            let r = host
                .post_json(
                    DECIDE,
                    &service(&host, tenant),
                    &json!({"signal": large_pr(tenant, "dev-1")}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        // A signal of another tenant.
        host.post_json(
            DECIDE,
            &service(&host, "beta"),
            &json!({"signal": large_pr("acme", "dev-1")}),
        )
        .await
        .problem(403, "FORBIDDEN");
        // `now` is for admins.
        host.post_json(
            DECIDE,
            &service(&host, "acme"),
            &json!({"signal": large_pr("acme", "dev-1"), "now": "2026-11-24T10:00:00Z"}),
        )
        .await
        .problem(403, "FORBIDDEN");
        // Exports: a tenant's admin sees its receipts only; the operator the whole chain.
        let tenants = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| {
                    let e: Envelope = serde_json::from_str(l).unwrap();
                    let p = mmm_engine::receipt::verify_receipt(&e, &public_key()).unwrap();
                    p["tenant_id"].as_str().unwrap().to_owned()
                })
                .collect()
        };
        let beta = host.get(RECEIPTS, &host.admin("beta")).await;
        assert_eq!(tenants(&beta.text), ["beta"]);
        let acme = host.get(RECEIPTS, &host.admin("acme")).await;
        assert_eq!(tenants(&acme.text), ["acme", "acme"]);
        host.get(&format!("{RECEIPTS}?tenant=acme"), &host.admin("beta"))
            .await
            .problem(403, "FORBIDDEN");
        let all = host.get(RECEIPTS, &host.admin("*")).await;
        assert_eq!(verify_export(&all.text).len(), 3);
        let only = host
            .get(&format!("{RECEIPTS}?tenant=beta"), &host.admin("*"))
            .await;
        assert_eq!(tenants(&only.text), ["beta"]);
        // The operator decides for any tenant.
        let r = host
            .post_json(
                DECIDE,
                &host.token("*", &["service"], "platform"),
                &json!({"signal": large_pr("gamma", "dev-1")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[tokio::test]
async fn concurrent_decisions_form_one_chain_that_resumes_after_a_restart() {
    for db in backends().await {
        let host = Host::signing(db, "replica-a").await;
        let token = service(&host, "acme");
        let calls = (0..40).map(|i| {
            let host = &host;
            let token = &token;
            async move {
                host.post_json(
                    DECIDE,
                    token,
                    &json!({"signal": large_pr("acme", &format!("dev-{i}"))}),
                )
                .await
            }
        });
        let replies = futures_join_all(calls).await;
        let ids: Vec<String> = replies
            .iter()
            .map(|r| {
                assert_eq!(r.status, 200, "{}", r.text);
                r.json()["receipt"]["receipt_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let export = host.get(RECEIPTS, &host.admin("*")).await;
        let payloads = verify_export(&export.text);
        assert_eq!(payloads.len(), 40, "{}", host.db.name);
        for id in &ids {
            assert!(payloads.iter().any(|p| p["receipt_id"] == **id), "{id}");
        }
        assert_eq!(export.headers["x-mmm-last-seq"], "40");

        // Paging.
        let page = host
            .get(
                &format!("{RECEIPTS}?chain_id=replica-a&after_seq=38&limit=5"),
                &host.admin("*"),
            )
            .await;
        assert_eq!(page.text.lines().count(), 2);

        // A restart (a new host on the same store and chain) continues the chain.
        let again = Host::signing(host.db.shared(), "replica-a").await;
        let r = again
            .post_json(
                DECIDE,
                &token,
                &json!({"signal": large_pr("acme", "dev-x")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let export = again.get(RECEIPTS, &again.admin("*")).await;
        let payloads = verify_export(&export.text);
        assert_eq!(payloads.len(), 41);
        assert_eq!(payloads[40]["chain"]["seq"], 41);

        // Another replica signs its own chain; both verify.
        let other = Host::signing(host.db.shared(), "replica-b").await;
        let r = other
            .post_json(
                DECIDE,
                &token,
                &json!({"signal": large_pr("acme", "dev-y")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let export = other.get(RECEIPTS, &other.admin("*")).await;
        assert_eq!(verify_export(&export.text).len(), 42);
        let key = other
            .get("/v1/mmm/receipts/public-key", &token)
            .await
            .json();
        assert_eq!(key["public_key"], hex::encode(public_key().as_bytes()));
        assert_eq!(key["chain_id"], "replica-b");
    }
}

/// Runs the futures concurrently on this task.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let futures: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<_> = futures.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                outputs[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn without_a_signing_key_receipts_are_disabled_and_the_rest_is_recorded() {
    for db in backends().await {
        let host = Host::new(db).await;
        let s = &*host.db.store;
        s.insert_playbook(
            &crate::common::version("*", "opened", 1, mmm_engine::Status::Published),
            &audit("*", "seed"),
        )
        .await
        .unwrap();
        host.state.live.reload(s).await.unwrap();
        let r = host
            .post_json(
                DECIDE,
                &service(&host, "acme"),
                &json!({"signal": large_pr("acme", "dev-1")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let d = r.json();
        assert_eq!(
            d["receipt"],
            json!({"receipt_id": null, "status": "disabled"})
        );
        let id = d["actions"][0]["action_id"].as_str().unwrap();
        assert!(s.get_action("acme", id).await.unwrap().is_some());
        assert!(s.list_receipts(None, None, 0, 10).await.unwrap().is_empty());
        host.get("/v1/mmm/receipts/public-key", &host.admin("acme"))
            .await
            .problem(404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn the_database_going_away_answers_503() {
    for db in backends().await {
        let host = Host::signing(db, "replica-a").await;
        host.db.store.close().await;
        let r = host
            .post_json(
                DECIDE,
                &service(&host, "acme"),
                &json!({"signal": large_pr("acme", "dev-1")}),
            )
            .await;
        r.problem(503, "UNAVAILABLE");
        host.get(RECEIPTS, &host.admin("acme"))
            .await
            .problem(503, "UNAVAILABLE");
    }
}
