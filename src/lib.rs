//! authwatch: blocks the IPs that brute-force SSH passwords or forge JWTs,
//! from the log lines that the services write about them.
//!
//! # Layout
//!
//! A log line travels one way through the crate, each step owned by one
//! module, and no module reaches back into an earlier one:
//!
//! ```text
//!  sources ──Line──▶ rules ──Hit──▶ detector ──Decision──▶ sinks ──▶ api / cli
//!  (bytes)          (match, IP,     (sliding window         (Redis blocklist,
//!                    event time)     per rule and IP)        webhook, Slack)
//! ```
//!
//! * [`source`] reads bytes: the file tailer (rotation, truncation, globs,
//!   symlinks), standard input, and the checkpoints of how far it got.
//! * [`rules`] compiles rule files once and turns a line into at most one
//!   [`rules::Hit`]: which rule, which client IP, at what event time. A
//!   literal prefilter rejects most lines before any regex or JSON parsing.
//!   [`syslog`] and [`time`] parse the headers and timestamps rules rely on;
//!   [`ip`] decides what counts as a client address, and [`proxy`] which
//!   address is the client when a line shows a trusted proxy's peer and an
//!   `X-Forwarded-For` chain.
//! * [`detector`] is pure: it takes hits with their time and returns
//!   [`detector::Decision`]s. It knows nothing of files, Redis or HTTP, so
//!   replaying a log gives the same decisions as living through it.
//! * [`sink`] carries decisions out: the Redis blocklist that API services
//!   consult (the contract is in `README.md`) and the alert destinations.
//! * [`engine`] glues sources, rules and detector for one stream of lines;
//!   [`replay`] drives it over files from their start, [`daemon`] drives it
//!   live and wires the sinks, signals and shutdown.
//! * [`reload`] keeps what became of the last SIGHUP, for the status.
//! * [`config`] turns the TOML configuration into validated types once;
//!   [`duration`] is the one place durations are parsed.

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod detector;
pub mod duration;
pub mod engine;
pub mod ip;
pub mod privilege;
pub mod proxy;
pub mod reload;
pub mod replay;
pub mod rules;
pub mod sink;
pub mod source;
pub mod syslog;
pub mod systemd;
pub mod time;
