//! "What changed" messages across the redirect that follows a form (post, redirect,
//! get): kept for one request in a cookie of the console's path.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine as _;

/// The cookie.
pub const FLASH_COOKIE: &str = "mmm_flash";

/// The longest message kept (a cookie holds about 4 KB).
const MAX_BYTES: usize = 1024;

/// A 303 to `to` that shows `message` on the page it lands on.
pub fn redirect(to: &str, message: &str) -> Response {
    let mut end = message.len().min(MAX_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&message[..end]);
    let cookie = Cookie::build((FLASH_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/ui")
        .build();
    (CookieJar::new().add(cookie), Redirect::to(to)).into_response()
}

/// The message for this page, if one was left, and the jar that removes it.
pub fn take(headers: &HeaderMap) -> (Option<String>, CookieJar) {
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(FLASH_COOKIE) else {
        return (None, CookieJar::new());
    };
    let message = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cookie.value())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    (message, jar.remove(Cookie::build(FLASH_COOKIE).path("/ui")))
}
