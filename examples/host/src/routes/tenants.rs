//! Tenant metrics (SPEC §13): `GET /tenants/{tenant_id}/metrics?since=&until=`, for
//! `admin`s: aggregates over the store's per-tenant counters (hour buckets) — decisions,
//! actions by type and by playbook, suppressions by reason, outcomes by result. Never per
//! actor: no counter has an actor label.
//!
//! The counters, and the labels each one has, in order (what [`decision_counts`] and the
//! outcome route write):
//!
//! | metric | labels | one per |
//! |---|---|---|
//! | `decisions` | — | decision |
//! | `actions` | playbook, type | returned action |
//! | `suppressed` | reason, playbook, type | suppressed action |
//! | `outcomes` | playbook, type, result | outcome (first report of an (action, result)) |
//! | `exposures` | experiment, variant | decision that exposed the actor to a variant |
//! | `experiment_outcomes` | experiment, variant, result | outcome of an action a variant shaped |

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use mmm_engine::{parse_timestamp, Decision};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::policy::{check_tenant, TenantPath};
use super::{PathParams, QueryParams};
use crate::auth::extract::Admin;
use crate::error::{AppError, Problem};
use crate::store::Count;
use crate::AppState;

/// Counter names (see the module's table).
pub mod metric {
    /// One per decision.
    pub const DECISIONS: &str = "decisions";
    /// One per returned action: playbook, type.
    pub const ACTIONS: &str = "actions";
    /// One per suppressed action: reason, playbook, type.
    pub const SUPPRESSED: &str = "suppressed";
    /// One per new outcome: playbook, type, result.
    pub const OUTCOMES: &str = "outcomes";
    /// One per decision exposing the actor to a variant: experiment, variant.
    pub const EXPOSURES: &str = "exposures";
    /// One per new outcome of an action a variant shaped: experiment, variant, result.
    pub const EXPERIMENT_OUTCOMES: &str = "experiment_outcomes";
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tenant_metrics))
}

fn count(metric: &str, labels: &[&str]) -> Count {
    Count {
        metric: metric.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        n: 1,
    }
}

/// The counters one decision adds (to be stored at the decision's time for its tenant):
/// the decision, its actions, its suppressions and its experiment exposures
/// ([`super::experiments::exposure_counts`]).
pub fn decision_counts(decision: &Decision) -> Vec<Count> {
    let mut out = vec![count(metric::DECISIONS, &[])];
    for a in &decision.actions {
        out.push(count(metric::ACTIONS, &[&a.playbook.id, a.kind.as_str()]));
    }
    for s in &decision.suppressed {
        out.push(count(
            metric::SUPPRESSED,
            &[s.reason.as_str(), &s.playbook.id, s.kind.as_str()],
        ));
    }
    out.extend(super::experiments::exposure_counts(decision));
    out
}

/// `?since=&until=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// Start (RFC 3339; default: 24 hours before `until`). Counters are kept per hour: the
    /// hour `since` falls in counts whole.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// End, exclusive (RFC 3339; default: now).
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// Counts by one label.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Breakdown {
    /// The sum.
    pub total: i64,
    /// By the label's value.
    #[serde(flatten)]
    pub by: BTreeMap<String, BTreeMap<String, i64>>,
}

/// `GET /tenants/{tenant_id}/metrics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantMetrics {
    /// The tenant.
    pub tenant_id: String,
    /// Start of the window.
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
    /// End of the window (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub until: Timestamp,
    /// Decisions made.
    pub decisions: i64,
    /// Returned actions: `total`, `by_type`, `by_playbook`.
    #[schema(value_type = Object)]
    pub actions: Breakdown,
    /// Suppressed actions: `total`, `by_reason`.
    #[schema(value_type = Object)]
    pub suppressions: Breakdown,
    /// Outcomes: `total`, `by_result`, `by_playbook`.
    #[schema(value_type = Object)]
    pub outcomes: Breakdown,
}

fn add(b: &mut Breakdown, key: &str, value: Option<&String>, n: i64) {
    let value = value.map_or("", String::as_str);
    *b.by
        .entry(key.to_owned())
        .or_default()
        .entry(value.to_owned())
        .or_default() += n;
}

fn time(field: &str, text: Option<&String>) -> Result<Option<Timestamp>, AppError> {
    text.map(|t| parse_timestamp(t).map_err(|m| AppError::invalid_field(field, m)))
        .transpose()
}

/// Aggregates of the tenant over a window: decisions, actions by type and playbook,
/// suppressions by reason, outcomes by result (and playbook). Never per actor.
#[utoipa::path(get, path = "/tenants/{tenant_id}/metrics", tag = "tenants",
    params(TenantPath, Window),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TenantMetrics),
        (status = 403, description = "not an admin, or another tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a bad `since` or `until`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn tenant_metrics(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(path): PathParams<TenantPath>,
    QueryParams(window): QueryParams<Window>,
) -> Result<Json<TenantMetrics>, AppError> {
    check_tenant(&caller, &path.tenant_id)?;
    let until = time("until", window.until.as_ref())?.unwrap_or_else(|| state.clock.now());
    let since = match time("since", window.since.as_ref())? {
        Some(t) => t,
        None => until
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or(Timestamp::MIN),
    };
    if since >= until {
        return Err(AppError::invalid_field(
            "since",
            format!("must be before `until` ({until})"),
        ));
    }
    Ok(Json(aggregate(&state, path.tenant_id, since, until).await?))
}

/// The tenant's aggregates over `[since, until)` (the hour `since` falls in counts
/// whole): what `GET /tenants/{tenant_id}/metrics` answers, and what the console's
/// overview draws. The caller checks the tenant.
pub(crate) async fn aggregate(
    state: &AppState,
    tenant_id: String,
    since: Timestamp,
    until: Timestamp,
) -> Result<TenantMetrics, AppError> {
    let counts = state.store.counts(&tenant_id, None, since, until).await?;
    let mut out = TenantMetrics {
        tenant_id,
        since,
        until,
        decisions: 0,
        actions: Breakdown::default(),
        suppressions: Breakdown::default(),
        outcomes: Breakdown::default(),
    };
    for c in counts {
        let label = |i: usize| c.labels.get(i);
        match c.metric.as_str() {
            metric::DECISIONS => out.decisions += c.n,
            metric::ACTIONS => {
                out.actions.total += c.n;
                add(&mut out.actions, "by_playbook", label(0), c.n);
                add(&mut out.actions, "by_type", label(1), c.n);
            }
            metric::SUPPRESSED => {
                out.suppressions.total += c.n;
                add(&mut out.suppressions, "by_reason", label(0), c.n);
            }
            metric::OUTCOMES => {
                out.outcomes.total += c.n;
                add(&mut out.outcomes, "by_playbook", label(0), c.n);
                add(&mut out.outcomes, "by_result", label(2), c.n);
            }
            _ => {}
        }
    }
    for (b, keys) in [
        (&mut out.actions, &["by_type", "by_playbook"][..]),
        (&mut out.suppressions, &["by_reason"][..]),
        (&mut out.outcomes, &["by_result", "by_playbook"][..]),
    ] {
        for key in keys {
            b.by.entry((*key).to_owned()).or_default();
        }
    }
    Ok(out)
}
