//! The signal stage: the envelope is validated field by field (SPEC §1) and the
//! decision's deadline set; and, once the context is known (the tenant's deny list comes
//! from it), data minimisation removes denied payload keys before anything reads them.

use std::sync::LazyLock;
use std::time::Instant;

use serde_json::Value;

use crate::context::Context;
use crate::error::SignalError;
use crate::minimise::DenyList;
use crate::model::Surface;
use crate::settings::EngineConfig;
use crate::signal::{GivenSignal, Signal};

pub(crate) static DEFAULT_DENY_LIST: LazyLock<DenyList> = LazyLock::new(DenyList::default);

/// A decision's signal as the caller gave it: lent, or given (its strings and payload are
/// then moved into the [`Signal`] rather than copied).
pub(crate) enum Input<'a> {
    Lent(&'a Value),
    Given(GivenSignal),
}

/// The validated signal and the instant the decision must be done by.
pub(crate) fn parse(
    json: Input<'_>,
    started: Instant,
    config: &EngineConfig,
) -> Result<(Signal, Instant), SignalError> {
    let signal = match json {
        Input::Lent(json) => Signal::from_json(json, config.max_payload_bytes)?,
        Input::Given(given) => given.into_signal(config.max_payload_bytes)?,
    };
    let deadline = started
        + match signal.surface {
            Some(Surface::Ide) => config.ide_deadline,
            _ => config.default_deadline,
        };
    Ok((signal, deadline))
}

/// Removes the keys on the tenant's deny list (`None`: the default one) at any depth from
/// the signal's payload and from each recent signal's payload in the context, and records
/// their paths.
pub(crate) fn minimise(
    signal: &mut Signal,
    ctx: &mut Context,
    deny: Option<&DenyList>,
    redacted: &mut Vec<String>,
) {
    let deny = deny.unwrap_or(&DEFAULT_DENY_LIST);
    deny.redact(&mut signal.payload, "payload", redacted);
    minimise_recent(ctx, deny, redacted);
}

/// The recent-signals half of [`minimise`], for a replay's history put into the context
/// after the signal's payload was minimised (the order the paths are recorded in is the
/// same: the payload's first).
pub(crate) fn minimise_recent(ctx: &mut Context, deny: &DenyList, redacted: &mut Vec<String>) {
    if let Some(Value::Array(recent)) = ctx.raw.get_mut("recent_signals") {
        for (i, r) in recent.iter_mut().enumerate() {
            if let Some(Value::Object(payload)) = r.get_mut("payload") {
                deny.redact(payload, &format!("recent_signals[{i}].payload"), redacted);
            }
        }
    }
}
