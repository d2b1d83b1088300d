//! Windows: for one (rule, subject) key, the failures inside the span that
//! counts and the block that stands; and [`WindowStore`], the place the
//! detector keeps them, with [`MemoryStore`] as the in-process default.
//! A subject is a client address or, for IPv6, the network it counts in
//! too (see [`Policy::ipv6_prefix`](super::Policy::ipv6_prefix)).
//!
//! # Memory
//!
//! A million keys must fit in well under 128 MiB, and most keys under a wide
//! scan are one or two attempts from one address. So a [`Window`] is 24
//! bytes: an `i64` base time and a [`Slots`] that holds up to two events in
//! place and only then moves to the heap. Events are stored as `u32`
//! millisecond offsets from the base, which is why a window may not be
//! longer than [`MAX_WINDOW_MS`] (about 49.7 days).
//!
//! Per key, in a [`MemoryStore`]:
//!
//! * IPv4: 8-byte key + 24-byte window = 32 bytes per bucket, plus one
//!   control byte. The std `HashMap` keeps at most 7/8 of its buckets full
//!   and doubles, so a bucket holds between 0.44 and 0.875 keys: 38 to 75
//!   bytes per key (69 at exactly 1,000,000 keys, in 64 shards).
//! * IPv6, address or network: 24-byte key, 48-byte bucket: 56 to 112
//!   bytes per key. An IPv6 hit makes two keys when its rule counts
//!   prefixes: the address's and its network's.
//! * Keys that hold three or more events add one heap block of
//!   `4 * (2 + capacity)` bytes (capacity 4, 8, 16, … up to threshold − 1),
//!   32 bytes with malloc's overhead for the first step, 224 at most for
//!   a threshold of 50.
//!
//! `tests::a_million_keys_fit` in `detector/mod.rs` checks this accounting
//! (see [`MemoryStore::approx_bytes`]).
//!
//! # The cap
//!
//! A flood of distinct addresses (cheap with IPv6) must not grow memory
//! without bound, so a [`MemoryStore`] holds at most `max_keys` keys
//! ([`DEFAULT_MAX_KEYS`], a million: about 69 MB of IPv4 keys, 112 MB at
//! worst for IPv6, plus the rings). At the cap it evicts the least
//! recently seen keys, approximately, in generations, as the session store
//! does: a key lives in the current generation once touched; when that
//! holds `max_keys / 2` keys, the previous generation retires and the
//! current one becomes the previous. A retiring key is evicted unless a
//! block of it still stands, in which case it is carried into the new
//! generation, as long as carried keys take no more than a quarter of the
//! cap (which of them, beyond that, is arbitrary). So:
//!
//! * a key is evicted only after at least `max_keys / 4` other keys were
//!   touched since it last was: an attacker who keeps failing keeps its
//!   count through a flood that does not outpace it by that much;
//! * standing blocks go last: while fewer than `max_keys / 4` of them
//!   stand, none is evicted, whatever the flood;
//! * the cost is O(1) amortised per hit, with no list to maintain: a hit on
//!   a key of the current generation is one lookup, any other hit three;
//!   a retirement walks the retiring generation once, once per
//!   `max_keys / 4` new keys at the least: a pause of 20 to 30 ms at a
//!   million keys (release build, busy 2-core machine; see
//!   `tests::flood_at_the_cap` in `detector/mod.rs`), where a flood of new
//!   keys goes at about 0.6 M a second.
//!
//! An evicted key counts afresh, like a swept one: its failures so far are
//! lost, and a block it stood for is decided again (repeating the alert and
//! extending the block in the sinks) if its failures reach the threshold
//! again. [`WindowStore::evictions`] counts the keys dropped by the cap,
//! whether or not a sweep would soon have dropped them anyway.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::hash::KeyHasher;
use crate::ip::Subject;
use crate::rules::RuleIdx;
use crate::time::Timestamp;

/// How many keys a [`MemoryStore`] holds at most unless told otherwise.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The longest window, in milliseconds: event offsets are `u32`, and
/// `u32::MAX` marks an empty slot.
pub const MAX_WINDOW_MS: u32 = u32::MAX - 1;

/// A rule's policy as the window arithmetic sees it: whole milliseconds,
/// normalised by [`Limit::new`] so that the arithmetic cannot go wrong
/// (hence the private fields).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    threshold: u32,
    window_ms: u32,
    block_for_ms: i64,
}

