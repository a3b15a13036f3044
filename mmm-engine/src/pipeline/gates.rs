//! The gates stage: a holdout suppresses its whole playbook, a failed condition every
//! action of its playbook; otherwise each action of a candidate that held passes the gates
//! in order: action type enabled, policy, surfaces (and preference narrowing), opt-out,
//! then, unless the playbook is critical, snooze and quiet hours; then policy
//! unavailability and outbox backpressure. The first gate that closes gives the reason.

use jiff::Timestamp;

use crate::context::{Context, PolicySnapshot};
use crate::decision::Reason;
use crate::model::{ActionType, SurfaceSet};
use crate::pipeline::context::PolicyState;
use crate::pipeline::record::{ActionRecord, CandidateRecord, DecisionRecord, Fate, Verdict};
use crate::plan::{ActionPlan, Plan};

/// Runs the gates over every candidate.
pub(crate) fn check(
    candidates: &mut [CandidateRecord<'_>],
    ctx: &Context,
    policy: &PolicyState,
    backpressure: bool,
    now: Timestamp,
    record: &mut DecisionRecord,
) {
    let snapshot = policy.snapshot();
    // Room, once, for every action that can be suppressed from here on: a decision's
    // suppressions are mostly past the cap, and the vector would otherwise grow in steps.
    let judged: usize = candidates
        .iter()
        .filter(|c| !matches!(c.condition, Verdict::NotHeld | Verdict::Pending))
        .map(|c| c.plan.actions.len())
        .sum();
    record.suppressed.reserve(judged);
    // Most candidates' conditions did not hold: nothing to do for them.
    for c in candidates
        .iter_mut()
        .filter(|c| !matches!(c.condition, Verdict::NotHeld | Verdict::Pending))
    {
        let plan = c.plan;
        // Every action of the playbook suppressed for one reason.
        let mut all = |reason: Reason, detail: &dyn Fn() -> String| {
            (0..plan.actions.len())
                .map(|index| ActionRecord {
                    index,
                    fate: record.suppress(plan, index, reason, detail()),
                })
                .collect()
        };
        let holdout = c.experiment.filter(|a| a.variant.holdout);
        c.actions = match (&c.condition, holdout) {
            (Verdict::NotHeld | Verdict::Pending, _) => continue,
            (Verdict::Failed(e), _) => all(Reason::ConditionError, &|| e.clone()),
            (Verdict::Held, Some(a)) => all(Reason::ExperimentHoldout, &|| {
                format!(
                    "the actor is in holdout `{}` of experiment `{}`",
                    a.variant.name, a.plan.id
                )
            }),
            (Verdict::Held, None) => plan
                .actions
                .iter()
                .enumerate()
                .map(|(index, action)| {
                    let fate = match gate(plan, action, ctx, snapshot, now)
                        .and_then(|surfaces| last_gates(action, policy, backpressure, surfaces))
                    {
                        Ok(surfaces) => Fate::Passed(surfaces),
                        Err((reason, detail)) => record.suppress(plan, index, reason, detail),
                    };
                    ActionRecord { index, fate }
                })
                .collect(),
        };
    }
}

/// Policy unavailability and outbox backpressure, after the other gates.
fn last_gates(
    action: &ActionPlan,
    policy: &PolicyState,
    backpressure: bool,
    surfaces: SurfaceSet,
) -> Result<SurfaceSet, (Reason, String)> {
    match policy {
        PolicyState::Unavailable {
            safety_critical: true,
            why,
        } => Err((
            Reason::PolicyUnavailable,
            format!("{why}; the tenant is safety-critical, so nothing goes out"),
        )),
        PolicyState::Unavailable { why, .. } if action.kind != ActionType::Mirror => Err((
            Reason::PolicyUnavailable,
            format!("{why}; only mirror actions go out without policy"),
        )),
        _ if backpressure => Err((
            Reason::ReceiptsBackpressure,
            "the receipts outbox is full: no nudge goes out unaudited".to_owned(),
        )),
        _ => Ok(surfaces),
    }
}

/// Checks one action; on success returns the surfaces it may use.
fn gate(
    plan: &Plan,
    action: &ActionPlan,
    ctx: &Context,
    policy: Option<&PolicySnapshot>,
    now: Timestamp,
) -> Result<SurfaceSet, (Reason, String)> {
    if !ctx.enabled_action_types.contains(&action.kind) {
        return Err((
            Reason::ActionTypeDisabled,
            format!("the tenant has not enabled `{}` actions", action.kind),
        ));
    }
    if let Some(policy) = policy {
        let snapshot = policy.snapshot_id.as_deref().unwrap_or("the policy");
        if policy.denied_playbooks.iter().any(|p| **p == *plan.id) {
            return Err((
                Reason::PolicyDenied,
                format!("{snapshot} denies playbook `{}`", plan.id),
            ));
        }
        if policy.denied_action_types.contains(&action.kind) {
            return Err((
                Reason::PolicyDenied,
                format!("{snapshot} denies `{}` actions", action.kind),
            ));
        }
        if let Some(op) = &action.operation {
            if policy.denied_operations.iter().any(|d| d == op) {
                return Err((
                    Reason::PolicyDenied,
                    format!("{snapshot} denies operation `{op}`"),
                ));
            }
        }
    }
    // The order of the action's own list is restored when the action is composed.
    let enabled: SurfaceSet = action
        .surfaces
        .iter()
        .filter(|s| ctx.enabled_surfaces.contains(s))
        .collect();
    if enabled.is_empty() {
        return Err((
            Reason::SurfaceDisabled,
            "none of the action's surfaces is enabled for the tenant".to_owned(),
        ));
    }
    let preferred: SurfaceSet = ctx.preferences.preferred_surfaces.iter().collect();
    let narrowed = enabled.intersection(preferred);
    let surfaces = if narrowed.is_empty() {
        enabled
    } else {
        narrowed
    };
    if ctx
        .preferences
        .opt_out_categories
        .iter()
        .any(|c| **c == *plan.category)
    {
        return Err((
            Reason::OptedOut,
            format!("the actor opted out of category `{}`", plan.category),
        ));
    }
    if !plan.critical {
        if let Some(until) = ctx.snooze_until {
            if now < until {
                return Err((
                    Reason::Snoozed,
                    format!("the actor snoozed nudges until {until}"),
                ));
            }
        }
        if ctx
            .tenant_quiet_hours
            .as_ref()
            .is_some_and(|q| q.contains(now))
        {
            return Err((
                Reason::QuietHours,
                "inside the tenant's quiet hours".to_owned(),
            ));
        }
        if ctx
            .actor_quiet_hours
            .as_ref()
            .is_some_and(|q| q.contains(now))
        {
            return Err((
                Reason::QuietHours,
                "inside the actor's quiet hours".to_owned(),
            ));
        }
    }
    Ok(surfaces)
}
