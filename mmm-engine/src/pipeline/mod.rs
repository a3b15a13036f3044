//! The decision pipeline, one module per stage in the order `Engine::decide` runs them:
//!
//! 1. [`signal`]: the envelope is validated and the deadline set (and, after the
//!    context, data minimisation);
//! 2. [`context`]: the caller's context, the ports' answers, the policy in force;
//! 3. [`candidates`]: the plans whose triggers match;
//! 4. [`conditions`]: each candidate's `when`;
//! 5. [`experiments`]: variant assignment;
//! 6. [`gates`]: holdouts, condition errors, tenant policy, policy, surfaces,
//!    preferences, snooze, quiet hours, policy unavailability, backpressure;
//! 7. [`compose`]: the cap, mentor text, rendering;
//! 8. [`fatigue`]: cooldown, `max`, the actor budget, per playbook;
//! 9. [`receipt`]: the signed record of the decision;
//! 10. [`delivery`]: the returned actions to their surfaces;
//! 11. [`report`]: spans and the decision to the observer.
//!
//! What flows between them is in [`record`]: one record per candidate and one per decision.

pub(crate) mod candidates;
pub(crate) mod compose;
pub(crate) mod conditions;
pub(crate) mod context;
pub(crate) mod delivery;
pub(crate) mod experiments;
pub(crate) mod fatigue;
pub(crate) mod gates;
pub(crate) mod receipt;
pub(crate) mod record;
pub(crate) mod report;
pub(crate) mod signal;
