//! Every operation of the host's own `openapi.json`, hostile input: a route added later is
//! covered without editing this file (a route with a request body needs a sample in
//! [`sample`], and the test fails until it has one).
//!
//! For each operation a battery of requests — tokens missing, expired, forged, of another
//! tenant or of too weak a role; bodies malformed, of the wrong type, with unknown fields,
//! nested 10,000 deep, with numbers beyond any integer, NaN-like strings, control and bidi
//! characters, 100 KB values, invalid UTF-8, over the body limit, of the wrong content
//! type; path parameters too long, with `%00`, `..`, unicode, of the wrong type; query
//! parameters unknown, duplicated, of the wrong type — and for each answer: no 5xx; every
//! 4xx is `application/problem+json` with one of SPEC §13's codes at its status; and a
//! refused request leaves the store as it was. A request the host accepts (a hostile
//! value that is still valid, such as a unicode actor id) may change the store; the next
//! comparison starts from there.
//!
//! One host per backend, every request in process (`oneshot`), no sleeps.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, Method};
use mmm_engine::Status;
use mmm_host::auth::LocalKey;
use mmm_host::store::{Scope, Store};
use serde_json::{json, Value};

use crate::common::{audit, backends, claims, snapshot, version, Host, Reply, KEY_SEED};

/// The body limit of the host under test: above the 100 KB values, so they reach the
/// parsers; the over-limit case sends more.
const BODY_LIMIT: usize = 256 * 1024;

/// SPEC §13's stable codes and the statuses each may come with.
const CODES: &[(&str, &[u16])] = &[
    ("UNAUTHENTICATED", &[401]),
    ("FORBIDDEN", &[403]),
    ("NOT_FOUND", &[404]),
    ("CONFLICT", &[409]),
    ("PAYLOAD_TOO_LARGE", &[413]),
    ("SIGNAL_INVALID", &[422]),
    ("PLAYBOOK_INVALID", &[422]),
    ("INVALID_REQUEST", &[400, 422]),
    ("RATE_LIMITED", &[429]),
    ("UNAVAILABLE", &[503]),
];

/// One operation of the document.
#[derive(Debug, Clone)]
struct Op {
    method: Method,
    /// `/v1/mmm/playbooks/{id}`.
    template: String,
    /// Needs a bearer token (the operation lists `security`).
    secured: bool,
    /// `(name, schema type)` of each path parameter.
    path: Vec<(String, String)>,
    /// `(name, schema type)` of each query parameter.
    query: Vec<(String, String)>,
    /// `(name, schema type)` of each header parameter.
    header: Vec<(String, String)>,
    /// The content types of its request body, when it takes one.
    body: Vec<String>,
}

