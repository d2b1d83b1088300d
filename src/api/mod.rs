//! The query and control API, its command-line client, and the metrics.
//!
//! # Layout
//!
//! ```text
//!  authwatch blocks … ──HTTP/1.0──▶ unix socket ─┐
//!  curl / Prometheus ───HTTP/1.1──▶ TCP (opt.) ──┴─▶ routes ──▶ Blocklist (Redis)
//!                                                      │
//!                                                      └─ControlRequest─▶ engine task
//! ```
//!
//! * [`server`] binds the listeners (a unix socket always, a TCP address
//!   optionally) and serves [`routes`] until shutdown.
//! * [`auth`] decides who is calling: unix peer credentials on the socket
//!   (whose file mode is the access control), a bearer token over TCP.
//! * [`routes`] are the handlers. They read and write blocks through the
//!   same [`Blocklist`] the daemon's writer uses, and ask the engine task
//!   (which owns every window) through [`ControlRequest`]s.
//! * [`subject`] parses what a block is about: one address or one network.
//! * [`client`] is the command line's side of the unix socket, and
//!   [`commands`] the `blocks` and `status` commands, which fall back to
//!   Redis directly when no daemon answers.
//! * [`metrics`] names every metric the daemon records and installs the
//!   Prometheus recorder that `GET /metrics` renders.
//!
//! # Routes
//!
//! | route | what |
//! | --- | --- |
//! | `GET /v1/blocks` | the current blocks, soonest expiry first |
//! | `GET /v1/blocks/{ip}` | one block (404 if none); a CIDR is URL-encoded: `2001:db8::%2F64` |
//! | `POST /v1/blocks` | `{"ip": "…", "duration": "1h", "reason": "…"}`: a manual block (rule `manual`) |
//! | `DELETE /v1/blocks/{ip}` | lift a block and make the engine forget its windows |
//! | `GET /v1/status` | the daemon's [status JSON](ControlRequest::Status) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /healthz` | `200 ok`, or `503` and the reason |
//!
//! A block is shown as the JSON stored in Redis (the
//! [`BlockRecord`](crate::sink::BlockRecord) fields: `ip`, `rule`, `count`,
//! `window_secs`, `first_seen`, `last_seen`, `blocked_at`, `expires_at`,
//! `host`, `reason`, and whatever else a newer writer stored) plus
//! `seconds_left`. Errors are `{"error": "…"}`.
//!
//! # Who may do what
//!
//! * On the unix socket (mode 0660, directory 0750) anyone who can connect
//!   may read and mutate: the file permissions are the access control, as
//!   for Docker's or systemd's sockets. Mutations are logged with the
//!   caller's uid and pid.
//! * Over TCP, mutations need `Authorization: Bearer <token>`, the token
//!   being the content of `[api] token_file`; without a `token_file` TCP is
//!   read-only. A non-loopback address is refused unless
//!   `allow_remote = true`, and then needs a `token_file`, and every route
//!   but `/healthz` needs the token.

pub mod auth;
pub mod client;
pub mod commands;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod subject;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::sink::blocklist::{Blocklist, StoredBlock};
use crate::sink::BlockRecord;
use crate::time::Timestamp;

pub use self::metrics::install_metrics;
pub use self::server::serve;
pub use self::subject::{parse_subject, Subject};
pub use metrics_exporter_prometheus::PrometheusHandle;

/// Where the API socket is when the configuration does not say.
pub const DEFAULT_SOCKET: &str = "/run/authwatch/api.sock";

/// The rule id of blocks written by hand (API or command line).
pub const MANUAL_RULE: &str = "manual";

/// The longest manual block. Longer is almost surely a typo (`7w` for
/// `7d`); a permanent block belongs in the firewall, not in a TTL key.
pub const MAX_MANUAL_BLOCK: Duration = Duration::from_secs(365 * 86_400);

