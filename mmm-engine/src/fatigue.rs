//! Fatigue. Cooldown and `max` per window count firings of a playbook for an
//! actor; the actor budget counts actions across playbooks. Check and record happen in
//! one atomic step per actor, so two concurrent decisions never both pass a limit of one.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;
use parking_lot::Mutex;

use crate::duration::Duration;

/// One atomic fatigue question: may this playbook return `actions` actions to this actor
/// now, and if so, record that it did.
#[derive(Debug, Clone)]
pub struct FatigueRequest<'a> {
    /// Tenant.
    pub tenant_id: &'a str,
    /// Actor.
    pub actor_id: &'a str,
    /// Playbook id.
    pub playbook_id: &'a str,
    /// The decision's `now`.
    pub now: Timestamp,
    /// Actions the playbook wants to return (≥ 1).
    pub actions: u32,
    /// Minimum time since the playbook's last firing for this actor.
    pub cooldown: Option<Duration>,
    /// At most this many firings per window.
    pub max: Option<(u32, Duration)>,
    /// Actor budget: at most this many actions per window across playbooks.
    pub budget: Option<(u32, Duration)>,
    /// Critical playbooks are not limited by the budget (their actions still count).
    pub critical: bool,
}

/// The answer to a [`FatigueRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatigueVerdict {
    /// Allowed (and recorded) for this many actions (≤ requested; fewer when the budget
    /// has less room).
    Allowed(u32),
    /// The playbook fired for this actor too recently.
    Cooldown,
    /// The playbook already fired `max` times in the window.
    Max,
    /// The actor's budget is spent.
    Budget,
}

impl FatigueRequest<'_> {
    /// The request as JSON, for fatigue stores written in another language:
    /// `{tenant_id, actor_id, playbook_id, now, actions, cooldown_seconds, max, budget,
    /// critical}` with `max` and `budget` as `{count, window_seconds}` or null.
    pub fn to_json(&self) -> serde_json::Value {
        let limit = |l: Option<(u32, Duration)>| {
            l.map(|(n, w)| serde_json::json!({"count": n, "window_seconds": w.as_secs()}))
        };
        serde_json::json!({
            "tenant_id": self.tenant_id, "actor_id": self.actor_id, "playbook_id": self.playbook_id,
            "now": self.now.to_string(), "actions": self.actions,
            "cooldown_seconds": self.cooldown.map(Duration::as_secs),
            "max": limit(self.max), "budget": limit(self.budget), "critical": self.critical,
        })
    }
}

impl FatigueVerdict {
    /// Reads `{"verdict": "allowed", "actions": n}` or `{"verdict": "cooldown" | "max" |
    /// "budget"}`, the answer of a fatigue store written in another language; an allowance
    /// never exceeds `requested` (and is `requested` when it does not say).
    ///
    /// # Errors
    /// [`FatigueError::NotAVerdict`] when the answer is not a verdict.
    pub fn from_json(
        answer: &serde_json::Value,
        requested: u32,
    ) -> Result<FatigueVerdict, FatigueError> {
        use serde_json::Value;
        match answer.get("verdict").and_then(Value::as_str) {
            Some("allowed") => Ok(FatigueVerdict::Allowed(
                answer
                    .get("actions")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(requested)
                    .min(requested),
            )),
            Some("cooldown") => Ok(FatigueVerdict::Cooldown),
            Some("max") => Ok(FatigueVerdict::Max),
            Some("budget") => Ok(FatigueVerdict::Budget),
            _ => Err(FatigueError::NotAVerdict {
                answer: answer.to_string(),
            }),
        }
    }
}

/// The fatigue store could not give a verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FatigueError {
    /// The store could not answer (a remote store down, a port that raised): its message.
    #[error("fatigue store unavailable: {0}")]
    Unavailable(String),
    /// The in-memory store tracks as many actors as its cap allows, each one still inside
    /// a limit's window, so it cannot take another without forgetting a live entry.
    #[error("the in-memory fatigue store tracks {max_actors} actors, every one inside a limit's window; raise its cap (`fatigue_max_actors`)")]
    Full {
        /// The cap (`fatigue_max_actors`).
        max_actors: usize,
    },
    /// The store answered with something that is not a verdict.
    #[error("fatigue store answered `{answer}`, not a verdict")]
    NotAVerdict {
        /// The answer, as JSON.
        answer: String,
    },
}