impl Op {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

fn schema_type(param: &Value) -> String {
    let schema = &param["schema"];
    match &schema["type"] {
        Value::String(s) => s.clone(),
        // `["integer", "null"]` for an optional one.
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_owned(),
        _ => "string".to_owned(),
    }
}

/// The operations of the document the host serves.
fn operations(doc: &Value) -> Vec<Op> {
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let of = |place: &str| -> Vec<(String, String)> {
                params
                    .iter()
                    .filter(|p| p["in"] == place)
                    .map(|p| (p["name"].as_str().unwrap().to_owned(), schema_type(p)))
                    .collect()
            };
            out.push(Op {
                method,
                template: template.clone(),
                secured: op["security"].as_array().is_some_and(|s| !s.is_empty()),
                path: of("path"),
                query: of("query"),
                header: of("header"),
                body: op["requestBody"]["content"]
                    .as_object()
                    .map(|c| c.keys().cloned().collect())
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// A valid value of a path parameter, naming a resource seeded for tenant `acme`.
fn valid_param(template: &str, name: &str) -> &'static str {
    match name {
        "id" if template.contains("/experiments/") => "copy",
        "id" => "pb",
        "v" => "2",
        "actor_id" => "dev-1",
        "tenant_id" => "acme",
        "action_id" => "act-1",
        _ => "x",
    }
}

fn uri(op: &Op, replace: Option<(&str, &str)>, query: &str) -> String {
    let mut uri = op.template.clone();
    for (name, _) in &op.path {
        let value = match replace {
            Some((n, v)) if n == name => v.to_owned(),
            _ => valid_param(&op.template, name).to_owned(),
        };
        uri = uri.replace(&format!("{{{name}}}"), &value);
    }
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    uri
}

fn signal() -> Value {
    json!({"signal_id": "0193a0b0-0000-7000-8000-000000000001",
           "tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened", "source": "scm",
           "occurred_at": "2026-11-24T10:00:00Z", "surface": "pr_comment",
           "repo": {"id": "acme/api", "branch": "feat/x"},
           "payload": {"lines_changed": 420, "files_changed": 12}})
}

fn playbook_doc(id: &str) -> Value {
    json!({"apiVersion": "mmm/v1", "kind": "Playbook",
           "metadata": {"id": id, "version": 1, "tenant": "acme", "status": "draft",
                        "category": "general"},
           "spec": {"triggers": ["pr.opened"],
                    "actions": [{"type": "mirror", "surfaces": ["ide"], "title": "Opened",
                                 "text": "A pull request was opened."}]}})
}

fn experiment_doc(id: &str) -> Value {
    json!({"apiVersion": "mmm/v1", "kind": "Experiment",
           "metadata": {"id": id, "tenant": "acme", "status": "paused"},
           "spec": {"playbook": "pb", "strategy": "fixed", "success_outcomes": ["accepted"],
                    "variants": [{"name": "control", "weight": 50},
                                 {"name": "concise", "weight": 50, "set": {"title": "Short"}}]}})
}

/// A valid body of each operation that takes one, as JSON (YAML routes get the JSON
/// text, which is YAML too). `None`: the test fails, asking for one.
fn sample(op: &Op) -> Option<Value> {
    let t = op.template.trim_start_matches("/v1/mmm");
    Some(match (op.method.as_str(), t) {
        ("POST", "/decide") => json!({"signal": signal(), "explain": true,
                                      "context": {"actor": {"roles": ["dev"]}}}),
        ("POST", "/playbooks") | ("POST", "/playbooks/validate") => playbook_doc("fresh"),
        ("POST", "/playbooks/{id}/versions/{v}/simulate") => json!([signal()]),
        ("PUT", "/actors/{actor_id}/preferences") => json!({"opt_out_categories": ["style"]}),
        ("POST", "/actors/{actor_id}/preferences/snooze") => json!({"for": "2h"}),
        ("PUT", "/tenants/{tenant_id}/policy") => json!({"max_actions_per_decision": 2}),
        ("PUT", "/tenants/{tenant_id}/delivery") => {
            json!({"ide": {"url": "https://hooks.example/ide", "secret": "s3cret"}})
        }
        ("POST", "/experiments") => experiment_doc("fresh-exp"),
        ("PUT", "/experiments/{id}") => experiment_doc("copy"),
        ("POST", "/actions/{action_id}/approve") | ("POST", "/actions/{action_id}/reject") => {
            json!({"channel": "ide"})
        }
        ("POST", "/actions/{action_id}/outcome") => json!({"result": "accepted"}),
        _ => return None,
    })
}

/// The content type a route's body is sent with.
fn content_type(op: &Op) -> &'static str {
    if op.body.iter().any(|c| c.contains("yaml")) {
        "application/yaml"
    } else {
        "application/json"
    }
}

/// Every place in a value: each member and element, at any depth (not the root).
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        Value::Array(items) => {
            // Each element replaced; the inside of the first only (the others are alike).
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                if i == 0 {
                    pointers(v, &p, out);
                }
            }
        }
        _ => {}
    }
}

const HOLE: &str = "\u{1}__hostile__\u{1}";

/// `value` with the member at `pointer` replaced by the raw JSON text `raw` (raw, so
/// numbers no JSON value can hold are sent as written).
fn with_raw(value: &Value, pointer: &str, raw: &str) -> String {
    let mut v = value.clone();
    *v.pointer_mut(pointer).unwrap() = Value::String(HOLE.to_owned());
    let hole = Value::String(HOLE.to_owned()).to_string();
    v.to_string().replacen(&hole, raw, 1)
}

