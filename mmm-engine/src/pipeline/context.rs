//! The context stage: the caller's context is validated (within its size and deny-list
//! limits); IAM, UBI, data governance and policy are asked in parallel through the port hub
//! (unless the caller passed that part, or a cache answers); their answers, checked on the
//! pool thread against the same limits, fill what the caller left out; and the policy in
//! force and the deny list are settled. IAM can fail the decision; every other port
//! failing, or answering what breaks a rule, is a degraded mode.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::context::{
    fits, serialized_len, Context, PolicySnapshot, RecentHistory, RecentSignal, MAX_RECENT_SIGNALS,
};
use crate::decision::Degraded;
use crate::error::{ContextError, DecideError, Quoted};
use crate::minimise::{DenyLimits, DenyList};
use crate::pipeline::record::DecisionRecord;
use crate::plan::RECENT_SIGNALS_KEY;
use crate::ports::{ActorInfo, PortError, PortName, TenantConfig};
use crate::services::port_hub::{age, PortHub, TenantAnswer};
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

/// Bounds on what goes into a context, from the engine's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContextLimits {
    /// Largest context, and largest port answer merged into it, serialised.
    pub max_bytes: usize,
    pub deny: DenyLimits,
}

/// The context of a decision, the policy in force, and the tenant's deny list (`None`:
/// the default one).
pub(crate) struct Gathered {
    /// Boxed: a context is about a kilobyte, and moving it from stage to stage by value
    /// was a `memcpy` each time.
    pub ctx: Box<Context>,
    pub policy: PolicyState,
    pub deny: Option<Arc<DenyList>>,
}

