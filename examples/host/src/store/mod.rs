//! Storage: one [`Store`] trait over everything the host keeps, with two implementations
//! ([`sqlite::SqliteStore`], the embedded default, and [`postgres::PgStore`] for replicas)
//! that share their SQL (`sql.rs`) and differ only in connections, locking and change
//! notification.
//!
//! Every method takes the tenant explicitly: a document's tenant is a tenant id or
//! [`GLOBAL`] (`*`, all tenants). Listing methods take a [`Scope`]. Administrative
//! mutations take a [`NewAudit`] and write it in the same transaction as the change, so
//! nothing changes unaudited and no audit record describes a change that did not happen.

pub mod cache;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use mmm_engine::approval::{Approval, ApprovalError};
use mmm_engine::{FatigueRequest, FatigueVerdict, Status};
use serde::Serialize;
use serde_json::Value;

/// The tenant of documents that apply to every tenant.
pub const GLOBAL: &str = "*";

/// Which tenants' documents a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One tenant's own documents and the global ones.
    Tenant(&'a str),
    /// Exactly one tenant's documents (or only the global ones, with [`GLOBAL`]).
    Only(&'a str),
    /// Every tenant's (the platform operator's view).
    All,
}

/// A storage failure. Routes map it to problem details: `Conflict` → 409, `NotFound` →
/// 404, `Unavailable` → 503, `Internal` → 500 (logged, never shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The record exists already, or changed since it was read (a stale version).
    #[error("{0}")]
    Conflict(String),
    /// No such record.
    #[error("{0}")]
    NotFound(String),
    /// The database cannot be reached (connection refused, pool timed out).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt row.
    #[error("database error: {0}")]
    Internal(String),
}

/// A playbook version's metadata (everything but the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaybookMeta {
    /// The document's tenant, or `*`.
    pub tenant: String,
    /// Playbook id.
    pub id: String,
    /// Version.
    pub version: u32,
    /// The status that counts (the store's, not the one written in the text).
    pub status: Status,
    /// Who created it (the token's `sub`).
    pub author: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last status change.
    pub updated_at: Timestamp,
    /// When it was (last) published.
    pub published_at: Option<Timestamp>,
}

/// A playbook version with its YAML text as authored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybookVersion {
    /// Metadata.
    pub meta: PlaybookMeta,
    /// The YAML document, byte for byte as it was posted or imported.
    pub yaml: String,
}

/// An experiment document (SPEC §3) and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExperimentRecord {
    /// Tenant, or `*`.
    pub tenant: String,
    /// Experiment id.
    pub id: String,
    /// `active`, `paused` or `completed`: the store's, not the text's.
    pub status: String,
    /// The YAML document as authored.
    pub yaml: String,
    /// Who created it.
    pub author: String,
    /// Increases with every change; a write naming an older revision is refused.
    pub revision: i64,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A JSON document kept per key with a revision (preferences, tenant policy).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Versioned {
    /// The document.
    pub value: Value,
    /// Increases with every write; a write naming an older revision is refused.
    pub revision: i64,
    /// Last written.
    pub updated_at: Timestamp,
}

/// Where deliveries for one surface of a tenant go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryTarget {
    /// The surface (`ide`, `pr_comment`, …).
    pub surface: String,
    /// The webhook URL.
    pub url: String,
    /// The HMAC secret (never in audit records or logs).
    pub secret: String,
}

/// A webhook delivery in the delivery queue: one per (action, surface), queued with the
/// decision's receipt and sent by [`crate::delivery`]'s worker. The target's URL and
/// secret are read when sending, by (tenant, surface): the secret is never copied here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedDelivery {
    /// The delivery's id (`X-MMM-Delivery`).
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// The surface, whose target receives it.
    pub surface: String,
    /// The action (receivers dedupe by it).
    pub action_id: String,
    /// The decision that returned the action.
    pub decision_id: String,
    /// The exact JSON body sent (and signed).
    pub body: String,
    /// Attempts made (a wait behind an open breaker is none).
    pub attempts: u32,
    /// When it is due (while claimed: when the claim lapses).
    pub next_attempt_at: Timestamp,
    /// `pending`, `done` or `dead`.
    pub state: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Queued.
    pub created_at: Timestamp,
    /// The W3C `traceparent` of the decision that queued it (when traces are on): the
    /// parent of each attempt's `delivery.route` span.
    pub traceparent: Option<String>,
}