impl Limit {
    /// Normalises a policy: a threshold of 0 acts as 1, the window is
    /// rounded down to whole milliseconds and kept within
    /// `1 ..= MAX_WINDOW_MS`. The configuration should reject such values
    /// with a message; this only keeps the detector total.
    pub fn new(threshold: u32, window: Duration, block_for: Duration) -> Limit {
        Limit {
            threshold: threshold.max(1),
            window_ms: u32::try_from(window.as_millis())
                .unwrap_or(MAX_WINDOW_MS)
                .clamp(1, MAX_WINDOW_MS),
            block_for_ms: i64::try_from(block_for.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Failures in the window that trigger a block; at least 1.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// The window length in milliseconds, `1 ..= MAX_WINDOW_MS`.
    pub fn window_ms(&self) -> u32 {
        self.window_ms
    }

    /// How long a block stands, in milliseconds.
    pub fn block_for_ms(&self) -> i64 {
        self.block_for_ms
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(u64::from(self.window_ms))
    }

    pub fn block_for(&self) -> Duration {
        Duration::from_millis(self.block_for_ms.max(0) as u64)
    }
}

/// A window that reached its threshold.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reached {
    /// Failures in the window, those of the last hit included.
    pub count: u32,
    /// Event time of the oldest failure in the window.
    pub first_seen: Timestamp,
    /// The time the window was judged at: the newest event time of the key.
    /// The block stands until `last_seen + block_for`.
    pub last_seen: Timestamp,
}

/// Where the detector keeps its windows.
///
/// [`MemoryStore`] (a sharded `HashMap` in this process) is the default.
/// The trait exists so that a fleet mode can count in Redis across hosts
/// later, behind the same [`Detector`](super::Detector). A store holds no
/// configuration: each call is given the [`Limit`]s it needs, so a store
/// cannot disagree with the detector about a rule.
pub trait WindowStore {
    /// Counts `weight` failures at event time `t` for `(rule, subject)`.
    /// When the failures in the window, judged at the key's newest event
    /// time, reach `limit.threshold`, the store forgets them, remembers a
    /// block until `last_seen + block_for`, and returns what was reached.
    /// While a block stands, the key's failures are ignored. A weight of 0
    /// counts nothing and keeps nothing.
    fn record(
        &mut self,
        rule: RuleIdx,
        subject: Subject,
        t: Timestamp,
        weight: u32,
        limit: &Limit,
    ) -> Option<Reached>;

    /// Forgets the window and the block of `(rule, subject)`.
    fn forget(&mut self, rule: RuleIdx, subject: Subject);

    /// Whether a block of `(rule, subject)` stands at `now`: then
    /// [`WindowStore::record`] ignores its failures.
    fn blocks(&mut self, rule: RuleIdx, subject: Subject, now: Timestamp) -> bool;

    /// Forgets the failures held for `(rule, subject)`, but not a block
    /// that stands: the key then counts afresh, as after a sweep.
    fn forget_failures(&mut self, rule: RuleIdx, subject: Subject);

    /// Drops keys that can no longer make a difference to failures at or
    /// after `now`: every event out of the window and no block standing.
    /// A call may do only part of the work, as long as repeated calls
    /// cover every key.
    fn sweep(&mut self, now: Timestamp, limits: &[Limit]);

    /// The number of keys held.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys dropped so far to stay within the store's cap on keys.
    fn evictions(&self) -> u64;

    /// Roughly how many bytes of this process's memory the store holds.
    fn approx_bytes(&self) -> usize;
}

/// Marks an unused slot. No offset reaches it, since offsets are smaller
/// than the window and the window is at most [`MAX_WINDOW_MS`].
const EMPTY: u32 = u32::MAX;
/// In a heap ring: the index of the header words, then the slots.
const HEAD: usize = 0;
const LEN: usize = 1;
const HEADER: usize = 2;

/// The event offsets of one window, oldest first.
enum Slots {
    /// Up to two offsets in place, `EMPTY` where unused. Most keys never
    /// leave this state, and it costs no allocation. The compiler packs it
    /// into the unused bits of `Heap`'s pointer, so `Slots` stays 16 bytes.
    Inline([u32; 2]),
    /// A ring: `[head, len, slot 0, slot 1, …]`. The header lives on the
    /// heap to keep `Window` at 24 bytes; a `Box<[u32]>` never holds spare
    /// capacity the way a `Vec` may.
    Heap(Box<[u32]>),
}

impl Slots {
    const NONE: Slots = Slots::Inline([EMPTY, EMPTY]);

    fn len(&self) -> usize {
        match self {
            Slots::Inline(a) => a.iter().take_while(|&&x| x != EMPTY).count(),
            Slots::Heap(b) => b[LEN] as usize,
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Slots::Inline(a) => a.len(),
            Slots::Heap(b) => b.len() - HEADER,
        }
    }

    /// The position in the heap ring of the `i`-th oldest offset.
    fn ring_index(b: &[u32], i: usize) -> usize {
        HEADER + (b[HEAD] as usize + i) % (b.len() - HEADER)
    }

    fn get(&self, i: usize) -> u32 {
        match self {
            Slots::Inline(a) => a[i],
            Slots::Heap(b) => b[Self::ring_index(b, i)],
        }
    }

    fn set(&mut self, i: usize, v: u32) {
        match self {
            Slots::Inline(a) => a[i] = v,
            Slots::Heap(b) => b[Self::ring_index(b, i)] = v,
        }
    }

    fn pop_front(&mut self) {
        let emptied = match self {
            Slots::Inline(a) => {
                *a = [a[1], EMPTY];
                false
            }
            Slots::Heap(b) => {
                let cap = b.len() - HEADER;
                b[HEAD] = ((b[HEAD] as usize + 1) % cap) as u32;
                b[LEN] -= 1;
                b[LEN] == 0
            }
        };
        if emptied {
            // An idle key needs no ring; give the memory back.
            *self = Slots::NONE;
        }
    }

    /// Makes room for `need` offsets, growing by doubling (from 4) but
    /// never beyond `max`, so a key holds at most threshold − 1 events.
    fn reserve(&mut self, need: usize, max: usize) {
        let cap = self.capacity();
        if need <= cap {
            return;
        }
        let len = self.len();
        let new_cap = need.max(cap * 2).max(4).min(max).max(need);
        let mut ring = vec![0u32; HEADER + new_cap].into_boxed_slice();
        for i in 0..len {
            ring[HEADER + i] = self.get(i);
        }
        ring[HEAD] = 0;
        ring[LEN] = len as u32;
        *self = Slots::Heap(ring);
    }

    /// Inserts `n` copies of `v` after every offset not greater than `v`,
    /// keeping the offsets sorted; at most `max` offsets are ever held.
    fn insert(&mut self, v: u32, n: usize, max: usize) {
        let len = self.len();
        self.reserve(len + n, max);
        if let Slots::Heap(b) = self {
            b[LEN] = (len + n) as u32;
        }
        // In time order (the common case) the loop below does not run.
        let mut at = len;
        while at > 0 && self.get(at - 1) > v {
            at -= 1;
        }
        for i in (at..len).rev() {
            let moved = self.get(i);
            self.set(i + n, moved);
        }
        for i in at..at + n {
            self.set(i, v);
        }
    }

    /// Adds `d` to every offset (`d` may be "negative" in wrapping terms;
    /// the caller guarantees the results stay in range).
    fn shift_all(&mut self, d: u32) {
        for i in 0..self.len() {
            let v = self.get(i).wrapping_add(d);
            self.set(i, v);
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Slots::Inline(_) => 0,
            Slots::Heap(b) => malloc_block(std::mem::size_of_val::<[u32]>(b)),
        }
    }
}

/// What a heap block of `n` bytes costs with glibc malloc's bookkeeping:
/// 8 bytes of header, rounded up to 16, at least 32.
fn malloc_block(n: usize) -> usize {
    (n + 8).div_ceil(16).max(2) * 16
}

/// The events of one (rule, client) key within the window, or the block
/// that stands for it.
///
/// With events held, `base` is the time the offsets count from (at most
/// the oldest event). With none held, hits before `base` are ignored: it
/// is the end of the last block, or `i64::MIN` for a key never blocked.
/// An idle key whose `base` has passed therefore behaves exactly like a
/// fresh one, which is what lets [`MemoryStore::sweep`] drop it.
pub struct Window {
    base: i64,
    slots: Slots,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            base: i64::MIN,
            slots: Slots::NONE,
        }
    }
}

