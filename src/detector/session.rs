//! Sessions: so that the several lines one failed attempt writes count once.
//!
//! A session is what a rule says identifies one connection (for sshd: host
//! and pid), hashed, together with the rule and the client address. How a
//! hit counts within its session is its [`Tally`]; see there.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use super::hash::KeyHasher;

use crate::rules::{RuleIdx, Tally};

/// At most this many sessions are remembered, so that a flood of
/// connections cannot grow memory without bound.
pub(crate) const CAP: usize = 65_536;

/// A session not seen for longer than this (event time) is forgotten.
pub(crate) const IDLE_MS: i64 = 10 * 60 * 1000;

/// How much event time passes between two sweeps of the sessions. Every
/// second (the engine's sweep cadence) cost a third of a replay's time on a
/// busy sshd log: up to 65,536 sessions walked, to free a few.
pub(crate) const SWEEP_EVERY_MS: i64 = 60 * 1000;

#[derive(Copy, Clone, PartialEq, Eq)]
struct SessionKey {
    id: u64,
    ip: IpAddr,
    rule: u16,
}

impl Hash for SessionKey {
    /// Whole words, the rule folded into an IPv4 address's: two or three
    /// multiplies per lookup where the derived hash took five.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.id);
        match self.ip {
            IpAddr::V4(v4) => {
                state.write_u64(u64::from(self.rule) << 32 | u64::from(u32::from(v4)));
            }
            IpAddr::V6(v6) => {
                state.write_u128(u128::from(v6));
                state.write_u16(self.rule);
            }
        }
    }
}

#[derive(Copy, Clone, Default)]
struct Session {
    /// Whether any line of the session has counted (or tried to).
    counted: bool,
    /// `Announce` lines not yet followed by their `Each` line.
    credits: u32,
    last_seen: i64,
}

impl Session {
    /// Whether the session has been idle for longer than [`IDLE_MS`] at
    /// event time `t`: it is then over, whether or not a sweep has dropped
    /// it yet. Checking here makes the expiry exact and independent of how
    /// often [`Sessions::sweep`] runs, which only gives the memory back.
    fn is_idle(&self, t: i64) -> bool {
        t.saturating_sub(self.last_seen) > IDLE_MS
    }

    /// How many failures a hit of `weight` counts for, given the session
    /// so far; updates the session.
    fn tally(&mut self, tally: Tally, weight: u32, t: i64) -> u32 {
        let counts = match tally {
            Tally::Each if self.credits > 0 => {
                self.credits -= 1;
                0
            }
            Tally::Each => weight,
            Tally::Announce => {
                self.credits = self.credits.saturating_add(1);
                weight
            }
            Tally::IfFirst if self.counted => 0,
            Tally::IfFirst => weight,
            // A success is no attempt: the detector resets the address's
            // count for it before asking the session, so this is only for
            // completeness, and leaves the session as it was.
            Tally::Reset => return 0,
        };
        self.counted = true;
        self.last_seen = self.last_seen.max(t);
        counts
    }
}

/// The sessions, kept in two generations for a cheap approximation of
/// "evict the least recently used": a session lives in `current` once
/// touched; when `current` is full it becomes `previous` and the old
/// `previous` is dropped. So a session is evicted only after at least
/// `CAP / 2` other sessions were touched since it was, and the cost is
/// O(1) per hit with no list to maintain.
#[derive(Default)]
pub(crate) struct Sessions {
    current: HashMap<SessionKey, Session, KeyHasher>,
    previous: HashMap<SessionKey, Session, KeyHasher>,
}

