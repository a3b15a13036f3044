//! The small vocabulary every stage shares: action types, surfaces, statuses, actor types,
//! reason and degraded codes, receipt statuses, port names and breaker states. Each is a
//! [`string_enum!`]: a Rust enum whose serde form, `Display` and `as_str` are the one
//! stable string the SPEC gives it.

use serde::{Deserialize, Serialize};

/// Declares an enum of stable strings. A variant may carry an explicit discriminant
/// (`Open = 1 => "open"`) when its number means something too.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident $(= $disc:literal)? => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant $(= $disc)?),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable string form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stable string form.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted values, for error messages: `a`, `b` or `c`.
            pub fn expected() -> String {
                crate::model::one_of(&[$($text),+])
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// The three kinds of nudge.
    ActionType {
        /// A read-only reflection of facts.
        Mirror => "mirror",
        /// Guided advice, LLM text behind a safety check, with a static fallback.
        Mentor => "mentor",
        /// An automation the actor may run; always needs consent.
        Multiplier => "multiplier",
    }
}

string_enum! {
    /// Where an action is shown.
    Surface {
        /// The developer's editor.
        Ide => "ide",
        /// A pull-request comment (Markdown).
        PrComment => "pr_comment",
        /// A CI job summary (Markdown).
        CiSummary => "ci_summary",
        /// An alert (plain text).
        Alert => "alert",
        /// A chat message (Markdown).
        Chat => "chat",
    }
}

string_enum! {
    /// The life-cycle status of a playbook version.
    Status {
        /// Never fires.
        Draft => "draft",
        /// Fires when it is the highest published version.
        Published => "published",
        /// Never fires.
        Deprecated => "deprecated",
    }
}

string_enum! {
    /// Who the actor is.
    ActorType {
        /// A person.
        Human => "human",
        /// An agent acting in the dev loop.
        Agent => "agent",
        /// A service account.
        Service => "service",
    }
}

string_enum! {
    /// Why an action was not returned (SPEC §4). The strings are stable and never
    /// reworded.
    #[non_exhaustive]
    Reason {
        /// The playbook's condition failed or ran out of a limit.
        ConditionError => "condition_error",
        /// A template path was missing at run time.
        TemplateError => "template_error",
        /// The tenant disabled this action type.
        ActionTypeDisabled => "action_type_disabled",
        /// None of the action's surfaces is enabled for the tenant.
        SurfaceDisabled => "surface_disabled",
        /// The policy denies the playbook, the action type or the operation.
        PolicyDenied => "policy_denied",
        /// The actor opted out of the playbook's category.
        OptedOut => "opted_out",
        /// The actor snoozed nudges.
        Snoozed => "snoozed",
        /// Inside the tenant's or the actor's quiet hours.
        QuietHours => "quiet_hours",
        /// The playbook fired for this actor too recently.
        FatigueCooldown => "fatigue_cooldown",
        /// The playbook fired `max` times in its window.
        FatigueMax => "fatigue_max",
        /// The actor's budget is spent.
        ActorBudget => "actor_budget",
        /// Over `max_actions_per_decision`.
        MaxActions => "max_actions",
        /// A mentor with no fallback while the LLM is unavailable.
        LlmUnavailable => "llm_unavailable",
        /// The LLM's answer failed its safety check and there is no fallback.
        LlmUnsafe => "llm_unsafe",
        /// The actor is in an experiment's holdout.
        ExperimentHoldout => "experiment_holdout",
        /// Policy is unavailable and this action may not go out without it.
        PolicyUnavailable => "policy_unavailable",
        /// The receipts outbox is full: no nudge goes out unaudited.
        ReceiptsBackpressure => "receipts_backpressure",
    }
}

string_enum! {
    /// Why the decision ran in a degraded mode (SPEC §6).
    #[non_exhaustive]
    Degraded {
        /// The LLM is down; mentors used their fallback.
        LlmUnavailable => "llm_unavailable",
        /// Policy came from a cached snapshot.
        PolicyCached => "policy_cached",
        /// No policy could be had.
        PolicyUnavailable => "policy_unavailable",
        /// Recent signals could not be had.
        UbiUnavailable => "ubi_unavailable",
        /// Tenant configuration could not be had.
        DataGovernanceUnavailable => "data_governance_unavailable",
        /// The receipt waits in the outbox.
        ReceiptsQueued => "receipts_queued",
        /// The receipts outbox is full.
        ReceiptsBackpressure => "receipts_backpressure",
        /// The decision passed its deadline.
        DeadlineExceeded => "deadline_exceeded",
    }
}

string_enum! {
    /// What became of a decision's receipt (SPEC §4 `receipt.status`).
    ReceiptStatus {
        /// The receipts port took it during the decision (or, without a port, it is
        /// returned in the decision).
        Emitted => "emitted",
        /// The port failed, timed out or its breaker is open: it waits in the outbox.
        Queued => "queued",
        /// No signing key is configured.
        Disabled => "disabled",
        /// Neither emitted nor queued (the outbox full and the port down at once); the
        /// decision's actions are then not delivered.
        Dropped => "dropped",
    }
}