/// The validated `[api]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The unix socket, always served (mode 0660; its directory is created
    /// 0750 if missing).
    pub socket: PathBuf,
    /// An optional TCP address.
    pub listen: Option<SocketAddr>,
    /// Whether `listen` may be a non-loopback address.
    pub allow_remote: bool,
    /// A file holding the bearer token for TCP callers; mode 0600 or
    /// stricter.
    pub token_file: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            socket: PathBuf::from(DEFAULT_SOCKET),
            listen: None,
            allow_remote: false,
            token_file: None,
        }
    }
}

/// A request from the API to the engine task, which owns the windows and
/// knows the daemon's state.
#[derive(Debug)]
pub enum ControlRequest {
    /// The daemon's state, as one JSON object. The API serves it as is on
    /// `GET /v1/status`, the command line renders it, and `GET /healthz`
    /// reads `health`. Expected fields (all optional but `health`, which
    /// counts as `"ok"` when absent):
    ///
    /// ```json
    /// {
    ///   "version": "0.1.0",
    ///   "started_at": "2026-12-03T13:43:13Z",
    ///   "uptime_secs": 11520,
    ///   "host": "bastion-1",
    ///   "health": "ok",
    ///   "sources": [
    ///     {"name": "sshd", "path": "/var/log/auth.log", "files": 1,
    ///      "lag_bytes": 0, "last_line_at": "2026-12-03T16:55:01Z"}
    ///   ],
    ///   "rules": [
    ///     {"id": "sshd", "threshold": 50, "window_secs": 60, "block_for_secs": 900}
    ///   ],
    ///   "redis": {"url": "redis://127.0.0.1:6379/0", "state": "up",
    ///             "since": "2026-12-03T13:43:13Z", "last_error": null},
    ///   "queues": {"chunks": 0, "decisions": 0, "alerts": {"webhook": 0}},
    ///   "tracked_keys": 1234
    /// }
    /// ```
    ///
    /// * `health` is `"ok"` or a sentence starting with `"degraded: "`
    ///   (e.g. `"degraded: redis unreachable since 2026-12-03T16:01:07Z"`);
    ///   `/healthz` answers 200 for `"ok"` and 503 with the sentence
    ///   otherwise.
    /// * `lag_bytes`: bytes in the source's files not read yet.
    /// * `redis.url` must be shown through
    ///   [`redact_url`](crate::sink::blocklist::redact_url).
    /// * `queues`: items waiting in each channel; `tracked_keys`: windows
    ///   the detector holds.
    Status {
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// Forget every window (of every rule) whose address is `subject` or
    /// lies within it, so that the next failure after a block is lifted
    /// starts a fresh count instead of re-blocking at once. `subject` is
    /// the canonical text of a [`Subject`]: `203.0.113.7`, `2001:db8::1`,
    /// `2001:db8::/64`. Reply once done.
    Forget {
        subject: String,
        reply: oneshot::Sender<()>,
    },
}

/// What the API needs from the daemon.
#[derive(Clone)]
pub struct ApiContext {
    /// The same blocklist the writer uses (clones share one connection).
    pub blocklist: Blocklist,
    /// The engine task's control channel.
    pub control: mpsc::Sender<ControlRequest>,
    /// The handle of [`install_metrics`]; `None` serves 404 on `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// This host's name, written into manual blocks.
    pub host: String,
}

/// Why the API could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot create the API socket directory {}: {source}", dir.display())]
    SocketDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("another process serves the API socket {} (is authwatch already running?)", path.display())]
    SocketInUse { path: PathBuf },
    #[error("cannot bind the API socket {}: {source}", path.display())]
    BindSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set the mode of {}: {source}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    BindTcp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("[api] listen = \"{addr}\" is not a loopback address; set allow_remote = true (and token_file) to serve other hosts")]
    RemoteRefused { addr: SocketAddr },
    #[error("[api] listen = \"{addr}\" serves other hosts and so needs a token_file")]
    TokenRequired { addr: SocketAddr },
    #[error("[api] token_file {}: {message}", path.display())]
    TokenFile { path: PathBuf, message: String },
    #[error("the API server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A stored block as the API and the command line show it: the stored
