//! Helpers shared by the integration tests: a real Redis server, a real
//! HTTP receiver, and waiting for a condition without fixed sleeps.

// Each story uses a different subset of these helpers (`stop`/`restart`
// exist for outage stories; re-exports are for the stories to come), so
// unused ones are expected, not dead.
#![allow(dead_code, unused_imports)]

pub mod daemon;
pub mod receiver;
pub mod redis;

use std::future::Future;
use std::time::Duration;

pub use self::receiver::{Receiver, Reply, Request};
pub use self::redis::{block_json, is_blocked, wait_for_block, RedisServer, Subscriber};

/// How long a condition may take to hold on a busy 2-core machine. Long
/// on purpose: a passing test returns as soon as the condition holds.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` until it returns true or `deadline` passes; returns whether
/// it held. Use as `assert!(eventually(DEADLINE, || async { … }).await, "…")`
/// so that a failure points at the caller.
#[must_use]
pub async fn eventually<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        // A polling interval, not a guess at how long anything takes.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
