//! The preference centre: a signed-in actor's own preferences (SPEC §2 `preferences`),
//! each change one form, audited as the API's are, followed by a message saying what
//! changed; and "what I was shown": the actor's recent actions with why each was shown
//! and a one-click way to turn that kind off.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use mmm_engine::Surface;
use serde_json::{Map, Value};

use super::{flash, render, Chrome, PageError, Posted, Session};
use crate::error::AppError;
use crate::routes::preferences::change_preferences;
use crate::store::GLOBAL;
use crate::AppState;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/preferences", get(page).post(categories))
        .route("/ui/preferences/snooze", post(snooze))
        .route("/ui/preferences/unsnooze", post(unsnooze))
        .route("/ui/preferences/quiet-hours", post(quiet_hours))
        .route("/ui/preferences/surfaces", post(surfaces))
}

/// Actions shown under "what I was shown".
const SHOWN: u32 = 25;

/// The hour a snooze "until tomorrow" or "until a date" ends, in the actor's zone.
const SNOOZE_ENDS_AT_HOUR: i8 = 9;

/// One category of the tenant's live playbooks.
struct Category {
    name: String,
    opted_out: bool,
    playbooks: Vec<(String, String)>,
}

/// One action the actor was shown.
struct Shown {
    when: String,
    playbook: String,
    version: u32,
    kind: String,
    why: String,
    category: Option<String>,
    category_off: bool,
}

