//! The fatigue port of the engine (SPEC §4, §5, §13): an atomic check-and-record per
//! actor, kept in the host's store (PostgreSQL serialises per actor), in Redis (one Lua
//! script per check, so replicas never both pass a limit of one) or, on SQLite (one
//! process owns the file), in the core's in-memory store as the authority, loaded from
//! the database on start, whose allowed firings are written with the decisions' group
//! commit ([`MemoryFatigue`]), so they survive restarts.
//!
//! The engine is synchronous and runs on `spawn_blocking` threads, so both stores call
//! their async clients with [`Handle::block_on`] from the deciding thread, each call
//! bounded by a timeout: a store that is down or slow answers
//! [`FatigueError::Unavailable`], and the engine holds the playbook's non-critical actions
//! back (suppressed, "held back rather than risk nagging") — never a hang.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use jiff::Timestamp;
use mmm_engine::{FatigueError, FatigueRequest, FatigueStore, FatigueVerdict};
use redis::aio::ConnectionManager;
use tokio::runtime::Handle;

use crate::config::ServeArgs;
use crate::store::{fatigue_horizon_ms, FatigueEvent, Store, StoreError};

/// How long history recorded without limits (`record`) is kept, as in the core.
const HISTORY_RETENTION_MS: i64 = 30 * 86_400_000;

