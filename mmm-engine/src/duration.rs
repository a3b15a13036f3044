//! Durations as playbooks write them: `30s`, `15m`, `24h`, `7d`.

use std::fmt;

use jiff::SignedDuration;

use crate::error::Quoted;

/// A positive duration written as a whole number and one unit (`s`, `m`, `h`, `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: i64,
}

/// The longest duration accepted: ten years, far beyond any sensible window, and
/// small enough that no arithmetic on timestamps can overflow.
const MAX_SECONDS: i64 = 10 * 366 * 86_400;

impl Duration {
    /// Parses `30s`, `15m`, `24h` or `7d`.
    ///
    /// # Errors
    /// A message saying what is wrong, for a diagnostic.
    ///
    /// ```
    /// use mmm_engine::Duration;
    /// assert_eq!(Duration::parse("24h").unwrap().as_secs(), 86_400);
    /// assert!(Duration::parse("1w").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
            format!(
                "duration {} has no unit; use s, m, h or d (e.g. `24h`)",
                Quoted(text)
            )
        })?;
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(format!(
                "duration {} must start with a whole number (e.g. `15m`)",
                Quoted(text)
            ));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("duration {} is too large", Quoted(text)))?;
        let per = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "duration {} has unknown unit {}; use s, m, h or d",
                    Quoted(text),
                    Quoted(unit)
                ))
            }
        };
        if n == 0 {
            return Err(format!(
                "duration {} must be greater than zero",
                Quoted(text)
            ));
        }
        let seconds = n
            .checked_mul(per)
            .filter(|s| *s <= MAX_SECONDS)
            .ok_or_else(|| format!("duration {} is longer than ten years", Quoted(text)))?;
        Ok(Duration { seconds })
    }

    /// A duration of whole seconds (clamped to the accepted range).
    pub fn from_secs(seconds: i64) -> Duration {
        Duration {
            seconds: seconds.clamp(1, MAX_SECONDS),
        }
    }

    /// The length in seconds.
    pub fn as_secs(self) -> i64 {
        self.seconds
    }

    /// The length in milliseconds.
    pub fn as_millis(self) -> i64 {
        self.seconds * 1000
    }

    /// As a jiff duration.
    pub fn signed(self) -> SignedDuration {
        SignedDuration::from_secs(self.seconds)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        if s % 86_400 == 0 {
            write!(f, "{}d", s / 86_400)
        } else if s % 3_600 == 0 {
            write!(f, "{}h", s / 3_600)
        } else if s % 60 == 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(Duration::parse("30s").unwrap().as_secs(), 30);
        assert_eq!(Duration::parse("15m").unwrap().as_secs(), 900);
        assert_eq!(Duration::parse("24h").unwrap().as_secs(), 86_400);
        assert_eq!(Duration::parse("7d").unwrap().as_secs(), 604_800);
    }

    #[test]
    fn rejects_bad_durations_with_a_reason() {
        assert!(Duration::parse("").unwrap_err().contains("no unit"));
        assert!(Duration::parse("24").unwrap_err().contains("no unit"));
        assert!(Duration::parse("h").unwrap_err().contains("whole number"));
        assert!(Duration::parse("1w").unwrap_err().contains("unknown unit"));
        assert!(Duration::parse("0s")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(Duration::parse("-5m").is_err());
        assert!(Duration::parse("1.5h").is_err());
        assert!(Duration::parse("99999999999999999999d")
            .unwrap_err()
            .contains("too large"));
        assert!(Duration::parse("4000d").unwrap_err().contains("ten years"));
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(Duration::parse("48h").unwrap().to_string(), "2d");
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "90s");
    }
}
