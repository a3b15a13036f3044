//! Characters a reader cannot see: the one place that decides which characters are
//! invisible or reorder the text around them, for rendering (`template`), for error
//! messages (`error::Quoted`) and for the playbook lint.
//!
//! The class is Unicode's format characters (general category Cf: bidi embeddings,
//! overrides, isolates and marks, zero-width characters, the byte-order mark, tag
//! characters…), every other `Default_Ignorable_Code_Point` (variation selectors, Hangul
//! fillers, Mongolian selectors…) and the noncharacters. Controls (Cc) and the line and
//! paragraph separators (U+2028, U+2029) are a class of their own: they break or reshape
//! lines. See docs/decisions.md, "Invisible and reordering characters".

/// A replacement for one run of hidden characters: visible, and reorders nothing.
pub(crate) const REPLACEMENT: char = '\u{FFFD}';

/// Ranges (inclusive) of Cf and the other `Default_Ignorable_Code_Point`s, sorted, from
/// Unicode 16's `UnicodeData.txt` and `DerivedCoreProperties.txt`. Both lists change
/// rarely (the last Cf addition was U+0890–U+0891 in Unicode 14).
const HIDDEN: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x034F, 0x034F),   // combining grapheme joiner
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // Arabic letter mark
    (0x06DD, 0x06DD),   // Arabic end of ayah
    (0x070F, 0x070F),   // Syriac abbreviation mark
    (0x0890, 0x0891),   // Arabic pound and piastre marks above
    (0x08E2, 0x08E2),   // Arabic disputed end of ayah
    (0x115F, 0x1160),   // Hangul fillers
    (0x17B4, 0x17B5),   // Khmer inherent vowels
    (0x180B, 0x180F),   // Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),   // zero-width space, non-joiner, joiner; LRM, RLM
    (0x202A, 0x202E),   // bidi embeddings and overrides
    (0x2060, 0x206F),   // word joiner, invisible operators, bidi isolates, deprecated
    (0x3164, 0x3164),   // Hangul filler
    (0xFE00, 0xFE0F),   // variation selectors
    (0xFEFF, 0xFEFF),   // byte-order mark, zero-width no-break space
    (0xFFA0, 0xFFA0),   // halfwidth Hangul filler
    (0xFFF0, 0xFFFB),   // interlinear annotation (and the unassigned specials before)
    (0x110BD, 0x110BD), // Kaithi number sign
    (0x110CD, 0x110CD), // Kaithi number sign above
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0000, 0xE0FFF), // tag characters, variation selectors supplement, reserved
];

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';

fn in_table(c: char) -> bool {
    let c = u32::from(c);
    let i = HIDDEN.partition_point(|(_, hi)| *hi < c);
    HIDDEN.get(i).is_some_and(|(lo, _)| *lo <= c)
}

/// Whether `c` is a noncharacter (U+FDD0–U+FDEF, and the last two of every plane).
fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

/// Whether `c` is a format character, another default-ignorable character or a
/// noncharacter: invisible, or able to reorder or hide the text around it.
pub(crate) fn is_hidden(c: char) -> bool {
    !c.is_ascii() && (in_table(c) || is_noncharacter(c))
}

/// Whether `c` breaks a line: a control character (C0, DEL, C1) or U+2028/U+2029.
pub(crate) fn is_break(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

fn is_variation_selector(c: char) -> bool {
    ('\u{FE00}'..='\u{FE0F}').contains(&c)
}

/// Whether a hidden character is legitimate where it stands, so rendering keeps it:
/// a zero-width joiner or non-joiner between two non-ASCII visible characters (emoji
/// sequences such as 👩‍💻, Indic and Persian words), or one variation selector right
/// after a visible character (❤️, keycaps such as 1️⃣). Between ASCII letters the same
/// characters can only hide a difference (`ma\u{200D}in` is not `main`).
fn kept_in_context(prev: Option<char>, c: char, next: Option<char>) -> bool {
    let visible = |x: char| !x.is_whitespace() && !is_break(x) && !is_hidden(x);
    match c {
        ZWJ | ZWNJ => {
            prev.is_some_and(|p| !p.is_ascii() && (visible(p) || is_variation_selector(p)))
                && next.is_some_and(|n| !n.is_ascii() && visible(n))
        }
        _ if is_variation_selector(c) => prev.is_some_and(visible),
        _ => false,
    }
}

/// What becomes of one character of untrusted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Shown as it is.
    Keep,
    /// A line break or control character: becomes a space.
    Space,
    /// Hidden or reordering: part of a run that becomes one U+FFFD.
    Replace,
}

/// The fate of `c` between `prev` and `next` (the neighbouring characters of the input).
pub(crate) fn fate(prev: Option<char>, c: char, next: Option<char>) -> Fate {
    if c.is_ascii() {
        return if c.is_ascii_control() {
            Fate::Space
        } else {
            Fate::Keep
        };
    }
    if is_break(c) {
        Fate::Space
    } else if is_hidden(c) && !kept_in_context(prev, c, next) {
        Fate::Replace
    } else {
        Fate::Keep
    }
}