impl FatigueError {
    /// The serialisable form: `UNAVAILABLE` for each (the store cannot give a verdict
    /// now: it is down, full of live entries, or answered nonsense).
    pub fn info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo::new(crate::codes::UNAVAILABLE, self.to_string())
    }
}

/// The fatigue port: an atomic check-and-record per actor.
pub trait FatigueStore: Send + Sync {
    /// Checks the limits and, when allowed, records the firing, atomically per actor.
    ///
    /// # Errors
    /// [`FatigueError`] when the store cannot answer.
    fn check_and_record(
        &self,
        request: &FatigueRequest<'_>,
    ) -> Result<FatigueVerdict, FatigueError>;

    /// Records a firing that happened elsewhere (history for tests and simulations).
    ///
    /// # Errors
    /// [`FatigueError`] when the store cannot record.
    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError>;
}

/// Firings of one playbook for one actor, and how long they matter.
#[derive(Debug)]
struct Firings {
    /// Firing times (ms), oldest first.
    times: VecDeque<i64>,
    /// The longest window they serve (cooldown or `max` window), in ms.
    keep_ms: i64,
    /// At most this many are kept (the `max` count, with room for history out of order).
    cap: usize,
}

/// What is kept for one actor: only what a limit needs.
#[derive(Debug, Default)]
struct ActorState {
    /// Per playbook with a cooldown or a `max`.
    firings: HashMap<Box<str>, Firings>,
    /// (time ms, actions) counted against the actor budget, oldest first.
    actions: VecDeque<(i64, u32)>,
    /// The budget window they serve, in ms.
    budget_keep_ms: i64,
    /// At most this many budget entries are kept.
    budget_cap: usize,
}

/// How long history recorded without a request's limits (`record`) is kept.
const HISTORY_RETENTION_MS: i64 = 30 * 86_400_000;
/// Entries kept beyond a limit's count, for history recorded out of order.
const SLACK: usize = 64;

impl Firings {
    /// Drops the firings that no longer fall inside the window they serve at `now`.
    fn prune(&mut self, now: i64) {
        while self.times.front().is_some_and(|t| *t <= now - self.keep_ms) {
            self.times.pop_front();
        }
    }
}

impl ActorState {
    /// Drops every entry that no longer falls inside the window it serves at `now`.
    fn prune(&mut self, now: i64) {
        self.firings.retain(|_, f| {
            f.prune(now);
            !f.times.is_empty()
        });
        self.prune_budget(now);
    }

    /// What one request reads: that playbook's firings and the budget. (The other
    /// playbooks' entries are pruned when they are asked about, or by a sweep.)
    fn prune_for(&mut self, playbook_id: &str, now: i64) {
        if let Some(f) = self.firings.get_mut(playbook_id) {
            f.prune(now);
            if f.times.is_empty() {
                self.firings.remove(playbook_id);
            }
        }
        self.prune_budget(now);
    }

