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
        host.state.live.reload(s).await.unwrap();
        let before = snapshot(s).await;
        for c in cases() {
            let body: axum::body::Body = if c.name == "not UTF-8" {
                vec![0xff, 0xfe, 0x00].into()
            } else {
                c.body.clone().into()
            };
            let r = host
                .call(
                    c.method.clone(),
                    &c.uri,
                    token(&host, c.who).as_deref(),
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
                snapshot(s).await,
                before,
                "{}: nothing stored may change",
                c.name
            );
        }
    }
}
