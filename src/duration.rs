//! The one place durations are parsed: `90s`, `15m`, `1h`, `7d`, `1h30m`.

use std::time::Duration;

/// Why a duration string was refused; the message is shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration {0:?} lacks a unit: write e.g. \"90s\", \"15m\", \"1h\", \"7d\"")]
    MissingUnit(String),
    #[error("duration {0:?} has an unknown unit (use ms, s, m, h, d or w)")]
    BadUnit(String),
    #[error("duration {0:?} is malformed")]
    Malformed(String),
    #[error("duration {0:?} is too long")]
    Overflow(String),
}

/// Parses one or more `<integer><unit>` groups, units `ms`, `s`, `m`, `h`,
/// `d`, `w`. A bare number is refused: `60` could mean seconds or minutes,
/// and a rule file is no place to guess.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let bytes = s.as_bytes();
    let mut total_ms: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(DurationError::Malformed(text.to_owned()));
        }
        let n: u64 = s[start..i]
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_owned()))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms: u64 = match &s[unit_start..i] {
            "" => return Err(DurationError::MissingUnit(text.to_owned())),
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(DurationError::BadUnit(text.to_owned())),
        };
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way [`parse`] reads it, in its largest exact unit.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_combinations() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(" 60s "), Ok(Duration::from_secs(60)));
    }

    #[test]
    fn refuses_ambiguous_or_malformed_input() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("60"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(parse("5y"), Err(DurationError::BadUnit(_))));
        assert!(matches!(parse("m5"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("-5s"), Err(DurationError::Malformed(_))));
        assert!(matches!(
            parse("99999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse("999999999999999w"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn format_round_trips() {
        for s in ["15m", "1h", "7d", "2w", "250ms", "90s", "1h30m", "60s"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(60)), "1m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
    }
}
