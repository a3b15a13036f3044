//! Bad input, table-driven: every route answers problem details naming the field or rule,
//! never a 5xx, and changes nothing stored. Later routes add rows to `cases`.

use axum::http::Method;
use mmm_engine::Status;

use crate::common::{audit, playbook_yaml, snapshot, version, Host};

const P: &str = "/v1/mmm";

/// Who sends the request.
#[derive(Clone, Copy)]
enum Who {
    Nobody,
    Garbage,
    Expired,
    WrongKey,
    Developer,
    Author,
    Admin,
    OtherAdmin,
    Service,
    Approver,
}

struct Case {
    name: &'static str,
    method: Method,
    uri: String,
    who: Who,
    content_type: Option<&'static str>,
    body: String,
    status: u16,
    code: &'static str,
    /// A field or rule the problem must name, when it names one.
    names: Option<&'static str>,
    /// An `If-Match` header to send.
    if_match: Option<&'static str>,
}

#[allow(
    clippy::too_many_arguments,
    reason = "one row of the table, read as such"
)]
fn case(
    name: &'static str,
    method: Method,
    uri: &str,
    who: Who,
    content_type: Option<&'static str>,
    body: &str,
    status: u16,
    code: &'static str,
    names: Option<&'static str>,
) -> Case {
    Case {
        name,
        method,
        uri: format!("{P}{uri}"),
        who,
        content_type,
        body: body.to_owned(),
        status,
        code,
        names,
        if_match: None,
    }
}

impl Case {
    fn if_match(mut self, tag: &'static str) -> Case {
        self.if_match = Some(tag);
        self
    }
}

const YAML: Option<&str> = Some("application/yaml");
const JSON: Option<&str> = Some("application/json");

