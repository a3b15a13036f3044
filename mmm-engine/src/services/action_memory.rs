//! Action memory: what the engine remembers of the actions it returned, so that an
//! outcome reported later can be tied to its action type and experiment variant, and the
//! per-tenant outcome counts (by playbook, action type and result; never per actor).

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::decision::{Action, ExperimentRef};
use crate::ids::{Id, SharedStr};
use crate::model::ActionType;
use crate::outcome::{OutcomeCount, OutcomeResult};

/// What the engine remembers of an action it returned, for its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionMemo {
    /// One allocation per decision, shared by the actions it returned.
    pub tenant_id: SharedStr,
    /// Shared with the decision's action (and the plan).
    pub playbook_id: SharedStr,
    pub kind: ActionType,
    /// The experiment and variant that shaped it (boxed: most actions have none, and the
    /// memory's entries stay small enough for more of them to share the cache).
    pub experiment: Option<Box<ExperimentRef>>,
}

/// Returned actions (bounded) and outcome counts.
pub(crate) struct ActionMemory {
    recent: Rings,
    counts: DashMap<(String, String, String, OutcomeResult), u64>,
}

impl ActionMemory {
    /// A memory of at most about `capacity` actions.
    pub fn new(capacity: usize) -> Self {
        ActionMemory {
            recent: Rings::new(capacity),
            counts: DashMap::new(),
        }
    }

    /// A memory that remembers no action (outcomes are still counted).
    pub fn off() -> Self {
        ActionMemory {
            recent: Rings {
                per_shard: 0,
                shards: Box::default(),
            },
            counts: DashMap::new(),
        }
    }

    /// Remembers a returned action.
    pub fn remember(&self, action_id: Id, memo: ActionMemo) {
        if let Some(key) = key(&action_id) {
            self.recent.insert(key, memo);
        }
    }

    /// Remembers the actions a decision for `tenant_id` returned.
    pub fn remember_returned(&self, tenant_id: &str, actions: &[Action]) {
        if actions.is_empty() || self.recent.shards.is_empty() {
            return;
        }
        let tenant_id = SharedStr::from(tenant_id);
        for a in actions {
            self.remember(
                a.action_id,
                ActionMemo {
                    tenant_id: tenant_id.clone(),
                    playbook_id: a.playbook.id.clone(),
                    kind: a.kind,
                    experiment: a.experiment.clone().map(Box::new),
                },
            );
        }
    }