impl Window {
    fn time(&self, i: usize) -> i64 {
        self.base + i64::from(self.slots.get(i))
    }

    /// See [`WindowStore::record`].
    ///
    /// Out-of-order events (two files of one rule with slightly different
    /// clocks) are inserted in time order, and the window is judged at the
    /// key's newest event time: an event at or before `newest − window`
    /// counts for nothing, even if it would have counted had it come in
    /// order. A block is dated from that newest time too.
    pub fn record(&mut self, t: i64, weight: u32, limit: &Limit) -> Option<Reached> {
        if weight == 0 {
            return None;
        }
        let window = i64::from(limit.window_ms);
        let mut newest = t;
        let held = self.slots.len();
        if held == 0 {
            if t < self.base {
                return None; // a block stands
            }
            self.base = t;
        } else {
            newest = newest.max(self.time(held - 1));
            let horizon = newest.saturating_sub(window);
            if t <= horizon {
                return None;
            }
            while !self.slots.is_empty_ring() && self.time(0) <= horizon {
                self.slots.pop_front();
            }
            self.rebase_for(t);
        }

        let held = self.slots.len();
        let count = u32::try_from(held)
            .unwrap_or(u32::MAX)
            .saturating_add(weight);
        if count >= limit.threshold {
            let first_seen = if held == 0 { t } else { self.time(0).min(t) };
            self.slots = Slots::NONE;
            self.base = newest.saturating_add(limit.block_for_ms);
            return Some(Reached {
                count,
                first_seen: Timestamp::from_millis(first_seen),
                last_seen: Timestamp::from_millis(newest),
            });
        }
        // Here held + weight < threshold: the work of a heavy weight is
        // capped by the threshold.
        let offset = (t - self.base) as u32;
        let max = limit.threshold.saturating_sub(1) as usize;
        self.slots.insert(offset, weight as usize, max);
        None
    }