fn cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    let draft = playbook_yaml("acme", "fresh", 1, "draft", "A pull request was opened.");
    let huge = format!("{draft}#{}\n", "x".repeat(70 * 1024));
    let mut all = vec![
        // Authentication, on every protected route.
        case(
            "no token",
            M::GET,
            "/playbooks",
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "garbage token",
            M::GET,
            "/playbooks",
            Garbage,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "expired token",
            M::GET,
            "/playbooks/pb",
            Expired,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            Some("expired"),
        ),
        case(
            "token from another key",
            M::POST,
            "/playbooks/validate",
            WrongKey,
            YAML,
            &draft,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        // Roles.
        case(
            "developer creates",
            M::POST,
            "/playbooks",
            Developer,
            YAML,
            &draft,
            403,
            "FORBIDDEN",
            Some("author"),
        ),
        case(
            "author publishes",
            M::POST,
            "/playbooks/pb/versions/2/publish",
            Author,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "author deprecates",
            M::POST,
            "/playbooks/pb/versions/1/deprecate",
            Author,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "developer deletes",
            M::DELETE,
            "/playbooks/pb/versions/2",
            Developer,
            None,
            "",
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            "developer validates",
            M::POST,
            "/playbooks/validate",
            Developer,
            YAML,
            &draft,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            "developer simulates",
            M::POST,
            "/playbooks/pb/versions/2/simulate",
            Developer,
            JSON,
            "[]",
            403,
            "FORBIDDEN",
            None,
        ),
        // Tenancy.
        case(
            "another tenant's version",
            M::GET,
            "/playbooks/pb/versions/2",
            OtherAdmin,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "another tenant's publish",
            M::POST,
            "/playbooks/pb/versions/2/publish",
            OtherAdmin,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "naming another tenant",
            M::GET,
            "/playbooks?tenant=acme",
            OtherAdmin,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "writing into another tenant",
            M::POST,
            "/playbooks",
            OtherAdmin,
            YAML,
            &draft,
            403,
            "FORBIDDEN",
            None,
        ),
        // Bodies.
        case(
            "not YAML content type",
            M::POST,
            "/playbooks",
            Author,
            JSON,
            "{}",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "malformed YAML",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            "metadata: [unclosed\n",
            422,
            "PLAYBOOK_INVALID",
            None,
        ),
        case(
            "unknown field",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            &draft.replace(
                "  category: general\n",
                "  category: general\n  colour: red\n",
            ),
            422,
            "PLAYBOOK_INVALID",
            Some("unknown-field"),
        ),
        case(
            "wrong type",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            &draft.replace("version: 1", "version: one"),
            422,
            "PLAYBOOK_INVALID",
            None,
        ),
        case(
            "published in the body",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            &draft.replace("status: draft", "status: published"),
            422,
            "PLAYBOOK_INVALID",
            Some("metadata.status"),
        ),
        case(
            "two documents",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            &format!("{draft}---\n{}", draft.replace("version: 1", "version: 2")),
            422,
            "PLAYBOOK_INVALID",
            Some("one-playbook"),
        ),
        case(
            "empty body",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            "",
            422,
            "PLAYBOOK_INVALID",
            Some("one-playbook"),
        ),
        case(
            "oversized body",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            &huge,
            413,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
        case(
            "oversized validate",
            M::POST,
            "/playbooks/validate",
            Author,
            YAML,
            &huge,
            413,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
        case(
            "not UTF-8",
            M::POST,
            "/playbooks/validate",
            Author,
            YAML,
            "",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "simulate malformed JSON",
            M::POST,
            "/playbooks/pb/versions/2/simulate",
            Author,
            JSON,
            "[{",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "simulate wrong type",
            M::POST,
            "/playbooks/pb/versions/2/simulate",
            Author,
            JSON,
            "{\"a\": 1}",
            422,
            "INVALID_REQUEST",
            Some("body"),
        ),
        case(
            "simulate nothing",
            M::POST,
            "/playbooks/pb/versions/2/simulate",
            Author,
            JSON,
            "  ",
            422,
            "INVALID_REQUEST",
            Some("body"),
        ),
        case(
            "simulate an empty array",
            M::POST,
            "/playbooks/pb/versions/2/simulate",
            Author,
            JSON,
            "[]",
            422,
            "INVALID_REQUEST",
            Some("no signals"),
        ),
        case(
            "simulate too many",
            M::POST,
            "/playbooks/pb/versions/2/simulate",
            Author,
            JSON,
            "[1, 2, 3, 4, 5, 6]",
            422,
            "INVALID_REQUEST",
            Some("at most 5"),
        ),
        // Paths and queries.
        case(
            "version not a number",
            M::GET,
            "/playbooks/pb/versions/two",
            Author,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("v"),
        ),
        case(
            "version out of range",
            M::POST,
            "/playbooks/pb/versions/99999999999/publish",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("v"),
        ),
        case(
            "unknown query parameter",
            M::GET,
            "/playbooks?colour=red",
            Author,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("colour"),
        ),
        case(
            "unknown route",
            M::GET,
            "/nothing-here",
            Author,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "wrong method",
            M::PUT,
            "/playbooks",
            Author,
            YAML,
            &draft,
            405,
            "INVALID_REQUEST",
            None,
        ),
        // State.
        case(
            "stale: publish a published version",
            M::POST,
            "/playbooks/pb/versions/1/publish",
            Admin,
            None,
            "",
            409,
            "CONFLICT",
            Some("published already"),
        ),
        case(
            "deprecate a draft",
            M::POST,
            "/playbooks/pb/versions/2/deprecate",
            Admin,
            None,
            "",
            409,
            "CONFLICT",
            Some("draft"),
        ),
        case(
            "delete a published version",
            M::DELETE,
            "/playbooks/pb/versions/1",
            Admin,
            None,
            "",
            409,
            "CONFLICT",
            Some("only drafts"),
        ),
        case(
            "missing version",
            M::POST,
            "/playbooks/pb/versions/7/publish",
            Admin,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "create an existing version",
            M::POST,
            "/playbooks",
            Author,
            YAML,
            &playbook_yaml("acme", "pb", 1, "draft", "x happened."),
            409,
            "CONFLICT",
            None,
        ),
        // Decide and receipts.
        case(
            "decide as a developer",
            M::POST,
            "/decide",
            Developer,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}}",
            403,
            "FORBIDDEN",
            Some("service"),
        ),
        case(
            "decide malformed JSON",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": ",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "decide as YAML",
            M::POST,
            "/decide",
            Admin,
            YAML,
            "signal: {}",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "decide unknown field",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"sgnal\": 1}",
            422,
            "INVALID_REQUEST",
            Some("sgnal"),
        ),
        case(
            "decide without a signal",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{}",
            422,
            "INVALID_REQUEST",
            Some("signal"),
        ),
        case(
            "decide passing preferences",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"context\": {\"preferences\": {}}}",
            422,
            "INVALID_REQUEST",
            Some("context.preferences"),
        ),
        case(
            "decide passing tenant_policy",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"context\": {\"tenant_policy\": {}}}",
            422,
            "INVALID_REQUEST",
            Some("context.tenant_policy"),
        ),
        case(
            "decide passing policy",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"context\": {\"policy\": {}}}",
            422,
            "INVALID_REQUEST",
            Some("context.policy"),
        ),
        case(
            "decide context not an object",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"context\": []}",
            422,
            "INVALID_REQUEST",
            Some("context"),
        ),
        case(
            "decide invalid context",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"context\": {\"actor\": {\"roles\": 5}}}",
            422,
            "INVALID_REQUEST",
            Some("context.actor"),
        ),
        case(
            "decide invalid signal",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"Not A Kind\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}}",
            422,
            "SIGNAL_INVALID",
            Some("signal.kind"),
        ),
        case(
            "decide signal without tenant",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}}",
            422,
            "SIGNAL_INVALID",
            Some("signal.tenant_id"),
        ),
        case(
            "decide signal not an object",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": 5}",
            422,
            "SIGNAL_INVALID",
            Some("\"field\":\"signal\""),
        ),
        case(
            "decide another tenant's signal",
            M::POST,
            "/decide",
            OtherAdmin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}}",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "decide with a bad now",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"now\": \"yesterday\"}",
            422,
            "INVALID_REQUEST",
            Some("now"),
        ),
        case(
            "decide with explain not a bool",
            M::POST,
            "/decide",
            Admin,
            JSON,
            "{\"signal\": {\"tenant_id\": \"acme\", \"actor_id\": \"dev-1\", \"kind\": \"pr.opened\", \"occurred_at\": \"2026-11-22T10:00:00Z\"}, \"explain\": \"yes\"}",
            422,
            "INVALID_REQUEST",
            Some("explain"),
        ),
        case(
            "export receipts as an author",
            M::GET,
            "/receipts",
            Author,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "export receipts with limit 0",
            M::GET,
            "/receipts?limit=0",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("limit"),
        ),
        case(
            "export receipts with a huge limit",
            M::GET,
            "/receipts?limit=10001",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("limit"),
        ),
        case(
            "export receipts with a negative after_seq",
            M::GET,
            "/receipts?after_seq=-1",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("after_seq"),
        ),
        case(
            "export receipts with an after_seq beyond the store's 63 bits",
            M::GET,
            "/receipts?after_seq=9223372036854775808",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("after_seq"),
        ),
        case(
            "export receipts with an unknown parameter",
            M::GET,
            "/receipts?foo=1",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("foo"),
        ),
        case(
            "export another tenant's receipts",
            M::GET,
            "/receipts?tenant=acme",
            OtherAdmin,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "public key without a token",
            M::GET,
            "/receipts/public-key",
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "public key when not signing",
            M::GET,
            "/receipts/public-key",
            Admin,
            None,
            "",
            404,
            "NOT_FOUND",
            Some("signing"),
        ),
    ];
    all.extend(resource_cases());
    // Not UTF-8: replaced by raw bytes below.
    for c in &mut all {
        if c.name == "not UTF-8" {
            c.body = String::new();
        }
    }
    all
}

