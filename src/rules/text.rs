//! Text matchers: regexes with a named group `ip` (and optionally `time`
//! and `repeat`), over the whole line or over a syslog message.
//!
//! Regexes run in byte mode with Unicode off, so `.` and `\S` match any
//! byte: a line with invalid UTF-8 is matched as well as a clean one, and
//! an attacker cannot dodge a rule by sprinkling bad bytes in a username.

use regex::bytes::{CaptureLocations, Regex};

use super::Tally;
use crate::ip::parse_client_ip;
use crate::syslog::SyslogHeader;
use crate::time::{SyslogClock, Timestamp};

/// How a text rule sees a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum TextFormat {
    /// The regex sees the whole line; time comes from a `time` group.
    Plain,
    /// The syslog header (time, host, program, pid) is parsed by hand and
    /// the regex sees only the message.
    Syslog {
        /// Program names accepted in the header; empty means any.
        programs: Vec<Vec<u8>>,
        /// Lines of one process (host and pid) are one session.
        session_by_pid: bool,
    },
}

/// One compiled pattern of a text rule.
#[derive(Debug)]
pub(super) struct Pattern {
    pub regex: Regex,
    pub ip_group: usize,
    pub time_group: Option<usize>,
    pub repeat_group: Option<usize>,
    pub tally: Tally,
}

impl Pattern {
    pub(super) fn compile(source: &str, tally: Tally) -> Result<Pattern, String> {
        let regex = regex::bytes::RegexBuilder::new(source)
            .unicode(false)
            .size_limit(4 << 20)
            .build()
            .map_err(|e| format!("invalid regex: {}", one_line(&e.to_string())))?;
        let group = |name: &str| regex.capture_names().position(|n| n == Some(name));
        let ip_group = group("ip").ok_or("the regex has no named group (?P<ip>…)")?;
        Ok(Pattern {
            time_group: group("time"),
            repeat_group: group("repeat"),
            ip_group,
            regex,
            tally,
        })
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a pattern found in a line.
#[derive(Debug, PartialEq)]
pub(super) struct TextMatch {
    pub ip: std::net::IpAddr,
    pub time: Option<Timestamp>,
    pub weight: u32,
}

/// Runs `pattern` over `text`. `None` when it does not match, or when
/// what it captured as `ip` is not exactly an IP address.
pub(super) fn run(
    pattern: &Pattern,
    locs: &mut CaptureLocations,
    text: &[u8],
    clock: &mut SyslogClock,
) -> Option<TextMatch> {
    pattern.regex.captures_read(locs, text)?;
    let (s, e) = locs.get(pattern.ip_group)?;
    let ip = parse_client_ip(&text[s..e])?;
    let time = match pattern.time_group.and_then(|g| locs.get(g)) {
        Some((s, e)) => Some(crate::time::parse_log_time(&text[s..e], clock)?),
        None => None,
    };
    let weight = match pattern.repeat_group.and_then(|g| locs.get(g)) {
        Some((s, e)) => parse_count(&text[s..e])?,
        None => 1,
    };
    Some(TextMatch { ip, time, weight })
}

/// rsyslog folds identical consecutive messages into
/// `message repeated N times: [ <message>]`. Returns the inner message and
/// N, so that every rule counts such a line N times.
pub(super) fn unwrap_repeated(message: &[u8]) -> Option<(&[u8], u32)> {
    let rest = message.strip_prefix(b"message repeated ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let n = parse_count(&rest[..digits])?;
    let inner = rest[digits..].strip_prefix(b" times: [ ")?;
    let inner = inner.strip_suffix(b"]")?;
    Some((inner, n))
}

/// A positive count of at most 1,000,000 (more is not a real repetition).
fn parse_count(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (1..=1_000_000).contains(&n).then_some(n)
}

/// The session key of a syslog line: its host and pid.
pub(super) fn session_of(header: &SyslogHeader<'_>) -> Option<u64> {
    let pid = header.pid?;
    // FNV-1a: stable, fast, and collisions only merge two sessions'
    // credits, never invent an IP.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in header.host.iter().chain(b"\0").chain(pid) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_rsyslog_repeats() {
        let (m, n) = unwrap_repeated(
            b"message repeated 3 times: [ Failed password for root from 1.2.3.4 port 22 ssh2]",
        )
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(m, b"Failed password for root from 1.2.3.4 port 22 ssh2");
        assert!(unwrap_repeated(b"message repeated 0 times: [ x]").is_none());
        assert!(unwrap_repeated(b"message repeated 3 times: [ x").is_none());
        assert!(unwrap_repeated(b"Failed password").is_none());
    }

    #[test]
    fn byte_mode_matches_through_invalid_utf8() {
        let p = Pattern::compile(
            r"^Failed password for .* from (?P<ip>\S+) port \d+ ssh2$",
            Tally::Each,
        )
        .unwrap();
        let mut locs = p.regex.capture_locations();
        let mut clock = SyslogClock::system(Timestamp::now());
        let m = run(
            &p,
            &mut locs,
            b"Failed password for \xff\xfe from 203.0.113.9 port 22 ssh2",
            &mut clock,
        )
        .unwrap();
        assert_eq!(m.ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn missing_ip_group_is_refused() {
        assert!(Pattern::compile(r"^Failed from (\S+)", Tally::Each)
            .unwrap_err()
            .contains("(?P<ip>"));
        assert!(Pattern::compile(r"^Failed (", Tally::Each)
            .unwrap_err()
            .starts_with("invalid regex"));
    }
}
