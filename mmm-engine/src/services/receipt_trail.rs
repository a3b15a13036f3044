//! The receipt trail: the signer and its hash chain, the outbox, the hand-over of each
//! receipt to the receipts port, and the background worker that retries what waits in the
//! outbox. What goes into a receipt is decided by the receipt stage
//! (`pipeline/receipt.rs`); this service signs it and makes sure it goes somewhere.

use std::sync::{Arc, Weak};
use std::time::{Duration as StdDuration, Instant};

use parking_lot::Mutex;

use crate::clock::Clock;
use crate::decision::{ReceiptRef, ReceiptStatus};
use crate::observe::{Event, Observer, ReceiptEvent};
use crate::outbox::{next_attempt, Outbox, OutboxEntry};
use crate::ports::{PortError, PortName};
use crate::receipt::{ReceiptError, ReceiptSigner};
use crate::services::port_hub::{remaining, PortHub};

/// Room in the outbox for one decision's receipt, taken before anything is decided.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reservation {
    /// Room was reserved (and must be given back or used).
    pub reserved: bool,
    /// The outbox is full: no action may go out unaudited.
    pub backpressure: bool,
}

/// A receipt payload as its canonical members, split around `chain` (which the signer
/// adds): see [`ReceiptSigner::sign_members`].
pub(crate) struct PayloadMembers {
    /// `"key":value` pairs, in JCS order, whose keys sort before `chain`.
    pub before_chain: Vec<u8>,
    /// The pairs whose keys sort after it.
    pub after_chain: Vec<u8>,
}

/// Signer, outbox and the receipts port.
pub(crate) struct ReceiptTrail {
    signer: Option<ReceiptSigner>,
    outbox: Arc<dyn Outbox>,
    hub: Arc<PortHub>,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    /// Receipts a drain has taken out of the outbox and is handing to the port: they
    /// still wait until the port has taken them. The lock is held while entries move
    /// between the outbox and this count, so [`ReceiptTrail::outbox_len`] never sees a
    /// receipt in neither place.
    delivering: Mutex<usize>,
}

/// The status and id of a receipt handed over.
fn receipt_ref(receipt_id: Option<String>, status: ReceiptStatus) -> ReceiptRef {
    ReceiptRef {
        receipt_id,
        status,
        envelope: None,
    }
}

impl ReceiptTrail {
    pub fn new(
        signer: Option<ReceiptSigner>,
        outbox: Arc<dyn Outbox>,
        hub: Arc<PortHub>,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
    ) -> ReceiptTrail {
        ReceiptTrail {
            signer,
            outbox,
            hub,
            clock,
            observer,
            delivering: Mutex::new(0),
        }
    }

    /// Whether receipts are signed at all.
    pub fn signing(&self) -> bool {
        self.signer.is_some()
    }

    /// Whether there is a receipts port for the outbox worker to drain to.
    pub fn has_port(&self) -> bool {
        self.hub.ports.receipts.is_some()
    }

