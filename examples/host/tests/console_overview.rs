//! The console's tenant overview (`/ui/overview`): four charts of the tenant's aggregates
//! over a period, drawn from the same aggregation as `GET /tenants/{id}/metrics`, and the
//! open approvals; for admins of the tenant (the platform operator names one), never per
//! actor. Sessions are made through the real sign-in routes ([`Browser`]).

use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{backends, Browser, Host};

const P: &str = "/v1/mmm";

/// The markup of the element with `id` up to the end of its tag `tag`.
fn element<'a>(html: &'a str, tag: &str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<{tag} id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {tag}#{id} in {html}"));
    let end = html[start..].find(&format!("</{tag}>")).unwrap() + start;
    &html[start..end]
}

fn large_pr(tenant: &str, actor: &str) -> Value {
    json!({"tenant_id": tenant, "actor_id": actor, "kind": "pr.opened", "source": "scm",
           "occurred_at": "2026-11-24T10:00:00Z", "surface": "pr_comment",
           "repo": {"id": format!("{tenant}/api"), "branch": "feat/x"},
           "payload": {"lines_changed": 420, "files_changed": 12}})
}

fn force_push(tenant: &str, actor: &str) -> Value {
    json!({"tenant_id": tenant, "actor_id": actor, "kind": "branch.force_pushed",
           "occurred_at": "2026-11-24T10:00:00Z",
           "repo": {"id": format!("{tenant}/api"), "branch": "main"},
           "payload": {"branch_protected": true, "commits_removed": 3,
                       "before_sha": "abc123", "after_sha": "def456"}})
}

