//! Experiments: stored as authored, versioned, activated into the live set the engine
//! decides with (and out again), with per-variant exposures and outcomes; isolated per
//! tenant.

use axum::http::{header, Method, StatusCode};
use jiff::Timestamp;
use mmm_engine::{DecideOptions, Status};
use mmm_host::routes::experiments::exposure_counts;
use mmm_host::routes::tenants::decision_counts;
use mmm_host::store::{IssuedAction, Scope};
use serde_json::{json, Value};

use crate::common::{audit, hosts, version, Host};

const P: &str = "/v1/mmm";

pub fn experiment_yaml(tenant: &str, id: &str, status: &str, variants: &str) -> String {
    format!(
        "apiVersion: mmm/v1\nkind: Experiment\nmetadata: {{id: {id}, tenant: \"{tenant}\", status: {status}}}\nspec:\n  playbook: pb\n  strategy: fixed\n  success_outcomes: [accepted]\n  variants:\n{variants}"
    )
}

pub const TWO: &str = "    - {name: control, weight: 50}\n    - {name: concise, weight: 50, set: {title: \"Short\"}}\n";
const HOLDOUT: &str = "    - {name: hold, weight: 1, holdout: true}\n";
const CONCISE: &str = "    - {name: concise, weight: 1, set: {title: \"Short\"}}\n";

pub async fn seed(host: &Host) {
    let s = &*host.db.store;
    s.insert_playbook(
        &version("acme", "pb", 1, Status::Published),
        &audit("acme", "seed"),
    )
    .await
    .unwrap();
    s.insert_playbook(
        &version("other", "pb", 1, Status::Published),
        &audit("other", "seed"),
    )
    .await
    .unwrap();
    host.state.live.reload(s).await.unwrap();
}

fn signal(tenant: &str, actor: &str) -> Value {
    json!({"tenant_id": tenant, "actor_id": actor, "actor_type": "human", "kind": "pr.opened",
           "source": "scm", "occurred_at": "2026-11-22T09:59:00Z", "repo": {"id": "r", "branch": "main"},
           "payload": {}})
}

fn decide(host: &Host, tenant: &str, actor: &str) -> mmm_engine::Decision {
    host.state
        .live
        .engine()
        .decide(&signal(tenant, actor), None, &DecideOptions::default())
        .unwrap()
}

async fn put_yaml(
    host: &Host,
    uri: &str,
    token: &str,
    yaml: &str,
    if_match: Option<&str>,
) -> crate::common::Reply {
    let headers: Vec<(&str, &str)> = if_match.map(|t| ("if-match", t)).into_iter().collect();
    host.call_with(
        Method::PUT,
        uri,
        Some(token),
        &headers,
        Some("application/yaml"),
        yaml.to_owned(),
    )
    .await
}

