//! Stage 2, the context: the caller's context is validated; IAM, UBI, data governance and
//! policy are asked in parallel through the port hub (unless the caller passed that part,
//! or a cache answers); their answers fill what the caller left out; and the policy in
//! force is settled. IAM can fail the decision; every other port failing is a degraded
//! mode.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::context::{Context, PolicySnapshot, MAX_RECENT_SIGNALS};
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
                    dependency: "iam".into(),
                    message: why,
                })
            }
        }
    }

    let mut recent_list: Option<Vec<Value>> = None;
    if let Some(call) = recent {
        match call
            .wait()
            .and_then(|list| validate_recent(&list).map(|()| list))
        {
            Ok(list) => recent_list = Some(list),
            Err(_) => {
                recent_list = Some(Vec::new());
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

    // Merge what the ports said under what the caller said.
    let needs_merge = actor_info.is_some() || recent_list.is_some() || tenant_config.is_some();
    let ctx = if needs_merge {
        let mut raw: Map<String, Value> = context
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(info) = actor_info {
            let actor = raw.entry("actor").or_insert_with(|| json!({}));
            if let Some(obj) = actor.as_object_mut() {
                obj.entry("roles").or_insert_with(|| json!(info.roles));
                if let Some(tz) = info
                    .timezone
                    .filter(|tz| jiff::tz::TimeZone::get(tz).is_ok())
                {
                    obj.entry("timezone").or_insert(Value::String(tz));
                }
            }
        }
        if let Some(list) = recent_list {
            raw.entry("recent_signals").or_insert(Value::Array(list));
        }
        if let Some(config) = tenant_config {
            let t = raw.entry("tenant").or_insert_with(|| json!({}));
            if let Some(obj) = t.as_object_mut() {
                if let Some(sc) = config.safety_critical {
                    obj.entry("safety_critical").or_insert(Value::Bool(sc));
                }
                let cfg = obj.entry("config").or_insert_with(|| json!({}));
                if let Some(cfg) = cfg.as_object_mut() {
                    if let Some(keys) = config.deny_payload_keys {
                        cfg.entry("deny_payload_keys")
                            .or_insert_with(|| json!(keys));
                    }
                    for (k, v) in config.extra {
                        cfg.entry(k).or_insert(v);
                    }
                }
            }
        }
        let merged = Value::Object(raw);
        // Port answers were checked before merging; what fails here is the caller's.
        Context::from_json(Some(&merged))?
    } else {
        caller
    };

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

/// Recent signals from the port must each have a kind and an RFC 3339 `occurred_at`;
/// anything else is malformed data from a dependency, which counts as it being down.
fn validate_recent(list: &[Value]) -> Result<(), PortError> {
    if list.len() > MAX_RECENT_SIGNALS {
        return Err(PortError::Unavailable("too many recent signals".into()));
    }
    for s in list {
        let ok = s.get("kind").and_then(Value::as_str).is_some()
            && s.get("occurred_at")
                .and_then(Value::as_str)
                .is_some_and(|t| crate::signal::parse_timestamp(t).is_ok());
        if !ok {
            return Err(PortError::Unavailable("malformed recent signal".into()));
        }
    }
    Ok(())
}
