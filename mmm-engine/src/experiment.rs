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

/// GrowthBook's `hash`: the position of `value` in [0, 1) for `seed`, or `None` for a
/// version other than 1 or 2.
///
/// - v2 (variant assignment, SPEC §3): `(fnv1a32(str(fnv1a32(seed + value))) % 10000) /
///   10000`, four decimals.
/// - v1 (namespaces): `(fnv1a32(value + seed) % 1000) / 1000`, three decimals.
///
/// FNV-1a runs over UTF-8 bytes; GrowthBook's SDKs xor UTF-16 code units, which agrees
/// for ASCII only (see `docs/experiments.md`).
///
/// ```
/// use mmm_engine::experiment::hash;
/// assert_eq!(hash("acme:large-pr-copy", "dev-42", 2), Some(0.6287));
/// assert_eq!(hash("__pr-copy", "dev-42", 1), Some(0.785));
/// assert_eq!(hash("seed", "dev-42", 3), None);
/// ```
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        2 => Some(hash_v2(seed, value)),
        1 => Some(f64::from(fnv1a32(&format!("{value}{seed}")) % 1_000) / 1_000.0),
        _ => None,
    }
}

/// GrowthBook's hash v2 (SPEC §3's assignment hash): a number in [0, 1) with four
/// decimals. The same as [`hash`]`(seed, value, 2)`.
///
/// ```
/// assert_eq!(mmm_engine::experiment::hash_v2("acme:large-pr-copy", "dev-42"), 0.6287);
/// ```
pub fn hash_v2(seed: &str, value: &str) -> f64 {
    let inner = fnv1a32(&format!("{seed}{value}"));
    f64::from(fnv1a32(&inner.to_string()) % 10_000) / 10_000.0
}

/// GrowthBook's `getBucketRanges`: the variants own consecutive ranges of [0, 1) in
/// order, each as wide as its weight normalised by the sum of the weights; `coverage`
/// (clamped to 0..=1) cuts each range to `coverage ×` its width, keeping its start.
///
/// One difference from GrowthBook, as SPEC §3 says: weights are normalised by their sum,
/// where GrowthBook falls back to equal weights when they do not sum to 1 (±0.01).
/// Negative and NaN weights count as 0; when the weights sum to 0 or to infinity, every
/// range is empty: nobody is assigned. (Loading refuses all of these; Thompson's weights
/// are always positive.)
///
/// ```
/// use mmm_engine::experiment::get_bucket_ranges;
/// assert_eq!(get_bucket_ranges(&[1.0, 1.0], 0.5), [(0.0, 0.25), (0.5, 0.75)]);
/// assert_eq!(get_bucket_ranges(&[50.0, 0.0, 50.0], 1.0), [(0.0, 0.5), (0.5, 0.5), (0.5, 1.0)]);
/// ```
pub fn get_bucket_ranges(weights: &[f64], coverage: f64) -> Vec<(f64, f64)> {
    // `clamp` would keep a NaN; a NaN coverage covers nobody.
    let coverage = if coverage >= 1.0 {
        1.0
    } else if coverage > 0.0 {
        coverage
    } else {
        0.0
    };
    let total: f64 = weights.iter().map(|w| w.max(0.0)).sum();
    let usable = total.is_finite() && total > 0.0;
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            let share = if usable { w.max(0.0) / total } else { 0.0 };
            let start = cumulative;
            cumulative += share;
            (start, start + coverage * share)
        })
        .collect()
}

/// GrowthBook's `chooseVariation`: the index of the first range holding `n`
/// (`start ≤ n < end`), or `None` when `n` falls in no range (the actor is not in the
/// experiment).
///
/// ```
/// use mmm_engine::experiment::choose_variation;
/// assert_eq!(choose_variation(0.6, &[(0.0, 0.25), (0.5, 0.75)]), Some(1));
/// assert_eq!(choose_variation(0.4, &[(0.0, 0.25), (0.5, 0.75)]), None);
/// ```
pub fn choose_variation(n: f64, ranges: &[(f64, f64)]) -> Option<usize> {
    ranges
        .iter()
        .position(|(start, end)| n >= *start && n < *end)
}

/// A namespace: experiments that take disjoint ranges of one namespace never share an
/// actor (GrowthBook's namespaces).
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// The namespace's id, shared by the experiments that exclude each other.
    pub id: String,
    /// The start of this experiment's range (inclusive).
    pub start: f64,
    /// The end of this experiment's range (exclusive).
    pub end: f64,
}

/// GrowthBook's `inNamespace`: whether `actor_id` falls in the namespace's range, by hash
/// v1 of the actor with seed `"__" + id` (`start ≤ (fnv1a32(actor_id + "__" + id) % 1000) /
/// 1000 < end`). The position depends on the actor and the namespace id only, so every
/// experiment of the namespace sees the same position.
///
/// ```
/// use mmm_engine::experiment::{in_namespace, Namespace};
/// let ns = |start, end| Namespace { id: "namespace1".into(), start, end };
/// assert!(!in_namespace("1", &ns(0.0, 0.4)));
/// assert!(in_namespace("1", &ns(0.4, 1.0)));
/// ```
pub fn in_namespace(actor_id: &str, namespace: &Namespace) -> bool {
    hash(&format!("__{}", namespace.id), actor_id, 1)
        .is_some_and(|n| n >= namespace.start && n < namespace.end)
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
    /// The share of each variant's range that is in the experiment (0..=1; 1 when not
    /// written).
    pub coverage: f64,
    /// The namespace range the actor must be in, if any.
    pub namespace: Option<Namespace>,
    /// Outcomes each arm needs before Thompson re-weights.
    pub min_samples: u64,
    /// Weights are recomputed at most this often.
    pub update_interval: Duration,
    /// Where it was defined.
    pub source: crate::plan::SourceRef,
}