fn token(host: &Host, who: Who) -> Option<String> {
    match who {
        Who::Nobody => None,
        Who::Garbage => Some("not.a.token".to_owned()),
        Who::Expired => {
            let key = mmm_host::auth::LocalKey::from_seed(crate::common::KEY_SEED);
            Some(
                key.mint(&crate::common::claims("acme", &["admin"], "old", -7200))
                    .unwrap(),
            )
        }
        Who::WrongKey => {
            let key = mmm_host::auth::LocalKey::from_seed([9; 32]);
            Some(
                key.mint(&crate::common::claims("acme", &["admin"], "x", 3600))
                    .unwrap(),
            )
        }
        Who::Developer => Some(host.token("acme", &["developer"], "dev-1")),
        Who::Author => Some(host.token("acme", &["author"], "alice")),
        Who::Admin => Some(host.admin("acme")),
        Who::OtherAdmin => Some(host.token("other", &["admin", "author"], "mallory")),
        Who::Service => Some(host.token("acme", &["service"], "ide-backend")),
        Who::Approver => Some(host.token("acme", &["approver"], "lead")),
    }
}

#[tokio::test]
async fn bad_requests_get_problem_details_and_change_nothing() {
    for db in crate::common::backends().await {
        let host = Host::with_settings(
            db,
            mmm_host::Settings {
                body_limit: 64 * 1024,
                simulate_max_signals: 5,
                ..mmm_host::Settings::default()
            },
        )
        .await;
        let s = &*host.db.store;
        s.insert_playbook(
            &version("acme", "pb", 1, Status::Published),
            &audit("acme", "seed"),
        )
        .await
        .unwrap();
        s.insert_playbook(
            &version("acme", "pb", 2, Status::Draft),
            &audit("acme", "seed"),
        )
        .await
        .unwrap();
        seed_resources(&host).await;
        host.state.live.reload(s).await.unwrap();
        let before = format!("{}\n{}", snapshot(s).await, resources(s).await);
        for c in cases() {
            let body: axum::body::Body = if c.name == "not UTF-8" {
                vec![0xff, 0xfe, 0x00].into()
            } else {
                c.body.clone().into()
            };
            let headers: Vec<(&str, &str)> =
                c.if_match.map(|t| ("if-match", t)).into_iter().collect();
            let r = host
                .call_with(
                    c.method.clone(),
                    &c.uri,
                    token(&host, c.who).as_deref(),
                    &headers,
                    c.content_type,
                    body,
                )
                .await;
            assert!(
                r.status.as_u16() < 500,
                "{} ({}): a 5xx: {}",
                c.name,
                host.db.name,
                r.text
            );
            assert_eq!(
                r.status.as_u16(),
                c.status,
                "{} ({}): {}",
                c.name,
                host.db.name,
                r.text
            );
            let problem = r.problem(c.status, c.code);
            if let Some(names) = c.names {
                assert!(
                    problem.to_string().contains(names),
                    "{}: the problem should name `{names}`: {problem}",
                    c.name
                );
            }
            assert_eq!(
                format!("{}\n{}", snapshot(s).await, resources(s).await),
                before,
                "{}: nothing stored may change",
                c.name
            );
        }
    }
}

