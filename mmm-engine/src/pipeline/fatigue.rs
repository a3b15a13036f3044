//! The fatigue stage: one atomic check-and-record per playbook and actor (cooldown, `max`
//! per window, then the actor budget, which may allow only some of the playbook's
//! actions). What it allows is returned; the rest, and the actions past the cap, are
//! suppressed with the reason.

use jiff::Timestamp;

use crate::decision::{Detail, Reason};
use crate::duration::Duration;
use crate::fatigue::{FatigueError, FatigueRequest, FatigueStore, FatigueVerdict};
use crate::pipeline::compose::Cap;
use crate::pipeline::record::{CandidateRecord, DecisionRecord, Fate};
use crate::plan::Plan;
use crate::signal::Signal;

/// Who the fatigue limits are counted for, and when.
pub(crate) struct Subject<'a> {
    pub signal: &'a Signal,
    /// The actor budget from tenant policy.
    pub budget: Option<(u32, Duration)>,
    pub now: Timestamp,
}

/// Settles one composed playbook: asks the fatigue store, returns what it allows.
pub(crate) fn playbook(
    c: &mut CandidateRecord<'_>,
    store: &dyn FatigueStore,
    subject: &Subject<'_>,
    cap: &Cap,
    record: &mut DecisionRecord,
) {
    let plan = c.plan;
    let composed = c
        .actions
        .as_slice()
        .iter()
        .filter(|a| matches!(a.fate, Fate::Composed))
        .count();
    if composed == 0 {
        for a in c
            .actions
            .as_mut_slice()
            .iter_mut()
            .filter(|a| matches!(a.fate, Fate::OverCap))
        {
            a.fate = record.suppress(plan, a.index, Reason::MaxActions, cap.detail());
        }
        return;
    }
    let request = FatigueRequest {
        tenant_id: &subject.signal.tenant_id,
        actor_id: &subject.signal.actor_id,
        playbook_id: &plan.id,
        now: subject.now,
        actions: u32::try_from(composed).unwrap_or(u32::MAX),
        cooldown: plan.fatigue.cooldown,
        max: plan.fatigue.max,
        budget: subject.budget,
        critical: plan.critical,
    };
    let verdict = match store.check_and_record(&request) {
        Ok(v) => Ok(v),
        // A critical nudge goes out even when fatigue cannot be checked; anything else is
        // held back rather than risk nagging.
        Err(_) if plan.critical => Ok(FatigueVerdict::Allowed(request.actions)),
        Err(e) => Err(e),
    };
    let (allowed, reason, detail) = outcome(plan, verdict);
    let trimmed = allowed < composed;
    // The composed actions are the last `composed` of `record.actions`, in order: the
    // first `allowed` stay, the rest are dropped.
    let mut returned = 0;
    for a in c.actions.as_mut_slice().iter_mut() {
        if !matches!(a.fate, Fate::Composed) {
            continue;
        }
        if returned < allowed {
            returned += 1;
            a.fate = Fate::Acted;
        } else {
            a.fate = record.suppress(plan, a.index, reason, detail.clone());
        }
    }
    if trimmed {
        let keep = record.actions.len().saturating_sub(composed - allowed);
        record.actions.truncate(keep);
    }
    // Actions past the cap would have met the same fatigue limit when the limit trimmed
    // this playbook: report that limit, not the cap.
    for a in c
        .actions
        .as_mut_slice()
        .iter_mut()
        .filter(|a| matches!(a.fate, Fate::OverCap))
    {
        a.fate = if trimmed {
            record.suppress(plan, a.index, reason, detail.clone())
        } else {
            record.suppress(plan, a.index, Reason::MaxActions, cap.detail())
        };
    }
}

/// How many actions the verdict allows, and the reason and detail for the others.
fn outcome(plan: &Plan, verdict: Result<FatigueVerdict, FatigueError>) -> (usize, Reason, Detail) {
    match verdict {
        Ok(FatigueVerdict::Allowed(n)) => (
            usize::try_from(n).unwrap_or(usize::MAX),
            Reason::ActorBudget,
            Detail::Static("the actor's budget has no room for more actions"),
        ),
        Ok(FatigueVerdict::Cooldown) => (
            0,
            Reason::FatigueCooldown,
            Detail::Text(format!(
                "`{}` fired for this actor less than {} ago",
                plan.id,
                plan.fatigue
                    .cooldown
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            )),
        ),
        Ok(FatigueVerdict::Max) => (
            0,
            Reason::FatigueMax,
            Detail::Text(match plan.fatigue.max {
                Some((max, window)) => {
                    format!("`{}` already fired {max} times in {window}", plan.id)
                }
                None => String::new(),
            }),
        ),
        Ok(FatigueVerdict::Budget) => (
            0,
            Reason::ActorBudget,
            Detail::Static("the actor's budget is spent"),
        ),
        Err(e) => (
            0,
            Reason::FatigueCooldown,
            Detail::Text(format!("{e}; held back rather than risk nagging")),
        ),
    }
}
