//! Sinks: where decisions leave the process.
//!
//! * [`blocklist`] writes blocks into Redis, the contract API services
//!   consult on every request (documented in `README.md`).
//! * [`alert`] delivers a notice of every new block to webhooks and Slack,
//!   asynchronously, so that a slow endpoint never delays detection.
//!
//! Both take a [`BlockRecord`]: the one JSON shape of a block, shared by the
//! Redis value, the `events` channel and the generic webhook payload.

pub mod alert;
pub mod blocklist;
pub mod outbox;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// One block, as stored in Redis and sent to alert destinations.
///
/// Field names are part of the public contract: services and webhook
/// receivers parse them. Add fields; never rename or remove one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// The blocked address (`203.0.113.7`, `2001:db8::1`) or prefix
    /// (`2001:db8:1:2::/64`), exactly as it appears in the Redis key.
    pub ip: String,
    /// The id of the rule that decided the block.
    pub rule: String,
    /// Failures counted in the window when the block was decided.
    pub count: u32,
    pub window_secs: u64,
    /// Event time of the oldest failure still in the window.
    pub first_seen: Timestamp,
    /// Event time of the failure that reached the threshold.
    pub last_seen: Timestamp,
    /// Wall-clock time the block was written.
    pub blocked_at: Timestamp,
    pub expires_at: Timestamp,
    /// The host that decided the block.
    pub host: String,
    /// A sentence for humans: "52 failures of rule sshd in 60s".
    pub reason: String,
    /// A decision of a rule in shadow mode (`mode = "shadow"`): alerted,
    /// marked as such, never written to Redis. Absent from real blocks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// How long the block lasts from `last_seen`, in seconds: the rule's
    /// `block_for`, or the step of its `escalate` ladder this offence got.
    /// 0 in records written before this field existed.
    #[serde(default)]
    pub block_for_secs: u64,
    /// Which offence of this address this block is, as counted in Redis
    /// (`{prefix}offenses:{ip}`, shared by every host): 1 for the first.
    /// 0 for a block that counts no offence (one set by hand) and in
    /// records written before this field existed.
    ///
    /// Keep this the last field: the blocklist's write script fills it in
    /// by appending the number to the JSON (see
    /// [`blocklist::Blocklist::write_offense`]).
    #[serde(default)]
    pub offense: u32,
}

impl BlockRecord {
    /// Seconds from `now` until the block expires, rounded up so that a
    /// block is never shortened by rounding; zero if already expired.
    pub fn ttl_secs(&self, now: Timestamp) -> u64 {
        let ms = self.expires_at.as_millis() - now.as_millis();
        if ms <= 0 {
            0
        } else {
            (ms as u64).div_ceil(1000)
        }
    }
}