/// record with `ip` and `seconds_left` set. A value that was not a JSON
/// object (written by hand) is shown under `raw`.
pub fn block_json(block: &StoredBlock) -> serde_json::Value {
    let mut shown = match &block.record {
        serde_json::Value::Object(o) => o.clone(),
        other => {
            let mut o = serde_json::Map::new();
            o.insert("raw".into(), other.clone());
            o
        }
    };
    shown.entry("ip").or_insert_with(|| block.ip.clone().into());
    shown.insert("seconds_left".into(), block.ttl_secs.into());
    serde_json::Value::Object(shown)
}

/// A block written by hand: rule [`MANUAL_RULE`], no failures counted.
pub fn manual_record(
    subject: &Subject,
    duration: Duration,
    reason: Option<&str>,
    host: &str,
    now: Timestamp,
) -> BlockRecord {
    let reason = match reason.map(str::trim) {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => "blocked by hand".to_owned(),
    };
    BlockRecord {
        ip: subject.to_string(),
        rule: MANUAL_RULE.to_owned(),
        count: 0,
        window_secs: 0,
        first_seen: now,
        last_seen: now,
        blocked_at: now,
        expires_at: now.saturating_add(duration),
        host: host.to_owned(),
        reason,
        block_for_secs: duration.as_secs(),
        // Not an offence: a block by hand counts in no history.
        offense: 0,
        shadow: false,
    }
}

/// Parses the duration of a manual block: at least a second, at most
/// [`MAX_MANUAL_BLOCK`].
pub fn parse_block_duration(text: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(text).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err(format!("duration {text:?} is shorter than a second"));
    }
    if d > MAX_MANUAL_BLOCK {
        return Err(format!(
            "duration {text:?} is longer than {}",
            crate::duration::format(MAX_MANUAL_BLOCK)
        ));
    }
    Ok(d)
}

/// Reasons are shown in tables and logs: one line, bounded.
pub fn check_reason(reason: &str) -> Result<(), String> {
    if reason.chars().count() > 512 {
        return Err("reason is longer than 512 characters".into());
    }
    if reason.chars().any(char::is_control) {
        return Err("reason must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_record_carries_the_subject_and_expires_after_the_duration() {
        let now = Timestamp::from_secs(1_700_000_000);
        let s = parse_subject("2001:db8::/64").unwrap();
        let r = manual_record(&s, Duration::from_secs(3600), Some(" scan "), "h1", now);
        assert_eq!(r.ip, "2001:db8::/64");
        assert_eq!(r.rule, "manual");
        assert_eq!(r.reason, "scan");
        assert_eq!(r.expires_at, Timestamp::from_secs(1_700_003_600));
        let r = manual_record(&s, Duration::from_secs(1), None, "h1", now);
        assert_eq!(r.reason, "blocked by hand");
    }

    #[test]
    fn block_durations_are_bounded() {
        assert_eq!(parse_block_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_block_duration("500ms").is_err());
        assert!(parse_block_duration("53w").is_err());
        assert!(parse_block_duration("60").is_err());
    }

    #[test]
    fn block_json_adds_seconds_left_and_keeps_odd_values() {
        let b = StoredBlock {
            record: serde_json::json!({"ip": "203.0.113.7", "rule": "sshd"}),
            ip: "203.0.113.7".into(),
            ttl_secs: 42,
        };
        let v = block_json(&b);
        assert_eq!(v["seconds_left"], 42);
        assert_eq!(v["rule"], "sshd");
        let b = StoredBlock {
            record: serde_json::Value::String("by hand".into()),
            ip: "198.51.100.1".into(),
            ttl_secs: -1,
        };
        let v = block_json(&b);
        assert_eq!(v["ip"], "198.51.100.1");
        assert_eq!(v["raw"], "by hand");
    }
}
