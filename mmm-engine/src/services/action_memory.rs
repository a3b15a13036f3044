//! Action memory: what the engine remembers of the actions it returned, so that an
//! outcome reported later can be tied to its action type and experiment variant, and the
//! per-tenant outcome counts (by playbook, action type and result; never per actor).

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::decision::{Action, ExperimentRef};
use crate::ids::{Id, SharedStr};
use crate::model::ActionType;
use crate::outcome::{OutcomeCount, OutcomeResult};

/// What the engine remembers of an action it returned, for its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionMemo {
    pub tenant_id: String,
    /// Shared with the decision's action (and the plan).
    pub playbook_id: SharedStr,
    pub kind: ActionType,
    /// The experiment and variant that shaped it.
    pub experiment: Option<ExperimentRef>,
}

/// Returned actions (bounded) and outcome counts.
pub(crate) struct ActionMemory {
    recent: Generations,
    counts: DashMap<(String, String, String, OutcomeResult), u64>,
}

impl ActionMemory {
    /// A memory of at most about `capacity` actions.
    pub fn new(capacity: usize) -> Self {
        ActionMemory {
            recent: Generations::new(capacity),
            counts: DashMap::new(),
        }
    }

    /// Remembers a returned action.
    pub fn remember(&self, action_id: Id, memo: ActionMemo) {
        self.recent.insert(action_id, memo);
    }

    /// Remembers the actions a decision for `tenant_id` returned.
    pub fn remember_returned(&self, tenant_id: &str, actions: &[Action]) {
        for a in actions {
            self.remember(
                a.action_id,
                ActionMemo {
                    tenant_id: tenant_id.to_owned(),
                    playbook_id: a.playbook.id.clone(),
                    kind: a.kind,
                    experiment: a.experiment.clone(),
                },
            );
        }
    }

    /// What is remembered of an action, if it is still remembered.
    pub fn recall(&self, action_id: &str) -> Option<ActionMemo> {
        self.recent.get(action_id)
    }

    /// Counts one outcome (`kind` is `unknown` when the action is no longer remembered).
    pub fn count(&self, tenant: &str, playbook: &str, kind: &str, result: OutcomeResult) {
        *self
            .counts
            .entry((
                tenant.to_owned(),
                playbook.to_owned(),
                kind.to_owned(),
                result,
            ))
            .or_insert(0) += 1;
    }

    /// The counts of a tenant, ordered by playbook, action type and result.
    pub fn counts_for(&self, tenant: &str) -> Vec<OutcomeCount> {
        let mut out: Vec<OutcomeCount> = self
            .counts
            .iter()
            .filter(|e| e.key().0 == tenant)
            .map(|e| OutcomeCount {
                playbook_id: e.key().1.clone(),
                action_type: e.key().2.clone(),
                result: e.key().3,
                count: *e.value(),
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.playbook_id, &a.action_type, a.result).cmp(&(
                &b.playbook_id,
                &b.action_type,
                b.result,
            ))
        });
        out
    }
}

/// Recently returned actions, bounded: two generations of at most `half` entries each,
/// each a sharded map, so deciding threads do not queue on one lock.
struct Generations {
    half: usize,
    // Keyed by the inline id (no allocation per entry); looked up by `&str`.
    generations: [DashMap<Id, ActionMemo>; 2],
    current: AtomicUsize,
    count: AtomicUsize,
    rotating: Mutex<()>,
}

impl Generations {
    fn new(capacity: usize) -> Self {
        Generations {
            half: (capacity / 2).max(1),
            generations: [DashMap::new(), DashMap::new()],
            current: AtomicUsize::new(0),
            count: AtomicUsize::new(0),
            rotating: Mutex::new(()),
        }
    }

    fn insert(&self, action_id: Id, memo: ActionMemo) {
        let current = self.current.load(Ordering::Acquire) & 1;
        if let Some(map) = self.generations.get(current) {
            map.insert(action_id, memo);
        }
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 >= self.half {
            // One thread rotates; the others carry on. The older generation is emptied
            // and becomes the current one.
            if let Some(_guard) = self.rotating.try_lock() {
                if self.count.load(Ordering::Acquire) >= self.half {
                    let next = (self.current.load(Ordering::Acquire) + 1) & 1;
                    if let Some(old) = self.generations.get(next) {
                        old.clear();
                    }
                    self.current.store(next, Ordering::Release);
                    self.count.store(0, Ordering::Release);
                }
            }
        }
    }

    fn get(&self, action_id: &str) -> Option<ActionMemo> {
        self.generations
            .iter()
            .find_map(|g| g.get(action_id).map(|m| m.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_is_bounded_and_keeps_the_newest() {
        let m = ActionMemory::new(4);
        let memo = ActionMemo {
            tenant_id: "t".into(),
            playbook_id: "p".into(),
            kind: ActionType::Mirror,
            experiment: None,
        };
        let ids: Vec<Id> = (0..10).map(|_| crate::ids::new_id()).collect();
        for id in &ids {
            m.remember(*id, memo.clone());
        }
        assert!(m.recall(&ids[9]).is_some() && m.recall(&ids[8]).is_some());
        assert!(m.recall(&ids[0]).is_none());
    }
}
