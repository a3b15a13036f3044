//! Dual-channel approvals (SPEC §8) for multiplier actions with `dual_channel: true`:
//! `pending` → approved on channel A → `partially_approved` → approved on another channel
//! → `approved`. `reject` from any non-terminal state → `rejected`; past `expires_at` →
//! `expired`. Terminal states never change; every transition is audited.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{AuditEvent, AuditSink};
use crate::clock::Clock;
use crate::decision::Action;
use crate::error::Quoted;

crate::model::string_enum! {
    /// Where an approval stands.
    ApprovalState {
        /// Waiting for a first approval.
        Pending => "pending",
        /// Approved on one channel; waiting for another.
        PartiallyApproved => "partially_approved",
        /// Approved on two channels (terminal).
        Approved => "approved",
        /// Rejected (terminal).
        Rejected => "rejected",
        /// Not completed in time (terminal).
        Expired => "expired",
    }
}

impl ApprovalState {
    /// Whether the state can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ApprovalState::Approved | ApprovalState::Rejected | ApprovalState::Expired
        )
    }
}

/// One approval given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalGrant {
    /// The channel it came through (`chat`, `ide`, `email`, a second device…).
    pub channel: String,
    /// Who approved.
    pub approver: String,
    /// When.
    pub at: Timestamp,
}

/// An approval request for one multiplier action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Id (UUIDv7).
    pub approval_id: String,
    /// The action it is for.
    pub action_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// The actor the action was offered to.
    pub actor_id: String,
    /// The operation that would run.
    pub operation: Option<String>,
    /// Where it stands.
    pub state: ApprovalState,
    /// Created.
    pub created_at: Timestamp,
    /// After this instant a non-terminal approval is `expired`.
    pub expires_at: Timestamp,
    /// Approvals given, in order.
    pub grants: Vec<ApprovalGrant>,
    /// Who rejected it, and why.
    pub rejection: Option<(String, String)>,
}

/// Why an approval operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No approval has this id.
    #[error("no approval {}", Quoted(.0))]
    NotFound(String),
    /// The action is not a dual-channel multiplier.
    #[error("action {} is not a dual-channel multiplier", Quoted(.0))]
    NotDualChannel(String),
    /// The second approval came through the channel of the first.
    #[error(
        "already approved on channel {}; the second approval must come through another channel",
        Quoted(.0)
    )]
    SameChannel(String),
    /// The approval is in a terminal state.
    #[error("the approval is {0} and can no longer change")]
    Terminal(ApprovalState),
    /// The store or the audit sink failed; nothing changed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl ApprovalError {
    /// The serialisable form: `NOT_FOUND` for an unknown approval, `CONFLICT` when the
    /// approval's state does not allow the change (terminal, or the same channel twice),
    /// `APPROVAL_REFUSED` for an action that cannot be approved, `UNAVAILABLE` when the
    /// store or the audit sink failed.
    pub fn info(&self) -> crate::ErrorInfo {
        let code = match self {
            ApprovalError::NotFound(_) => crate::codes::NOT_FOUND,
            ApprovalError::NotDualChannel(_) => crate::codes::APPROVAL_REFUSED,
            ApprovalError::SameChannel(_) | ApprovalError::Terminal(_) => crate::codes::CONFLICT,
            ApprovalError::Unavailable(_) => crate::codes::UNAVAILABLE,
        };
        crate::ErrorInfo::new(code, self.to_string())
    }
}

/// Storage for approvals. `update` must apply its change atomically per approval.
pub trait ApprovalStore: Send + Sync {
    /// Stores a new approval.
    ///
    /// # Errors
    /// A message when it cannot be stored.
    fn insert(&self, approval: Approval) -> Result<(), String>;
    /// Reads one.
    ///
    /// # Errors
    /// A message when the store cannot answer.
    fn get(&self, approval_id: &str) -> Result<Option<Approval>, String>;
    /// Atomically replaces an approval with `change(current)` when that returns `Ok`.
    ///
    /// # Errors
    /// The error of `change`, or [`ApprovalError::NotFound`]/[`ApprovalError::Unavailable`].
    fn update(
        &self,
        approval_id: &str,
        change: &mut dyn FnMut(&Approval) -> Result<Approval, ApprovalError>,
    ) -> Result<Approval, ApprovalError>;
}

/// An in-memory approval store.
#[derive(Debug, Default)]
pub struct MemoryApprovals {
    map: Mutex<HashMap<String, Approval>>,
}

impl ApprovalStore for MemoryApprovals {
    fn insert(&self, approval: Approval) -> Result<(), String> {
        self.map
            .lock()
            .insert(approval.approval_id.clone(), approval);
        Ok(())
    }

    fn get(&self, approval_id: &str) -> Result<Option<Approval>, String> {
        Ok(self.map.lock().get(approval_id).cloned())
    }