/// The stored resources of the routes beyond playbooks, seeded for the table.
pub(crate) async fn seed_resources(host: &Host) {
    use mmm_engine::approval::ApprovalState;
    let s = &*host.db.store;
    let now = jiff::Timestamp::now();
    for (id, status) in [("copy", "paused"), ("live-exp", "active")] {
        let yaml = crate::experiments::experiment_yaml("acme", id, status, crate::experiments::TWO);
        s.insert_experiment(
            &mmm_host::store::ExperimentRecord {
                tenant: "acme".into(),
                id: id.into(),
                status: status.into(),
                yaml,
                author: "alice".into(),
                revision: 1,
                created_at: now,
                updated_at: now,
            },
            &audit("acme", "seed"),
        )
        .await
        .unwrap();
    }
    crate::actions::open_approval(host, "acme", "act-1", "dev-1", 24).await;
    crate::actions::open_approval(host, "acme", "act-done", "dev-1", 24).await;
    s.update_approval("acme", "ap-act-done", &mut |a| {
        let mut a = a.clone();
        a.state = ApprovalState::Approved;
        Ok(a)
    })
    .await
    .unwrap();
    s.put_preferences(
        "acme",
        "dev-1",
        &serde_json::json!({"opt_out_categories": ["style"]}),
        None,
        &audit("acme", "seed"),
    )
    .await
    .unwrap();
    s.put_tenant_policy(
        "acme",
        &serde_json::json!({"max_actions_per_decision": 2}),
        None,
        &audit("acme", "seed"),
    )
    .await
    .unwrap();
}

/// What the resource routes could change.
pub(crate) async fn resources(s: &dyn mmm_host::store::Store) -> String {
    let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    let mut out: Vec<String> = Vec::new();
    out.push(format!(
        "{:?}",
        s.get_preferences("acme", "dev-1").await.unwrap()
    ));
    out.push(format!("{:?}", s.get_tenant_policy("acme").await.unwrap()));
    out.push(format!(
        "{:?}",
        s.get_approval("acme", "ap-act-1").await.unwrap()
    ));
    out.push(format!(
        "{:?}",
        s.get_approval("acme", "ap-act-done").await.unwrap()
    ));
    out.push(format!(
        "{:?}",
        s.counts("acme", None, jiff::Timestamp::UNIX_EPOCH, far)
            .await
            .unwrap()
    ));
    out.push(format!(
        "{:?}",
        s.list_experiments(mmm_host::store::Scope::All)
            .await
            .unwrap()
    ));
    out.join("\n")
}

/// Rows for the routes beyond playbooks, one function per resource.
fn resource_cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(preference_cases());
    all.extend(policy_cases());
    all.extend(audit_cases());
    all.extend(approval_cases());
    all.extend(metrics_cases());
    all.extend(outcome_cases());
    all.extend(experiment_cases());
    all.extend(hostile_cases());
    all
}

