//! The store contract, on every backend: what later routes rely on (tenancy, conflicts,
//! stale writes, audit in the same transaction, atomic fatigue, receipt chains without
//! gaps).

use std::sync::Arc;

use jiff::Timestamp;
use mmm_engine::approval::{Approval, ApprovalError, ApprovalState};
use mmm_engine::{Duration, FatigueRequest, FatigueVerdict, Status};
use mmm_host::store::{
    Count, DeliveryTarget, ExperimentRecord, IssuedAction, NewAudit, OutcomeRecord, ReceiptRow,
    Scope, StoreError,
};
use serde_json::json;

use crate::common::{audit, backends, ts, version, NOW};

#[tokio::test]
async fn playbook_versions_conflicts_scopes_and_revisions() {
    for db in backends().await {
        let s = &*db.store;
        let r0 = s.playbook_revision().await.unwrap();
        s.insert_playbook(&version("*", "g", 1, Status::Published), &audit("*", "x"))
            .await
            .unwrap();
        let r1 = s.playbook_revision().await.unwrap();
        assert!(r1 > r0, "{}: publishing bumps the revision", db.name);
        s.insert_playbook(&version("acme", "a", 1, Status::Draft), &audit("acme", "x"))
            .await
            .unwrap();
        assert_eq!(
            s.playbook_revision().await.unwrap(),
            r1,
            "{}: a draft does not",
            db.name
        );
        s.insert_playbook(
            &version("other", "o", 1, Status::Draft),
            &audit("other", "x"),
        )
        .await
        .unwrap();
        let err = s
            .insert_playbook(&version("acme", "a", 1, Status::Draft), &audit("acme", "x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(ref m) if m.contains("`a` version 1")),
            "{}: {err:?}",
            db.name
        );

        let ids = |metas: Vec<mmm_host::store::PlaybookMeta>| -> Vec<String> {
            metas
                .into_iter()
                .map(|m| format!("{}/{}", m.tenant, m.id))
                .collect()
        };
        assert_eq!(
            ids(s.list_playbooks(Scope::Tenant("acme"), None).await.unwrap()),
            ["*/g", "acme/a"],
            "{}",
            db.name
        );
        assert_eq!(
            ids(s.list_playbooks(Scope::Only("acme"), None).await.unwrap()),
            ["acme/a"]
        );
        assert_eq!(
            ids(s.list_playbooks(Scope::All, None).await.unwrap()),
            ["*/g", "acme/a", "other/o"]
        );
        assert_eq!(
            ids(s
                .list_playbooks(Scope::Tenant("acme"), Some("g"))
                .await
                .unwrap()),
            ["*/g"]
        );

        let got = s.get_playbook("acme", "a", 1).await.unwrap().unwrap();
        assert_eq!(
            got.yaml,
            version("acme", "a", 1, Status::Draft).yaml,
            "the text is kept as authored"
        );
        assert!(
            s.get_playbook("acme", "g", 1).await.unwrap().is_none(),
            "exact tenant only"
        );

        // Status changes check the status they start from.
        let meta = s
            .set_playbook_status(
                "acme",
                "a",
                1,
                Status::Draft,
                Status::Published,
                &audit("acme", "p"),
            )
            .await
            .unwrap();
        assert_eq!(meta.status, Status::Published);
        assert!(meta.published_at.is_some());
        assert!(s.playbook_revision().await.unwrap() > r1);
        let stale = s
            .set_playbook_status(
                "acme",
                "a",
                1,
                Status::Draft,
                Status::Published,
                &audit("acme", "p"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(stale, StoreError::Conflict(_)),
            "{}: {stale:?}",
            db.name
        );
        let missing = s
            .set_playbook_status(
                "acme",
                "zz",
                1,
                Status::Draft,
                Status::Published,
                &audit("acme", "p"),
            )
            .await
            .unwrap_err();
        assert!(matches!(missing, StoreError::NotFound(_)));
        let published: Vec<String> = s
            .published_playbooks()
            .await
            .unwrap()
            .into_iter()
            .map(|v| format!("{}/{}@{}", v.meta.tenant, v.meta.id, v.meta.version))
            .collect();
        assert_eq!(published, ["*/g@1", "acme/a@1"]);

        // Only drafts are deleted.
        let err = s
            .delete_playbook_draft("acme", "a", 1, &audit("acme", "d"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
        s.delete_playbook_draft("other", "o", 1, &audit("other", "d"))
            .await
            .unwrap();
        let err = s
            .delete_playbook_draft("other", "o", 1, &audit("other", "d"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)));
    }
}

#[tokio::test]
async fn import_happens_once_and_only_into_an_empty_store() {
    for db in backends().await {
        let s = &*db.store;
        let all = [
            version("*", "a", 1, Status::Published),
            version("*", "a", 2, Status::Draft),
        ];
        assert_eq!(
            s.import_playbooks(&all, &audit("*", "import"))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            s.import_playbooks(&all, &audit("*", "import"))
                .await
                .unwrap(),
            0,
            "{}",
            db.name
        );
        assert_eq!(s.list_playbooks(Scope::All, None).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn audit_records_travel_with_their_mutation_redacted() {
    for db in backends().await {
        let s = &*db.store;
        let record = NewAudit::new(
            ts(NOW),
            "acme",
            "alice",
            "delivery.updated",
            "acme",
            json!({"ide": {"url": "https://a", "secret": "old-secret"}}),
            json!({"ide": {"url": "https://b", "secret": "new-secret"}}),
        );
        let targets = [DeliveryTarget {
            surface: "ide".into(),
            url: "https://b".into(),
            secret: "new-secret".into(),
        }];
        s.put_delivery_targets("acme", &targets, &record)
            .await
            .unwrap();
        assert_eq!(s.get_delivery_targets("acme").await.unwrap(), targets);
        assert!(s.get_delivery_targets("other").await.unwrap().is_empty());
        // A refused mutation writes no audit record.
        let _ = s
            .insert_playbook(
                &version("acme", "a", 1, Status::Draft),
                &audit("acme", "created"),
            )
            .await;
        let refused = s
            .insert_playbook(
                &version("acme", "a", 1, Status::Draft),
                &audit("acme", "created-again"),
            )
            .await;
        assert!(refused.is_err());
        s.append_audit(&audit("other", "elsewhere")).await.unwrap();

        let log = s
            .list_audit(Scope::Only("acme"), ts(NOW), 0, 100)
            .await
            .unwrap();
        let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["delivery.updated", "created"], "{}", db.name);
        let first = &log[0];
        assert_eq!(first.sub, "alice");
        assert_eq!(
            first.after,
            json!({"ide": {"url": "https://b", "secret": "[redacted]"}})
        );
        assert!(
            !format!("{log:?}").contains("secret\": \"new"),
            "no secret in the log"
        );
        // Paging and time.
        let after = s
            .list_audit(Scope::Only("acme"), ts(NOW), first.id, 100)
            .await
            .unwrap();
        assert_eq!(after.len(), 1);
        assert!(s
            .list_audit(Scope::Only("acme"), ts("2026-11-23T00:00:00Z"), 0, 100)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            s.list_audit(Scope::All, ts(NOW), 0, 100)
                .await
                .unwrap()
                .len(),
            3
        );
    }
}

#[tokio::test]
async fn experiments_preferences_and_policies_refuse_stale_writes() {
    for db in backends().await {
        let s = &*db.store;
        let exp = ExperimentRecord {
            tenant: "acme".into(),
            id: "copy".into(),
            status: "active".into(),
            yaml: "kind: Experiment\n".into(),
            author: "alice".into(),
            revision: 0,
            created_at: ts(NOW),
            updated_at: ts(NOW),
        };
        let r0 = s.playbook_revision().await.unwrap();
        assert_eq!(
            s.insert_experiment(&exp, &audit("acme", "e"))
                .await
                .unwrap()
                .revision,
            1
        );
        assert!(
            s.playbook_revision().await.unwrap() > r0,
            "experiments are part of the set"
        );
        assert!(matches!(
            s.insert_experiment(&exp, &audit("acme", "e")).await,
            Err(StoreError::Conflict(_))
        ));
        let updated = s
            .update_experiment(
                "acme",
                "copy",
                1,
                "kind: Experiment # 2\n",
                "paused",
                &audit("acme", "u"),
            )
            .await
            .unwrap();
        assert_eq!((updated.revision, updated.status.as_str()), (2, "paused"));
        let stale = s
            .update_experiment("acme", "copy", 1, "x", "active", &audit("acme", "u"))
            .await
            .unwrap_err();
        assert!(
            matches!(stale, StoreError::Conflict(ref m) if m.contains("stale")),
            "{}: {stale:?}",
            db.name
        );
        assert!(s.get_experiment("other", "copy").await.unwrap().is_none());
        assert_eq!(
            s.list_experiments(Scope::Tenant("acme"))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(s
            .list_experiments(Scope::Tenant("other"))
            .await
            .unwrap()
            .is_empty());

        let prefs = json!({"opt_out_categories": ["style"]});
        let v1 = s
            .put_preferences("acme", "dev-1", &prefs, Some(0), &audit("acme", "p"))
            .await
            .unwrap();
        assert_eq!(v1.revision, 1);
        assert!(matches!(
            s.put_preferences("acme", "dev-1", &prefs, Some(0), &audit("acme", "p"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        let v2 = s
            .put_preferences("acme", "dev-1", &json!({}), None, &audit("acme", "p"))
            .await
            .unwrap();
        assert_eq!(v2.revision, 2);
        assert_eq!(
            s.get_preferences("acme", "dev-1")
                .await
                .unwrap()
                .unwrap()
                .value,
            json!({})
        );
        assert!(s.get_preferences("other", "dev-1").await.unwrap().is_none());

        let policy = json!({"max_actions_per_decision": 2});
        s.put_tenant_policy("acme", &policy, None, &audit("acme", "t"))
            .await
            .unwrap();
        assert!(matches!(
            s.put_tenant_policy("acme", &policy, Some(7), &audit("acme", "t"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            s.get_tenant_policy("acme").await.unwrap().unwrap().value,
            policy
        );
        assert!(s.get_tenant_policy("other").await.unwrap().is_none());
    }
}

fn approval(tenant: &str, id: &str) -> Approval {
    Approval {
        approval_id: id.into(),
        action_id: format!("act-{id}"),
        tenant_id: tenant.into(),
        actor_id: "dev-1".into(),
        operation: Some("split_pr".into()),
        state: ApprovalState::Pending,
        created_at: ts(NOW),
        expires_at: ts("2026-11-23T10:00:00Z"),
        grants: vec![],
        rejection: None,
    }
}

#[tokio::test]
async fn actions_and_approvals_are_per_tenant_and_updated_atomically() {
    for db in backends().await {
        let s = &*db.store;
        let action = IssuedAction {
            action_id: "act-1".into(),
            tenant: "acme".into(),
            actor_id: "dev-1".into(),
            playbook_id: "large-pr".into(),
            playbook_version: 3,
            action_type: "multiplier".into(),
            experiment: Some(("copy".into(), "concise".into())),
            decided_at: ts(NOW),
        };
        s.record_actions(&[action.clone(), action.clone()])
            .await
            .unwrap();
        assert_eq!(s.get_action("acme", "act-1").await.unwrap(), Some(action));
        assert!(
            s.get_action("other", "act-1").await.unwrap().is_none(),
            "{}",
            db.name
        );

        s.insert_approval(&approval("acme", "ap-1")).await.unwrap();
        assert!(matches!(
            s.insert_approval(&approval("acme", "ap-1")).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(s.get_approval("other", "ap-1").await.unwrap().is_none());
        assert_eq!(
            s.get_approval_for_action("acme", "act-ap-1")
                .await
                .unwrap()
                .unwrap()
                .approval_id,
            "ap-1"
        );
        let next = s
            .update_approval("acme", "ap-1", &mut |a| {
                Ok(Approval {
                    state: ApprovalState::PartiallyApproved,
                    ..a.clone()
                })
            })
            .await
            .unwrap();
        assert_eq!(next.state, ApprovalState::PartiallyApproved);
        let refused = s
            .update_approval("acme", "ap-1", &mut |_| {
                Err(ApprovalError::SameChannel("ide".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(refused, ApprovalError::SameChannel("ide".into()));
        assert_eq!(
            s.get_approval("acme", "ap-1").await.unwrap().unwrap().state,
            ApprovalState::PartiallyApproved,
            "a refused change leaves the record as it was"
        );
        assert!(matches!(
            s.update_approval("other", "ap-1", &mut |a| Ok(a.clone()))
                .await,
            Err(ApprovalError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn outcomes_count_once_and_counters_are_aggregates_over_time() {
    for db in backends().await {
        let s = &*db.store;
        let outcome = OutcomeRecord {
            action_id: "act-1".into(),
            tenant: "acme".into(),
            playbook_id: "large-pr".into(),
            action_type: "mirror".into(),
            result: "accepted".into(),
            at: ts(NOW),
        };
        let counts = [Count {
            metric: "outcomes".into(),
            labels: vec!["large-pr".into(), "mirror".into(), "accepted".into()],
            n: 1,
        }];
        assert!(s.record_outcome(&outcome, &counts).await.unwrap());
        assert!(
            !s.record_outcome(&outcome, &counts).await.unwrap(),
            "a repeat changes nothing"
        );
        s.add_counts(
            "acme",
            ts("2026-11-22T10:30:00Z"),
            &[Count {
                metric: "decisions".into(),
                labels: vec![],
                n: 2,
            }],
        )
        .await
        .unwrap();
        s.add_counts(
            "acme",
            ts("2026-11-22T12:00:00Z"),
            &[Count {
                metric: "decisions".into(),
                labels: vec![],
                n: 5,
            }],
        )
        .await
        .unwrap();
        s.add_counts(
            "other",
            ts(NOW),
            &[Count {
                metric: "decisions".into(),
                labels: vec![],
                n: 100,
            }],
        )
        .await
        .unwrap();
        let window = s
            .counts(
                "acme",
                None,
                ts("2026-11-22T10:00:00Z"),
                ts("2026-11-22T11:00:00Z"),
            )
            .await
            .unwrap();
        assert_eq!(
            window,
            [
                Count {
                    metric: "decisions".into(),
                    labels: vec![],
                    n: 2
                },
                counts[0].clone(),
            ],
            "{}",
            db.name
        );
        let decisions = s
            .counts(
                "acme",
                Some("decisions"),
                ts("2026-11-22T00:00:00Z"),
                ts("2026-11-23T00:00:00Z"),
            )
            .await
            .unwrap();
        assert_eq!(decisions[0].n, 7);
        let too_many = Count {
            metric: "x".into(),
            labels: vec!["a".into(); 4],
            n: 1,
        };
        assert!(s.add_counts("acme", ts(NOW), &[too_many]).await.is_err());
    }
}

fn receipt(chain: &str, seq: u64, tenant: &str) -> ReceiptRow {
    ReceiptRow {
        chain_id: chain.into(),
        seq,
        receipt_id: format!("{chain}-{seq}"),
        tenant: tenant.into(),
        envelope: format!("{{\"seq\":{seq}}}"),
        stored_at: ts(NOW),
    }
}

#[tokio::test]
async fn receipt_chains_grow_without_gaps_and_resume() {
    for db in backends().await {
        let s = &*db.store;
        s.append_receipts(&[receipt("r1", 1, "acme"), receipt("r1", 2, "other")])
            .await
            .unwrap();
        s.append_receipts(&[receipt("r2", 1, "acme")])
            .await
            .unwrap();
        // A gap, a repeat or a duplicate id stores nothing of the batch.
        let gap = s
            .append_receipts(&[receipt("r1", 3, "acme"), receipt("r1", 5, "acme")])
            .await
            .unwrap_err();
        assert!(
            matches!(gap, StoreError::Conflict(ref m) if m.contains("expects 4")),
            "{}: {gap:?}",
            db.name
        );
        assert!(matches!(
            s.append_receipts(&[receipt("r1", 2, "acme")]).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            s.chain_head("r1").await.unwrap().unwrap().seq,
            2,
            "{}",
            db.name
        );
        assert!(s.chain_head("nope").await.unwrap().is_none());
        let chains: Vec<(String, u64)> = s
            .chains()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.chain_id, c.last_seq))
            .collect();
        assert_eq!(chains, [("r1".to_owned(), 2), ("r2".to_owned(), 1)]);
        let all: Vec<String> = s
            .list_receipts(None, None, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.receipt_id)
            .collect();
        assert_eq!(all, ["r1-1", "r1-2", "r2-1"]);
        let acme: Vec<String> = s
            .list_receipts(Some("acme"), None, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.receipt_id)
            .collect();
        assert_eq!(acme, ["r1-1", "r2-1"]);
        let after: Vec<String> = s
            .list_receipts(None, Some("r1"), 1, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.receipt_id)
            .collect();
        assert_eq!(after, ["r1-2"]);
        assert_eq!(s.unforwarded_receipts(10).await.unwrap().len(), 3);
        s.mark_forwarded(&["r1-1".into(), "r2-1".into()], ts(NOW))
            .await
            .unwrap();
        let left: Vec<String> = s
            .unforwarded_receipts(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.receipt_id)
            .collect();
        assert_eq!(left, ["r1-2"]);
    }
}

#[tokio::test]
async fn a_signal_is_decided_once_a_day() {
    for db in backends().await {
        let s = &*db.store;
        assert!(s
            .mark_signal_decided("acme", "sig-1", ts(NOW))
            .await
            .unwrap());
        assert!(
            !s.mark_signal_decided("acme", "sig-1", ts("2026-11-23T09:59:59Z"))
                .await
                .unwrap(),
            "{}",
            db.name
        );
        assert!(
            s.mark_signal_decided("other", "sig-1", ts(NOW))
                .await
                .unwrap(),
            "per tenant"
        );
        assert!(
            s.mark_signal_decided("acme", "sig-1", ts("2026-11-23T10:00:00Z"))
                .await
                .unwrap(),
            "after 24 h again"
        );
        assert_eq!(
            s.prune_decided_signals(ts("2026-11-23T00:00:00Z"))
                .await
                .unwrap(),
            1
        );
    }
}

fn fatigue(now: Timestamp, max: Option<(u32, Duration)>) -> FatigueRequest<'static> {
    FatigueRequest {
        tenant_id: "acme",
        actor_id: "dev-1",
        playbook_id: "large-pr",
        now,
        actions: 1,
        cooldown: None,
        max,
        budget: None,
        critical: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fatigue_checks_never_both_pass_a_limit_of_one() {
    for db in backends().await {
        let store = Arc::clone(&db.store);
        let day = Duration::parse("1d").unwrap();
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .fatigue_check_and_record(&fatigue(ts(NOW), Some((1, day))))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            if t.await.unwrap() == FatigueVerdict::Allowed(1) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 1, "{}: exactly one of 40 passes `max: 1`", db.name);
        // History survives in the store: a cooldown counts a firing recorded elsewhere.
        store
            .fatigue_record("acme", "dev-2", "large-pr", ts(NOW), 1)
            .await
            .unwrap();
        let cooldown = FatigueRequest {
            actor_id: "dev-2",
            cooldown: Some(Duration::parse("1h").unwrap()),
            ..fatigue(ts("2026-11-22T10:30:00Z"), None)
        };
        assert_eq!(
            store.fatigue_check_and_record(&cooldown).await.unwrap(),
            FatigueVerdict::Cooldown
        );
        let later = FatigueRequest {
            now: ts("2026-11-22T11:00:00Z"),
            ..cooldown
        };
        assert_eq!(
            store.fatigue_check_and_record(&later).await.unwrap(),
            FatigueVerdict::Allowed(1)
        );
    }
}

/// A rolled-back image opens a database a newer image migrated further (its migrations
/// are additive by rule): an applied migration the binary does not know is no reason to
/// refuse to start.
#[tokio::test]
async fn an_older_binary_opens_a_database_a_newer_one_migrated() {
    use mmm_host::store::postgres::PgStore;
    use mmm_host::store::sqlite::SqliteStore;
    const NEWER: &str = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99990101000000, 'from a newer image', TRUE, '\\x00', 1)";

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mmm.db").display());
    drop(SqliteStore::connect(&url).await.unwrap());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(&NEWER.replace("'\\x00'", "x'00'"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    SqliteStore::connect(&url)
        .await
        .expect("the older binary opens the newer SQLite database");

    let Ok(pg) = std::env::var("MMM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "MMM_TEST_POSTGRES_URL is not set under CI=true"
        );
        return;
    };
    let schema = format!("mmm_test_rollback_{}", std::process::id());
    let store = PgStore::connect(&pg, Some(&schema)).await.unwrap();
    sqlx::query(&NEWER.replace("'\\x00'", "'\\x00'::bytea"))
        .execute(store.pool())
        .await
        .unwrap();
    drop(store);
    let reopened = PgStore::connect(&pg, Some(&schema)).await.map(drop);
    let admin = sqlx::PgPool::connect(&pg).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    reopened.expect("the older binary opens the newer PostgreSQL schema");
}
