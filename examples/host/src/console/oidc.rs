//! Sign-in by the organisation's OpenID Connect provider: the authorization code flow
//! with PKCE (S256), a `state` and a `nonce`, the ID token verified against the
//! provider's published keys, issuer and audience (the client id). The ID token's claims
//! are read as a bearer token's are (`tenant_id`, `sub`, `roles`), so a person has the
//! same rights in the console as with a token.
//!
//! The provider's discovery document is fetched on first use, not at start: a provider
//! that is down keeps people from signing in by it, never the host from deciding.

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::session::{random_token, same_secret, secure, unix_now};
use super::{render, start_session, Chrome, PageError};
use crate::auth::{KeySet, Verifier};
use crate::AppState;

/// The cookie that carries one sign-in attempt from the redirect to the callback.
pub const OIDC_COOKIE: &str = "mmm_oidc";

/// How long a sign-in attempt may take at the provider.
const ATTEMPT_SECONDS: u64 = 600;

/// The console's client at one provider.
pub struct OidcClient {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: String,
    http: reqwest::Client,
    discovered: tokio::sync::OnceCell<Discovered>,
}

/// What discovery found.
struct Discovered {
    authorization_endpoint: String,
    token_endpoint: String,
    verifier: Verifier,
}

/// The parts of the discovery document the console reads.
#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// One attempt, kept in [`OIDC_COOKIE`] (encrypted).
#[derive(Serialize, Deserialize)]
struct Attempt {
    state: String,
    nonce: String,
    verifier: String,
    until: u64,
}

impl OidcClient {
    /// A client for `issuer` (its discovery document is read on first use).
    ///
    /// # Errors
    /// A message when the HTTP client cannot be built or the issuer is not a URL.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: Option<String>,
        scopes: &str,
    ) -> Result<Self, String> {
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!("--oidc-issuer `{issuer}` must be an http(s) URL"));
        }
        let scopes = if scopes.split_whitespace().any(|s| s == "openid") {
            scopes.to_owned()
        } else {
            format!("openid {scopes}")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(OidcClient {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            scopes: scopes.trim().to_owned(),
            http,
            discovered: tokio::sync::OnceCell::new(),
        })
    }

    async fn discovered(&self) -> Result<&Discovered, PageError> {
        self.discovered
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let unavailable = |e: String| {
                    tracing::warn!(error = %e, "console: OpenID Connect discovery failed");
                    PageError::Unavailable(format!(
                        "the identity provider cannot be reached ({e}); sign in with a token instead"
                    ))
                };
                let doc: DiscoveryDocument = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| unavailable(e.to_string()))?
                    .json()
                    .await
                    .map_err(|e| unavailable(format!("its discovery document: {e}")))?;
                if doc.issuer.trim_end_matches('/') != self.issuer {
                    return Err(unavailable(format!(
                        "its discovery document names the issuer `{}`, not `{}`",
                        doc.issuer, self.issuer
                    )));
                }
                let keys = KeySet::from_jwks_url(&doc.jwks_uri, Duration::from_secs(60))
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                Ok(Discovered {
                    authorization_endpoint: doc.authorization_endpoint,
                    token_endpoint: doc.token_endpoint,
                    verifier: Verifier::new(
                        keys,
                        Some(doc.issuer),
                        Some(self.client_id.clone()),
                    ),
                })
            })
            .await
    }
}

fn redirect_uri(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}/ui/oidc/callback", state.console.origin_for(headers))
}

fn client(state: &AppState) -> Result<&OidcClient, PageError> {
    state
        .console
        .oidc
        .as_ref()
        .ok_or_else(|| PageError::NotFound("no OpenID Connect provider is configured".to_owned()))
}

