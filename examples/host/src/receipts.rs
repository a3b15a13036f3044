//! What decisions write, with group commit: each decision's receipt (in its chain's
//! order), its returned actions, the approvals it opened and its tenant counters go to the
//! [`DecisionLog`], which writes whatever arrived within a short linger in one transaction
//! ([`Store::record_decisions`]) and then answers every decision of the batch. The decide
//! route answers only after its record is committed: a 200 means the receipt is on disk.
//!
//! Receipts are signed by the engine (signing key, no receipts port: the envelope comes
//! back in the decision) in `seq` order, but decisions finish in any order: the log holds
//! a receipt that arrives before its predecessor until the predecessor is there, so each
//! batch continues the chain without a gap. A failed commit keeps the batch and retries
//! it (the decisions waiting on it answer 503 at once); a chain that conflicts with the
//! store (another process writing the same chain) or that lost a receipt stops the log:
//! every later decision answers 503 rather than going out unaudited.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mmm_engine::approval::Approval;
use mmm_engine::receipt::{decode_base64, Envelope, VerifyingKey};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::fatigue::FatigueJournal;
use crate::store::{
    Count, DecisionBatch, FatigueEvent, IssuedAction, QueuedDelivery, ReceiptRow, SeenSignal,
    Store, StoreError,
};

/// Most records one transaction writes.
pub const MAX_BATCH: usize = 1024;

/// Most records held (waiting for their commit or a retry) before decisions are refused
/// with 503: memory stays bounded while the database is away.
pub const MAX_BACKLOG: usize = 20_000;

/// How long a receipt may wait for its chain predecessor before the log stops (the
/// predecessor is lost only if a decision panicked after signing).
pub const GAP_TIMEOUT: Duration = Duration::from_secs(5);

/// What one decision writes.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// The receipt, when signing is on.
    pub receipt: Option<ReceiptRow>,
    /// Returned actions.
    pub actions: Vec<IssuedAction>,
    /// Approvals opened.
    pub approvals: Vec<Approval>,
    /// The tenant, time and counter increments.
    pub counts: (String, Timestamp, Vec<Count>),
    /// The signal's decided marker, when a broker intake decided it (committed with the
    /// receipt: a redelivery after a crash before the broker's ack is skipped).
    pub seen_signal: Option<SeenSignal>,
    /// Webhook deliveries queued for the returned actions ([`crate::delivery`]).
    pub deliveries: Vec<QueuedDelivery>,
}

/// The chain this process signs.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Chain id (the replica id).
    pub id: String,
    /// The `seq` the next receipt will have.
    pub next_seq: u64,
    /// The key receipts verify with.
    pub public_key: VerifyingKey,
}

/// The `chain.seq` of a signed envelope.
pub fn envelope_seq(envelope: &Envelope) -> Option<u64> {
    let bytes = decode_base64(&envelope.payload)?;
    let payload: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    payload.get("chain")?.get("seq")?.as_u64()
}

type Done = oneshot::Sender<Result<(), StoreError>>;

enum Msg {
    Record(Box<DecisionRecord>, Done),
    Flush(oneshot::Sender<()>),
}

struct Entry {
    record: Box<DecisionRecord>,
    done: Option<Done>,
}

impl Entry {
    fn answer(&mut self, result: Result<(), StoreError>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
    }
}

/// The group committer's handle. Cheap to share; [`DecisionLog::submit`] may be called
/// from any thread (the engine's blocking threads do).
pub struct DecisionLog {
    tx: mpsc::UnboundedSender<Msg>,
    backlog: Arc<AtomicUsize>,
    broken: Arc<AtomicBool>,
    chain: Option<Chain>,
    linger: Duration,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("backlog", &self.backlog())
            .field("chain", &self.chain.as_ref().map(|c| &c.id))
            .finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// Starts the committer on the current tokio runtime. `chain` is the chain the engine
    /// signs (none when receipts are disabled); `linger` how long a batch waits for more.
    pub fn start(store: Arc<dyn Store>, chain: Option<Chain>, linger: Duration) -> Arc<Self> {
        DecisionLog::start_with_journal(store, chain, linger, None)
    }

