//! The detector: exact sliding windows per rule and client, and the
//! decision to block.
//!
//! It is pure: [`Detector::observe`] takes a hit with its event time and
//! returns at most one [`Decision`]. It reads no clock and does no I/O.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::time::Timestamp;

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
    /// Event time of the failure that reached the threshold.
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