    /// Moves `base` so that `t` gets an offset and the held ones keep theirs
    /// in range. Held events are all within the window of the newest, and so
    /// is `t`; so after this, every offset is below the window length.
    fn rebase_for(&mut self, t: i64) {
        if self.slots.is_empty_ring() {
            self.base = t;
        } else if t < self.base {
            // Out of order and older than every held event.
            let d = (self.base - t) as u32;
            self.slots.shift_all(d);
            self.base = t;
        } else if t.saturating_sub(self.base) > i64::from(MAX_WINDOW_MS) {
            // The base has fallen far behind: count from the oldest held.
            let oldest = self.slots.get(0);
            self.slots.shift_all(oldest.wrapping_neg());
            self.base += i64::from(oldest);
        }
    }

    /// Whether this key can be dropped without changing the outcome for any
    /// hit at or after `now`: no block standing, no event in any window
    /// that ends at or after `now`.
    pub fn is_spent(&self, now: i64, window_ms: u32) -> bool {
        match self.slots.len() {
            0 => self.base <= now,
            n => self.time(n - 1) <= now.saturating_sub(i64::from(window_ms)),
        }
    }

    /// Whether a block stands at `now`: no failures held, and hits before
    /// `base` (the block's end) ignored.
    pub fn is_blocked(&self, now: i64) -> bool {
        self.slots.is_empty_ring() && self.base > now
    }

    /// Whether the window holds failures (then no block stands).
    pub fn holds_failures(&self) -> bool {
        !self.slots.is_empty_ring()
    }

    /// Bytes this window holds on the heap, with malloc's overhead.
    pub fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes()
    }
}

impl Slots {
    fn is_empty_ring(&self) -> bool {
        self.len() == 0
    }
}

/// The store is split into this many shards, each a `HashMap`, so that a
/// sweep can do one shard at a time (a bounded pause even at a million
/// keys) and a growing map rehashes one shard, not everything at once
/// (which also bounds the transient peak of a resize to 1/64 of the table).
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// A sweep covers every shard once per this much event time.
const SWEEP_PERIOD_MS: i64 = 16_000;

