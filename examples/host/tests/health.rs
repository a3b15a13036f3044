//! Health, readiness, metrics; request ids.

use axum::http::StatusCode;

use crate::common::{backends, sqlite, Host};

#[tokio::test]
async fn health_ready_and_metrics_need_no_token() {
    for db in backends().await {
        let name = db.name;
        let host = Host::new(db).await;
        let health = host.get("/v1/mmm/health", "").await;
        assert_eq!(
            (health.status, health.json()["status"].as_str()),
            (StatusCode::OK, Some("ok"))
        );
        let ready = host.get("/v1/mmm/ready", "").await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
        assert_eq!(ready.json()["database"], name);
        let _ = host.get("/v1/mmm/playbooks", "").await;
        let metrics = host.get("/v1/mmm/metrics", "").await;
        assert!(metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        assert!(
            metrics.text.contains("mmm_http_requests_total{method=\"GET\",route=\"/v1/mmm/playbooks\",status=\"401\"} 1"),
            "{}",
            metrics.text
        );
        assert!(metrics.text.contains("mmm_playbook_set_revision"));
    }
}

#[tokio::test]
async fn not_ready_until_the_set_is_loaded() {
    let db = sqlite().await;
    let key = mmm_host::auth::LocalKey::from_seed([1; 32]);
    let verifier = mmm_host::auth::Verifier::new(
        mmm_host::auth::KeySet::fixed(vec![key.verification_key()]),
        None,
        None,
    );
    let state = mmm_host::AppState::new(db.store.clone(), verifier, mmm_host::Settings::default());
    let app = mmm_host::app(state.clone());
    let ask = || async {
        let r = tower::ServiceExt::oneshot(
            app.clone(),
            axum::http::Request::get("/v1/mmm/ready")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        r.status()
    };
    assert_eq!(ask().await, StatusCode::SERVICE_UNAVAILABLE);
    state.live.reload(&*db.store).await.unwrap();
    assert_eq!(ask().await, StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_returned() {
    let host = Host::new(sqlite().await).await;
    let r = tower::ServiceExt::oneshot(
        host.app.clone(),
        axum::http::Request::get("/v1/mmm/health")
            .header("x-request-id", "req-42")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42");
    let made = host.get("/v1/mmm/health", "").await;
    assert_eq!(made.headers["x-request-id"].len(), 36, "a UUID");
}

#[tokio::test]
async fn a_database_gone_makes_ready_and_routes_answer_503_not_500() {
    for db in backends().await {
        let name = db.name;
        let host = Host::new(db).await;
        let token = host.admin("acme");
        host.db.store.close().await;
        let ready = host.get("/v1/mmm/ready", "").await;
        let body = ready.problem(503, "UNAVAILABLE");
        assert!(
            body["detail"].as_str().unwrap().contains("database"),
            "{name}: {body}"
        );
        let list = host.get("/v1/mmm/playbooks", &token).await;
        list.problem(503, "UNAVAILABLE");
        assert!(
            !list.text.contains("pool"),
            "{name}: no internals: {}",
            list.text
        );
    }
}

#[tokio::test]
async fn responses_are_compressed_when_the_client_accepts_it() {
    let host = Host::new(sqlite().await).await;
    let r = tower::ServiceExt::oneshot(
        host.app.clone(),
        axum::http::Request::get("/v1/mmm/openapi.json")
            .header("accept-encoding", "gzip")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let plain = host.get("/v1/mmm/openapi.json", "").await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert!(plain.json()["paths"].is_object());
}
