//! Plans, the compiled form of playbooks. Everything that can be checked or
//! prepared once (conditions, templates, durations, surfaces) is done at load.

use std::sync::Arc;

use serde_json::Value;

use crate::condition::Condition;
use crate::duration::Duration;
use crate::ids::SharedStr;
use crate::model::{ActionType, PlaybookRef, Status, Surface};
use crate::template::Template;

/// Fatigue limits of a playbook, per actor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FatigueSpec {
    /// Minimum time between two firings.
    pub cooldown: Option<Duration>,
    /// At most this many firings per window.
    pub max: Option<(u32, Duration)>,
}

/// Where a playbook was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// File name (or `<yaml>`).
    pub file: String,
    /// 1-based line of the document.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One compiled action. `repr(C)`, so that what the gates read of every matched action
/// (type, surfaces, operation) shares its first cache line (see [`Plan`]); the templates,
/// read only for the actions a decision returns, follow.
#[derive(Debug, Clone)]
#[repr(C)]
pub(crate) struct ActionPlan {
    pub kind: ActionType,
    pub dual_channel: bool,
    /// Shared with every action that uses all of them.
    pub surfaces: Arc<[Surface]>,
    pub operation: Option<String>,
    pub title: Template,
    pub text: Option<Template>,
    pub prompt: Option<Template>,
    pub fallback: Option<Template>,
    pub params: Option<Value>,
}

/// A compiled playbook version.
///
/// `repr(C)`, so that the fields are laid out in the order written: first what a decision
/// reads of every candidate (the condition) and of every matched one (the gates and
/// compose: id, category, why, actions, version, priority, critical, fatigue), together in
/// the plan's first four cache lines; then what only loading, listing and explaining read.
/// A decision reads about fifty plans of a thousand-playbook set, so every line it touches
/// is likely a cache miss.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Plan {
    pub(crate) condition: Option<Condition>,
    /// Playbook id.
    pub id: SharedStr,
    /// Category, for opt-outs.
    pub category: SharedStr,
    /// The rationale's `why`: the description, or "playbook `id` matched". Made once
    /// here and shared by every action the plan returns.
    pub(crate) why: SharedStr,
    pub(crate) actions: Vec<ActionPlan>,
    /// Version.
    pub version: u32,
    /// 0..=100, higher first.
    pub priority: u8,
    /// Bypasses snooze, quiet hours and the actor budget.
    pub critical: bool,
    /// Life-cycle status.
    pub status: Status,
    /// Whether its condition or a template could read `ctx.recent_signals` as JSON (see
    /// [`reads_ctx_key`]); a replayed decision puts its history into the context as JSON
    /// only when a candidate does.
    pub(crate) reads_recent_json: bool,
    /// Fatigue limits.
    pub fatigue: FatigueSpec,
    /// `None` for all tenants (`"*"`), or one tenant.
    pub tenant: Option<String>,
    /// What the playbook is for.
    pub description: Option<String>,
    /// Trigger patterns.
    pub triggers: Vec<String>,
    /// The `when` script as written.
    pub when: Option<String>,
    /// Where it was defined.
    pub source: SourceRef,
}

/// The context key replayed history goes under.
pub(crate) const RECENT_SIGNALS_KEY: &str = "recent_signals";

/// Whether a playbook whose `when` is `when` and whose actions are `actions` could read
/// `ctx.<key>`: a template hole on `ctx.<key>…` or on `ctx` itself; or, conservatively,
/// a `when` that names `key` anywhere, or uses `ctx` other than as `ctx.<field>` (`ctx`
/// passed whole, indexed, or a method called on it). The sandbox has no `eval` and no
/// closures, so a script can reach `ctx` only by naming it.
pub(crate) fn reads_ctx_key(when: Option<&str>, actions: &[ActionPlan], key: &str) -> bool {
    let mut templates = actions.iter().flat_map(|a| {
        std::iter::once(&a.title)
            .chain(a.text.as_ref())
            .chain(a.prompt.as_ref())
            .chain(a.fallback.as_ref())
    });
    when.is_some_and(|script| script_may_read_ctx_key(script, key))
        || templates.any(|t| t.reads_ctx_key(key))
}

fn script_may_read_ctx_key(script: &str, key: &str) -> bool {
    if script.contains(key) {
        return true;
    }
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = script.as_bytes();
    let skip_space = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut from = 0;
    while let Some(found) = script.get(from..).and_then(|rest| rest.find("ctx")) {
        let start = from + found;
        let end = start + 3;
        from = end;
        let before = start.checked_sub(1).and_then(|i| bytes.get(i)).copied();
        if before.is_some_and(ident) || bytes.get(end).copied().is_some_and(ident) {
            continue; // part of another name
        }
        let i = skip_space(end);
        if bytes.get(i) != Some(&b'.') {
            return true; // `ctx` whole, indexed or optional-chained
        }
        let mut j = skip_space(i + 1);
        let field_start = j;
        while bytes.get(j).copied().is_some_and(ident) {
            j += 1;
        }
        if j == field_start || bytes.get(skip_space(j)) == Some(&b'(') {
            return true; // not a plain field: a method on the whole map
        }
    }
    false
}

impl Plan {
    /// `{id, version}`.
    pub fn reference(&self) -> PlaybookRef {
        PlaybookRef {
            id: self.id.clone(),
            version: self.version,
        }
    }

    /// The types of its actions, in order.
    pub fn action_types(&self) -> Vec<ActionType> {
        self.actions.iter().map(|a| a.kind).collect()
    }

    /// Whether its condition (if any) is evaluated natively when possible.
    pub fn has_native_condition(&self) -> bool {
        self.condition.as_ref().is_some_and(Condition::is_native)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_reads_a_ctx_key_when_it_could_reach_it() {
        let reads = |script: &str| script_may_read_ctx_key(script, "recent_signals");
        for script in [
            "ctx.recent_signals.len() > 2",
            r#"ctx["recent_signals"].len() > 2"#,
            "ctx.keys().len() > 1",
            "ctx .values().len() > 1",
            "`${ctx}`.len() > 1",
            "let c = ctx; c.actor.roles.len() > 0",
            "ctx?.actor == ()",
        ] {
            assert!(reads(script), "{script}");
        }
        for script in [
            "signal.payload.lines > 400",
            "ctx.actor.roles.contains(\"lead\") && ctx . tenant.safety_critical",
            "recent_count(\"ci.failed\", \"1h\") >= 2",
            "signal.payload.ctxs > 1 && signal.payload.my_ctx > 1",
        ] {
            assert!(!reads(script), "{script}");
        }
    }
}
