//! The playbooks area (authors, admins): the tenant's playbooks with their versions; a
//! version's YAML with the strict validation diagnostics at their lines; new drafts
//! (validate or save); publish and deprecate behind a confirmation that names the change
//! (admins); and the shadow comparison of a version against the live set.
//!
//! Every change goes through the JSON API's own functions (`routes::playbooks`): the same
//! checks, the same atomic status change, the same audit records.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mmm_engine::{Diagnostic, Status};
use serde::Deserialize;

use super::{flash, render, Chrome, PageError, Posted, Session};
use crate::auth::Role;
use crate::error::AppError;
use crate::live::{source_name, strict_diagnostics};
use crate::routes::playbooks::{
    blocking, create_draft, deprecate_version, entries, list_tenant, publish_version,
    simulate_version, TenantQuery, REQUEST_SOURCE,
};
use crate::routes::TextBody;
use crate::store::{PlaybookVersion, Scope, GLOBAL};
use crate::AppState;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/playbooks", get(list))
        .route("/ui/playbooks/new", get(new_page).post(new_post))
        .route("/ui/playbooks/{tenant}/{id}/{version}", get(version_page))
        .route(
            "/ui/playbooks/{tenant}/{id}/{version}/publish",
            get(confirm_publish).post(publish),
        )
        .route(
            "/ui/playbooks/{tenant}/{id}/{version}/deprecate",
            get(confirm_deprecate).post(deprecate),
        )
        .route(
            "/ui/playbooks/{tenant}/{id}/{version}/simulate",
            post(simulate),
        )
}

const ROLES: &[Role] = &[Role::Author, Role::Admin];
const WHAT: &str = "the playbooks area";

/// One row of the list.
struct Row {
    tenant: String,
    id: String,
    live: String,
    versions: Vec<(u32, String, String)>,
    category: String,
    changed: String,
}

#[derive(Template)]
#[template(path = "console/playbooks.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    session.require(ROLES, WHAT)?;
    let caller = session.caller();
    let tenant = list_tenant(&caller, &TenantQuery::default())?;
    let scope = tenant.as_deref().map_or(Scope::All, Scope::Tenant);
    let metas = state.store.list_playbooks(scope, None).await?;
    let live = state.live.engine().playbooks();
    let mut categories: BTreeMap<(String, String), String> = BTreeMap::new();
    for plan in live.live() {
        categories.insert(
            (
                plan.tenant.clone().unwrap_or_else(|| GLOBAL.to_owned()),
                plan.id.to_string(),
            ),
            plan.category.to_string(),
        );
    }
    let rows = entries(&metas)
        .into_iter()
        .map(|e| Row {
            category: categories
                .get(&(e.tenant.clone(), e.id.clone()))
                .cloned()
                .unwrap_or_else(|| "—".to_owned()),
            live: live_text(e.live_version),
            changed: e
                .versions
                .iter()
                .map(|v| v.updated_at)
                .max()
                .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            versions: e
                .versions
                .iter()
                .map(|v| {
                    (
                        v.version,
                        v.status.clone(),
                        version_href(&v.tenant, &v.id, v.version),
                    )
                })
                .collect(),
            tenant: e.tenant,
            id: e.id,
        })
        .collect();
    let (flash, jar) = flash::take(&headers);
    let page = ListPage {
        chrome: Chrome::new(&session, "Playbooks", "/ui/playbooks").with_flash(flash),
        rows,
    };
    Ok((jar, render(&page)).into_response())
}

/// A live version as shown: `v3`, or `none`.
fn live_text(version: Option<u32>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| format!("v{v}"))
}

fn version_href(tenant: &str, id: &str, v: u32) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("/ui/playbooks/{}/{}/{v}", enc(tenant), enc(id))
}

/// One line of YAML with the diagnostics on it.
struct Line {
    number: usize,
    text: String,
    diagnostics: Vec<String>,
}

/// A diagnostic as listed.
struct Listed {
    line: usize,
    text: String,
}

