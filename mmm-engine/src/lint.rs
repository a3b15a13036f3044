//! The nudge-language lint (SPEC §12): wording that turns a nudge into a dark pattern.
//! Findings are warnings; `mmm validate --strict` makes them failures.

/// What a piece of text is, which decides the rules that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRole {
    /// Mirror title or text: facts only, so prescriptive wording is flagged too.
    Mirror,
    /// Multiplier title or text, and mentor fallback text.
    Other,
}

/// One lint finding inside a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Byte offset of the phrase in the text.
    pub offset: usize,
    /// Rule name, e.g. `false-urgency`.
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
}

const PRESCRIPTIVE: &[&str] = &[
    "you should",
    "you must",
    "you need to",
    "you have to",
    "you ought to",
];
const URGENCY: &[&str] = &[
    "act now",
    "hurry",
    "immediately",
    "last chance",
    "right now",
    "time is running out",
    "before it's too late",
    "before it is too late",
    "don't miss",
    "urgent",
    "countdown",
];
const SOCIAL_PROOF: &[&str] = &[
    "everyone",
    "everybody",
    "all your teammates",
    "all of your teammates",
    "most developers",
    "most engineers",
    "other developers already",
];
const SHAMING: &[&str] = &[
    "lazy",
    "sloppy",
    "careless",
    "you failed",
    "your fault",
    "shame",
    "embarrassing",
];
const FEAR: &[&str] = &[
    "your career",
    "you will regret",
    "you'll regret",
    "get fired",
    "be fired",
    "you will be blamed",
];
const COUNTDOWN_UNITS: &[&str] = &[
    "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days",
];

fn boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text.get(..start).and_then(|s| s.chars().next_back());
    let after = text.get(end..).and_then(|s| s.chars().next());
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

fn find_phrases(lower: &str, phrases: &[&str], out: &mut Vec<(usize, String)>) {
    for phrase in phrases {
        let mut from = 0;
        while let Some(i) = lower.get(from..).and_then(|s| s.find(phrase)) {
            let start = from + i;
            let end = start + phrase.len();
            if boundary(lower, start, end) {
                out.push((start, (*phrase).to_owned()));
                break;
            }
            from = end;
        }
    }
}

/// `N <unit> left|remaining`: a countdown.
fn find_countdowns(lower: &str, out: &mut Vec<(usize, String)>) {
    let words: Vec<(usize, &str)> = lower
        .split(|c: char| !c.is_alphanumeric())
        .scan(0usize, |pos, w| {
            let start = lower
                .get(*pos..)
                .and_then(|s| s.find(w))
                .map_or(*pos, |i| *pos + i);
            *pos = start + w.len();
            Some((start, w))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    for window in words.windows(3) {
        if let [(start, n), (_, unit), (_, tail)] = window {
            if n.chars().all(|c| c.is_ascii_digit())
                && COUNTDOWN_UNITS.contains(unit)
                && matches!(*tail, "left" | "remaining")
            {
                out.push((*start, format!("{n} {unit} {tail}")));
            }
        }
    }
}

/// Lints one text.
///
/// ```
/// use mmm_engine::lint::{check_text, TextRole};
/// let findings = check_text("You should act now", TextRole::Mirror);
/// let rules: Vec<_> = findings.iter().map(|f| f.rule).collect();
/// assert_eq!(rules, ["prescriptive-wording", "false-urgency"]);
/// ```
pub fn check_text(text: &str, role: TextRole) -> Vec<Finding> {
    let lower = text.to_lowercase();
    // Lower-casing may change byte lengths outside ASCII; offsets are then approximate,
    // which only affects the column a warning points at.
    let mut findings = Vec::new();
    let mut rule = |rule: &'static str, phrases: &[&str], what: &str| {
        let mut hits = Vec::new();
        find_phrases(&lower, phrases, &mut hits);
        for (offset, phrase) in hits {
            findings.push(Finding {
                offset,
                rule,
                message: format!("`{phrase}`: {what}"),
            });
        }
    };
    if role == TextRole::Mirror {
        rule(
            "prescriptive-wording",
            PRESCRIPTIVE,
            "mirror text states facts; leave advice to a mentor action",
        );
    }
    rule("false-urgency", URGENCY, "no false urgency");
    rule("social-proof", SOCIAL_PROOF, "no unverified social proof");
    rule("shaming", SHAMING, "no shaming or blame");
    rule("fear-steering", FEAR, "no fear or emotional steering");
    let mut countdowns = Vec::new();
    find_countdowns(&lower, &mut countdowns);
    for (offset, phrase) in countdowns {
        findings.push(Finding {
            offset,
            rule: "false-urgency",
            message: format!("`{phrase}`: no countdowns"),
        });
    }
    // Checked on the original text: lower-casing keeps these characters where they are.
    if let Some((offset, c)) = crate::text::first_hidden(text) {
        findings.push(Finding {
            offset,
            rule: "invisible-character",
            message: format!(
                "{} is invisible or reorders the text around it; every surface shows it as `\u{FFFD}`",
                crate::error::Quoted(c.encode_utf8(&mut [0; 4]))
            ),
        });
    }
    findings.sort_by_key(|f| f.offset);
    findings
}

/// Whether a multiplier text says what will happen: at least a short sentence.
pub(crate) fn describes_effect(text: &str) -> bool {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
        >= 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str, role: TextRole) -> Vec<&'static str> {
        check_text(text, role).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn flags_each_family_of_dark_pattern() {
        assert_eq!(
            rules("You must split this", TextRole::Mirror),
            ["prescriptive-wording"]
        );
        assert!(rules("You must split this", TextRole::Other).is_empty());
        assert_eq!(
            rules("Hurry, last chance!", TextRole::Other),
            ["false-urgency", "false-urgency"]
        );
        assert_eq!(
            rules("Only 2 hours left to merge", TextRole::Other),
            ["false-urgency"]
        );
        assert_eq!(
            rules("Everyone else writes tests", TextRole::Other),
            ["social-proof"]
        );
        assert_eq!(rules("Sloppy commit", TextRole::Other), ["shaming"]);
        assert_eq!(
            rules("Think of your career", TextRole::Other),
            ["fear-steering"]
        );
    }

    #[test]
    fn matches_whole_words_only() {
        assert!(rules(
            "The hurryup tool; everyoneelse; 2 hours leftover",
            TextRole::Mirror
        )
        .is_empty());
        assert!(rules(
            "This change touches 420 lines in 12 files.",
            TextRole::Mirror
        )
        .is_empty());
    }

    #[test]
    fn invisible_and_reordering_characters_are_flagged() {
        let findings = check_text("Branch main\u{202E} is ready", TextRole::Mirror);
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!((f.rule, f.offset), ("invisible-character", 11));
        assert!(
            f.message.starts_with("`\\u{202e}` is invisible"),
            "{}",
            f.message
        );
        assert!(check_text("Line one\nline two 👩‍💻", TextRole::Mirror).is_empty());
    }

    #[test]
    fn multiplier_effect_needs_a_sentence() {
        assert!(describes_effect(
            "Creates draft pull requests, one per directory."
        ));
        assert!(!describes_effect("Split it"));
    }
}