impl Sessions {
    /// How many failures a hit counts for in session `id` of `rule` and
    /// `ip` at event time `t`.
    pub(crate) fn tally(
        &mut self,
        rule: RuleIdx,
        id: u64,
        ip: IpAddr,
        tally: Tally,
        weight: u32,
        t: i64,
    ) -> u32 {
        let key = SessionKey {
            id,
            ip,
            rule: rule.0,
        };
        if let Some(session) = self.current.get_mut(&key) {
            if session.is_idle(t) {
                *session = Session::default();
            }
            return session.tally(tally, weight, t);
        }
        let mut session = self
            .previous
            .remove(&key)
            .filter(|s| !s.is_idle(t))
            .unwrap_or_default();
        let counts = session.tally(tally, weight, t);
        if self.current.len() >= CAP / 2 {
            // Keep the old table's allocation for the new generation.
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        self.current.insert(key, session);
        counts
    }

    /// Forgets sessions idle for longer than [`IDLE_MS`] before `now`. A
    /// walk over every session: the detector calls it only once per
    /// [`SWEEP_EVERY_MS`], since an idle session is already treated as over
    /// by [`Sessions::tally`], and the cap bounds the memory meanwhile.
    pub(crate) fn sweep(&mut self, now: i64) {
        let live = |_: &SessionKey, s: &mut Session| !s.is_idle(now);
        self.current.retain(live);
        self.previous.retain(live);
    }

    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        let bucket = std::mem::size_of::<(SessionKey, Session)>() + 1;
        [&self.current, &self.previous]
            .iter()
            .map(|m| match m.capacity() {
                0 => 0,
                cap if cap < 8 => (cap + 1).next_power_of_two() * bucket,
                cap => (cap * 8 / 7).next_power_of_two() * bucket,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

    #[test]
    fn sshd_story_counts_each_attempt_once() {
        use Tally::*;
        let mut s = Sessions::default();
        let mut count = |pid: u64, lines: &[Tally]| -> u32 {
            lines
                .iter()
                .map(|&tally| s.tally(RuleIdx(0), pid, IP, tally, 1, 0))
                .sum()
        };
        // Invalid user bob / Failed password for invalid user bob /
        // Connection closed by invalid user bob … [preauth]
        assert_eq!(count(100, &[Announce, Each, IfFirst]), 1);
        // Three `Failed password for root`, then the close.
        assert_eq!(count(101, &[Each, Each, Each, IfFirst]), 3);
        // Only `Connection closed by authenticating user root … [preauth]`.
        assert_eq!(count(102, &[IfFirst]), 1);
        // Invalid user x, then two `Failed password for invalid user x`.
        assert_eq!(count(103, &[Announce, Each, Each]), 2);
    }

    #[test]
    fn sessions_are_per_rule_and_address() {
        let mut s = Sessions::default();
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(s.tally(RuleIdx(0), 1, IP, Tally::Announce, 1, 0), 1);
        assert_eq!(s.tally(RuleIdx(1), 1, IP, Tally::Each, 1, 0), 1);
        assert_eq!(s.tally(RuleIdx(0), 1, other, Tally::Each, 1, 0), 1);
        assert_eq!(s.tally(RuleIdx(0), 1, IP, Tally::Each, 1, 0), 0);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn weight_counts_in_full_unless_a_credit_is_used() {
        let mut s = Sessions::default();
        assert_eq!(s.tally(RuleIdx(0), 1, IP, Tally::Announce, 3, 0), 3);
        assert_eq!(s.tally(RuleIdx(0), 1, IP, Tally::Each, 4, 0), 0);
        assert_eq!(s.tally(RuleIdx(0), 1, IP, Tally::Each, 4, 0), 4);
    }

    #[test]
    fn sessions_are_capped_and_keep_the_recent_ones() {
        let mut s = Sessions::default();
        // An early session, touched again now and then.
        s.tally(RuleIdx(0), u64::MAX, IP, Tally::Announce, 1, 0);
        for id in 0..(3 * CAP as u64) {
            s.tally(RuleIdx(0), id, IP, Tally::Each, 1, 0);
            assert!(s.len() <= CAP);
            if id % 1_000 == 0 {
                s.tally(RuleIdx(0), u64::MAX, IP, Tally::IfFirst, 1, 0);
            }
        }
        assert!(s.len() >= CAP / 2);
        // The early session survived the flood, its credit intact.
        assert_eq!(s.tally(RuleIdx(0), u64::MAX, IP, Tally::Each, 1, 0), 0);
        // The flood's first sessions were evicted: they count afresh.
        assert_eq!(s.tally(RuleIdx(0), 0, IP, Tally::IfFirst, 1, 0), 1);
    }

    #[test]
    fn a_session_idle_for_ten_minutes_is_over_even_before_a_sweep() {
        use Tally::*;
        let mut s = Sessions::default();
        assert_eq!(s.tally(RuleIdx(0), 1, IP, Announce, 1, 0), 1);
        // Exactly ten minutes later the credit still stands …
        assert_eq!(s.tally(RuleIdx(0), 1, IP, Each, 1, IDLE_MS), 0);
        // … and ten minutes and a millisecond after that line, the pid is
        // a new connection: its close counts, in either generation.
        assert_eq!(s.tally(RuleIdx(0), 1, IP, IfFirst, 1, 2 * IDLE_MS + 1), 1);
        s.tally(RuleIdx(0), 2, IP, Announce, 1, 0);
        std::mem::swap(&mut s.current, &mut s.previous);
        assert_eq!(s.tally(RuleIdx(0), 2, IP, Each, 1, IDLE_MS + 1), 1);
    }

    #[test]
    fn idle_sessions_are_swept_after_ten_minutes() {
        let mut s = Sessions::default();
        s.tally(RuleIdx(0), 1, IP, Tally::Each, 1, 0);
        s.tally(RuleIdx(0), 2, IP, Tally::Each, 1, 1);
        s.sweep(IDLE_MS);
        assert_eq!(s.len(), 2, "exactly ten minutes idle is kept");
        s.sweep(IDLE_MS + 1);
        assert_eq!(s.len(), 1);
        s.sweep(IDLE_MS + 2);
        assert_eq!(s.len(), 0);
    }
}