    /// As [`DecisionLog::start`], also writing the fatigue firings of `journal` (the
    /// in-memory fatigue authority's) with each batch: a firing pushed before a decision
    /// is submitted is committed with that decision or before it.
    pub fn start_with_journal(
        store: Arc<dyn Store>,
        chain: Option<Chain>,
        linger: Duration,
        journal: Option<Arc<FatigueJournal>>,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let broken = Arc::new(AtomicBool::new(false));
        let committer = Committer {
            store,
            rx,
            linger,
            next_seq: chain.as_ref().map(|c| c.next_seq),
            chain_id: chain.as_ref().map(|c| c.id.clone()),
            ready: Vec::new(),
            waiting: BTreeMap::new(),
            waiting_since: None,
            flushes: Vec::new(),
            backlog: Arc::clone(&backlog),
            broken: Arc::clone(&broken),
            journal,
            fatigue: Vec::new(),
            carried: 0,
        };
        tokio::spawn(committer.run());
        Arc::new(DecisionLog {
            tx,
            backlog,
            broken,
            chain,
            linger,
        })
    }

    /// How long a batch waits for more decisions.
    pub fn linger(&self) -> Duration {
        self.linger
    }

    /// The chain receipts are signed on, when signing is on.
    pub fn chain(&self) -> Option<&Chain> {
        self.chain.as_ref()
    }

    /// Records held and not yet committed.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Acquire)
    }

    /// Why new decisions must not be taken now, if they must not: the log is stopped (a
    /// chain conflict) or holds too much.
    pub fn refuses(&self) -> Option<&'static str> {
        if self.broken.load(Ordering::Acquire) {
            Some("the receipt chain cannot continue (a conflict with the store, or a lost receipt); decisions are refused until the host restarts (with its own `--replica-id`)")
        } else if self.backlog() >= MAX_BACKLOG {
            Some("too many decisions wait for the database; try again shortly")
        } else {
            None
        }
    }

    /// Hands a decision's record to the committer; the receiver answers once it is
    /// committed (or the commit failed).
    pub fn submit(&self, record: DecisionRecord) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done, rx) = oneshot::channel();
        self.backlog.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(Msg::Record(_, done))) =
            self.tx.send(Msg::Record(Box::new(record), done))
        {
            self.backlog.fetch_sub(1, Ordering::AcqRel);
            let _ = done.send(Err(StoreError::Unavailable(
                "the decision log has stopped".to_owned(),
            )));
        }
        rx
    }

    /// Waits until everything submitted so far is committed (retrying failed batches),
    /// for at most `bound`. Returns false when something is left.
    pub async fn flush(&self, bound: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return self.backlog() == 0;
        }
        matches!(tokio::time::timeout(bound, rx).await, Ok(Ok(()))) && self.backlog() == 0
    }
}

struct Committer {
    store: Arc<dyn Store>,
    rx: mpsc::UnboundedReceiver<Msg>,
    linger: Duration,
    chain_id: Option<String>,
    /// The seq the next receipt must have to join `ready`.
    next_seq: Option<u64>,
    /// In commit order.
    ready: Vec<Entry>,
    /// Receipts that arrived before their predecessor, by seq.
    waiting: BTreeMap<u64, Entry>,
    waiting_since: Option<Instant>,
    flushes: Vec<oneshot::Sender<()>>,
    backlog: Arc<AtomicUsize>,
    broken: Arc<AtomicBool>,
    /// The in-memory fatigue authority's firings to write.
    journal: Option<Arc<FatigueJournal>>,
    /// Firings taken from the journal and not committed yet.
    fatigue: Vec<FatigueEvent>,
    /// How many of `fatigue` were in a failed attempt (which may have committed although
    /// its answer was lost).
    carried: usize,
}