/// How a claimed delivery ended, for [`Store::finish_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver took it (2xx): `done`, one attempt more.
    Done,
    /// The attempt failed: one attempt more, due again at `at`.
    Retry {
        /// When to try again.
        at: Timestamp,
        /// What went wrong (no body, no secret).
        error: String,
    },
    /// Given up: `dead`. `attempted` says whether this was an attempt (the last one) or
    /// a delivery that could not be attempted at all (its target was removed).
    Dead {
        /// What went wrong.
        error: String,
        /// Whether an attempt was made.
        attempted: bool,
    },
    /// Not attempted (the target's breaker is open): due again at `at`, attempts unchanged.
    Release {
        /// When to look again.
        at: Timestamp,
        /// Why it waits.
        why: String,
    },
}

/// A signal an author saved in the console's decision explorer (a "recorded signal"),
/// replayed there and in a playbook version's shadow comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedSignal {
    /// Its tenant.
    pub tenant: String,
    /// Its id (a UUIDv7).
    pub id: String,
    /// The name the author gave it.
    pub name: String,
    /// The signal as JSON text (an envelope, or `{signal, context}`).
    pub signal: String,
    /// Who saved it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: Timestamp,
}

/// An action the host returned, remembered so outcomes and approvals can be checked
/// against it (tenant, actor) on any replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedAction {
    /// The action's id.
    pub action_id: String,
    /// Tenant.
    pub tenant: String,
    /// The actor it was offered to.
    pub actor_id: String,
    /// Playbook id.
    pub playbook_id: String,
    /// Playbook version.
    pub playbook_version: u32,
    /// `mirror`, `mentor` or `multiplier`.
    pub action_type: String,
    /// The experiment and variant that shaped it, if any.
    pub experiment: Option<(String, String)>,
    /// When it was decided.
    pub decided_at: Timestamp,
}

/// An approval still waiting for its channels, with the playbook of its action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenApproval {
    /// The approval.
    pub approval: Approval,
    /// The action's playbook (empty when the action is not stored).
    pub playbook_id: String,
    /// Its version (0 when the action is not stored).
    pub playbook_version: u32,
}

/// One outcome (SPEC §9) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeRecord {
    /// The action.
    pub action_id: String,
    /// Tenant.
    pub tenant: String,
    /// Playbook id.
    pub playbook_id: String,
    /// Action type, when the action is known.
    pub action_type: String,
    /// `accepted`, `dismissed`, …
    pub result: String,
    /// When it happened.
    pub at: Timestamp,
}

/// An increment of a per-tenant counter. Counters are aggregates: their labels name
/// playbooks, types, reasons, results or variants, never an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    /// What is counted: `decisions`, `actions` (playbook, type), `suppressed` (reason),
    /// `outcomes` (playbook, type, result), `exposures` (experiment, variant)…
    pub metric: String,
    /// Up to three label values, in the order the metric defines.
    pub labels: Vec<String>,
    /// The increment (or, when read, the sum).
    pub n: i64,
}

/// One stored receipt envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRow {
    /// The chain (one per replica).
    pub chain_id: String,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// The receipt's id (unique).
    pub receipt_id: String,
    /// The decision's tenant.
    pub tenant: String,
    /// The DSSE envelope as JSON text.
    pub envelope: String,
    /// When it was stored.
    pub stored_at: Timestamp,
}

/// A chain's state: its last stored position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainState {
    /// The chain.
    pub chain_id: String,
    /// Last stored `seq`.
    pub last_seq: u64,
    /// When it last grew.
    pub updated_at: Timestamp,
}

