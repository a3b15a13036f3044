//! Experiments (SPEC §3): variants of a playbook's copy, assigned deterministically with
//! GrowthBook's hash v2, with holdouts, and optionally re-weighted by Thompson sampling
//! from recorded outcomes. An experiment only changes wording or holds a playbook back:
//! it never overrides policy, tenant policy or preferences, and never rewrites what a
//! multiplier says it will do.

use jiff::Timestamp;
use rand::SeedableRng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::outcome::OutcomeResult;
use crate::template::Template;

/// FNV-1a, 32 bits, over the UTF-8 bytes of `text`.
pub fn fnv1a32(text: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// GrowthBook's hash v2 as SPEC §3 defines it: a number in [0, 1) with four decimals.
///
/// ```
/// assert_eq!(mmm_engine::experiment::hash_v2("acme:large-pr-copy", "dev-42"), 0.6287);
/// ```
pub fn hash_v2(seed: &str, value: &str) -> f64 {
    let inner = fnv1a32(&format!("{seed}{value}"));
    f64::from(fnv1a32(&inner.to_string()) % 10_000) / 10_000.0
}

/// The variant owning `n`: variants own consecutive ranges of [0, 1) in order, sized by
/// their weights normalised by the sum.
pub fn choose(n: f64, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || weights.is_empty() {
        return 0;
    }
    let mut end = 0.0;
    for (i, w) in weights.iter().enumerate() {
        end += w / total;
        if n < end {
            return i;
        }
    }
    weights.len() - 1
}

/// How weights are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// As written.
    Fixed,
    /// Re-weighted from outcomes by Thompson sampling.
    Thompson,
}

/// An experiment's life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Assigning actors.
    Active,
    /// Not assigning (the playbook runs as written).
    Paused,
    /// Over (the playbook runs as written).
    Completed,
}

impl ExperimentStatus {
    /// Parses the stable string form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(ExperimentStatus::Active),
            "paused" => Some(ExperimentStatus::Paused),
            "completed" => Some(ExperimentStatus::Completed),
            _ => None,
        }
    }
}

/// Content overrides of a variant (`set`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub title: Option<Template>,
    pub text: Option<Template>,
    pub prompt: Option<Template>,
    pub fallback: Option<Template>,
}

/// One variant.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Name.
    pub name: String,
    /// Weight as written.
    pub weight: f64,
    /// A holdout suppresses the playbook (`experiment_holdout`).
    pub holdout: bool,
    pub(crate) set: Overrides,
}

/// A compiled experiment.
#[derive(Debug, Clone)]
pub struct ExperimentPlan {
    /// Id.
    pub id: String,
    /// What it tests.
    pub description: Option<String>,
    /// `None` for all tenants.
    pub tenant: Option<String>,
    /// State as loaded.
    pub status: ExperimentStatus,
    /// The playbook whose actions it shapes.
    pub playbook: String,
    /// Fixed or Thompson.
    pub strategy: Strategy,
    /// Outcomes that count as success.
    pub success: Vec<OutcomeResult>,
    /// Variants, in order.
    pub variants: Vec<Variant>,
    /// Outcomes each arm needs before Thompson re-weights.
    pub min_samples: u64,
    /// Weights are recomputed at most this often.
    pub update_interval: Duration,
    /// Where it was defined.
    pub source: crate::plan::SourceRef,
}

/// The lowest weight Thompson sampling gives an arm.
pub const FLOOR: f64 = 0.01;

/// Outcome counts and current weights of one experiment for one tenant.
#[derive(Debug, Clone)]
pub(crate) struct ArmState {
    /// The variants these counts are for; a reload that changes them starts afresh.
    pub names: Vec<String>,
    pub successes: Vec<u64>,
    pub failures: Vec<u64>,
    /// Weights of every variant (holdouts keep theirs).
    pub weights: Vec<f64>,
    pub updated_at: Option<Timestamp>,
    pub updates: u64,
}

impl ArmState {
    pub fn new(plan: &ExperimentPlan) -> Self {
        let n = plan.variants.len();
        ArmState {
            names: plan.variants.iter().map(|v| v.name.clone()).collect(),
            successes: vec![0; n],
            failures: vec![0; n],
            weights: plan.variants.iter().map(|v| v.weight).collect(),
            updated_at: None,
            updates: 0,
        }
    }

    /// Whether these counts belong to `plan`'s variants (same names, same order).
    pub fn matches(&self, plan: &ExperimentPlan) -> bool {
        self.names.len() == plan.variants.len()
            && self
                .names
                .iter()
                .zip(&plan.variants)
                .all(|(n, v)| *n == v.name)
    }

