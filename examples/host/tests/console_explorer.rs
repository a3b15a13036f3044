//! The console's decision explorer, recorded signals and playbooks area (issue 12): dry-run
//! decisions with the live set and with a draft, preferences seen by the explorer, tenant
//! isolation, escaped previews, recorded signals and their bound, inline diagnostics,
//! publishing through the confirmation, and the role checks of every page and form.

use axum::http::{header, StatusCode};
use mmm_host::store::RecordedSignal;
use serde_json::{json, Value};

use crate::common::{backends, sqlite, ts, Browser, Host, NOW};

fn large_pr(actor: &str, lines: u32, files: Value) -> Value {
    json!({"tenant_id": "demo", "actor_id": actor, "kind": "pr.opened", "source": "scm",
           "occurred_at": "2026-11-24T10:00:00Z", "surface": "pr_comment",
           "repo": {"id": "demo/api", "branch": "feat/x"},
           "payload": {"lines_changed": lines, "files_changed": files}})
}

/// A draft of `large-pr` for tenant demo with a 100-line threshold.
fn draft(version: u32) -> String {
    format!(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata:\n  id: large-pr\n  version: {version}\n  tenant: demo\n  status: draft\n  category: code-review\n  description: A 100-line trial.\nspec:\n  triggers: [pr.opened]\n  when: signal.payload?.lines_changed > 100\n  actions:\n    - type: mirror\n      surfaces: [pr_comment, ide]\n      title: Trial change\n      text: \"Changes {{{{ signal.payload.lines_changed }}}} lines.\"\n"
    )
}

/// The page's element with `id` and what follows it up to its closing `</tag>`.
fn element<'a>(page: &'a str, tag: &str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<{tag} id=\"{id}\""))
        .unwrap_or_else(|| panic!("no <{tag} id={id}> in {page}"));
    let rest = &page[start..];
    let end = rest
        .find(&format!("</{tag}>"))
        .map_or(rest.len(), |e| e + tag.len() + 3);
    &rest[..end]
}

/// Posts the explorer's "save this signal as a sample" form.
async fn save_sample(b: &mut Browser<'_>, signal: &str, name: &str) -> crate::common::Reply {
    b.post_form(
        "/ui/explorer",
        &[("signal", signal), ("name", name), ("intent", "save")],
    )
    .await
}

async fn explore(b: &mut Browser<'_>, signal: &Value, set: &str) -> crate::common::Reply {
    b.post_form(
        "/ui/explorer",
        &[
            ("signal", &signal.to_string()),
            ("set", set),
            ("intent", "decide"),
        ],
    )
    .await
}

#[tokio::test]
async fn the_explorer_decides_with_the_live_set_and_with_a_draft_storing_nothing() {
    let host = Host::signing(sqlite().await, "console").await;
    let admin = host.token("demo", &["admin"], "ada");
    let r = host.post_yaml("/v1/mmm/playbooks", &admin, &draft(1)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut b = Browser::signed_in(&host, &host.token("demo", &["author"], "alice")).await;
    let page = b.get("/ui/explorer").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("id=\"nav-explorer\""));
    let select = element(&page.text, "select", "set");
    assert!(select.contains("value=\"live\""), "{select}");
    assert!(select.contains("value=\"demo/large-pr/1\""), "{select}");

    // 200 lines: under the live 400-line threshold, over the draft's 100.
    let signal = large_pr("dev-7", 200, json!(3));
    let live = explore(&mut b, &signal, "live").await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text);
    let trace = element(&live.text, "table", "trace");
    assert!(trace.contains("data-playbook=\"large-pr\""), "{trace}");
    assert!(trace.contains("<td>false</td>"), "{trace}");
    assert!(!live.text.contains("Trial change"));

    let with_draft = explore(&mut b, &signal, "demo/large-pr/1").await;
    assert_eq!(with_draft.status, StatusCode::OK, "{}", with_draft.text);
    let trace = element(&with_draft.text, "table", "trace");
    assert!(trace.contains("<td>true</td>"), "{trace}");
    assert!(trace.contains("acted"), "{trace}");
    let actions = element(&with_draft.text, "div", "actions");
    assert!(actions.contains("class=\"action card\""), "{actions}");
    assert!(actions.contains("Trial change"), "{actions}");
    assert!(actions.contains("Why: "), "{actions}");
    assert!(
        actions.contains("class=\"rendering\" data-surface=\"pr_comment\""),
        "{actions}"
    );
    assert!(
        actions.contains("<pre class=\"rendering\" data-surface=\"ide\">"),
        "{actions}"
    );

    // A dry run: no action remembered, no receipt.
    let stored = host
        .db
        .store
        .actions_of_actor("demo", "dev-7", 10)
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    let receipts = host.get("/v1/mmm/receipts", &admin).await;
    assert!(
        !receipts.text.contains("dev-7"),
        "no receipt: {}",
        receipts.text
    );

    // A draft of no known version is a 404 page.
    let missing = explore(&mut b, &signal, "demo/large-pr/9").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
}