/// Calls `emit` for every character of `text` that survives, with line breaks and
/// controls turned into spaces when `breaks_to_space` (values) or kept when not (a
/// playbook's own text), and each run of hidden characters turned into one U+FFFD.
pub(crate) fn neutralise(text: &str, breaks_to_space: bool, mut emit: impl FnMut(char)) {
    let mut prev: Option<char> = None;
    let mut in_run = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let fate = match fate(prev, c, next) {
            // A playbook's own line breaks and tabs are its layout; other controls
            // (ESC, NUL…) have no place in it and are replaced.
            Fate::Space if !breaks_to_space => {
                if matches!(c, '\n' | '\t' | '\r') {
                    Fate::Keep
                } else {
                    Fate::Replace
                }
            }
            other => other,
        };
        match fate {
            Fate::Keep => {
                in_run = false;
                emit(c);
            }
            Fate::Space => {
                in_run = false;
                emit(' ');
            }
            Fate::Replace => {
                if !in_run {
                    emit(REPLACEMENT);
                }
                in_run = true;
            }
        }
        prev = Some(c);
    }
}

/// Whether `text` has a character that [`neutralise`] would change (besides the line
/// breaks a playbook may contain).
pub(crate) fn first_hidden(text: &str) -> Option<(usize, char)> {
    let mut prev = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let next = iter.peek().map(|(_, n)| *n);
        let hidden = match fate(prev, c, next) {
            Fate::Keep => false,
            Fate::Space => !matches!(c, '\n' | '\t' | '\r'),
            Fate::Replace => true,
        };
        if hidden {
            return Some((i, c));
        }
        prev = Some(c);
    }
    None
}

/// Whether a message must show `c` escaped: a control, a line break or a hidden
/// character, wherever it stands.
pub(crate) fn needs_escape(c: char) -> bool {
    is_break(c) || is_hidden(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> String {
        let mut out = String::new();
        neutralise(text, true, |c| out.push(c));
        out
    }

    fn authored(text: &str) -> String {
        let mut out = String::new();
        neutralise(text, false, |c| out.push(c));
        out
    }

    #[test]
    fn bidi_zero_width_and_tag_characters_become_one_replacement_per_run() {
        assert_eq!(values("feat/\u{202E}gnp.exe"), "feat/\u{FFFD}gnp.exe");
        assert_eq!(values("a\u{2066}\u{2069}b"), "a\u{FFFD}b");
        assert_eq!(values("ma\u{200B}in"), "ma\u{FFFD}in");
        assert_eq!(values("ma\u{200D}in"), "ma\u{FFFD}in");
        assert_eq!(values("x\u{E0041}\u{E0042}\u{E007F}"), "x\u{FFFD}");
        assert_eq!(
            values("\u{FEFF}x\u{061C}\u{200E}\u{200F}"),
            "\u{FFFD}x\u{FFFD}"
        );
        assert_eq!(values("a\u{FFFF}b\u{FDD0}"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn controls_and_line_separators_become_spaces_in_values() {
        assert_eq!(values("a\nb\u{1b}[31mc\u{85}d"), "a b [31mc d");
        assert_eq!(values("a\u{2028}b\u{2029}c"), "a b c");
    }

    #[test]
    fn a_playbooks_own_line_breaks_are_kept_but_other_controls_are_not() {
        assert_eq!(authored("a\nb\tc"), "a\nb\tc");
        assert_eq!(authored("a\u{1b}b\u{202E}c"), "a\u{FFFD}b\u{FFFD}c");
    }

    #[test]
    fn legitimate_text_is_unchanged() {
        for text in [
            "Café naïve Ångström",
            "e\u{301}", // combining accent
            "漢字かなカナ 한국어",
            "👩‍💻 👨‍👩‍👧 ❤️ ❤️‍🔥 1️⃣ 👍🏽",
            "می‌خواهم",  // Persian with a zero-width non-joiner
            "क्‍ष",       // Devanagari with a zero-width joiner
            "\u{E000}", // private use is visible (a box at worst)
        ] {
            assert_eq!(values(text), text, "{text:?}");
        }
    }

    #[test]
    fn tagged_emoji_lose_their_tags() {
        // The flag of Scotland is a black flag followed by tag characters.
        let scotland = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        assert_eq!(values(scotland), "\u{1F3F4}\u{FFFD}");
    }

    #[test]
    fn a_variation_selector_is_kept_once_after_a_visible_character() {
        assert_eq!(values("\u{2764}\u{FE0F}"), "\u{2764}\u{FE0F}");
        assert_eq!(values("a\u{FE0F}\u{FE01}\u{FE02}"), "a\u{FE0F}\u{FFFD}");
        assert_eq!(values(" \u{FE0F}"), " \u{FFFD}");
    }

    #[test]
    fn first_hidden_finds_what_rendering_would_change() {
        assert_eq!(first_hidden("plain\ntext"), None);
        assert_eq!(first_hidden("ab\u{202E}c"), Some((2, '\u{202E}')));
        assert_eq!(first_hidden("a\u{7}"), Some((1, '\u{7}')));
    }
}
