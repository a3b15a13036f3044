//! The console: HTML pages under `/ui/` for the people who use the service without
//! writing code against it (issue 12, docs/console.md). Developers manage their own
//! preferences and see what they were shown and why; playbook authors explore decisions
//! and manage playbooks; admins watch their tenant in aggregate.
//!
//! Pages are rendered on the server from askama templates compiled into the binary (so
//! are the style sheet and script: the one-command start serves them), and act through
//! the same store, checks and audit log as the JSON API. Sign-in is by pasting a token or
//! by the organisation's OpenID Connect provider ([`oidc`]); the session is an encrypted
//! cookie ([`session`]).

pub mod chart;
pub mod explorer;
pub mod flash;
pub mod oidc;
pub mod overview;
pub mod pages;
pub mod playbooks;
pub mod preferences;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, Key, PrivateCookieJar, SameSite};

use crate::auth::Role;
use crate::error::AppError;
use crate::AppState;
pub use session::{Posted, Session};

/// The console's settings: its cookie key, where it is reached, how long sessions last,
/// and the OpenID Connect provider, if any.
pub struct ConsoleConfig {
    /// Encrypts the session and sign-in cookies.
    pub key: Key,
    /// The external origin (`https://mmm.example.com`), without a trailing slash.
    public_url: Option<String>,
    /// The longest session.
    pub session_ttl: Duration,
    /// The organisation's provider.
    pub oidc: Option<oidc::OidcClient>,
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("public_url", &self.public_url)
            .field("session_ttl", &self.session_ttl)
            .field("oidc", &self.oidc.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ConsoleConfig {
    /// A fresh random key (sessions end with the process), no public URL, 8-hour
    /// sessions, no provider: what tests and hosts without configuration get.
    fn default() -> Self {
        ConsoleConfig {
            key: Key::generate(),
            public_url: None,
            session_ttl: Duration::from_secs(8 * 3600),
            oidc: None,
        }
    }
}

impl ConsoleConfig {
    /// Settings with `key`; `public_url` is checked to be an `http(s)://` origin.
    ///
    /// # Errors
    /// A message naming `--public-url` when it is not one.
    pub fn new(
        key: Key,
        public_url: Option<&str>,
        session_ttl: Duration,
        oidc: Option<oidc::OidcClient>,
    ) -> Result<Self, String> {
        let public_url = match public_url {
            None => None,
            Some(url) => {
                let trimmed = url.trim_end_matches('/');
                let rest = trimmed
                    .strip_prefix("https://")
                    .or_else(|| trimmed.strip_prefix("http://"));
                match rest {
                    Some(host) if !host.is_empty() && !host.contains('/') => {
                        Some(trimmed.to_owned())
                    }
                    _ => {
                        return Err(format!(
                            "--public-url `{url}` must be an origin such as `https://mmm.example.com` (no path)"
                        ))
                    }
                }
            }
        };
        Ok(ConsoleConfig {
            key,
            public_url,
            session_ttl,
            oidc,
        })
    }

    /// Whether the console is reached over `https://`.
    pub fn public_is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The configured origin, if any.
    pub fn public_origin(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The console's origin for a request: the public URL, else `http://<Host>`.
    pub fn origin_for(&self, headers: &HeaderMap) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("127.0.0.1");
                format!("http://{host}")
            }
        }
    }
}