fn deep(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// Hostile values for a member: `(label, raw JSON)`.
fn hostile_values() -> Vec<(&'static str, String)> {
    vec![
        ("1e400", "1e400".to_owned()),
        ("-2^70", "-1180591620717411303424".to_owned()),
        ("-1", "-1".to_owned()),
        ("\"NaN\"", "\"NaN\"".to_owned()),
        ("\"-Infinity\"", "\"-Infinity\"".to_owned()),
        ("null", "null".to_owned()),
        ("true", "true".to_owned()),
        ("[]", "[]".to_owned()),
        ("{}", "{}".to_owned()),
        (
            "control characters",
            json!("a\u{0}b\u{7}\u{1b}[31m\r\n\u{7f}").to_string(),
        ),
        (
            "bidi and invisible characters",
            json!("\u{202e}evil\u{2066}\u{200b}\u{feff}x").to_string(),
        ),
        ("lone surrogate", "\"\\ud800\"".to_owned()),
        ("100 KB string", json!("x".repeat(100 * 1024)).to_string()),
        ("10,000 levels", deep(10_000)),
    ]
}

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Every role of tenant `acme`, `sub` the seeded actor: passes every role check.
    Full,
    Nobody,
    Expired,
    OtherKey,
    Tampered,
    Garbage,
    Basic,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 with a made-up secret (algorithm confusion).
    Hs256,
    /// 100 KB of token.
    Huge,
    /// `developer` of `acme`, `sub` an actor owning nothing.
    WeakRole,
    /// Every role of tenant `other`, the same `sub`.
    OtherTenant,
}

const ALL_ROLES: &[&str] = &["admin", "author", "approver", "service", "developer"];

fn authorization(host: &Host, who: Who) -> Option<String> {
    let bearer = |t: String| Some(format!("Bearer {t}"));
    match who {
        Who::Full => bearer(host.token("acme", ALL_ROLES, "dev-1")),
        Who::Nobody => None,
        Who::Expired => {
            let key = LocalKey::from_seed(KEY_SEED);
            bearer(
                key.mint(&claims("acme", ALL_ROLES, "dev-1", -3600))
                    .unwrap(),
            )
        }
        Who::OtherKey => {
            let key = LocalKey::from_seed([9; 32]);
            bearer(key.mint(&claims("acme", ALL_ROLES, "dev-1", 3600)).unwrap())
        }
        Who::Tampered => {
            let token = host.token("acme", ALL_ROLES, "dev-1");
            let (head, sig) = token.rsplit_once('.').unwrap();
            let flipped: String = sig
                .chars()
                .enumerate()
                .map(|(i, c)| match (i, c) {
                    (0, 'A') => 'B',
                    (0, _) => 'A',
                    (_, c) => c,
                })
                .collect();
            bearer(format!("{head}.{flipped}"))
        }
        Who::Garbage => bearer("not.a.jwt".to_owned()),
        Who::AlgNone => {
            use base64::Engine as _;
            let b64 =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            let body = serde_json::to_value(claims("acme", ALL_ROLES, "dev-1", 3600)).unwrap();
            bearer(format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&body)
            ))
        }
        Who::Hs256 => bearer(
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &claims("acme", ALL_ROLES, "dev-1", 3600),
                &jsonwebtoken::EncodingKey::from_secret(b"guessed").unwrap(),
            )
            .unwrap(),
        ),
        Who::Huge => bearer("a".repeat(100 * 1024)),
        Who::Basic => Some("Basic YWRtaW46YWRtaW4=".to_owned()),
        Who::WeakRole => bearer(host.token("acme", &["developer"], "nobody")),
        Who::OtherTenant => bearer(host.token("other", ALL_ROLES, "dev-1")),
    }
}

/// One request of the battery.
struct Probe {
    label: String,
    who: Who,
    uri: String,
    content_type: Option<String>,
    /// Other headers.
    headers: Vec<(String, String)>,
    body: Body,
    /// Statuses the answer must have (empty: any below 500).
    expect: &'static [u16],
}

fn probe(label: impl Into<String>, who: Who, uri: String, expect: &'static [u16]) -> Probe {
    Probe {
        label: label.into(),
        who,
        uri,
        content_type: None,
        headers: Vec::new(),
        body: Body::empty(),
        expect,
    }
}

impl Probe {
    fn body(mut self, content_type: Option<&str>, body: impl Into<Body>) -> Probe {
        self.content_type = content_type.map(str::to_owned);
        self.body = body.into();
        self
    }
}

const CLIENT_ERROR: &[u16] = &[400, 401, 403, 404, 409, 413, 422, 429];
const ANY: &[u16] = &[];
/// A body with no document in it (empty, white space, `null`): refused, or — where the
/// route reports on a text as `mmm validate --strict` does — 200 with no diagnostics, as a
/// YAML stream of no documents has nothing wrong in it.
const NO_DOCUMENT: &[u16] = &[400, 401, 403, 404, 409, 413, 422, 429, 0];