    fn prune_budget(&mut self, now: i64) {
        while self
            .actions
            .front()
            .is_some_and(|(t, _)| *t <= now - self.budget_keep_ms)
        {
            self.actions.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.firings.is_empty() && self.actions.is_empty()
    }

    /// When the last entry stops mattering (ms); nothing is live at or after it.
    fn expires_at(&self) -> i64 {
        let firings = self
            .firings
            .values()
            .filter_map(|f| f.times.back().map(|t| t.saturating_add(f.keep_ms)));
        let budget = self
            .actions
            .back()
            .map(|(t, _)| t.saturating_add(self.budget_keep_ms));
        firings.chain(budget).max().unwrap_or(i64::MIN)
    }

    fn record_firing(&mut self, playbook_id: &str, at: i64, keep_ms: i64, cap: usize) {
        let firings = match self.firings.get_mut(playbook_id) {
            Some(f) => f,
            None => self.firings.entry(playbook_id.into()).or_insert(Firings {
                times: VecDeque::new(),
                keep_ms,
                cap,
            }),
        };
        firings.keep_ms = keep_ms;
        firings.cap = cap;
        let i = firings.times.partition_point(|t| *t <= at);
        firings.times.insert(i, at);
        while firings.times.len() > firings.cap {
            firings.times.pop_front();
        }
    }

    fn record_actions(&mut self, at: i64, actions: u32, keep_ms: i64, cap: usize) {
        self.budget_keep_ms = keep_ms;
        self.budget_cap = cap;
        let j = self.actions.partition_point(|(t, _)| *t <= at);
        self.actions.insert(j, (at, actions));
        while self.actions.len() > self.budget_cap {
            self.actions.pop_front();
        }
    }
}

/// The default cap on actors the in-memory store tracks at once.
pub const DEFAULT_FATIGUE_MAX_ACTORS: usize = 100_000;

/// Shards, each behind its own lock, so that decisions for different actors rarely wait
/// for each other; check and record for one actor happen under its shard's lock.
const SHARDS: usize = 64;

/// The actors one shard of an [`InMemoryFatigue`] of `max_actors` tracks at most. As long
/// as no more actors than this have been seen, no shard can fill up, so no shard is ever
/// swept: what the store answers for one actor cannot depend on any other actor.
pub(crate) fn actors_per_shard(max_actors: usize) -> usize {
    max_actors.div_ceil(SHARDS).max(1)
}

#[derive(Debug, Default)]
struct Shard {
    /// Tenant → actor → state (two levels, so a lookup by `&str` allocates nothing).
    tenants: HashMap<Box<str>, HashMap<Box<str>, ActorState>>,
    /// Actors tracked in this shard.
    actors: usize,
    /// Every tracked actor has a live entry until this instant (ms): a full shard is not
    /// swept again before it.
    full_until: Option<i64>,
}

impl Shard {
    /// Stops tracking an actor whose entries are all gone.
    fn forget(&mut self, tenant: &str, actor: &str) {
        if let Some(actors) = self.tenants.get_mut(tenant) {
            if actors.remove(actor).is_some() {
                self.actors = self.actors.saturating_sub(1);
            }
            if actors.is_empty() {
                self.tenants.remove(tenant);
            }
        }
    }

    /// Makes room for one more actor: drops every actor whose entries all lie outside the
    /// windows they serve at `now` (which can never change a verdict). Live entries are
    /// never dropped; `false` when none could be.
    fn make_room(&mut self, now: i64, cap: usize) -> bool {
        if self.actors < cap {
            return true;
        }
        if self.full_until.is_some_and(|until| now < until) {
            return false;
        }
        self.tenants.retain(|_, actors| {
            actors.retain(|_, state| {
                state.prune(now);
                !state.is_empty()
            });
            !actors.is_empty()
        });
        self.actors = self.tenants.values().map(HashMap::len).sum();
        if self.actors < cap {
            self.full_until = None;
            return true;
        }
        self.full_until = self
            .tenants
            .values()
            .flat_map(HashMap::values)
            .map(ActorState::expires_at)
            .min();
        false
    }
}

/// A concurrent in-memory fatigue store that keeps only what a limit needs and is bounded.
///
/// - Nothing is kept for a request with no cooldown, no `max` and no budget: an actor no
///   limit concerns costs nothing.
/// - What is kept is dropped once it lies outside the window it serves.
/// - At most `max_actors` actors are tracked (default [`DEFAULT_FATIGUE_MAX_ACTORS`]).
///   When the cap is reached, actors whose entries have all expired make room; an entry
///   still inside its window is never evicted (that could let a limit of one pass twice),
///   so when every tracked actor is live, a new actor's request fails as a store that is
///   down would: the engine holds back its non-critical actions (see docs/decisions.md,
///   "Fatigue memory").
#[derive(Debug)]
pub struct InMemoryFatigue {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::hash::RandomState,
    max_per_shard: usize,
    max_actors: usize,
}

impl Default for InMemoryFatigue {
    fn default() -> Self {
        InMemoryFatigue::with_max_actors(DEFAULT_FATIGUE_MAX_ACTORS)
    }
}

impl InMemoryFatigue {
    /// An empty store tracking at most [`DEFAULT_FATIGUE_MAX_ACTORS`] actors.
    pub fn new() -> Self {
        InMemoryFatigue::default()
    }