/// Reads the session cookies' key from a file of 64 bytes in hex, creating it (readable
/// by its owner only) when absent.
///
/// # Errors
/// A message naming the file.
pub fn load_or_create_key(path: &std::path::Path) -> Result<Key, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() >= 64)
                .ok_or_else(|| {
                    format!(
                        "{}: the session key must be at least 64 bytes in hex",
                        path.display()
                    )
                })?;
            Key::try_from(bytes.as_slice())
                .map_err(|e| format!("{}: not a usable session key: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Key::generate();
            crate::auth::keys::write_private(path, hex::encode(key.master()).as_bytes())
                .map_err(|e| e.to_string())?;
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// What a page could not do, shown as a page (never problem JSON: a person reads it).
/// Displays as its detail.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session: to the sign-in page.
    #[error("sign in first")]
    SignIn,
    /// 401 with a reason (a refused token or ID token).
    #[error("{0}")]
    Unauthenticated(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 422: the input breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// 503: a service the page needs is down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Unauthenticated(m) => PageError::Unauthenticated(m),
            AppError::Forbidden(m) => PageError::Forbidden(m),
            AppError::NotFound(m) => PageError::NotFound(m),
            AppError::Conflict(m) | AppError::PayloadTooLarge(m) => PageError::Invalid(m),
            AppError::Invalid { detail, errors, .. } => {
                let mut text = detail;
                for e in errors {
                    text.push_str(&match &e.field {
                        Some(f) => format!("; {f}: {}", e.message),
                        None => format!("; {}", e.message),
                    });
                }
                PageError::Invalid(text)
            }
            AppError::Unavailable(m) => PageError::Unavailable(m),
            AppError::Internal(m) => PageError::Internal(m),
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::from(AppError::from(e))
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: &'static str,
    detail: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, detail) = match self {
            PageError::SignIn => return Redirect::to("/ui/signin").into_response(),
            PageError::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, "Sign in required", m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            PageError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, "Not accepted", m),
            PageError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable", m),
            PageError::Internal(m) => {
                tracing::error!(error = %m, "console page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "the page could not be shown; the error is in the host's log".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            chrome: Chrome::anonymous(heading),
            heading,
            detail,
        };
        (status, render(&page)).into_response()
    }
}

/// Renders a template; a template that fails (it cannot, for these types) is a 500.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A link in the navigation.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Its element id (`nav-preferences`, …).
    pub id: &'static str,
    /// Where it goes.
    pub href: &'static str,
    /// Its text.
    pub label: &'static str,
    /// Whether it is the page shown.
    pub current: bool,
}

/// The areas, each with the roles that may open it (empty: anyone signed in).
const AREAS: &[(&str, &str, &str, &[Role])] = &[
    ("nav-preferences", "/ui/preferences", "My preferences", &[]),
    (
        "nav-explorer",
        "/ui/explorer",
        "Decision explorer",
        &[Role::Author, Role::Admin],
    ),
    (
        "nav-playbooks",
        "/ui/playbooks",
        "Playbooks",
        &[Role::Author, Role::Admin],
    ),
    (
        "nav-overview",
        "/ui/overview",
        "Tenant overview",
        &[Role::Admin],
    ),
];

/// What every page shows around its content: who is signed in, the areas they may open,
/// the sign-out form, and a message about what the last action changed.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// Whether someone is signed in.
    pub signed_in: bool,
    /// `sub · tenant`.
    pub whoami: String,
    /// The areas this session may open.
    pub nav: Vec<NavLink>,
    /// The session's CSRF token, for forms.
    pub csrf: String,
    /// What the last action changed.
    pub flash: Option<String>,
}

impl Chrome {
    /// For a signed-in session on the page at `href`.
    pub fn new(session: &Session, title: impl Into<String>, href: &str) -> Self {
        let nav = AREAS
            .iter()
            .filter(|(_, _, _, roles)| roles.is_empty() || session.has_any(roles))
            .map(|&(id, link, label, _)| NavLink {
                id,
                href: link,
                label,
                current: link == href,
            })
            .collect();
        Chrome {
            title: title.into(),
            signed_in: true,
            whoami: format!("{} · {}", session.sub, session.tenant),
            nav,
            csrf: session.csrf.clone(),
            flash: None,
        }
    }

    /// For a page without a session (sign-in, errors).
    pub fn anonymous(title: impl Into<String>) -> Self {
        Chrome {
            title: title.into(),
            signed_in: false,
            whoami: String::new(),
            nav: Vec::new(),
            csrf: String::new(),
            flash: None,
        }
    }

