//! JSON matchers: predicates on fields by dotted path, the client IP from
//! the first present of a list of candidate fields, the time from another,
//! and optionally the logged `X-Forwarded-For` chain from a third (then the
//! IP field is the peer, which [`crate::proxy`] may replace).
//!
//! Duplicate keys: JSON parsers disagree about which of two equal keys
//! wins, so a line that carries the IP, time or chain field twice is
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
    /// Where the `X-Forwarded-For` chain may be; empty: the rule reads none.
    pub xff_fields: Vec<String>,
    pub predicates: Vec<Predicate>,
}

/// What a JSON line yielded: the `ip` field's address, the time, and with
/// `xff_fields` the chain (`Some("")` when none of them is present).
#[derive(Debug, PartialEq)]
pub(super) struct JsonMatch<'l> {
    pub ip: IpAddr,
    pub time: Option<Timestamp>,
    /// A time field was there but held no time authwatch reads: the line
    /// counts at the time it was read, and the engine counts it.
    pub time_unreadable: bool,
    pub forwarded: Option<Cow<'l, str>>,
}

/// Why a candidate line yielded no hit, for the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonMiss {
    /// Not one valid JSON object within the limits.
    Malformed,
    /// The IP, time or chain field occurs twice.
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
    pub(super) fn run<'l>(
        &self,
        scanner: &mut Scanner,
        line: &'l [u8],
        clock: &mut SyslogClock,
    ) -> Result<JsonMatch<'l>, JsonMiss> {
        // Predicates are few (a rule rarely has more than 4); a u64 mask
        // keeps this allocation-free.
        let mut satisfied: u64 = 0;
        let mut ip_seen = [0u8; MAX_CANDIDATES];
        let mut time_seen = [0u8; MAX_CANDIDATES];
        let mut xff_seen = [0u8; MAX_CANDIDATES];
        let mut ip: Option<(usize, Cow<'_, str>)> = None;
        let mut time: Option<(usize, Scalar<'_>)> = None;
        let mut xff: Option<(usize, Cow<'_, str>)> = None;
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
            for (j, f) in self.xff_fields.iter().enumerate() {
                if Some(f.len()) == len && path_is(path, f) {
                    xff_seen[j] = xff_seen[j].saturating_add(1);
                    if xff.as_ref().is_none_or(|(k, _)| j < *k) {
                        // A chain that is not a string (a number, a bool,
                        // null, an array or object) is nobody's address:
                        // kept as text that parses as no address, so a
                        // trusted peer's line with it counts for nobody.
                        let text = match &value {
                            Scalar::Str(s) => s.clone(),
                            _ => Cow::Borrowed("?"),
                        };
                        xff = Some((j, text));
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
        let forwarded = match xff {
            None if self.xff_fields.is_empty() => None,
            None => Some(Cow::Borrowed("")),
            Some((j, _)) if xff_seen[j] > 1 => return Err(JsonMiss::Ambiguous),
            Some((_, chain)) => Some(chain),
        };
        let ip = parse_client_ip_or_socket(ip_text.as_bytes()).ok_or(JsonMiss::NoMatch)?;
        let (time, time_unreadable) = match time {
            None => (None, false),
            Some((j, _)) if time_seen[j] > 1 => return Err(JsonMiss::Ambiguous),
            Some((_, value)) => {
                let t = match value {
                    Scalar::Num(n) => crate::time::parse_epoch(n.as_bytes()),
                    Scalar::Str(s) => crate::time::parse_log_time(s.as_bytes(), clock),
                    _ => None,
                };
                (t, t.is_none())
            }
        };
        Ok(JsonMatch {
            ip,
            time,
            time_unreadable,
            forwarded,
        })
    }
}
