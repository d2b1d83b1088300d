//! The detector: exact sliding windows per rule and client, and the
//! decision to block.
//!
//! It is pure: [`Detector::observe`] takes a hit with its event time and
//! returns the [`Decisions`] it brings, at most two. It reads no clock and
//! does no I/O, so replaying a log gives the same decisions as living
//! through it.
//!
//! * `window`: the ring of recent failure times per (rule, subject) and
//!   the block that stands for it; a [`WindowStore`] keeps them, by default
//!   the in-process [`MemoryStore`], which holds at most
//!   [`DetectorLimits::max_keys`] of them.
//! * `session`: how the several lines of one connection count (see
//!   [`Tally`]).
//!
//! # Memory
//!
//! Bytes per key, with the store's own accounting (std's table layout,
//! malloc's block sizes), as the tests measure them:
//!
//! | key | bytes per key |
//! | --- | --- |
//! | IPv4 address, up to two failures held | 38 to 75; 69.2 at a million keys (`a_million_keys_fit`) |
//! | IPv6 address or network, up to two failures held | 56 to 112 |
//! | three or more failures held | add a ring: 32 bytes at first, up to 224 at threshold 50; 134.8 in all for 250k IPv6 keys of three failures (`a_million_keys_fit`) |
//! | a flood at the cap | both generations' tables: at most 43.4 per key of a 100,000-key cap, IPv4 (`bytes_at_the_cap`) |
//!
//! (The spread is how full std's tables happen to be: they double.) With
//! the default cap of a million keys that is about 69 MB for a flood of
//! one-failure IPv4 addresses and at most 112 MB for IPv6, plus the rings
//! of keys holding three or more failures, plus 6 MiB of sessions. The
//! module doc of `window` says how the cap evicts.

mod hash;
mod session;
mod window;

pub use window::{Limit, MemoryStore, Reached, WindowStore, DEFAULT_MAX_KEYS, MAX_WINDOW_MS};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::ip::Subject;
use crate::rules::{Hit, RuleIdx, Tally};
use crate::time::Timestamp;
use session::Sessions;

/// A decision to block `subject` for `block_for` from `last_seen`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The id of the rule whose window reached its threshold.
    pub rule: Arc<str>,
    /// What reached the threshold: the client address, or the IPv6
    /// network its failures also count in (see [`Policy::ipv6_prefix`]).
    pub subject: Subject,
    /// Failures in the window, the one that reached the threshold included.
    pub count: u32,
    pub window: Duration,
    /// Event time of the oldest failure in the window.
    pub first_seen: Timestamp,
    /// Event time of the failure that reached the threshold. When that
    /// failure came out of order, this is the key's newest event time, the
    /// time the window was judged at.
    pub last_seen: Timestamp,
    pub block_for: Duration,
}

impl Decision {
    /// The block lasts `block_for` from the event that triggered it, so a
    /// replayed backlog yields the same expiry as living through it.
    pub fn expires_at(&self) -> Timestamp {
        self.last_seen.saturating_add(self.block_for)
    }
}

/// The decisions one hit brings, in this order: its address's, then its
/// network's. Both come at once only when the network holds failures of
/// other addresses too: a single IPv6 address that reaches the threshold
/// alone brings its /64 to the same count, and then only the address is
/// blocked (see [`Detector::observe`]).
#[derive(Debug, Default)]
pub struct Decisions {
    items: [Option<Decision>; 2],
    len: usize,
    next: usize,
}

impl Decisions {
    fn push(&mut self, d: Decision) {
        // Only `observe` pushes, at most twice.
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(d);
            self.len += 1;
        }
    }
}

impl Iterator for Decisions {
    type Item = Decision;

    fn next(&mut self) -> Option<Decision> {
        let d = self.items.get_mut(self.next)?.take()?;
        self.next += 1;
        Some(d)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Decisions {}

/// What one rule asks of the detector: block a client for `block_for` once
/// `threshold` of its failures fall within any `window`.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub id: Arc<str>,
    /// At least 1; 0 acts as 1.
    pub threshold: u32,
    /// Counted in whole milliseconds, from 1 ms to [`MAX_WINDOW_MS`]
    /// (about 49.7 days); longer windows are cut to that.
    pub window: Duration,
    pub block_for: Duration,
    /// IPv6 failures count per address and also per `/ipv6_prefix`
    /// network, in a window of their own with the same threshold, so that
    /// an attacker rotating its addresses within one network gets the
    /// network blocked. 128 (or more, which acts as 128) counts per address
    /// only. IPv4 always counts per address only.
    pub ipv6_prefix: u8,
}

impl Policy {
    /// What a rule that says nothing counts IPv6 failures in: a /64, what
    /// one host or one customer's LAN gets.
    pub const DEFAULT_IPV6_PREFIX: u8 = 64;
}

/// How much the detector may hold.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DetectorLimits {
    /// The most (rule, subject) keys held: beyond, the least recently seen
    /// ones are evicted (approximately; see the module doc of `window`).
    /// Fewer than 2 act as 2.
    pub max_keys: usize,
}