/// What woke the idle committer.
enum Woke {
    Msg(Option<Msg>),
    Journal,
    GapTimeout,
}

impl Committer {
    /// Whether fatigue firings wait to be written.
    fn has_fatigue(&self) -> bool {
        !self.fatigue.is_empty() || self.journal.as_ref().is_some_and(|j| !j.is_empty())
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Flush(done) => self.flushes.push(done),
            Msg::Record(record, done) => {
                let mut entry = Entry {
                    record,
                    done: Some(done),
                };
                if self.broken.load(Ordering::Acquire) {
                    self.drop_entry(&mut entry, "the decision log has stopped");
                    return;
                }
                let seq = entry.record.receipt.as_ref().map(|r| r.seq);
                match (seq, self.next_seq) {
                    (Some(seq), Some(next)) if seq == next => {
                        self.ready.push(entry);
                        self.next_seq = Some(next + 1);
                        self.promote();
                    }
                    (Some(seq), Some(next)) if seq > next => {
                        self.waiting_since.get_or_insert_with(Instant::now);
                        self.waiting.insert(seq, entry);
                    }
                    (Some(seq), _) => {
                        tracing::error!(seq, chain = ?self.chain_id, "a receipt arrived out of its chain; refused");
                        self.drop_entry(&mut entry, "the receipt does not continue its chain");
                    }
                    (None, _) => self.ready.push(entry),
                }
            }
        }
    }

    fn drop_entry(&self, entry: &mut Entry, why: &str) {
        self.backlog.fetch_sub(1, Ordering::AcqRel);
        entry.answer(Err(StoreError::Unavailable(why.to_owned())));
    }

    /// Moves receipts whose predecessor is now ready.
    fn promote(&mut self) {
        while let Some(next) = self.next_seq {
            let Some(entry) = self.waiting.remove(&next) else {
                break;
            };
            self.ready.push(entry);
            self.next_seq = Some(next + 1);
        }
        if self.waiting.is_empty() {
            self.waiting_since = None;
        } else {
            self.waiting_since = Some(Instant::now());
        }
    }

    /// When a receipt has waited too long for its predecessor, the chain cannot continue
    /// (the predecessor is lost): the log stops, failing closed, and the waiting
    /// decisions answer 503. A restart resumes the chain after its stored head.
    fn expire_waiting(&mut self) {
        if self
            .waiting_since
            .is_some_and(|since| since.elapsed() >= GAP_TIMEOUT)
        {
            tracing::error!(next_seq = ?self.next_seq, waiting = self.waiting.len(), "a receipt's predecessor never arrived; refusing decisions until the host restarts");
            self.broken.store(true, Ordering::Release);
            for mut entry in std::mem::take(&mut self.waiting).into_values() {
                self.drop_entry(&mut entry, "the receipt chain has a gap");
            }
            self.waiting_since = None;
        }
    }

    fn answer_flushes(&mut self) {
        if self.ready.is_empty() && !self.has_fatigue() {
            for f in self.flushes.drain(..) {
                let _ = f.send(());
            }
        }
    }

    async fn run(mut self) {
        let mut closed = false;
        let mut backoff = Duration::from_millis(50);
        loop {
            self.answer_flushes();
            if self.ready.is_empty() && !self.has_fatigue() {
                if closed {
                    return;
                }
                let waiting = !self.waiting.is_empty();
                let rx = &mut self.rx;
                let recv = async move {
                    if waiting {
                        match tokio::time::timeout(GAP_TIMEOUT, rx.recv()).await {
                            Ok(msg) => Woke::Msg(msg),
                            Err(_) => Woke::GapTimeout,
                        }
                    } else {
                        Woke::Msg(rx.recv().await)
                    }
                };
                let woke = match self.journal.clone() {
                    Some(journal) => tokio::select! {
                        woke = recv => woke,
                        () = journal.woken() => Woke::Journal,
                    },
                    None => recv.await,
                };
                match woke {
                    Woke::GapTimeout => {
                        self.expire_waiting();
                        continue;
                    }
                    Woke::Journal => {}
                    Woke::Msg(Some(msg)) => self.take(msg),
                    Woke::Msg(None) => closed = true,
                }
                self.expire_waiting();
                if self.ready.is_empty() && !self.has_fatigue() {
                    continue;
                }
            }
            // Linger: let concurrent decisions join this batch.
            let until = Instant::now() + self.linger;
            while !closed && self.ready.len() < MAX_BATCH {
                match tokio::time::timeout_at(until, self.rx.recv()).await {
                    Ok(Some(msg)) => self.take(msg),
                    Ok(None) => closed = true,
                    Err(_) => break,
                }
            }
            let n = self.ready.len().min(MAX_BATCH);
            let mut batch = batch(self.ready.get(..n).unwrap_or_default());
            // Taken after the batch's decisions arrived: each pushed its firings before
            // it was submitted, so they are all here (or in `fatigue` from before).
            if let Some(journal) = &self.journal {
                self.fatigue.extend(journal.take());
            }
            batch.fatigue = std::mem::take(&mut self.fatigue);
            let started = Instant::now();
            let result = self.store.record_decisions(&batch).await;
            tracing::debug!(
                records = n,
                elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                ok = result.is_ok(),
                "decision batch"
            );
            match result {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    self.carried = 0;
                    self.committed(n);
                }
                Err(StoreError::Conflict(why)) => {
                    // An earlier attempt committed although its answer was lost (or the
                    // chain is broken): its firings are stored, the later ones are not.
                    let carried = self.carried.min(batch.fatigue.len());
                    self.fatigue = batch.fatigue.split_off(carried);
                    self.carried = 0;
                    if self.stored_already(&batch).await {
                        self.committed(n);
                    } else if batch.receipts.is_empty() {
                        // No chain involved: a retry of a batch whose commit went through
                        // although its answer was lost. Its decisions answer 503; nothing
                        // else is held up.
                        tracing::warn!(error = %why, records = n, "a batch of decision records conflicts with the store; dropped");
                        for mut e in self.ready.drain(..n).collect::<Vec<_>>() {
                            self.drop_entry(&mut e, "the decision records conflict with the store");
                        }
                    } else {
                        tracing::error!(error = %why, chain = ?self.chain_id, "the receipt chain conflicts with the store; refusing decisions");
                        self.broken.store(true, Ordering::Release);
                        let mut all: Vec<Entry> = self.ready.drain(..).collect();
                        all.extend(std::mem::take(&mut self.waiting).into_values());
                        for mut e in all {
                            self.drop_entry(&mut e, "the receipt chain conflicts with the store");
                        }
                    }
                }
                Err(e) => {
                    self.fatigue = std::mem::take(&mut batch.fatigue);
                    self.carried = self.fatigue.len();
                    tracing::warn!(error = %e, records = n, "committing decisions failed; retrying");
                    for entry in self.ready.iter_mut().take(n) {
                        entry.answer(Err(e.clone()));
                    }
                    // Keep the batch (its receipts are signed: the chain continues with
                    // them) and retry it, without holding up a flush longer than asked.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    fn committed(&mut self, n: usize) {
        for mut entry in self.ready.drain(..n) {
            self.backlog.fetch_sub(1, Ordering::AcqRel);
            entry.answer(Ok(()));
        }
    }

    /// After a conflict: whether the batch's receipts are in the store already (an
    /// earlier attempt committed although its answer was lost).
    async fn stored_already(&self, batch: &DecisionBatch) -> bool {
        let (Some(last), Some(chain)) = (batch.receipts.last(), &self.chain_id) else {
            return false;
        };
        match self.store.chain_head(chain).await {
            Ok(Some(head)) if head.seq == last.seq => head.receipt_id == last.receipt_id,
            _ => false,
        }
    }
}

/// Counter sums by metric and labels.
type Sums = BTreeMap<(String, Vec<String>), i64>;

/// The batch of `entries`, counters summed per tenant and hour.
fn batch(entries: &[Entry]) -> DecisionBatch {
    let mut out = DecisionBatch::default();
    let mut counts: BTreeMap<(String, i64), (Timestamp, Sums)> = BTreeMap::new();
    for e in entries {
        let r = &e.record;
        out.receipts.extend(r.receipt.iter().cloned());
        out.actions.extend(r.actions.iter().cloned());
        out.approvals.extend(r.approvals.iter().cloned());
        out.seen_signals.extend(r.seen_signal.iter().cloned());
        out.deliveries.extend(r.deliveries.iter().cloned());
        let (tenant, at, list) = &r.counts;
        let hour = at.as_millisecond().div_euclid(3_600_000);
        let slot = counts
            .entry((tenant.clone(), hour))
            .or_insert_with(|| (*at, BTreeMap::new()));
        for c in list {
            *slot
                .1
                .entry((c.metric.clone(), c.labels.clone()))
                .or_insert(0) += c.n;
        }
    }
    out.counts = counts
        .into_iter()
        .map(|((tenant, _), (at, sums))| {
            let list = sums
                .into_iter()
                .map(|((metric, labels), n)| Count { metric, labels, n })
                .collect();
            (tenant, at, list)
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("mmm.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
        (dir, store)
    }

    fn at() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn record(seq: Option<u64>, id: &str) -> DecisionRecord {
        DecisionRecord {
            receipt: seq.map(|seq| ReceiptRow {
                chain_id: "c".to_owned(),
                seq,
                receipt_id: id.to_owned(),
                tenant: "acme".to_owned(),
                envelope: format!("{{\"id\": \"{id}\"}}"),
                stored_at: at(),
            }),
            actions: Vec::new(),
            approvals: Vec::new(),
            counts: (
                "acme".to_owned(),
                at(),
                vec![Count {
                    metric: "decisions".to_owned(),
                    labels: Vec::new(),
                    n: 1,
                }],
            ),
            seen_signal: None,
            deliveries: Vec::new(),
        }
    }

    fn chain(next_seq: u64) -> Chain {
        Chain {
            id: "c".to_owned(),
            next_seq,
            public_key: mmm_engine::receipt::SigningKey::from_bytes(&[1; 32]).verifying_key(),
        }
    }

    #[tokio::test]
    async fn a_receipt_that_overtakes_its_predecessor_waits_for_it() {
        let (_dir, store) = store().await;
        let log = DecisionLog::start(Arc::clone(&store), Some(chain(1)), Duration::from_millis(1));
        let second = log.submit(record(Some(2), "r2"));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(store
            .list_receipts(None, None, 0, 10)
            .await
            .unwrap()
            .is_empty());
        let first = log.submit(record(Some(1), "r1"));
        assert_eq!(first.await.unwrap(), Ok(()));
        assert_eq!(second.await.unwrap(), Ok(()));
        let stored = store.list_receipts(None, None, 0, 10).await.unwrap();
        let ids: Vec<(u64, &str)> = stored
            .iter()
            .map(|r| (r.seq, r.receipt_id.as_str()))
            .collect();
        assert_eq!(ids, [(1, "r1"), (2, "r2")]);
        assert!(log.flush(Duration::from_secs(5)).await);
        assert_eq!(log.backlog(), 0);
    }

    #[tokio::test]
    async fn records_without_receipts_are_committed_and_counters_summed() {
        let (_dir, store) = store().await;
        let log = DecisionLog::start(Arc::clone(&store), None, Duration::from_millis(5));
        let a = log.submit(record(None, ""));
        let b = log.submit(record(None, ""));
        assert_eq!(a.await.unwrap(), Ok(()));
        assert_eq!(b.await.unwrap(), Ok(()));
        let until: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        let counts = store.counts("acme", None, at(), until).await.unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].n, 2);
    }

    #[tokio::test]
    async fn a_chain_that_conflicts_with_the_store_stops_the_log() {
        let (_dir, store) = store().await;
        // Another process wrote seq 1 of the same chain.
        store
            .append_receipts(&[record(Some(1), "theirs").receipt.unwrap()])
            .await
            .unwrap();
        let log = DecisionLog::start(Arc::clone(&store), Some(chain(1)), Duration::from_millis(1));
        assert!(log.refuses().is_none());
        let mine = log.submit(record(Some(1), "mine"));
        assert!(matches!(
            mine.await.unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert!(log.refuses().is_some());
        let later = log.submit(record(Some(2), "later"));
        assert!(matches!(
            later.await.unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(log.backlog(), 0);
        let stored = store.list_receipts(None, None, 0, 10).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].receipt_id, "theirs");
    }

    #[tokio::test]
    async fn a_conflict_without_receipts_drops_its_batch_and_deciding_goes_on() {
        let (_dir, store) = store().await;
        let approval = Approval {
            approval_id: "ap-1".to_owned(),
            action_id: "act-1".to_owned(),
            tenant_id: "acme".to_owned(),
            actor_id: "dev".to_owned(),
            operation: None,
            state: mmm_engine::approval::ApprovalState::Pending,
            created_at: at(),
            expires_at: at(),
            grants: Vec::new(),
            rejection: None,
        };
        store.insert_approval(&approval).await.unwrap();
        let log = DecisionLog::start(Arc::clone(&store), None, Duration::from_millis(1));
        let mut again = record(None, "");
        again.approvals.push(approval);
        assert!(matches!(
            log.submit(again).await.unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert!(log.refuses().is_none());
        assert_eq!(log.submit(record(None, "")).await.unwrap(), Ok(()));
        assert_eq!(log.backlog(), 0);
    }

    #[tokio::test]
    async fn a_lost_predecessor_stops_the_log_after_the_gap_timeout() {
        let (_dir, store) = store().await;
        tokio::time::pause();
        let log = DecisionLog::start(Arc::clone(&store), Some(chain(1)), Duration::from_millis(1));
        let orphan = log.submit(record(Some(2), "r2"));
        tokio::time::sleep(GAP_TIMEOUT + Duration::from_secs(1)).await;
        assert!(matches!(
            orphan.await.unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert!(log.refuses().is_some());
        assert_eq!(log.backlog(), 0);
    }

    #[tokio::test]
    async fn a_closed_database_answers_unavailable_and_the_batch_is_kept() {
        let (_dir, store) = store().await;
        let log = DecisionLog::start(Arc::clone(&store), Some(chain(1)), Duration::from_millis(1));
        store.close().await;
        let r = log.submit(record(Some(1), "r1"));
        assert!(matches!(r.await.unwrap(), Err(StoreError::Unavailable(_))));
        // Kept for a retry: still counted, and a bounded flush says it is not done.
        assert_eq!(log.backlog(), 1);
        assert!(!log.flush(Duration::from_millis(200)).await);
    }

    #[test]
    fn the_seq_is_read_from_a_signed_envelope() {
        let key = mmm_engine::receipt::SigningKey::from_bytes(&[3; 32]);
        let signer = mmm_engine::receipt::ReceiptSigner::with_chain(key, "c".to_owned());
        let _ = signer.sign(serde_json::json!({"n": 1})).unwrap();
        let second = signer.sign(serde_json::json!({"n": 2})).unwrap();
        assert_eq!(envelope_seq(&second), Some(2));
        let mut broken = second;
        broken.payload = "not base64!".to_owned();
        assert_eq!(envelope_seq(&broken), None);
    }
}
