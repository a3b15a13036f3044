//! Candidate lookup. An index from (tenant, signal kind) to the live plans whose
//! triggers match, built once per playbook set, so that a decision's cost grows with the
//! number of candidates rather than the number of playbooks loaded.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::condition::{Condition, QuickCondition};
use crate::ids::SharedStr;
use crate::plan::Plan;

/// A plan that may fire for a kind, with the trigger that matched.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub plan: Arc<Plan>,
    pub trigger: SharedStr,
    /// The plan's condition in its quick form, kept here, beside the other candidates of
    /// the kind, rather than behind the plan's pointer.
    pub quick: Option<QuickCondition>,
}

/// Evaluation order: priority (desc), then id. The same order actions are returned in.
fn order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.plan
        .priority
        .cmp(&a.plan.priority)
        .then_with(|| a.plan.id.cmp(&b.plan.id))
}

/// The index for one tenant's live set.
#[derive(Debug, Default)]
pub(crate) struct KindIndex {
    /// Per exact kind that some trigger names: every candidate, wildcards merged, ordered.
    exact: HashMap<String, Arc<[Candidate]>>,
    /// `pr.*` → candidates, keyed by the prefix without `.*`.
    prefixes: HashMap<String, Vec<Candidate>>,
    star: Vec<Candidate>,
}

impl KindIndex {
    pub fn build(live: &[Arc<Plan>]) -> KindIndex {
        let mut exact: HashMap<String, Vec<Candidate>> = HashMap::new();
        let mut prefixes: HashMap<String, Vec<Candidate>> = HashMap::new();
        let mut star = Vec::new();
        for plan in live {
            for trigger in &plan.triggers {
                let c = Candidate {
                    plan: Arc::clone(plan),
                    trigger: SharedStr::from(trigger.as_str()),
                    quick: plan.condition.as_ref().and_then(Condition::quick),
                };
                if trigger == "*" {
                    star.push(c);
                } else if let Some(prefix) = trigger.strip_suffix(".*") {
                    prefixes.entry(prefix.to_owned()).or_default().push(c);
                } else {
                    exact.entry(trigger.clone()).or_default().push(c);
                }
            }
        }
        let mut index = KindIndex {
            exact: HashMap::new(),
            prefixes,
            star,
        };
        let merged: Vec<(String, Arc<[Candidate]>)> = exact
            .into_iter()
            .map(|(kind, direct)| {
                let list = index.merge(&kind, direct);
                (kind, Arc::from(list))
            })
            .collect();
        index.exact = merged.into_iter().collect();
        index
    }

    /// Adds wildcard matches to `direct`, drops plans matched twice (keeping the first
    /// trigger written), and orders the result.
    fn merge(&self, kind: &str, mut list: Vec<Candidate>) -> Vec<Candidate> {
        let mut end = 0;
        while let Some(dot) = kind.get(end..).and_then(|s| s.find('.')) {
            end += dot;
            if let Some(prefix) = kind.get(..end) {
                if let Some(found) = self.prefixes.get(prefix) {
                    list.extend(found.iter().cloned());
                }
            }
            end += 1;
        }
        list.extend(self.star.iter().cloned());
        // Keep, per plan, the trigger written first in the playbook.
        let position = |c: &Candidate| {
            c.plan
                .triggers
                .iter()
                .position(|t| **t == *c.trigger)
                .unwrap_or(usize::MAX)
        };
        list.sort_by(|a, b| order(a, b).then_with(|| position(a).cmp(&position(b))));
        list.dedup_by(|a, b| Arc::ptr_eq(&a.plan, &b.plan));
        list
    }

    pub fn lookup(&self, kind: &str) -> Cow<'_, [Candidate]> {
        match self.exact.get(kind) {
            Some(list) => Cow::Borrowed(list),
            None => Cow::Owned(self.merge(kind, Vec::new())),
        }
    }
}