    fn update(
        &self,
        approval_id: &str,
        change: &mut dyn FnMut(&Approval) -> Result<Approval, ApprovalError>,
    ) -> Result<Approval, ApprovalError> {
        let mut map = self.map.lock();
        let current = map
            .get(approval_id)
            .ok_or_else(|| ApprovalError::NotFound(approval_id.to_owned()))?;
        let next = change(current)?;
        map.insert(approval_id.to_owned(), next.clone());
        Ok(next)
    }
}

/// The approval state machine over a store, a clock and an audit sink.
pub struct Approvals {
    store: Arc<dyn ApprovalStore>,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn AuditSink>,
    ttl: SignedDuration,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn redacted(a: &Approval) -> serde_json::Value {
    json!({"state": a.state, "channels": a.grants.iter().map(|g| &g.channel).collect::<Vec<_>>(),
           "expires_at": a.expires_at.to_string()})
}

impl Approvals {
    /// Approvals expiring 24 h after creation.
    pub fn new(
        store: Arc<dyn ApprovalStore>,
        clock: Arc<dyn Clock>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        Approvals {
            store,
            clock,
            audit,
            ttl: SignedDuration::from_hours(24),
        }
    }

    /// Changes how long approvals stay open.
    #[must_use]
    pub fn with_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::from_hours(24));
        self
    }

    fn audit(
        &self,
        kind: &str,
        by: Option<&str>,
        before: Option<&Approval>,
        after: &Approval,
    ) -> Result<(), ApprovalError> {
        self.audit
            .record(&AuditEvent {
                kind: kind.to_owned(),
                subject: after.approval_id.clone(),
                by: by.map(str::to_owned),
                at: self.clock.now(),
                before: before.map_or(serde_json::Value::Null, redacted),
                after: redacted(after),
            })
            .map_err(ApprovalError::Unavailable)
    }

    /// Opens an approval for a dual-channel multiplier action.
    ///
    /// # Errors
    /// [`ApprovalError::NotDualChannel`] for any other action;
    /// [`ApprovalError::Unavailable`] when it cannot be stored or audited.
    pub fn request(
        &self,
        action: &Action,
        tenant_id: &str,
        actor_id: &str,
    ) -> Result<Approval, ApprovalError> {
        if !action.dual_channel || action.kind != crate::model::ActionType::Multiplier {
            return Err(ApprovalError::NotDualChannel(action.action_id.into()));
        }
        let now = self.clock.now();
        let approval = Approval {
            approval_id: crate::ids::new_id().into(),
            action_id: action.action_id.into(),
            tenant_id: tenant_id.to_owned(),
            actor_id: actor_id.to_owned(),
            operation: action.operation.clone(),
            state: ApprovalState::Pending,
            created_at: now,
            expires_at: now.checked_add(self.ttl).unwrap_or(now),
            grants: Vec::new(),
            rejection: None,
        };
        self.audit("approval.created", Some(actor_id), None, &approval)?;
        self.store
            .insert(approval.clone())
            .map_err(ApprovalError::Unavailable)?;
        Ok(approval)
    }

    /// The approval, with expiry applied.
    ///
    /// # Errors
    /// [`ApprovalError::NotFound`] or [`ApprovalError::Unavailable`].
    pub fn get(&self, approval_id: &str) -> Result<Approval, ApprovalError> {
        let current = self
            .store
            .get(approval_id)
            .map_err(ApprovalError::Unavailable)?
            .ok_or_else(|| ApprovalError::NotFound(approval_id.to_owned()))?;
        if !current.state.is_terminal() && self.clock.now() > current.expires_at {
            // Records the expiry (audited), then reads back the expired approval.
            match self.transition(approval_id, None, &mut |_| Ok(())) {
                Err(ApprovalError::Terminal(_)) => {}
                other => return other,
            }
            return self
                .store
                .get(approval_id)
                .map_err(ApprovalError::Unavailable)?
                .ok_or_else(|| ApprovalError::NotFound(approval_id.to_owned()));
        }
        Ok(current)
    }

    /// Runs `step` on a non-terminal, unexpired approval atomically; expiry wins. The
    /// transition is audited inside the store's update, before it is stored: when the
    /// audit sink fails, nothing changes.
    fn transition(
        &self,
        approval_id: &str,
        by: Option<&str>,
        step: &mut dyn FnMut(&mut Approval) -> Result<(), ApprovalError>,
    ) -> Result<Approval, ApprovalError> {
        let now = self.clock.now();
        let mut expired = false;
        let after = self.store.update(approval_id, &mut |current| {
            if current.state.is_terminal() {
                return Err(ApprovalError::Terminal(current.state));
            }
            let mut next = current.clone();
            if now > current.expires_at {
                next.state = ApprovalState::Expired;
                expired = true;
            } else {
                step(&mut next)?;
            }
            let kind = match next.state {
                _ if expired => "approval.expired",
                ApprovalState::Rejected => "approval.rejected",
                ApprovalState::Approved => "approval.approved",
                _ => "approval.partially_approved",
            };
            self.audit(kind, by, Some(current), &next)?;
            Ok(next)
        })?;
        if expired {
            return Err(ApprovalError::Terminal(ApprovalState::Expired));
        }
        Ok(after)
    }

    /// Records an approval from `approver` through `channel`.
    ///
    /// # Errors
    /// [`ApprovalError::SameChannel`] for a second approval on the first one's channel;
    /// [`ApprovalError::Terminal`] once approved, rejected or expired.
    pub fn approve(
        &self,
        approval_id: &str,
        channel: &str,
        approver: &str,
    ) -> Result<Approval, ApprovalError> {
        let at = self.clock.now();
        self.transition(approval_id, Some(approver), &mut |a| {
            if let Some(first) = a.grants.first() {
                if first.channel == channel {
                    return Err(ApprovalError::SameChannel(channel.to_owned()));
                }
            }
            a.grants.push(ApprovalGrant {
                channel: channel.to_owned(),
                approver: approver.to_owned(),
                at,
            });
            a.state = if a.grants.len() >= 2 {
                ApprovalState::Approved
            } else {
                ApprovalState::PartiallyApproved
            };
            Ok(())
        })
    }

    /// Rejects the approval.
    ///
    /// # Errors
    /// [`ApprovalError::Terminal`] once approved, rejected or expired.
    pub fn reject(
        &self,
        approval_id: &str,
        by: &str,
        reason: &str,
    ) -> Result<Approval, ApprovalError> {
        self.transition(approval_id, Some(by), &mut |a| {
            a.state = ApprovalState::Rejected;
            a.rejection = Some((by.to_owned(), reason.to_owned()));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::MemoryAudit;
    use crate::clock::ManualClock;
    use crate::model::{ActionType, PlaybookRef};

    fn action(dual: bool) -> Action {
        Action {
            action_id: crate::ids::new_id(),
            fingerprint: crate::ids::Hex256::from_ascii([b'0'; 64]),
            playbook: PlaybookRef {
                id: "exposed-secret".into(),
                version: 1,
            },
            kind: ActionType::Multiplier,
            category: "security".into(),
            priority: 100,
            surfaces: Arc::from([]),
            title: String::new(),
            text: String::new(),
            rendered: Default::default(),
            rationale: crate::decision::Rationale {
                why: Default::default(),
                trigger: Default::default(),
                evidence: vec![],
            },
            requires_consent: true,
            dual_channel: dual,
            operation: Some("rotate_secret".into()),
            params: None,
            experiment: None,
        }
    }

    fn setup() -> (Arc<ManualClock>, Arc<MemoryAudit>, Approvals) {
        let clock = Arc::new(ManualClock::new("2026-11-22T10:00:00Z".parse().unwrap()));
        let audit = Arc::new(MemoryAudit::new());
        let a = Approvals::new(
            Arc::new(MemoryApprovals::default()),
            clock.clone(),
            audit.clone(),
        );
        (clock, audit, a)
    }

    #[test]
    fn two_channels_approve() {
        let (_, audit, a) = setup();
        let id = a.request(&action(true), "acme", "dev").unwrap().approval_id;
        assert_eq!(
            a.approve(&id, "chat", "lead").unwrap().state,
            ApprovalState::PartiallyApproved
        );
        assert_eq!(
            a.approve(&id, "chat", "lead").unwrap_err(),
            ApprovalError::SameChannel("chat".into())
        );
        assert_eq!(
            a.get(&id).unwrap().state,
            ApprovalState::PartiallyApproved,
            "a refused approval changes nothing"
        );
        assert_eq!(
            a.approve(&id, "ide", "owner").unwrap().state,
            ApprovalState::Approved
        );
        assert_eq!(
            a.approve(&id, "email", "x").unwrap_err(),
            ApprovalError::Terminal(ApprovalState::Approved)
        );
        let late = a.reject(&id, "x", "late").unwrap_err();
        assert_eq!(late, ApprovalError::Terminal(ApprovalState::Approved));
        assert_eq!(
            late.to_string(),
            "the approval is approved and can no longer change"
        );
        let kinds: Vec<String> = audit.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                "approval.created",
                "approval.partially_approved",
                "approval.approved"
            ]
        );
    }

    #[test]
    fn rejection_from_pending_and_from_partially_approved() {
        let (_, audit, a) = setup();
        let p = a.request(&action(true), "acme", "dev").unwrap().approval_id;
        assert_eq!(
            a.reject(&p, "lead", "not now").unwrap().state,
            ApprovalState::Rejected
        );
        assert_eq!(
            a.approve(&p, "chat", "x").unwrap_err(),
            ApprovalError::Terminal(ApprovalState::Rejected)
        );
        let q = a.request(&action(true), "acme", "dev").unwrap().approval_id;
        a.approve(&q, "chat", "lead").unwrap();
        let r = a.reject(&q, "owner", "risky").unwrap();
        assert_eq!(r.state, ApprovalState::Rejected);
        assert_eq!(r.rejection, Some(("owner".into(), "risky".into())));
        assert!(audit
            .events()
            .iter()
            .any(|e| e.kind == "approval.rejected" && e.before["state"] == "partially_approved"));
    }

    #[test]
    fn expiry_is_terminal() {
        let (clock, audit, a) = setup();
        let id = a.request(&action(true), "acme", "dev").unwrap().approval_id;
        a.approve(&id, "chat", "lead").unwrap();
        clock.advance(Duration::from_secs(24 * 3600));
        assert_eq!(
            a.get(&id).unwrap().state,
            ApprovalState::PartiallyApproved,
            "expires_at itself is still open"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            a.approve(&id, "ide", "owner").unwrap_err(),
            ApprovalError::Terminal(ApprovalState::Expired)
        );
        assert_eq!(a.get(&id).unwrap().state, ApprovalState::Expired);
        assert_eq!(
            a.reject(&id, "x", "y").unwrap_err(),
            ApprovalError::Terminal(ApprovalState::Expired)
        );
        assert_eq!(audit.events().last().unwrap().kind, "approval.expired");
        let id2 = a.request(&action(true), "acme", "dev").unwrap().approval_id;
        clock.advance(Duration::from_secs(25 * 3600));
        assert_eq!(
            a.get(&id2).unwrap().state,
            ApprovalState::Expired,
            "pending expires too"
        );
    }

    #[test]
    fn only_dual_channel_multipliers_need_approvals() {
        let (_, _, a) = setup();
        let single = action(false);
        assert_eq!(
            a.request(&single, "acme", "dev").unwrap_err(),
            ApprovalError::NotDualChannel(single.action_id.to_string())
        );
        assert_eq!(
            a.approve("nope", "chat", "x").unwrap_err(),
            ApprovalError::NotFound("nope".into())
        );
    }

    #[test]
    fn concurrent_second_approvals_on_two_channels_yield_one_approved() {
        let (_, audit, a) = setup();
        let a = Arc::new(a);
        let id = a.request(&action(true), "acme", "dev").unwrap().approval_id;
        a.approve(&id, "chat", "lead").unwrap();
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = ["ide", "email", "sms", "phone"]
                .into_iter()
                .map(|ch| {
                    let (a, id) = (Arc::clone(&a), id.clone());
                    s.spawn(move || a.approve(&id, ch, "x").is_ok())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1);
        assert_eq!(
            audit
                .events()
                .iter()
                .filter(|e| e.kind == "approval.approved")
                .count(),
            1
        );
    }
}

#[cfg(test)]
mod audit_tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    struct Flaky(AtomicBool);
    impl AuditSink for Flaky {
        fn record(&self, _: &AuditEvent) -> Result<(), String> {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("audit log down".into())
            }
        }
    }

    #[test]
    fn nothing_changes_unaudited() {
        let clock = Arc::new(ManualClock::new("2026-11-22T10:00:00Z".parse().unwrap()));
        let audit = Arc::new(Flaky(AtomicBool::new(true)));
        let a = Approvals::new(Arc::new(MemoryApprovals::default()), clock, audit.clone());
        let mut action = tests_action();
        action.dual_channel = true;
        let id = a.request(&action, "acme", "dev").unwrap().approval_id;
        audit.0.store(false, Ordering::SeqCst);
        assert!(matches!(
            a.approve(&id, "chat", "lead"),
            Err(ApprovalError::Unavailable(_))
        ));
        assert!(matches!(
            a.reject(&id, "lead", "no"),
            Err(ApprovalError::Unavailable(_))
        ));
        audit.0.store(true, Ordering::SeqCst);
        assert_eq!(a.get(&id).unwrap().state, ApprovalState::Pending);
        assert!(a.get(&id).unwrap().grants.is_empty());
    }

    fn tests_action() -> Action {
        serde_json::from_value(serde_json::json!({
            "action_id": "0190f3c2-0000-7000-8000-000000000001", "fingerprint": "0".repeat(64), "playbook": {"id": "p", "version": 1}, "type": "multiplier",
            "category": "c", "priority": 50, "surfaces": ["ide"], "title": "t", "text": "t", "rendered": {},
            "rationale": {"why": "", "trigger": "", "evidence": []}, "requires_consent": true, "dual_channel": true,
            "operation": "op", "params": null, "experiment": null
        }))
        .unwrap()
    }
}