/// Preferences and snooze.
fn preference_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    let prefs = "/actors/dev-1/preferences";
    let snooze = "/actors/dev-1/preferences/snooze";
    vec![
        case(
            "preferences: actor id too long",
            M::GET,
            &format!("/actors/{}/preferences", "a".repeat(129)),
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("actor_id"),
        ),
        case(
            "preferences: no token",
            M::GET,
            prefs,
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "preferences: another actor",
            M::GET,
            "/actors/dev-9/preferences",
            Developer,
            None,
            "",
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            "preferences: another tenant named",
            M::GET,
            "/actors/dev-1/preferences?tenant=other",
            Developer,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("other"),
        ),
        case(
            "preferences: unknown query",
            M::GET,
            "/actors/dev-1/preferences?actor=x",
            Developer,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("actor"),
        ),
        case(
            "preferences: malformed JSON",
            M::PUT,
            prefs,
            Developer,
            JSON,
            "{",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "preferences: not JSON",
            M::PUT,
            prefs,
            Developer,
            YAML,
            "a: 1",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "preferences: wrong type",
            M::PUT,
            prefs,
            Developer,
            JSON,
            r#"{"opt_out_categories": "style"}"#,
            422,
            "INVALID_REQUEST",
            Some("opt_out_categories"),
        ),
        case(
            "preferences: unknown field",
            M::PUT,
            prefs,
            Developer,
            JSON,
            r#"{"colour": "red"}"#,
            422,
            "INVALID_REQUEST",
            Some("colour"),
        ),
        case(
            "preferences: bad snooze_until",
            M::PUT,
            prefs,
            Developer,
            JSON,
            r#"{"snooze_until": "later"}"#,
            422,
            "INVALID_REQUEST",
            Some("snooze_until"),
        ),
        case(
            "preferences: stale version",
            M::PUT,
            prefs,
            Developer,
            JSON,
            "{}",
            409,
            "CONFLICT",
            Some("revision"),
        )
        .if_match("\"0\""),
        case(
            "preferences: bad If-Match",
            M::PUT,
            prefs,
            Developer,
            JSON,
            "{}",
            422,
            "INVALID_REQUEST",
            Some("If-Match"),
        )
        .if_match("soon"),
        case(
            "preferences: another actor writes",
            M::PUT,
            "/actors/dev-9/preferences",
            Developer,
            JSON,
            "{}",
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            "snooze: no token",
            M::POST,
            snooze,
            Nobody,
            JSON,
            r#"{"for": "1h"}"#,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "snooze: malformed JSON",
            M::POST,
            snooze,
            Developer,
            JSON,
            r#"{"for": "#,
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "snooze: wrong type",
            M::POST,
            snooze,
            Developer,
            JSON,
            r#"{"for": 2}"#,
            422,
            "INVALID_REQUEST",
            Some("for"),
        ),
        case(
            "snooze: unknown field",
            M::POST,
            snooze,
            Developer,
            JSON,
            r#"{"for": "1h", "why": "tired"}"#,
            422,
            "INVALID_REQUEST",
            Some("why"),
        ),
        case(
            "snooze: both",
            M::POST,
            snooze,
            Developer,
            JSON,
            r#"{"for": "1h", "until": "2999-01-01T00:00:00Z"}"#,
            422,
            "INVALID_REQUEST",
            Some("exactly one"),
        ),
        case(
            "snooze: bad duration",
            M::POST,
            snooze,
            Developer,
            JSON,
            r#"{"for": "forever"}"#,
            422,
            "INVALID_REQUEST",
            Some("for"),
        ),
        case(
            "snooze: in the past",
            M::POST,
            snooze,
            Developer,
            JSON,
            r#"{"until": "2001-01-01T00:00:00Z"}"#,
            422,
            "INVALID_REQUEST",
            Some("until"),
        ),
        case(
            "snooze: another actor",
            M::POST,
            "/actors/dev-9/preferences/snooze",
            Developer,
            JSON,
            r#"{"for": "1h"}"#,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            "unsnooze: another actor",
            M::DELETE,
            "/actors/dev-9/preferences/snooze",
            Developer,
            None,
            "",
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            "unsnooze: no token",
            M::DELETE,
            snooze,
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
    ]
}

