//! Console sign-in by OpenID Connect (issue 12): the authorization code flow with PKCE
//! against a small provider served on loopback by the test (discovery, authorization,
//! token and JWKS endpoints; ES256 ID tokens from `tests/keys/`), and the host's refusals
//! of every way the answer can be wrong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mmm_host::console::{oidc::OidcClient, ConsoleConfig};
use serde_json::{json, Value};
use sha2::Digest;

use crate::common::{sqlite, Browser, Host};

/// How the provider answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Honest,
    WrongNonce,
    WrongAudience,
    Expired,
    NoTenant,
}

/// What an authorization request asked for: code challenge, nonce, redirect URI.
type Grant = (String, String, String);

#[derive(Clone)]
struct Provider {
    issuer: String,
    mode: Arc<Mutex<Mode>>,
    codes: Arc<Mutex<HashMap<String, Grant>>>,
    /// What the token endpoint saw: whether the verifier matched the challenge.
    verified_pkce: Arc<Mutex<Vec<bool>>>,
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/keys")
            .join(name),
    )
    .unwrap()
}

async fn discovery(State(p): State<Provider>) -> axum::Json<Value> {
    axum::Json(json!({
        "issuer": p.issuer,
        "authorization_endpoint": format!("{}/authorize", p.issuer),
        "token_endpoint": format!("{}/token", p.issuer),
        "jwks_uri": format!("{}/jwks", p.issuer),
    }))
}

async fn jwks() -> axum::Json<Value> {
    let key = jsonwebtoken::DecodingKey::from_ec_pem(&key_file("es256.pub.pem")).unwrap();
    let mut jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_decoding_key(&key, Some(Algorithm::ES256)).unwrap(),
    )
    .unwrap();
    jwk["kid"] = "idp-1".into();
    axum::Json(json!({"keys": [jwk]}))
}

/// Signs the person in at once and sends them back with a code.
async fn authorize(
    State(p): State<Provider>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "console");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let code = format!("code-{}", p.codes.lock().unwrap().len());
    p.codes.lock().unwrap().insert(
        code.clone(),
        (
            q["code_challenge"].clone(),
            q["nonce"].clone(),
            q["redirect_uri"].clone(),
        ),
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        q["redirect_uri"], q["state"]
    ))
    .into_response()
}

async fn token(State(p): State<Provider>, Form(f): Form<HashMap<String, String>>) -> Response {
    let Some((challenge, nonce, redirect_uri)) = p.codes.lock().unwrap().remove(&f["code"]) else {
        return (StatusCode::BAD_REQUEST, "unknown code").into_response();
    };
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(f["code_verifier"].as_bytes()));
    p.verified_pkce.lock().unwrap().push(computed == challenge);
    if computed != challenge || f["redirect_uri"] != redirect_uri || f["client_id"] != "console" {
        return (StatusCode::BAD_REQUEST, "invalid_grant").into_response();
    }
    let mode = *p.mode.lock().unwrap();
    // Real time: the host verifies `exp` against the system clock (jsonwebtoken), so the
    // provider dates its ID tokens by that clock.
    let now = jiff::Timestamp::now().as_second();
    let mut claims = json!({
        "iss": p.issuer,
        "aud": if mode == Mode::WrongAudience { "someone-else" } else { "console" },
        "sub": "ada",
        "tenant_id": "demo",
        "roles": ["developer"],
        "nonce": if mode == Mode::WrongNonce { "another" } else { nonce.as_str() },
        "iat": now,
        "exp": if mode == Mode::Expired { now - 600 } else { now + 600 },
    });
    if mode == Mode::NoTenant {
        claims.as_object_mut().unwrap().remove("tenant_id");
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("idp-1".into());
    let id_token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(&key_file("es256.pem")).unwrap(),
    )
    .unwrap();
    axum::Json(json!({"id_token": id_token, "access_token": "opaque", "token_type": "Bearer", "expires_in": 600}))
        .into_response()
}

