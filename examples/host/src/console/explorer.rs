//! The decision explorer (authors, admins): a pasted or recorded signal decided as a dry
//! run against the live set or a draft, with the explain trace, the suppressions and each
//! action as it would appear on each surface; and the tenant's recorded signals.
//!
//! The dry run is built like `POST …/simulate`: an [`Engine`] over the set the store's
//! published versions compile to (with the chosen draft as its playbook's live version),
//! the signal's actor's stored preferences and the tenant's stored policy in the context,
//! `explain: true`. No receipt is signed, no fatigue is recorded, no action is stored.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mmm_engine::{DecideOptions, Decision, Engine, Signal, Status, Surface};
use pulldown_cmark::{CowStr, Event, Parser, Tag};
use serde::Deserialize;
use serde_json::Value;

use super::{flash, render, Chrome, PageError, Posted, Session};
use crate::auth::Role;
use crate::error::AppError;
use crate::routes::decide::{fill_context, signal_subject};
use crate::routes::playbooks::{blocking, find_version, published_for, sets_with_and_without};
use crate::store::{RecordedSignal, Scope};
use crate::AppState;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/explorer", get(page).post(act))
        .route("/ui/explorer/delete", post(delete))
}

/// Who may use the explorer.
const ROLES: &[Role] = &[Role::Author, Role::Admin];

/// What the role check names.
const WHAT: &str = "the decision explorer";

/// The most recorded signals a tenant keeps.
pub const MAX_RECORDED: u32 = 200;

/// The longest name of a recorded signal.
const MAX_NAME: usize = 100;

/// Surfaces whose text is Markdown.
const MARKDOWN: &[Surface] = &[Surface::PrComment, Surface::CiSummary, Surface::Chat];

/// One candidate of the explain trace.
struct TraceRow {
    playbook: String,
    version: u32,
    trigger: String,
    condition: String,
    outcomes: Vec<String>,
}

/// One suppressed action.
struct SuppressedRow {
    playbook: String,
    index: usize,
    kind: String,
    reason: String,
    detail: String,
}

/// One surface's preview of an action.
struct Rendering {
    surface: String,
    /// Markdown rendered to HTML with raw HTML escaped.
    html: Option<String>,
    /// Plain text, shown preformatted.
    text: Option<String>,
}

/// One action of the decision.
struct ActionView {
    title: String,
    kind: String,
    playbook: String,
    why: String,
    renderings: Vec<Rendering>,
}

/// The decision shown.
struct Outcome {
    set: String,
    decision_id: String,
    trace: Vec<TraceRow>,
    suppressed: Vec<SuppressedRow>,
    actions: Vec<ActionView>,
}

#[derive(Template)]
#[template(path = "console/explorer.html")]
struct Page {
    chrome: Chrome,
    signal: String,
    set: String,
    sets: Vec<String>,
    samples: Vec<RecordedSignal>,
    sample: String,
    outcome: Option<Outcome>,
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    sample: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    session.require(ROLES, WHAT)?;
    let mut signal = String::new();
    let mut sample = String::new();
    if let Some(id) = query.sample.as_deref().filter(|s| !s.is_empty()) {
        let found = state
            .store
            .get_recorded_signal(&session.tenant, id)
            .await?
            .ok_or_else(|| PageError::NotFound("there is no such recorded signal".to_owned()))?;
        signal = pretty(&found.signal);
        sample = found.id;
    }
    let (flash, jar) = flash::take(&headers);
    let page = form_page(&state, &session, signal, "live".to_owned(), sample, None).await?;
    let page = Page {
        chrome: page.chrome.with_flash(flash),
        ..page
    };
    Ok((jar, render(&page)).into_response())
}

/// The page around a form's values.
async fn form_page(
    state: &AppState,
    session: &Session,
    signal: String,
    set: String,
    sample: String,
    outcome: Option<Outcome>,
) -> Result<Page, PageError> {
    let drafts = state
        .store
        .list_playbooks(Scope::Only(&session.tenant), None)
        .await?;
    let sets = std::iter::once("live".to_owned())
        .chain(
            drafts
                .iter()
                .filter(|m| m.status == Status::Draft)
                .map(|m| format!("{}/{}/{}", m.tenant, m.id, m.version)),
        )
        .collect();
    let samples = state
        .store
        .list_recorded_signals(&session.tenant, MAX_RECORDED)
        .await?;
    Ok(Page {
        chrome: Chrome::new(session, "Decision explorer", "/ui/explorer"),
        signal,
        set,
        sets,
        samples,
        sample,
        outcome,
    })
}

fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// The pasted text as a signal and its context: an envelope, or `{signal, context}`, read
/// as the broker intake reads a message.
fn read_input(text: &str) -> Result<(Value, Option<Value>), PageError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| PageError::Invalid(format!("the signal is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(PageError::Invalid(
            "the signal must be a JSON object: an envelope, or {\"signal\", \"context\"}"
                .to_owned(),
        ));
    };
    Ok(crate::intake::signal_and_context(map)?)
}

/// Refuses another tenant's signal, naming `tenant_id` (422), as the simulate route does.
fn own_signal(session: &Session, signal: &Value) -> Result<(), PageError> {
    let caller = session.caller();
    if let Some(t) = signal.get("tenant_id").and_then(Value::as_str) {
        if !caller.is_operator() && t != session.tenant {
            return Err(PageError::Invalid(format!(
                "field `tenant_id`: the signal is for tenant {}, not `{}`",
                mmm_engine::Quoted(t),
                session.tenant
            )));
        }
    }
    Ok(())
}

async fn act(State(state): State<AppState>, posted: Posted) -> Result<Response, PageError> {
    let session = &posted.session;
    session.require(ROLES, WHAT)?;
    // Within the host's body limit: `Posted` read at most that much.
    let text = posted.get("signal").unwrap_or("").to_owned();
    match posted.get("intent").unwrap_or("decide") {
        "save" => save(&state, session, &text, posted.get("name").unwrap_or("")).await,
        "load" => {
            let id = posted.get("sample").unwrap_or("");
            Ok(axum::response::Redirect::to(&format!(
                "/ui/explorer?sample={}",
                form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            ))
            .into_response())
        }
        _ => {
            let set = posted.get("set").unwrap_or("live").to_owned();
            let outcome = decide(&state, session, &text, &set).await?;
            let page = form_page(
                &state,
                session,
                text,
                set,
                posted.get("sample").unwrap_or("").to_owned(),
                Some(outcome),
            )
            .await?;
            Ok(render(&page))
        }
    }
}

async fn save(
    state: &AppState,
    session: &Session,
    text: &str,
    name: &str,
) -> Result<Response, PageError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(PageError::Invalid(format!(
            "field `name`: give the sample a name of 1 to {MAX_NAME} characters"
        )));
    }
    let (signal, _) = read_input(text)?;
    own_signal(session, &signal)?;
    Signal::from_json(&signal, mmm_engine::DEFAULT_MAX_PAYLOAD_BYTES).map_err(|e| {
        PageError::Invalid(format!("the signal is invalid: field `{}`: {e}", e.field))
    })?;
    let record = RecordedSignal {
        tenant: session.tenant.clone(),
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        signal: text.trim().to_owned(),
        recorded_by: session.sub.clone(),
        recorded_at: state.clock.now(),
    };
    state.store.record_signal(&record, MAX_RECORDED).await?;
    Ok(flash::redirect(
        &format!("/ui/explorer?sample={}", record.id),
        &format!("Saved the signal as the sample “{name}”."),
    ))
}

async fn delete(State(state): State<AppState>, posted: Posted) -> Result<Response, PageError> {
    let session = &posted.session;
    session.require(ROLES, WHAT)?;
    let id = posted.get("sample").unwrap_or("");
    let found = state
        .store
        .get_recorded_signal(&session.tenant, id)
        .await?
        .ok_or_else(|| PageError::NotFound("there is no such recorded signal".to_owned()))?;
    state
        .store
        .delete_recorded_signal(&session.tenant, &found.id)
        .await?;
    Ok(flash::redirect(
        "/ui/explorer",
        &format!("Deleted the sample “{}”.", found.name),
    ))
}