    /// What is remembered of an action, if it is still remembered.
    pub fn recall(&self, action_id: &str) -> Option<ActionMemo> {
        self.recent.get(key(action_id)?)
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

/// Most shards of remembered actions; fewer when the capacity is small, so that each
/// shard keeps enough entries for "the newest are kept" to hold for the memory as a whole.
const MAX_SHARDS: usize = 64;

/// Fewest entries per shard before the memory is split further.
const MIN_PER_SHARD: usize = 1_024;

/// Most entries per shard: a recall scans one shard's keys (64 KiB at most), so a larger
/// memory has more shards rather than longer ones.
const MAX_PER_SHARD: usize = 4_096;

/// One shard on its own cache line(s), so that threads locking neighbouring shards do not
/// pass a line back and forth.
#[repr(align(128))]
struct Padded<T>(T);

/// An action id as the memory keys it: the UUID's 128 bits, not its 36 characters, so that
/// an entry is a third smaller and a probe compares two words. Text that is not a UUID was
/// never an action id the engine made, and is remembered as nothing; so is another form of
/// a UUID (upper case, braces, no hyphens), which the engine never writes.
fn key(action_id: &str) -> Option<u128> {
    if action_id.len() != 36 || action_id.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    uuid::Uuid::try_parse(action_id).ok().map(|u| u.as_u128())
}

/// A memo in a cache line of its own: overwriting the oldest memo touches one line.
#[derive(Clone)]
#[repr(align(64))]
struct Slot(ActionMemo);

/// A shard's actions as a ring: the newest `per_shard` are kept, and a new one overwrites
/// the oldest. Keys and memos are kept apart, so that remembering writes where the shard's
/// last insert wrote (a line of keys serves four inserts) instead of a random place in a
/// table of 100,000 entries, and a recall scans 16 bytes an entry.
#[derive(Default)]
struct Ring {
    keys: Vec<u128>,
    memos: Vec<Slot>,
    /// The slot the next insert overwrites, once the ring is full.
    next: usize,
}

/// Recently returned actions, bounded: shards picked by the action id's random bits, each
/// a ring of at most `per_shard` entries under its own lock. Nothing is shared by every
/// insert (no global count or position), so deciding threads touch only the shard of the
/// action they remember.
struct Rings {
    per_shard: usize,
    shards: Box<[Padded<Mutex<Ring>>]>,
}

impl Rings {
    fn new(capacity: usize) -> Self {
        let count = (capacity / MIN_PER_SHARD)
            .clamp(1, MAX_SHARDS)
            .max(capacity.div_ceil(MAX_PER_SHARD));
        Rings {
            per_shard: (capacity / count).max(1),
            shards: (0..count)
                .map(|_| Padded(Mutex::new(Ring::default())))
                .collect(),
        }
    }

    fn shard(&self, key: u128) -> Option<&Mutex<Ring>> {
        if self.shards.is_empty() {
            // A memory that is off.
            return None;
        }
        // A UUIDv7's last 62 bits are random: their low bits pick the shard.
        let i = usize::try_from((key as u64) % self.shards.len() as u64).unwrap_or(0);
        self.shards.get(i).map(|p| &p.0)
    }

    fn insert(&self, key: u128, memo: ActionMemo) {
        let Some(shard) = self.shard(key) else {
            return;
        };
        let mut ring = shard.lock();
        let Ring { keys, memos, next } = &mut *ring;
        if keys.len() < self.per_shard {
            if keys.len() == keys.capacity() {
                // Grown by doubling up to exactly the shard's size, never past it.
                let more = (keys.len() * 2).max(8).min(self.per_shard) - keys.len();
                keys.reserve_exact(more);
                memos.reserve_exact(more);
            }
            keys.push(key);
            memos.push(Slot(memo));
        } else if let (Some(k), Some(m)) = (keys.get_mut(*next), memos.get_mut(*next)) {
            *k = key;
            *m = Slot(memo);
            *next = (*next + 1) % self.per_shard;
        }
    }

    fn get(&self, key: u128) -> Option<ActionMemo> {
        let ring = self.shard(key)?.lock();
        let i = ring.keys.iter().position(|k| *k == key)?;
        ring.memos.get(i).map(|s| s.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_that_is_off_remembers_nothing_and_still_counts() {
        let m = ActionMemory::off();
        let memo = ActionMemo {
            tenant_id: "t".into(),
            playbook_id: "p".into(),
            kind: ActionType::Mirror,
            experiment: None,
        };
        let id = crate::ids::new_id();
        m.remember(id, memo);
        assert!(m.recall(&id).is_none());
        m.count("t", "p", "mirror", OutcomeResult::Accepted);
        assert_eq!(m.counts_for("t").len(), 1);
    }

    #[test]
    fn the_memory_is_bounded_and_keeps_the_newest() {
        let m = ActionMemory::new(4);
        let memo = ActionMemo {
            tenant_id: SharedStr::from("t"),
            playbook_id: "p".into(),
            kind: ActionType::Mirror,
            experiment: None,
        };
        let ids: Vec<Id> = (0..10).map(|_| crate::ids::new_id()).collect();
        for (n, id) in ids.iter().enumerate() {
            m.remember(*id, memo.clone());
            // Always exactly the newest four (or all, before there are four).
            for (i, old) in ids[..=n].iter().enumerate() {
                assert_eq!(m.recall(old).is_some(), i + 4 > n, "after {n}: {i}");
            }
        }
    }

    #[test]
    fn a_ring_grows_to_its_size_and_no_further() {
        let g = Rings::new(3_000);
        assert_eq!((g.shards.len(), g.per_shard), (2, 1_500));
        for _ in 0..10_000 {
            g.insert(
                key(&crate::ids::new_id()).unwrap(),
                ActionMemo {
                    tenant_id: "t".into(),
                    playbook_id: "p".into(),
                    kind: ActionType::Mirror,
                    experiment: None,
                },
            );
        }
        for s in g.shards.iter() {
            let ring = s.0.lock();
            assert_eq!((ring.keys.len(), ring.memos.len()), (1_500, 1_500));
            assert!(ring.keys.capacity() == 1_500 && ring.memos.capacity() == 1_500);
        }
    }

    #[test]
    fn a_large_memory_has_more_shards_so_that_a_recall_scans_a_bounded_shard() {
        for capacity in [1, 1_023, 100_000, 262_144, 1_000_000, 50_000_000] {
            let g = Rings::new(capacity);
            assert!(g.per_shard <= MAX_PER_SHARD, "{capacity}");
            assert!(
                g.per_shard * g.shards.len() <= capacity.max(1),
                "{capacity}"
            );
            assert!(
                g.per_shard * g.shards.len() * 100 >= capacity * 99,
                "{capacity}"
            );
        }
        assert_eq!(Rings::new(100_000).shards.len(), MAX_SHARDS);
    }

    #[test]
    fn a_large_memory_keeps_about_its_capacity_over_its_shards() {
        let m = ActionMemory::new(100_000);
        assert_eq!(m.recent.shards.len(), MAX_SHARDS);
        let memo = ActionMemo {
            tenant_id: SharedStr::from("t"),
            playbook_id: "p".into(),
            kind: ActionType::Mirror,
            experiment: None,
        };
        let ids: Vec<Id> = (0..300_000).map(|_| crate::ids::new_id()).collect();
        for id in &ids {
            m.remember(*id, memo.clone());
        }
        let kept: usize = m.recent.shards.iter().map(|s| s.0.lock().keys.len()).sum();
        // Each shard keeps its newest 1,562.
        assert_eq!(kept, 64 * 1_562);
        let (first, last) = (ids.first().unwrap(), ids.last().unwrap());
        assert!(m.recall(last).is_some() && m.recall(first).is_none());
    }

    #[test]
    fn only_the_form_the_engine_writes_recalls_an_action() {
        let m = ActionMemory::new(16);
        let memo = ActionMemo {
            tenant_id: SharedStr::from("t"),
            playbook_id: "p".into(),
            kind: ActionType::Mirror,
            experiment: None,
        };
        let id = crate::ids::new_id();
        m.remember(id, memo.clone());
        assert_eq!(m.recall(&id), Some(memo));
        let upper = id.to_ascii_uppercase();
        let simple = id.replace('-', "");
        let braced = format!("{{{id}}}");
        let urn = format!("urn:uuid:{id}");
        for other in [&upper, &simple, &braced, &urn, "", "not an id"] {
            assert!(m.recall(other).is_none(), "{other}");
        }
    }

    #[test]
    fn action_ids_spread_over_every_shard() {
        let g = Rings::new(100_000);
        let mut used = vec![0usize; g.shards.len()];
        for _ in 0..6_400 {
            let id = crate::ids::new_id();
            let shard = g.shard(key(&id).unwrap()).unwrap() as *const _;
            let i = g
                .shards
                .iter()
                .position(|p| std::ptr::eq(&p.0, shard))
                .unwrap();
            used[i] += 1;
        }
        // 100 expected per shard.
        assert!(used.iter().all(|n| (40..=200).contains(n)), "{used:?}");
    }
}
