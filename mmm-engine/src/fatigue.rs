//! Fatigue. Cooldown and `max` per window count firings of a playbook for an
//! actor; the actor budget counts actions across playbooks. Check and record happen in
//! one atomic step per actor, so two concurrent decisions never both pass a limit of one.

use std::collections::{HashMap, VecDeque};

use dashmap::DashMap;
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
    /// The store answered with something that is not a verdict.
    #[error("fatigue store answered `{answer}`, not a verdict")]
    NotAVerdict {
        /// The answer, as JSON.
        answer: String,
    },
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

#[derive(Debug, Default)]
struct ActorState {
    /// Firing times (ms) per playbook, oldest first.
    firings: HashMap<String, VecDeque<i64>>,
    /// (time ms, actions) returned to the actor, oldest first.
    actions: VecDeque<(i64, u32)>,
}

/// How long history is kept when a request names no window: enough for any cooldown.
const DEFAULT_RETENTION_MS: i64 = 30 * 86_400_000;

impl ActorState {
    fn record(&mut self, playbook_id: &str, at: i64, actions: u32) {
        if !self.firings.contains_key(playbook_id) {
            self.firings.insert(playbook_id.to_owned(), VecDeque::new());
        }
        let Some(firings) = self.firings.get_mut(playbook_id) else {
            return;
        };
        let i = firings.partition_point(|t| *t <= at);
        firings.insert(i, at);
        let j = self.actions.partition_point(|(t, _)| *t <= at);
        self.actions.insert(j, (at, actions));
    }
}

/// A concurrent in-memory fatigue store: one lock per actor, history pruned to the
/// longest window a request asks about. Looking an actor up allocates nothing.
#[derive(Debug, Default)]
pub struct InMemoryFatigue {
    tenants: DashMap<String, DashMap<String, Mutex<ActorState>>>,
}

/// Firings kept per playbook when the request names no `max` (only the last one matters
/// for a cooldown; a few more keep a later `max` meaningful).
const KEEP_WITHOUT_MAX: usize = 16;
/// Budget entries kept when the request names no budget.
const KEEP_WITHOUT_BUDGET: usize = 256;

impl InMemoryFatigue {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryFatigue::default()
    }

    fn with_actor<T>(&self, tenant: &str, actor: &str, f: impl FnOnce(&mut ActorState) -> T) -> T {
        if let Some(actors) = self.tenants.get(tenant) {
            if let Some(entry) = actors.get(actor) {
                return f(&mut entry.lock());
            }
        }
        let actors = self.tenants.entry(tenant.to_owned()).or_default();
        let entry = actors.entry(actor.to_owned()).or_default();
        let mut state = entry.lock();
        f(&mut state)
    }
}

impl FatigueStore for InMemoryFatigue {
    fn check_and_record(&self, req: &FatigueRequest<'_>) -> Result<FatigueVerdict, FatigueError> {
        let now = req.now.as_millisecond();
        Ok(self.with_actor(req.tenant_id, req.actor_id, |state| {
            let keep = req
                .cooldown
                .map(Duration::as_millis)
                .into_iter()
                .chain(req.max.map(|(_, w)| w.as_millis()))
                .max()
                .unwrap_or(0)
                .max(DEFAULT_RETENTION_MS);
            if !state.firings.contains_key(req.playbook_id) {
                state
                    .firings
                    .insert(req.playbook_id.to_owned(), VecDeque::new());
            }
            let Some(firings) = state.firings.get_mut(req.playbook_id) else {
                return FatigueVerdict::Allowed(req.actions);
            };
            while firings.front().is_some_and(|t| *t <= now - keep)
                || (req.max.is_none() && firings.len() > KEEP_WITHOUT_MAX)
            {
                firings.pop_front();
            }
            // Firings recorded after `now` (a replay out of order) do not count against it.
            let past = firings.iter().filter(|t| **t <= now);
            if let Some(cooldown) = req.cooldown {
                if past
                    .clone()
                    .next_back()
                    .is_some_and(|last| now < last + cooldown.as_millis())
                {
                    return FatigueVerdict::Cooldown;
                }
            }
            if let Some((max, window)) = req.max {
                let in_window = past.filter(|t| **t > now - window.as_millis()).count();
                if in_window >= usize::try_from(max).unwrap_or(usize::MAX) {
                    return FatigueVerdict::Max;
                }
            }
            let budget_keep = req.budget.map_or(DEFAULT_RETENTION_MS, |(_, w)| {
                w.as_millis().max(DEFAULT_RETENTION_MS)
            });
            while state
                .actions
                .front()
                .is_some_and(|(t, _)| *t <= now - budget_keep)
                || (req.budget.is_none() && state.actions.len() > KEEP_WITHOUT_BUDGET)
            {
                state.actions.pop_front();
            }
            let mut allowed = req.actions;
            if let (Some((max, window)), false) = (req.budget, req.critical) {
                let used: u32 = state
                    .actions
                    .iter()
                    .filter(|(t, _)| *t > now - window.as_millis() && *t <= now)
                    .map(|(_, n)| *n)
                    .sum();
                let room = max.saturating_sub(used);
                if room == 0 {
                    return FatigueVerdict::Budget;
                }
                allowed = allowed.min(room);
            }
            state.record(req.playbook_id, now, allowed);
            FatigueVerdict::Allowed(allowed)
        }))
    }

    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError> {
        self.with_actor(tenant_id, actor_id, |state| {
            state.record(playbook_id, at.as_millisecond(), actions);
        });
        Ok(())
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
