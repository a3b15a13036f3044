//! The experiment assignment stage: each candidate whose condition held and that an active
//! experiment shapes gets the actor's variant (deterministic, by hash).

use crate::pipeline::record::{CandidateRecord, Verdict};
use crate::registry::PlaybookSet;
use crate::services::experiments::Experiments;
use crate::signal::Signal;

/// Assigns a variant to every candidate that held and has an active experiment.
pub(crate) fn assign<'s>(
    candidates: &mut [CandidateRecord<'s>],
    experiments: &Experiments,
    set: &'s PlaybookSet,
    signal: &Signal,
) {
    if set.experiments().is_empty() {
        return;
    }
    for c in candidates
        .iter_mut()
        .filter(|c| c.condition == Verdict::Held)
    {
        c.experiment = experiments.assign(set, &signal.tenant_id, &signal.actor_id, &c.plan.id);
    }
}
