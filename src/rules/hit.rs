//! [`Hit`]: what a rule makes of a matching line, and the detector's input.

use std::net::IpAddr;

use crate::time::Timestamp;

/// The index of a rule in its [`RuleSet`](super::RuleSet); the detector
/// keys its windows by it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleIdx(pub u16);

/// How a hit counts among the other lines of the same session (for sshd:
/// the same connection, i.e. host and pid), so that one failed attempt
/// that writes several lines counts once.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Tally {
    /// Counts its weight, unless an earlier [`Tally::Announce`] line of the
    /// session left a credit, which it then uses up instead.
    #[default]
    Each,
    /// Counts its weight and leaves one credit: the next `Each` line of the
    /// session is the same attempt. sshd's `Invalid user X` is followed by
    /// `Failed password for invalid user X` when the probe goes on.
    Announce,
    /// Counts only if nothing in the session has counted yet. sshd's
    /// `Connection closed by authenticating user … [preauth]` is the only
    /// trace of a rejected public key at LogLevel INFO.
    IfFirst,
}

/// One matched failure: which rule, which client, when, how much.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub rule: RuleIdx,
    /// The client address, already normalised (IPv4-mapped IPv6 is IPv4).
    pub ip: IpAddr,
    /// The line's own timestamp; `None` when it has none, and the engine
    /// then uses the time the line was read.
    pub time: Option<Timestamp>,
    /// How many failures the line stands for: 1, or N for rsyslog's
    /// `message repeated N times: [ … ]`.
    pub weight: u32,
    /// A hash of what identifies the session (e.g. host and pid), if the
    /// rule correlates lines.
    pub session: Option<u64>,
    pub tally: Tally,
}
