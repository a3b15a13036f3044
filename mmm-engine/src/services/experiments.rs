//! The experiments service: which variant an actor gets, the Thompson arm state per
//! (tenant, experiment), status changes made at run time, and outcome statistics. The
//! experiments themselves (plans, hashing, the Thompson update) are in `experiment.rs`.

use dashmap::DashMap;
use jiff::Timestamp;
use parking_lot::Mutex;
use serde_json::json;

use crate::audit::{AuditError, AuditEvent, AuditSink};
use crate::decision::ExperimentRef;
use crate::experiment::{fnv1a32, ArmState, ExperimentPlan, ExperimentStatus, Strategy, Variant};
use crate::outcome::Outcome;
use crate::registry::PlaybookSet;

/// The experiment and variant an actor is assigned for one playbook.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Assignment<'s> {
    pub plan: &'s ExperimentPlan,
    pub variant: &'s Variant,
}

/// Run-time experiment state, shared by every decision of an engine and kept across
/// reloads.
pub(crate) struct Experiments {
    /// Thompson state per (tenant, experiment id).
    arms: DashMap<(String, String), Mutex<ArmState>>,
    /// Status changes made through `Engine::set_experiment_status`, by experiment id.
    status: DashMap<String, ExperimentStatus>,
    /// Held across a status change (read, audit, apply), so that the audit log records
    /// the changes in the order they apply, each with the status it replaced.
    changes: Mutex<()>,
    /// Seeds Thompson sampling.
    seed: u64,
}

impl Experiments {
    pub fn new(seed: u64) -> Experiments {
        Experiments {
            arms: DashMap::new(),
            status: DashMap::new(),
            changes: Mutex::new(()),
            seed,
        }
    }

    /// The status in force: a run-time change, else the status as loaded.
    fn status(&self, plan: &ExperimentPlan) -> ExperimentStatus {
        self.status.get(&plan.id).map_or(plan.status, |s| *s)
    }

    /// Current (unnormalised) weights of an experiment's variants for a tenant.
    fn weights(&self, tenant_id: &str, plan: &ExperimentPlan) -> Vec<f64> {
        let written = || plan.variants.iter().map(|v| v.weight).collect();
        match plan.strategy {
            Strategy::Fixed => written(),
            Strategy::Thompson => match self.arms.get(&(tenant_id.to_owned(), plan.id.clone())) {
                Some(arms) => {
                    let arms = arms.lock();
                    if arms.matches(plan) {
                        arms.weights.clone()
                    } else {
                        written()
                    }
                }
                None => written(),
            },
        }
    }

    /// The experiment and variant for a candidate playbook, when an active experiment
    /// applies.
    pub fn assign<'s>(
        &self,
        set: &'s PlaybookSet,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
    ) -> Option<Assignment<'s>> {
        let plan = set.experiment_for(tenant_id, playbook_id)?;
        if self.status(plan) != ExperimentStatus::Active {
            return None;
        }
        let variant = self.variant_for(plan, tenant_id, actor_id)?;
        Some(Assignment { plan, variant })
    }

    /// The variant the actor is assigned (namespace, GrowthBook hash v2 with the seed
    /// `<tenant>:<experiment id>`, ranges sized by the current weights and cut by
    /// coverage); `None` when the actor is not in the experiment.
    fn variant_for<'s>(
        &self,
        plan: &'s ExperimentPlan,
        tenant_id: &str,
        actor_id: &str,
    ) -> Option<&'s Variant> {
        plan.variant_for(tenant_id, actor_id, &self.weights(tenant_id, plan))
    }

    /// Current weights of an experiment's variants for a tenant, normalised to 1.
    pub fn normalised_weights(
        &self,
        set: &PlaybookSet,
        tenant_id: &str,
        experiment_id: &str,
    ) -> Option<Vec<(String, f64)>> {
        let plan = set.experiments().iter().find(|e| {
            e.id == experiment_id && e.tenant.as_deref().is_none_or(|t| t == tenant_id)
        })?;
        let weights = self.weights(tenant_id, plan);
        let total: f64 = weights.iter().sum();
        Some(
            plan.variants
                .iter()
                .zip(weights)
                .map(|(v, w)| (v.name.clone(), if total > 0.0 { w / total } else { 0.0 }))
                .collect(),
        )
    }

    /// Counts an outcome of an action an experiment shaped, and lets Thompson experiments
    /// re-weight.
    pub fn record_outcome(
        &self,
        set: &PlaybookSet,
        outcome: &Outcome,
        experiment: &ExperimentRef,
        now: Timestamp,
    ) {
        let (experiment_id, variant) = (experiment.id.as_str(), experiment.variant.as_str());
        let (tenant_id, result) = (outcome.tenant_id.as_str(), outcome.result);
        let Some(plan) = set
            .experiment_for(tenant_id, &outcome.playbook_id)
            .filter(|e| e.id == experiment_id)
        else {
            return;
        };
        let Some(index) = plan.variants.iter().position(|v| v.name == variant) else {
            return;
        };
        let entry = self
            .arms
            .entry((tenant_id.to_owned(), experiment_id.to_owned()))
            .or_insert_with(|| Mutex::new(ArmState::new(plan)));
        let mut arms = entry.lock();
        if !arms.matches(plan) {
            // The experiment changed shape in a reload: its old counts say nothing about
            // the new variants.
            *arms = ArmState::new(plan);
        }
        let slot = if plan.success.contains(&result) {
            &mut arms.successes
        } else {
            &mut arms.failures
        };
        if let Some(n) = slot.get_mut(index) {
            *n += 1;
        }
        let seed = self.seed ^ u64::from(fnv1a32(&format!("{tenant_id}:{}", plan.id)));
        arms.maybe_update(plan, now, seed);
    }

    /// Pauses, resumes or completes an experiment, once the audit sink has recorded it.
    pub fn set_status(
        &self,
        set: &PlaybookSet,
        audit: &dyn AuditSink,
        at: Timestamp,
        experiment_id: &str,
        status: ExperimentStatus,
        by: &str,
    ) -> Result<(), AuditError> {
        let plan = set
            .experiments()
            .iter()
            .find(|e| e.id == experiment_id)
            .ok_or_else(|| AuditError::UnknownExperiment(experiment_id.to_owned()))?;
        let _one_at_a_time = self.changes.lock();
        let before = self.status(plan);
        audit
            .record(&AuditEvent {
                kind: "experiment.state_changed".into(),
                subject: experiment_id.to_owned(),
                by: Some(by.to_owned()),
                at,
                before: json!({"status": before}),
                after: json!({"status": status}),
            })
            .map_err(AuditError::Unavailable)?;
        self.status.insert(experiment_id.to_owned(), status);
        Ok(())
    }
}