/// The text's lines with the diagnostics under theirs, and the list of all of them.
fn annotate(yaml: &str, diagnostics: &[Diagnostic]) -> (Vec<Line>, Vec<Listed>) {
    let describe = |d: &Diagnostic| {
        let column = d
            .column
            .map(|c| format!(", column {c}"))
            .unwrap_or_default();
        format!("{} {}{column}: {}", d.severity.as_str(), d.rule, d.message)
    };
    let mut lines: Vec<Line> = yaml
        .lines()
        .enumerate()
        .map(|(i, text)| Line {
            number: i + 1,
            text: text.to_owned(),
            diagnostics: Vec::new(),
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line {
            number: 1,
            text: String::new(),
            diagnostics: Vec::new(),
        });
    }
    let mut listed = Vec::new();
    for d in diagnostics {
        let at = d.line.unwrap_or(1).clamp(1, lines.len());
        if let Some(line) = lines.get_mut(at - 1) {
            line.diagnostics.push(describe(d));
        }
        listed.push(Listed {
            line: at,
            text: describe(d),
        });
    }
    (lines, listed)
}

#[derive(Template)]
#[template(path = "console/playbook_new.html")]
struct NewPage {
    chrome: Chrome,
    yaml: String,
    checked: bool,
    problem: Option<String>,
    lines: Vec<Line>,
    diagnostics: Vec<Listed>,
}

async fn new_page(session: Session) -> Result<Response, PageError> {
    session.require(ROLES, WHAT)?;
    Ok(render(&NewPage {
        chrome: Chrome::new(&session, "New draft", "/ui/playbooks"),
        yaml: String::new(),
        checked: false,
        problem: None,
        lines: Vec::new(),
        diagnostics: Vec::new(),
    }))
}