/// Tenant policy.
fn policy_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    let policy = "/tenants/acme/policy";
    vec![
        case(
            "policy: no token",
            M::GET,
            policy,
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "policy: author reads",
            M::GET,
            policy,
            Author,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "policy: another tenant reads",
            M::GET,
            policy,
            OtherAdmin,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "policy: another tenant writes",
            M::PUT,
            policy,
            OtherAdmin,
            JSON,
            "{}",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "policy: service writes",
            M::PUT,
            policy,
            Service,
            JSON,
            "{}",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "policy: malformed JSON",
            M::PUT,
            policy,
            Admin,
            JSON,
            "{\"budget\": ",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "policy: wrong type",
            M::PUT,
            policy,
            Admin,
            JSON,
            r#"{"max_actions_per_decision": "3"}"#,
            422,
            "INVALID_REQUEST",
            Some("max_actions_per_decision"),
        ),
        case(
            "policy: unknown field",
            M::PUT,
            policy,
            Admin,
            JSON,
            r#"{"colour": "red"}"#,
            422,
            "INVALID_REQUEST",
            Some("colour"),
        ),
        case(
            "policy: bad quiet hours",
            M::PUT,
            policy,
            Admin,
            JSON,
            r#"{"quiet_hours": {"start": "22:00", "end": "7"}}"#,
            422,
            "INVALID_REQUEST",
            Some("quiet_hours.end"),
        ),
        case(
            "policy: stale version",
            M::PUT,
            policy,
            Admin,
            JSON,
            "{}",
            409,
            "CONFLICT",
            Some("revision"),
        )
        .if_match("\"0\""),
        case(
            "policy: bad If-Match",
            M::PUT,
            policy,
            Admin,
            JSON,
            "{}",
            422,
            "INVALID_REQUEST",
            Some("If-Match"),
        )
        .if_match("\"v1\""),
    ]
}

/// Tenant metrics.
fn metrics_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    let metrics = "/tenants/acme/metrics";
    vec![
        case(
            "metrics: no token",
            M::GET,
            metrics,
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "metrics: service reads",
            M::GET,
            metrics,
            Service,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "metrics: another tenant",
            M::GET,
            metrics,
            OtherAdmin,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "metrics: bad since",
            M::GET,
            "/tenants/acme/metrics?since=monday",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("since"),
        ),
        case(
            "metrics: per actor",
            M::GET,
            "/tenants/acme/metrics?actor_id=dev-1",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("actor_id"),
        ),
    ]
}