impl ExperimentPlan {
    /// The variant `actor_id` of `tenant_id` is assigned under `weights` (one per variant,
    /// in order: the written ones, or Thompson's current ones), or `None` when the actor is
    /// not in the experiment: outside its namespace range, or outside every variant's
    /// covered range. The experiment's status is the caller's to check.
    ///
    /// This is GrowthBook's order: [`in_namespace`], then [`hash`] v2 with seed
    /// `"<tenant_id>:<experiment id>"`, [`get_bucket_ranges`] and [`choose_variation`].
    pub fn variant_for(
        &self,
        tenant_id: &str,
        actor_id: &str,
        weights: &[f64],
    ) -> Option<&Variant> {
        if let Some(namespace) = &self.namespace {
            if !in_namespace(actor_id, namespace) {
                return None;
            }
        }
        let n = hash_v2(&format!("{tenant_id}:{}", self.id), actor_id);
        let ranges = get_bucket_ranges(weights, self.coverage);
        self.variants.get(choose_variation(n, &ranges)?)
    }
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
    /// interval has passed. The arms are the variants that are not holdouts and whose
    /// written weight is above 0. Holdouts keep their share; the arms share the rest by
    /// their probability of being best, estimated from Beta(successes + 1, failures + 1)
    /// draws, with no arm below [`FLOOR`] of the total; variants written with weight 0
    /// stay at 0.
    pub fn maybe_update(&mut self, plan: &ExperimentPlan, now: Timestamp, seed: u64) -> bool {
        if plan.strategy != Strategy::Thompson {
            return false;
        }
        // A variant written with weight 0 is switched off: it is never assigned, so it
        // would never gather samples; it is not an arm, gets no floor and stays at 0.
        let arms: Vec<usize> = (0..plan.variants.len())
            .filter(|i| {
                plan.variants
                    .get(*i)
                    .is_some_and(|v| !v.holdout && v.weight > 0.0)
            })
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
                choose_variation(
                    case["n"].as_f64().unwrap(),
                    &get_bucket_ranges(&weights, 1.0)
                ),
                Some(case["variant_index"].as_u64().unwrap() as usize),
                "{case}"
            );
        }
    }

    #[test]
    fn bucket_ranges_normalise_by_the_sum_and_cover_from_the_start() {
        assert_eq!(
            get_bucket_ranges(&[50.0, 40.0, 10.0], 1.0),
            get_bucket_ranges(&[5.0, 4.0, 1.0], 1.0)
        );
        assert_eq!(get_bucket_ranges(&[3.0], 0.25), [(0.0, 0.25)]);
        // Nothing to share: nobody is assigned, and no panic or NaN range.
        for weights in [
            &[0.0, 0.0][..],
            &[f64::NAN, -1.0],
            &[f64::INFINITY, 1.0],
            &[],
        ] {
            let ranges = get_bucket_ranges(weights, 1.0);
            assert!(
                ranges.iter().all(|(s, e)| s == e),
                "{weights:?} -> {ranges:?}"
            );
            assert_eq!(choose_variation(0.0, &ranges), None);
        }
        // Negative and NaN weights count as 0.
        assert_eq!(
            get_bucket_ranges(&[f64::NAN, -2.0, 1.0], 1.0),
            [(0.0, 0.0), (0.0, 0.0), (0.0, 1.0)]
        );
        // A NaN coverage covers nobody.
        assert_eq!(
            choose_variation(0.1, &get_bucket_ranges(&[1.0], f64::NAN)),
            None
        );
    }

    #[test]
    fn hash_v1_and_v2_are_growthbooks_and_other_versions_are_none() {
        assert_eq!(hash("seed", "a", 2), Some(0.0505));
        assert_eq!(hash("", "a", 1), Some(0.22));
        assert_eq!(hash("abc", "def", 99), None);
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
            coverage: 1.0,
            namespace: None,
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

    #[test]
    fn a_zero_weight_variant_is_not_an_arm_and_stays_off_under_thompson() {
        let mut p = plan();
        p.variants[2].holdout = false;
        p.variants[2].weight = 0.0;
        let mut s = ArmState::new(&p);
        // The switched-off variant has no outcomes; the two live arms are enough.
        s.successes = vec![10, 90, 0];
        s.failures = vec![90, 10, 0];
        assert!(s.maybe_update(&p, "2026-11-22T10:00:00Z".parse().unwrap(), 5));
        assert_eq!(s.weights[2], 0.0);
        assert!(s.weights[0] >= FLOOR - 1e-12 && s.weights[1] > s.weights[0]);
        let ranges = get_bucket_ranges(&s.weights, 1.0);
        assert_eq!(ranges[2].0, ranges[2].1, "an empty range: {ranges:?}");
    }
}