string_enum! {
    /// Which port (SPEC §5), for breakers, errors and observability.
    PortName {
        /// IAM.
        Iam => "iam",
        /// Recent signals (UBI).
        Signals => "signals",
        /// Data governance.
        DataGovernance => "data_governance",
        /// Policy.
        Policy => "policy",
        /// LLM.
        Llm => "llm",
        /// Receipts (ERIS).
        Receipts => "receipts",
        /// Delivery.
        Delivery => "delivery",
    }
}

string_enum! {
    /// The state of a circuit breaker; the numbers are what metrics export (0 closed,
    /// 1 open, 2 half-open).
    BreakerState {
        /// Calls pass.
        Closed = 0 => "closed",
        /// Calls are refused without reaching the dependency.
        Open = 1 => "open",
        /// A few probe calls are let through to test the dependency.
        HalfOpen = 2 => "half_open",
    }
}

/// Renders `a`, `b` or `c` with backticks, for error messages.
pub(crate) fn one_of(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl Surface {
    /// Whether text for this surface is Markdown (and so needs Markdown escaping).
    pub fn is_markdown(self) -> bool {
        matches!(
            self,
            Surface::PrComment | Surface::CiSummary | Surface::Chat
        )
    }
}

/// A set of surfaces, one bit per surface (its position in [`Surface::ALL`]), for the
/// gates that intersect the action's, the tenant's and the actor's surfaces per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SurfaceSet(u8);

impl SurfaceSet {
    fn bit(surface: Surface) -> u8 {
        1u8 << (surface as u8)
    }

    /// Whether `surface` is in the set.
    pub fn contains(self, surface: Surface) -> bool {
        self.0 & SurfaceSet::bit(surface) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The surfaces in both sets.
    pub fn intersection(self, other: SurfaceSet) -> SurfaceSet {
        SurfaceSet(self.0 & other.0)
    }

    /// The surfaces of `order` that are in the set, in that order.
    pub fn in_order(self, order: &[Surface]) -> Vec<Surface> {
        order
            .iter()
            .copied()
            .filter(|s| self.contains(*s))
            .collect()
    }
}

impl FromIterator<Surface> for SurfaceSet {
    fn from_iter<I: IntoIterator<Item = Surface>>(iter: I) -> Self {
        SurfaceSet(iter.into_iter().fold(0, |m, s| m | SurfaceSet::bit(s)))
    }
}

impl<'a> FromIterator<&'a Surface> for SurfaceSet {
    fn from_iter<I: IntoIterator<Item = &'a Surface>>(iter: I) -> Self {
        iter.into_iter().copied().collect()
    }
}

/// A reference to one version of a playbook, as it appears in decisions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaybookRef {
    /// The playbook id (shared with the plan).
    pub id: crate::ids::SharedStr,
    /// The version.
    pub version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_round_trip() {
        for s in Surface::ALL {
            assert_eq!(Surface::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Surface::parse("email"), None);
        assert_eq!(ActionType::expected(), "`mirror`, `mentor` or `multiplier`");
    }

    #[test]
    fn reason_and_degraded_strings_are_the_spec_strings() {
        for r in Reason::ALL {
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(r.as_str().to_owned())
            );
        }
        assert_eq!(Reason::ALL.len(), 17);
        assert_eq!(
            Reason::ReceiptsBackpressure.as_str(),
            "receipts_backpressure"
        );
        assert_eq!(
            serde_json::to_value(Degraded::DataGovernanceUnavailable).unwrap(),
            "data_governance_unavailable"
        );
        assert_eq!(Degraded::ALL.len(), 8);
    }

    #[test]
    fn breaker_states_keep_their_metric_numbers_and_strings() {
        assert_eq!(BreakerState::Closed as u8, 0);
        assert_eq!(BreakerState::Open as u8, 1);
        assert_eq!(BreakerState::HalfOpen as u8, 2);
        assert_eq!(BreakerState::HalfOpen.to_string(), "half_open");
        assert_eq!(PortName::DataGovernance.to_string(), "data_governance");
        assert_eq!(ReceiptStatus::parse("queued"), Some(ReceiptStatus::Queued));
    }

    #[test]
    fn surface_sets_keep_the_order_they_are_asked_for() {
        let action = [Surface::PrComment, Surface::Ide, Surface::Chat];
        let enabled: SurfaceSet = [Surface::Ide, Surface::PrComment].iter().collect();
        let set = action.iter().collect::<SurfaceSet>().intersection(enabled);
        assert_eq!(set.in_order(&action), [Surface::PrComment, Surface::Ide]);
        assert!(!set.contains(Surface::Chat));
        assert!(SurfaceSet::default().is_empty());
    }
}