/// Experiments.
fn experiment_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    let exp =
        crate::experiments::experiment_yaml("acme", "copy", "paused", crate::experiments::TWO);
    let fresh = exp.replace("id: copy", "id: fresh");
    let huge = format!("{fresh}#{}\n", "x".repeat(70 * 1024));
    vec![
        case(
            "experiments: no token",
            M::GET,
            "/experiments",
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "experiments: developer creates",
            M::POST,
            "/experiments",
            Developer,
            YAML,
            &fresh,
            403,
            "FORBIDDEN",
            Some("author"),
        ),
        case(
            "experiments: another tenant named",
            M::GET,
            "/experiments?tenant=acme",
            OtherAdmin,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "experiments: writing into another tenant",
            M::POST,
            "/experiments",
            OtherAdmin,
            YAML,
            &fresh,
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "experiments: not YAML",
            M::POST,
            "/experiments",
            Author,
            JSON,
            "{}",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "experiments: malformed YAML",
            M::POST,
            "/experiments",
            Author,
            YAML,
            "metadata: [unclosed\n",
            422,
            "PLAYBOOK_INVALID",
            None,
        ),
        case(
            "experiments: unknown field",
            M::POST,
            "/experiments",
            Author,
            YAML,
            &fresh.replace("  strategy: fixed\n", "  strategy: fixed\n  colour: red\n"),
            422,
            "PLAYBOOK_INVALID",
            Some("colour"),
        ),
        case(
            "experiments: wrong type",
            M::POST,
            "/experiments",
            Author,
            YAML,
            &fresh.replace("weight: 50}", "weight: lots}"),
            422,
            "PLAYBOOK_INVALID",
            None,
        ),
        case(
            "experiments: active in the body",
            M::POST,
            "/experiments",
            Author,
            YAML,
            &fresh.replace("status: paused", "status: active"),
            422,
            "PLAYBOOK_INVALID",
            Some("metadata.status"),
        ),
        case(
            "experiments: a playbook sent",
            M::POST,
            "/experiments",
            Author,
            YAML,
            &crate::common::playbook_yaml("acme", "x", 1, "draft", "A pull request was opened."),
            422,
            "PLAYBOOK_INVALID",
            Some("one-experiment"),
        ),
        case(
            "experiments: exists",
            M::POST,
            "/experiments",
            Author,
            YAML,
            &exp,
            409,
            "CONFLICT",
            None,
        ),
        case(
            "experiments: oversized",
            M::POST,
            "/experiments",
            Author,
            YAML,
            &huge,
            413,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
        case(
            "experiments: another tenant's",
            M::GET,
            "/experiments/copy",
            OtherAdmin,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "experiments: another tenant replaces",
            M::PUT,
            "/experiments/copy",
            OtherAdmin,
            YAML,
            &exp,
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "experiments: developer replaces",
            M::PUT,
            "/experiments/copy",
            Developer,
            YAML,
            &exp,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            "experiments: stale version",
            M::PUT,
            "/experiments/copy",
            Author,
            YAML,
            &exp,
            409,
            "CONFLICT",
            Some("stale"),
        )
        .if_match("\"7\""),
        case(
            "experiments: another id in the text",
            M::PUT,
            "/experiments/copy",
            Author,
            YAML,
            &fresh,
            422,
            "INVALID_REQUEST",
            Some("metadata.id"),
        ),
        case(
            "experiments: replacing an active one",
            M::PUT,
            "/experiments/live-exp",
            Author,
            YAML,
            &exp.replace("id: copy", "id: live-exp"),
            409,
            "CONFLICT",
            Some("deactivate"),
        ),
        case(
            "experiments: author activates",
            M::POST,
            "/experiments/copy/activate",
            Author,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "experiments: another tenant activates",
            M::POST,
            "/experiments/copy/activate",
            OtherAdmin,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "experiments: activate an active one",
            M::POST,
            "/experiments/live-exp/activate",
            Admin,
            None,
            "",
            409,
            "CONFLICT",
            Some("active already"),
        ),
        case(
            "experiments: deactivate a paused one",
            M::POST,
            "/experiments/copy/deactivate",
            Admin,
            None,
            "",
            409,
            "CONFLICT",
            Some("paused"),
        ),
        case(
            "experiments: missing",
            M::POST,
            "/experiments/nope/deactivate",
            Admin,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
    ]
}

/// Approvals.
fn approval_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    let long_reason = format!(
        "{{\"channel\": \"ide\", \"reason\": \"{}\"}}",
        "x".repeat(600)
    );
    vec![
        case(
            "approve: no token",
            M::POST,
            "/actions/act-1/approve",
            Nobody,
            JSON,
            r#"{"channel": "ide"}"#,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "approve: malformed JSON",
            M::POST,
            "/actions/act-1/approve",
            Developer,
            JSON,
            r#"{"channel"#,
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "approve: wrong type",
            M::POST,
            "/actions/act-1/approve",
            Developer,
            JSON,
            r#"{"channel": 1}"#,
            422,
            "INVALID_REQUEST",
            Some("channel"),
        ),
        case(
            "approve: unknown field",
            M::POST,
            "/actions/act-1/approve",
            Developer,
            JSON,
            r#"{"channel": "ide", "votes": 2}"#,
            422,
            "INVALID_REQUEST",
            Some("votes"),
        ),
        case(
            "approve: bad channel",
            M::POST,
            "/actions/act-1/approve",
            Developer,
            JSON,
            r#"{"channel": "a b"}"#,
            422,
            "INVALID_REQUEST",
            Some("channel"),
        ),
        case(
            "approve: neither actor nor approver",
            M::POST,
            "/actions/act-1/approve",
            Admin,
            JSON,
            r#"{"channel": "ide"}"#,
            403,
            "FORBIDDEN",
            Some("approver"),
        ),
        case(
            "approve: another tenant",
            M::POST,
            "/actions/act-1/approve",
            OtherAdmin,
            JSON,
            r#"{"channel": "ide"}"#,
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "approve: terminal",
            M::POST,
            "/actions/act-done/approve",
            Approver,
            JSON,
            r#"{"channel": "chat"}"#,
            409,
            "CONFLICT",
            Some("approved"),
        ),
        case(
            "reject: terminal",
            M::POST,
            "/actions/act-done/reject",
            Developer,
            JSON,
            r#"{"channel": "chat"}"#,
            409,
            "CONFLICT",
            Some("approved"),
        ),
        case(
            "reject: reason too long",
            M::POST,
            "/actions/act-1/reject",
            Approver,
            JSON,
            &long_reason,
            422,
            "INVALID_REQUEST",
            Some("reason"),
        ),
        case(
            "reject: missing channel",
            M::POST,
            "/actions/act-1/reject",
            Approver,
            JSON,
            "{}",
            422,
            "INVALID_REQUEST",
            Some("channel"),
        ),
        case(
            "approval-status: no token",
            M::GET,
            "/actions/act-1/approval-status",
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "approval-status: another tenant",
            M::GET,
            "/actions/act-1/approval-status",
            OtherAdmin,
            None,
            "",
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "approval-status: not the actor",
            M::GET,
            "/actions/act-1/approval-status",
            Author,
            None,
            "",
            403,
            "FORBIDDEN",
            None,
        ),
    ]
}