/// The battery for one operation.
fn probes(op: &Op) -> Vec<Probe> {
    let mut out = Vec::new();
    let ct = content_type(op);
    let sample_body = sample(op);
    let valid_body = |p: Probe| match &sample_body {
        Some(b) if !op.body.is_empty() => p.body(Some(ct), b.to_string()),
        _ => p,
    };
    let base = uri(op, None, "");

    // Tokens.
    if op.secured {
        for who in [
            Who::Nobody,
            Who::Expired,
            Who::OtherKey,
            Who::Tampered,
            Who::Garbage,
            Who::Basic,
            Who::AlgNone,
            Who::Hs256,
            Who::Huge,
        ] {
            out.push(valid_body(probe(
                format!("token: {who:?}"),
                who,
                base.clone(),
                &[401],
            )));
        }
        out.push(valid_body(probe(
            "token: a role too weak",
            Who::WeakRole,
            base.clone(),
            if op.method == Method::GET {
                ANY
            } else {
                &[403, 404]
            },
        )));
        // A path naming tenant `acme`'s resource: 403 or 404 for another tenant. (Actor
        // ids are each tenant's own: `other`'s `dev-1` is another actor.)
        let names_acme = !op.path.is_empty() && op.path.iter().all(|(n, _)| n != "actor_id");
        out.push(valid_body(probe(
            "token: another tenant",
            Who::OtherTenant,
            base.clone(),
            if names_acme { &[403, 404] } else { ANY },
        )));
    } else {
        out.push(probe("public, no token", Who::Nobody, base.clone(), &[200]));
    }

    // Path parameters.
    for (name, kind) in &op.path {
        let too_long = "a".repeat(300);
        let far_too_long = "a".repeat(10_000);
        let mut values: Vec<(&str, String, &'static [u16])> = vec![
            ("300 characters", too_long, ANY),
            ("10,000 characters", far_too_long, CLIENT_ERROR),
            ("%00", "%00".to_owned(), CLIENT_ERROR),
            ("a%00b", "a%00b".to_owned(), CLIENT_ERROR),
            ("..", "..".to_owned(), ANY),
            ("%2e%2e", "%2e%2e".to_owned(), ANY),
            ("encoded slash", "a%2Fb".to_owned(), ANY),
            ("unicode", "%C3%BC%F0%9F%99%82".to_owned(), ANY),
            ("bidi", "%E2%80%AEx".to_owned(), ANY),
            ("invalid UTF-8", "%FF%FE".to_owned(), CLIENT_ERROR),
            ("a space", "%20".to_owned(), ANY),
            ("-1", "-1".to_owned(), ANY),
            ("NaN", "NaN".to_owned(), ANY),
        ];
        if kind == "integer" {
            for (label, v) in [
                ("not a number", "abc"),
                ("negative", "-1"),
                ("2^32", "4294967296"),
                ("2^70", "1180591620717411303424"),
                ("a fraction", "1.5"),
                ("an exponent", "1e3"),
            ] {
                values.push((label, v.to_owned(), CLIENT_ERROR));
            }
        }
        for (label, value, expect) in values {
            out.push(valid_body(probe(
                format!("path {name}: {label}"),
                Who::Full,
                uri(op, Some((name, &value)), ""),
                expect,
            )));
        }
    }

    // Headers: documented ones (`If-Match`) with values that are no tag, and `Accept`
    // asking for what no route serves.
    let mut headers: Vec<(String, String)> = vec![
        ("accept".to_owned(), "application/x-nonsense".to_owned()),
        ("accept".to_owned(), "*/*;q=abc, text/html;q=2".to_owned()),
    ];
    for (name, _) in &op.header {
        for value in [
            "abc",
            "\"-1\"",
            "W/\"1\"",
            "\"99999999999999999999999\"",
            "*",
        ] {
            headers.push((name.clone(), value.to_owned()));
        }
        headers.push((name.clone(), format!("\"{}\"", "9".repeat(10 * 1024))));
    }
    for (name, value) in headers {
        let mut p = valid_body(probe(
            format!("header {name}: {}", cut(&value)),
            Who::Full,
            base.clone(),
            ANY,
        ));
        p.headers.push((name, value));
        out.push(p);
    }

    // Query parameters: unknown, and for each documented one duplicated, of the wrong
    // type, or strange.
    out.push(valid_body(probe(
        "query: unknown",
        Who::Full,
        uri(op, None, "zzz_unknown=1"),
        CLIENT_ERROR,
    )));
    out.push(valid_body(probe(
        "query: not percent-decodable",
        Who::Full,
        uri(op, None, "%FF%FE=%FF"),
        CLIENT_ERROR,
    )));
    for (name, kind) in &op.query {
        out.push(valid_body(probe(
            format!("query {name}: duplicated"),
            Who::Full,
            uri(op, None, &format!("{name}=1&{name}=2")),
            CLIENT_ERROR,
        )));
        let mut values: Vec<(&str, String, &'static [u16])> = vec![
            ("%00", "a%00b".to_owned(), ANY),
            ("invalid UTF-8", "%FF".to_owned(), ANY),
            ("empty", String::new(), ANY),
            ("10 KB", "q".repeat(10 * 1024), ANY),
            ("bidi", "%E2%80%AEx".to_owned(), ANY),
        ];
        if kind == "integer" {
            for (label, v) in [
                ("not a number", "abc"),
                ("negative", "-1"),
                ("2^70", "1180591620717411303424"),
                ("an exponent", "1e3"),
                ("NaN", "NaN"),
            ] {
                values.push((label, v.to_owned(), CLIENT_ERROR));
            }
        }
        for (label, value, expect) in values {
            out.push(valid_body(probe(
                format!("query {name}: {label}"),
                Who::Full,
                uri(op, None, &format!("{name}={value}")),
                expect,
            )));
        }
    }

    // Bodies.
    if op.body.is_empty() {
        return out;
    }
    let full = |label: String, body: Body, expect| {
        probe(label, Who::Full, base.clone(), expect).body(Some(ct), body)
    };
    for (label, text) in [
        ("malformed: cut short", "{\"a\": "),
        ("malformed: unclosed", "{"),
        ("malformed: a stray brace", "}"),
        ("malformed: no colon", "{\"a\" 1}"),
        ("malformed: trailing garbage", "{} x"),


        ("wrong type: string", "\"text\""),
        ("wrong type: number", "1"),
        ("wrong type: boolean", "true"),
        ("unknown field alone", "{\"zzz_unknown\": 1}"),
        ("1e400", "1e400"),
        ("YAML alias bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"),
        ("YAML tags", "!!binary aGk=\n"),
        ("YAML documents", "---\na: 1\n---\nb: 2\n"),
    ] {
        out.push(full(label.to_owned(), text.to_owned().into(), CLIENT_ERROR));
    }
    // `[]` and `{}` are valid where a list of signals or an object of optional members is
    // (simulate, preferences, policy): answered, but never with a 5xx.
    for (label, text) in [
        ("no document: empty", ""),
        ("no document: only spaces", "  \n "),
        ("no document: null", "null"),
    ] {
        out.push(full(label.to_owned(), text.to_owned().into(), NO_DOCUMENT));
    }
    for (label, text) in [("wrong type: array", "[]"), ("wrong type: object", "{}")] {
        out.push(full(label.to_owned(), text.to_owned().into(), ANY));
    }
    out.push(full(
        "10,000 levels of arrays".to_owned(),
        deep(10_000).into(),
        CLIENT_ERROR,
    ));
    out.push(full(
        "10,000 levels of objects".to_owned(),
        format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into(),
        CLIENT_ERROR,
    ));
    out.push(full(
        "10,000 levels of YAML blocks".to_owned(),
        (0..10_000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect::<String>()
            .into(),
        CLIENT_ERROR,
    ));
    out.push(full(
        "invalid UTF-8".to_owned(),
        b"{\"a\": \"\xff\xfe\"}".to_vec().into(),
        CLIENT_ERROR,
    ));
    out.push(full(
        "NUL bytes".to_owned(),
        b"{\"a\": 1}\0\0".to_vec().into(),
        CLIENT_ERROR,
    ));
    let over = format!("[\"{}\"]", " ".repeat(BODY_LIMIT + 1));
    out.push(full(
        "over the limit".to_owned(),
        over.clone().into(),
        &[413],
    ));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = over
        .into_bytes()
        .chunks(16 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    out.push(full(
        "over the limit, streamed".to_owned(),
        Body::from_stream(futures_util::stream::iter(chunks)),
        &[413],
    ));
    let Some(sample) = sample_body else {
        return out;
    };
    for wrong in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some(if ct == "application/json" {
            "application/yaml"
        } else {
            "application/json"
        }),
        Some("application/json-seq"),
    ] {
        out.push(
            probe(
                format!("content type: {wrong:?}"),
                Who::Full,
                base.clone(),
                // A route reading signals as JSON or NDJSON by their type takes any.
                if op.template.ends_with("/simulate") {
                    ANY
                } else {
                    CLIENT_ERROR
                },
            )
            .body(wrong, sample.to_string()),
        );
    }
    if let Value::Object(map) = &sample {
        let mut extra = map.clone();
        extra.insert("zzz_unknown".to_owned(), json!(1));
        out.push(full(
            "unknown field".to_owned(),
            Value::Object(extra).to_string().into(),
            CLIENT_ERROR,
        ));
    }
    let mut places = Vec::new();
    pointers(&sample, "", &mut places);
    for place in places {
        for (label, raw) in hostile_values() {
            out.push(full(
                format!("{place} = {label}"),
                with_raw(&sample, &place, &raw).into(),
                ANY,
            ));
        }
    }
    out
}

/// What a refused request must not change: every record the store lists, of every
/// tenant.
async fn state_of(s: &dyn Store) -> String {
    let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    let (all, acme, prefs, policy, counts, receipts, chains) = tokio::join!(
        snapshot(s),
        crate::bad_input::resources(s),
        s.get_preferences("other", "dev-1"),
        s.get_tenant_policy("other"),
        s.counts("other", None, jiff::Timestamp::UNIX_EPOCH, far),
        s.list_receipts(None, None, 0, 10_000),
        s.chains(),
    );
    format!(
        "{all}\n{acme}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        prefs.unwrap(),
        policy.unwrap(),
        counts.unwrap(),
        receipts.unwrap(),
        chains.unwrap()
    )
}

/// What tenant `acme` holds: no request of another tenant may change it.
async fn acme_state(s: &dyn Store) -> String {
    let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    let mut out = vec![crate::bad_input::resources(s).await];
    out.push(format!(
        "{:?}",
        s.list_playbooks(Scope::Only("acme"), None).await.unwrap()
    ));
    out.push(format!(
        "{:?}",
        s.list_audit(Scope::Only("acme"), jiff::Timestamp::UNIX_EPOCH, 0, 10_000)
            .await
            .unwrap()
    ));
    out.push(format!(
        "{:?}",
        s.counts("acme", None, jiff::Timestamp::UNIX_EPOCH, far)
            .await
            .unwrap()
    ));
    out.push(format!(
        "{:?}",
        s.list_receipts(Some("acme"), None, 0, 10_000)
            .await
            .unwrap()
    ));
    out.join("\n")
}

async fn send(host: &Host, op: &Op, p: Probe) -> Reply {
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(a) = authorization(host, p.who) {
        headers.push((header::AUTHORIZATION.to_string(), a));
    }
    let mut req = axum::http::Request::builder()
        .method(op.method.clone())
        .uri(&p.uri);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    if let Some(ct) = &p.content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    for (k, v) in &p.headers {
        req = req.header(k, v);
    }
    host.send(req.body(p.body).unwrap()).await
}

/// What is wrong with an answer, if anything.
fn judge(r: &Reply, expect: &[u16]) -> Option<String> {
    let status = r.status.as_u16();
    if status >= 500 {
        return Some(format!("a {status}: {}", cut(&r.text)));
    }
    // A route that reports on its body (validate) refuses it with a 200 carrying error
    // diagnostics.
    let diagnostics = (status == 200)
        .then(|| serde_json::from_str::<Value>(&r.text).ok())
        .flatten()
        .and_then(|b| b["diagnostics"].as_array().cloned());
    let reported = match &diagnostics {
        Some(_) if expect == NO_DOCUMENT => true,
        Some(d) if expect == CLIENT_ERROR => d.iter().any(|d| d["severity"] == "error"),
        _ => false,
    };
    if !expect.is_empty() && !expect.contains(&status) && !reported {
        return Some(format!(
            "{status}, expected one of {expect:?}: {}",
            cut(&r.text)
        ));
    }
    if status < 400 {
        return None;
    }
    let ct = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/problem+json" {
        return Some(format!(
            "{status} with content type {ct:?}: {}",
            cut(&r.text)
        ));
    }
    let Ok(body) = serde_json::from_str::<Value>(&r.text) else {
        return Some(format!(
            "{status}, a body that is not JSON: {}",
            cut(&r.text)
        ));
    };
    let code = body["code"].as_str().unwrap_or("");
    match CODES.iter().find(|(c, _)| *c == code) {
        None => return Some(format!("{status}, code {code:?} is not one of SPEC §13's")),
        Some((_, statuses)) if !statuses.contains(&status) => {
            return Some(format!(
                "{status} with code {code}, which SPEC §13 gives {statuses:?}"
            ));
        }
        Some(_) => {}
    }
    if body["status"] != status || !body["detail"].is_string() || !body["title"].is_string() {
        return Some(format!("{status}: not a whole problem: {}", cut(&r.text)));
    }
    None
}