#[derive(Template)]
#[template(path = "console/preferences.html")]
struct Page {
    chrome: Chrome,
    categories: Vec<Category>,
    snoozed_until: Option<String>,
    timezone: String,
    zones: Vec<String>,
    quiet_start: String,
    quiet_end: String,
    quiet_set: bool,
    surfaces: Vec<(&'static str, bool)>,
    shown: Vec<Shown>,
    tomorrow: String,
}

/// The platform operator signs in with `tenant_id: "*"` and is no actor of a tenant.
fn own_tenant(session: &Session) -> Result<&str, PageError> {
    if session.tenant == GLOBAL {
        return Err(PageError::Forbidden(
            "the platform operator has no preferences of its own; sign in with a tenant's token"
                .to_owned(),
        ));
    }
    Ok(&session.tenant)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Sets a list of strings, or removes the field when the list is empty (an empty list
/// and no list mean the same, and the stored document stays minimal).
fn set_list(prefs: &mut Map<String, Value>, key: &str, list: Vec<String>) {
    if list.is_empty() {
        prefs.remove(key);
    } else {
        prefs.insert(
            key.to_owned(),
            Value::Array(list.into_iter().map(Value::String).collect()),
        );
    }
}

/// The actor's time zone: the one of their quiet hours, else UTC.
fn actor_zone(prefs: &Value) -> String {
    prefs
        .pointer("/quiet_hours/timezone")
        .and_then(Value::as_str)
        .filter(|z| TimeZone::get(z).is_ok())
        .unwrap_or("UTC")
        .to_owned()
}

async fn page(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let tenant = own_tenant(&session)?;
    let (prefs, _) =
        crate::routes::policy::stored(state.store.get_preferences(tenant, &session.sub).await?);
    let opted_out = strings(prefs.get("opt_out_categories"));
    let live = state.live.engine().playbooks();
    let mut by_category: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut category_of: BTreeMap<String, String> = BTreeMap::new();
    let mut description_of: BTreeMap<String, String> = BTreeMap::new();
    for plan in live.live() {
        let plan_tenant = plan.tenant.as_deref().unwrap_or(GLOBAL);
        if plan_tenant != tenant && plan_tenant != GLOBAL {
            continue;
        }
        let description = plan.description.clone().unwrap_or_default();
        by_category
            .entry(plan.category.to_string())
            .or_default()
            .push((plan.id.to_string(), description.clone()));
        category_of.insert(plan.id.to_string(), plan.category.to_string());
        description_of.insert(plan.id.to_string(), description);
    }
    // A category the actor opted out of stays listed (to opt back in) even when no live
    // playbook has it any more.
    for name in &opted_out {
        by_category.entry(name.clone()).or_default();
    }
    let categories = by_category
        .into_iter()
        .map(|(name, playbooks)| Category {
            opted_out: opted_out.contains(&name),
            name,
            playbooks,
        })
        .collect();
    let zone = actor_zone(&prefs);
    let shown = state
        .store
        .actions_of_actor(tenant, &session.sub, SHOWN)
        .await?
        .into_iter()
        .map(|a| {
            let category = category_of.get(&a.playbook_id).cloned();
            Shown {
                when: in_zone(a.decided_at, &zone),
                why: description_of
                    .get(&a.playbook_id)
                    .cloned()
                    .unwrap_or_else(|| "a playbook version that is no longer live".to_owned()),
                category_off: category.as_ref().is_some_and(|c| opted_out.contains(c)),
                category,
                playbook: a.playbook_id,
                version: a.playbook_version,
                kind: a.action_type,
            }
        })
        .collect();
    let snoozed_until = prefs
        .get("snooze_until")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .filter(|t| *t > state.clock.now())
        .map(|t| in_zone(t, &zone));
    let preferred = strings(prefs.get("preferred_surfaces"));
    let surfaces = Surface::ALL
        .iter()
        .map(|s| (s.as_str(), preferred.iter().any(|p| p == s.as_str())))
        .collect();
    let quiet = prefs.get("quiet_hours");
    let quiet_field = |f: &str| {
        quiet
            .and_then(|q| q.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let tomorrow = Zoned::new(
        state.clock.now(),
        TimeZone::get(&zone).unwrap_or(TimeZone::UTC),
    )
    .date()
    .checked_add(1.day())
    .map(|d| d.to_string())
    .unwrap_or_default();
    let (flash, jar) = flash::take(&headers);
    let page = Page {
        chrome: Chrome::new(&session, "My preferences", "/ui/preferences").with_flash(flash),
        categories,
        snoozed_until,
        zones: zones(),
        quiet_start: quiet_field("start"),
        quiet_end: quiet_field("end"),
        quiet_set: quiet.is_some(),
        timezone: zone,
        surfaces,
        shown,
        tomorrow,
    };
    Ok((jar, render(&page)).into_response())
}

/// Every IANA time zone name, sorted.
fn zones() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db().available().map(|n| n.to_string()).collect();
    names.sort();
    names
}

/// An instant as `2026-11-30 18:00 (Europe/Berlin)`.
fn in_zone(at: Timestamp, zone: &str) -> String {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    format!("{} ({zone})", at.to_zoned(tz).strftime("%Y-%m-%d %H:%M"))
}

/// Applies one change to the session's own preferences and goes back to the page with
/// a message saying what changed.
async fn apply(
    state: &AppState,
    session: &Session,
    action: &str,
    message: String,
    edit: impl Fn(&mut Map<String, Value>) -> Result<(), AppError>,
) -> Result<Response, PageError> {
    let tenant = own_tenant(session)?;
    change_preferences(state, tenant, &session.sub, &session.sub, action, edit).await?;
    Ok(flash::redirect("/ui/preferences", &message))
}

/// Opt out of a category, or back in.
async fn categories(State(state): State<AppState>, form: Posted) -> Result<Response, PageError> {
    let category = form.get("category").unwrap_or("").trim().to_owned();
    if category.is_empty() {
        return Err(PageError::Invalid("no category was named".to_owned()));
    }
    let out = match form.get("action") {
        Some("opt_out") => true,
        Some("opt_in") => false,
        _ => {
            return Err(PageError::Invalid(
                "`action` must be opt_out or opt_in".to_owned(),
            ))
        }
    };
    let message = if out {
        format!("You opted out of “{category}”: its nudges are no longer shown to you.")
    } else {
        format!("You opted back in to “{category}”.")
    };
    apply(
        &state,
        &form.session,
        "preferences.updated",
        message,
        |prefs| {
            let mut list = strings(prefs.get("opt_out_categories"));
            list.retain(|c| *c != category);
            if out {
                list.push(category.clone());
                list.sort();
            }
            set_list(prefs, "opt_out_categories", list);
            Ok(())
        },
    )
    .await
}

/// When a snooze preset ends.
fn snooze_end(form: &Posted, now: Timestamp, zone: &str) -> Result<Timestamp, PageError> {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    let morning_of = |date: jiff::civil::Date| {
        date.at(SNOOZE_ENDS_AT_HOUR, 0, 0, 0)
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| PageError::Invalid(format!("that date cannot be used: {e}")))
    };
    let end = match form.get("preset") {
        Some("1h") => now
            .checked_add(1.hour())
            .map_err(|e| PageError::Internal(e.to_string()))?,
        Some("tomorrow") => {
            let today = now.to_zoned(tz.clone()).date();
            let tomorrow = today
                .checked_add(1.day())
                .map_err(|e| PageError::Invalid(e.to_string()))?;
            morning_of(tomorrow)?
        }
        Some("date") => {
            let text = form.get("date").unwrap_or("").trim();
            let date: jiff::civil::Date = text
                .parse()
                .map_err(|_| PageError::Invalid(format!("“{text}” is not a date (YYYY-MM-DD)")))?;
            morning_of(date)?
        }
        _ => {
            return Err(PageError::Invalid(
                "choose 1 hour, until tomorrow, or a date".to_owned(),
            ))
        }
    };
    if end <= now {
        return Err(PageError::Invalid(
            "the snooze would end in the past; choose a later date".to_owned(),
        ));
    }
    Ok(end)
}

async fn snooze(State(state): State<AppState>, form: Posted) -> Result<Response, PageError> {
    let tenant = own_tenant(&form.session)?;
    let (prefs, _) = crate::routes::policy::stored(
        state
            .store
            .get_preferences(tenant, &form.session.sub)
            .await?,
    );
    let zone = actor_zone(&prefs);
    let end = snooze_end(&form, state.clock.now(), &zone)?;
    let message = format!(
        "Snoozed until {}: only critical nudges are shown until then.",
        in_zone(end, &zone)
    );
    let until = end.to_string();
    apply(
        &state,
        &form.session,
        "preferences.snoozed",
        message,
        |prefs| {
            prefs.insert("snooze_until".to_owned(), Value::String(until.clone()));
            Ok(())
        },
    )
    .await
}

async fn unsnooze(State(state): State<AppState>, form: Posted) -> Result<Response, PageError> {
    apply(
        &state,
        &form.session,
        "preferences.unsnoozed",
        "Snooze ended: nudges are shown again.".to_owned(),
        |prefs| {
            prefs.remove("snooze_until");
            Ok(())
        },
    )
    .await
}

async fn quiet_hours(State(state): State<AppState>, form: Posted) -> Result<Response, PageError> {
    if form.get("action") == Some("clear") {
        return apply(
            &state,
            &form.session,
            "preferences.updated",
            "Quiet hours removed.".to_owned(),
            |prefs| {
                prefs.remove("quiet_hours");
                Ok(())
            },
        )
        .await;
    }
    let start = form.get("start").unwrap_or("").trim().to_owned();
    let end = form.get("end").unwrap_or("").trim().to_owned();
    let zone = form.get("timezone").unwrap_or("UTC").trim().to_owned();
    if TimeZone::get(&zone).is_err() {
        return Err(PageError::Invalid(format!("“{zone}” is not a time zone")));
    }
    let message =
        format!("Quiet hours set: {start} to {end} ({zone}); only critical nudges are shown then.");
    apply(
        &state,
        &form.session,
        "preferences.updated",
        message,
        |prefs| {
            let mut quiet = Map::new();
            quiet.insert("start".to_owned(), Value::String(start.clone()));
            quiet.insert("end".to_owned(), Value::String(end.clone()));
            quiet.insert("timezone".to_owned(), Value::String(zone.clone()));
            prefs.insert("quiet_hours".to_owned(), Value::Object(quiet));
            Ok(())
        },
    )
    .await
}

async fn surfaces(State(state): State<AppState>, form: Posted) -> Result<Response, PageError> {
    let mut chosen: Vec<String> = Vec::new();
    for name in form.all("surface") {
        if Surface::parse(name).is_none() {
            return Err(PageError::Invalid(format!(
                "“{name}” is not a surface; expected {}",
                Surface::expected()
            )));
        }
        if !chosen.iter().any(|c| c == name) {
            chosen.push(name.to_owned());
        }
    }
    let message = if chosen.is_empty() {
        "Nudges may appear on every surface your organisation enables.".to_owned()
    } else {
        format!("Nudges now appear only on: {}.", chosen.join(", "))
    };
    apply(
        &state,
        &form.session,
        "preferences.updated",
        message,
        |prefs| {
            set_list(prefs, "preferred_surfaces", chosen.clone());
            Ok(())
        },
    )
    .await
}