async fn new_post(State(state): State<AppState>, posted: Posted) -> Result<Response, PageError> {
    let session = &posted.session;
    session.require(ROLES, WHAT)?;
    let yaml = posted.get("yaml").unwrap_or("").replace("\r\n", "\n");
    let text = yaml.clone();
    let diagnostics = blocking(move || strict_diagnostics(REQUEST_SOURCE, &text)).await?;
    let shown = |status: StatusCode, problem: Option<String>, diagnostics: &[Diagnostic]| {
        let (lines, listed) = annotate(&yaml, diagnostics);
        let page = NewPage {
            chrome: Chrome::new(session, "New draft", "/ui/playbooks"),
            yaml: yaml.clone(),
            checked: true,
            problem,
            lines,
            diagnostics: listed,
        };
        (status, render(&page)).into_response()
    };
    if posted.get("intent") != Some("save") {
        return Ok(shown(StatusCode::OK, None, &diagnostics));
    }
    match create_draft(&state, &session.caller(), yaml.clone()).await {
        Ok((version, _)) => {
            let m = &version.meta;
            Ok(flash::redirect(
                &version_href(&m.tenant, &m.id, m.version),
                &format!("Saved {} v{} as a draft.", m.id, m.version),
            ))
        }
        Err(AppError::Conflict(m)) => Ok(shown(StatusCode::CONFLICT, Some(m), &diagnostics)),
        Err(e @ AppError::Invalid { .. }) => Ok(shown(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(PageError::from(e).to_string()),
            &diagnostics,
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct VersionPath {
    tenant: String,
    id: String,
    version: u32,
}

/// The version a session may see: its tenant's or a global one (any for the operator);
/// another tenant's is a 404 page, as in the API.
async fn visible(
    state: &AppState,
    session: &Session,
    path: &VersionPath,
) -> Result<PlaybookVersion, PageError> {
    let not_found = || {
        PageError::NotFound(format!(
            "no playbook `{}` version {}",
            path.id, path.version
        ))
    };
    if !session.caller().can_see(&path.tenant) {
        return Err(not_found());
    }
    state
        .store
        .get_playbook(&path.tenant, &path.id, path.version)
        .await?
        .ok_or_else(not_found)
}

/// A version's shadow comparison, as shown.
struct SimView {
    replayed: usize,
    rejected: Vec<(usize, String)>,
    differences: Vec<(usize, String, String, String)>,
}

#[derive(Template)]
#[template(path = "console/playbook_version.html")]
struct VersionPage {
    chrome: Chrome,
    tenant: String,
    id: String,
    version: u32,
    status: String,
    author: String,
    href: String,
    admin: bool,
    writable: bool,
    lines: Vec<Line>,
    diagnostics: Vec<Listed>,
    signals: String,
    recorded: bool,
    simulation: Option<SimView>,
}

async fn version_view(
    session: &Session,
    found: &PlaybookVersion,
    signals: String,
    recorded: bool,
    simulation: Option<SimView>,
) -> Result<VersionPage, PageError> {
    let m = &found.meta;
    let (name, text) = (source_name(&m.tenant, &m.id, m.version), found.yaml.clone());
    let diagnostics = blocking(move || strict_diagnostics(&name, &text)).await?;
    let (lines, listed) = annotate(&found.yaml, &diagnostics);
    Ok(VersionPage {
        chrome: Chrome::new(session, format!("{} v{}", m.id, m.version), "/ui/playbooks"),
        tenant: m.tenant.clone(),
        id: m.id.clone(),
        version: m.version,
        status: m.status.as_str().to_owned(),
        author: m.author.clone(),
        href: version_href(&m.tenant, &m.id, m.version),
        admin: session.has_any(&[Role::Admin]),
        writable: session.caller().can_write(&m.tenant),
        lines,
        diagnostics: listed,
        signals,
        recorded,
        simulation,
    })
}

async fn version_page(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(path): Path<VersionPath>,
) -> Result<Response, PageError> {
    session.require(ROLES, WHAT)?;
    let found = visible(&state, &session, &path).await?;
    let page = version_view(&session, &found, String::new(), false, None).await?;
    let (flash, jar) = flash::take(&headers);
    let page = VersionPage {
        chrome: page.chrome.clone().with_flash(flash),
        ..page
    };
    Ok((jar, render(&page)).into_response())
}

async fn simulate(
    State(state): State<AppState>,
    Path(path): Path<VersionPath>,
    posted: Posted,
) -> Result<Response, PageError> {
    let session = &posted.session;
    session.require(ROLES, WHAT)?;
    let found = visible(&state, session, &path).await?;
    let recorded = posted.get("recorded").is_some();
    let pasted = posted.get("signals").unwrap_or("").to_owned();
    let text = if recorded {
        let samples = state
            .store
            .list_recorded_signals(&session.tenant, super::explorer::MAX_RECORDED)
            .await?;
        if samples.is_empty() {
            return Err(PageError::Invalid(
                "the tenant has no recorded signals; save some in the decision explorer".to_owned(),
            ));
        }
        samples
            .iter()
            .map(|s| s.signal.replace(['\n', '\r'], " "))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        pasted.clone()
    };
    let body = TextBody {
        content_type: if text.trim_start().starts_with('[') {
            "application/json".to_owned()
        } else {
            "application/x-ndjson".to_owned()
        },
        text,
    };
    let sim = simulate_version(
        &state,
        &session.caller(),
        &found.meta.tenant,
        &found.meta.id,
        found.meta.version,
        &body,
    )
    .await?;
    let report = sim.report;
    let view = SimView {
        replayed: report.replayed,
        rejected: report
            .rejected
            .iter()
            .map(|r| (r.line, r.error.message.clone()))
            .collect(),
        differences: report
            .differences
            .iter()
            .map(|d| {
                (
                    d.line,
                    format!("{} ({})", d.kind, d.actor_id),
                    list_or_none(&d.shadow),
                    list_or_none(&d.primary),
                )
            })
            .collect(),
    };
    let page = version_view(session, &found, pasted, recorded, Some(view)).await?;
    Ok(render(&page))
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[derive(Template)]
#[template(path = "console/playbook_confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    heading: String,
    change: String,
    action: String,
    button: String,
    back: String,
}

/// The playbook's published versions in the version's tenant scope, highest (the live
/// one) first.
async fn live_versions(state: &AppState, found: &PlaybookVersion) -> Result<Vec<u32>, PageError> {
    let mut published: Vec<u32> = state
        .store
        .list_playbooks(Scope::Only(&found.meta.tenant), Some(&found.meta.id))
        .await?
        .iter()
        .filter(|m| m.status == Status::Published)
        .map(|m| m.version)
        .collect();
    published.sort_unstable_by(|a, b| b.cmp(a));
    Ok(published)
}

fn tenant_words(tenant: &str) -> String {
    if tenant == GLOBAL {
        "every tenant without its own".to_owned()
    } else {
        format!("tenant {tenant}")
    }
}

async fn confirm_publish(
    State(state): State<AppState>,
    session: Session,
    Path(path): Path<VersionPath>,
) -> Result<Response, PageError> {
    session.require(&[Role::Admin], "publishing a playbook")?;
    let found = visible(&state, &session, &path).await?;
    let m = &found.meta;
    let published = live_versions(&state, &found).await?;
    let live = published.first().copied();
    if m.status == Status::Published {
        return Err(PageError::Invalid(format!(
            "{} v{} is published already",
            m.id, m.version
        )));
    }
    let (id, v, whom) = (&m.id, m.version, tenant_words(&m.tenant));
    let change = match live {
        Some(l) if l > v => format!(
            "{id} v{v} becomes published for {whom}; v{l} stays live (the highest published version decides)"
        ),
        Some(l) => format!("{id} v{v} becomes live for {whom}, replacing v{l}"),
        None => format!("{id} v{v} becomes live for {whom} (no version is live now)"),
    };
    let href = version_href(&m.tenant, &m.id, m.version);
    Ok(render(&ConfirmPage {
        chrome: Chrome::new(&session, "Confirm publishing", "/ui/playbooks"),
        heading: format!("Publish {} v{}?", m.id, m.version),
        change,
        action: format!("{href}/publish"),
        button: format!("Publish {} v{}", m.id, m.version),
        back: href,
    }))
}

async fn confirm_deprecate(
    State(state): State<AppState>,
    session: Session,
    Path(path): Path<VersionPath>,
) -> Result<Response, PageError> {
    session.require(&[Role::Admin], "deprecating a playbook")?;
    let found = visible(&state, &session, &path).await?;
    let m = &found.meta;
    if m.status != Status::Published {
        return Err(PageError::Invalid(format!(
            "{} v{} is {}; only published versions are deprecated",
            m.id, m.version, m.status
        )));
    }
    let published = live_versions(&state, &found).await?;
    let live = published.first().copied();
    let next = published.iter().copied().find(|v| *v != m.version);
    let change = if live == Some(m.version) {
        match next {
            Some(n) => format!("deprecating the live v{} makes v{n} live", m.version),
            None => format!(
                "deprecating the live v{} leaves {} with no live version for {}",
                m.version,
                m.id,
                tenant_words(&m.tenant)
            ),
        }
    } else {
        format!(
            "deprecating v{}, which is not the live one: v{} stays live",
            m.version,
            live.unwrap_or_default()
        )
    };
    let href = version_href(&m.tenant, &m.id, m.version);
    Ok(render(&ConfirmPage {
        chrome: Chrome::new(&session, "Confirm deprecating", "/ui/playbooks"),
        heading: format!("Deprecate {} v{}?", m.id, m.version),
        change,
        action: format!("{href}/deprecate"),
        button: format!("Deprecate {} v{}", m.id, m.version),
        back: href,
    }))
}

async fn publish(
    State(state): State<AppState>,
    Path(path): Path<VersionPath>,
    posted: Posted,
) -> Result<Response, PageError> {
    let session = &posted.session;
    session.require(&[Role::Admin], "publishing a playbook")?;
    let found = visible(&state, session, &path).await?;
    let m = &found.meta;
    let changed = publish_version(&state, &session.caller(), &m.tenant, &m.id, m.version).await?;
    Ok(flash::redirect(
        &version_href(&m.tenant, &m.id, m.version),
        &format!(
            "Published {} v{}; the live version is {}.",
            m.id,
            m.version,
            live_text(changed.live_version)
        ),
    ))
}

async fn deprecate(
    State(state): State<AppState>,
    Path(path): Path<VersionPath>,
    posted: Posted,
) -> Result<Response, PageError> {
    let session = &posted.session;
    session.require(&[Role::Admin], "deprecating a playbook")?;
    let found = visible(&state, session, &path).await?;
    let m = &found.meta;
    let changed = deprecate_version(&state, &session.caller(), &m.tenant, &m.id, m.version).await?;
    Ok(flash::redirect(
        &version_href(&m.tenant, &m.id, m.version),
        &format!(
            "Deprecated {} v{}; the live version is {}.",
            m.id,
            m.version,
            live_text(changed.live_version)
        ),
    ))
}