async fn provider() -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = Provider {
        issuer: format!("http://{}", listener.local_addr().unwrap()),
        mode: Arc::new(Mutex::new(Mode::Honest)),
        codes: Arc::default(),
        verified_pkce: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/jwks", get(jwks))
        .with_state(p.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    p
}

async fn host_with(p: &Provider) -> Host {
    let mut host = Host::new(sqlite().await).await;
    let console = ConsoleConfig::new(
        axum_extra::extract::cookie::Key::generate(),
        Some("https://console.test"),
        std::time::Duration::from_secs(3600),
        Some(OidcClient::new(&p.issuer, "console", None, "openid profile").unwrap()),
    )
    .unwrap();
    host.state = host.state.clone().with_console(console);
    host.app = mmm_host::app(host.state.clone());
    host
}

/// Runs the flow as a browser would: the console's redirect to the provider, the
/// provider's back to the callback. Returns the callback's answer.
async fn sign_in(b: &mut Browser<'_>) -> crate::common::Reply {
    let start = b.get("/ui/oidc/start").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.text);
    let oidc_cookie = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("mmm_oidc="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/ui/oidc", "Max-Age=600"] {
        assert!(oidc_cookie.contains(attribute), "{oidc_cookie}");
    }
    let to_provider = start.headers[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        to_provider.contains("redirect_uri=https%3A%2F%2Fconsole.test%2Fui%2Foidc%2Fcallback"),
        "{to_provider}"
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let back = client.get(&to_provider).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let path = callback
        .strip_prefix("https://console.test")
        .unwrap()
        .to_owned();
    b.get(&path).await
}

#[tokio::test]
async fn signing_in_with_the_organisations_provider_starts_a_session_for_its_claims() {
    let p = provider().await;
    let host = host_with(&p).await;
    let mut b = Browser::new(&host);
    let page = b.get("/ui/signin").await;
    assert!(page.text.contains("id=\"signin-oidc\""), "{}", page.text);
    let reply = sign_in(&mut b).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.text.contains("http-equiv=\"refresh\""));
    assert_eq!(*p.verified_pkce.lock().unwrap(), vec![true], "S256 PKCE");
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("mmm_session="))
        .expect("a session");
    assert!(
        session.contains("SameSite=Strict") && session.contains("Secure"),
        "{session}"
    );
    assert!(!b.has_cookie("mmm_oidc"), "the attempt's cookie is spent");
    let home = b.get("/ui/").await;
    assert!(home.text.contains("ada · demo"), "{}", home.text);
}

#[tokio::test]
async fn every_wrong_answer_of_the_provider_ends_on_the_sign_in_required_page() {
    let p = provider().await;
    let host = host_with(&p).await;
    for (mode, why) in [
        (Mode::WrongNonce, "nonce"),
        (Mode::WrongAudience, "audience"),
        (Mode::Expired, "expired"),
        (Mode::NoTenant, "tenant_id"),
    ] {
        *p.mode.lock().unwrap() = mode;
        let mut b = Browser::new(&host);
        let reply = sign_in(&mut b).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{why}: {}",
            reply.text
        );
        assert!(
            reply.text.contains("<h1>Sign in required</h1>"),
            "{}",
            reply.text
        );
        assert!(reply.text.contains(why), "{why}: {}", reply.text);
        assert!(!b.has_cookie("mmm_session"), "{why}");
    }
    // A callback this browser did not start, or with another state, is refused.
    *p.mode.lock().unwrap() = Mode::Honest;
    let mut b = Browser::new(&host);
    let reply = b.get("/ui/oidc/callback?code=code-0&state=x").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    b.get("/ui/oidc/start").await;
    let reply = b.get("/ui/oidc/callback?code=code-0&state=forged").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text.contains("`state`"), "{}", reply.text);
    let reply = b
        .get("/ui/oidc/callback?error=access_denied&error_description=no")
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text.contains("access_denied"));
}

#[tokio::test]
async fn without_a_provider_there_is_no_oidc_sign_in_and_a_provider_that_is_down_is_a_503_page() {
    let host = Host::new(sqlite().await).await;
    let mut b = Browser::new(&host);
    assert_eq!(b.get("/ui/oidc/start").await.status, StatusCode::NOT_FOUND);
    let mut host = Host::new(sqlite().await).await;
    let port = crate::common::free_port();
    let console = ConsoleConfig::new(
        axum_extra::extract::cookie::Key::generate(),
        None,
        std::time::Duration::from_secs(3600),
        Some(
            OidcClient::new(
                &format!("http://127.0.0.1:{port}"),
                "console",
                None,
                "openid",
            )
            .unwrap(),
        ),
    )
    .unwrap();
    host.state = host.state.clone().with_console(console);
    host.app = mmm_host::app(host.state.clone());
    let mut b = Browser::new(&host);
    let reply = b.get("/ui/oidc/start").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert!(reply.text.contains("sign in with a token instead"));
    // Token sign-in still works.
    let token = host.token("demo", &["developer"], "dev-1");
    b.get("/ui/signin").await;
    let reply = b.post_form("/ui/signin", &[("token", &token)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
}