impl Default for DetectorLimits {
    fn default() -> DetectorLimits {
        DetectorLimits {
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Counts failures per rule and subject in exact sliding windows and
/// decides when to block.
///
/// # Semantics
///
/// * A block fires on the event that brings the number of events of (rule,
///   subject) in `(t − window, t]` to the threshold; an event exactly
///   `window` older than `t` is out.
/// * The subjects of a hit are its address and, for IPv6 when the policy's
///   [`ipv6_prefix`](Policy::ipv6_prefix) is below 128, the network of that
///   prefix that holds it. Each has its own window, so one hit may bring
///   two decisions (see [`Decisions`]). Two exceptions keep one abusive
///   address from taking its whole network with it: an address and its
///   network that reach the threshold on the same hit with the same count
///   block the address only (the network is forgotten and starts afresh),
///   and the hits of an address whose block stands do not count for its
///   network.
/// * A hit of weight N (rsyslog's `message repeated N times`) is N events
///   at its time.
/// * Out-of-order events (two files of one rule with slightly different
///   clocks) are put in time order, and the window is judged at the key's
///   newest event time: an event at or before `newest − window` counts for
///   nothing, and a decision's `last_seen` (so the block) is that newest
///   time.
/// * After a decision, the key forgets its events and ignores hits before
///   `last_seen + block_for`; after that it counts afresh. The block stands
///   in the sinks; repeating the decision would only repeat the alert.
/// * Hits of one session count as their [`Tally`] says; a hit without a
///   session counts its weight. A [`Tally::Reset`] hit counts nothing: it
///   forgets the failures of its address in its rule (see
///   [`Detector::reset_rule`]).
/// * At most [`DetectorLimits::max_keys`] keys are held; beyond, the least
///   recently seen go first and standing blocks last. An evicted key counts
///   afresh.
///
/// # Cost
///
/// Per hit: one lookup in the sessions (if the hit has one) and one in the
/// windows (three for a key not touched lately, and twice that for an IPv6
/// hit with prefix counting), std `HashMap`s with a hash keyed by secrets
/// from the OS (see `hash.rs`: a folded multiply per key word, where
/// SipHash cost several times as much), since the addresses are the
/// attacker's choice. Work per hit is bounded by the
/// threshold, and O(1) amortised for the cap.
///
/// Memory: see the module doc. Sessions are capped at 65,536 (about 6 MiB
/// at most).
///
/// The store is a [`WindowStore`], [`MemoryStore`] by default, so that a
/// fleet mode can count in Redis across hosts later.
pub struct Detector<S = MemoryStore> {
    policies: Vec<Policy>,
    limits: Vec<Limit>,
    store: S,
    sessions: Sessions,
    /// Event time of the last sweep of the sessions.
    sessions_swept: Option<i64>,
}

impl Detector {
    /// A detector with one policy per rule: `policies[i]` is the policy of
    /// `RuleIdx(i)`; with the default [`DetectorLimits`].
    pub fn new(policies: Vec<Policy>) -> Detector {
        Detector::with_limits(policies, DetectorLimits::default())
    }

    /// Like [`Detector::new`], holding no more than `limits` allow.
    pub fn with_limits(policies: Vec<Policy>, limits: DetectorLimits) -> Detector {
        Detector::with_store(policies, MemoryStore::with_max_keys(limits.max_keys))
    }
}

impl<S: WindowStore> Detector<S> {
    /// A detector that keeps its windows in `store` (which sets its own
    /// limits).
    pub fn with_store(policies: Vec<Policy>, store: S) -> Detector<S> {
        let limits: Vec<Limit> = policies
            .iter()
            .map(|p| Limit::new(p.threshold, p.window, p.block_for))
            .collect();
        // Report the policy as it is applied.
        let policies = policies
            .into_iter()
            .zip(&limits)
            .map(|(p, l)| Policy {
                threshold: l.threshold(),
                window: l.window(),
                ipv6_prefix: p.ipv6_prefix.min(128),
                ..p
            })
            .collect();
        Detector {
            policies,
            limits,
            store,
            sessions: Sessions::default(),
            sessions_swept: None,
        }
    }

    /// Counts `hit` at event time `t` (the engine already resolved
    /// `hit.time` or the read time into `t`) and returns a [`Decision`]
    /// for each subject — the address, and its IPv6 network if the policy
    /// counts one — whose count in `(t − window, t]` this hit brings to the
    /// threshold: none, one or two, the address's first. A hit for a rule
    /// without a policy counts nothing; so does a [`Tally::Reset`] hit,
    /// which resets the address's count instead.
    pub fn observe(&mut self, hit: &Hit, t: Timestamp) -> Decisions {
        let mut out = Decisions::default();
        let idx = usize::from(hit.rule.0);
        let Some(limit) = self.limits.get(idx) else {
            return out;
        };
        let weight = match (hit.tally, hit.session) {
            (Tally::Reset, _) => {
                self.store.forget_failures(hit.rule, Subject::Addr(hit.ip));
                return out;
            }
            (_, None) => hit.weight,
            (tally, Some(id)) => {
                self.sessions
                    .tally(hit.rule, id, hit.ip, tally, hit.weight, t.as_millis())
            }
        };
        if weight == 0 {
            return out;
        }
        let policy = &self.policies[idx];
        let addr = Subject::Addr(hit.ip);
        let decision = |subject: Subject, reached: Reached| Decision {
            rule: policy.id.clone(),
            subject,
            count: reached.count,
            window: policy.window,
            first_seen: reached.first_seen,
            last_seen: reached.last_seen,
            block_for: policy.block_for,
        };
        let network = Subject::ipv6_network_of(hit.ip, policy.ipv6_prefix);
        // An address already blocked adds nothing to its network's count:
        // its failures say nothing about the network's other addresses.
        // (Asked only when there is a network: no extra lookup for IPv4.)
        let addr_was_blocked = network.is_some() && self.store.blocks(hit.rule, addr, t);
        let addr_reached = self.store.record(hit.rule, addr, t, weight, limit);
        if let Some(reached) = addr_reached {
            out.push(decision(addr, reached));
        }
        if let (Some(net), false) = (network, addr_was_blocked) {
            if let Some(reached) = self.store.record(hit.rule, net, t, weight, limit) {
                if addr_reached.is_some_and(|a| a.count == reached.count) {
                    // Every failure the network holds is this address's:
                    // blocking the address is enough. The network starts
                    // afresh, and the address's further failures, blocked
                    // now, do not feed it.
                    self.store.forget(hit.rule, net);
                } else {
                    out.push(decision(net, reached));
                }
            }
        }
        out
    }

    /// Forgets the failures `ip` has in `rule`'s window, as a
    /// [`Tally::Reset`] hit (a successful login) does: the address counts
    /// afresh. What the success is no evidence about is kept: the window
    /// of the address's IPv6 network (one address logging in must not
    /// clear a /64 an attacker may be rotating in), the other rules, and a
    /// block that already stands (while it does, the address's failures
    /// are not counted anyway; forgetting it would only decide it again).
    pub fn reset_rule(&mut self, rule: RuleIdx, ip: IpAddr) {
        self.store.forget_failures(rule, Subject::Addr(ip));
    }

    /// Forgets the windows and the blocks of `ip` for every rule, and
    /// those of every network that holds it — used when an operator lifts
    /// a block: the operator vouches for the client, and the count of its
    /// /64, which its own failures fed, would otherwise block it again at
    /// its next few. Sessions are kept: they say how a connection's lines
    /// count, not what the client deserves.
    pub fn reset(&mut self, ip: IpAddr) {
        for (idx, policy) in self.policies.iter().enumerate() {
            let Ok(rule) = u16::try_from(idx).map(RuleIdx) else {
                break; // no hit names a rule beyond u16
            };
            self.store.forget(rule, Subject::Addr(ip));
            if let Some(net) = Subject::ipv6_network_of(ip, policy.ipv6_prefix) {
                self.store.forget(rule, net);
            }
        }
    }

    /// Forgets, for every rule, the window and block of `subject`: for an
    /// address, what [`Detector::reset`] does; for a network, its own
    /// window in the rules that count networks of its prefix length. The
    /// windows of the addresses inside a network are left: finding them
    /// would take a walk over every key.
    pub fn reset_subject(&mut self, subject: &Subject) {
        let net = match subject {
            Subject::Addr(ip) => return self.reset(*ip),
            Subject::Net(net) => net,
        };
        for (idx, policy) in self.policies.iter().enumerate() {
            let Ok(rule) = u16::try_from(idx).map(RuleIdx) else {
                break;
            };
            if matches!(net, ipnet::IpNet::V6(_)) && policy.ipv6_prefix == net.prefix_len() {
                self.store.forget(rule, Subject::Net(net.trunc()));
            }
        }
    }

    /// Drops keys whose window has passed and whose block (if any) has
    /// expired, and sessions idle for longer than 10 minutes, relative to
    /// event time `now`. Meant to be called about once per second of event
    /// time: each call sweeps only the share of the keys due for the event
    /// time since the last call, so the whole store is covered every 16 s
    /// and a call at a million keys touches about a sixteenth of them.
    /// Sessions are walked whole, so only once per minute of event time:
    /// a session idle that long already counts as over when its next line
    /// comes, swept or not.
    ///
    /// Dropping a key never changes a decision for hits at or after `now`.
    pub fn sweep(&mut self, now: Timestamp) {
        self.store.sweep(now, &self.limits);
        let now = now.as_millis();
        if self
            .sessions_swept
            .is_none_or(|last| now.saturating_sub(last) >= session::SWEEP_EVERY_MS)
        {
            self.sessions.sweep(now);
            self.sessions_swept = Some(now);
        }
    }

    /// The number of (rule, subject) keys held.
    pub fn tracked_keys(&self) -> usize {
        self.store.len()
    }

    /// Keys evicted so far to stay within [`DetectorLimits::max_keys`].
    pub fn evictions(&self) -> u64 {
        self.store.evictions()
    }

    pub fn tracked_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The policies as applied (normalised), by rule index.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Roughly how many bytes the windows and sessions hold (for metrics).
    pub fn approx_bytes(&self) -> usize {
        self.store.approx_bytes() + self.sessions.approx_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    const SEC: i64 = 1_000;
    /// No decisions (typed: `vec![]` alone is ambiguous next to serde_json).
    const NONE: Vec<usize> = Vec::new();

    /// A policy that counts per address only, as every test of the
    /// address windows wants; the prefix tests set `ipv6_prefix`.
    fn policy(id: &str, threshold: u32, window_ms: u64, block_ms: u64) -> Policy {
        Policy {
            id: id.into(),
            threshold,
            window: Duration::from_millis(window_ms),
            block_for: Duration::from_millis(block_ms),
            ipv6_prefix: 128,
        }
    }

    /// The one decision a hit brings, if any: for IPv4, or IPv6 without
    /// prefix counting, there is never a second.
    fn one(d: &mut Detector, h: &Hit, t: Timestamp) -> Option<Decision> {
        let mut decisions = d.observe(h, t);
        let first = decisions.next();
        assert_eq!(decisions.next(), None, "a second decision");
        first
    }

    fn ssh(threshold: u32, window_s: u64) -> Detector {
        Detector::new(vec![policy("sshd", threshold, window_s * 1000, 3_600_000)])
    }

    fn hit(ip: IpAddr) -> Hit {
        Hit {
            rule: RuleIdx(0),
            ip,
            time: None,
            weight: 1,
            session: None,
            tally: Tally::Each,
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// The indices (0-based) of the events that produced a decision.
    fn decisions(d: &mut Detector, times: impl IntoIterator<Item = i64>) -> Vec<usize> {
        times
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| one(d, &hit(IP), at(t)).map(|_| i))
            .collect()
    }

    #[test]
    fn fifty_five_spread_over_110s_never_block_at_50_per_60s() {
        let mut d = ssh(50, 60);
        assert_eq!(decisions(&mut d, (0..55).map(|i| i * 2 * SEC)), NONE);
    }

    #[test]
    fn fifty_within_59s_block_on_the_fiftieth() {
        let mut d = ssh(50, 60);
        let times: Vec<i64> = (0..50).map(|i| i * 59 * SEC / 49).collect();
        assert_eq!(times[49], 59 * SEC);
        let mut fired = None;
        for (i, &t) in times.iter().enumerate() {
            if let Some(dec) = one(&mut d, &hit(IP), at(t)) {
                assert!(fired.is_none());
                fired = Some((i, dec));
            }
        }
        let (i, dec) = fired.expect("a decision");
        assert_eq!(i, 49);
        assert_eq!(
            dec,
            Decision {
                rule: "sshd".into(),
                subject: Subject::Addr(IP),
                count: 50,
                window: Duration::from_secs(60),
                first_seen: at(0),
                last_seen: at(59 * SEC),
                block_for: Duration::from_secs(3600),
            }
        );
        assert_eq!(dec.expires_at(), at(59 * SEC + 3_600_000));
    }

    #[test]
    fn an_event_exactly_one_window_older_is_out() {
        let mut d = ssh(2, 60);
        assert_eq!(decisions(&mut d, [0, 60 * SEC]), NONE);
        let mut d = ssh(2, 60);
        assert_eq!(decisions(&mut d, [0, 60 * SEC - 1]), vec![1]);
    }

    #[test]
    fn threshold_one_blocks_on_the_first_hit() {
        let mut d = ssh(1, 60);
        let dec = one(&mut d, &hit(IP), at(5)).expect("a decision");
        assert_eq!(
            (dec.count, dec.first_seen, dec.last_seen),
            (1, at(5), at(5))
        );
    }

    #[test]
    fn weight_counts_as_that_many_events() {
        let mut d = ssh(5, 60);
        let mut h = hit(IP);
        h.weight = 3;
        assert_eq!(one(&mut d, &h, at(0)), None);
        h.weight = 1;
        assert_eq!(one(&mut d, &h, at(1)), None);
        let dec = one(&mut d, &h, at(2)).expect("3 + 1 + 1 reach 5");
        assert_eq!((dec.count, dec.first_seen), (5, at(0)));

        // A weight beyond the threshold fires at once, with the full count,
        // and stores nothing.
        let mut d = ssh(50, 60);
        h.weight = 1_000_000;
        let dec = one(&mut d, &h, at(7)).expect("a decision");
        assert_eq!(
            (dec.count, dec.first_seen, dec.last_seen),
            (1_000_000, at(7), at(7))
        );
        assert_eq!(d.tracked_keys(), 1);

        // Weight 0 counts nothing.
        let mut d = ssh(1, 60);
        h.weight = 0;
        assert_eq!(one(&mut d, &h, at(0)), None);
    }

    #[test]
    fn out_of_order_events_are_judged_at_the_newest() {
        // 100 s, 105 s, then 98 s from a file with a slower clock: three in
        // (95 s, 105 s].
        let mut d = ssh(3, 10);
        assert_eq!(decisions(&mut d, [100 * SEC, 105 * SEC]), NONE);
        let dec = one(&mut d, &hit(IP), at(98 * SEC)).expect("three in the window");
        assert_eq!(
            (dec.count, dec.first_seen, dec.last_seen),
            (3, at(98 * SEC), at(105 * SEC))
        );

        // The late event is put in its place, so it leaves the window first:
        // at 108.5 s the window (98.5 s, 108.5 s] holds 100, 105, 108.5.
        let mut d = ssh(4, 10);
        let t = [100 * SEC, 105 * SEC, 98 * SEC, 108_500, 109 * SEC];
        assert_eq!(decisions(&mut d, t), vec![4]);

        // An event out of the window at the newest counts for nothing,
        // though in order it would have joined the one at 100 s.
        let mut d = ssh(3, 10);
        assert_eq!(
            decisions(&mut d, [100 * SEC, 120 * SEC, 105 * SEC, 121 * SEC]),
            NONE
        );
        assert_eq!(decisions(&mut d, [122 * SEC]), vec![0]);
    }

    #[test]
    fn a_block_silences_the_key_until_it_expires() {
        let mut d = Detector::new(vec![policy("sshd", 2, 60_000, 10_000)]);
        assert_eq!(decisions(&mut d, [0, 1]), vec![1]);
        // Blocked until 1 + 10 s: ignored, and the old events are gone.
        assert_eq!(decisions(&mut d, [2, 5_000, 10_000]), NONE);
        // From expiry it counts afresh: the hits during the block count
        // for nothing, so it takes two new ones.
        assert_eq!(decisions(&mut d, [10_001]), NONE);
        let dec = one(&mut d, &hit(IP), at(10_002)).expect("a new decision");
        assert_eq!((dec.count, dec.first_seen), (2, at(10_001)));
        assert_eq!(dec.expires_at(), at(20_002));
    }

    #[test]
    fn reset_forgets_windows_and_blocks_of_every_rule() {
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let mut d = Detector::new(vec![
            policy("sshd", 1, 60_000, 3_600_000),
            policy("jwt", 3, 60_000, 3_600_000),
        ]);
        let jwt = |ip| Hit {
            rule: RuleIdx(1),
            ..hit(ip)
        };
        for ip in [IP, other] {
            assert!(one(&mut d, &hit(ip), at(0)).is_some());
            assert_eq!(one(&mut d, &jwt(ip), at(0)), None);
            assert_eq!(one(&mut d, &jwt(ip), at(1)), None);
        }
        assert_eq!(d.tracked_keys(), 4);
        d.reset(IP);
        assert_eq!(d.tracked_keys(), 2);
        // The block is lifted, and the jwt window starts over.
        assert!(one(&mut d, &hit(IP), at(2)).is_some());
        assert_eq!(one(&mut d, &jwt(IP), at(2)), None);
        assert_eq!(one(&mut d, &jwt(IP), at(3)), None);
        assert!(one(&mut d, &jwt(IP), at(4)).is_some());
        // The other address was left alone.
        assert_eq!(one(&mut d, &hit(other), at(2)), None);
        assert!(one(&mut d, &jwt(other), at(2)).is_some());
        d.reset(other);
        d.reset(other); // forgetting twice is harmless
        assert!(one(&mut d, &hit(other), at(3)).is_some());
    }

    #[test]
    fn hits_for_unknown_rules_count_nothing() {
        let mut d = ssh(1, 60);
        let h = Hit {
            rule: RuleIdx(7),
            ..hit(IP)
        };
        assert_eq!(one(&mut d, &h, at(0)), None);
        assert_eq!(d.tracked_keys(), 0);
    }

    #[test]
    fn sessions_count_each_sshd_attempt_once() {
        use Tally::*;
        let mut d = ssh(7, 60);
        let mut sent = 0;
        let mut send = |d: &mut Detector, pid: u64, tally: Tally| {
            sent += 1;
            let h = Hit {
                session: Some(pid),
                tally,
                ..hit(IP)
            };
            one(d, &h, at(sent))
        };
        // pid 100 counts 1, 101 counts 3, 102 counts 1: 5 of 7.
        for (pid, tally) in [
            (100, Announce),
            (100, Each),
            (100, IfFirst),
            (101, Each),
            (101, Each),
            (101, Each),
            (101, IfFirst),
            (102, IfFirst),
            // pid 103: `Invalid user x` counts the 6th …
            (103, Announce),
            (103, Each),
        ] {
            assert_eq!(send(&mut d, pid, tally), None, "{pid} {tally:?}");
        }
        // … and its second `Failed password` the 7th.
        let dec = send(&mut d, 103, Each).expect("the seventh attempt");
        assert_eq!(dec.count, 7);
        assert_eq!(d.tracked_sessions(), 4);
        // A hit without a session counts its weight.
        let mut d = ssh(2, 60);
        let h = Hit {
            tally: IfFirst,
            ..hit(IP)
        };
        assert_eq!(one(&mut d, &h, at(0)), None);
        assert!(one(&mut d, &h, at(1)).is_some());
        assert_eq!(d.tracked_sessions(), 0);
    }

    #[test]
    fn sweep_drops_spent_keys_and_idle_sessions() {
        let mut d = Detector::new(vec![policy("sshd", 3, 60_000, 600_000)]);
        let ip = |i: u32| IpAddr::V4(Ipv4Addr::from(i));
        for i in 0..1_000 {
            let h = Hit {
                session: Some(u64::from(i)),
                ..hit(ip(i))
            };
            assert_eq!(one(&mut d, &h, at(0)), None);
        }
        // Two of them get blocked at 30 s, until 630 s.
        for i in [1, 2] {
            one(&mut d, &hit(ip(i)), at(30 * SEC));
            assert!(one(&mut d, &hit(ip(i)), at(30 * SEC)).is_some());
        }
        // One more is still in its window at 100 s.
        one(&mut d, &hit(ip(3)), at(50 * SEC));
        assert_eq!(d.tracked_keys(), 1_000);
        assert_eq!(d.tracked_sessions(), 1_000);

        d.sweep(at(100 * SEC));
        assert_eq!(d.tracked_keys(), 3, "blocked 1, 2 and in-window 3");
        d.sweep(at(200 * SEC));
        assert_eq!(d.tracked_keys(), 2);
        assert_eq!(d.tracked_sessions(), 1_000, "sessions idle for 10 min");
        d.sweep(at(601 * SEC));
        assert_eq!(d.tracked_sessions(), 0);
        assert_eq!(d.tracked_keys(), 2);
        // The blocks still stand after the sweeps.
        assert_eq!(one(&mut d, &hit(ip(1)), at(629 * SEC)), None);
        d.sweep(at(629 * SEC));
        assert_eq!(d.tracked_keys(), 2, "blocked until 630 s");
        d.sweep(at(700 * SEC));
        assert_eq!(d.tracked_keys(), 0);
    }

    #[test]
    fn sweep_is_spread_over_calls() {
        let mut d = ssh(3, 1);
        for i in 0..10_000u32 {
            one(&mut d, &hit(IpAddr::V4(Ipv4Addr::from(i))), at(0));
        }
        d.sweep(at(0)); // the first sweep is full, but nothing is spent
        assert_eq!(d.tracked_keys(), 10_000);
        d.sweep(at(1_000)); // one second: 4 of 64 shards
        let left = d.tracked_keys();
        assert!((8_500..9_900).contains(&left), "{left}");
        for s in 2..=16 {
            d.sweep(at(s * 1_000));
        }
        assert_eq!(d.tracked_keys(), 0);
    }

    /// Bytes per key, from the store's own accounting (std's table layout
    /// and malloc's block sizes), at a million one-event IPv4 keys.
    #[test]
    fn a_million_keys_fit() {
        const KEYS: u32 = 1_000_000;
        let mut d = ssh(50, 60);
        for i in 0..KEYS {
            one(
                &mut d,
                &hit(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))),
                at(0),
            );
        }
        assert_eq!(d.tracked_keys(), KEYS as usize);
        let bytes = d.approx_bytes();
        let per_key = bytes as f64 / f64::from(KEYS);
        eprintln!("1M one-event IPv4 keys: {bytes} bytes, {per_key:.1} per key");
        assert!(per_key < 80.0, "{per_key}");
        assert!(bytes < 100 << 20);

        // A quarter million IPv6 keys, three events held each: the first
        // heap ring (capacity 4, a 32-byte block).
        let mut d = ssh(50, 60);
        for i in 0..KEYS / 4 {
            let ip = IpAddr::V6(Ipv6Addr::from(u128::from(i) << 64 | 1));
            for t in 0..3 {
                one(&mut d, &hit(ip), at(t));
            }
        }
        let per_key = d.approx_bytes() as f64 / f64::from(KEYS / 4);
        eprintln!("250k three-event IPv6 keys: {per_key:.1} bytes per key");
        assert!(per_key < 112.0 + 32.0, "{per_key}");
    }

    /// The resident memory a million IPv4 keys really take, each holding
    /// `events` events, against the accounting.
    fn measure_rss(events: i64) {
        fn rss() -> usize {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
            let pages: usize = statm
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            pages * 4096
        }
        let before = rss();
        let mut d = ssh(50, 60);
        for i in 0..1_000_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)));
            for t in 0..events {
                one(&mut d, &hit(ip), at(t));
            }
        }
        let after = rss();
        eprintln!(
            "1M keys of {events} events: RSS grew {:.1} bytes per key, accounting says {:.1}",
            after.saturating_sub(before) as f64 / 1e6,
            d.approx_bytes() as f64 / 1e6
        );
    }

    /// Run alone, since other tests share the process:
    /// `cargo test --lib detector::tests::rss -- --ignored --test-threads=1 --nocapture`
    #[test]
    #[ignore]
    fn rss_of_a_million_one_event_keys() {
        measure_rss(1);
    }

    #[test]
    #[ignore]
    fn rss_of_a_million_three_event_keys() {
        measure_rss(3);
    }

    /// Hits per second through `observe` (with a sweep per second of event
    /// time). Meaningful only in release:
    /// `cargo test --release --lib detector::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        const HITS: i64 = 10_000_000;
        let mut d = ssh(50, 60);
        let hits: Vec<Hit> = (0..10_000u32)
            .map(|i| hit(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))))
            .collect();
        let start = std::time::Instant::now();
        let mut decided = 0;
        // One hit per millisecond of event time; each address every 10 s,
        // so each key holds six events of its 60 s window.
        for t in 0..HITS {
            let h = &hits[t as usize % hits.len()];
            decided += d.observe(h, at(t)).len();
            if t % 1_000 == 0 {
                d.sweep(at(t));
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{:.1} M hits/s ({decided} decisions, {} keys)",
            HITS as f64 / secs / 1e6,
            d.tracked_keys()
        );
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    fn net(s: &str) -> Subject {
        s.parse().expect("literal network")
    }

    /// `policy`, counting IPv6 failures per `/prefix` too.
    fn policy6(threshold: u32, window_ms: u64, block_ms: u64, prefix: u8) -> Policy {
        Policy {
            ipv6_prefix: prefix,
            ..policy("sshd", threshold, window_ms, block_ms)
        }
    }

    #[test]
    fn an_attacker_rotating_in_a_64_gets_the_64_blocked() {
        let mut d = Detector::new(vec![policy6(50, 60_000, 3_600_000, 64)]);
        let mut all = Vec::new();
        for i in 0..50u16 {
            let ip = addr(&format!("2001:db8:1:2:{i:x}:{:x}::{i:x}", 7 * i + 1));
            all.extend(d.observe(&hit(ip), at(i64::from(i) * 1_200)));
        }
        assert_eq!(all.len(), 1, "{all:?}");
        let dec = &all[0];
        assert_eq!(dec.subject, net("2001:db8:1:2::/64"));
        assert_eq!(dec.subject.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            (dec.count, dec.first_seen, dec.last_seen),
            (50, at(0), at(49 * 1_200))
        );
        // 50 addresses' keys and the network's.
        assert_eq!(d.tracked_keys(), 51);
        // The network is blocked: its other addresses count only for
        // themselves now.
        let other = addr("2001:db8:1:2:ffff::1");
        assert_eq!(d.observe(&hit(other), at(60_000)).len(), 0);
        // Another /64 of the same /48 counts apart.
        let mut d = Detector::new(vec![policy6(2, 60_000, 3_600_000, 64)]);
        assert_eq!(d.observe(&hit(addr("2001:db8:1:2::1")), at(0)).len(), 0);
        assert_eq!(d.observe(&hit(addr("2001:db8:1:3::1")), at(1)).len(), 0);
    }

    #[test]
    fn one_ipv6_address_reaching_the_threshold_alone_blocks_the_address_only() {
        let ip = addr("2001:db8:1:2::7");
        let mut d = Detector::new(vec![policy6(50, 60_000, 3_600_000, 64)]);
        for i in 0..49 {
            assert_eq!(d.observe(&hit(ip), at(i * SEC)).len(), 0);
        }
        let got: Vec<Decision> = d.observe(&hit(ip), at(49 * SEC)).collect();
        let subjects: Vec<String> = got.iter().map(|d| d.subject.to_string()).collect();
        assert_eq!(
            subjects,
            ["2001:db8:1:2::7"],
            "the /64's failures are all its"
        );
        assert_eq!(
            (got[0].count, got[0].first_seen, got[0].last_seen),
            (50, at(0), at(49 * SEC))
        );
        // Blocked, its further failures feed neither its window nor its /64.
        for i in 50..200 {
            assert_eq!(d.observe(&hit(ip), at(i * SEC / 4)).len(), 0, "blocked");
        }
        // A neighbour starts the /64 afresh: 49 of its own do not block.
        let neighbour = addr("2001:db8:1:2::8");
        for i in 0..49 {
            assert_eq!(d.observe(&hit(neighbour), at(60 * SEC + i)).len(), 0);
        }
        // Two addresses' failures reaching the threshold together do.
        let third = addr("2001:db8:1:2::9");
        let got: Vec<String> = d
            .observe(&hit(third), at(61 * SEC))
            .map(|d| d.subject.to_string())
            .collect();
        assert_eq!(got, ["2001:db8:1:2::/64"]);

        // The address alone, once the network is blocked by others.
        let mut d = Detector::new(vec![policy6(3, 60_000, 3_600_000, 64)]);
        let rotating = ["2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2::c"];
        let got: Vec<Decision> = rotating
            .iter()
            .enumerate()
            .flat_map(|(i, ip)| d.observe(&hit(addr(ip)), at(i as i64)))
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(d.observe(&hit(ip), at(10)).len(), 0);
        assert_eq!(d.observe(&hit(ip), at(11)).len(), 0);
        let third = one(&mut d, &hit(ip), at(12)).expect("the address's block");
        assert_eq!(third.subject, Subject::Addr(ip));
    }

    #[test]
    fn ipv4_and_prefix_128_count_per_address_only() {
        let mut d = Detector::new(vec![policy6(2, 60_000, 3_600_000, 64)]);
        for (i, ip) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
            .iter()
            .enumerate()
        {
            assert_eq!(d.observe(&hit(addr(ip)), at(i as i64)).len(), 0);
        }
        assert_eq!(d.tracked_keys(), 3);
        let mut d = Detector::new(vec![policy6(2, 60_000, 3_600_000, 128)]);
        for (i, ip) in ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
            .iter()
            .enumerate()
        {
            assert_eq!(d.observe(&hit(addr(ip)), at(i as i64)).len(), 0);
        }
        assert_eq!(d.tracked_keys(), 3);
        // More than 128 acts as 128, and is reported so.
        let d = Detector::new(vec![policy6(2, 60_000, 3_600_000, 200)]);
        assert_eq!(d.policies()[0].ipv6_prefix, 128);
        // A network key is not its network address's key.
        let mut d = Detector::new(vec![policy6(2, 60_000, 3_600_000, 64)]);
        assert_eq!(d.observe(&hit(addr("2001:db8::")), at(0)).len(), 0);
        assert_eq!(d.tracked_keys(), 2);
    }

    #[test]
    fn a_success_resets_the_address_count_of_its_rule_only() {
        let success = |ip| Hit {
            tally: Tally::Reset,
            ..hit(ip)
        };
        let mut d = Detector::new(vec![
            policy6(3, 60_000, 3_600_000, 64),
            Policy {
                id: "jwt".into(),
                ..policy6(3, 60_000, 3_600_000, 64)
            },
        ]);
        let jwt = |ip| Hit {
            rule: RuleIdx(1),
            ..hit(ip)
        };
        assert_eq!(decisions(&mut d, [0, 1]), NONE);
        d.observe(&jwt(IP), at(1));
        d.observe(&jwt(IP), at(1));
        // A success counts nothing, and forgets the two sshd failures …
        assert_eq!(d.observe(&success(IP), at(2)).len(), 0);
        assert_eq!(decisions(&mut d, [3, 4]), NONE);
        assert_eq!(decisions(&mut d, [5]), vec![0]);
        // … but not the jwt ones.
        assert_eq!(d.observe(&jwt(IP), at(6)).len(), 1);

        // A success for an address never seen keeps nothing.
        let keys = d.tracked_keys();
        d.observe(&success(addr("192.0.2.1")), at(7));
        assert_eq!(d.tracked_keys(), keys);

        // A block that stands is kept: its failures stay uncounted.
        assert_eq!(d.observe(&success(IP), at(8)).len(), 0);
        assert_eq!(decisions(&mut d, [9, 10, 11]), NONE);

        // One address's success does not clear its /64: the rotation goes
        // on counting there.
        let mut d = Detector::new(vec![policy6(3, 60_000, 3_600_000, 64)]);
        let (a, b) = (addr("2001:db8:1:2::a"), addr("2001:db8:1:2::b"));
        assert_eq!(d.observe(&hit(a), at(0)).len(), 0);
        assert_eq!(d.observe(&hit(a), at(1)).len(), 0);
        d.observe(&success(a), at(2));
        let got: Vec<Decision> = d.observe(&hit(b), at(3)).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].subject, net("2001:db8:1:2::/64"));
        // The same through `reset_rule`, and a success in a session leaves
        // the session's tally alone.
        let mut d = ssh(2, 60);
        let in_session = |tally| Hit {
            session: Some(9),
            tally,
            ..hit(IP)
        };
        assert_eq!(one(&mut d, &in_session(Tally::Announce), at(0)), None);
        d.reset_rule(RuleIdx(0), IP);
        assert_eq!(one(&mut d, &in_session(Tally::Reset), at(1)), None);
        // The announce's credit is still there: this `Each` counts nothing.
        assert_eq!(one(&mut d, &in_session(Tally::Each), at(2)), None);
        assert_eq!(decisions(&mut d, [3]), NONE);
        assert_eq!(decisions(&mut d, [4]), vec![0]);
    }

    #[test]
    fn an_operator_reset_lifts_the_networks_holding_the_address() {
        let ip = addr("2001:db8:1:2::7");
        let mut d = Detector::new(vec![
            policy6(2, 60_000, 3_600_000, 64),
            Policy {
                id: "jwt".into(),
                ..policy6(2, 60_000, 3_600_000, 48)
            },
        ]);
        let jwt = |ip| Hit {
            rule: RuleIdx(1),
            ..hit(ip)
        };
        assert_eq!(d.observe(&hit(ip), at(0)).len(), 0);
        assert_eq!(d.observe(&hit(ip), at(1)).len(), 1);
        assert_eq!(d.observe(&jwt(ip), at(1)).len(), 0);
        // Its neighbour in the /64 and the /48.
        let neighbour = addr("2001:db8:1:2::8");
        d.observe(&hit(neighbour), at(2));
        d.observe(&jwt(neighbour), at(2));
        assert_eq!(d.tracked_keys(), 3 + 3);
        d.reset(ip);
        // Left: the neighbour's two address keys.
        assert_eq!(d.tracked_keys(), 2);
        // The /48's block and count are gone: it counts afresh, and blocks
        // again on two failures of two addresses.
        assert_eq!(d.observe(&jwt(ip), at(3)).len(), 0);
        let got: Vec<String> = d
            .observe(&jwt(addr("2001:db8:1:2::9")), at(4))
            .map(|d| d.subject.to_string())
            .collect();
        assert_eq!(got, ["2001:db8:1::/48"]);

        // Lifting a network forgets its own window only.
        let mut d = Detector::new(vec![policy6(2, 60_000, 3_600_000, 64)]);
        let (a, b) = (addr("2001:db8:1:2::a"), addr("2001:db8:1:2::b"));
        d.observe(&hit(a), at(0));
        assert_eq!(d.observe(&hit(b), at(1)).len(), 1);
        d.reset_subject(&net("2001:db8:1:2::/64"));
        d.reset_subject(&net("2001:db8:1::/48")); // no rule counts /48s
        d.reset_subject(&net("203.0.113.0/24")); // nor IPv4 networks
        assert_eq!(d.tracked_keys(), 2);
        let got: Vec<String> = d
            .observe(&hit(a), at(2))
            .map(|d| d.subject.to_string())
            .collect();
        assert_eq!(got, ["2001:db8:1:2::a"]);
        d.reset_subject(&Subject::Addr(a));
        assert_eq!(d.tracked_keys(), 1, "b's window");
    }

    fn flood_ip(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
    }

    /// The issue "keep protecting through floods": a flood of distinct
    /// addresses four times the cap, one failure each, while an attacker
    /// keeps failing, and with blocks standing from before.
    #[test]
    fn a_flood_beyond_the_cap_keeps_the_cap_and_the_attacker_blocked() {
        const CAP: usize = 10_000;
        const FLOOD: u32 = 40_000;
        let mut d = Detector::with_limits(
            vec![policy("sshd", 50, 60_000, 3_600_000)],
            DetectorLimits { max_keys: CAP },
        );
        // Blocked before the flood.
        let blocked: Vec<IpAddr> = (1..=100)
            .map(|i| IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)))
            .collect();
        for &ip in &blocked {
            let h = Hit {
                weight: 50,
                ..hit(ip)
            };
            assert!(one(&mut d, &h, at(0)).is_some());
        }
        let mut attacker_hits = 0;
        let mut attacker_blocked = None;
        for i in 0..FLOOD {
            let t = i64::from(i) / 4;
            assert_eq!(one(&mut d, &hit(flood_ip(i)), at(t)), None);
            if i % 400 == 0 {
                attacker_hits += 1;
                if let Some(dec) = one(&mut d, &hit(IP), at(t)) {
                    assert!(attacker_blocked.is_none());
                    attacker_blocked = Some((attacker_hits, dec));
                }
            }
            assert!(d.tracked_keys() <= CAP);
        }
        let (nth, dec) = attacker_blocked.expect("the attacker is blocked");
        assert_eq!((nth, dec.count, dec.first_seen), (50, 50, at(0)));
        assert_eq!(dec.last_seen, at(49 * 400 / 4));
        // Nothing was swept: every key is held or was evicted.
        let keys = FLOOD as usize + 1 + blocked.len();
        assert_eq!(d.tracked_keys() + d.evictions() as usize, keys);
        assert!(d.evictions() >= (keys - CAP) as u64);
        // The blocks from before the flood still stand.
        for &ip in &blocked {
            let h = Hit {
                weight: 50,
                ..hit(ip)
            };
            assert_eq!(one(&mut d, &h, at(FLOOD as i64 / 4)), None, "{ip}");
        }
        // The flood's first addresses were evicted: they count afresh.
        let h = Hit {
            weight: 49,
            ..hit(flood_ip(0))
        };
        assert_eq!(one(&mut d, &h, at(FLOOD as i64 / 4)), None);
    }

    /// Blocks go last, but they go: with a threshold of 1 every key of the
    /// flood is a block, and the cap still holds.
    #[test]
    fn a_flood_of_blocks_keeps_the_cap() {
        for cap in [0, 1, 2, 3, 1_000] {
            let mut d = Detector::with_limits(
                vec![policy6(1, 60_000, 3_600_000, 64)],
                DetectorLimits { max_keys: cap },
            );
            for i in 0..5_000u32 {
                let ip = if i % 2 == 0 {
                    flood_ip(i)
                } else {
                    IpAddr::V6(Ipv6Addr::from(u128::from(i) << 64 | 1))
                };
                // Each IPv6 address alone in its /64: the address is
                // blocked, the /64 forgotten.
                let n = d.observe(&hit(ip), at(i64::from(i))).len();
                assert_eq!(n, 1);
                assert!(
                    d.tracked_keys() <= cap.max(2),
                    "{cap}: {}",
                    d.tracked_keys()
                );
            }
            assert_eq!(d.tracked_keys() + d.evictions() as usize, 2_500 + 2_500);
        }
    }

    /// The memory a flood leaves at the cap, per key of the cap: both
    /// generations' tables, as the store accounts them. It stays put
    /// however long the flood goes on.
    #[test]
    fn bytes_at_the_cap() {
        const CAP: usize = 100_000;
        let mut d = Detector::with_limits(
            vec![policy("sshd", 50, 60_000, 3_600_000)],
            DetectorLimits { max_keys: CAP },
        );
        let mut most = 0;
        for i in 0..5 * CAP as u32 {
            one(&mut d, &hit(flood_ip(i)), at(0));
            if i % 1_000 == 0 {
                most = most.max(d.approx_bytes());
            }
        }
        assert!(d.tracked_keys() >= CAP / 2);
        let per_key = most as f64 / CAP as f64;
        eprintln!("a flood at a cap of {CAP} IPv4 keys: at most {per_key:.1} bytes per key");
        assert!(per_key < 80.0, "{per_key}");
    }

    /// A flood of distinct addresses through the default cap: hits per
    /// second, and the longest hit (a retirement). Meaningful only in
    /// release:
    /// `cargo test --release --lib detector::tests::flood_at_the_cap -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn flood_at_the_cap() {
        const HITS: u32 = 4_000_000;
        let mut d = ssh(50, 60);
        let start = std::time::Instant::now();
        let mut longest = std::time::Duration::ZERO;
        for i in 0..HITS {
            let h = hit(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761))));
            let one_hit = std::time::Instant::now();
            d.observe(&h, at(i64::from(i / 1_000)));
            longest = longest.max(one_hit.elapsed());
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{:.2} M new keys/s, longest hit {longest:?}, {} keys, {} evicted, {:.1} MB",
            f64::from(HITS) / secs / 1e6,
            d.tracked_keys(),
            d.evictions(),
            d.approx_bytes() as f64 / 1e6
        );
        assert!(d.tracked_keys() <= DEFAULT_MAX_KEYS);
    }

    /// One step of a random stream, after `gap` ms: a hit, a success (a
    /// [`Tally::Reset`] hit) or a sweep.
    #[derive(Clone, Debug)]
    enum Step {
        Hit {
            rule: u16,
            ip: usize,
            gap: i64,
            weight: u32,
        },
        Reset {
            rule: u16,
            ip: usize,
            gap: i64,
        },
        Sweep {
            gap: i64,
        },
    }

    /// The addresses of the random streams: IPv4, and IPv6 that share a
    /// /64, or only a /48, or nothing, or a /112 within the /64.
    const IPS: [IpAddr; 8] = [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0xffff, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 9)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 9)),
    ];

    /// A larger set, for the cap: 12 IPv4 addresses and 12 IPv6 ones in
    /// three /64s.
    fn cap_ips() -> Vec<IpAddr> {
        (0..24u8)
            .map(|i| match i {
                0..12 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
                _ => IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    u16::from(i % 3),
                    0,
                    0,
                    0,
                    u16::from(i),
                )),
            })
            .collect()
    }

    fn gap() -> impl Strategy<Value = i64> {
        prop_oneof![
            3 => Just(0i64),
            3 => 0..50i64,
            3 => 0..2_000i64,
            1 => 0..20_000i64,
        ]
    }

    fn step(ips: usize, sweep_gap: BoxedStrategy<i64>) -> impl Strategy<Value = Step> {
        prop_oneof![
            10 => (0..2u16, 0..ips, gap(), prop_oneof![9 => Just(1u32), 1 => 0..5u32])
                .prop_map(|(rule, ip, gap, weight)| Step::Hit { rule, ip, gap, weight }),
            1 => (0..2u16, 0..ips, gap()).prop_map(|(rule, ip, gap)| Step::Reset { rule, ip, gap }),
            1 => sweep_gap.prop_map(|gap| Step::Sweep { gap }),
        ]
    }

    fn policy_strategy(
        id: &'static str,
        windows: std::ops::Range<u64>,
        blocks: std::ops::Range<u64>,
    ) -> impl Strategy<Value = Policy> {
        let prefix = prop_oneof![
            3 => Just(128u8),
            3 => Just(64u8),
            1 => Just(48u8),
            1 => Just(112u8),
            1 => Just(127u8),
            1 => Just(0u8),
        ];
        (1..7u32, windows, blocks, prefix).prop_map(move |(n, w, b, prefix)| Policy {
            ipv6_prefix: prefix,
            ..policy(id, n, w, b)
        })
    }

    type Key = (u16, Subject);

    /// A key's events since its last block, and that block's end.
    struct KeyState {
        events: Vec<i64>,
        blocked_until: i64,
    }

    /// The cap's generations, as the `window` module doc describes them.
    struct Generations {
        per_generation: usize,
        current: HashSet<Key>,
        previous: HashSet<Key>,
        now: i64,
        evictions: u64,
        /// False once a retirement met more standing blocks than it has
        /// room to carry: which ones the store kept is then arbitrary.
        exact: bool,
    }

    /// The reference: every event kept, counted by brute force; with a
    /// cap, the generations kept as plain sets.
    #[derive(Default)]
    struct Model {
        keys: HashMap<Key, KeyState>,
        gens: Option<Generations>,
    }

    impl Model {
        fn capped(max_keys: usize) -> Model {
            Model {
                keys: HashMap::new(),
                gens: Some(Generations {
                    per_generation: (max_keys / 2).max(1),
                    current: HashSet::new(),
                    previous: HashSet::new(),
                    now: i64::MIN,
                    evictions: 0,
                    exact: true,
                }),
            }
        }

        fn exact(&self) -> bool {
            self.gens.as_ref().is_none_or(|g| g.exact)
        }

        /// The subjects a hit counts for, the network found by masking.
        fn subjects(p: &Policy, ip: IpAddr) -> Vec<Subject> {
            let mut subjects = vec![Subject::Addr(ip)];
            if let (IpAddr::V6(v6), n @ 0..128) = (ip, p.ipv6_prefix) {
                let mask = u128::MAX.checked_shl(128 - u32::from(n)).unwrap_or(0);
                let network = Ipv6Addr::from(u128::from(v6) & mask);
                let net = ipnet::Ipv6Net::new(network, n).expect("n < 128");
                subjects.push(Subject::Net(ipnet::IpNet::V6(net)));
            }
            subjects
        }

        /// Puts `key` in the current generation, retiring the previous one
        /// when the current one is full.
        fn touch(&mut self, key: Key, t: i64) {
            let Some(g) = &mut self.gens else {
                return;
            };
            g.now = g.now.max(t);
            if g.current.contains(&key) {
                return;
            }
            g.previous.remove(&key);
            if g.current.len() >= g.per_generation {
                let retiring = std::mem::replace(&mut g.previous, std::mem::take(&mut g.current));
                let now = g.now;
                let blocked: Vec<Key> = retiring
                    .iter()
                    .filter(|k| {
                        let s = &self.keys[k];
                        s.events.is_empty() && s.blocked_until > now
                    })
                    .copied()
                    .collect();
                let room = g.per_generation / 2;
                if blocked.len() > room {
                    g.exact = false;
                }
                g.current = blocked.into_iter().take(room).collect();
                for k in retiring.difference(&g.current) {
                    self.keys.remove(k);
                    g.evictions += 1;
                }
            }
            g.current.insert(key);
        }

        /// The decisions of a failure: (subject, count, first_seen).
        fn observe(
            &mut self,
            p: &Policy,
            rule: u16,
            ip: IpAddr,
            t: i64,
            weight: u32,
        ) -> Vec<(Subject, u32, i64)> {
            let mut out = Vec::new();
            if weight == 0 {
                return out;
            }
            let addr_key = (rule, Subject::Addr(ip));
            let addr_was_blocked = self
                .keys
                .get(&addr_key)
                .is_some_and(|s| s.events.is_empty() && t < s.blocked_until);
            for subject in Model::subjects(p, ip) {
                let key = (rule, subject);
                if subject != Subject::Addr(ip) && addr_was_blocked {
                    break;
                }
                self.touch(key, t);
                let state = self.keys.entry(key).or_insert(KeyState {
                    events: Vec::new(),
                    blocked_until: i64::MIN,
                });
                if t < state.blocked_until {
                    continue;
                }
                let w = p.window.as_millis() as i64;
                let inside: Vec<i64> = state
                    .events
                    .iter()
                    .copied()
                    .filter(|&e| t - w < e && e <= t)
                    .collect();
                let count = inside.len() as u32 + weight;
                if count >= p.threshold {
                    state.events.clear();
                    state.blocked_until = t + p.block_for.as_millis() as i64;
                    out.push((subject, count, inside.into_iter().min().unwrap_or(t)));
                } else {
                    state.events.extend(std::iter::repeat_n(t, weight as usize));
                }
            }
            // The address and its network reached together, on the same
            // failures: only the address is blocked; the network is forgotten.
            if let [(Subject::Addr(_), a, _), (net, n, _)] = out[..] {
                if a == n {
                    out.pop();
                    let key = (rule, net);
                    self.keys.remove(&key);
                    if let Some(g) = &mut self.gens {
                        g.current.remove(&key);
                        g.previous.remove(&key);
                    }
                }
            }
            out
        }

        /// A success: the address's events in the rule are forgotten; a
        /// standing block (which holds no events) is kept.
        fn reset(&mut self, rule: u16, ip: IpAddr) {
            let key = (rule, Subject::Addr(ip));
            if self.keys.get(&key).is_some_and(|s| !s.events.is_empty()) {
                self.keys.remove(&key);
                if let Some(g) = &mut self.gens {
                    g.current.remove(&key);
                    g.previous.remove(&key);
                }
            }
        }

        /// A full sweep at `now`: drops the keys with no event in a window
        /// ending at or after `now` and no block standing.
        fn sweep(&mut self, now: i64, policies: &[Policy]) {
            self.keys.retain(|(rule, _), s| {
                let w = policies[usize::from(*rule)].window.as_millis() as i64;
                match s.events.iter().max() {
                    None => s.blocked_until > now,
                    Some(&newest) => newest > now - w,
                }
            });
            if let Some(g) = &mut self.gens {
                g.current.retain(|k| self.keys.contains_key(k));
                g.previous.retain(|k| self.keys.contains_key(k));
            }
        }
    }

    fn cases() -> u32 {
        std::env::var("AUTHWATCH_PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256)
    }

    /// Runs `steps` through a detector and the model side by side. With a
    /// cap (`max_keys`), sweeps must be full ones (16 s apart or more), so
    /// that the model knows what they drop, and the key counts are compared
    /// as well as the decisions.
    fn run(
        policies: Vec<Policy>,
        steps: Vec<Step>,
        ips: &[IpAddr],
        max_keys: Option<usize>,
    ) -> Result<(), TestCaseError> {
        let (mut d, mut model) = match max_keys {
            None => (Detector::new(policies.clone()), Model::default()),
            Some(cap) => (
                Detector::with_limits(policies.clone(), DetectorLimits { max_keys: cap }),
                Model::capped(cap),
            ),
        };
        let mut t = 1_700_000_000_000i64;
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Step::Sweep { gap } => {
                    t += gap;
                    d.sweep(at(t));
                    if max_keys.is_some() {
                        model.sweep(t, &policies);
                    }
                    prop_assert!(d.tracked_keys() <= model.keys.len() || !model.exact());
                }
                Step::Reset { rule, ip, gap } => {
                    t += gap;
                    let h = Hit {
                        rule: RuleIdx(rule),
                        tally: Tally::Reset,
                        ..hit(ips[ip])
                    };
                    prop_assert_eq!(d.observe(&h, at(t)).len(), 0, "step {}", i);
                    model.reset(rule, ips[ip]);
                }
                Step::Hit {
                    rule,
                    ip,
                    gap,
                    weight,
                } => {
                    t += gap;
                    let h = Hit {
                        rule: RuleIdx(rule),
                        weight,
                        ..hit(ips[ip])
                    };
                    let p = &policies[usize::from(rule)];
                    let got: Vec<Decision> = d.observe(&h, at(t)).collect();
                    let want: Vec<Decision> = model
                        .observe(p, rule, ips[ip], t, weight)
                        .into_iter()
                        .map(|(subject, count, first)| Decision {
                            rule: p.id.clone(),
                            subject,
                            count,
                            window: p.window,
                            first_seen: at(first),
                            last_seen: at(t),
                            block_for: p.block_for,
                        })
                        .collect();
                    if model.exact() {
                        prop_assert_eq!(got, want, "step {}", i);
                    }
                }
            }
            if let (Some(cap), Some(g)) = (max_keys, &model.gens) {
                prop_assert!(d.tracked_keys() <= cap.max(2), "step {}", i);
                if g.exact {
                    prop_assert_eq!(d.tracked_keys(), model.keys.len(), "step {}", i);
                    prop_assert_eq!(d.evictions(), g.evictions, "step {}", i);
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Random streams, in time order, with successes and sweeps at
        /// random points, over IPv4 and IPv6 addresses that share networks
        /// in various ways, with random prefix lengths: the detector
        /// decides exactly what the brute-force model does.
        #[test]
        fn decisions_match_a_brute_force_model(
            policies in (policy_strategy("a", 1..5_000, 0..8_000), policy_strategy("b", 1..5_000, 0..8_000)),
            steps in proptest::collection::vec(step(IPS.len(), gap().boxed()), 1..300),
        ) {
            run(vec![policies.0, policies.1], steps, &IPS, None)?;
        }

        /// The same with a small cap, against a model of the generations:
        /// the same decisions, keys and evictions, as long as the model
        /// can know which blocks a retirement carries; and never more keys
        /// than the cap.
        #[test]
        fn the_cap_matches_a_model_of_its_generations(
            policies in (policy_strategy("a", 1..40_000, 0..60_000), policy_strategy("b", 1..40_000, 0..60_000)),
            max_keys in 0..64usize,
            steps in proptest::collection::vec(step(24, (16_000..40_000i64).boxed()), 1..400),
        ) {
            run(vec![policies.0, policies.1], steps, &cap_ips(), Some(max_keys))?;
        }
    }
}