async fn decide(host: &Host, signal: Value) -> Value {
    let r = host
        .post_json(
            &format!("{P}/decide"),
            &host.token("acme", &["service"], "bot"),
            &json!({ "signal": signal }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

/// The noun of a count, as the charts write it.
fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[tokio::test]
async fn the_overview_charts_the_tenants_decisions_in_aggregate() {
    for db in backends().await {
        let host = Host::signing(db, "replica-a").await;
        let first = decide(&host, large_pr("acme", "dev-1")).await;
        decide(&host, large_pr("acme", "dev-2")).await;
        let pushed = decide(&host, force_push("acme", "dev-7")).await;
        let other = host
            .post_json(
                &format!("{P}/decide"),
                &host.token("other", &["service"], "bot"),
                &json!({ "signal": large_pr("other", "dev-9") }),
            )
            .await;
        assert_eq!(other.status, StatusCode::OK, "{}", other.text);
        let mirror = first["actions"][0]["action_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = host
            .json(
                Method::POST,
                &format!("{P}/actions/{mirror}/outcome"),
                &host.token("acme", &["service"], "ide-backend"),
                &json!({"result": "accepted"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let multiplier = pushed["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "multiplier")
            .unwrap_or_else(|| panic!("{pushed}"))["action_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let admin = host.admin("acme");
        let mut b = Browser::signed_in(&host, &admin).await;
        let r = b.get("/ui/overview").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let html = &r.text;
        assert!(
            html.contains("<option value=\"7d\" selected>"),
            "7 days by default"
        );
        assert!(html.contains("id=\"nav-overview\" href=\"/ui/overview\" aria-current=\"page\""));
        // The four figures, each an image named by its title and described in words.
        for id in [
            "chart-decisions",
            "chart-actions",
            "chart-suppressions",
            "chart-outcomes",
        ] {
            let figure = element(html, "figure", id);
            assert!(figure.contains("<svg "), "{figure}");
            assert!(figure.contains("role=\"img\""), "{figure}");
            assert!(figure.contains("<title id=\"svg-"), "{figure}");
            assert!(figure.contains("<desc id=\"svg-"), "{figure}");
            assert!(!figure.contains("style="), "{figure}");
        }
        let decisions = element(html, "figure", "chart-decisions");
        assert!(decisions.contains("Decisions per day"), "{decisions}");
        assert!(decisions.contains("3 decisions in all."), "{decisions}");
        assert!(decisions.contains("Every other day: 0."), "{decisions}");

        // The same numbers as the metrics API's over the same window (the last 7 days).
        // Real time: the decisions above were counted in the system clock's hour, and the
        // page's period ends at the host clock's (the system clock) current day.
        let until = jiff::Timestamp::now();
        let since = until - jiff::SignedDuration::from_hours(24 * 7);
        let m = host
            .get(
                &format!("{P}/tenants/acme/metrics?since={since}&until={until}"),
                &admin,
            )
            .await
            .json();
        assert_eq!(m["decisions"], 3, "{m}");
        for (chart, part, key, one, many) in [
            ("chart-actions", "actions", "by_type", "action", "actions"),
            (
                "chart-suppressions",
                "suppressions",
                "by_reason",
                "suppressed action",
                "suppressed actions",
            ),
            (
                "chart-outcomes",
                "outcomes",
                "by_result",
                "outcome",
                "outcomes",
            ),
        ] {
            let figure = element(html, "figure", chart);
            let by = m[part][key].as_object().unwrap();
            if by.is_empty() {
                assert!(figure.contains("No data in this period"), "{figure}");
                continue;
            }
            let total = m[part]["total"].as_i64().unwrap();
            assert!(
                figure.contains(&format!("{} in all: ", count(total, one, many))),
                "{figure} {m}"
            );
            for (label, n) in by {
                let n = n.as_i64().unwrap();
                assert!(
                    figure.contains(&format!("<title>{label}: {}</title>", count(n, one, many))),
                    "{label} {n}: {figure}"
                );
            }
        }
        let outcomes = element(html, "figure", "chart-outcomes");
        assert!(
            outcomes.contains("<title>accepted: 1 outcome</title>"),
            "{outcomes}"
        );

        // The open approval of the dual-channel multiplier; no actor named anywhere.
        let table = element(html, "table", "approvals");
        assert!(table.contains("<caption>"), "{table}");
        assert!(table.contains("scope=\"col\""), "{table}");
        let row = &table[table
            .find(&format!("data-action=\"{multiplier}\""))
            .unwrap_or_else(|| panic!("{multiplier} not in {table}"))..];
        assert!(row.contains("force-push-protected v1"), "{row}");
        assert!(row.contains("restore_branch"), "{row}");
        assert!(row.contains("none yet"), "{row}");
        for actor in ["dev-1", "dev-2", "dev-7", "dev-9"] {
            assert!(!html.contains(actor), "{actor} named: {html}");
        }

        // One channel approved: listed with it; both: no longer open.
        let owner = host.token("acme", &["developer"], "dev-7");
        let approve = format!("{P}/actions/{multiplier}/approve");
        let r = host
            .json(Method::POST, &approve, &owner, &json!({"channel": "chat"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = b.get("/ui/overview").await;
        let table = element(&r.text, "table", "approvals");
        assert!(table.contains("<td>chat</td>"), "{table}");
        let r = host
            .json(Method::POST, &approve, &owner, &json!({"channel": "ide"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = b.get("/ui/overview").await;
        let table = element(&r.text, "table", "approvals");
        assert!(!table.contains(&multiplier), "{table}");
        assert!(table.contains("No approvals are waiting."), "{table}");

        // The period chooser.
        let r = b.get("/ui/overview?period=24h").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("<option value=\"24h\" selected>"));
        let decisions = element(&r.text, "figure", "chart-decisions");
        assert!(decisions.contains("Decisions per hour"), "{decisions}");
        assert!(decisions.contains("3 decisions in all."), "{decisions}");
        assert_eq!(decisions.matches("<g class=\"column\">").count(), 24);
        let r = b.get("/ui/overview?period=30d").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let decisions = element(&r.text, "figure", "chart-decisions");
        assert_eq!(decisions.matches("<g class=\"column\">").count(), 30);
        for bad in ["period=1y", "period=", "period=7d&actor=dev-1"] {
            let r = b.get(&format!("/ui/overview?{bad}")).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}: {}",
                r.text
            );
            assert!(r.text.contains("<h1>Not accepted</h1>"), "{}", r.text);
            assert!(r.text.contains("<p id=\"problem\">"), "{}", r.text);
            if bad.starts_with("period=") && !bad.contains('&') {
                assert!(r.text.contains("`period`"), "{}", r.text);
            }
        }

        // Another tenant's overview is its own (the decision of `other` is not counted).
        let r = Browser::signed_in(&host, &host.admin("other"))
            .await
            .get("/ui/overview")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let decisions = element(&r.text, "figure", "chart-decisions");
        assert!(decisions.contains("1 decision in all."), "{decisions}");
    }
}

#[tokio::test]
async fn the_overview_is_for_admins_of_the_tenant() {
    for db in backends().await {
        let host = Host::new(db).await;
        // No session: to the sign-in page.
        let r = Browser::new(&host).get("/ui/overview").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.headers[header::LOCATION], "/ui/signin");

        for roles in [&["developer"][..], &["author"], &["author", "approver"]] {
            let mut b = Browser::signed_in(&host, &host.token("acme", roles, "dev-1")).await;
            let r = b.get("/ui/overview?tenant=acme").await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{roles:?}: {}", r.text);
            assert!(r.text.contains("<h1>Forbidden</h1>"), "{}", r.text);
            assert!(r.text.contains("needs the role admin"), "{}", r.text);
            assert!(!r.text.contains("chart-"), "{}", r.text);
            // Nor is the area offered.
            let home = b.get("/ui/").await;
            assert!(!home.text.contains("nav-overview"), "{}", home.text);
        }

        // An admin of another tenant: 403, naming nothing of what was asked for.
        let mut b = Browser::signed_in(&host, &host.admin("other")).await;
        let r = b.get("/ui/overview?tenant=acme").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.text.contains("<h1>Forbidden</h1>"), "{}", r.text);
        assert!(!r.text.contains("acme"), "{}", r.text);
        assert!(!r.text.contains("chart-"), "{}", r.text);
        let r = b.get("/ui/overview?tenant=other&period=24h").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("Tenant overview: other"), "{}", r.text);
        assert!(
            !r.text.contains("id=\"tenant\""),
            "only the operator names a tenant"
        );

        // The platform operator names the tenant.
        let mut b = Browser::signed_in(&host, &host.admin("*")).await;
        let r = b.get("/ui/overview").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("id=\"choose-tenant\""), "{}", r.text);
        assert!(
            r.text.contains("<input id=\"tenant\" name=\"tenant\""),
            "{}",
            r.text
        );
        assert!(!r.text.contains("chart-decisions"), "{}", r.text);
        let r = b.get("/ui/overview?tenant=acme").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("Tenant overview: acme"), "{}", r.text);
        assert!(r.text.contains("id=\"chart-decisions\""), "{}", r.text);
        assert!(r.text.contains("No data in this period"), "{}", r.text);
        assert!(r.text.contains("<table id=\"approvals\""), "{}", r.text);
        let r = b.get("/ui/overview?tenant=no%20such").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    }
}