/// Outcomes.
fn outcome_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    vec![
        case(
            "outcome: no token",
            M::POST,
            "/actions/act-1/outcome",
            Nobody,
            JSON,
            r#"{"result": "accepted"}"#,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "outcome: developer",
            M::POST,
            "/actions/act-1/outcome",
            Developer,
            JSON,
            r#"{"result": "accepted"}"#,
            403,
            "FORBIDDEN",
            Some("service"),
        ),
        case(
            "outcome: another tenant's action",
            M::POST,
            "/actions/act-1/outcome",
            OtherAdmin,
            JSON,
            r#"{"result": "accepted"}"#,
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            "outcome: malformed JSON",
            M::POST,
            "/actions/act-1/outcome",
            Service,
            JSON,
            "{result}",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "outcome: wrong type",
            M::POST,
            "/actions/act-1/outcome",
            Service,
            JSON,
            r#"{"result": true}"#,
            422,
            "INVALID_REQUEST",
            Some("result"),
        ),
        case(
            "outcome: unknown field",
            M::POST,
            "/actions/act-1/outcome",
            Service,
            JSON,
            r#"{"result": "accepted", "actor_id": "x"}"#,
            422,
            "INVALID_REQUEST",
            Some("actor_id"),
        ),
        case(
            "outcome: unknown result",
            M::POST,
            "/actions/act-1/outcome",
            Service,
            JSON,
            r#"{"result": "loved"}"#,
            422,
            "INVALID_REQUEST",
            Some("result"),
        ),
        case(
            "outcome: bad time",
            M::POST,
            "/actions/act-1/outcome",
            Service,
            JSON,
            r#"{"result": "accepted", "at": "noon"}"#,
            422,
            "INVALID_REQUEST",
            Some("at"),
        ),
    ]
}

/// Audit.
fn audit_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    vec![
        case(
            "audit: no token",
            M::GET,
            "/audit",
            Nobody,
            None,
            "",
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            "audit: author",
            M::GET,
            "/audit",
            Author,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("admin"),
        ),
        case(
            "audit: another tenant named",
            M::GET,
            "/audit?tenant=acme",
            OtherAdmin,
            None,
            "",
            403,
            "FORBIDDEN",
            Some("acme"),
        ),
        case(
            "audit: bad since",
            M::GET,
            "/audit?since=then",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("since"),
        ),
        case(
            "audit: bad limit",
            M::GET,
            "/audit?limit=0",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("limit"),
        ),
    ]
}

/// What tests/every_route.rs found, one row per fix (each fixed for every route of its
/// kind: in `parse_json`, `PathParams`, `QueryParams`, `routes::query`, decide).
fn hostile_cases() -> Vec<Case> {
    use Method as M;
    use Who::*;
    let nul_actor = r#"{"signal": {"tenant_id": "acme", "actor_id": "a\u0000b", "kind": "pr.opened", "occurred_at": "2026-11-24T10:00:00Z"}}"#;
    vec![
        case(
            "JSON with data after the value",
            M::PUT,
            "/actors/dev-1/preferences",
            Admin,
            JSON,
            "{} x",
            400,
            "INVALID_REQUEST",
            Some("after the value"),
        ),
        case(
            "a second JSON value",
            M::PUT,
            "/tenants/acme/policy",
            Admin,
            JSON,
            "{} {}",
            400,
            "INVALID_REQUEST",
            None,
        ),
        case(
            "NUL in a path parameter",
            M::PUT,
            "/actors/a%00b/preferences",
            Admin,
            JSON,
            "{}",
            422,
            "INVALID_REQUEST",
            Some("actor_id"),
        ),
        case(
            "a control character in a path parameter",
            M::GET,
            "/playbooks/pb%1B",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("control character"),
        ),
        case(
            "NUL in a query value",
            M::GET,
            "/receipts?chain_id=a%00b",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("chain_id"),
        ),
        case(
            "a query parameter the route does not document",
            M::POST,
            "/decide?dry_run=1",
            Service,
            JSON,
            "{}",
            422,
            "INVALID_REQUEST",
            Some("dry_run"),
        ),
        case(
            "a query parameter besides the documented ones",
            M::DELETE,
            "/playbooks/pb/versions/2?force=true&tenant=acme",
            Admin,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("force"),
        ),
        case(
            "a query parameter on a public route",
            M::GET,
            "/health?verbose=1",
            Nobody,
            None,
            "",
            422,
            "INVALID_REQUEST",
            Some("takes no query parameters"),
        ),
        case(
            "NUL in a signal's actor id",
            M::POST,
            "/decide",
            Service,
            JSON,
            nul_actor,
            422,
            "SIGNAL_INVALID",
            Some("signal.actor_id"),
        ),
    ]
}
