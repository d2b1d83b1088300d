//! The detector: exact sliding windows per rule and client, and the
//! decision to block.
//!
//! It is pure: [`Detector::observe`] takes a hit with its event time and
//! returns at most one [`Decision`]. It reads no clock and does no I/O, so
//! replaying a log gives the same decisions as living through it.
//!
//! * `window`: the ring of recent failure times per (rule, client) and the
//!   block that stands for it; a [`WindowStore`] keeps them, by default the
//!   in-process [`MemoryStore`].
//! * `session`: how the several lines of one connection count (see
//!   [`Tally`](crate::rules::Tally)).

mod session;
mod window;

pub use window::{Limit, MemoryStore, Reached, WindowStore, MAX_WINDOW_MS};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::rules::Hit;
use crate::time::Timestamp;
use session::Sessions;

/// A decision to block `subject` for `block_for` from `last_seen`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The id of the rule whose window reached its threshold.
    pub rule: Arc<str>,
    /// The client address that reached the threshold.
    pub subject: IpAddr,
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
}

/// Counts failures per rule and client in exact sliding windows and decides
/// when to block.
///
/// # Semantics
///
/// * A block fires on the event that brings the number of events of (rule,
///   client) in `(t − window, t]` to the threshold; an event exactly
///   `window` older than `t` is out.
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
/// * Hits of one session count as their [`Tally`](crate::rules::Tally)
///   says; a hit without a session counts its weight.
///
/// # Cost
///
/// Per hit: one lookup in the sessions (if the hit has one) and one in the
/// windows, both std `HashMap`s with keyed SipHash, since the addresses are
/// the attacker's choice. Work per hit is bounded by the threshold.
///
/// Memory per key is 38 to 75 bytes for IPv4 (56 to 112 for IPv6),
/// depending on how full the hash table happens to be, plus a heap ring
/// only for keys holding three or more events; see the `window` module.
/// Sessions are capped at 65,536 (about 6 MiB at most).
///
/// The store is a [`WindowStore`], [`MemoryStore`] by default, so that a
/// fleet mode can count in Redis across hosts later.
pub struct Detector<S = MemoryStore> {
    policies: Vec<Policy>,
    limits: Vec<Limit>,
    store: S,
    sessions: Sessions,
}

impl Detector {
    /// A detector with one policy per rule: `policies[i]` is the policy of
    /// `RuleIdx(i)`.
    pub fn new(policies: Vec<Policy>) -> Detector {
        Detector::with_store(policies, MemoryStore::new())
    }
}