#[tokio::test]
async fn an_experiment_goes_from_draft_to_live_and_back() {
    for host in hosts().await {
        seed(&host).await;
        let author = host.token("acme", &["author"], "alice");
        let admin = host.admin("acme");

        let created = host
            .post_yaml(
                &format!("{P}/experiments"),
                &author,
                &experiment_yaml("acme", "copy", "paused", TWO),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        assert_eq!(
            created.headers[header::LOCATION],
            "/v1/mmm/experiments/copy"
        );
        assert_eq!(created.headers[header::ETAG], "\"1\"");
        let body = created.json();
        assert_eq!(
            (body["status"].as_str(), body["playbook"].as_str()),
            (Some("paused"), Some("pb"))
        );
        assert_eq!(body["variants"][1]["name"], "concise");
        assert_eq!(body["variants"][1]["exposures"], 0);
        host.post_yaml(
            &format!("{P}/experiments"),
            &author,
            &experiment_yaml("acme", "copy", "paused", TWO),
        )
        .await
        .problem(409, "CONFLICT");
        let active = host
            .post_yaml(
                &format!("{P}/experiments"),
                &author,
                &experiment_yaml("acme", "other-copy", "active", TWO),
            )
            .await;
        assert_eq!(
            active.problem(422, "PLAYBOOK_INVALID")["errors"][0]["field"],
            "metadata.status"
        );

        // Replace with If-Match; a stale tag is refused.
        let uri = format!("{P}/experiments/copy");
        let r = put_yaml(
            &host,
            &uri,
            &author,
            &experiment_yaml("acme", "copy", "paused", CONCISE),
            Some("\"1\""),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.headers[header::ETAG], "\"2\"");
        put_yaml(
            &host,
            &uri,
            &author,
            &experiment_yaml("acme", "copy", "paused", TWO),
            Some("\"1\""),
        )
        .await
        .problem(409, "CONFLICT");
        assert_eq!(
            host.get(&uri, &author).await.json()["variants"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // Authors do not activate; admins do, and the engine decides with it at once.
        host.post(&format!("{uri}/activate"), &author)
            .await
            .problem(403, "FORBIDDEN");
        assert!(host
            .state
            .live
            .engine()
            .playbooks()
            .experiment_for("acme", "pb")
            .is_none());
        let r = host.post(&format!("{uri}/activate"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["status"], "active");
        let set = host.state.live.engine().playbooks();
        let live = set
            .experiment_for("acme", "pb")
            .expect("active experiment in the live set");
        assert_eq!(live.id, "copy");
        assert!(
            set.experiment_for("other", "pb").is_none(),
            "acme's experiment is acme's"
        );
        let decision = decide(&host, "acme", "dev-1");
        assert_eq!(decision.actions[0].title, "Short", "{decision:?}");
        assert_eq!(
            decision.actions[0].experiment.as_ref().unwrap().variant,
            "concise"
        );
        assert_eq!(decide(&host, "other", "dev-1").actions[0].title, "Opened");

        // Exposures and outcomes per variant, as the decide and outcome routes count them.
        let counts = decision_counts(&decision);
        host.db
            .store
            .add_counts("acme", Timestamp::now(), &counts)
            .await
            .unwrap();
        let action = &decision.actions[0];
        host.db
            .store
            .record_actions(&[IssuedAction {
                action_id: action.action_id.to_string(),
                tenant: "acme".into(),
                actor_id: "dev-1".into(),
                playbook_id: "pb".into(),
                playbook_version: 1,
                action_type: "mirror".into(),
                experiment: Some(("copy".into(), "concise".into())),
                decided_at: Timestamp::now(),
            }])
            .await
            .unwrap();
        let service = host.token("acme", &["service"], "ide-backend");
        let r = host
            .json(
                Method::POST,
                &format!("{P}/actions/{}/outcome", action.action_id),
                &service,
                &json!({"result": "accepted"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let detail = host.get(&uri, &author).await.json();
        assert_eq!(detail["variants"][0]["exposures"], 1, "{detail}");
        assert_eq!(detail["variants"][0]["outcomes"], json!({"accepted": 1}));
        assert_eq!(detail["variants"][0]["successes"], 1);
        // Another tenant sees its own statistics (none), never acme's.
        let other_view = host
            .get(&format!("{P}/experiments"), &host.admin("other"))
            .await
            .json();
        assert_eq!(other_view["experiments"], json!([]));

        // An active experiment is not edited; activating twice is a conflict.
        put_yaml(
            &host,
            &uri,
            &author,
            &experiment_yaml("acme", "copy", "paused", TWO),
            None,
        )
        .await
        .problem(409, "CONFLICT");
        host.post(&format!("{uri}/activate"), &admin)
            .await
            .problem(409, "CONFLICT");

        // Deactivate: the playbook acts as written again.
        let r = host.post(&format!("{uri}/deactivate"), &admin).await;
        assert_eq!(r.json()["status"], "paused", "{}", r.text);
        assert!(host
            .state
            .live
            .engine()
            .playbooks()
            .experiment_for("acme", "pb")
            .is_none());
        assert_eq!(decide(&host, "acme", "dev-1").actions[0].title, "Opened");
        host.post(&format!("{uri}/deactivate"), &admin)
            .await
            .problem(409, "CONFLICT");

        let actions: Vec<String> = host
            .db
            .store
            .list_audit(Scope::Only("acme"), Timestamp::UNIX_EPOCH, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.action.starts_with("experiment."))
            .map(|a| format!("{} {}", a.action, a.sub))
            .collect();
        assert_eq!(
            actions,
            [
                "experiment.created alice",
                "experiment.updated alice",
                "experiment.activated admin@acme",
                "experiment.deactivated admin@acme",
            ]
        );
    }
}

#[tokio::test]
async fn a_holdout_exposure_is_counted_from_the_decision() {
    for host in hosts().await {
        seed(&host).await;
        let admin = host.admin("acme");
        host.post_yaml(
            &format!("{P}/experiments"),
            &admin,
            &experiment_yaml("acme", "hold-all", "paused", HOLDOUT),
        )
        .await;
        let r = host
            .post(&format!("{P}/experiments/hold-all/activate"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let decision = decide(&host, "acme", "dev-1");
        assert!(decision.actions.is_empty(), "{decision:?}");
        let counts = exposure_counts(&decision);
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(
            (counts[0].metric.as_str(), counts[0].labels.clone()),
            ("exposures", vec!["hold-all".to_owned(), "hold".to_owned()])
        );
        // A decision outside any experiment exposes no one.
        assert!(exposure_counts(&decide(&host, "other", "dev-1")).is_empty());
    }
}

#[tokio::test]
async fn activation_follows_the_live_sets_rules() {
    for host in hosts().await {
        seed(&host).await;
        let admin = host.admin("acme");
        // A playbook with no published version for the tenant.
        let yaml = experiment_yaml("acme", "ghost", "paused", TWO)
            .replace("playbook: pb", "playbook: missing");
        assert_eq!(
            host.post_yaml(&format!("{P}/experiments"), &admin, &yaml)
                .await
                .status,
            StatusCode::CREATED
        );
        let r = host
            .post(&format!("{P}/experiments/ghost/activate"), &admin)
            .await;
        assert!(r.problem(409, "CONFLICT")["detail"]
            .as_str()
            .unwrap()
            .contains("no published version"));
        // One active experiment per playbook and tenant.
        for id in ["first", "second"] {
            host.post_yaml(
                &format!("{P}/experiments"),
                &admin,
                &experiment_yaml("acme", id, "paused", TWO),
            )
            .await;
        }
        assert_eq!(
            host.post(&format!("{P}/experiments/first/activate"), &admin)
                .await
                .status,
            StatusCode::OK
        );
        host.post(&format!("{P}/experiments/second/activate"), &admin)
            .await
            .problem(409, "CONFLICT");
        // A lint warning is allowed in a stored experiment, not in an active one.
        let warned = experiment_yaml(
            "acme",
            "warned",
            "paused",
            "    - {name: a, weight: 1, set: {text: \"You should split this.\"}}\n",
        );
        let r = host
            .post_yaml(&format!("{P}/experiments"), &admin, &warned)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.json()["warnings"][0]["rule"], "prescriptive-wording");
        host.post(&format!("{P}/experiments/first/deactivate"), &admin)
            .await;
        host.post(&format!("{P}/experiments/warned/activate"), &admin)
            .await
            .problem(422, "PLAYBOOK_INVALID");
        // A replica follows: a second host on the same store loads the active experiment.
        assert_eq!(
            host.post(&format!("{P}/experiments/second/activate"), &admin)
                .await
                .status,
            StatusCode::OK
        );
        let replica = Host::new_on(&host).await;
        assert_eq!(
            replica
                .state
                .live
                .engine()
                .playbooks()
                .experiment_for("acme", "pb")
                .unwrap()
                .id,
            "second"
        );
    }
}

#[tokio::test]
async fn experiments_are_isolated_per_tenant() {
    for host in hosts().await {
        seed(&host).await;
        let admin = host.admin("acme");
        host.post_yaml(
            &format!("{P}/experiments"),
            &admin,
            &experiment_yaml("acme", "copy", "paused", TWO),
        )
        .await;
        let other = host.token("other", &["admin", "author"], "mallory");
        let uri = format!("{P}/experiments/copy");
        host.get(&uri, &other).await.problem(404, "NOT_FOUND");
        put_yaml(
            &host,
            &uri,
            &other,
            &experiment_yaml("other", "copy", "paused", TWO),
            None,
        )
        .await
        .problem(404, "NOT_FOUND");
        host.post(&format!("{uri}/activate"), &other)
            .await
            .problem(404, "NOT_FOUND");
        host.post(&format!("{uri}/deactivate"), &other)
            .await
            .problem(404, "NOT_FOUND");
        assert_eq!(
            host.get(&format!("{P}/experiments"), &other).await.json()["experiments"],
            json!([])
        );
        // Naming acme: in the document, or with ?tenant=.
        host.post_yaml(
            &format!("{P}/experiments"),
            &other,
            &experiment_yaml("acme", "sneaky", "paused", TWO),
        )
        .await
        .problem(403, "FORBIDDEN");
        host.get(&format!("{P}/experiments?tenant=acme"), &other)
            .await
            .problem(403, "FORBIDDEN");
        host.get(&format!("{uri}?tenant=acme"), &other)
            .await
            .problem(403, "FORBIDDEN");
        // Global experiments are written by the platform operator only.
        host.post_yaml(
            &format!("{P}/experiments"),
            &admin,
            &experiment_yaml("*", "everyone", "paused", TWO),
        )
        .await
        .problem(403, "FORBIDDEN");
        let operator = host.token("*", &["admin"], "ops");
        let r = host
            .post_yaml(
                &format!("{P}/experiments"),
                &operator,
                &experiment_yaml("*", "everyone", "paused", TWO),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let listed = host.get(&format!("{P}/experiments"), &other).await.json();
        assert_eq!(
            listed["experiments"][0]["id"], "everyone",
            "global ones are everyone's"
        );
        assert_eq!(listed["experiments"].as_array().unwrap().len(), 1);
        host.post(&format!("{P}/experiments/everyone/activate"), &other)
            .await
            .problem(403, "FORBIDDEN");
    }
}

#[tokio::test]
async fn a_stored_experiment_that_no_longer_fits_is_left_out_not_fatal() {
    for host in hosts().await {
        seed(&host).await;
        let admin = host.admin("acme");
        host.post_yaml(
            &format!("{P}/experiments"),
            &admin,
            &experiment_yaml("acme", "copy", "paused", TWO),
        )
        .await;
        assert_eq!(
            host.post(&format!("{P}/experiments/copy/activate"), &admin)
                .await
                .status,
            StatusCode::OK
        );
        // Its playbook is deprecated: the set reloads without the experiment.
        let r = host
            .post(&format!("{P}/playbooks/pb/versions/1/deprecate"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let set = host.state.live.engine().playbooks();
        assert!(set.live_for("acme", "pb").is_none());
        assert!(set.experiment_for("acme", "pb").is_none());
        assert_eq!(
            host.state.live.revision(),
            Some(host.db.store.playbook_revision().await.unwrap())
        );
        // A stored active record whose text names another experiment is left out too.
        let now = Timestamp::now();
        host.db
            .store
            .insert_experiment(
                &mmm_host::store::ExperimentRecord {
                    tenant: "other".into(),
                    id: "renamed".into(),
                    status: "active".into(),
                    yaml: experiment_yaml("other", "original", "active", TWO),
                    author: "x".into(),
                    revision: 1,
                    created_at: now,
                    updated_at: now,
                },
                &audit("other", "seed"),
            )
            .await
            .unwrap();
        host.state.live.reload(&*host.db.store).await.unwrap();
        let set = host.state.live.engine().playbooks();
        assert!(set.experiments().is_empty());
        assert_eq!(
            set.live_for("other", "pb").unwrap().version,
            1,
            "the rest still serves"
        );
        // The detail of a paused experiment whose playbook is gone still shows.
        let r = host.get(&format!("{P}/experiments/copy"), &admin).await;
        assert_eq!(
            (r.status, r.json()["status"].as_str()),
            (StatusCode::OK, Some("active"))
        );
    }
}

/// A following replica picks up an activation by itself, as it does a publish (on
/// PostgreSQL through the `NOTIFY`, the poll set to a minute; on SQLite the poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_replica_picks_up_an_activation_by_itself() {
    for host in hosts().await {
        seed(&host).await;
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
        let admin = host.admin("acme");
        host.post_yaml(
            &format!("{P}/experiments"),
            &admin,
            &experiment_yaml("acme", "copy", "paused", CONCISE),
        )
        .await;
        let r = host
            .post(&format!("{P}/experiments/copy/activate"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // Real time: the follower is a background task on real time: polled, bounded only to catch a hang.
        let started = std::time::Instant::now();
        while other
            .state
            .live
            .engine()
            .playbooks()
            .experiment_for("acme", "pb")
            .is_none()
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{}: the other replica did not follow within 5 s",
                host.db.name
            );
            // Real time: the follower is a background task on real time: polled, bounded only to catch a hang.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(decide(&other, "acme", "dev-1").actions[0].title, "Short");
        other.state.shutdown.begin();
        follower.await.unwrap();
    }
}
