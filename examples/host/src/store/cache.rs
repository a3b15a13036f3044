//! What a decision reads from the store, kept in memory by a store that is the only
//! writer of its database (SQLite: one process owns the file). `POST /decide` reads the
//! actor's preferences and the tenant's policy on every call; here an actor that has no
//! stored preferences costs no query at all (the keys with preferences are known), and
//! the documents read are remembered until they are written. Every write goes through the
//! store, which forgets the document after its commit, so a read never sees a document
//! older than the last write that returned.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{DeliveryTarget, Versioned};

/// Most documents remembered (per kind); when full, the memory is emptied.
pub const CACHE_MAX: usize = 10_000;

/// The cache of one store.
#[derive(Debug, Default)]
pub struct ContextCache {
    /// (tenant, actor) pairs that have stored preferences; `None` until loaded.
    preference_keys: Mutex<Option<HashSet<(String, String)>>>,
    preferences: Mutex<HashMap<(String, String), Option<Versioned>>>,
    policies: Mutex<HashMap<String, Option<Versioned>>>,
    /// Delivery targets by tenant (an empty list: none).
    targets: Mutex<HashMap<String, Vec<DeliveryTarget>>>,
    /// Bumped by every write: a read that raced a write is not remembered.
    generation: AtomicU64,
    /// Reads answered without a query, and reads that asked the database.
    preference_hits: AtomicU64,
    preference_misses: AtomicU64,
    policy_hits: AtomicU64,
    policy_misses: AtomicU64,
}

/// How often the cache answered, since the store opened (`mmm_cache_requests_total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Preference reads answered from memory.
    pub preference_hits: u64,
    /// Preference reads that asked the database.
    pub preference_misses: u64,
    /// Tenant-policy reads answered from memory.
    pub policy_hits: u64,
    /// Tenant-policy reads that asked the database.
    pub policy_misses: u64,
}

/// What the cache knows of a key.
#[derive(Debug)]
pub enum Cached<T = Option<Versioned>> {
    /// The answer, without a query.
    Hit(T),
    /// Ask the database; remember the answer with [`ContextCache::remember_preferences`]
    /// (or `_policy`) passing this generation.
    Miss(u64),
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= CACHE_MAX {
        map.clear();
    }
    map.insert(key, value);
}

impl ContextCache {
    /// Sets the keys that have stored preferences (read at start).
    pub fn load_preference_keys(&self, keys: HashSet<(String, String)>) {
        *self.preference_keys.lock() = Some(keys);
    }

