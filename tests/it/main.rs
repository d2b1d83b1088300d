//! The integration tests, built as one binary (`cargo test --test it`).
//!
//! Each file is a story told against real dependencies: a real
//! `redis-server` on a free port and a real HTTP receiver, both started by
//! the test and stopped when it ends. Helpers live in [`common`].

mod alerts;
mod api;
mod common;
mod daemon;
mod escalation;
mod outage;
mod proxies;
mod reload;
mod restart;
mod secrets;
mod sink;
mod torture;