/// Picks a shard by address only (a network's keys by its network
/// address). It is not keyed: an attacker who crowds one shard only makes
/// that shard's sweep longer, since the cap counts keys across all shards.
/// The maps themselves hash with secret keys ([`KeyHasher`]), because
/// the addresses are chosen by the attacker and an unkeyed hash in the map
/// would let an IPv6 attacker collide buckets.
fn shard_of(x: u64) -> usize {
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

trait StoreKey: Hash + Eq + Copy {
    fn rule(&self) -> usize;
    fn shard(&self) -> usize;
    /// The shards of this kind of key in a generation.
    fn shards(g: &mut Generation) -> &mut Shards<Self>;
}

/// An IPv4 address key: the rule in the high half, the address in the low.
#[derive(Copy, Clone, Hash, PartialEq, Eq)]
struct V4Key(u64);

impl V4Key {
    fn new(rule: u16, ip: u32) -> V4Key {
        V4Key(u64::from(rule) << 32 | u64::from(ip))
    }
}

impl StoreKey for V4Key {
    fn rule(&self) -> usize {
        (self.0 >> 32) as usize
    }

    fn shard(&self) -> usize {
        shard_of(self.0 & u64::from(u32::MAX))
    }

    fn shards(g: &mut Generation) -> &mut Shards<V4Key> {
        &mut g.v4
    }
}

/// An IPv6 key, of an address (`len` 128) or of a network (`len` its
/// prefix length, `hi` and `lo` its network address): 24 bytes, where
/// `(u16, Ipv6Addr, u8)` would not pack better and `u128` would align to
/// 16. The detector never counts IPv4 networks, but the store takes any
/// [`Subject`]: an IPv4 network is kept here too, as its address in `lo`
/// and `len` = [`V4_NET`] + its prefix length, apart from every IPv6 key.
#[derive(Copy, Clone, PartialEq, Eq)]
struct V6Key {
    hi: u64,
    lo: u64,
    rule: u16,
    len: u8,
}

impl Hash for V6Key {
    /// Three words, not four fields: one multiply fewer per lookup.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hi);
        state.write_u64(self.lo);
        state.write_u64(u64::from(self.rule) << 8 | u64::from(self.len));
    }
}

/// `V6Key::len` of an IPv4 network of prefix 0; 32 is 161.
const V4_NET: u8 = 129;

impl StoreKey for V6Key {
    fn rule(&self) -> usize {
        usize::from(self.rule)
    }

    fn shard(&self) -> usize {
        shard_of(self.hi ^ self.lo)
    }

    fn shards(g: &mut Generation) -> &mut Shards<V6Key> {
        &mut g.v6
    }
}

enum AnyKey {
    V4(V4Key),
    V6(V6Key),
}

fn v6_halves(ip: std::net::Ipv6Addr) -> (u64, u64) {
    let bits = u128::from(ip);
    ((bits >> 64) as u64, bits as u64)
}

fn key_of(rule: RuleIdx, subject: Subject) -> AnyKey {
    let rule = rule.0;
    match subject {
        Subject::Addr(IpAddr::V4(v4)) => AnyKey::V4(V4Key::new(rule, u32::from(v4))),
        Subject::Addr(IpAddr::V6(v6)) => {
            let (hi, lo) = v6_halves(v6);
            AnyKey::V6(V6Key {
                hi,
                lo,
                rule,
                len: 128,
            })
        }
        Subject::Net(IpNet::V6(net)) => {
            let (hi, lo) = v6_halves(net.network());
            AnyKey::V6(V6Key {
                hi,
                lo,
                rule,
                len: net.prefix_len(),
            })
        }
        Subject::Net(IpNet::V4(net)) => AnyKey::V6(V6Key {
            hi: 0,
            lo: u64::from(u32::from(net.network())),
            rule,
            len: V4_NET + net.prefix_len(),
        }),
    }
}

/// One kind of key, in [`SHARDS`] maps, with their total length kept so
/// that the cap costs no sum over the shards.
struct Shards<K> {
    maps: Vec<HashMap<K, Window, KeyHasher>>,
    len: usize,
}

impl<K: StoreKey> Default for Shards<K> {
    fn default() -> Shards<K> {
        // A new `HashMap` does not allocate until the first insert.
        Shards {
            maps: (0..SHARDS)
                .map(|_| HashMap::with_hasher(KeyHasher::default()))
                .collect(),
            len: 0,
        }
    }
}

impl<K: StoreKey> Shards<K> {
    fn get_mut(&mut self, key: &K) -> Option<&mut Window> {
        self.maps[key.shard()].get_mut(key)
    }

    fn remove(&mut self, key: &K) -> Option<Window> {
        let removed = self.maps[key.shard()].remove(key);
        self.len -= usize::from(removed.is_some());
        removed
    }

    fn insert(&mut self, key: K, window: Window) -> &mut Window {
        match self.maps[key.shard()].entry(key) {
            Entry::Vacant(v) => {
                self.len += 1;
                v.insert(window)
            }
            Entry::Occupied(o) => {
                let held = o.into_mut();
                *held = window;
                held
            }
        }
    }

    /// Keeps the windows `keep` says to, shard by shard, and leaves each
    /// table as clean as a new one of its size. (`HashMap::retain` leaves
    /// a tombstone for most removals, and a table refilled over tombstones
    /// doubles though its live keys would fit: at the cap, that doubled
    /// the bytes per key.)
    fn retain(&mut self, keep: &mut impl FnMut(&Window) -> bool) {
        let mut kept = Vec::new();
        for map in &mut self.maps {
            kept.extend(map.drain().filter(|(_, w)| keep(w)));
            map.extend(kept.drain(..));
        }
        self.len = self.maps.iter().map(HashMap::len).sum();
    }