impl<S: WindowStore> Detector<S> {
    /// A detector that keeps its windows in `store`.
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
                ..p
            })
            .collect();
        Detector {
            policies,
            limits,
            store,
            sessions: Sessions::default(),
        }
    }

    /// Counts `hit` at event time `t` (the engine already resolved
    /// `hit.time` or the read time into `t`) and returns a [`Decision`]
    /// when this hit brings the count for (rule, ip) in `(t − window, t]`
    /// to the threshold. A hit for a rule without a policy counts nothing.
    pub fn observe(&mut self, hit: &Hit, t: Timestamp) -> Option<Decision> {
        let idx = usize::from(hit.rule.0);
        let limit = self.limits.get(idx)?;
        let weight = match hit.session {
            None => hit.weight,
            Some(id) => {
                self.sessions
                    .tally(hit.rule, id, hit.ip, hit.tally, hit.weight, t.as_millis())
            }
        };
        if weight == 0 {
            return None;
        }
        let reached = self.store.record(hit.rule, hit.ip, t, weight, limit)?;
        let policy = &self.policies[idx];
        Some(Decision {
            rule: policy.id.clone(),
            subject: hit.ip,
            count: reached.count,
            window: policy.window,
            first_seen: reached.first_seen,
            last_seen: reached.last_seen,
            block_for: policy.block_for,
        })
    }

    /// Forgets the window (and any block memory) of `ip` for every rule —
    /// used when an operator lifts a block. Sessions are kept: they say how
    /// a connection's lines count, not what the client deserves.
    pub fn reset(&mut self, ip: IpAddr) {
        self.store.forget(ip, self.limits.len());
    }

    /// Drops keys whose window has passed and whose block (if any) has
    /// expired, and sessions idle for longer than 10 minutes, relative to
    /// event time `now`. Meant to be called about once per second of event
    /// time: each call sweeps only the share of the keys due for the event
    /// time since the last call, so the whole store is covered every 16 s
    /// and a call at a million keys touches about a sixteenth of them.
    ///
    /// Dropping a key never changes a decision for hits at or after `now`.
    pub fn sweep(&mut self, now: Timestamp) {
        self.store.sweep(now, &self.limits);
        self.sessions.sweep(now.as_millis());
    }

    /// The number of (rule, client) keys held.
    pub fn tracked_keys(&self) -> usize {
        self.store.len()
    }

    pub fn tracked_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Roughly how many bytes the windows and sessions hold (for metrics).
    pub fn approx_bytes(&self) -> usize {
        self.store.approx_bytes() + self.sessions.approx_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleIdx, Tally};
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    const SEC: i64 = 1_000;
    /// No decisions (typed: `vec![]` alone is ambiguous next to serde_json).
    const NONE: Vec<usize> = Vec::new();

    fn policy(id: &str, threshold: u32, window_ms: u64, block_ms: u64) -> Policy {
        Policy {
            id: id.into(),
            threshold,
            window: Duration::from_millis(window_ms),
            block_for: Duration::from_millis(block_ms),
        }
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
            .filter_map(|(i, t)| d.observe(&hit(IP), at(t)).map(|_| i))
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
            if let Some(dec) = d.observe(&hit(IP), at(t)) {
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
                subject: IP,
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
        let dec = d.observe(&hit(IP), at(5)).expect("a decision");
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
        assert_eq!(d.observe(&h, at(0)), None);
        h.weight = 1;
        assert_eq!(d.observe(&h, at(1)), None);
        let dec = d.observe(&h, at(2)).expect("3 + 1 + 1 reach 5");
        assert_eq!((dec.count, dec.first_seen), (5, at(0)));

        // A weight beyond the threshold fires at once, with the full count,
        // and stores nothing.
        let mut d = ssh(50, 60);
        h.weight = 1_000_000;
        let dec = d.observe(&h, at(7)).expect("a decision");
        assert_eq!(
            (dec.count, dec.first_seen, dec.last_seen),
            (1_000_000, at(7), at(7))
        );
        assert_eq!(d.tracked_keys(), 1);

        // Weight 0 counts nothing.
        let mut d = ssh(1, 60);
        h.weight = 0;
        assert_eq!(d.observe(&h, at(0)), None);
    }

    #[test]
    fn out_of_order_events_are_judged_at_the_newest() {
        // 100 s, 105 s, then 98 s from a file with a slower clock: three in
        // (95 s, 105 s].
        let mut d = ssh(3, 10);
        assert_eq!(decisions(&mut d, [100 * SEC, 105 * SEC]), NONE);
        let dec = d
            .observe(&hit(IP), at(98 * SEC))
            .expect("three in the window");
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
        let dec = d.observe(&hit(IP), at(10_002)).expect("a new decision");
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
            assert!(d.observe(&hit(ip), at(0)).is_some());
            assert_eq!(d.observe(&jwt(ip), at(0)), None);
            assert_eq!(d.observe(&jwt(ip), at(1)), None);
        }
        assert_eq!(d.tracked_keys(), 4);
        d.reset(IP);
        assert_eq!(d.tracked_keys(), 2);
        // The block is lifted, and the jwt window starts over.
        assert!(d.observe(&hit(IP), at(2)).is_some());
        assert_eq!(d.observe(&jwt(IP), at(2)), None);
        assert_eq!(d.observe(&jwt(IP), at(3)), None);
        assert!(d.observe(&jwt(IP), at(4)).is_some());
        // The other address was left alone.
        assert_eq!(d.observe(&hit(other), at(2)), None);
        assert!(d.observe(&jwt(other), at(2)).is_some());
        d.reset(other);
        d.reset(other); // forgetting twice is harmless
        assert!(d.observe(&hit(other), at(3)).is_some());
    }

    #[test]
    fn hits_for_unknown_rules_count_nothing() {
        let mut d = ssh(1, 60);
        let h = Hit {
            rule: RuleIdx(7),
            ..hit(IP)
        };
        assert_eq!(d.observe(&h, at(0)), None);
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
            d.observe(&h, at(sent))
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
        assert_eq!(d.observe(&h, at(0)), None);
        assert!(d.observe(&h, at(1)).is_some());
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
            assert_eq!(d.observe(&h, at(0)), None);
        }
        // Two of them get blocked at 30 s, until 630 s.
        for i in [1, 2] {
            d.observe(&hit(ip(i)), at(30 * SEC));
            assert!(d.observe(&hit(ip(i)), at(30 * SEC)).is_some());
        }
        // One more is still in its window at 100 s.
        d.observe(&hit(ip(3)), at(50 * SEC));
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
        assert_eq!(d.observe(&hit(ip(1)), at(629 * SEC)), None);
        d.sweep(at(629 * SEC));
        assert_eq!(d.tracked_keys(), 2, "blocked until 630 s");
        d.sweep(at(700 * SEC));
        assert_eq!(d.tracked_keys(), 0);
    }

    #[test]
    fn sweep_is_spread_over_calls() {
        let mut d = ssh(3, 1);
        for i in 0..10_000u32 {
            d.observe(&hit(IpAddr::V4(Ipv4Addr::from(i))), at(0));
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
            d.observe(
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
                d.observe(&hit(ip), at(t));
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
                d.observe(&hit(ip), at(t));
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
            decided += usize::from(d.observe(h, at(t)).is_some());
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

    /// One step of a random stream: a hit or a sweep, after `gap` ms.
    #[derive(Clone, Debug)]
    enum Step {
        Hit {
            rule: u16,
            ip: usize,
            gap: i64,
            weight: u32,
        },
        Sweep {
            gap: i64,
        },
    }

    const IPS: [IpAddr; 4] = [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9)),
    ];

    fn gap() -> impl Strategy<Value = i64> {
        prop_oneof![
            3 => Just(0i64),
            3 => 0..50i64,
            3 => 0..2_000i64,
            1 => 0..20_000i64,
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            10 => (0..2u16, 0..IPS.len(), gap(), prop_oneof![9 => Just(1u32), 1 => 0..5u32])
                .prop_map(|(rule, ip, gap, weight)| Step::Hit { rule, ip, gap, weight }),
            1 => gap().prop_map(|gap| Step::Sweep { gap }),
        ]
    }

    fn policy_strategy(id: &'static str) -> impl Strategy<Value = Policy> {
        (1..7u32, 1..5_000u64, 0..8_000u64).prop_map(move |(n, w, b)| policy(id, n, w, b))
    }

    /// The reference: every event kept, counted by brute force.
    #[derive(Default)]
    struct Model {
        keys: HashMap<(u16, usize), (Vec<i64>, i64)>,
    }

    impl Model {
        fn observe(
            &mut self,
            p: &Policy,
            rule: u16,
            ip: usize,
            t: i64,
            weight: u32,
        ) -> Option<(u32, i64)> {
            let (events, blocked_until) = self.keys.entry((rule, ip)).or_insert((vec![], i64::MIN));
            if t < *blocked_until || weight == 0 {
                return None;
            }
            let w = p.window.as_millis() as i64;
            let inside: Vec<i64> = events
                .iter()
                .copied()
                .filter(|&e| t - w < e && e <= t)
                .collect();
            let count = inside.len() as u32 + weight;
            if count >= p.threshold {
                events.clear();
                *blocked_until = t + p.block_for.as_millis() as i64;
                return Some((count, inside.into_iter().min().unwrap_or(t)));
            }
            events.extend(std::iter::repeat_n(t, weight as usize));
            None
        }
    }

    fn cases() -> u32 {
        std::env::var("AUTHWATCH_PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Random streams, in time order, with sweeps at random points:
        /// the detector decides exactly what the brute-force model does.
        #[test]
        fn decisions_match_a_brute_force_model(
            policies in (policy_strategy("a"), policy_strategy("b")),
            steps in proptest::collection::vec(step(), 1..300),
        ) {
            let policies = vec![policies.0, policies.1];
            let mut d = Detector::new(policies.clone());
            let mut model = Model::default();
            let mut t = 1_700_000_000_000i64;
            for (i, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Sweep { gap } => {
                        t += gap;
                        d.sweep(at(t));
                        prop_assert!(d.tracked_keys() <= model.keys.len());
                    }
                    Step::Hit { rule, ip, gap, weight } => {
                        t += gap;
                        let h = Hit { rule: RuleIdx(rule), weight, ..hit(IPS[ip]) };
                        let p = &policies[usize::from(rule)];
                        let got = d.observe(&h, at(t));
                        let want = model.observe(p, rule, ip, t, weight).map(|(count, first)| Decision {
                            rule: p.id.clone(),
                            subject: IPS[ip],
                            count,
                            window: p.window,
                            first_seen: at(first),
                            last_seen: at(t),
                            block_for: p.block_for,
                        });
                        prop_assert_eq!(got, want, "step {}", i);
                    }
                }
            }
        }
    }
}