fn cut(text: &str) -> String {
    text.chars().take(300).collect()
}

/// A host on `db` with the resources every route names seeded for tenant `acme`.
async fn seeded(db: crate::common::TestDb) -> Host {
    let host = Host::with_settings(
        db,
        mmm_host::Settings {
            body_limit: BODY_LIMIT,
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
    crate::bad_input::seed_resources(&host).await;
    host.state.live.reload(s).await.unwrap();
    host
}

/// Both backends at once (each its own host and store), so the test takes the time of
/// the slower one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_hostile_input_with_problem_details_and_changes_nothing() {
    let _heavy = crate::common::HEAVY.lock().await;
    let runs: Vec<_> = backends()
        .await
        .into_iter()
        .map(|db| tokio::spawn(battery(db)))
        .collect();
    let mut reports = Vec::new();
    for run in runs {
        reports.extend(run.await.unwrap());
    }
    assert!(reports.is_empty(), "{}", reports.join("\n\n"));
}

/// The battery on one backend: what failed, if anything.
async fn battery(db: crate::common::TestDb) -> Option<String> {
    {
        let host = seeded(db).await;
        let served = host.get("/v1/mmm/openapi.json", "unused").await;
        let ops = operations(&served.json());
        assert!(ops.len() >= 30, "{} operations", ops.len());
        let s = &*host.db.store;
        let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut sent = 0usize;
        let mut before = state_of(s).await;
        // Real time: the time taken is reported, not asserted.
        let started = std::time::Instant::now();
        for op in &ops {
            if !op.body.is_empty() && sample(op).is_none() {
                failures
                    .entry(op.name())
                    .or_default()
                    .push("takes a body: give it a valid sample in `sample`".to_owned());
            }
            for p in probes(op) {
                let label = p.label.clone();
                let (who, expect) = (p.who, p.expect);
                let acme_before = if who == Who::OtherTenant {
                    acme_state(s).await
                } else {
                    String::new()
                };
                let r = send(&host, op, p).await;
                sent += 1;
                let mut problems = Vec::new();
                problems.extend(judge(&r, expect));
                let status = r.status.as_u16();
                // A request the host accepted may change the store; the next comparison
                // starts from what it holds now.
                let after = state_of(s).await;
                if status >= 400 && after != before {
                    problems.push(format!("refused with {status}, yet the store changed"));
                }
                before = after;
                if who == Who::OtherTenant {
                    if acme_state(s).await != acme_before {
                        problems.push(format!(
                            "another tenant's request ({status}) changed tenant acme's records"
                        ));
                    }
                    if status < 300 && op.method == Method::GET && r.text.contains("acme") {
                        problems.push(format!("another tenant sees acme: {}", cut(&r.text)));
                    }
                }
                if who == Who::WeakRole && status < 300 && op.method != Method::GET {
                    problems.push(format!("a developer token wrote: {status}"));
                }
                for problem in problems {
                    failures
                        .entry(op.name())
                        .or_default()
                        .push(format!("{label}: {problem}"));
                }
            }
        }
        eprintln!(
            "every_route: {}: {sent} requests in {:?}",
            host.db.name,
            started.elapsed()
        );
        let report: Vec<String> = failures
            .iter()
            .flat_map(|(op, fs)| fs.iter().map(move |f| format!("{op} — {f}")))
            .collect();
        (!report.is_empty()).then(|| {
            format!(
                "{} ({sent} requests): {} failures:\n{}",
                host.db.name,
                report.len(),
                report.join("\n")
            )
        })
    }
}