    fn sweep_shard(&mut self, shard: usize, now: i64, limits: &[Limit]) {
        let map = &mut self.maps[shard];
        let before = map.len();
        map.retain(|key, window| match limits.get(key.rule()) {
            Some(limit) => !window.is_spent(now, limit.window_ms),
            None => false,
        });
        self.len -= before - map.len();
        // After a flood, give the table back, with hysteresis so that a
        // shard at a steady size does not reallocate on every sweep.
        if map.capacity() > 64 && map.len() < map.capacity() / 4 {
            map.shrink_to(map.len() * 2);
        }
    }

    fn approx_bytes(&self) -> usize {
        let bucket = std::mem::size_of::<(K, Window)>() + 1;
        self.maps
            .iter()
            .map(|map| {
                let buckets = match map.capacity() {
                    0 => 0,
                    // std's table keeps 1 bucket free below 8, else 1/8.
                    cap if cap < 8 => (cap + 1).next_power_of_two(),
                    cap => (cap * 8 / 7).next_power_of_two(),
                };
                let ring: usize = map.values().map(Window::heap_bytes).sum();
                buckets * bucket + ring
            })
            .sum::<usize>()
            + self.maps.capacity() * std::mem::size_of::<HashMap<K, Window, KeyHasher>>()
    }
}

/// The keys touched in one generation of the cap (see the module doc).
#[derive(Default)]
struct Generation {
    v4: Shards<V4Key>,
    v6: Shards<V6Key>,
}

impl Generation {
    fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    fn retain(&mut self, mut keep: impl FnMut(&Window) -> bool) {
        self.v4.retain(&mut keep);
        self.v6.retain(&mut keep);
    }

    fn sweep_shard(&mut self, shard: usize, now: i64, limits: &[Limit]) {
        self.v4.sweep_shard(shard, now, limits);
        self.v6.sweep_shard(shard, now, limits);
    }

    fn approx_bytes(&self) -> usize {
        self.v4.approx_bytes() + self.v6.approx_bytes()
    }
}

/// How much sweeping is due: enough shards that the whole store is covered
/// once per [`SWEEP_PERIOD_MS`] of event time.
#[derive(Default)]
struct SweepClock {
    last: Option<i64>,
    /// Elapsed event time times shards, not yet turned into shard sweeps.
    credit: i64,
    cursor: usize,
}

impl SweepClock {
    fn due(&mut self, now: i64) -> usize {
        let elapsed = match self.last {
            // The first sweep is a full one.
            None => SWEEP_PERIOD_MS,
            Some(last) => now.saturating_sub(last).clamp(0, SWEEP_PERIOD_MS),
        };
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        let total = SWEEP_PERIOD_MS * SHARDS as i64;
        self.credit = (self.credit + elapsed * SHARDS as i64).min(total);
        let due = self.credit / SWEEP_PERIOD_MS;
        self.credit -= due * SWEEP_PERIOD_MS;
        due as usize
    }
}

/// The in-process [`WindowStore`]: keys by rule and subject in 64 shards
/// of std `HashMap`s (with [`KeyHasher`]), IPv4 and IPv6 apart so that an IPv4 key takes 8
/// bytes, in two generations for the cap (see the module doc).
pub struct MemoryStore {
    /// Keys touched since the last retirement, blocks carried over from it
    /// included.
    current: Generation,
    /// Keys touched in the generation before, and not since: the next to
    /// be evicted.
    previous: Generation,
    /// Half the cap: the current generation's size at which the previous
    /// one retires.
    generation_keys: usize,
    /// The newest event time recorded: what a retirement judges "a block
    /// still stands" at.
    now: i64,
    evictions: u64,
    clock: SweepClock,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::with_max_keys(DEFAULT_MAX_KEYS)
    }
}

impl MemoryStore {
    /// A store of at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store of at most `max_keys` keys; fewer than 2 act as 2.
    pub fn with_max_keys(max_keys: usize) -> MemoryStore {
        MemoryStore {
            current: Generation::default(),
            previous: Generation::default(),
            generation_keys: (max_keys / 2).max(1),
            now: i64::MIN,
            evictions: 0,
            clock: SweepClock::default(),
        }
    }