/// What decisions write, stored in one transaction (the decide route's group commit):
/// receipts in chain order, returned actions, approvals opened, per-tenant counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecisionBatch {
    /// Receipts, each chain's in `seq` order continuing its stored head.
    pub receipts: Vec<ReceiptRow>,
    /// Returned actions (ids already stored are ignored).
    pub actions: Vec<IssuedAction>,
    /// Approvals opened for dual-channel multiplier actions.
    pub approvals: Vec<Approval>,
    /// Counter increments: tenant, time (its hour bucket), counts.
    pub counts: Vec<(String, Timestamp, Vec<Count>)>,
    /// Fatigue firings the in-memory fatigue authority allowed (SQLite; see
    /// `fatigue::MemoryFatigue`), stored in the same transaction.
    pub fatigue: Vec<FatigueEvent>,
    /// Webhook deliveries of the returned actions (one per action and surface with a
    /// target; a repeat of a stored (action, surface) is ignored).
    pub deliveries: Vec<QueuedDelivery>,
    /// Signals a broker intake decided (`decided_signals`), so that a redelivery is
    /// skipped: written in the same transaction as the decisions' receipts.
    pub seen_signals: Vec<SeenSignal>,
}

/// How long a decided signal id is remembered (SPEC §13: "decided in the last 24 h").
pub const SEEN_WINDOW_MS: i64 = 24 * 3_600_000;

/// One signal a broker intake decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSignal {
    /// The signal's tenant.
    pub tenant: String,
    /// The signal's `signal_id`.
    pub signal_id: String,
    /// When it was decided (the host's clock).
    pub decided_at: Timestamp,
}

/// One firing of a playbook for an actor, as `fatigue_events` keeps it: `actions`
/// returned at `at`. With `prune_before` (ms), older rows of the same tenant, actor and
/// playbook are deleted with it (no window needs them any more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatigueEvent {
    /// Tenant.
    pub tenant: String,
    /// Actor.
    pub actor_id: String,
    /// Playbook.
    pub playbook_id: String,
    /// When it fired (the decision's `now`).
    pub at: Timestamp,
    /// Actions returned (they count against the actor budget).
    pub actions: u32,
    /// Rows of this playbook and actor at or before this instant (ms) are dropped.
    pub prune_before: Option<i64>,
}

impl DecisionBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
            && self.actions.is_empty()
            && self.approvals.is_empty()
            && self.counts.is_empty()
            && self.fatigue.is_empty()
            && self.seen_signals.is_empty()
            && self.deliveries.is_empty()
    }
}

/// An audit record to write with a mutation. Build it with [`NewAudit::new`], which
/// redacts `before` and `after`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// When.
    pub at: Timestamp,
    /// The tenant whose data changed (`*` for global documents).
    pub tenant: String,
    /// The caller (the token's `sub`).
    pub sub: String,
    /// What was done: `playbook.created`, `playbook.published`, `tenant_policy.updated`…
    pub action: String,
    /// Which object (`large-pr@3`, an actor id, an experiment id).
    pub subject: String,
    /// The object before, redacted.
    pub before: Value,
    /// The object after, redacted.
    pub after: Value,
}

/// Keys whose values never reach the audit log, at any depth: secrets, and payloads or
/// document text (an audit record says what changed, not what a signal or playbook said).
const REDACTED_KEYS: &[&str] = &[
    "secret",
    "password",
    "token",
    "api_key",
    "authorization",
    "signing_key",
    "payload",
    "yaml",
    "text",
    "source_code",
    "diff",
    "patch",
    "email",
];

/// Replaces the values of secret and payload keys (see [`REDACTED_KEYS`]), at any
/// depth, with `"[redacted]"`.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if REDACTED_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                        (k, Value::String("[redacted]".to_owned()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