/// The dry-run decision of `text` with `set` (`live` or `<tenant>/<id>/<version>`).
async fn decide(
    state: &AppState,
    session: &Session,
    text: &str,
    set: &str,
) -> Result<Outcome, PageError> {
    let (signal, context) = read_input(text)?;
    own_signal(session, &signal)?;
    let caller = session.caller();
    let (tenant, actor) = signal_subject(&caller, &signal)?;
    let scope = tenant.clone().unwrap_or_else(|| session.tenant.clone());
    let playbooks = if set == "live" {
        let published = published_for(state, &caller, &scope)
            .await?
            .into_iter()
            .map(|v| (v, Status::Published))
            .collect();
        state.live.compile_set(published).await?
    } else {
        let not_found = || PageError::NotFound("there is no such draft".to_owned());
        let mut parts = set.splitn(3, '/');
        let (Some(t), Some(id), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(not_found());
        };
        let v: u32 = v.parse().map_err(|_| not_found())?;
        if t != session.tenant && !caller.is_operator() {
            return Err(not_found());
        }
        let found = find_version(state, t, id, v).await?;
        if found.meta.tenant != t {
            return Err(not_found());
        }
        sets_with_and_without(state, &caller, &scope, &found)
            .await?
            .0
    };
    let context = fill_context(state, context, tenant.as_deref(), actor.as_deref()).await?;
    let decision = blocking(move || {
        let engine = Engine::builder().playbooks(playbooks).build();
        let options = DecideOptions {
            now: None,
            explain: true,
        };
        engine.decide(&signal, context.as_ref(), &options)
    })
    .await?
    .map_err(AppError::from)?;
    Ok(outcome(set, &decision))
}

fn outcome(set: &str, d: &Decision) -> Outcome {
    let trace = d
        .explain
        .iter()
        .flatten()
        .map(|e| TraceRow {
            playbook: e.playbook.id.to_string(),
            version: e.playbook.version,
            trigger: e.trigger.clone(),
            condition: match &e.condition {
                mmm_engine::ConditionResult::Value(b) => b.to_string(),
                mmm_engine::ConditionResult::Error { error } => format!("error: {error}"),
            },
            outcomes: e
                .actions
                .iter()
                .map(|a| format!("#{} {}: {}", a.index, a.kind.as_str(), a.outcome))
                .collect(),
        })
        .collect();
    let suppressed = d
        .suppressed
        .iter()
        .map(|s| SuppressedRow {
            playbook: format!("{} v{}", s.playbook.id, s.playbook.version),
            index: s.action_index,
            kind: s.kind.as_str().to_owned(),
            reason: s.reason.as_str().to_owned(),
            detail: s.detail.to_string(),
        })
        .collect();
    let actions = d
        .actions
        .iter()
        .map(|a| ActionView {
            title: a.title.clone(),
            kind: a.kind.as_str().to_owned(),
            playbook: format!("{} v{}", a.playbook.id, a.playbook.version),
            why: a.rationale.why.to_string(),
            renderings: a
                .rendered
                .iter()
                .map(|(surface, text)| {
                    let is_markdown = MARKDOWN.contains(surface);
                    Rendering {
                        surface: surface.as_str().to_owned(),
                        html: is_markdown.then(|| markdown(text)),
                        text: (!is_markdown).then(|| text.clone()),
                    }
                })
                .collect(),
        })
        .collect();
    Outcome {
        set: set.to_owned(),
        decision_id: d.decision_id.to_string(),
        trace,
        suppressed,
        actions,
    }
}

/// Markdown to HTML with every raw HTML event shown as text, and links and images to
/// anything but `http(s)`, `mailto` or a relative address made inert: no markup from a
/// signal or a playbook reaches the page.
pub(crate) fn markdown(text: &str) -> String {
    fn safe(url: &str) -> bool {
        let lower = url.trim().to_ascii_lowercase();
        match lower.find(':') {
            None => true,
            Some(colon) => {
                let scheme = &lower[..colon];
                // A colon after a path, query or fragment start is not a scheme.
                scheme.contains(['/', '?', '#']) || matches!(scheme, "http" | "https" | "mailto")
            }
        }
    }
    let events = Parser::new(text).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: CowStr::Borrowed("#"),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: CowStr::Borrowed("#"),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::markdown;

    #[test]
    fn markdown_never_passes_raw_html_or_script_links() {
        let html = markdown("**hi** <script>alert(1)</script>\n\n<div onclick=x>y</div>\n\n[a](javascript:alert(1)) [b](https://example.com)");
        assert!(html.contains("<strong>hi</strong>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
    }
}
