//! Stage 2, the context: the caller's context is validated; IAM, UBI, data governance and
//! policy are asked in parallel through the port hub (unless the caller passed that part,
//! or a cache answers); their answers fill what the caller left out; and the policy in
//! force is settled. IAM can fail the decision; every other port failing is a degraded
//! mode.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::context::{Context, PolicySnapshot, RecentSignal, MAX_RECENT_SIGNALS};
use crate::decision::Degraded;
use crate::error::DecideError;
use crate::pipeline::record::DecisionRecord;
use crate::ports::{ActorInfo, PortError, PortName};
use crate::services::port_hub::{age, PortHub};
use crate::signal::Signal;

/// How policy is known for this decision.
pub(crate) enum PolicyState {
    /// Known (from the context, the port or a fresh cache), or no policy applies.
    Known(Option<PolicySnapshot>),
    /// Unknown: safety-critical tenants get nothing, others mirrors only.
    Unavailable { safety_critical: bool, why: String },
}

impl PolicyState {
    /// The snapshot to apply, if one is known.
    pub fn snapshot(&self) -> Option<&PolicySnapshot> {
        match self {
            PolicyState::Known(p) => p.as_ref(),
            PolicyState::Unavailable { .. } => None,
        }
    }
}

/// Validates the caller's context, asks the ports for what it lacks (in parallel, each
/// under its timeout and the decision's deadline) and merges the answers in; the caller's
/// values win.
pub(crate) fn gather(
    hub: &PortHub,
    signal: &Signal,
    context: Option<&Value>,
    deadline: Instant,
    record: &mut DecisionRecord,
) -> Result<(Context, PolicyState), DecideError> {
    let caller = Context::from_json(context)?;
    let ports = &hub.ports;
    if !ports.any_for_context() {
        // Nothing to ask: the caller's context is the context.
        let state = PolicyState::Known(caller.policy.clone());
        return Ok((caller, state));
    }
    // Caches age in real time (the engine's clock), whatever `now` the caller decides at.
    let wall = hub.now();
    let timeouts = hub.timeouts;
    let given = |key: &str| {
        context
            .and_then(|c| c.get(key))
            .is_some_and(|v| !v.is_null())
    };
    let tenant = signal.tenant_id.clone();
    let actor = signal.actor_id.clone();

    // Start every call first so that they run side by side.
    let iam = ports.iam.as_ref().map(|p| {
        let (p, t, a) = (Arc::clone(p), tenant.clone(), actor.clone());
        hub.start(PortName::Iam, timeouts.iam, deadline, move || {
            p.validate_actor(&t, &a)
        })
    });
    let recent = match &ports.signals {
        Some(p) if !given("recent_signals") => {
            let (p, t, a) = (Arc::clone(p), tenant.clone(), actor.clone());
            Some(
                hub.start(PortName::Signals, timeouts.signals, deadline, move || {
                    p.recent(&t, &a, MAX_RECENT_SIGNALS)
                }),
            )
        }
        _ => None,
    };
    let fresh_tenant = if ports.data_governance.is_some() {
        hub.fresh_tenant_config(&tenant, wall)
    } else {
        None
    };
    let tenant_call = match (&ports.data_governance, &fresh_tenant) {
        (Some(p), None) => {
            let (p, t) = (Arc::clone(p), tenant.clone());
            Some(hub.start(
                PortName::DataGovernance,
                timeouts.data_governance,
                deadline,
                move || p.tenant_config(&t),
            ))
        }
        _ => None,
    };
    let cached_policy = if ports.policy.is_some() {
        hub.cached_policy(&tenant)
    } else {
        None
    };
    let policy_call = match (&ports.policy, &cached_policy) {
        (Some(_), _) if given("policy") => None,
        (Some(_), Some((_, at))) if age(wall, *at) < hub.cache_times.policy_ttl => {
            hub.report_policy_cache(true);
            None
        }
        (Some(p), _) => {
            hub.report_policy_cache(false);
            let (p, t) = (Arc::clone(p), tenant.clone());
            Some(
                hub.start(PortName::Policy, timeouts.policy, deadline, move || {
                    p.snapshot(&t)
                }),
            )
        }
        (None, _) => None,
    };

    // IAM decides whether there is a decision at all.
    let mut actor_info: Option<ActorInfo> = None;
    if let Some(call) = iam {
        match call.wait() {
            Ok(info) if !info.active => {
                return Err(DecideError::Forbidden(format!(
                    "actor `{actor}` is not active"
                )))
            }
            Ok(info) => actor_info = Some(info),
            Err(PortError::Rejected(why)) => {
                return Err(DecideError::Forbidden(format!(
                    "actor `{actor}` is not known to IAM: {why}"
                )))
            }
            Err(PortError::Unavailable(why)) => {
                return Err(DecideError::Unavailable {
                    dependency: PortName::Iam,
                    message: why,
                })
            }
        }
    }

    // What the ports said fills what the caller left out.
    let mut ctx = caller;
    if let Some(info) = actor_info {
        ctx.merge_actor(info);
    }
    if let Some(call) = recent {
        match call.wait().and_then(read_recent) {
            Ok((list, parsed)) => ctx.merge_recent(list, parsed),
            Err(_) => {
                ctx.merge_recent(Vec::new(), Vec::new());
                record.degrade(Degraded::UbiUnavailable);
            }
        }
    }
    let tenant_config = match (tenant_call, fresh_tenant) {
        (Some(call), _) => match call.wait() {
            Ok(config) => {
                hub.store_tenant_config(&tenant, config.clone(), wall);
                Some(config)
            }
            Err(_) => {
                record.degrade(Degraded::DataGovernanceUnavailable);
                None
            }
        },
        (None, cached) => cached,
    };
    if let Some(config) = tenant_config {
        ctx.merge_tenant(config);
    }

    // Policy: the caller's, else the port's (through the cache).
    let state = if ctx.policy.is_some() {
        PolicyState::Known(ctx.policy.clone())
    } else if ports.policy.is_none() {
        PolicyState::Known(None)
    } else {
        let from_port = policy_call.is_some();
        let fetched = match policy_call {
            None => cached_policy.as_ref().map(|(p, _)| Ok(p.clone())),
            Some(call) => Some(call.wait()),
        };
        match fetched {
            Some(Ok(snapshot)) => {
                // A fresh answer from the port restarts the snapshot's age.
                if from_port {
                    hub.store_policy(&tenant, snapshot.clone(), wall);
                }
                PolicyState::Known(Some(snapshot))
            }
            Some(Err(e)) => match cached_policy {
                Some((snapshot, at)) if age(wall, at) <= hub.cache_times.policy_max_age => {
                    record.degrade(Degraded::PolicyCached);
                    PolicyState::Known(Some(snapshot))
                }
                _ => {
                    record.degrade(Degraded::PolicyUnavailable);
                    PolicyState::Unavailable {
                        safety_critical: ctx.tenant.safety_critical,
                        why: format!("policy is unavailable ({e})"),
                    }
                }
            },
            None => PolicyState::Known(None),
        }
    };
    Ok((ctx, state))
}

/// Recent signals from the port, read once: at most 50, each with a kind and an
/// RFC 3339 `occurred_at`. Anything else is malformed data from a dependency, which counts
/// as it being down.
fn read_recent(list: Vec<Value>) -> Result<(Vec<Value>, Vec<RecentSignal>), PortError> {
    if list.len() > MAX_RECENT_SIGNALS {
        return Err(PortError::Unavailable("too many recent signals".into()));
    }
    let parsed = list
        .iter()
        .map(RecentSignal::from_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PortError::Unavailable("malformed recent signal".into()))?;
    Ok((list, parsed))
}