/// The PKCE challenge of a verifier (S256).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// `GET /ui/oidc/start`: to the provider, with a fresh state, nonce and PKCE verifier
/// kept in an encrypted cookie for the callback.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let oidc = client(&state)?;
    let found = oidc.discovered().await?;
    let attempt = Attempt {
        state: random_token(),
        nonce: random_token(),
        verifier: random_token(),
        until: unix_now() + ATTEMPT_SECONDS,
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client_id)
        .append_pair("redirect_uri", &redirect_uri(&state, &headers))
        .append_pair("scope", &oidc.scopes)
        .append_pair("state", &attempt.state)
        .append_pair("nonce", &attempt.nonce)
        .append_pair("code_challenge", &challenge(&attempt.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if found.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{query}", found.authorization_endpoint);
    // Lax, not Strict: the callback is a navigation from the provider's site, which a
    // Strict cookie would not reach.
    let cookie = Cookie::build((
        OIDC_COOKIE,
        serde_json::to_string(&attempt).unwrap_or_default(),
    ))
    .http_only(true)
    .same_site(SameSite::Lax)
    .path("/ui/oidc")
    .secure(secure(&headers, &state))
    .max_age(time::Duration::seconds(ATTEMPT_SECONDS.cast_signed()))
    .build();
    let jar = PrivateCookieJar::new(state.console.key.clone()).add(cookie);
    Ok((jar, Redirect::to(&location)).into_response())
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// The page that continues to the console once signed in.
#[derive(askama::Template)]
#[template(path = "console/signed_in.html")]
struct SignedIn {
    chrome: Chrome,
}

/// `GET /ui/oidc/callback?code=…&state=…`: checks the state against this browser's
/// attempt, redeems the code with the PKCE verifier, verifies the ID token (signature,
/// issuer, audience, expiry, nonce) and starts a session.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, PageError> {
    let oidc = client(&state)?;
    let refused =
        |m: &str| PageError::Unauthenticated(format!("signing in with the provider failed: {m}"));
    let params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| super::session::field(&params, name).map(str::to_owned);
    if let Some(error) = param("error") {
        let why = param("error_description").unwrap_or_default();
        return Err(refused(&format!("the provider answered `{error}` {why}")));
    }
    let jar = PrivateCookieJar::from_headers(&headers, state.console.key.clone());
    let attempt: Attempt = jar
        .get(OIDC_COOKIE)
        .and_then(|c| serde_json::from_str(c.value()).ok())
        .ok_or_else(|| {
            refused(
                "this browser did not start a sign-in (or it took over 10 minutes); start again",
            )
        })?;
    if attempt.until <= unix_now() {
        return Err(refused("the sign-in took over 10 minutes; start again"));
    }
    let (Some(code), Some(returned_state)) = (param("code"), param("state")) else {
        return Err(refused("the provider sent no `code` and `state`"));
    };
    if !same_secret(&returned_state, &attempt.state) {
        return Err(refused("the `state` does not match this browser's sign-in"));
    }
    let found = oidc.discovered().await?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", redirect_uri(&state, &headers)),
        ("client_id", oidc.client_id.clone()),
        ("code_verifier", attempt.verifier.clone()),
    ];
    if let Some(secret) = &oidc.client_secret {
        form.push(("client_secret", secret.clone()));
    }
    let answer = oidc
        .http
        .post(&found.token_endpoint)
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            PageError::Unavailable(format!(
                "the provider's token endpoint cannot be reached: {e}"
            ))
        })?;
    if !answer.status().is_success() {
        return Err(refused(&format!(
            "the provider's token endpoint answered {}",
            answer.status()
        )));
    }
    let tokens: TokenResponse = answer
        .json()
        .await
        .map_err(|e| refused(&format!("the token endpoint's answer cannot be read: {e}")))?;
    let id_token = tokens
        .id_token
        .ok_or_else(|| refused("the token endpoint sent no ID token"))?;
    let verified = found
        .verifier
        .verify_token(&id_token)
        .await
        .map_err(|e| refused(&format!("the ID token is refused: {e}")))?;
    let nonce = verified
        .claims
        .get("nonce")
        .and_then(|n| n.as_str())
        .unwrap_or("");
    if !same_secret(nonce, &attempt.nonce) {
        return Err(refused("the ID token's `nonce` is not this sign-in's"));
    }
    tracing::info!(tenant_id = %verified.caller.tenant, "console: signed in by OpenID Connect");
    let session = start_session(&state, &headers, verified.caller, verified.exp);
    let spent = jar.remove(Cookie::build(OIDC_COOKIE).path("/ui/oidc"));
    let page = SignedIn {
        chrome: Chrome::anonymous("Signed in"),
    };
    Ok((spent, session, render(&page)).into_response())
}