    /// The public key receipts are signed with.
    pub fn public_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        self.signer.as_ref().map(ReceiptSigner::public_key)
    }

    /// Receipts waiting for the receipts port: those in the outbox and those a drain is
    /// delivering right now (taken out of the outbox, not yet taken by the port).
    pub fn outbox_len(&self) -> usize {
        let delivering = self.delivering.lock();
        self.outbox.len() + *delivering
    }

    /// Marks a receipt a drain was delivering as no longer waiting; `put_back` returns it
    /// to the outbox in the same step.
    fn delivered(&self, put_back: Option<OutboxEntry>) {
        let mut delivering = self.delivering.lock();
        if let Some(entry) = put_back {
            self.outbox.put(entry);
        }
        *delivering = delivering.saturating_sub(1);
    }

    /// Reserves room for a receipt, when receipts are signed and handed to a port.
    pub fn reserve(&self) -> Reservation {
        let handed_over = self.signing() && self.has_port();
        let reserved = handed_over && self.outbox.reserve();
        Reservation {
            reserved,
            backpressure: handed_over && !reserved,
        }
    }

    fn event(&self, event: ReceiptEvent) {
        self.observer.on_event(&Event::Receipt(event));
    }

    /// Signs the payload (its canonical members, which lack only the chain; see
    /// [`ReceiptSigner::sign_members`]) and hands it to the receipts port, queues it in the
    /// outbox when the port fails, or returns it when there is no port. `disabled`
    /// without a signing key; `dropped` when the payload could not be written.
    pub fn emit(
        &self,
        receipt_id: String,
        payload: Result<PayloadMembers, ReceiptError>,
        reservation: Reservation,
        deadline: Instant,
    ) -> ReceiptRef {
        let Some(signer) = &self.signer else {
            return receipt_ref(None, ReceiptStatus::Disabled);
        };
        let envelope = match payload {
            Ok(m) => signer.sign_members(&m.before_chain, &m.after_chain),
            Err(_) => {
                // Canonicalising our own JSON cannot fail; if it ever did, say so rather
                // than pretend a receipt exists.
                if reservation.reserved {
                    self.outbox.release();
                }
                self.event(ReceiptEvent::Dropped);
                return receipt_ref(Some(receipt_id), ReceiptStatus::Dropped);
            }
        };
        let Some(port) = &self.hub.ports.receipts else {
            self.event(ReceiptEvent::Emitted);
            return ReceiptRef {
                receipt_id: Some(receipt_id),
                status: ReceiptStatus::Emitted,
                envelope: Some(envelope),
            };
        };
        let p = Arc::clone(port);
        let sent = envelope.clone();
        let handed = self.hub.call(
            PortName::Receipts,
            self.hub.timeouts.receipts.min(remaining(deadline)),
            move || p.emit(&sent),
        );
        let status = match handed {
            Ok(()) => {
                if reservation.reserved {
                    self.outbox.release();
                }
                self.event(ReceiptEvent::Emitted);
                ReceiptStatus::Emitted
            }
            Err(_) if reservation.reserved => {
                let now = self.clock.now();
                self.outbox.put(OutboxEntry {
                    receipt_id: receipt_id.clone(),
                    envelope,
                    attempts: 1,
                    next_attempt: next_attempt(now, 1),
                });
                self.event(ReceiptEvent::Queued);
                ReceiptStatus::Queued
            }
            Err(_) => {
                self.event(ReceiptEvent::Dropped);
                ReceiptStatus::Dropped
            }
        };
        receipt_ref(Some(receipt_id), status)
    }

    /// Delivers what waits in the outbox and is due.
    pub fn drain(&self) {
        let Some(port) = &self.hub.ports.receipts else {
            return;
        };
        let now = self.clock.now();
        let due = {
            let mut delivering = self.delivering.lock();
            let due = self.outbox.take_due(now, 256);
            *delivering += due.len();
            due
        };
        for mut entry in due {
            let p = Arc::clone(port);
            let envelope = entry.envelope.clone();
            let result = self
                .hub
                .call(PortName::Receipts, self.hub.timeouts.receipts, move || {
                    p.emit(&envelope)
                });
            match result {
                Ok(()) => {
                    self.outbox.release();
                    self.delivered(None);
                    self.event(ReceiptEvent::DeliveredFromOutbox);
                }
                // A business answer will not change on retry: the receipt leaves the outbox
                // (dead-lettered through the observer) instead of holding its room forever.
                Err(PortError::Rejected(_)) => {
                    self.outbox.release();
                    self.delivered(None);
                    self.event(ReceiptEvent::Refused);
                }
                Err(_) => {
                    entry.attempts += 1;
                    entry.next_attempt = next_attempt(now, entry.attempts);
                    self.delivered(Some(entry));
                    self.event(ReceiptEvent::RetryFailed);
                }
            }
        }
    }

    /// Starts a thread that drains the outbox every 100 ms for as long as the trail lives
    /// (it holds only a weak reference, so dropping the engine ends it).
    pub fn spawn_worker(trail: Weak<ReceiptTrail>) {
        let _ = std::thread::Builder::new()
            .name("mmm-receipts-outbox".into())
            .spawn(move || loop {
                std::thread::sleep(StdDuration::from_millis(100));
                match trail.upgrade() {
                    Some(trail) => trail.drain(),
                    None => return,
                }
            });
    }
}