    /// An empty store tracking at most `max_actors` actors (spread over shards, so the
    /// cap holds per shard at `max_actors / 64`, rounded up).
    pub fn with_max_actors(max_actors: usize) -> Self {
        InMemoryFatigue {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: std::hash::RandomState::new(),
            max_per_shard: actors_per_shard(max_actors),
            max_actors,
        }
    }

    /// How many actors the store tracks now (for tests and metrics).
    pub fn tracked_actors(&self) -> usize {
        self.shards.iter().map(|s| s.lock().actors).sum()
    }

    /// The cap on tracked actors.
    pub fn max_actors(&self) -> usize {
        self.max_actors
    }

    fn shard(&self, tenant: &str, actor: &str) -> Option<&Mutex<Shard>> {
        // Keyed per store, so that no one can choose ids that crowd one shard.
        let h = std::hash::BuildHasher::hash_one(&self.hasher, (tenant, actor));
        let i = usize::try_from(h % SHARDS as u64).unwrap_or(0);
        self.shards.get(i)
    }

    /// Runs `f` on the actor's state under its shard's lock, creating the state when
    /// there is room; drops the state again when `f` leaves it empty.
    fn with_actor<T>(
        &self,
        tenant: &str,
        actor: &str,
        playbook: &str,
        now: i64,
        f: impl FnOnce(&mut ActorState) -> T,
    ) -> Result<T, FatigueError> {
        let shard = self
            .shard(tenant, actor)
            .ok_or_else(|| FatigueError::Unavailable("no shard for this actor".to_owned()))?;
        let mut guard = shard.lock();
        let shard = &mut *guard;
        // The common case, an actor already tracked: two lookups, no allocation.
        if let Some(state) = shard
            .tenants
            .get_mut(tenant)
            .and_then(|actors| actors.get_mut(actor))
        {
            state.prune_for(playbook, now);
            let out = f(state);
            if state.is_empty() {
                shard.forget(tenant, actor);
            }
            return Ok(out);
        }
        if !shard.make_room(now, self.max_per_shard) {
            return Err(FatigueError::Full {
                max_actors: self.max_actors,
            });
        }
        let mut state = ActorState::default();
        let out = f(&mut state);
        if !state.is_empty() {
            shard
                .tenants
                .entry(tenant.into())
                .or_default()
                .insert(actor.into(), state);
            shard.actors += 1;
        }
        Ok(out)
    }
}

/// Whether an entry at `t` counts against a limit of span `span` at `now`: closer to `now`
/// than `span`, on either side (an entry exactly `span` before `now` has left the window,
/// and one exactly `span` after it is outside it too). The rule of every fatigue store.
fn within(t: i64, now: i64, span: i64) -> bool {
    now.saturating_sub(span) < t && t < now.saturating_add(span)
}

impl FatigueStore for InMemoryFatigue {
    fn check_and_record(&self, req: &FatigueRequest<'_>) -> Result<FatigueVerdict, FatigueError> {
        // No limit concerns this request: nothing to check, nothing worth keeping.
        if req.cooldown.is_none() && req.max.is_none() && req.budget.is_none() {
            return Ok(FatigueVerdict::Allowed(req.actions));
        }
        let now = req.now.as_millisecond();
        self.with_actor(req.tenant_id, req.actor_id, req.playbook_id, now, |state| {
            // Entries count by their distance from `now`, on either side: a firing recorded
            // after `now` is a concurrent decision whose `now` is a little later (its check
            // ran first), and letting this one pass too would break the limit.
            if let Some(firings) = state.firings.get(req.playbook_id) {
                if let Some(cooldown) = req.cooldown {
                    if firings
                        .times
                        .iter()
                        .any(|t| within(*t, now, cooldown.as_millis()))
                    {
                        return FatigueVerdict::Cooldown;
                    }
                }
                if let Some((max, window)) = req.max {
                    let in_window = firings
                        .times
                        .iter()
                        .filter(|t| within(**t, now, window.as_millis()))
                        .count();
                    if in_window >= usize::try_from(max).unwrap_or(usize::MAX) {
                        return FatigueVerdict::Max;
                    }
                }
            }
            let mut allowed = req.actions;
            if let (Some((max, window)), false) = (req.budget, req.critical) {
                let used: u32 = state
                    .actions
                    .iter()
                    .filter(|(t, _)| within(*t, now, window.as_millis()))
                    .map(|(_, n)| *n)
                    .sum();
                let room = max.saturating_sub(used);
                if room == 0 {
                    return FatigueVerdict::Budget;
                }
                allowed = allowed.min(room);
            }
            if req.cooldown.is_some() || req.max.is_some() {
                let keep = req
                    .cooldown
                    .map(Duration::as_millis)
                    .into_iter()
                    .chain(req.max.map(|(_, w)| w.as_millis()))
                    .max()
                    .unwrap_or(0);
                let cap = req
                    .max
                    .map_or(1, |(n, _)| usize::try_from(n).unwrap_or(usize::MAX))
                    .saturating_add(SLACK);
                state.record_firing(req.playbook_id, now, keep, cap);
            }
            if let Some((max, window)) = req.budget {
                let cap = usize::try_from(max)
                    .unwrap_or(usize::MAX)
                    .saturating_add(SLACK);
                state.record_actions(now, allowed, window.as_millis(), cap);
            }
            FatigueVerdict::Allowed(allowed)
        })
    }

    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError> {
        // History given without its limits: kept as long as any sensible window, both as
        // firings of the playbook and as actions against a budget.
        let at = at.as_millisecond();
        self.with_actor(tenant_id, actor_id, playbook_id, at, |state| {
            let keep = state
                .firings
                .get(playbook_id)
                .map_or(HISTORY_RETENTION_MS, |f| {
                    f.keep_ms.max(HISTORY_RETENTION_MS)
                });
            state.record_firing(playbook_id, at, keep, SLACK);
            let budget_keep = state.budget_keep_ms.max(HISTORY_RETENTION_MS);
            let budget_cap = state.budget_cap.max(SLACK);
            state.record_actions(at, actions, budget_keep, budget_cap);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn req(now: &str) -> FatigueRequest<'static> {
        FatigueRequest {
            tenant_id: "acme",
            actor_id: "dev",
            playbook_id: "pb",
            now: at(now),
            actions: 1,
            cooldown: None,
            max: None,
            budget: None,
            critical: false,
        }
    }

    #[test]
    fn cooldown_blocks_until_it_has_fully_passed() {
        let store = InMemoryFatigue::new();
        let cooldown = Some(Duration::parse("1h").unwrap());
        let r = |now| FatigueRequest {
            cooldown,
            ..req(now)
        };
        assert_eq!(
            store.check_and_record(&r("2026-11-22T10:00:00Z")).unwrap(),
            FatigueVerdict::Allowed(1)
        );
        assert_eq!(
            store.check_and_record(&r("2026-11-22T10:59:59Z")).unwrap(),
            FatigueVerdict::Cooldown
        );
        assert_eq!(
            store.check_and_record(&r("2026-11-22T11:00:00Z")).unwrap(),
            FatigueVerdict::Allowed(1)
        );
    }

    #[test]
    fn max_per_window_counts_firings_inside_the_window() {
        let store = InMemoryFatigue::new();
        let max = Some((2, Duration::parse("1d").unwrap()));
        let r = |now| FatigueRequest { max, ..req(now) };
        assert_eq!(
            store.check_and_record(&r("2026-11-22T10:00:00Z")).unwrap(),
            FatigueVerdict::Allowed(1)
        );
        assert_eq!(
            store.check_and_record(&r("2026-11-22T11:00:00Z")).unwrap(),
            FatigueVerdict::Allowed(1)
        );
        assert_eq!(
            store.check_and_record(&r("2026-11-22T12:00:00Z")).unwrap(),
            FatigueVerdict::Max
        );
        // The first firing leaves the window exactly one day later.
        assert_eq!(
            store.check_and_record(&r("2026-11-23T10:00:00Z")).unwrap(),
            FatigueVerdict::Allowed(1)
        );
    }

    #[test]
    fn a_concurrent_decisions_later_firing_counts() {
        // Two decisions for one actor at once: the one with the later `now` is checked
        // first; the other must not pass a limit of one as well.
        let day = Duration::parse("1d").unwrap();
        let hour = Duration::parse("1h").unwrap();
        for (max, cooldown, budget, refused) in [
            (Some((1, day)), None, None, FatigueVerdict::Max),
            (None, Some(hour), None, FatigueVerdict::Cooldown),
            (None, None, Some((1, day)), FatigueVerdict::Budget),
        ] {
            let store = InMemoryFatigue::new();
            let r = |now| FatigueRequest {
                max,
                cooldown,
                budget,
                ..req(now)
            };
            assert_eq!(
                store
                    .check_and_record(&r("2026-11-22T10:00:00.120Z"))
                    .unwrap(),
                FatigueVerdict::Allowed(1)
            );
            assert_eq!(
                store
                    .check_and_record(&r("2026-11-22T10:00:00.100Z"))
                    .unwrap(),
                refused
            );
        }
        // A firing a whole window (or cooldown) later is outside it, as one before.
        let store = InMemoryFatigue::new();
        let r = |now| FatigueRequest {
            cooldown: Some(hour),
            ..req(now)
        };
        assert_eq!(
            store.check_and_record(&r("2026-11-22T11:00:00Z")).unwrap(),
            FatigueVerdict::Allowed(1)
        );
        assert_eq!(
            store.check_and_record(&r("2026-11-22T10:00:00Z")).unwrap(),
            FatigueVerdict::Allowed(1)
        );
        assert_eq!(
            store.check_and_record(&r("2026-11-22T10:30:00Z")).unwrap(),
            FatigueVerdict::Cooldown
        );
    }

    #[test]
    fn budget_counts_actions_across_playbooks_and_spares_critical_ones() {
        let store = InMemoryFatigue::new();
        let budget = Some((3, Duration::parse("1d").unwrap()));
        let r = |pb: &'static str, actions, critical| FatigueRequest {
            playbook_id: pb,
            actions,
            budget,
            critical,
            ..req("2026-11-22T10:00:00Z")
        };
        assert_eq!(
            store.check_and_record(&r("a", 2, false)).unwrap(),
            FatigueVerdict::Allowed(2)
        );
        assert_eq!(
            store.check_and_record(&r("b", 2, false)).unwrap(),
            FatigueVerdict::Allowed(1)
        );
        assert_eq!(
            store.check_and_record(&r("c", 1, false)).unwrap(),
            FatigueVerdict::Budget
        );
        assert_eq!(
            store.check_and_record(&r("d", 1, true)).unwrap(),
            FatigueVerdict::Allowed(1)
        );
    }

    #[test]
    fn history_counts_like_a_firing() {
        let store = InMemoryFatigue::new();
        store
            .record("acme", "dev", "pb", at("2026-11-22T09:30:00Z"), 1)
            .unwrap();
        let cooldown = Some(Duration::parse("1h").unwrap());
        let r = FatigueRequest {
            cooldown,
            ..req("2026-11-22T10:00:00Z")
        };
        assert_eq!(
            store.check_and_record(&r).unwrap(),
            FatigueVerdict::Cooldown
        );
        // Another actor is not affected.
        let other = FatigueRequest {
            actor_id: "dev-2",
            ..r
        };
        assert_eq!(
            store.check_and_record(&other).unwrap(),
            FatigueVerdict::Allowed(1)
        );
    }

    #[test]
    fn nothing_is_kept_for_requests_no_limit_concerns() {
        let store = InMemoryFatigue::new();
        for i in 0..100_000 {
            let actor = format!("dev-{i}");
            let r = FatigueRequest {
                actor_id: &actor,
                ..req("2026-11-22T10:00:00Z")
            };
            assert_eq!(
                store.check_and_record(&r).unwrap(),
                FatigueVerdict::Allowed(1)
            );
        }
        assert_eq!(store.tracked_actors(), 0);
    }

    #[test]
    fn entries_leave_once_outside_the_window_they_serve() {
        let store = InMemoryFatigue::new();
        let cooldown = Some(Duration::parse("1h").unwrap());
        let r = |actor: &'static str, now| FatigueRequest {
            actor_id: actor,
            cooldown,
            ..req(now)
        };
        store
            .check_and_record(&r("a", "2026-11-22T10:00:00Z"))
            .unwrap();
        store
            .check_and_record(&r("b", "2026-11-22T10:30:00Z"))
            .unwrap();
        assert_eq!(store.tracked_actors(), 2);
        // An hour later `a`'s firing serves no window any more: asking drops it.
        store
            .check_and_record(&r("a", "2026-11-22T11:00:00Z"))
            .unwrap();
        assert_eq!(store.tracked_actors(), 2);
        let no_limits = FatigueRequest {
            actor_id: "b",
            ..req("2026-11-22T11:30:00Z")
        };
        store.check_and_record(&no_limits).unwrap();
        // `b` is untouched by a request without limits, and kept until touched again.
        assert_eq!(store.tracked_actors(), 2);
    }