/// Runs `fut` on `handle` from a blocking thread, for at most `timeout`.
fn block_on_bounded<T, E: std::fmt::Display>(
    handle: &Handle,
    timeout: StdDuration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, FatigueError> {
    // The engine runs on blocking threads (`spawn_blocking` or the core's call pool),
    // where `block_on` is allowed; never call the engine on an async worker.
    match handle.block_on(async { tokio::time::timeout(timeout, fut).await }) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(FatigueError::Unavailable(format!("{what}: {e}"))),
        Err(_) => Err(FatigueError::Unavailable(format!(
            "{what}: no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// True when no limit concerns the request: allowed, and nothing is worth recording
/// (as the core's in-memory store).
fn unlimited(req: &FatigueRequest<'_>) -> bool {
    req.cooldown.is_none() && req.max.is_none() && req.budget.is_none()
}

// ---- in the store ------------------------------------------------------------------------

/// Fatigue in the host's store: `Store::fatigue_check_and_record` is one transaction,
/// serialised per actor (SQLite: one writer; PostgreSQL: an advisory lock per actor).
pub struct StoreFatigue {
    store: Arc<dyn Store>,
    handle: Handle,
    timeout: StdDuration,
}

impl std::fmt::Debug for StoreFatigue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreFatigue")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl StoreFatigue {
    /// Fatigue in `store`, each check bounded by `timeout`, run on `handle`.
    pub fn new(store: Arc<dyn Store>, handle: Handle, timeout: StdDuration) -> Self {
        StoreFatigue {
            store,
            handle,
            timeout,
        }
    }
}

impl FatigueStore for StoreFatigue {
    fn check_and_record(&self, req: &FatigueRequest<'_>) -> Result<FatigueVerdict, FatigueError> {
        if unlimited(req) {
            return Ok(FatigueVerdict::Allowed(req.actions));
        }
        block_on_bounded(
            &self.handle,
            self.timeout,
            "fatigue store",
            self.store.fatigue_check_and_record(req),
        )
    }

    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError> {
        block_on_bounded(
            &self.handle,
            self.timeout,
            "fatigue store",
            self.store
                .fatigue_record(tenant_id, actor_id, playbook_id, at, actions),
        )
    }
}

// ---- in memory, journaled to the store ---------------------------------------------------

/// Firings the in-memory authority allowed and the store does not hold yet: the decision
/// log's committer takes them into each batch ([`crate::receipts::DecisionLog`]), so they
/// are committed in the same transaction as the receipts of the decisions that made them.
#[derive(Debug, Default)]
pub struct FatigueJournal {
    events: std::sync::Mutex<Vec<FatigueEvent>>,
    wake: tokio::sync::Notify,
}

impl FatigueJournal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FatigueEvent>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a firing and wakes the committer.
    pub fn push(&self, event: FatigueEvent) {
        self.lock().push(event);
        self.wake.notify_one();
    }

    /// Takes every firing added so far.
    pub fn take(&self) -> Vec<FatigueEvent> {
        std::mem::take(&mut *self.lock())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Resolves once a firing was added since the last wake.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// Fatigue for a host that owns its SQLite file: the core's [`InMemoryFatigue`] judges
/// and records (no database round trip, no write transaction per check), every allowed
/// firing goes to the [`FatigueJournal`], and the decision log writes it to
/// `fatigue_events` in the same transaction as the decision's receipt, before the
/// decision is answered. On start [`MemoryFatigue::load`] replays the stored firings, so
/// cooldowns, `max` and budgets survive a restart (a SIGKILL too: what a 200 answered is
/// on disk). Until it has loaded, checks answer unavailable (held back, never a nag).
///
/// Only for one process per database: replicas sharing PostgreSQL use [`StoreFatigue`] or
/// [`RedisFatigue`].
#[derive(Debug, Default)]
pub struct MemoryFatigue {
    memory: std::sync::OnceLock<mmm_engine::InMemoryFatigue>,
    journal: Arc<FatigueJournal>,
}

impl MemoryFatigue {
    /// An authority that is not loaded yet.
    pub fn new() -> Self {
        MemoryFatigue::default()
    }

    /// The journal the decision log must drain.
    pub fn journal(&self) -> &Arc<FatigueJournal> {
        &self.journal
    }

    /// Whether [`MemoryFatigue::load`] has run.
    pub fn loaded(&self) -> bool {
        self.memory.get().is_some()
    }

    /// Loads the stored firings (oldest first). The store tracks at least `max_actors`
    /// actors (the engine's `fatigue_max_actors`), and twice as many as the database
    /// holds, so that no stored firing is refused for want of room. Returns how many
    /// firings were loaded. A second call loads nothing.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn load(&self, store: &dyn Store, max_actors: usize) -> Result<usize, StoreError> {
        if self.loaded() {
            return Ok(0);
        }
        let events = store.load_fatigue().await?;
        let actors: std::collections::HashSet<(&str, &str)> = events
            .iter()
            .map(|e| (e.tenant.as_str(), e.actor_id.as_str()))
            .collect();
        let memory = mmm_engine::InMemoryFatigue::with_max_actors(max_actors.max(actors.len() * 2));
        for e in &events {
            if let Err(err) = memory.record(&e.tenant, &e.actor_id, &e.playbook_id, e.at, e.actions)
            {
                return Err(StoreError::Internal(format!(
                    "loading fatigue history: {err}"
                )));
            }
        }
        // Another load won the race: its memory stands, and this one is dropped.
        let _ = self.memory.set(memory);
        Ok(events.len())
    }

    fn memory(&self) -> Result<&mmm_engine::InMemoryFatigue, FatigueError> {
        self.memory.get().ok_or_else(|| {
            FatigueError::Unavailable("the fatigue history is not loaded yet".to_owned())
        })
    }
}

impl FatigueStore for MemoryFatigue {
    fn check_and_record(&self, req: &FatigueRequest<'_>) -> Result<FatigueVerdict, FatigueError> {
        if unlimited(req) {
            return Ok(FatigueVerdict::Allowed(req.actions));
        }
        let verdict = self.memory()?.check_and_record(req)?;
        if let FatigueVerdict::Allowed(n) = verdict {
            let now = req.now.as_millisecond();
            self.journal.push(FatigueEvent {
                tenant: req.tenant_id.to_owned(),
                actor_id: req.actor_id.to_owned(),
                playbook_id: req.playbook_id.to_owned(),
                at: req.now,
                actions: n,
                prune_before: Some(now.saturating_sub(fatigue_horizon_ms(req))),
            });
        }
        Ok(verdict)
    }

    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError> {
        self.memory()?
            .record(tenant_id, actor_id, playbook_id, at, actions)?;
        self.journal.push(FatigueEvent {
            tenant: tenant_id.to_owned(),
            actor_id: actor_id.to_owned(),
            playbook_id: playbook_id.to_owned(),
            at,
            actions,
            prune_before: None,
        });
        Ok(())
    }
}

// ---- in Redis ----------------------------------------------------------------------------

/// The check-and-record script. KEYS: the playbook's firings (a sorted set, score = ms),
/// the actor's budget entries (a sorted set, member `<id>:<actions>`). ARGV: now (ms),
/// actions, cooldown (ms, -1 for none), max count (-1 for none), max window (ms), budget
/// count (-1 for none), budget window (ms), critical (1/0), a unique member id.
/// Returns `{verdict, allowed}`. The same rules as the core's `InMemoryFatigue`:
/// entries count by their distance from `now` on either side (one after `now` is a
/// concurrent decision's, whose check ran first: two replicas' decisions for one actor
/// reach Redis in any order); a critical playbook ignores
/// the budget but its actions count; entries outside the window they serve are dropped;
/// each key expires when its newest entry stops mattering.
pub const CHECK_AND_RECORD: &str = r"
local now = tonumber(ARGV[1])
local actions = tonumber(ARGV[2])
local cooldown = tonumber(ARGV[3])
local max_n = tonumber(ARGV[4])
local max_w = tonumber(ARGV[5])
local budget_n = tonumber(ARGV[6])
local budget_w = tonumber(ARGV[7])
local critical = ARGV[8] == '1'
local id = ARGV[9]
local slack = 64
local fire, budget = KEYS[1], KEYS[2]

local function expire(key, keep)
  local newest = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  local last = tonumber(newest[2] or now)
  if last < now then last = now end
  redis.call('PEXPIRE', key, math.max(1, last + keep - now))
end

-- Entries closer to now than the span, on either side, count.
local function near(key, span)
  return redis.call('ZCOUNT', key, '(' .. (now - span), '(' .. (now + span))
end
if cooldown >= 0 then
  if near(fire, cooldown) > 0 then
    return {'cooldown', 0}
  end
end
if max_n >= 0 then
  if near(fire, max_w) >= max_n then
    return {'max', 0}
  end
end
local allowed = actions
if budget_n >= 0 and not critical then
  local used = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', budget, '(' .. (now - budget_w), '(' .. (now + budget_w))) do
    used = used + (tonumber(string.match(m, ':(%d+)$')) or 0)
  end
  local room = budget_n - used
  if room <= 0 then
    return {'budget', 0}
  end
  if room < allowed then allowed = room end
end
if cooldown >= 0 or max_n >= 0 then
  local keep = math.max(cooldown, max_n >= 0 and max_w or 0)
  local cap = (max_n >= 0 and max_n or 1) + slack
  redis.call('ZADD', fire, now, id)
  redis.call('ZREMRANGEBYSCORE', fire, '-inf', now - keep)
  redis.call('ZREMRANGEBYRANK', fire, 0, -(cap + 1))
  expire(fire, keep)
end
if budget_n >= 0 then
  redis.call('ZADD', budget, now, id .. ':' .. allowed)
  redis.call('ZREMRANGEBYSCORE', budget, '-inf', now - budget_w)
  redis.call('ZREMRANGEBYRANK', budget, 0, -(budget_n + slack + 1))
  expire(budget, budget_w)
end
return {'allowed', allowed}
";

/// Records history (a firing that happened elsewhere): as a firing of the playbook and as
/// actions against the budget, each kept at least 30 days. ARGV: at (ms), actions, id,
/// retention (ms).
pub const RECORD: &str = r"
local at = tonumber(ARGV[1])
local actions = tonumber(ARGV[2])
local id = ARGV[3]
local keep = tonumber(ARGV[4])
for i, key in ipairs(KEYS) do
  local member = id
  if i == 2 then member = id .. ':' .. actions end
  redis.call('ZADD', key, at, member)
  local ttl = redis.call('PTTL', key)
  if ttl < keep then redis.call('PEXPIRE', key, keep) end
end
return 1
";

/// Escapes a key part: `%`, `:`, `{` and `}` become `%XX`, so that no id can reach into
/// another's key or break the hash tag.
fn key_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' | ':' | '{' | '}' => out.push_str(&format!("%{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The actor's key prefix: `mmm:fatigue:<tenant>:{<actor>}:` (the braces are a Redis
/// Cluster hash tag, so every key of one actor lives in one slot and one script can
/// touch them all).
pub fn actor_prefix(prefix: &str, tenant: &str, actor: &str) -> String {
    format!(
        "{prefix}mmm:fatigue:{}:{{{}}}:",
        key_part(tenant),
        key_part(actor)
    )
}

/// The key of a playbook's firings for an actor.
pub fn firings_key(prefix: &str, tenant: &str, actor: &str, playbook: &str) -> String {
    format!(
        "{}pb:{}",
        actor_prefix(prefix, tenant, actor),
        key_part(playbook)
    )
}

/// The key of an actor's budget entries.
pub fn budget_key(prefix: &str, tenant: &str, actor: &str) -> String {
    format!("{}budget", actor_prefix(prefix, tenant, actor))
}

/// Fatigue in Redis, shared by every replica.
pub struct RedisFatigue {
    conn: ConnectionManager,
    handle: Handle,
    timeout: StdDuration,
    check: redis::Script,
    record: redis::Script,
    /// Put before every key (empty in production; tests isolate themselves with it).
    prefix: String,
}

impl std::fmt::Debug for RedisFatigue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFatigue")
            .field("timeout", &self.timeout)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The Redis URL's scheme and host, never its password.
fn redacted_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => "(not a URL)".to_owned(),
    }
}

impl RedisFatigue {
    /// Connects to `url` (lazily: the host starts while Redis is down, and reconnects
    /// when it comes back). Every command is bounded by `timeout`.
    ///
    /// # Errors
    /// A message when the URL is not a Redis URL.
    pub fn connect(
        url: &str,
        handle: Handle,
        timeout: StdDuration,
        prefix: &str,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("--redis-url `{}`: {e}", redacted_url(url)))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(StdDuration::from_secs(1));
        let _guard = handle.enter();
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("--redis-url `{}`: {e}", redacted_url(url)))?;
        Ok(RedisFatigue {
            conn,
            handle,
            timeout,
            check: redis::Script::new(CHECK_AND_RECORD),
            record: redis::Script::new(RECORD),
            prefix: prefix.to_owned(),
        })
    }

    /// Pings Redis (for `/ready`).
    ///
    /// # Errors
    /// A message when Redis does not answer within the timeout.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            self.timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("redis: {e}")),
            Err(_) => Err(format!(
                "redis: no answer within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

fn member_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn limit_args(limit: Option<(u32, mmm_engine::Duration)>) -> (i64, i64) {
    limit.map_or((-1, 0), |(n, w)| (i64::from(n), w.as_millis()))
}

impl FatigueStore for RedisFatigue {
    fn check_and_record(&self, req: &FatigueRequest<'_>) -> Result<FatigueVerdict, FatigueError> {
        if unlimited(req) {
            return Ok(FatigueVerdict::Allowed(req.actions));
        }
        let (max_n, max_w) = limit_args(req.max);
        let (budget_n, budget_w) = limit_args(req.budget);
        let mut invocation = self.check.prepare_invoke();
        invocation
            .key(firings_key(
                &self.prefix,
                req.tenant_id,
                req.actor_id,
                req.playbook_id,
            ))
            .key(budget_key(&self.prefix, req.tenant_id, req.actor_id))
            .arg(req.now.as_millisecond())
            .arg(req.actions)
            .arg(req.cooldown.map_or(-1, mmm_engine::Duration::as_millis))
            .arg(max_n)
            .arg(max_w)
            .arg(budget_n)
            .arg(budget_w)
            .arg(if req.critical { "1" } else { "0" })
            .arg(member_id());
        let mut conn = self.conn.clone();
        let (verdict, allowed): (String, i64) = block_on_bounded(
            &self.handle,
            self.timeout,
            "redis fatigue",
            invocation.invoke_async(&mut conn),
        )?;
        let answer = serde_json::json!({"verdict": verdict, "actions": allowed});
        FatigueVerdict::from_json(&answer, req.actions)
    }

    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError> {
        let mut invocation = self.record.prepare_invoke();
        invocation
            .key(firings_key(&self.prefix, tenant_id, actor_id, playbook_id))
            .key(budget_key(&self.prefix, tenant_id, actor_id))
            .arg(at.as_millisecond())
            .arg(actions)
            .arg(member_id())
            .arg(HISTORY_RETENTION_MS);
        let mut conn = self.conn.clone();
        let _: i64 = block_on_bounded(
            &self.handle,
            self.timeout,
            "redis fatigue",
            invocation.invoke_async(&mut conn),
        )?;
        Ok(())
    }
}

/// What [`from_args`] built.
#[derive(Debug, Clone)]
pub enum HostFatigue {
    /// In the database (PostgreSQL).
    Store(Arc<StoreFatigue>),
    /// In memory, journaled to the database (SQLite).
    Memory(Arc<MemoryFatigue>),
    /// In Redis.
    Redis(Arc<RedisFatigue>),
}

impl HostFatigue {
    /// The engine's fatigue port (`EngineBuilder::fatigue`).
    pub fn port(&self) -> Arc<dyn FatigueStore> {
        match self {
            HostFatigue::Store(s) => Arc::clone(s) as Arc<dyn FatigueStore>,
            HostFatigue::Memory(m) => Arc::clone(m) as Arc<dyn FatigueStore>,
            HostFatigue::Redis(r) => Arc::clone(r) as Arc<dyn FatigueStore>,
        }
    }

    /// For `/ready`: Redis answers (the database is checked on its own).
    ///
    /// # Errors
    /// A message when Redis is configured and does not answer.
    pub async fn ready(&self) -> Result<(), String> {
        match self {
            HostFatigue::Store(_) => Ok(()),
            HostFatigue::Memory(m) if m.loaded() => Ok(()),
            HostFatigue::Memory(_) => Err("the fatigue history is not loaded yet".to_owned()),
            HostFatigue::Redis(r) => r.ping().await,
        }
    }

    /// The journal the decision log writes with each batch (the in-memory authority's).
    pub fn journal(&self) -> Option<Arc<FatigueJournal>> {
        match self {
            HostFatigue::Memory(m) => Some(Arc::clone(m.journal())),
            _ => None,
        }
    }

    /// Loads what must be loaded before deciding (the in-memory authority's history);
    /// nothing for the others. `max_actors` is the engine's `fatigue_max_actors`.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn load(&self, store: &dyn Store, max_actors: usize) -> Result<(), StoreError> {
        if let HostFatigue::Memory(m) = self {
            let n = m.load(store, max_actors).await?;
            tracing::info!(firings = n, "fatigue history loaded");
        }
        Ok(())
    }
}

/// The fatigue store the flags ask for: Redis with `--redis-url`; else, on SQLite, the
/// in-memory authority journaled to the database ([`MemoryFatigue`]; load it with
/// [`HostFatigue::load`] before serving); else the database. Call from inside the
/// runtime (it keeps a handle to it).
///
/// # Errors
/// A message naming the flag when `--redis-url` is unusable or no runtime is running.
pub fn from_args(args: &ServeArgs, store: Arc<dyn Store>) -> Result<HostFatigue, String> {
    let handle = Handle::try_current()
        .map_err(|_| "fatigue::from_args must be called inside the tokio runtime".to_owned())?;
    let timeout = StdDuration::from_millis(args.fatigue_timeout_ms.max(1));
    Ok(match &args.redis_url {
        Some(url) => HostFatigue::Redis(Arc::new(RedisFatigue::connect(url, handle, timeout, "")?)),
        None if store.backend() == "sqlite" => HostFatigue::Memory(Arc::new(MemoryFatigue::new())),
        None => HostFatigue::Store(Arc::new(StoreFatigue::new(store, handle, timeout))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_cannot_reach_into_each_other() {
        assert_eq!(
            firings_key("", "acme", "dev-42", "large-pr"),
            "mmm:fatigue:acme:{dev-42}:pb:large-pr"
        );
        assert_eq!(
            budget_key("", "acme", "dev"),
            "mmm:fatigue:acme:{dev}:budget"
        );
        assert_eq!(
            firings_key("", "acme", "a}:pb:x", "y"),
            "mmm:fatigue:acme:{a%7D%3Apb%3Ax}:pb:y"
        );
        assert_eq!(redacted_url("redis://:secret@h:6379/0"), "redis://h:6379/0");
    }
}
