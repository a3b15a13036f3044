//! Console sessions and forms: the session lives in one encrypted cookie
//! (`mmm_session`, AES-GCM under the console's key: tenant, actor, roles, expiry and the
//! session's CSRF token), so any replica that shares the key serves it and nothing is
//! stored. Every form a session posts carries that CSRF token and comes from the
//! console's own origin; [`Posted`] checks both before a handler runs.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::PageError;
use crate::auth::{Caller, Role};
use crate::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "mmm_session";
/// The sign-in form's double-submit cookie (before there is a session).
pub const SIGNIN_COOKIE: &str = "mmm_signin";

/// A signed-in person, as the session cookie holds them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The token's tenant.
    #[serde(rename = "t")]
    pub tenant: String,
    /// The token's `sub`: the actor.
    #[serde(rename = "s")]
    pub sub: String,
    /// The token's roles.
    #[serde(rename = "r")]
    pub roles: Vec<Role>,
    /// Seconds since the epoch after which the session is over.
    #[serde(rename = "e")]
    pub expires: u64,
    /// This session's CSRF token, in every form it is shown.
    #[serde(rename = "c")]
    pub csrf: String,
}

impl Session {
    /// A session for a verified caller, ending at `expires`.
    pub fn new(caller: Caller, expires: u64) -> Self {
        Session {
            tenant: caller.tenant,
            sub: caller.sub,
            roles: caller.roles.into_iter().collect(),
            expires,
            csrf: random_token(),
        }
    }

    /// The caller the API would see for this person's token.
    pub fn caller(&self) -> Caller {
        Caller {
            tenant: self.tenant.clone(),
            sub: self.sub.clone(),
            roles: self.roles.iter().copied().collect(),
        }
    }

    /// Whether the session has any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }

    /// Admits the session when it has one of `roles`; otherwise the 403 page, naming the
    /// roles needed and nothing of what was asked for.
    ///
    /// # Errors
    /// [`PageError::Forbidden`].
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), PageError> {
        if self.has_any(roles) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(PageError::Forbidden(format!(
            "{what} needs the role {}",
            names.join(" or ")
        )))
    }

    /// Reads the session from a request's cookies: `None` without one, when it does not
    /// decrypt under this key, or when it is over.
    pub fn from_headers(headers: &HeaderMap, state: &AppState) -> Option<Session> {
        let jar = PrivateCookieJar::from_headers(headers, state.console.key.clone());
        let cookie = jar.get(SESSION_COOKIE)?;
        let session: Session = serde_json::from_str(cookie.value()).ok()?;
        (session.expires > unix_now()).then_some(session)
    }

    /// The session cookie holding this session.
    pub fn cookie(&self, secure: bool) -> Cookie<'static> {
        let value = serde_json::to_string(self).unwrap_or_default();
        Cookie::build((SESSION_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Strict)
            .path("/ui")
            .secure(secure)
            .build()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        Session::from_headers(&parts.headers, state).ok_or(PageError::SignIn)
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 32 random bytes, base64url: CSRF tokens, OIDC `state`, `nonce` and PKCE verifiers.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the response's cookies should be `Secure`: the console's public URL is
/// `https://`, or a proxy says the request came over TLS.
pub fn secure(headers: &HeaderMap, state: &AppState) -> bool {
    state.console.public_is_https()
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Refuses a state-changing request that another site made: its `Origin` must be the
/// console's own (the public URL's, else the request's `Host`), and without `Origin`
/// the browser must not say it is cross-site.
///
/// # Errors
/// [`PageError::Forbidden`].
pub fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<(), PageError> {
    let refused = || {
        PageError::Forbidden(
            "this form was not sent from the console's own pages; open the console and try again"
                .to_owned(),
        )
    };
    let Some(origin) = headers.get(ORIGIN) else {
        let cross = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site");
        return if cross { Err(refused()) } else { Ok(()) };
    };
    let origin = origin.to_str().map_err(|_| refused())?;
    let same = match state.console.public_origin() {
        Some(public) => origin.eq_ignore_ascii_case(public),
        None => {
            let host = headers.get(HOST).and_then(|h| h.to_str().ok());
            let without_scheme = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            matches!((host, without_scheme), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
        }
    };
    if same {
        Ok(())
    } else {
        Err(refused())
    }
}

/// Reads an `application/x-www-form-urlencoded` body (at most the host's body limit).
async fn form_fields(
    body: axum::body::Body,
    state: &AppState,
) -> Result<Vec<(String, String)>, PageError> {
    let bytes = axum::body::to_bytes(body, state.settings.body_limit)
        .await
        .map_err(|_| {
            PageError::Invalid(format!(
                "the form is larger than {} bytes",
                state.settings.body_limit
            ))
        })?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// A form posted by a signed-in session: the session, and the form's fields in order.
/// Admitted only from the console's origin and with the session's CSRF token.
#[derive(Debug)]
pub struct Posted {
    /// Who posted it.
    pub session: Session,
    /// The fields (a name may repeat: check boxes).
    pub fields: Vec<(String, String)>,
}

impl Posted {
    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        field(&self.fields, name)
    }

    /// Every value of a field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The first value of a field.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

impl FromRequest<AppState> for Posted {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (parts, body) = req.into_parts();
        check_origin(&parts.headers, state)?;
        let session = Session::from_headers(&parts.headers, state).ok_or(PageError::SignIn)?;
        let fields = form_fields(body, state).await?;
        let sent = field(&fields, "csrf").unwrap_or("");
        if !same_secret(sent, &session.csrf) {
            return Err(PageError::Forbidden(
                "this form is not from your current session (it may be from an older page); reload the page and try again"
                    .to_owned(),
            ));
        }
        Ok(Posted { session, fields })
    }
}

/// The sign-in form: posted before there is a session, so its CSRF value is a
/// double-submit one (the same random value in the form and in [`SIGNIN_COOKIE`]).
#[derive(Debug)]
pub struct SignInForm {
    /// The fields.
    pub fields: Vec<(String, String)>,
}

impl FromRequest<AppState> for SignInForm {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (parts, body) = req.into_parts();
        check_origin(&parts.headers, state)?;
        let jar = axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers);
        let expected = jar
            .get(SIGNIN_COOKIE)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        let fields = form_fields(body, state).await?;
        let sent = field(&fields, "csrf").unwrap_or("");
        if expected.is_empty() || !same_secret(sent, &expected) {
            return Err(PageError::Forbidden(
                "this sign-in form is not from this browser's sign-in page; open the sign-in page again"
                    .to_owned(),
            ));
        }
        Ok(SignInForm { fields })
    }
}