    /// With a message about what changed.
    #[must_use]
    pub fn with_flash(mut self, flash: Option<String>) -> Self {
        self.flash = flash.filter(|f| !f.is_empty());
        self
    }
}

/// The console's routes, under `/ui`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(home))
        .route("/ui/signin", get(signin_page).post(signin))
        .route("/ui/signout", post(signout))
        .route("/ui/oidc/start", get(oidc::start))
        .route("/ui/oidc/callback", get(oidc::callback))
        .route("/ui/assets/{name}", get(asset))
        .merge(pages::router())
        .layer(middleware::from_fn(page_headers))
}

/// Headers on every console response: a strict content security policy (the pages use
/// only their own style sheet and script), no framing, no referrer, and no caching of
/// pages that show a person's data.
async fn page_headers(req: axum::extract::Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let fixed: &[(header::HeaderName, &str)] = &[
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // `same-origin`, not `no-referrer`: with no referrer, browsers send `Origin: null`
        // on the console's own form posts, which the origin check must refuse.
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The style sheet and script, compiled into the binary.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (
            include_str!("../../assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("../../assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return PageError::NotFound("there is no such asset".to_owned()).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The home page.
#[derive(Template)]
#[template(path = "console/home.html")]
struct Home {
    chrome: Chrome,
}

async fn home(session: Session) -> Response {
    render(&Home {
        chrome: Chrome::new(&session, "Console", "/ui/"),
    })
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignIn {
    chrome: Chrome,
    signin_csrf: String,
    oidc: bool,
    problem: Option<String>,
}

/// The sign-in page with a fresh double-submit value, and the cookie that holds it.
fn signin_response(state: &AppState, headers: &HeaderMap, problem: Option<String>) -> Response {
    let value = session::random_token();
    let cookie = Cookie::build((session::SIGNIN_COOKIE, value.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/ui")
        .secure(session::secure(headers, state))
        .build();
    let status = if problem.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let page = SignIn {
        chrome: Chrome::anonymous("Sign in"),
        signin_csrf: value,
        oidc: state.console.oidc.is_some(),
        problem,
    };
    (status, CookieJar::new().add(cookie), render(&page)).into_response()
}

async fn signin_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if Session::from_headers(&headers, &state).is_some() {
        return Redirect::to("/ui/").into_response();
    }
    signin_response(&state, &headers, None)
}

/// Starts a session for a verified caller whose token ends at `exp`: the session ends
/// then or after the configured length, whichever is first.
pub(crate) fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    caller: crate::auth::Caller,
    exp: u64,
) -> PrivateCookieJar {
    let ends = exp.min(session::unix_now() + state.console.session_ttl.as_secs());
    let session = Session::new(caller, ends);
    PrivateCookieJar::new(state.console.key.clone())
        .add(session.cookie(session::secure(headers, state)))
}

async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: session::SignInForm,
) -> Response {
    let token = session::field(&form.fields, "token").unwrap_or("").trim();
    if token.is_empty() {
        return signin_response(
            &state,
            &headers,
            Some("paste a token to sign in".to_owned()),
        );
    }
    match state.verifier.verify_token(token).await {
        Ok(verified) => {
            let jar = start_session(&state, &headers, verified.caller, verified.exp);
            let spent = CookieJar::from_headers(&headers)
                .remove(Cookie::build(session::SIGNIN_COOKIE).path("/ui"));
            (jar, spent, Redirect::to("/ui/")).into_response()
        }
        Err(e) => signin_response(&state, &headers, Some(e.to_string())),
    }
}

async fn signout(State(state): State<AppState>, headers: HeaderMap, posted: Posted) -> Response {
    tracing::info!(tenant_id = %posted.session.tenant, "console: signed out");
    let jar = PrivateCookieJar::from_headers(&headers, state.console.key.clone())
        .remove(Cookie::build(session::SESSION_COOKIE).path("/ui"));
    (jar, Redirect::to("/ui/signin")).into_response()
}

/// The console's settings in the state (`AppState::console`).
pub type Shared = Arc<ConsoleConfig>;
