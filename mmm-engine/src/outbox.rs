//! The receipts outbox: receipts the receipts port could not take during the decision
//! wait here and are retried in the background (0.5 s, 1 s, 2 s with jitter, then every
//! 30 s) until the port takes them. Room is reserved at the start of a decision, so a
//! decision that returns actions always has somewhere to put its receipt: when none is
//! left, the decision returns no actions (`receipts_backpressure`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use parking_lot::Mutex;
use rand::Rng;

use crate::receipt::Envelope;

/// A receipt waiting for the receipts port.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The receipt id (the port is idempotent on it).
    pub receipt_id: String,
    /// The signed envelope.
    pub envelope: Envelope,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Not before this instant.
    pub next_attempt: Timestamp,
}

/// Storage for receipts waiting to be delivered. The in-memory default is bounded; a host
/// that must survive restarts implements this on durable storage.
pub trait Outbox: Send + Sync {
    /// Reserves room for one receipt; `false` when full.
    fn reserve(&self) -> bool;
    /// Gives back a reservation that was not needed.
    fn release(&self);
    /// Stores a receipt in reserved room.
    fn put(&self, entry: OutboxEntry);
    /// Takes up to `max` entries due at `now` (they are put back with [`Outbox::put`]
    /// after a failed attempt, with room still reserved for them).
    fn take_due(&self, now: Timestamp, max: usize) -> Vec<OutboxEntry>;
    /// Receipts waiting.
    fn len(&self) -> usize;
    /// Whether nothing waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A bounded in-memory outbox.
#[derive(Debug)]
pub struct MemoryOutbox {
    capacity: usize,
    /// Reserved or stored.
    used: AtomicUsize,
    entries: Mutex<VecDeque<OutboxEntry>>,
}

impl MemoryOutbox {
    /// An outbox for at most `capacity` receipts.
    pub fn new(capacity: usize) -> Self {
        MemoryOutbox {
            capacity,
            used: AtomicUsize::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

impl Default for MemoryOutbox {
    fn default() -> Self {
        MemoryOutbox::new(10_000)
    }
}

impl Outbox for MemoryOutbox {
    fn reserve(&self) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used < self.capacity).then_some(used + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| u.checked_sub(1));
    }

    fn put(&self, entry: OutboxEntry) {
        self.entries.lock().push_back(entry);
    }

    fn take_due(&self, now: Timestamp, max: usize) -> Vec<OutboxEntry> {
        let mut entries = self.entries.lock();
        let mut due = Vec::new();
        let mut keep = VecDeque::with_capacity(entries.len());
        while let Some(e) = entries.pop_front() {
            if due.len() < max && e.next_attempt <= now {
                due.push(e);
            } else {
                keep.push_back(e);
            }
        }
        *entries = keep;
        due
    }

    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

/// When to try again after `attempts` failed attempts: 0.5 s, 1 s, 2 s, then every 30 s,
/// each with ±20 % jitter so that many engines do not retry in step.
pub fn next_attempt(now: Timestamp, attempts: u32) -> Timestamp {
    let base_ms: i64 = match attempts {
        0 | 1 => 500,
        2 => 1_000,
        3 => 2_000,
        _ => 30_000,
    };
    let jitter = rand::rng().random_range(-base_ms / 5..=base_ms / 5);
    now.checked_add(jiff::SignedDuration::from_millis(base_ms + jitter))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, at: Timestamp) -> OutboxEntry {
        OutboxEntry {
            receipt_id: id.into(),
            envelope: Envelope {
                payload_type: String::new(),
                payload: String::new(),
                signatures: vec![],
            },
            attempts: 1,
            next_attempt: at,
        }
    }

    #[test]
    fn room_is_reserved_and_bounded() {
        let o = MemoryOutbox::new(2);
        assert!(o.reserve());
        assert!(o.reserve());
        assert!(!o.reserve(), "full");
        o.release();
        assert!(o.reserve());
    }

    #[test]
    fn only_due_entries_are_taken() {
        let o = MemoryOutbox::new(10);
        let t: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        o.put(entry("a", t));
        o.put(entry(
            "b",
            t.checked_add(jiff::SignedDuration::from_secs(5)).unwrap(),
        ));
        let due = o.take_due(t, 10);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].receipt_id, "a");
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn the_retry_schedule_backs_off_with_jitter() {
        let t: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let ms = |n| {
            (next_attempt(t, n) - t)
                .total(jiff::Unit::Millisecond)
                .unwrap()
        };
        for _ in 0..50 {
            assert!((400.0..=600.0).contains(&ms(1)));
            assert!((800.0..=1200.0).contains(&ms(2)));
            assert!((1600.0..=2400.0).contains(&ms(3)));
            assert!((24_000.0..=36_000.0).contains(&ms(4)));
        }
    }
}
