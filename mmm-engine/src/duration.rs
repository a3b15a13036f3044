//! Durations as playbooks write them: `30s`, `15m`, `24h`, `7d`.

use std::fmt;

use jiff::SignedDuration;

use crate::error::Quoted;

/// A positive duration written as a whole number and one unit (`s`, `m`, `h`, `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: i64,
}

/// Why a duration was refused. Each message quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// No unit after the number (`24`).
    #[error("duration {} has no unit; use s, m, h or d (e.g. `24h`)", Quoted(.0))]
    NoUnit(String),
    /// No number before the unit (`h`).
    #[error("duration {} must start with a whole number (e.g. `15m`)", Quoted(.0))]
    NoNumber(String),
    /// A unit other than s, m, h or d.
    #[error(
        "duration {} has unknown unit {}; use s, m, h or d",
        Quoted(text),
        Quoted(unit)
    )]
    UnknownUnit {
        /// The duration as written.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// `0s` and the like.
    #[error("duration {} must be greater than zero", Quoted(.0))]
    Zero(String),
    /// A number too large to read.
    #[error("duration {} is too large", Quoted(.0))]
    TooLarge(String),
    /// More than ten years.
    #[error("duration {} is longer than ten years", Quoted(.0))]
    TooLong(String),
}

impl From<DurationError> for String {
    fn from(e: DurationError) -> String {
        e.to_string()
    }
}

impl DurationError {
    /// The serialisable form (`DURATION_INVALID`).
    pub fn info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo::new(crate::codes::DURATION_INVALID, self.to_string())
    }
}

/// The longest duration accepted: ten years, far beyond any sensible window, and
/// small enough that no arithmetic on timestamps can overflow.
const MAX_SECONDS: i64 = 10 * 366 * 86_400;

impl Duration {
    /// Parses `30s`, `15m`, `24h` or `7d`.
    ///
    /// # Errors
    /// A [`DurationError`] saying what is wrong.
    ///
    /// ```
    /// use mmm_engine::Duration;
    /// assert_eq!(Duration::parse("24h").unwrap().as_secs(), 86_400);
    /// assert!(Duration::parse("1w").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Duration, DurationError> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| DurationError::NoUnit(text.to_owned()))?;
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(DurationError::NoNumber(text.to_owned()));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| DurationError::TooLarge(text.to_owned()))?;
        let per = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                })
            }
        };
        if n == 0 {
            return Err(DurationError::Zero(text.to_owned()));
        }
        let seconds = n
            .checked_mul(per)
            .filter(|s| *s <= MAX_SECONDS)
            .ok_or_else(|| DurationError::TooLong(text.to_owned()))?;
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
        let err = |text: &str| Duration::parse(text).unwrap_err();
        assert_eq!(err(""), DurationError::NoUnit(String::new()));
        assert_eq!(
            err("24").to_string(),
            "duration `24` has no unit; use s, m, h or d (e.g. `24h`)"
        );
        assert_eq!(err("h"), DurationError::NoNumber("h".into()));
        assert!(matches!(err("1w"), DurationError::UnknownUnit { unit, .. } if unit == "w"));
        assert!(err("0s").to_string().contains("greater than zero"));
        assert!(matches!(err("-5m"), DurationError::NoNumber(_)));
        assert!(matches!(err("1.5h"), DurationError::UnknownUnit { .. }));
        assert!(err("99999999999999999999d")
            .to_string()
            .contains("too large"));
        assert!(err("4000d").to_string().contains("ten years"));
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(Duration::parse("48h").unwrap().to_string(), "2d");
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "90s");
    }
}