/// Validates the caller's context, asks the ports for what it lacks (in parallel, each
/// under its timeout and the decision's deadline) and merges the answers in; the caller's
/// values win.
///
/// A replay's `history` stands for `"recent_signals": [its entries]` appended to the
/// caller's context (an object without that key, or none): it is counted in the size
/// limit and keeps the UBI port from being asked, and `ctx.raw` gets an empty
/// `recent_signals` in its place, filled by [`put_history`] when something reads it.
pub(crate) fn gather(
    hub: &PortHub,
    limits: ContextLimits,
    signal: &Signal,
    context: Option<&Value>,
    history: Option<&RecentHistory>,
    deadline: Instant,
    record: &mut DecisionRecord,
) -> Result<Gathered, DecideError> {
    let caller = read_caller(context, history, limits)?;
    let ports = &hub.ports;
    if !ports.any_for_context() {
        // Nothing to ask: the caller's context is the context.
        let (ctx, deny) = caller;
        let policy = PolicyState::Known(ctx.policy.clone());
        return Ok(Gathered { ctx, policy, deny });
    }
    let (caller, caller_deny) = caller;
    // Caches age in real time (the engine's clock), whatever `now` the caller decides at.
    let wall = hub.now();
    let timeouts = hub.timeouts;
    let given = |key: &str| {
        (history.is_some() && key == RECENT_SIGNALS_KEY)
            || context
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
        Some(p) if !given(RECENT_SIGNALS_KEY) => {
            let (p, t, a) = (Arc::clone(p), tenant.clone(), actor.clone());
            Some(
                hub.start(PortName::Signals, timeouts.signals, deadline, move || {
                    p.recent(&t, &a, MAX_RECENT_SIGNALS)
                        .and_then(|list| read_recent(list, limits.max_bytes))
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
                move || p.tenant_config(&t).and_then(|c| read_tenant(c, limits)),
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
                    "actor {} is not active",
                    Quoted(&actor)
                )))
            }
            Ok(info) => actor_info = Some(info),
            Err(PortError::Rejected(why)) => {
                return Err(DecideError::Forbidden(format!(
                    "actor {} is not known to IAM: {why}",
                    Quoted(&actor)
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
        match call.wait() {
            Ok((list, parsed)) => ctx.merge_recent(list, parsed),
            Err(_) => {
                ctx.merge_recent(Vec::new(), Vec::new());
                record.degrade(Degraded::UbiUnavailable);
            }
        }
    }
    let tenant_answer = match (tenant_call, fresh_tenant) {
        (Some(call), _) => match call.wait() {
            Ok(answer) => {
                hub.store_tenant_config(&tenant, answer.clone(), wall);
                Some(answer)
            }
            Err(_) => {
                record.degrade(Degraded::DataGovernanceUnavailable);
                None
            }
        },
        (None, cached) => cached,
    };
    let mut deny = caller_deny;
    if let Some(answer) = tenant_answer {
        if ctx.merge_tenant(answer.config) {
            deny = answer.deny;
        }
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
    Ok(Gathered {
        ctx,
        policy: state,
        deny,
    })
}

/// The caller's context, within `max_context_bytes`, and its deny list, if it gives one.
fn read_caller(
    context: Option<&Value>,
    history: Option<&RecentHistory>,
    limits: ContextLimits,
) -> Result<(Box<Context>, Option<Arc<DenyList>>), ContextError> {
    let too_large = || ContextError {
        field: "context".into(),
        message: format!(
            "is larger than {} bytes serialized (`max_context_bytes`)",
            limits.max_bytes
        ),
    };
    match (context, history) {
        (Some(c), None) if !fits(c, limits.max_bytes) => return Err(too_large()),
        (_, Some(h)) => {
            // The caller's object (`{}` when none) with the history appended.
            let (bytes, empty) = match context {
                Some(c) => (
                    serialized_len(c, limits.max_bytes).ok_or_else(too_large)?,
                    c.as_object().is_none_or(Map::is_empty),
                ),
                None => (2, true),
            };
            if h.context_bytes(bytes, empty) > limits.max_bytes {
                return Err(too_large());
            }
        }
        _ => {}
    }
    let mut ctx = Box::new(Context::from_json(context)?);
    if history.is_some() {
        // Its place in the map's order, as if the caller had given it.
        ctx.raw
            .insert(RECENT_SIGNALS_KEY.into(), Value::Array(Vec::new()));
    }
    let deny = match ctx.tenant.config.get("deny_payload_keys") {
        None | Some(Value::Null) => None,
        Some(keys) => Some(Arc::new(DenyList::from_json(keys, limits.deny).map_err(
            |e| ContextError {
                field: match e.index {
                    Some(i) => format!("tenant.config.deny_payload_keys[{i}]"),
                    None => "tenant.config.deny_payload_keys".into(),
                },
                message: e.message,
            },
        )?)),
    };
    Ok((ctx, deny))
}

/// Data governance's answer, checked: within `max_context_bytes`, its deny list within
/// the deny-list limits (and built, once, for the cache). Anything else is the port being
/// down.
fn read_tenant(config: TenantConfig, limits: ContextLimits) -> Result<TenantAnswer, PortError> {
    if !fits(&config, limits.max_bytes) {
        return Err(PortError::Unavailable(format!(
            "the tenant configuration is larger than {} bytes serialized (`max_context_bytes`)",
            limits.max_bytes
        )));
    }
    let deny = match &config.deny_payload_keys {
        None => None,
        Some(keys) => Some(Arc::new(DenyList::checked(keys, limits.deny).map_err(
            |e| {
                PortError::Unavailable(match e.index {
                    Some(i) => format!("`deny_payload_keys[{i}]` {}", e.message),
                    None => format!("`deny_payload_keys` {}", e.message),
                })
            },
        )?)),
    };
    Ok(TenantAnswer { config, deny })
}

/// Recent signals from the port, read once (on the pool thread): at most 50, within
/// `max_context_bytes`, each with a kind and an RFC 3339 `occurred_at`. Anything else is
/// malformed data from a dependency, which counts as it being down.
fn read_recent(
    list: Vec<Value>,
    max_bytes: usize,
) -> Result<(Vec<Value>, Vec<RecentSignal>), PortError> {
    if list.len() > MAX_RECENT_SIGNALS {
        return Err(PortError::Unavailable("too many recent signals".into()));
    }
    if !fits(&list, max_bytes) {
        return Err(PortError::Unavailable(format!(
            "the recent signals are larger than {max_bytes} bytes serialized (`max_context_bytes`)"
        )));
    }
    let parsed = list
        .iter()
        .map(RecentSignal::from_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PortError::Unavailable("malformed recent signal".into()))?;
    Ok((list, parsed))
}

/// Puts a replay's history into the context as the JSON `recent_signals` it stands for
/// (in the place [`gather`] kept for it), `-0` read as `0` as in a caller's context.
pub(crate) fn put_history(ctx: &mut Context, history: &RecentHistory) {
    if let Some(slot) = ctx.raw.get_mut(RECENT_SIGNALS_KEY) {
        let mut list = history.to_json();
        crate::number::normalise_negative_zero(&mut list);
        *slot = list;
    }
}
