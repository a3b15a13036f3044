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

/// One compiled action.
#[derive(Debug, Clone)]
pub(crate) struct ActionPlan {
    pub kind: ActionType,
    /// Shared with every action that uses all of them.
    pub surfaces: Arc<[Surface]>,
    pub title: Template,
    pub text: Option<Template>,
    pub prompt: Option<Template>,
    pub fallback: Option<Template>,
    pub operation: Option<String>,
    pub params: Option<Value>,
    pub dual_channel: bool,
}

/// A compiled playbook version.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Playbook id.
    pub id: Arc<str>,
    /// Version.
    pub version: u32,
    /// `None` for all tenants (`"*"`), or one tenant.
    pub tenant: Option<String>,
    /// Life-cycle status.
    pub status: Status,
    /// Category, for opt-outs.
    pub category: Arc<str>,
    /// What the playbook is for.
    pub description: Option<String>,
    /// Trigger patterns.
    pub triggers: Vec<String>,
    /// The `when` script as written.
    pub when: Option<String>,
    pub(crate) condition: Option<Condition>,
    /// 0..=100, higher first.
    pub priority: u8,
    /// Bypasses snooze, quiet hours and the actor budget.
    pub critical: bool,
    /// Fatigue limits.
    pub fatigue: FatigueSpec,
    pub(crate) actions: Vec<ActionPlan>,
    /// Where it was defined.
    pub source: SourceRef,
    /// The rationale's `why`: the description, or "playbook `id` matched". Made once
    /// here and shared by every action the plan returns.
    pub(crate) why: SharedStr,
    /// The evidence names of the condition's paths, in the order of `condition.paths`,
    /// shared the same way.
    pub(crate) evidence_names: Vec<SharedStr>,
}

impl Plan {
    /// `{id, version}`.
    pub fn reference(&self) -> PlaybookRef {
        PlaybookRef {
            id: SharedStr::from(&self.id),
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
