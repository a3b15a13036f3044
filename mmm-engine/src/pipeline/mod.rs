//! The decision pipeline, one module per stage, in the order `Engine::decide` runs them:
//!
//! - [`signal`]: the envelope is validated and the deadline set (and, once the context
//!   is known, data minimisation);
//! - [`context`]: the caller's context, the ports' answers, the policy in force;
//! - [`candidates`]: the plans whose triggers match;
//! - [`conditions`]: each candidate's `when`;
//! - [`experiments`]: variant assignment;
//! - [`gates`]: holdouts, condition errors, tenant policy, policy, surfaces,
//!   preferences, snooze, quiet hours, policy unavailability, backpressure;
//! - [`compose`]: the cap, mentor text, rendering;
//! - [`fatigue`]: cooldown, `max`, the actor budget, per playbook;
//! - [`receipt`]: the signed record of the decision;
//! - [`delivery`]: the returned actions to their surfaces;
//! - [`report`]: spans and the decision to the observer.
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
