//! The console's foundation and preference centre (issue 12): sign-in by token, the
//! session cookie's attributes, CSRF and origin checks on every form, errors as pages,
//! and each preference change — seen by the next decision and in the audit log.

use axum::http::{header, StatusCode};
use jiff::Timestamp;
use mmm_host::store::Scope;
use serde_json::{json, Value};

use crate::common::{backends, sqlite, Browser, Host};

fn large_pr(actor: &str) -> Value {
    json!({"tenant_id": "demo", "actor_id": actor, "kind": "pr.opened", "source": "scm",
           "occurred_at": "2026-11-24T10:00:00Z", "surface": "pr_comment",
           "repo": {"id": "demo/api", "branch": "feat/x"},
           "payload": {"lines_changed": 420, "files_changed": 12}})
}

/// The reasons the decision gave `large-pr`'s actions.
async fn large_pr_outcome(host: &Host, actor: &str) -> (usize, Vec<String>) {
    let token = host.token("demo", &["service"], "bot");
    let reply = host
        .post_json(
            "/v1/mmm/decide",
            &token,
            &json!({"signal": large_pr(actor)}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let decision = reply.json();
    let acted = decision["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["playbook"]["id"] == "large-pr")
        .count();
    let reasons = decision["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["playbook"]["id"] == "large-pr")
        .map(|s| s["reason"].as_str().unwrap().to_owned())
        .collect();
    (acted, reasons)
}

/// An actor's stored preferences (they must exist).
async fn stored(host: &Host, actor: &str) -> Value {
    host.db
        .store
        .get_preferences("demo", actor)
        .await
        .unwrap()
        .expect("stored preferences")
        .value
}

fn developer(host: &Host, actor: &str) -> String {
    host.token("demo", &["developer"], actor)
}

#[tokio::test]
async fn signing_in_with_a_token_sets_a_strict_http_only_session_cookie() {
    let host = Host::new(sqlite().await).await;
    let mut b = Browser::new(&host);
    // Without a session, every page leads to the sign-in page.
    let reply = b.get("/ui/preferences").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers[header::LOCATION], "/ui/signin");
    let page = b.get("/ui/signin").await;
    assert!(page.text.contains("id=\"signin-token\""), "{}", page.text);
    assert!(
        !page.text.contains("signin-oidc"),
        "no provider is configured"
    );
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let reply = b
        .post_form("/ui/signin", &[("token", &developer(&host, "dev-1"))])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("mmm_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "plain http: {session}");
    let home = b.get("/ui/").await;
    assert!(
        home.text
            .contains("<span id=\"whoami\">dev-1 · demo</span>"),
        "{}",
        home.text
    );
    // A developer sees only their preferences in the navigation.
    assert!(home.text.contains("nav-preferences"));
    for admin_only in ["nav-explorer", "nav-playbooks", "nav-overview"] {
        assert!(!home.text.contains(admin_only), "{admin_only}");
    }
}

#[tokio::test]
async fn behind_tls_the_session_cookie_is_secure() {
    let host = Host::new(sqlite().await).await;
    let mut b = Browser::new(&host);
    b.get("/ui/signin").await;
    let csrf = b.csrf.clone();
    let token = developer(&host, "dev-1");
    let reply = b
        .post_raw(
            "/ui/signin",
            &[("csrf", &csrf), ("token", &token)],
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("mmm_session="))
        .unwrap();
    assert!(session.contains("Secure"), "{session}");
}

#[tokio::test]
async fn a_refused_token_shows_why_and_starts_no_session() {
    let host = Host::new(sqlite().await).await;
    let mut b = Browser::new(&host);
    b.get("/ui/signin").await;
    let reply = b.post_form("/ui/signin", &[("token", "not.a.token")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text.contains("id=\"problem\""), "{}", reply.text);
    assert!(
        reply.text.contains("the token cannot be read"),
        "{}",
        reply.text
    );
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "a page, not problem JSON"
    );
    assert!(!b.has_cookie("mmm_session"));
    // The sign-in form itself is CSRF-protected (double submit): without the value of
    // this browser's sign-in page it is refused.
    let mut other = Browser::new(&host);
    let token = developer(&host, "dev-1");
    let reply = other
        .post_raw("/ui/signin", &[("csrf", "guess"), ("token", &token)], &[])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(!other.has_cookie("mmm_session"));
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_or_from_another_origin_change_nothing() {
    let host = Host::new(sqlite().await).await;
    let mut b = Browser::signed_in(&host, &developer(&host, "dev-1")).await;
    b.get("/ui/preferences").await;
    let csrf = b.csrf.clone();
    let opt_out = [("category", "code-review"), ("action", "opt_out")];
    type Fields<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Fields, Fields)> = vec![
        (opt_out.to_vec(), vec![]),
        ([&[("csrf", "forged")][..], &opt_out].concat(), vec![]),
        (
            [&[("csrf", csrf.as_str())][..], &opt_out].concat(),
            vec![("origin", "http://evil.example")],
        ),
        (
            [&[("csrf", csrf.as_str())][..], &opt_out].concat(),
            vec![("sec-fetch-site", "cross-site")],
        ),
    ];
    for (fields, headers) in cases {
        let reply = b.post_raw("/ui/preferences", &fields, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{fields:?} {headers:?}"
        );
        assert!(reply.text.contains("<h1>Forbidden</h1>"), "{}", reply.text);
    }
    assert_eq!(
        host.db
            .store
            .get_preferences("demo", "dev-1")
            .await
            .unwrap(),
        None,
        "nothing was stored"
    );
    // Signing out is a form too; afterwards the browser has no session.
    let reply = b.post_raw("/ui/signout", &[], &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = b.post_form("/ui/signout", &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(!b.has_cookie("mmm_session"));
    assert_eq!(b.get("/ui/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_tampered_session_cookie_is_no_session() {
    let host = Host::new(sqlite().await).await;
    let mut b = Browser::signed_in(&host, &developer(&host, "dev-1")).await;
    b.drop_cookie("mmm_session");
    let forged = format!("mmm_session={}", "A".repeat(120));
    let reply = b
        .request(
            axum::http::Method::GET,
            "/ui/",
            &[("cookie", &forged)],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers[header::LOCATION], "/ui/signin");
}

#[tokio::test]
async fn opting_out_of_a_category_suppresses_its_next_nudge_with_opted_out() {
    for db in backends().await {
        let host = Host::signing(db, "console").await;
        let (acted, _) = large_pr_outcome(&host, "dev-42").await;
        assert!(acted > 0, "large-pr acts before the opt-out");
        let mut b = Browser::signed_in(&host, &developer(&host, "dev-42")).await;
        let page = b.get("/ui/preferences").await;
        assert!(
            page.text.contains("<tr data-category=\"code-review\""),
            "{}",
            page.text
        );
        assert!(page.text.contains("<code>large-pr</code>"));
        // "What I was shown" lists the nudge, why, and a one-click way to turn it off.
        assert!(page.text.contains("id=\"shown\""), "{}", page.text);
        assert!(page.text.contains("Turn off code-review"));
        let page = b
            .submit(
                "/ui/preferences",
                &[("category", "code-review"), ("action", "opt_out")],
            )
            .await;
        assert!(
            page.text.contains("You opted out of “code-review”"),
            "{}",
            page.text
        );
        assert!(page.text.contains("code-review is off"));
        let (acted, reasons) = large_pr_outcome(&host, "dev-42").await;
        assert_eq!(acted, 0);
        assert!(reasons.iter().all(|r| r == "opted_out"), "{reasons:?}");
        assert!(!reasons.is_empty());
        // Another actor is not affected.
        let (acted, _) = large_pr_outcome(&host, "dev-43").await;
        assert!(acted > 0);
        // The change is in the audit log, made by the actor.
        let audit = host
            .db
            .store
            .list_audit(Scope::Only("demo"), Timestamp::UNIX_EPOCH, 0, 100)
            .await
            .unwrap();
        let change = audit
            .iter()
            .find(|a| a.action == "preferences.updated" && a.subject == "dev-42")
            .expect("an audit record");
        assert_eq!(change.sub, "dev-42");
        // And back in.
        let page = b
            .submit(
                "/ui/preferences",
                &[("category", "code-review"), ("action", "opt_in")],
            )
            .await;
        assert!(page.text.contains("You opted back in"), "{}", page.text);
        // Now only fatigue (it acted for dev-42 earlier) holds it back.
        let (_, reasons) = large_pr_outcome(&host, "dev-42").await;
        assert!(!reasons.iter().any(|r| r == "opted_out"), "{reasons:?}");
    }
}

#[tokio::test]
async fn snooze_for_an_hour_until_tomorrow_or_a_date_and_end_it() {
    let host = Host::signing(sqlite().await, "console").await;
    let mut b = Browser::signed_in(&host, &developer(&host, "dev-42")).await;
    let page = b.get("/ui/preferences").await;
    assert!(page.text.contains("Not snoozed."));
    let page = b
        .submit("/ui/preferences/snooze", &[("preset", "1h")])
        .await;
    assert!(page.text.contains("Snoozed until"), "{}", page.text);
    assert!(page.text.contains("id=\"unsnooze\""));
    let prefs = stored(&host, "dev-42").await;
    let until: Timestamp = prefs["snooze_until"].as_str().unwrap().parse().unwrap();
    // Real time: the host's clock is the system clock here, and so is the engine's, whose
    // next decision must see the snooze — the test reads the same clock both do.
    let in_an_hour = Timestamp::now().as_second() + 3600;
    assert!((until.as_second() - in_an_hour).abs() < 60, "{until}");
    let (_, reasons) = large_pr_outcome(&host, "dev-42").await;
    assert!(reasons.iter().any(|r| r == "snoozed"), "{reasons:?}");
    let page = b.submit("/ui/preferences/unsnooze", &[]).await;
    assert!(page.text.contains("Snooze ended"), "{}", page.text);
    assert!(page.text.contains("Not snoozed."));
    let (_, reasons) = large_pr_outcome(&host, "dev-42").await;
    assert!(!reasons.iter().any(|r| r == "snoozed"), "{reasons:?}");
    // Until tomorrow: 09:00 tomorrow in the actor's zone (UTC here).
    b.submit("/ui/preferences/snooze", &[("preset", "tomorrow")])
        .await;
    let prefs = stored(&host, "dev-42").await;
    let until = prefs["snooze_until"].as_str().unwrap();
    assert!(until.ends_with("T09:00:00Z"), "{until}");
    // A date in the past is refused, naming the problem; nothing changes.
    for (date, why) in [
        ("2020-01-01", "in the past"),
        ("next week", "is not a date"),
    ] {
        let reply = b
            .post_form(
                "/ui/preferences/snooze",
                &[("preset", "date"), ("date", date)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{date}");
        assert!(reply.text.contains(why), "{}", reply.text);
    }
    let page = b
        .submit(
            "/ui/preferences/snooze",
            &[("preset", "date"), ("date", "2099-03-04")],
        )
        .await;
    assert!(page.text.contains("2099-03-04 09:00"), "{}", page.text);
}

#[tokio::test]
async fn quiet_hours_in_a_time_zone_and_preferred_surfaces() {
    let host = Host::signing(sqlite().await, "console").await;
    let mut b = Browser::signed_in(&host, &developer(&host, "dev-42")).await;
    let page = b.get("/ui/preferences").await;
    assert!(page.text.contains("<option>Europe/Berlin</option>"));
    let page = b
        .submit(
            "/ui/preferences/quiet-hours",
            &[
                ("start", "19:00"),
                ("end", "08:00"),
                ("timezone", "Europe/Berlin"),
                ("action", "save"),
            ],
        )
        .await;
    assert!(
        page.text
            .contains("Quiet hours set: 19:00 to 08:00 (Europe/Berlin)"),
        "{}",
        page.text
    );
    assert!(page
        .text
        .contains("<option selected>Europe/Berlin</option>"));
    let prefs = stored(&host, "dev-42").await;
    assert_eq!(
        prefs["quiet_hours"],
        json!({"start": "19:00", "end": "08:00", "timezone": "Europe/Berlin"})
    );
    // Invalid values are refused by the same rules as a decision's context.
    for (fields, needle) in [
        (
            vec![("start", "25:00"), ("end", "08:00"), ("timezone", "UTC")],
            "quiet_hours.start",
        ),
        (
            vec![
                ("start", "19:00"),
                ("end", "08:00"),
                ("timezone", "Mars/Olympus"),
            ],
            "is not a time zone",
        ),
    ] {
        let reply = b.post_form("/ui/preferences/quiet-hours", &fields).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(reply.text.contains(needle), "{}", reply.text);
    }
    let page = b
        .submit("/ui/preferences/quiet-hours", &[("action", "clear")])
        .await;
    assert!(page.text.contains("Quiet hours removed."));
    let page = b
        .submit(
            "/ui/preferences/surfaces",
            &[("surface", "ide"), ("surface", "chat")],
        )
        .await;
    assert!(
        page.text.contains("Nudges now appear only on: ide, chat."),
        "{}",
        page.text
    );
    let prefs = stored(&host, "dev-42").await;
    assert_eq!(prefs["preferred_surfaces"], json!(["ide", "chat"]));
    assert_eq!(prefs.get("quiet_hours"), None);
    let reply = b
        .post_form("/ui/preferences/surfaces", &[("surface", "fax")])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = b.submit("/ui/preferences/surfaces", &[]).await;
    assert!(page.text.contains("every surface"), "{}", page.text);
}

#[tokio::test]
async fn the_api_still_answers_problem_json_and_console_pages_answer_html() {
    let host = Host::new(sqlite().await).await;
    let reply = host.get("/v1/mmm/playbooks", "bad").await;
    reply.problem(401, "UNAUTHENTICATED");
    let mut b = Browser::new(&host);
    let reply = b.get("/ui/no-such-page").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.text.contains("<h1>Not found</h1>"), "{}", reply.text);
    let css = b.get("/ui/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    // The platform operator has no preferences of its own.
    let operator = host.token("*", &["admin"], "root");
    let mut b = Browser::signed_in(&host, &operator).await;
    let reply = b.get("/ui/preferences").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_developer_sees_and_changes_only_their_own_preferences() {
    let host = Host::signing(sqlite().await, "console").await;
    // Eve has preferences; Dev-1 must not see or change them through any console URL.
    let mut eve = Browser::signed_in(&host, &developer(&host, "eve")).await;
    eve.get("/ui/preferences").await;
    eve.submit(
        "/ui/preferences",
        &[("category", "security"), ("action", "opt_out")],
    )
    .await;
    let mut b = Browser::signed_in(&host, &developer(&host, "dev-1")).await;
    for uri in [
        "/ui/preferences?actor=eve",
        "/ui/preferences?actor_id=eve&tenant=other",
    ] {
        let page = b.get(uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert!(page.text.contains("dev-1 · demo"));
        assert!(!page.text.contains("security is off"), "{uri}");
        assert!(!page.text.contains("opted out"), "{uri}: {}", page.text);
    }
    // A form naming another actor changes the signed-in actor's own preferences only.
    b.submit(
        "/ui/preferences",
        &[
            ("category", "build"),
            ("action", "opt_out"),
            ("actor_id", "eve"),
        ],
    )
    .await;
    let eve_prefs = stored(&host, "eve").await;
    assert_eq!(eve_prefs["opt_out_categories"], json!(["security"]));
    let own = stored(&host, "dev-1").await;
    assert_eq!(own["opt_out_categories"], json!(["build"]));
}