impl NewAudit {
    /// An audit record; `before` and `after` are redacted here, so no caller can forget.
    pub fn new(
        at: Timestamp,
        tenant: &str,
        sub: &str,
        action: &str,
        subject: &str,
        before: Value,
        after: Value,
    ) -> Self {
        NewAudit {
            at,
            tenant: tenant.to_owned(),
            sub: sub.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            before: redact(before),
            after: redact(after),
        }
    }
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Position in the log (increasing).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Tenant.
    pub tenant: String,
    /// Who.
    pub sub: String,
    /// What.
    pub action: String,
    /// Which object.
    pub subject: String,
    /// Before, redacted.
    pub before: Value,
    /// After, redacted.
    pub after: Value,
}

/// Everything the host stores. Implementations must be safe to share between tasks and
/// replicas: every check-then-write happens in one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// How often the in-memory cache of what decide reads answered, when the store keeps
    /// one (SQLite: [`cache::ContextCache`]); `None` when it reads the database every time.
    fn cache_counts(&self) -> Option<cache::CacheCounts>;

    /// Whether the database answers (for `/ready`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the connections (at shutdown, after the last write); every later call
    /// answers [`StoreError::Unavailable`].
    async fn close(&self);

    /// Starts delivering change notifications from other replicas to `on_change`
    /// (PostgreSQL `LISTEN`; nothing on SQLite, where replicas poll the revision).
    async fn watch(&self, on_change: Arc<tokio::sync::Notify>) -> Result<(), StoreError>;

    // ---- playbooks -------------------------------------------------------------------

    /// A counter that increases whenever the playbook set (playbooks or experiments)
    /// changes, so replicas notice.
    async fn playbook_revision(&self) -> Result<i64, StoreError>;

    /// Stores a new version. [`StoreError::Conflict`] when (tenant, id, version) exists.
    async fn insert_playbook(
        &self,
        version: &PlaybookVersion,
        audit: &NewAudit,
    ) -> Result<(), StoreError>;

    /// Imports versions on first start: all of them in one transaction, and only when the
    /// store holds no playbook yet (so two replicas starting together import once).
    /// Returns how many were imported (0 when the store was not empty).
    async fn import_playbooks(
        &self,
        versions: &[PlaybookVersion],
        audit: &NewAudit,
    ) -> Result<usize, StoreError>;

    /// One version.
    async fn get_playbook(
        &self,
        tenant: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<PlaybookVersion>, StoreError>;

    /// Every version's metadata in scope, ordered by tenant, id and version; `id`
    /// narrows it to one playbook.
    async fn list_playbooks(
        &self,
        scope: Scope<'_>,
        id: Option<&str>,
    ) -> Result<Vec<PlaybookMeta>, StoreError>;

    /// Every published version of every tenant, with its text: what the live set is
    /// compiled from.
    async fn published_playbooks(&self) -> Result<Vec<PlaybookVersion>, StoreError>;

    /// Moves a version from `from` to `to` (and bumps the revision). Refused with
    /// [`StoreError::Conflict`] when its status is no longer `from` (a stale request).
    async fn set_playbook_status(
        &self,
        tenant: &str,
        id: &str,
        version: u32,
        from: Status,
        to: Status,
        audit: &NewAudit,
    ) -> Result<PlaybookMeta, StoreError>;

    /// Deletes a draft; [`StoreError::Conflict`] for any other status.
    async fn delete_playbook_draft(
        &self,
        tenant: &str,
        id: &str,
        version: u32,
        audit: &NewAudit,
    ) -> Result<(), StoreError>;

    // ---- experiments -----------------------------------------------------------------

    /// Stores a new experiment (bumps the revision); [`StoreError::Conflict`] when the
    /// id exists for that tenant.
    async fn insert_experiment(
        &self,
        experiment: &ExperimentRecord,
        audit: &NewAudit,
    ) -> Result<ExperimentRecord, StoreError>;

    /// One experiment.
    async fn get_experiment(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExperimentRecord>, StoreError>;

    /// Experiments in scope, ordered by tenant and id.
    async fn list_experiments(&self, scope: Scope<'_>)
        -> Result<Vec<ExperimentRecord>, StoreError>;

    /// Replaces an experiment's text and status when its revision is still
    /// `expected_revision` (else [`StoreError::Conflict`]); bumps the set's revision.
    async fn update_experiment(
        &self,
        tenant: &str,
        id: &str,
        expected_revision: i64,
        yaml: &str,
        status: &str,
        audit: &NewAudit,
    ) -> Result<ExperimentRecord, StoreError>;

    // ---- preferences, tenant policy, delivery targets ---------------------------------

    /// An actor's §2 `preferences` object.
    async fn get_preferences(
        &self,
        tenant: &str,
        actor_id: &str,
    ) -> Result<Option<Versioned>, StoreError>;

    /// Writes an actor's preferences. With `expected_revision`, refused with
    /// [`StoreError::Conflict`] unless the stored revision is that one (0: none stored).
    async fn put_preferences(
        &self,
        tenant: &str,
        actor_id: &str,
        value: &Value,
        expected_revision: Option<i64>,
        audit: &NewAudit,
    ) -> Result<Versioned, StoreError>;

    /// A tenant's §2 `tenant_policy` object.
    async fn get_tenant_policy(&self, tenant: &str) -> Result<Option<Versioned>, StoreError>;

    /// Writes a tenant's policy, as [`Store::put_preferences`].
    async fn put_tenant_policy(
        &self,
        tenant: &str,
        value: &Value,
        expected_revision: Option<i64>,
        audit: &NewAudit,
    ) -> Result<Versioned, StoreError>;

    /// A tenant's delivery targets, by surface.
    async fn get_delivery_targets(&self, tenant: &str) -> Result<Vec<DeliveryTarget>, StoreError>;

    /// Replaces a tenant's delivery targets.
    async fn put_delivery_targets(
        &self,
        tenant: &str,
        targets: &[DeliveryTarget],
        audit: &NewAudit,
    ) -> Result<(), StoreError>;

    // ---- the delivery queue --------------------------------------------------------------

    /// Claims up to `limit` pending deliveries due at `now`, oldest due first, for the
    /// claim `token`: they are due again at `lease_until` (when the claim lapses, if the
    /// claimant vanished). Replicas never claim the same row twice within a lease
    /// (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer).
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        token: &str,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>, StoreError>;

    /// Records how a claimed delivery ended, at `at`. Returns false (and changes
    /// nothing) when the claim `token` no longer holds it (the lease lapsed and another
    /// claim took it).
    async fn finish_delivery(
        &self,
        id: &str,
        token: &str,
        result: &DeliveryResult,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Deliveries waiting (`pending`: due, backing off, or claimed).
    async fn delivery_queue_depth(&self) -> Result<u64, StoreError>;

    /// The tenant's deliveries, newest first, at most `limit`; `state` narrows to one
    /// state (`dead`, say).
    async fn list_deliveries(
        &self,
        tenant: &str,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>, StoreError>;

    /// Deletes `done` deliveries last changed before `before`; returns how many. Dead
    /// ones are kept for operators.
    async fn prune_deliveries(&self, before: Timestamp) -> Result<u64, StoreError>;

    // ---- decisions: actions, approvals, outcomes, counters ------------------------------

    /// Remembers returned actions (ignores ids already stored).
    async fn record_actions(&self, actions: &[IssuedAction]) -> Result<(), StoreError>;

    /// One returned action of the tenant.
    async fn get_action(
        &self,
        tenant: &str,
        action_id: &str,
    ) -> Result<Option<IssuedAction>, StoreError>;

    /// The actions returned to one actor of the tenant, newest first, at most `limit`
    /// (the console's "what I was shown").
    async fn actions_of_actor(
        &self,
        tenant: &str,
        actor_id: &str,
        limit: u32,
    ) -> Result<Vec<IssuedAction>, StoreError>;

    // ---- recorded signals (the console) ---------------------------------------------

    /// Saves a recorded signal; [`StoreError::Conflict`] when its tenant has `max`
    /// already, or its id exists.
    async fn record_signal(&self, signal: &RecordedSignal, max: u32) -> Result<(), StoreError>;

    /// The tenant's recorded signals, newest first, at most `limit`.
    async fn list_recorded_signals(
        &self,
        tenant: &str,
        limit: u32,
    ) -> Result<Vec<RecordedSignal>, StoreError>;

    /// One recorded signal of the tenant.
    async fn get_recorded_signal(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<RecordedSignal>, StoreError>;

    /// Deletes a recorded signal of the tenant; whether there was one.
    async fn delete_recorded_signal(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// Stores a new approval; [`StoreError::Conflict`] when its id exists.
    async fn insert_approval(&self, approval: &Approval) -> Result<(), StoreError>;

    /// An approval of the tenant, by its id.
    async fn get_approval(
        &self,
        tenant: &str,
        approval_id: &str,
    ) -> Result<Option<Approval>, StoreError>;

    /// The approval of the tenant's action.
    async fn get_approval_for_action(
        &self,
        tenant: &str,
        action_id: &str,
    ) -> Result<Option<Approval>, StoreError>;

    /// The tenant's open approvals (`pending` or `partially_approved`, expiring after
    /// `now`), soonest to expire first, at most `limit`, each with the playbook of its
    /// action (the console's overview).
    async fn open_approvals(
        &self,
        tenant: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<OpenApproval>, StoreError>;

    /// Atomically replaces an approval with `change(current)` when that returns `Ok`
    /// (the core's `ApprovalStore::update` contract); the row is locked meanwhile.
    async fn update_approval(
        &self,
        tenant: &str,
        approval_id: &str,
        change: &mut (dyn for<'a> FnMut(&'a Approval) -> Result<Approval, ApprovalError> + Send),
    ) -> Result<Approval, ApprovalError>;

    /// Stores an outcome and, when it is new, adds `counts` at its time (outcome counts,
    /// experiment statistics) in the same transaction. Returns false for a repeat of a
    /// stored (action, result), which changes nothing.
    async fn record_outcome(
        &self,
        outcome: &OutcomeRecord,
        counts: &[Count],
    ) -> Result<bool, StoreError>;

    /// Adds to the tenant's counters in the hour of `at`.
    async fn add_counts(
        &self,
        tenant: &str,
        at: Timestamp,
        counts: &[Count],
    ) -> Result<(), StoreError>;

    /// Sums of the tenant's counters over `[since, until)` (hour buckets), by metric and
    /// labels; `metric` narrows to one.
    async fn counts(
        &self,
        tenant: &str,
        metric: Option<&str>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Count>, StoreError>;

    // ---- receipts ----------------------------------------------------------------------

    /// Appends receipts in one transaction (a group commit) and advances their chains.
    /// [`StoreError::Conflict`] when a (chain, seq) or receipt id exists; nothing is
    /// stored then.
    async fn append_receipts(&self, receipts: &[ReceiptRow]) -> Result<(), StoreError>;

    /// A chain's last stored receipt, to resume signing after a restart.
    async fn chain_head(&self, chain_id: &str) -> Result<Option<ReceiptRow>, StoreError>;

    /// Every chain's state.
    async fn chains(&self) -> Result<Vec<ChainState>, StoreError>;

    /// Receipts in chain order (chain id, then seq), after `after_seq` within `chain_id`
    /// when given; `tenant` narrows to one tenant's receipts.
    async fn list_receipts(
        &self,
        tenant: Option<&str>,
        chain_id: Option<&str>,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<ReceiptRow>, StoreError>;

    /// Receipts not yet forwarded to ERIS, oldest first.
    async fn unforwarded_receipts(&self, limit: u32) -> Result<Vec<ReceiptRow>, StoreError>;

    /// How many receipts are not yet forwarded to ERIS (`mmm_outbox_depth`).
    async fn count_unforwarded_receipts(&self) -> Result<u64, StoreError>;

    /// Marks receipts as forwarded.
    async fn mark_forwarded(&self, receipt_ids: &[String], at: Timestamp)
        -> Result<(), StoreError>;

    // ---- audit -------------------------------------------------------------------------

    /// Writes an audit record on its own (for mutations outside the store).
    async fn append_audit(&self, audit: &NewAudit) -> Result<(), StoreError>;

    /// Audit records in scope at or after `since`, oldest first, at most `limit`, after
    /// the record `after_id` (for paging).
    async fn list_audit(
        &self,
        scope: Scope<'_>,
        since: Timestamp,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    // ---- intake dedupe and fatigue ------------------------------------------------------

    /// Records that a signal was decided at `at`. Returns false when the same
    /// (tenant, signal id) was decided within the 24 hours before `at` (do not decide it
    /// again); an older record is replaced.
    async fn mark_signal_decided(
        &self,
        tenant: &str,
        signal_id: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Whether (tenant, signal id) was decided at or after `since` (a broker intake's
    /// check before deciding; the marker itself is written with the decision, see
    /// [`DecisionBatch::seen_signals`]).
    async fn signal_decided_since(
        &self,
        tenant: &str,
        signal_id: &str,
        since: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Deletes decided-signal records older than `before`; returns how many.
    async fn prune_decided_signals(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// The fatigue port's atomic check-and-record (SPEC §4): cooldown, `max`/`window` and
    /// the actor budget judged and the firing recorded in one transaction, serialised per
    /// actor, so two concurrent decisions never both pass a limit of one.
    async fn fatigue_check_and_record(
        &self,
        request: &FatigueRequest<'_>,
    ) -> Result<FatigueVerdict, StoreError>;

    /// Records a firing that happened elsewhere.
    async fn fatigue_record(
        &self,
        tenant: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), StoreError>;

    // ---- decisions, group-committed -----------------------------------------------------

    /// Writes what a group of decisions produced in one transaction: receipts (as
    /// [`Store::append_receipts`]: each chain continues without a gap, else
    /// [`StoreError::Conflict`] and nothing is stored), actions (as
    /// [`Store::record_actions`]), approvals and counters.
    async fn record_decisions(&self, batch: &DecisionBatch) -> Result<(), StoreError>;

    /// Every stored fatigue firing, oldest first (to load the in-memory fatigue
    /// authority on start).
    async fn load_fatigue(&self) -> Result<Vec<FatigueEvent>, StoreError>;
}

/// How long fatigue history is kept when a request names no longer window (as the
/// core's in-memory store: enough for any cooldown).
pub(crate) const FATIGUE_RETENTION_MS: i64 = 30 * 86_400_000;

/// The fatigue verdict for `req` given the actor's stored history: the firings of this
/// playbook and the (time, actions) returned across playbooks, both in milliseconds.
/// The same rules as the core's `InMemoryFatigue`: entries count by their distance from
/// `now` on either side (one after `now` is a concurrent decision's, whose check ran
/// first); a critical playbook ignores the budget but its actions count.
pub(crate) fn fatigue_verdict(
    req: &FatigueRequest<'_>,
    firings: &[i64],
    actions: &[(i64, u32)],
) -> FatigueVerdict {
    let now = req.now.as_millisecond();
    // Entries count by their distance from `now`, on either side: one after `now` is a
    // concurrent decision's (its `now` a little later, its check first).
    let within = |t: i64, span: i64| now.saturating_sub(span) < t && t < now.saturating_add(span);
    if let Some(cooldown) = req.cooldown {
        if firings.iter().any(|t| within(*t, cooldown.as_millis())) {
            return FatigueVerdict::Cooldown;
        }
    }
    if let Some((max, window)) = req.max {
        let in_window = firings
            .iter()
            .filter(|t| within(**t, window.as_millis()))
            .count();
        if in_window >= usize::try_from(max).unwrap_or(usize::MAX) {
            return FatigueVerdict::Max;
        }
    }
    let mut allowed = req.actions;
    if let (Some((max, window)), false) = (req.budget, req.critical) {
        let used: u32 = actions
            .iter()
            .filter(|(t, _)| within(*t, window.as_millis()))
            .map(|(_, n)| *n)
            .fold(0u32, u32::saturating_add);
        let room = max.saturating_sub(used);
        if room == 0 {
            return FatigueVerdict::Budget;
        }
        allowed = allowed.min(room);
    }
    FatigueVerdict::Allowed(allowed)
}

/// How far back a fatigue request needs history.
pub(crate) fn fatigue_horizon_ms(req: &FatigueRequest<'_>) -> i64 {
    req.cooldown
        .map(|d| d.as_millis())
        .into_iter()
        .chain(req.max.map(|(_, w)| w.as_millis()))
        .chain(req.budget.map(|(_, w)| w.as_millis()))
        .max()
        .unwrap_or(0)
        .max(FATIGUE_RETENTION_MS)
}

/// Connects to the database `url` names (`sqlite://…` or `postgres://…`) and migrates it.
///
/// # Errors
/// [`StoreError::Unavailable`] when it cannot connect; [`StoreError::Internal`] for an
/// unknown scheme or a failed migration.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::connect(url, None).await?))
    } else {
        Err(StoreError::Internal(format!(
            "database url `{}` is neither `sqlite://…` nor `postgres://…`",
            url.split(':').next().unwrap_or("")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_engine::Duration;
    use serde_json::json;

    fn req(now_ms: i64) -> FatigueRequest<'static> {
        FatigueRequest {
            tenant_id: "acme",
            actor_id: "dev",
            playbook_id: "pb",
            now: Timestamp::from_millisecond(now_ms).unwrap(),
            actions: 2,
            cooldown: None,
            max: None,
            budget: None,
            critical: false,
        }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn verdicts_follow_the_cores_rules() {
        let hour = Duration::parse("1h").unwrap();
        let cooldown = FatigueRequest {
            cooldown: Some(hour),
            ..req(10 * H)
        };
        assert_eq!(
            fatigue_verdict(&cooldown, &[9 * H + 1], &[]),
            FatigueVerdict::Cooldown
        );
        assert_eq!(
            fatigue_verdict(&cooldown, &[9 * H], &[]),
            FatigueVerdict::Allowed(2)
        );
        // A firing recorded after `now` (a concurrent decision's) counts, until a whole
        // cooldown after it.
        assert_eq!(
            fatigue_verdict(&cooldown, &[10 * H + 1], &[]),
            FatigueVerdict::Cooldown
        );
        assert_eq!(
            fatigue_verdict(&cooldown, &[11 * H], &[]),
            FatigueVerdict::Allowed(2)
        );
        let max = FatigueRequest {
            max: Some((1, hour)),
            ..req(10 * H)
        };
        assert_eq!(
            fatigue_verdict(&max, &[9 * H + 1], &[]),
            FatigueVerdict::Max
        );
        let budget = FatigueRequest {
            budget: Some((3, hour)),
            ..req(10 * H)
        };
        assert_eq!(
            fatigue_verdict(&budget, &[], &[(9 * H + 1, 2)]),
            FatigueVerdict::Allowed(1)
        );
        assert_eq!(
            fatigue_verdict(&budget, &[], &[(9 * H + 1, 3)]),
            FatigueVerdict::Budget
        );
        let critical = FatigueRequest {
            critical: true,
            ..budget
        };
        assert_eq!(
            fatigue_verdict(&critical, &[], &[(9 * H + 1, 3)]),
            FatigueVerdict::Allowed(2)
        );
    }

    #[test]
    fn redaction_reaches_every_depth_and_keeps_the_rest() {
        let value = json!({"url": "https://x", "secret": "s3", "surfaces": {"ide": {"Secret": "x", "url": "u"}},
                           "list": [{"payload": {"a": 1}}], "status": "published"});
        assert_eq!(
            redact(value),
            json!({"url": "https://x", "secret": "[redacted]", "surfaces": {"ide": {"Secret": "[redacted]", "url": "u"}},
                   "list": [{"payload": "[redacted]"}], "status": "published"})
        );
    }
}
