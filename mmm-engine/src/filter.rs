//! The gates an action passes before it may be returned: tenant policy, the
//! policy snapshot, surfaces, preferences, snooze and quiet hours. The first gate that
//! closes gives the reason.

use jiff::Timestamp;

use crate::context::{Context, PolicySnapshot};
use crate::decision::Reason;
use crate::model::Surface;
use crate::plan::{ActionPlan, Plan};

/// Checks one action; on success returns the surfaces it may use, as a bit set.
pub(crate) fn check(
    plan: &Plan,
    action: &ActionPlan,
    ctx: &Context,
    policy: Option<&PolicySnapshot>,
    now: Timestamp,
) -> Result<u8, (Reason, String)> {
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
    // Surfaces as a bit set (bit = the surface's position in `Surface::ALL`); the order
    // of the action's own list is restored when the action is composed.
    let bit = |s: &Surface| 1u8 << (*s as u8);
    let enabled = action
        .surfaces
        .iter()
        .filter(|s| ctx.enabled_surfaces.contains(s))
        .fold(0u8, |m, s| m | bit(s));
    if enabled == 0 {
        return Err((
            Reason::SurfaceDisabled,
            "none of the action's surfaces is enabled for the tenant".to_owned(),
        ));
    }
    let preferred = ctx
        .preferences
        .preferred_surfaces
        .iter()
        .fold(0u8, |m, s| m | bit(s));
    let surfaces = if enabled & preferred != 0 {
        enabled & preferred
    } else {
        enabled
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

/// The action's surfaces that are in the bit set, in the action's order.
pub(crate) fn surfaces_in(action: &ActionPlan, set: u8) -> Vec<Surface> {
    action
        .surfaces
        .iter()
        .copied()
        .filter(|s| set & (1u8 << (*s as u8)) != 0)
        .collect()
}
