//! The conditions stage: each candidate's compiled `when` runs, natively when it is in the
//! simple subset and the data allow, otherwise on the sandboxed Rhai engine. A failing
//! condition costs only its own playbook (`condition_error`, in the gates stage).

use jiff::Timestamp;

use crate::condition::program::PathCache;
use crate::condition::{HelperInputs, RhaiState, Sandbox};
use crate::context::Context;
use crate::env::Env;
use crate::pipeline::record::{CandidateRecord, Verdict};

/// Evaluates every candidate's condition against `env`.
pub(crate) fn evaluate<'s>(
    candidates: &mut [CandidateRecord<'s>],
    sandbox: &Sandbox,
    env: &Env<'s>,
    ctx: &Context,
    now: Timestamp,
) {
    let helpers = HelperInputs {
        now,
        recent: &ctx.recent,
        zone: &ctx.actor_zone,
    };
    let mut rhai = RhaiState::new();
    let mut paths = PathCache::default();
    for c in candidates {
        // The quick form first: it reads only the candidate list, not the plan.
        c.condition = match c.quick.and_then(|q| q.evaluate(sandbox, &paths)) {
            Some(true) => Verdict::Held,
            Some(false) => Verdict::NotHeld,
            None => match &c.plan.condition {
                None => Verdict::Held,
                Some(cond) => match cond.evaluate(sandbox, env, &helpers, &mut rhai, &mut paths) {
                    Ok(true) => Verdict::Held,
                    Ok(false) => Verdict::NotHeld,
                    Err(e) => Verdict::Failed(e),
                },
            },
        };
    }
}