    #[test]
    fn the_store_is_capped_and_never_evicts_a_live_entry() {
        let store = InMemoryFatigue::with_max_actors(64 * 4);
        let max = Some((1, Duration::parse("1d").unwrap()));
        let at = |actor: &str, now: &str| {
            let r = FatigueRequest {
                actor_id: actor,
                max,
                ..req("2026-11-22T10:00:00Z")
            };
            store.check_and_record(&FatigueRequest { now: at(now), ..r })
        };
        assert_eq!(
            at("first", "2026-11-22T10:00:00Z").unwrap(),
            FatigueVerdict::Allowed(1)
        );
        let mut refused = 0;
        for i in 0..10_000 {
            if at(&format!("dev-{i}"), "2026-11-22T10:00:00Z").is_err() {
                refused += 1;
            }
        }
        assert!(
            store.tracked_actors() <= 64 * 4,
            "{}",
            store.tracked_actors()
        );
        assert!(refused >= 10_000 - 64 * 4, "{refused}");
        // The first actor's firing is still inside its window: still limited.
        assert_eq!(
            at("first", "2026-11-22T12:00:00Z").unwrap(),
            FatigueVerdict::Max
        );
        // A day later every entry has expired and makes room.
        assert_eq!(
            at("newcomer", "2026-11-23T10:00:01Z").unwrap(),
            FatigueVerdict::Allowed(1)
        );
        assert!(store.tracked_actors() <= 64 * 4);
    }

    #[test]
    fn concurrent_decisions_never_both_pass_a_limit_of_one() {
        use std::sync::Arc;
        for _ in 0..50 {
            let store = Arc::new(InMemoryFatigue::new());
            let passed: usize = (0..8)
                .map(|_| {
                    let store = Arc::clone(&store);
                    std::thread::spawn(move || {
                        let r = FatigueRequest {
                            max: Some((1, Duration::parse("1d").unwrap())),
                            ..req("2026-11-22T10:00:00Z")
                        };
                        usize::from(matches!(
                            store.check_and_record(&r).unwrap(),
                            FatigueVerdict::Allowed(_)
                        ))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum();
            assert_eq!(passed, 1);
        }
    }
}
