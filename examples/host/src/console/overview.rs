//! The tenant overview, for admins: the tenant's decisions over time, actions by type,
//! suppressions by reason and outcomes by result over a period (the aggregates of
//! `GET /tenants/{tenant_id}/metrics`, drawn by [`super::chart`]), and the approvals
//! still waiting for their channels. Never per actor: the counters have no actor label,
//! and the approvals table names none.
//!
//! `?period=24h|7d|30d` (default `7d`); the platform operator names the tenant with
//! `?tenant=`, every other admin sees their own.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use jiff::{SignedDuration, Timestamp};

use super::chart::{self, Column, Svg, Unit};
use super::{render, Chrome, PageError, Session};
use crate::auth::Role;
use crate::routes::tenants::{aggregate, metric, Breakdown};
use crate::AppState;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/ui/overview", get(page))
}

/// Open approvals listed.
const APPROVALS: u32 = 50;

const DECISIONS: Unit = Unit {
    one: "decision",
    many: "decisions",
};
const ACTIONS: Unit = Unit {
    one: "action",
    many: "actions",
};
const SUPPRESSIONS: Unit = Unit {
    one: "suppressed action",
    many: "suppressed actions",
};
const OUTCOMES: Unit = Unit {
    one: "outcome",
    many: "outcomes",
};
const HOUR: Unit = Unit {
    one: "hour",
    many: "hours",
};
const DAY: Unit = Unit {
    one: "day",
    many: "days",
};

/// The period shown: the last 24 hours by hour, or the last 7 or 30 days by day (UTC),
/// the current hour or day included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    fn parse(text: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == text)
    }

    fn as_str(self) -> &'static str {
        match self {
            Period::Day => "24h",
            Period::Week => "7d",
            Period::Month => "30d",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Period::Day => "The last 24 hours",
            Period::Week => "The last 7 days",
            Period::Month => "The last 30 days",
        }
    }

    /// How many columns, and the seconds of each.
    fn buckets(self) -> (i64, i64) {
        match self {
            Period::Day => (24, 3600),
            Period::Week => (7, 86_400),
            Period::Month => (30, 86_400),
        }
    }
}

/// One open approval, as the page shows it (no actor, no approver).
struct OpenRow {
    action_id: String,
    playbook: String,
    operation: String,
    channels: String,
    expires: String,
}

/// The four charts.
struct Charts {
    decisions_title: String,
    decisions: Svg,
    actions: Svg,
    suppressions: Svg,
    outcomes: Svg,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Page {
    chrome: Chrome,
    /// Whether the session is the platform operator's (who names the tenant).
    operator: bool,
    tenant: Option<String>,
    period: &'static str,
    period_label: &'static str,
    periods: Vec<(&'static str, &'static str)>,
    charts: Option<Charts>,
    approvals: Vec<OpenRow>,
    approvals_limited: bool,
}

/// `?period=` and `?tenant=`; any other parameter is refused (there is no per-actor view).
fn query(raw: Option<&str>) -> Result<(Period, Option<String>), PageError> {
    let mut period = Period::Week;
    let mut tenant = None;
    for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "period" => {
                period = Period::parse(&value).ok_or_else(|| {
                    PageError::Invalid("`period` must be 24h, 7d or 30d".to_owned())
                })?;
            }
            "tenant" => tenant = Some(value.trim().to_owned()).filter(|t| !t.is_empty()),
            _ => {
                return Err(PageError::Invalid(
                    "the overview takes only `period` and, for the platform operator, `tenant`"
                        .to_owned(),
                ))
            }
        }
    }
    Ok((period, tenant))
}

/// The tenant shown: the operator's choice (none yet: the page asks), else the
/// session's own; another tenant is the 403 page, naming nothing of it.
fn tenant_shown(session: &Session, asked: Option<String>) -> Result<Option<String>, PageError> {
    let caller = session.caller();
    if caller.is_operator() {
        let Some(tenant) = asked else {
            return Ok(None);
        };
        crate::routes::policy::check_tenant(&caller, &tenant)?;
        return Ok(Some(tenant));
    }
    match asked {
        Some(tenant) if tenant != session.tenant => Err(PageError::Forbidden(
            "an admin sees the overview of their own tenant only".to_owned(),
        )),
        _ => Ok(Some(session.tenant.clone())),
    }
}

fn at(seconds: i64) -> Result<Timestamp, PageError> {
    Timestamp::from_second(seconds).map_err(|e| PageError::Internal(e.to_string()))
}

