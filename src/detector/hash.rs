//! The hash of the detector's tables: keyed with secrets from the
//! operating system, and cheap for the fixed-size integer keys they hold.
//!
//! # Why not std's SipHash
//!
//! Every hit is looked up once or twice in the windows and once in the
//! sessions, and a key that is new (every hit of a scan over many
//! addresses) takes three lookups. With SipHash-1-3 the hashing alone was
//! 28% of a replay of a million distinct addresses.
//!
//! # Why it still resists collision floods (HashDoS)
//!
//! The keys are addresses the attacker chooses (any of 2^64 in its IPv6
//! /64), so an unkeyed hash would let it pick addresses that all land in a
//! few buckets and turn every lookup into a walk. Here each word of a key
//! goes through a folded 64×64→128-bit multiply with a 64-bit secret mixed
//! into both factors (the construction of foldhash and wyhash), and the
//! secrets come from std's `RandomState`, which the operating system's
//! random source seeds: no set of addresses collides for every secret,
//! and the detector never shows a hash, a bucket or an iteration order to
//! the outside (decisions and metrics hold addresses and counts only) from
//! which the secrets could be learnt. What it does not claim is
//! cryptographic strength against an attacker who can observe hash values:
//! none can here.

use std::hash::{BuildHasher, Hasher};

/// Builds [`KeyHash`]ers with secrets of its own, drawn at creation.
#[derive(Clone, Debug)]
pub(crate) struct KeyHasher {
    seed: u64,
    multiplier: u64,
}

impl Default for KeyHasher {
    fn default() -> KeyHasher {
        // std's RandomState is keyed from the OS's random source; two of
        // its outputs are two secrets no one outside this process knows.
        let os = std::collections::hash_map::RandomState::new();
        KeyHasher {
            seed: os.hash_one(0x243F_6A88_85A3_08D3_u64),
            // Odd, so that the multiply loses no information of its other
            // factor's low bits.
            multiplier: os.hash_one(0x1319_8A2E_0370_7344_u64) | 1,
        }
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = KeyHash;

    #[inline]
    fn build_hasher(&self) -> KeyHash {
        KeyHash {
            state: self.seed,
            multiplier: self.multiplier,
        }
    }
}

/// The 128-bit product of `a` and `b`, its halves folded together: every
/// output bit depends on every input bit.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// One hash computation; see the module doc.
pub(crate) struct KeyHash {
    state: u64,
    multiplier: u64,
}

impl Hasher for KeyHash {
    #[inline]
    fn write_u64(&mut self, x: u64) {
        // The secret multiplier in the second factor keeps an input word
        // that cancels the state (x = state) from zeroing the product.
        self.state = fold_mul(self.state ^ x, self.multiplier ^ self.state.rotate_left(32));
    }

    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }

    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    /// Keys hash their integer words directly; this is for anything else
    /// (a derived `Hash` of a slice): eight bytes at a time, then the
    /// length, so that `[1]` and `[1, 0]` differ.
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w));
        }
        self.write_usize(bytes.len());
    }

    #[inline]
    fn finish(&self) -> u64 {
        // One more round, so that the last word written reaches the top
        // bits that the table's control bytes are taken from.
        fold_mul(self.state, self.multiplier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn two_tables_hash_differently_and_one_table_consistently() {
        let (a, b) = (KeyHasher::default(), KeyHasher::default());
        assert_eq!(a.hash_one(42u64), a.hash_one(42u64));
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
    }

    #[test]
    fn structured_keys_spread_over_buckets() {
        // Addresses that differ in one bit, or only in their high or low
        // half, must not share buckets (low bits) or control bytes (top 7).
        let h = KeyHasher::default();
        let keys: Vec<u128> = (0..128)
            .map(|i| 1u128 << i)
            .chain((0..4096u128).map(|i| i << 64))
            .chain((0..4096u128).map(|i| 0x2001_0db8u128 << 96 | i))
            .collect();
        let buckets: HashSet<u64> = keys.iter().map(|&k| h.hash_one(k) & 0xffff).collect();
        assert!(buckets.len() > keys.len() * 8 / 10, "{}", buckets.len());
        let tops: HashSet<u64> = keys.iter().map(|&k| h.hash_one(k) >> 57).collect();
        assert_eq!(tops.len(), 128);
        // Byte strings: length counts.
        assert_ne!(
            h.hash_one([1u8].as_slice()),
            h.hash_one([1u8, 0].as_slice())
        );
    }
}