    fn record_key<K: StoreKey>(
        &mut self,
        key: K,
        t: i64,
        weight: u32,
        limit: &Limit,
    ) -> Option<Reached> {
        if weight == 0 {
            return None;
        }
        self.now = self.now.max(t);
        if let Some(window) = K::shards(&mut self.current).get_mut(&key) {
            return window.record(t, weight, limit);
        }
        // Seen again, or for the first time: into the current generation.
        let window = K::shards(&mut self.previous)
            .remove(&key)
            .unwrap_or_default();
        if self.current.len() >= self.generation_keys {
            self.retire();
        }
        K::shards(&mut self.current)
            .insert(key, window)
            .record(t, weight, limit)
    }

    /// The previous generation retires and the current one takes its
    /// place. The retiring keys were not touched for a whole generation:
    /// they are evicted, except blocks that still stand, carried into the
    /// new generation while they take at most half its room.
    fn retire(&mut self) {
        // The retiring tables, already sized for a generation, hold the
        // new one.
        std::mem::swap(&mut self.current, &mut self.previous);
        let now = self.now;
        let mut room = self.generation_keys / 2;
        let mut evicted = 0u64;
        self.current.retain(|window| {
            if room > 0 && window.is_blocked(now) {
                room -= 1;
                true
            } else {
                evicted += 1;
                false
            }
        });
        self.evictions += evicted;
    }

    fn blocks_key<K: StoreKey>(&mut self, key: K, now: i64) -> bool {
        [&mut self.current, &mut self.previous]
            .into_iter()
            .any(|generation| {
                K::shards(generation)
                    .get_mut(&key)
                    .is_some_and(|w| w.is_blocked(now))
            })
    }

    fn forget_key<K: StoreKey>(&mut self, key: K, keep_block: bool) {
        for generation in [&mut self.current, &mut self.previous] {
            let shards = K::shards(generation);
            let drop = match shards.get_mut(&key) {
                Some(window) => !keep_block || window.holds_failures(),
                None => false,
            };
            if drop {
                shards.remove(&key);
            }
        }
    }
}

impl WindowStore for MemoryStore {
    fn record(
        &mut self,
        rule: RuleIdx,
        subject: Subject,
        t: Timestamp,
        weight: u32,
        limit: &Limit,
    ) -> Option<Reached> {
        let t = t.as_millis();
        match key_of(rule, subject) {
            AnyKey::V4(key) => self.record_key(key, t, weight, limit),
            AnyKey::V6(key) => self.record_key(key, t, weight, limit),
        }
    }

    fn forget(&mut self, rule: RuleIdx, subject: Subject) {
        match key_of(rule, subject) {
            AnyKey::V4(key) => self.forget_key(key, false),
            AnyKey::V6(key) => self.forget_key(key, false),
        }
    }

    fn blocks(&mut self, rule: RuleIdx, subject: Subject, now: Timestamp) -> bool {
        match key_of(rule, subject) {
            AnyKey::V4(key) => self.blocks_key(key, now.as_millis()),
            AnyKey::V6(key) => self.blocks_key(key, now.as_millis()),
        }
    }

    fn forget_failures(&mut self, rule: RuleIdx, subject: Subject) {
        match key_of(rule, subject) {
            AnyKey::V4(key) => self.forget_key(key, true),
            AnyKey::V6(key) => self.forget_key(key, true),
        }
    }

