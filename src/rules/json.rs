//! JSON matchers: predicates on fields by dotted path, the client IP from
//! the first present of a list of candidate fields, the time from another.
//!
//! Duplicate keys: JSON parsers disagree about which of two equal keys
//! wins, so a line that carries the IP field or the time field twice is
//! *ambiguous* and is never counted (the engine counts it as malformed).
//! Whichever copy an attacker planted, no victim is blocked by it.

use std::borrow::Cow;
use std::net::IpAddr;

use memchr::memmem;

use super::json_scan::{dotted_len, path_is, Flow, PathSeg, Scalar, Scanner};
use crate::ip::parse_client_ip_or_socket;
use crate::time::{SyslogClock, Timestamp};

/// At most this many candidate fields for the IP or the time: enough for
/// every naming habit, and it keeps the per-line bookkeeping on the stack.
pub(super) const MAX_CANDIDATES: usize = 16;

#[derive(Debug)]
pub(super) enum FieldSel {
    /// Any string value anywhere in the object.
    AnyString,
    /// One of these dotted paths.
    Paths(Vec<String>),
}

#[derive(Debug)]
pub(super) enum Op {
    Equals(String),
    Contains(Vec<memmem::Finder<'static>>),
    OneOf(Vec<String>),
    Regex(regex::Regex),
}

#[derive(Debug)]
pub(super) struct Predicate {
    pub field: FieldSel,
    pub op: Op,
}

impl Predicate {
    fn selects(&self, path: &[PathSeg<'_>], value: &Scalar<'_>) -> bool {
        match &self.field {
            FieldSel::AnyString => matches!(value, Scalar::Str(_)),
            FieldSel::Paths(paths) => paths.iter().any(|p| path_is(path, p)),
        }
    }

    fn holds(&self, text: &str) -> bool {
        match &self.op {
            Op::Equals(v) => text == v,
            // Most values are shorter than any needle: skip those first.
            Op::Contains(finders) => finders
                .iter()
                .any(|f| f.needle().len() <= text.len() && f.find(text.as_bytes()).is_some()),
            Op::OneOf(vs) => vs.iter().any(|v| v == text),
            Op::Regex(r) => r.is_match(text),
        }
    }
}

#[derive(Debug)]
pub(super) struct JsonMatcher {
    pub ip_fields: Vec<String>,
    pub time_fields: Vec<String>,
    pub predicates: Vec<Predicate>,
}

/// Why a candidate line yielded no hit, for the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonMiss {
    /// Not one valid JSON object within the limits.
    Malformed,
    /// The IP or time field occurs twice.
    Ambiguous,
    /// Valid, but a predicate failed, or the IP is absent or not an IP.
    NoMatch,
}

fn text_of<'a>(v: &'a Scalar<'_>) -> Option<&'a str> {
    match v {
        Scalar::Str(s) => Some(s),
        Scalar::Num(n) => Some(n),
        _ => None,
    }
}

impl JsonMatcher {
    pub(super) fn run(
        &self,
        scanner: &mut Scanner,
        line: &[u8],
        clock: &mut SyslogClock,
    ) -> Result<(IpAddr, Option<Timestamp>), JsonMiss> {
        // Predicates are few (a rule rarely has more than 4); a u64 mask
        // keeps this allocation-free.
        let mut satisfied: u64 = 0;
        let mut ip_seen = [0u8; MAX_CANDIDATES];
        let mut time_seen = [0u8; MAX_CANDIDATES];
        let mut ip: Option<(usize, Cow<'_, str>)> = None;
        let mut time: Option<(usize, Scalar<'_>)> = None;
        let scanned = scanner.scan(line, |path, value| {
            // Each leaf is compared with every field the rule names; a
            // field of another length cannot be its path.
            let len = dotted_len(path);
            for (i, p) in self.predicates.iter().enumerate() {
                if satisfied & (1 << i) == 0
                    && p.selects(path, &value)
                    && text_of(&value).is_some_and(|t| p.holds(t))
                {
                    satisfied |= 1 << i;
                }
            }
            for (j, f) in self.ip_fields.iter().enumerate() {
                if Some(f.len()) == len && path_is(path, f) {
                    ip_seen[j] = ip_seen[j].saturating_add(1);
                    if ip.as_ref().is_none_or(|(k, _)| j < *k) {
                        // Borrowed from the line when the value is (no
                        // escapes): no allocation per matching line.
                        let text = match &value {
                            Scalar::Str(Cow::Borrowed(s)) => Some(Cow::Borrowed(*s)),
                            Scalar::Num(n) => Some(Cow::Borrowed(*n)),
                            Scalar::Str(Cow::Owned(s)) => Some(Cow::Owned(s.clone())),
                            _ => None,
                        };
                        if let Some(t) = text {
                            ip = Some((j, t));
                        }
                    }
                }
            }
            for (j, f) in self.time_fields.iter().enumerate() {
                if Some(f.len()) == len && path_is(path, f) {
                    time_seen[j] = time_seen[j].saturating_add(1);
                    if time.as_ref().is_none_or(|(k, _)| j < *k) {
                        time = Some((j, value.clone()));
                    }
                }
            }
            Flow::Continue
        });
        if scanned.is_err() {
            return Err(JsonMiss::Malformed);
        }
        let all = if self.predicates.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.predicates.len()) - 1
        };
        if satisfied != all {
            return Err(JsonMiss::NoMatch);
        }
        let (j, ip_text) = ip.ok_or(JsonMiss::NoMatch)?;
        if ip_seen[j] > 1 {
            return Err(JsonMiss::Ambiguous);
        }
        let ip = parse_client_ip_or_socket(ip_text.as_bytes()).ok_or(JsonMiss::NoMatch)?;
        let time = match time {
            None => None,
            Some((j, _)) if time_seen[j] > 1 => return Err(JsonMiss::Ambiguous),
            Some((_, Scalar::Num(n))) => crate::time::parse_epoch(n.as_bytes()),
            Some((_, Scalar::Str(s))) => crate::time::parse_log_time(s.as_bytes(), clock),
            Some(_) => None,
        };
        Ok((ip, time))
    }
}