    /// How often the cache answered so far.
    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            preference_hits: self.preference_hits.load(Ordering::Relaxed),
            preference_misses: self.preference_misses.load(Ordering::Relaxed),
            policy_hits: self.policy_hits.load(Ordering::Relaxed),
            policy_misses: self.policy_misses.load(Ordering::Relaxed),
        }
    }

    /// An actor's preferences, when known.
    pub fn preferences(&self, tenant: &str, actor: &str) -> Cached {
        let answer = self.lookup_preferences(tenant, actor);
        let counter = match answer {
            Cached::Hit(_) => &self.preference_hits,
            Cached::Miss(_) => &self.preference_misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    fn lookup_preferences(&self, tenant: &str, actor: &str) -> Cached {
        let generation = self.generation.load(Ordering::Acquire);
        let key = (tenant.to_owned(), actor.to_owned());
        if let Some(keys) = &*self.preference_keys.lock() {
            if !keys.contains(&key) {
                return Cached::Hit(None);
            }
        }
        match self.preferences.lock().get(&key) {
            Some(v) => Cached::Hit(v.clone()),
            None => Cached::Miss(generation),
        }
    }

    /// Remembers what the database answered, unless a write happened since `generation`.
    pub fn remember_preferences(
        &self,
        tenant: &str,
        actor: &str,
        value: &Option<Versioned>,
        generation: u64,
    ) {
        let mut map = self.preferences.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            bounded_insert(
                &mut map,
                (tenant.to_owned(), actor.to_owned()),
                value.clone(),
            );
        }
    }

    /// After a committed write of an actor's preferences.
    pub fn wrote_preferences(&self, tenant: &str, actor: &str) {
        let key = (tenant.to_owned(), actor.to_owned());
        let mut map = self.preferences.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.remove(&key);
        if let Some(keys) = &mut *self.preference_keys.lock() {
            keys.insert(key);
        }
    }

    /// A tenant's policy, when known.
    pub fn policy(&self, tenant: &str) -> Cached {
        let generation = self.generation.load(Ordering::Acquire);
        let answer = match self.policies.lock().get(tenant) {
            Some(v) => Cached::Hit(v.clone()),
            None => Cached::Miss(generation),
        };
        let counter = match answer {
            Cached::Hit(_) => &self.policy_hits,
            Cached::Miss(_) => &self.policy_misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    /// Remembers what the database answered, unless a write happened since `generation`.
    pub fn remember_policy(&self, tenant: &str, value: &Option<Versioned>, generation: u64) {
        let mut map = self.policies.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            bounded_insert(&mut map, tenant.to_owned(), value.clone());
        }
    }

    /// After a committed write of a tenant's policy.
    pub fn wrote_policy(&self, tenant: &str) {
        let mut map = self.policies.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.remove(tenant);
    }
}

impl ContextCache {
    /// A tenant's delivery targets, when known.
    pub fn targets(&self, tenant: &str) -> Cached<Vec<DeliveryTarget>> {
        let generation = self.generation.load(Ordering::Acquire);
        match self.targets.lock().get(tenant) {
            Some(v) => Cached::Hit(v.clone()),
            None => Cached::Miss(generation),
        }
    }

    /// Remembers what the database answered, unless a write happened since `generation`.
    pub fn remember_targets(&self, tenant: &str, targets: &[DeliveryTarget], generation: u64) {
        let mut map = self.targets.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            bounded_insert(&mut map, tenant.to_owned(), targets.to_vec());
        }
    }

    /// After a committed write of a tenant's delivery targets.
    pub fn wrote_targets(&self, tenant: &str) {
        let mut map = self.targets.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(revision: i64) -> Option<Versioned> {
        Some(Versioned {
            value: serde_json::json!({"r": revision}),
            revision,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        })
    }

    #[test]
    fn unknown_keys_cost_no_query_and_writes_are_never_shadowed() {
        let cache = ContextCache::default();
        // Before the keys are loaded every read asks the database.
        assert!(matches!(cache.preferences("t", "a"), Cached::Miss(_)));
        cache.load_preference_keys(HashSet::from([("t".to_owned(), "a".to_owned())]));
        assert!(matches!(cache.preferences("t", "b"), Cached::Hit(None)));
        let Cached::Miss(g) = cache.preferences("t", "a") else {
            panic!("a stored key is read from the database")
        };
        cache.remember_preferences("t", "a", &doc(1), g);
        assert!(matches!(cache.preferences("t", "a"), Cached::Hit(Some(v)) if v.revision == 1));
        // A write: forgotten, and a read that raced it is not remembered.
        let Cached::Hit(_) = cache.preferences("t", "a") else {
            panic!()
        };
        cache.wrote_preferences("t", "a");
        cache.remember_preferences("t", "a", &doc(1), g);
        assert!(matches!(cache.preferences("t", "a"), Cached::Miss(_)));
        // A new actor's first write makes it known.
        cache.wrote_preferences("t", "b");
        assert!(matches!(cache.preferences("t", "b"), Cached::Miss(_)));

        let Cached::Miss(g) = cache.policy("t") else {
            panic!()
        };
        cache.remember_policy("t", &None, g);
        assert!(matches!(cache.policy("t"), Cached::Hit(None)));
        cache.wrote_policy("t");
        assert!(matches!(cache.policy("t"), Cached::Miss(_)));
        cache.remember_policy("t", &doc(2), g);
        assert!(matches!(cache.policy("t"), Cached::Miss(_)));

        let target = DeliveryTarget {
            surface: "ide".to_owned(),
            url: "https://hooks.example/ide".to_owned(),
            secret: "s".to_owned(),
        };
        let Cached::Miss(g) = cache.targets("t") else {
            panic!()
        };
        cache.remember_targets("t", std::slice::from_ref(&target), g);
        assert!(matches!(cache.targets("t"), Cached::Hit(v) if v == [target.clone()]));
        cache.wrote_targets("t");
        assert!(matches!(cache.targets("t"), Cached::Miss(_)));
        cache.remember_targets("t", &[target], g);
        assert!(matches!(cache.targets("t"), Cached::Miss(_)));
        // Every read above, counted once as a hit or a miss.
        assert_eq!(
            cache.counts(),
            CacheCounts {
                preference_hits: 3,
                preference_misses: 4,
                policy_hits: 1,
                policy_misses: 3,
            }
        );
    }
}