    fn sweep(&mut self, now: Timestamp, limits: &[Limit]) {
        let now = now.as_millis();
        for _ in 0..self.clock.due(now) {
            let shard = self.clock.cursor;
            self.clock.cursor = (shard + 1) % SHARDS;
            self.current.sweep_shard(shard, now, limits);
            self.previous.sweep_shard(shard, now, limits);
        }
    }

    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Tables (buckets as std lays them out, a control byte each) plus the
    /// heap rings, with malloc's overhead. It does not see the allocator's
    /// fragmentation.
    fn approx_bytes(&self) -> usize {
        self.current.approx_bytes() + self.previous.approx_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(threshold: u32, window_ms: u32) -> Limit {
        Limit {
            threshold,
            window_ms,
            block_for_ms: 1_000,
        }
    }

    fn times(w: &Window) -> Vec<i64> {
        (0..w.slots.len()).map(|i| w.time(i)).collect()
    }

    #[test]
    fn window_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Slots>(), 16);
        assert_eq!(std::mem::size_of::<Window>(), 24);
        assert_eq!(std::mem::size_of::<(V4Key, Window)>(), 32);
        assert_eq!(std::mem::size_of::<(V6Key, Window)>(), 48);
    }

    #[test]
    fn ring_moves_to_the_heap_and_back() {
        let l = limit(100, 1_000);
        let mut w = Window::default();
        for t in 0..2 {
            assert_eq!(w.record(t, 1, &l), None);
        }
        assert_eq!(w.heap_bytes(), 0, "two events stay in place");
        for t in 2..40 {
            assert_eq!(w.record(t, 1, &l), None);
        }
        assert_eq!(times(&w), (0..40).collect::<Vec<_>>());
        assert!(w.heap_bytes() > 0);
        // All old: the next event evicts them all and is held alone.
        assert_eq!(w.record(5_000, 1, &l), None);
        assert_eq!(times(&w), vec![5_000]);
        // Eviction to empty gives the heap back.
        let l2 = limit(100, 10);
        let mut w = Window::default();
        for t in 0..10 {
            w.record(t, 1, &l2);
        }
        assert!(w.heap_bytes() > 0);
        for _ in 0..10 {
            w.slots.pop_front();
        }
        assert_eq!(w.heap_bytes(), 0);
    }

    #[test]
    fn ring_never_grows_beyond_threshold_minus_one() {
        let l = limit(6, 1_000_000);
        let mut w = Window::default();
        for t in 0..5 {
            assert_eq!(w.record(t, 1, &l), None);
        }
        assert_eq!(w.slots.capacity(), 5);
        // The wrap-around of the ring keeps time order.
        let l = limit(6, 10);
        let mut w = Window::default();
        for t in 0..100 {
            w.record(t * 3, 1, &l);
            assert!(w.slots.capacity() <= 5);
            let ts = times(&w);
            assert!(ts.windows(2).all(|p| p[0] <= p[1]), "{ts:?}");
            assert_eq!(*ts.last().unwrap_or(&-1), t * 3);
        }
    }

    #[test]
    fn out_of_order_inserts_keep_time_order_across_the_wrap() {
        let l = limit(50, 1_000);
        let mut w = Window::default();
        for t in [100, 110, 120, 130, 140, 150] {
            w.record(t, 1, &l);
        }
        w.slots.pop_front();
        w.slots.pop_front(); // head is now inside the ring
        w.record(115, 2, &l);
        w.record(90, 1, &l); // older than base: rebase down
        w.record(160, 1, &l);
        assert_eq!(times(&w), vec![90, 115, 115, 120, 130, 140, 150, 160],);
    }

    #[test]
    fn offsets_rebase_when_the_base_falls_far_behind() {
        const DAY: i64 = 86_400_000;
        let l = Limit::new(
            3,
            Duration::from_millis(30 * DAY as u64),
            Duration::from_secs(1),
        );
        let mut w = Window::default();
        assert_eq!(w.record(0, 1, &l), None);
        assert_eq!(w.record(25 * DAY, 1, &l), None);
        assert_eq!(w.record(50 * DAY, 1, &l), None); // evicts 0
                                                     // 54 days from base 0 is past u32 milliseconds.
        let r = w.record(54 * DAY, 1, &l);
        assert_eq!(
            r,
            Some(Reached {
                count: 3,
                first_seen: Timestamp::from_millis(25 * DAY),
                last_seen: Timestamp::from_millis(54 * DAY),
            })
        );
    }

    #[test]
    fn limits_are_normalised() {
        let l = Limit::new(0, Duration::from_secs(100 * 86_400), Duration::MAX);
        assert_eq!(l.threshold, 1);
        assert_eq!(l.window_ms, MAX_WINDOW_MS);
        assert_eq!(l.block_for_ms, i64::MAX);
        assert_eq!(Limit::new(3, Duration::ZERO, Duration::ZERO).window_ms, 1);
    }

    #[test]
    fn sweep_covers_the_store_over_one_period() {
        let mut c = SweepClock::default();
        assert_eq!(c.due(0), SHARDS); // first sweep is full
        assert_eq!(c.due(0), 0);
        let per_second = SHARDS as i64 * 1_000 / SWEEP_PERIOD_MS;
        assert_eq!(c.due(1_000) as i64, per_second);
        let mut total = 0;
        for s in 2..=17 {
            total += c.due(s * 1_000);
        }
        assert_eq!(total, SHARDS);
        assert_eq!(c.due(1_000_000), SHARDS, "a long gap sweeps everything");
        assert_eq!(c.due(500), 0, "time going back sweeps nothing");
    }
}