/// The columns of decisions over the period: `[since, until)` cut in hours or days (UTC).
async fn decisions_over_time(
    state: &AppState,
    tenant: &str,
    period: Period,
    now: Timestamp,
) -> Result<(Vec<Column>, Timestamp, Timestamp), PageError> {
    let (n, step) = period.buckets();
    let end = (now.as_second().div_euclid(step) + 1) * step;
    let start = end - n * step;
    let mut columns = Vec::new();
    for i in 0..n {
        let from = at(start + i * step)?;
        let to = at(start + (i + 1) * step)?;
        let value = state
            .store
            .counts(tenant, Some(metric::DECISIONS), from, to)
            .await?
            .iter()
            .map(|c| c.n)
            .sum();
        let (tick, name) = if step == 3600 {
            (
                from.strftime("%H").to_string(),
                from.strftime("%Y-%m-%d %H:00").to_string(),
            )
        } else {
            (
                from.strftime("%d").to_string(),
                from.strftime("%Y-%m-%d").to_string(),
            )
        };
        columns.push(Column { tick, name, value });
    }
    Ok((columns, at(start)?, at(end)?))
}

fn by(breakdown: &Breakdown, key: &str) -> Vec<(String, i64)> {
    breakdown
        .by
        .get(key)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default()
}

async fn charts(
    state: &AppState,
    tenant: &str,
    period: Period,
    now: Timestamp,
) -> Result<Charts, PageError> {
    let (columns, since, until) = decisions_over_time(state, tenant, period, now).await?;
    let metrics = aggregate(state, tenant.to_owned(), since, until).await?;
    let hourly = period == Period::Day;
    let last = until
        .checked_sub(SignedDuration::from_secs(period.buckets().1))
        .unwrap_or(until);
    let (decisions_title, bucket, axis) = if hourly {
        (
            "Decisions per hour",
            HOUR,
            format!(
                "Hour (UTC), {} to {}",
                since.strftime("%Y-%m-%d %H:00"),
                last.strftime("%Y-%m-%d %H:00")
            ),
        )
    } else {
        (
            "Decisions per day",
            DAY,
            format!(
                "Day (UTC), {} to {}",
                since.strftime("%Y-%m-%d"),
                last.strftime("%Y-%m-%d")
            ),
        )
    };
    Ok(Charts {
        decisions: chart::columns(
            "svg-decisions",
            decisions_title,
            DECISIONS,
            bucket,
            &axis,
            &columns,
        ),
        decisions_title: decisions_title.to_owned(),
        actions: chart::bars(
            "svg-actions",
            "Actions by type",
            ACTIONS,
            "Actions returned",
            &by(&metrics.actions, "by_type"),
        ),
        suppressions: chart::bars(
            "svg-suppressions",
            "Suppressions by reason",
            SUPPRESSIONS,
            "Actions suppressed",
            &by(&metrics.suppressions, "by_reason"),
        ),
        outcomes: chart::bars(
            "svg-outcomes",
            "Outcomes by result",
            OUTCOMES,
            "Outcomes reported",
            &by(&metrics.outcomes, "by_result"),
        ),
    })
}

async fn open_approvals(
    state: &AppState,
    tenant: &str,
    now: Timestamp,
) -> Result<Vec<OpenRow>, PageError> {
    Ok(state
        .store
        .open_approvals(tenant, now, APPROVALS)
        .await?
        .into_iter()
        .map(|o| {
            let channels: Vec<&str> = o
                .approval
                .grants
                .iter()
                .map(|g| g.channel.as_str())
                .collect();
            OpenRow {
                playbook: if o.playbook_id.is_empty() {
                    "—".to_owned()
                } else {
                    format!("{} v{}", o.playbook_id, o.playbook_version)
                },
                operation: o
                    .approval
                    .operation
                    .clone()
                    .unwrap_or_else(|| "—".to_owned()),
                channels: if channels.is_empty() {
                    "none yet".to_owned()
                } else {
                    channels.join(", ")
                },
                expires: o
                    .approval
                    .expires_at
                    .strftime("%Y-%m-%d %H:%M UTC")
                    .to_string(),
                action_id: o.approval.action_id,
            }
        })
        .collect())
}

async fn page(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    session.require(&[Role::Admin], "the tenant overview")?;
    let (period, asked) = query(raw.as_deref())?;
    let tenant = tenant_shown(&session, asked)?;
    let now = state.clock.now();
    let (charts, approvals) = match &tenant {
        Some(t) => (
            Some(charts(&state, t, period, now).await?),
            open_approvals(&state, t, now).await?,
        ),
        None => (None, Vec::new()),
    };
    let page = Page {
        chrome: Chrome::new(&session, "Tenant overview", "/ui/overview"),
        operator: session.caller().is_operator(),
        tenant,
        period: period.as_str(),
        period_label: period.label(),
        periods: Period::ALL
            .iter()
            .map(|p| (p.as_str(), p.label()))
            .collect(),
        charts,
        approvals_limited: approvals.len() >= APPROVALS as usize,
        approvals,
    };
    Ok(render(&page))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_a_period_and_perhaps_a_tenant() {
        assert_eq!(query(None).unwrap(), (Period::Week, None));
        assert_eq!(
            query(Some("period=24h&tenant=acme")).unwrap(),
            (Period::Day, Some("acme".to_owned()))
        );
        assert_eq!(
            query(Some("period=30d&tenant=")).unwrap(),
            (Period::Month, None)
        );
        for bad in ["period=1y", "period=", "actor=dev-1"] {
            assert!(
                matches!(query(Some(bad)), Err(PageError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