    /// Recomputes Thompson weights when every arm has enough outcomes and the update
    /// interval has passed. Holdout arms keep their share; the others share the rest by
    /// their probability of being best, estimated from Beta(successes + 1, failures + 1)
    /// draws, with no arm below [`FLOOR`] of the total.
    pub fn maybe_update(&mut self, plan: &ExperimentPlan, now: Timestamp, seed: u64) -> bool {
        if plan.strategy != Strategy::Thompson {
            return false;
        }
        let arms: Vec<usize> = (0..plan.variants.len())
            .filter(|i| plan.variants.get(*i).is_some_and(|v| !v.holdout))
            .collect();
        if arms.len() < 2 {
            return false;
        }
        let enough = arms.iter().all(|i| {
            self.successes.get(*i).copied().unwrap_or(0)
                + self.failures.get(*i).copied().unwrap_or(0)
                >= plan.min_samples
        });
        let due = self.updated_at.is_none_or(|at| {
            now.as_millisecond() - at.as_millisecond() >= plan.update_interval.as_millis()
        });
        if !enough || !due {
            return false;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            seed ^ self.updates.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let betas: Vec<Option<Beta<f64>>> = arms
            .iter()
            .map(|i| {
                #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                let (s, f) = (
                    self.successes.get(*i).copied().unwrap_or(0) as f64,
                    self.failures.get(*i).copied().unwrap_or(0) as f64,
                );
                Beta::new(s + 1.0, f + 1.0).ok()
            })
            .collect();
        const DRAWS: usize = 2_000;
        let mut wins = vec![0usize; arms.len()];
        for _ in 0..DRAWS {
            let mut best = (0, f64::MIN);
            for (k, beta) in betas.iter().enumerate() {
                let x = beta.as_ref().map_or(0.0, |b| b.sample(&mut rng));
                if x > best.1 {
                    best = (k, x);
                }
            }
            if let Some(w) = wins.get_mut(best.0) {
                *w += 1;
            }
        }
        let total: f64 = plan.variants.iter().map(|v| v.weight).sum();
        let holdout: f64 = plan
            .variants
            .iter()
            .filter(|v| v.holdout)
            .map(|v| v.weight)
            .sum();
        let share = if total > 0.0 {
            (total - holdout) / total
        } else {
            1.0
        };
        #[expect(clippy::cast_precision_loss, reason = "a handful of arms")]
        let k = arms.len() as f64;
        for (slot, arm) in arms.iter().enumerate() {
            #[expect(clippy::cast_precision_loss, reason = "at most 2,000 draws")]
            let p = wins.get(slot).copied().unwrap_or(0) as f64 / DRAWS as f64;
            if let Some(w) = self.weights.get_mut(*arm) {
                // Each arm gets at least the floor (of the total); the rest of the
                // non-holdout share goes by probability of being best.
                *w = FLOOR + (share - k * FLOOR).max(0.0) * p;
            }
        }
        for (i, v) in plan.variants.iter().enumerate() {
            if v.holdout {
                if let Some(w) = self.weights.get_mut(i) {
                    *w = if total > 0.0 { v.weight / total } else { 0.0 };
                }
            }
        }
        self.updated_at = Some(now);
        self.updates += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_and_hash_v2_vectors() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/experiments/hash_v2.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for case in v["fnv1a32"].as_array().unwrap() {
            assert_eq!(
                u64::from(fnv1a32(case[0].as_str().unwrap())),
                case[1].as_u64().unwrap()
            );
        }
        for case in v["cases"].as_array().unwrap() {
            let n = hash_v2(
                case["seed"].as_str().unwrap(),
                case["value"].as_str().unwrap(),
            );
            assert_eq!(n, case["n"].as_f64().unwrap(), "{case}");
        }
        for case in v["assignment"].as_array().unwrap() {
            let weights: Vec<f64> = case["weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_f64().unwrap())
                .collect();
            assert_eq!(
                choose(case["n"].as_f64().unwrap(), &weights),
                case["variant_index"].as_u64().unwrap() as usize
            );
        }
    }

    fn plan() -> ExperimentPlan {
        let v = |name: &str, weight: f64, holdout: bool| Variant {
            name: name.into(),
            weight,
            holdout,
            set: Overrides::default(),
        };
        ExperimentPlan {
            id: "e".into(),
            description: None,
            tenant: None,
            status: ExperimentStatus::Active,
            playbook: "p".into(),
            strategy: Strategy::Thompson,
            success: vec![OutcomeResult::Accepted],
            variants: vec![
                v("a", 45.0, false),
                v("b", 45.0, false),
                v("hold", 10.0, true),
            ],
            min_samples: 100,
            update_interval: Duration::parse("15m").unwrap(),
            source: crate::plan::SourceRef {
                file: String::new(),
                line: 1,
                column: 1,
            },
        }
    }

    #[test]
    fn thompson_moves_towards_the_better_arm_and_respects_the_floor() {
        let p = plan();
        let mut s = ArmState::new(&p);
        let t0: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        // Not enough samples yet.
        s.successes = vec![10, 50, 0];
        s.failures = vec![89, 49, 0];
        assert!(!s.maybe_update(&p, t0, 1));
        s.failures = vec![90, 50, 0];
        assert!(s.maybe_update(&p, t0, 1));
        let (a, b, hold) = (s.weights[0], s.weights[1], s.weights[2]);
        assert!(b > a, "{a} vs {b}");
        assert!(a >= FLOOR - 1e-12, "floor: {a}");
        assert!((hold - 0.1).abs() < 1e-9, "holdout keeps its share");
        assert!((a + b + hold - 1.0).abs() < 1e-9);
        // Not again before the update interval.
        s.successes = vec![100, 100, 0];
        assert!(!s.maybe_update(
            &p,
            t0.checked_add(jiff::SignedDuration::from_mins(14)).unwrap(),
            1
        ));
        assert!(s.maybe_update(
            &p,
            t0.checked_add(jiff::SignedDuration::from_mins(15)).unwrap(),
            1
        ));
    }

    #[test]
    fn a_hopeless_arm_keeps_the_floor() {
        let p = plan();
        let mut s = ArmState::new(&p);
        s.successes = vec![0, 1_000, 0];
        s.failures = vec![1_000, 0, 0];
        assert!(s.maybe_update(&p, "2026-11-22T10:00:00Z".parse().unwrap(), 3));
        assert!((s.weights[0] - FLOOR).abs() < 1e-9, "{}", s.weights[0]);
    }
}
