//! The small vocabulary every stage shares: action types, surfaces, statuses, actor types.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
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
            pub(crate) fn expected() -> String {
                crate::model::one_of(&[$($text),+])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

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

/// A reference to one version of a playbook, as it appears in decisions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaybookRef {
    /// The playbook id.
    pub id: String,
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
}