#[tokio::test]
async fn the_explorer_shows_opted_out_after_the_actor_opts_out_and_escapes_markup() {
    let host = Host::signing(sqlite().await, "console").await;
    let mut dev = Browser::signed_in(&host, &host.token("demo", &["developer"], "dev-42")).await;
    dev.get("/ui/preferences").await;
    let reply = dev
        .post_form(
            "/ui/preferences",
            &[("category", "code-review"), ("action", "opt_out")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);

    let mut b = Browser::signed_in(&host, &host.token("demo", &["admin"], "ada")).await;
    b.get("/ui/explorer").await;
    let page = explore(&mut b, &large_pr("dev-42", 420, json!(12)), "live").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let suppressed = element(&page.text, "table", "suppressed");
    assert!(
        suppressed.contains("<code>opted_out</code>"),
        "{suppressed}"
    );
    assert!(suppressed.contains("large-pr v2"), "{suppressed}");
    let trace = element(&page.text, "table", "trace");
    assert!(trace.contains("suppressed:opted_out"), "{trace}");

    // Another actor acts; the signal's text carries markup, which reaches the page as text.
    let script = "<script>alert(1)</script>";
    let page = explore(&mut b, &large_pr("dev-43", 420, json!(script)), "live").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let actions = element(&page.text, "div", "actions");
    assert!(actions.contains("data-surface=\"pr_comment\""), "{actions}");
    assert!(!page.text.contains(script), "{actions}");
    assert!(actions.contains("&lt;script&gt;"), "{actions}");
}

#[tokio::test]
async fn another_tenants_signal_is_refused_naming_tenant_id() {
    let host = Host::signing(sqlite().await, "console").await;
    let mut b = Browser::signed_in(&host, &host.token("demo", &["author"], "alice")).await;
    b.get("/ui/explorer").await;
    let mut signal = large_pr("dev-1", 420, json!(3));
    signal["tenant_id"] = json!("acme");
    for pasted in [signal.clone(), json!({"signal": signal})] {
        let page = explore(&mut b, &pasted, "live").await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.text
        );
        assert!(page.text.contains("id=\"problem\""), "{}", page.text);
        assert!(page.text.contains("tenant_id"), "{}", page.text);
    }
    let saved = save_sample(&mut b, &signal.to_string(), "theirs").await;
    assert_eq!(
        saved.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        saved.text
    );
    assert!(host
        .db
        .store
        .list_recorded_signals("demo", 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn recorded_signals_are_saved_listed_picked_deleted_and_bounded() {
    for db in backends().await {
        let host = Host::signing(db, "console").await;
        let mut b = Browser::signed_in(&host, &host.token("demo", &["author"], "alice")).await;
        b.get("/ui/explorer").await;
        let signal = large_pr("dev-1", 420, json!(3));
        let page = b
            .submit(
                "/ui/explorer",
                &[
                    ("signal", &signal.to_string()),
                    ("name", "a large PR"),
                    ("intent", "save"),
                ],
            )
            .await;
        assert!(page.text.contains("Saved the signal"), "{}", page.text);
        let pick = element(&page.text, "select", "sample");
        assert!(pick.contains("a large PR (alice)"), "{pick}");
        // The picked sample is in the text area.
        assert!(page.text.contains("&#34;dev-1&#34;"), "{}", page.text);
        let stored = host
            .db
            .store
            .list_recorded_signals("demo", 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].recorded_by, "alice");
        // Another tenant does not see it.
        let mut other = Browser::signed_in(&host, &host.token("acme", &["author"], "bob")).await;
        let theirs = other.get("/ui/explorer").await;
        assert!(!theirs.text.contains("a large PR"));
        let picked = other
            .get(&format!("/ui/explorer?sample={}", stored[0].id))
            .await;
        assert_eq!(picked.status, StatusCode::NOT_FOUND);

        // Not a signal: refused before it is saved.
        let bad = save_sample(&mut b, "{\"tenant_id\": \"demo\", \"kind\": 3}", "broken").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        let unnamed = save_sample(&mut b, &signal.to_string(), " ").await;
        assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);

        // Deleted.
        b.get("/ui/explorer").await;
        let page = b
            .submit("/ui/explorer/delete", &[("sample", &stored[0].id)])
            .await;
        assert!(page.text.contains("Deleted the sample"), "{}", page.text);
        assert!(host
            .db
            .store
            .list_recorded_signals("demo", 10)
            .await
            .unwrap()
            .is_empty());

        // At most 200 per tenant.
        for i in 0..200 {
            let r = RecordedSignal {
                tenant: "demo".to_owned(),
                id: format!("s{i:03}"),
                name: format!("sample {i}"),
                signal: signal.to_string(),
                recorded_by: "seed".to_owned(),
                recorded_at: ts(NOW),
            };
            host.db.store.record_signal(&r, 200).await.unwrap();
        }
        let full = save_sample(&mut b, &signal.to_string(), "one too many").await;
        assert_eq!(
            full.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            full.text
        );
        assert!(full.text.contains("200 recorded signals"), "{}", full.text);
    }
}

#[tokio::test]
async fn a_broken_drafts_diagnostic_is_under_its_line_and_nothing_is_saved() {
    let host = Host::signing(sqlite().await, "console").await;
    let mut b = Browser::signed_in(&host, &host.token("demo", &["author"], "alice")).await;
    let page = b.get("/ui/playbooks/new").await;
    assert!(element(&page.text, "form", "draft").contains("name=\"yaml\""));
    // Line 12: a condition that does not parse.
    let broken = draft(1).replace(
        "when: signal.payload?.lines_changed > 100",
        "when: signal.payload?.lines_changed >",
    );
    assert!(broken.lines().nth(11).unwrap().starts_with("  when:"));
    for intent in ["validate", "save"] {
        let page = b
            .post_form(
                "/ui/playbooks/new",
                &[("yaml", &broken), ("intent", intent)],
            )
            .await;
        let expected = if intent == "save" {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        assert_eq!(page.status, expected, "{}", page.text);
        assert!(
            page.text
                .contains("<li id=\"L12\" class=\"has-diagnostic\">"),
            "{}",
            page.text
        );
        let listed = element(&page.text, "ol", "diagnostics");
        assert!(listed.contains("data-line=\"12\""), "{listed}");
        assert!(listed.contains("column"), "{listed}");
    }
    let r = host
        .get(
            "/v1/mmm/playbooks",
            &host.token("demo", &["author"], "alice"),
        )
        .await;
    assert!(!r.text.contains("\"tenant\":\"demo\""), "{}", r.text);
}

#[tokio::test]
async fn a_draft_saved_then_published_through_the_confirmation_goes_live() {
    for db in backends().await {
        let host = Host::signing(db, "console").await;
        let admin = host.token("demo", &["admin"], "ada");
        let author = host.token("demo", &["author"], "alice");
        let mut a = Browser::signed_in(&host, &author).await;
        a.get("/ui/playbooks/new").await;
        let page = a
            .submit(
                "/ui/playbooks/new",
                &[("yaml", &draft(4)), ("intent", "save")],
            )
            .await;
        assert!(
            page.text.contains("Saved large-pr v4 as a draft"),
            "{}",
            page.text
        );
        assert!(page.text.contains("<li id=\"L1\""), "{}", page.text);
        assert!(page.text.contains("id=\"simulate\""));
        // The same version again: 409.
        a.get("/ui/playbooks/new").await;
        let again = a
            .post_form(
                "/ui/playbooks/new",
                &[("yaml", &draft(4)), ("intent", "save")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

        // The list.
        let list = a.get("/ui/playbooks").await;
        let table = element(&list.text, "table", "playbooks");
        assert!(
            table.contains("data-playbook=\"large-pr\" data-tenant=\"demo\""),
            "{table}"
        );
        assert!(table.contains("/ui/playbooks/demo/large-pr/4"), "{table}");

        // The shadow comparison: 200 lines differ (the draft acts, the live set does not).
        let href = "/ui/playbooks/demo/large-pr/4";
        a.get(href).await;
        let signals = format!(
            "{}\n{}",
            large_pr("dev-1", 200, json!(3)),
            large_pr("dev-2", 50, json!(3))
        );
        let sim = a
            .post_form(&format!("{href}/simulate"), &[("signals", &signals)])
            .await;
        assert_eq!(sim.status, StatusCode::OK, "{}", sim.text);
        let diff = element(&sim.text, "table", "differences");
        assert!(diff.contains("pr.opened (dev-1)"), "{diff}");
        assert!(!diff.contains("dev-2"), "{diff}");
        assert!(sim
            .text
            .contains("2 signals replayed, 1 decided differently"));

        // An author cannot publish: no button, and the confirmation and its POST are 403.
        assert!(!sim.text.contains("id=\"publish\""));
        let confirm = a.get(&format!("{href}/publish")).await;
        assert_eq!(confirm.status, StatusCode::FORBIDDEN);
        let posted = a.post_form(&format!("{href}/publish"), &[]).await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN);

        // The admin publishes through the confirmation.
        let mut b = Browser::signed_in(&host, &admin).await;
        let page = b.get(href).await;
        assert!(page.text.contains("id=\"publish\""), "{}", page.text);
        let confirm = b.get(&format!("{href}/publish")).await;
        assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
        let form = element(&confirm.text, "form", "confirm");
        assert!(
            form.contains("large-pr v4 becomes live for tenant demo (no version is live now)"),
            "{form}"
        );
        // Showing the confirmation changed nothing.
        let before = host.get("/v1/mmm/playbooks/large-pr", &admin).await.json();
        assert_eq!(before["serving"]["tenant"], "*");
        // Without the CSRF token: refused, nothing changes.
        let refused = b
            .post_raw(&format!("{href}/publish"), &[("csrf", "nope")], &[])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        b.get(&format!("{href}/publish")).await;
        let page = b.submit(&format!("{href}/publish"), &[]).await;
        assert!(page.text.contains("Published large-pr v4"), "{}", page.text);
        let after = host.get("/v1/mmm/playbooks/large-pr", &admin).await.json();
        assert_eq!(after["serving"], json!({"tenant": "demo", "version": 4}));
        assert!(page.text.contains("id=\"deprecate\""));

        // Deprecate: the confirmation names what becomes live.
        let confirm = b.get(&format!("{href}/deprecate")).await;
        let form = element(&confirm.text, "form", "confirm");
        assert!(
            form.contains(
                "deprecating the live v4 leaves large-pr with no live version for tenant demo"
            ),
            "{form}"
        );
        b.submit(&format!("{href}/deprecate"), &[]).await;
        let after = host.get("/v1/mmm/playbooks/large-pr", &admin).await.json();
        assert_eq!(after["serving"]["tenant"], "*");
        // Both changes are audited as the API audits them.
        let audit = host
            .db
            .store
            .list_audit(
                mmm_host::store::Scope::Only("demo"),
                jiff::Timestamp::UNIX_EPOCH,
                0,
                100,
            )
            .await
            .unwrap();
        for action in [
            "playbook.created",
            "playbook.published",
            "playbook.deprecated",
        ] {
            assert!(audit.iter().any(|a| a.action == action), "{action}");
        }
    }
}

#[tokio::test]
async fn developers_get_the_403_page_and_other_tenants_versions_are_404() {
    let host = Host::signing(sqlite().await, "console").await;
    let admin = host.token("acme", &["admin"], "root");
    let r = host
        .post_yaml(
            "/v1/mmm/playbooks",
            &admin,
            &draft(1).replace("tenant: demo", "tenant: acme"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let mut dev = Browser::signed_in(&host, &host.token("demo", &["developer"], "dev-1")).await;
    let pages = [
        "/ui/explorer",
        "/ui/playbooks",
        "/ui/playbooks/new",
        "/ui/playbooks/*/large-pr/2",
        "/ui/playbooks/*/large-pr/2/publish",
        "/ui/playbooks/*/large-pr/2/deprecate",
    ];
    for uri in pages {
        let page = dev.get(uri).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{uri}: {}", page.text);
        assert!(page.text.contains("<h1>Forbidden</h1>"), "{uri}");
        assert!(
            !page.text.contains("large-pr"),
            "{uri}: nothing of the resource"
        );
    }
    dev.get("/ui/").await;
    let forms: [(&str, &[(&str, &str)]); 6] = [
        ("/ui/explorer", &[("signal", "{}"), ("intent", "decide")]),
        ("/ui/explorer/delete", &[("sample", "x")]),
        (
            "/ui/playbooks/new",
            &[("yaml", "x"), ("intent", "validate")],
        ),
        ("/ui/playbooks/*/large-pr/2/simulate", &[("signals", "{}")]),
        ("/ui/playbooks/*/large-pr/2/publish", &[]),
        ("/ui/playbooks/*/large-pr/2/deprecate", &[]),
    ];
    for (uri, fields) in forms {
        let page = dev.post_form(uri, fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{uri}: {}", page.text);
    }

    // Another tenant's version: a 404 page, as in the API; the global one is readable.
    let mut b = Browser::signed_in(&host, &host.token("demo", &["admin"], "ada")).await;
    for uri in [
        "/ui/playbooks/acme/large-pr/1",
        "/ui/playbooks/acme/large-pr/1/publish",
    ] {
        let page = b.get(uri).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}: {}", page.text);
        assert!(page.text.contains("<h1>Not found</h1>"));
    }
    let page = b
        .post_form("/ui/playbooks/acme/large-pr/1/publish", &[])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let global = b.get("/ui/playbooks/*/large-pr/2").await;
    assert_eq!(global.status, StatusCode::OK, "{}", global.text);
    // A tenant's admin does not publish global playbooks: no button.
    assert!(!global.text.contains("id=\"deprecate\""));
    let list = b.get("/ui/playbooks").await;
    assert!(!list.text.contains("data-tenant=\"acme\""), "{}", list.text);
    assert_eq!(
        list.headers[header::CONTENT_TYPE].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
}
