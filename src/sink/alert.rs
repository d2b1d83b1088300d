//! Alerts: a notice of each new block, sent to webhooks and Slack.
//!
//! Detection must never wait on the network, so [`Alerter::notify`] only
//! puts the alert on a bounded queue, one per destination, and returns. One
//! task per destination takes alerts off its queue and delivers them. A
//! slow or dead destination therefore delays only its own alerts.
//!
//! What keeps a destination usable through outages and floods:
//!
//! * every request has a timeout, and a failed one is retried after an
//!   exponential backoff with jitter, up to the target's `attempts`;
//! * a [`RateLimit`] per destination (governor's GCRA; by default Slack's
//!   documented pace, one per second with a burst of 5) spaces the requests,
//!   retries included. An alert that finds the limit reached is not dropped:
//!   it is folded into a [`Digest`], which goes out as one request as soon
//!   as the limiter allows ([`webhook_digest_body`], [`slack_digest_body`]).
//!   A flood of 500 blocks costs a handful of requests, not 500;
//! * when the queue itself is full (the destination has been stuck for a
//!   long time), further alerts are counted, and the count goes into the
//!   next digest's `omitted`: a flood costs no memory and loses no count;
//! * a webhook with a [`Secret`] is signed: see [`sign`].
//!
//! Every alert handed to a destination ends in exactly one of the counters
//! of [`AlertStats`]: `sent`, `sent_in_digest` or `given_up`.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::BlockRecord;

/// Alerts waiting per destination. Beyond this, alerts are no longer kept
/// one by one but only counted, into the next digest (see [`Digest`]).
pub const QUEUE_CAPACITY: usize = 1024;

/// The most blocks a Slack digest lists; the others are counted in its
/// `omitted`. Twenty addresses are what a person reads in a message.
pub const SLACK_DIGEST_LIST_CAP: usize = 20;
/// The most blocks a webhook digest lists. A program reads it, so it gets
/// more, but still a bounded body (about 40 KB) and bounded memory.
pub const WEBHOOK_DIGEST_LIST_CAP: usize = 100;

/// Header of a signed webhook request: `sha256=<64 hex digits>`.
pub const SIGNATURE_HEADER: &str = "X-Authwatch-Signature";
/// Header of a signed webhook request: the Unix time in seconds that the
/// signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Authwatch-Timestamp";

/// The header naming an alert by its body (hex of the first 16 bytes of
/// its SHA-256). An alert that is sent again after a crash — delivery is at
/// least once — carries the same body and so the same id: receivers dedupe
/// on it.
pub const EVENT_ID_HEADER: &str = "X-Authwatch-Event-Id";

/// The value of [`EVENT_ID_HEADER`] for `body`.
pub fn event_id(body: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(body);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// On shutdown, how long each destination keeps delivering what is queued.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// The delay before the first retry; it doubles for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured: a destination asking for more is
/// treated as down, and the alert will be given up sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

const USER_AGENT: &str = concat!("authwatch/", env!("CARGO_PKG_VERSION"));

/// Installs ring as the process-wide rustls crypto provider, which reqwest
/// (built without a provider of its own) needs before it builds a client.
/// Safe to call any number of times; a provider installed earlier, by this
/// function or anyone else, is kept.
pub fn install_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: one provider is in.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// What a destination expects in the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// The [`BlockRecord`] as JSON, exactly: see [`webhook_body`]; a digest
    /// is [`webhook_digest_body`].
    Webhook,
    /// A Slack incoming webhook: see [`slack_body`] and [`slack_digest_body`].
    Slack,
}

impl AlertKind {
    /// The most blocks one of its digests lists.
    pub fn digest_list_cap(self) -> usize {
        match self {
            AlertKind::Webhook => WEBHOOK_DIGEST_LIST_CAP,
            AlertKind::Slack => SLACK_DIGEST_LIST_CAP,
        }
    }
}

/// How fast requests may go to one destination: on average one per
/// `interval`, and up to `burst` at once after a quiet period (a token
/// bucket, governor's GCRA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub interval: Duration,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// Slack's documented pace for incoming webhooks: one message per
    /// second, short bursts allowed. The default for every destination.
    pub const SLACK: RateLimit = RateLimit {
        interval: Duration::from_secs(1),
        burst: NonZeroU32::new(5).unwrap(),
    };

    /// Parses a rate written `<count>/<period>`: `"1/s"`, `"20/m"`,
    /// `"30/1m"`, `"1/5s"`. The period is a duration in the one syntax of
    /// [`crate::duration`], its number optional when it is 1. Returns the
    /// interval between requests.
    pub fn parse_rate(text: &str) -> Result<Duration, String> {
        let bad = || {
            format!("{text:?} is not a rate: write <count>/<period>, e.g. \"1/s\", \"20/m\" or \"30/1m\"")
        };
        let (count, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!("{text:?}: the count must be at least 1"));
        }
        let period = period.trim();
        let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
            crate::duration::parse(period)
        } else {
            crate::duration::parse(&format!("1{period}"))
        }
        .map_err(|e| format!("{text:?}: {e}"))?;
        let interval = period / count;
        if interval < Duration::from_millis(1) {
            return Err(format!(
                "{text:?} is faster than one request per millisecond"
            ));
        }
        Ok(interval)
    }

    fn quota(&self) -> Quota {
        // A zero interval cannot come from parse_rate; should one be built
        // by hand, it means "as fast as possible".
        Quota::with_period(self.interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.burst)
    }
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit::SLACK
    }
}

/// The key a webhook's requests are signed with. It never prints: its
/// `Debug` is `[redacted]` and it has no `Display`.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into().into())
    }

    /// Reads a secret file. Whitespace around the secret (the newline that
    /// `echo` or an editor leaves) is not part of it. An empty file is
    /// refused: signing with an empty key would only look like security.
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let bytes = std::fs::read(path).map_err(|source| SecretError::Read {
            path: path.to_owned(),
            source,
        })?;
        let secret = bytes.trim_ascii();
        if secret.is_empty() {
            return Err(SecretError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Secret::new(secret))
    }

    /// The secret itself, for the one place that must use it.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret file was refused. The messages name the file, never any of
/// its content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the secret file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret file {} is empty", path.display())]
    Empty { path: PathBuf },
}

/// Where a configured `secret_file` is. An absolute path is taken as it
/// is. A relative one names a systemd credential when the service runs
/// with credentials (`LoadCredential=webhook.secret:/etc/…` sets
/// `$CREDENTIALS_DIRECTORY`, passed here as `credentials_dir`), and is
/// otherwise taken from the configuration file's directory, like every
/// other relative path in it.
pub fn secret_path(
    configured: &Path,
    config_dir: &Path,
    credentials_dir: Option<&Path>,
) -> PathBuf {
    if configured.is_absolute() {
        configured.to_owned()
    } else if let Some(dir) = credentials_dir {
        dir.join(configured)
    } else {
        config_dir.join(configured)
    }
}

/// The signature of one webhook request: `sha256=` and the hex HMAC-SHA256,
/// keyed with `secret`, of the timestamp in decimal, a `.`, and the body
/// exactly as sent. The timestamp travels in [`TIMESTAMP_HEADER`]; being in
/// the MAC, it lets a receiver refuse a replayed request.
pub fn sign(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!(
        "sha256={}",
        hmac_sha256_hex(secret.expose(), &[ts.as_bytes(), b".", body])
    )
}

fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(tag.len() * 2);
    for b in tag {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    hex
}

/// One alert destination.
#[derive(Clone)]
pub struct AlertTarget {
    pub kind: AlertKind,
    /// The full URL. A Slack webhook URL is a secret: it is never logged,
    /// only [`AlertTarget::destination`] is.
    pub url: String,
    /// Per request (default 5 s).
    pub timeout: Duration,
    /// Requests per alert, the first one included (default 4).
    pub attempts: u32,
    /// How fast requests may go (default [`RateLimit::SLACK`]).
    pub rate: RateLimit,
    /// Signs each request when set (webhooks only; see [`sign`]).
    pub secret: Option<Secret>,
}

impl AlertTarget {
    /// A target with the defaults: 5 s timeout, 4 attempts, Slack's pace,
    /// no signature.
    pub fn new(kind: AlertKind, url: impl Into<String>) -> AlertTarget {
        AlertTarget {
            kind,
            url: url.into(),
            timeout: Duration::from_secs(5),
            attempts: 4,
            rate: RateLimit::SLACK,
            secret: None,
        }
    }

    /// The destination as it may appear in logs: scheme, host and port.
    pub fn destination(&self) -> String {
        destination_label(&self.url)
    }
}

impl fmt::Debug for AlertTarget {
    // By hand, so that the URL's secret path never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertTarget")
            .field("kind", &self.kind)
            .field("url", &self.destination())
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("rate", &self.rate)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Counters over all destinations. Each alert handed to a destination ends
/// in exactly one of `sent`, `sent_in_digest` and `given_up`; the others
/// count requests and episodes.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Alerts a destination accepted (answered 2xx), each on its own.
    pub sent: AtomicU64,
    /// Alerts a destination accepted as part of a digest, listed or counted
    /// in its `omitted`.
    pub sent_in_digest: AtomicU64,
    /// Alerts abandoned, alone or in a digest: every attempt failed, the
    /// shutdown deadline passed, or the destination was unusable or already
    /// stopped.
    pub given_up: AtomicU64,
    /// Digest requests accepted.
    pub digests_sent: AtomicU64,
    /// Digest requests abandoned (their alerts are in `given_up`).
    pub digests_given_up: AtomicU64,
    /// Requests repeated after a failure.
    pub retried: AtomicU64,
    /// Alerts that found their destination's queue full. Not an outcome:
    /// they are counted into the next digest's `omitted`, and end in
    /// `sent_in_digest` or `given_up` with it.
    pub overflowed: AtomicU64,
}

impl AlertStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Alerts that found one destination's queue full: only counted, until the
/// destination's task takes the count into a digest. A `std` mutex: it is
/// never held across an await, and only taken while the queue is full.
#[derive(Default)]
struct Overflow {
    state: Mutex<OverflowState>,
    /// Wakes the destination task when it has nothing queued to wake it.
    wake: Notify,
}

#[derive(Default)]
struct OverflowState {
    count: u64,
    /// Set by the task when it stops: later alerts are given up by
    /// [`Alerter::notify`] itself, so that none is counted where nobody
    /// will ever look.
    closed: bool,
}

impl Overflow {
    fn lock(&self) -> std::sync::MutexGuard<'_, OverflowState> {
        // The critical sections only add to integers: a panic in one
        // cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one alert; false if the destination has stopped.
    fn add(&self) -> bool {
        let mut s = self.lock();
        if s.closed {
            return false;
        }
        s.count += 1;
        drop(s);
        self.wake.notify_one();
        true
    }

    fn take(&self) -> u64 {
        std::mem::take(&mut self.lock().count)
    }

    /// Stops counting; returns what was counted and not yet taken.
    fn close(&self) -> u64 {
        let mut s = self.lock();
        s.closed = true;
        std::mem::take(&mut s.count)
    }
}

/// The sending side of one destination's queue.
struct Queue {
    label: String,
    tx: mpsc::Sender<Arc<BlockRecord>>,
    overflow: Arc<Overflow>,
    /// Whether the queue is full right now: that is logged at warn once
    /// when it starts and once when it ends, with the count, rather than
    /// once per alert during a flood.
    full: AtomicBool,
    overflowed_in_episode: AtomicU64,
}

/// Delivers block alerts to their destinations in the background.
///
/// Clones share the queues. The destination tasks stop when `shutdown` is
/// cancelled (after draining, see [`Alerter::spawn`]) or when every clone
/// has been dropped and the queues are empty.
#[derive(Clone)]
pub struct Alerter {
    queues: Arc<[Queue]>,
    stats: Arc<AlertStats>,
}

impl fmt::Debug for Alerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.queues.iter().map(|q| q.label.as_str()).collect();
        f.debug_struct("Alerter")
            .field("destinations", &labels)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Alerter {
    /// Starts one delivery task per target on `tracker`.
    ///
    /// `host` names this daemon in digests and in the warnings the tasks
    /// log (each single alert's body carries the deciding host from its
    /// record).
    ///
    /// When `shutdown` is cancelled, each task keeps delivering what is
    /// already queued for at most 5 s; what is left then counts as given up.
    /// A target whose URL does not parse, or an HTTP client that cannot be
    /// built, is logged at error and its alerts are counted as given up.
    pub fn spawn(
        targets: Vec<AlertTarget>,
        host: String,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Alerter {
        install_tls_provider();
        let stats = Arc::new(AlertStats::default());
        // Building the client loads the system's CA certificates, a few
        // milliseconds of start-up: not for a daemon without destinations.
        let client = if targets.is_empty() {
            Err("no alert destinations".to_owned())
        } else {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                // A webhook that redirects is misconfigured, and following a
                // redirect would turn the POST into a GET: fail visibly instead.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| error_chain(&e))
        };
        if let (false, Err(e)) = (targets.is_empty(), &client) {
            tracing::error!(error = %e, "cannot build the HTTP client; alerts will not be sent");
        }

        let mut queues = Vec::with_capacity(targets.len());
        for target in targets {
            let label = target.destination();
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            let endpoint = match (&client, reqwest::Url::parse(&target.url)) {
                (Ok(client), Ok(url)) => Ok((client.clone(), url)),
                (Err(e), _) => Err(format!("no HTTP client: {e}")),
                (_, Err(e)) => {
                    tracing::error!(destination = %label, error = %e,
                        "alert URL does not parse; alerts to it will not be sent");
                    Err(format!("URL does not parse: {e}"))
                }
            };
            let overflow = Arc::new(Overflow::default());
            let destination = Destination {
                kind: target.kind,
                label: label.clone(),
                endpoint,
                timeout: target.timeout,
                attempts: target.attempts.max(1),
                secret: target.secret,
                limiter: RateLimiter::direct(target.rate.quota()),
                jitter: Jitter::seeded(&label),
                host: host.clone(),
                stats: Arc::clone(&stats),
                overflow: Arc::clone(&overflow),
            };
            tracker.spawn(destination.run(rx, shutdown.clone()));
            queues.push(Queue {
                label,
                tx,
                overflow,
                full: AtomicBool::new(false),
                overflowed_in_episode: AtomicU64::new(0),
            });
        }
        Alerter {
            queues: queues.into(),
            stats,
        }
    }

    /// Queues an alert for every destination. Never blocks and never waits
    /// on the network.
    ///
    /// Returns a weak handle on the alert: once no destination holds it any
    /// more (`strong_count() == 0`), every destination has delivered it,
    /// folded it into a digest it sent, or given up on it. The daemon
    /// records the alert as settled only then, so a crash in between sends
    /// it again at the next start rather than never.
    pub fn notify(&self, rec: &BlockRecord) -> std::sync::Weak<BlockRecord> {
        // One copy shared by every destination; each task builds its body.
        let rec = Arc::new(rec.clone());
        let handle = Arc::downgrade(&rec);
        for queue in self.queues.iter() {
            match queue.tx.try_send(Arc::clone(&rec)) {
                Ok(()) => {
                    if queue.full.swap(false, Ordering::Relaxed) {
                        let overflowed = queue.overflowed_in_episode.swap(0, Ordering::Relaxed);
                        tracing::warn!(destination = %queue.label, overflowed,
                            "alert queue accepts alerts again");
                    }
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !queue.overflow.add() {
                        self.given_up_stopped(queue, &rec.ip);
                        continue;
                    }
                    AlertStats::add(&self.stats.overflowed, 1);
                    queue.overflowed_in_episode.fetch_add(1, Ordering::Relaxed);
                    if queue.full.swap(true, Ordering::Relaxed) {
                        tracing::debug!(destination = %queue.label, ip = %rec.ip,
                            "alert queue full; alert counted into the next digest");
                    } else {
                        tracing::warn!(destination = %queue.label, ip = %rec.ip,
                            capacity = QUEUE_CAPACITY,
                            "alert queue full: alerts are only counted, into the next digest, until it drains");
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.given_up_stopped(queue, &rec.ip),
            }
        }
        handle
    }

    fn given_up_stopped(&self, queue: &Queue, ip: &str) {
        AlertStats::add(&self.stats.given_up, 1);
        tracing::warn!(destination = %queue.label, ip = %ip,
            "alert destination has stopped; alert given up");
    }

    pub fn stats(&self) -> Arc<AlertStats> {
        Arc::clone(&self.stats)
    }
}

/// The generic webhook payload: the record's JSON, exactly as stored in
/// Redis and published on the events channel.
pub fn webhook_body(rec: &BlockRecord) -> Vec<u8> {
    // A BlockRecord holds only strings and integers, which always serialize.
    serde_json::to_vec(rec).expect("a BlockRecord always serializes")
}

/// A Slack message (mrkdwn) for humans.
///
/// The minutes left count from `blocked_at`, not from the moment of
/// sending, so that the body is a function of the record alone and a retry
/// sends the same text.
pub fn slack_body(rec: &BlockRecord) -> serde_json::Value {
    let minutes = rec.expires_at.since(rec.blocked_at).as_secs().div_ceil(60);
    let text = format!(
        ":no_entry: *authwatch blocked* {ip}\n\
         *Rule:* {rule}: {count} failures in {window} s\n\
         *Expires:* {expires} (in {minutes} min)\n\
         *Host:* {host}",
        ip = slack_code(&rec.ip),
        rule = slack_code(&rec.rule),
        count = rec.count,
        window = rec.window_secs,
        expires = slack_escape(&rec.expires_at.to_string()),
        host = slack_code(&rec.host),
    );
    serde_json::json!({ "text": text })
}

/// Blocks folded into one request while a destination's rate limit was
/// reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    /// The first blocks folded, oldest first, up to
    /// [`AlertKind::digest_list_cap`].
    pub blocks: Vec<BlockRecord>,
    /// Blocks folded beyond those listed, and alerts that found the queue
    /// full: counted, not listed.
    pub omitted: u64,
    /// Seconds from the first alert folded to the digest being sent,
    /// rounded up, at least 1.
    pub window_secs: u64,
}

impl Digest {
    /// All the blocks it stands for: listed and omitted.
    pub fn count(&self) -> u64 {
        self.blocks.len() as u64 + self.omitted
    }
}

/// The webhook form of a digest, told apart from a single block by its
/// `"digest": true` (a [`BlockRecord`] has no such field):
///
/// ```json
/// {"digest": true, "count": 37, "window_secs": 60, "host": "web-1",
///  "blocks": [{…record…}, …], "omitted": 17}
/// ```
///
/// `blocks` lists at most [`WEBHOOK_DIGEST_LIST_CAP`] records, the oldest
/// first; `count` = the length of `blocks` + `omitted`; `host` is the
/// daemon's.
pub fn webhook_digest_body(digest: &Digest, host: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        digest: bool,
        count: u64,
        window_secs: u64,
        host: &'a str,
        blocks: &'a [BlockRecord],
        omitted: u64,
    }
    let body = Body {
        digest: true,
        count: digest.count(),
        window_secs: digest.window_secs,
        host,
        blocks: &digest.blocks,
        omitted: digest.omitted,
    };
    serde_json::to_vec(&body).expect("a digest always serializes")
}

/// The Slack form of a digest: "+37 more IPs blocked in the last 60 s:
/// `203.0.113.7` (sshd), … and 17 more".
pub fn slack_digest_body(digest: &Digest, host: &str) -> serde_json::Value {
    let count = digest.count();
    let mut text = format!(
        ":no_entry: *authwatch: +{count} more {ips} blocked in the last {secs} s* \
         (alerts here are rate-limited)",
        ips = if count == 1 { "IP" } else { "IPs" },
        secs = digest.window_secs,
    );
    if !digest.blocks.is_empty() {
        text.push('\n');
        let listed: Vec<String> = digest
            .blocks
            .iter()
            .map(|b| format!("{} ({})", slack_code(&b.ip), slack_escape(&b.rule)))
            .collect();
        text.push_str(&listed.join(", "));
        if digest.omitted > 0 {
            text.push_str(&format!(" and {} more", digest.omitted));
        }
    }
    text.push_str(&format!("\n*Host:* {}", slack_code(host)));
    serde_json::json!({ "text": text })
}

/// Escapes the three characters Slack's mrkdwn reserves for its own markup
/// (links, mentions): `&`, `<` and `>`.
fn slack_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A value as inline code, so that `_` or `*` in it is not taken as
/// formatting. Slack has no escape for a backtick inside code, so one is
/// shown as `'`.
fn slack_code(s: &str) -> String {
    format!("`{}`", slack_escape(s).replace('`', "'"))
}

/// `scheme://host[:port]` of a URL: what may be logged of a destination,
/// whose path and query can hold a secret token.
fn destination_label(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", u.scheme()),
            (Some(host), None) => format!("{}://{host}", u.scheme()),
            (None, _) => format!("{}://", u.scheme()),
        },
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// An error with its causes, e.g. "error sending request: client error
/// (Connect): tcp connect error: Connection refused". The caller strips the
/// URL from reqwest errors first.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Why one request failed.
struct Failure {
    what: String,
    /// The destination's own `Retry-After`, if it sent a usable one.
    retry_after: Option<Duration>,
}

/// Alerts being folded into the next digest.
struct Folding {
    /// How many blocks it lists at most.
    cap: usize,
    blocks: Vec<BlockRecord>,
    omitted: u64,
    /// When the first alert was folded.
    since: Option<Instant>,
    /// The folded alerts themselves, held until their digest is delivered
    /// or given up: the daemon sees an alert settled only once nobody holds
    /// it (see [`Alerter::notify`]).
    holds: Vec<Arc<BlockRecord>>,
}

impl Folding {
    fn new(cap: usize) -> Folding {
        Folding {
            cap,
            blocks: Vec::new(),
            omitted: 0,
            since: None,
            holds: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.since.is_none()
    }

    fn count(&self) -> u64 {
        self.blocks.len() as u64 + self.omitted
    }

    fn fold(&mut self, rec: &Arc<BlockRecord>) {
        self.since.get_or_insert_with(Instant::now);
        self.holds.push(Arc::clone(rec));
        if self.blocks.len() < self.cap {
            self.blocks.push(BlockRecord::clone(rec));
        } else {
            self.omitted += 1;
        }
    }

    fn fold_uncounted(&mut self, n: u64) {
        if n > 0 {
            self.since.get_or_insert_with(Instant::now);
            self.omitted += n;
        }
    }

    fn take(&mut self) -> Digest {
        let Folding {
            blocks,
            omitted,
            since,
            ..
        } = std::mem::replace(self, Folding::new(self.cap));
        let ms = since.map_or(0, |t| t.elapsed().as_millis());
        Digest {
            blocks,
            omitted,
            window_secs: u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX).max(1),
        }
    }
}

/// What one delivery carries.
enum Payload {
    One(Arc<BlockRecord>),
    Digest(Digest),
}

impl Payload {
    /// The alerts it stands for.
    fn alerts(&self) -> u64 {
        match self {
            Payload::One(_) => 1,
            Payload::Digest(d) => d.count(),
        }
    }
}

impl fmt::Display for Payload {
    // For logs: the address, or the digest's size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::One(rec) => f.write_str(&rec.ip),
            Payload::Digest(d) => write!(f, "digest of {} alerts", d.count()),
        }
    }
}

/// A xorshift64* generator: all the randomness backoff jitter needs. Each
/// destination task seeds its own, so that destinations (and daemons) that
/// failed together do not retry together. An atomic only so that the task's
/// state is `Sync`; one task uses it.
struct Jitter(AtomicU64);

impl Jitter {
    /// Seeded from std's per-process random hash keys, the clock's
    /// nanoseconds and the destination.
    fn seeded(label: &str) -> Jitter {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(label.as_bytes());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        h.write_u128(nanos);
        Jitter::from_seed(h.finish())
    }

    fn from_seed(seed: u64) -> Jitter {
        // Zero is xorshift's one fixed point: replace it by any other value.
        Jitter(AtomicU64::new(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        }))
    }

    /// Uniform in [0, 1).
    fn next_unit(&self) -> f64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.store(x, Ordering::Relaxed);
        // The top 53 bits of the scrambled state, as an f64 mantissa.
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The delay after failed attempt `attempt` (1-based): 0.5 s, 1 s, 2 s, …
/// up to 30 s, scaled by `0.5 + unit` for `unit` in [0, 1): from half to
/// one and a half times the base, so on average the base itself.
fn backoff(attempt: u32, unit: f64) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    base.mul_f64(0.5 + unit.clamp(0.0, 1.0))
}

/// The receiving side of one destination: its task's state.
struct Destination {
    kind: AlertKind,
    label: String,
    /// Where to send, or why nothing can be sent.
    endpoint: Result<(reqwest::Client, reqwest::Url), String>,
    timeout: Duration,
    attempts: u32,
    secret: Option<Secret>,
    limiter: DefaultDirectRateLimiter,
    jitter: Jitter,
    host: String,
    stats: Arc<AlertStats>,
    overflow: Arc<Overflow>,
}

impl Destination {
    /// Takes alerts off the queue until shutdown (then drains, bounded) or
    /// until every sender is gone and nothing is left.
    ///
    /// The rule: an alert goes out on its own when nothing is waiting to be
    /// digested and the limiter has a request to spare. Otherwise it is
    /// folded into the digest, and so is everything queued behind it, until
    /// the limiter lets the digest go.
    async fn run(self, mut rx: mpsc::Receiver<Arc<BlockRecord>>, shutdown: CancellationToken) {
        // Resolves DRAIN_DEADLINE after shutdown is requested; until then it
        // stays pending and costs nothing.
        let drain_deadline = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                tokio::time::sleep(DRAIN_DEADLINE).await;
            }
        };
        tokio::pin!(drain_deadline);

        let mut folding = Folding::new(self.kind.digest_list_cap());
        // The alerts of the digest being delivered (see `Folding::holds`).
        let mut held: Vec<Arc<BlockRecord>> = Vec::new();
        // False once every Alerter is dropped: the queue only empties then.
        let mut open = true;
        loop {
            let draining = shutdown.is_cancelled();
            folding.fold_uncounted(self.overflow.take());
            let payload = if !folding.is_empty() {
                while let Ok(rec) = rx.try_recv() {
                    folding.fold(&rec);
                }
                match self.limiter.check() {
                    Ok(()) => {
                        held = std::mem::take(&mut folding.holds);
                        Payload::Digest(folding.take())
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(self.limiter.clock().now());
                        tokio::select! {
                            biased;
                            () = &mut drain_deadline => break,
                            () = tokio::time::sleep(wait) => {}
                            rec = rx.recv(), if open && !draining => match rec {
                                Some(rec) => folding.fold(&rec),
                                None => open = false,
                            },
                            () = shutdown.cancelled(), if !draining => {}
                        }
                        continue;
                    }
                }
            } else {
                let rec = if draining || !open {
                    // Draining: take only what is already queued.
                    match rx.try_recv() {
                        Ok(rec) => rec,
                        Err(_) => break,
                    }
                } else {
                    tokio::select! {
                        biased;
                        rec = rx.recv() => match rec {
                            Some(rec) => rec,
                            None => {
                                open = false;
                                continue;
                            }
                        },
                        () = self.overflow.wake.notified() => continue,
                        () = shutdown.cancelled() => continue,
                    }
                };
                if self.limiter.check().is_ok() {
                    Payload::One(rec)
                } else {
                    folding.fold(&rec);
                    continue;
                }
            };
            tokio::select! {
                () = self.deliver(&payload) => {}
                () = &mut drain_deadline => {
                    self.given_up(&payload);
                    tracing::warn!(destination = %self.label, alert = %payload, host = %self.host,
                        "shutdown deadline passed while sending an alert; alert given up");
                    break;
                }
            }
            drop(payload);
            held.clear();
        }

        // Refuse new alerts, then count what will never be sent.
        rx.close();
        let mut left = folding.count() + self.overflow.close();
        while rx.try_recv().is_ok() {
            left += 1;
        }
        if left > 0 {
            AlertStats::add(&self.stats.given_up, left);
            tracing::warn!(destination = %self.label, left, host = %self.host,
                "alerts still queued, or waiting for a digest, at shutdown were given up");
        }
    }

    fn given_up(&self, payload: &Payload) {
        AlertStats::add(&self.stats.given_up, payload.alerts());
        if let Payload::Digest(_) = payload {
            AlertStats::add(&self.stats.digests_given_up, 1);
        }
    }

    fn sent(&self, payload: &Payload) {
        match payload {
            Payload::One(_) => AlertStats::add(&self.stats.sent, 1),
            Payload::Digest(d) => {
                AlertStats::add(&self.stats.sent_in_digest, d.count());
                AlertStats::add(&self.stats.digests_sent, 1);
            }
        }
    }

    fn body(&self, payload: &Payload) -> Vec<u8> {
        match (self.kind, payload) {
            (AlertKind::Webhook, Payload::One(rec)) => webhook_body(rec),
            (AlertKind::Slack, Payload::One(rec)) => slack_body(rec).to_string().into_bytes(),
            (AlertKind::Webhook, Payload::Digest(d)) => webhook_digest_body(d, &self.host),
            (AlertKind::Slack, Payload::Digest(d)) => {
                slack_digest_body(d, &self.host).to_string().into_bytes()
            }
        }
    }

    /// Waits until the limiter allows one more request, and takes it.
    async fn acquire(&self) {
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.limiter.clock().now())).await;
        }
    }

    /// Sends one payload, retrying, and counts the outcome. The caller has
    /// taken the first request from the limiter; each retry takes its own.
    async fn deliver(&self, payload: &Payload) {
        let (client, url) = match &self.endpoint {
            Ok(endpoint) => endpoint,
            Err(why) => {
                self.given_up(payload);
                tracing::warn!(destination = %self.label, alert = %payload, reason = %why,
                    "alert destination unusable; alert given up");
                return;
            }
        };
        let body = self.body(payload);
        let mut attempt = 1;
        loop {
            match self.send_once(client, url, &body).await {
                Ok(()) => {
                    self.sent(payload);
                    if let Payload::Digest(d) = payload {
                        // Worth an operator's notice: alerts are arriving
                        // faster than the destination's rate limit.
                        tracing::info!(destination = %self.label, alerts = d.count(),
                            listed = d.blocks.len(), window_secs = d.window_secs, attempt,
                            "rate limit reached: alerts sent as one digest");
                    } else {
                        tracing::debug!(destination = %self.label, alert = %payload, attempt,
                            "alert sent");
                    }
                    return;
                }
                Err(failure) if attempt >= self.attempts => {
                    self.given_up(payload);
                    tracing::warn!(destination = %self.label, kind = ?self.kind,
                        alert = %payload, alerts = payload.alerts(), attempts = attempt,
                        error = %failure.what, host = %self.host, "alert given up");
                    return;
                }
                Err(failure) => {
                    let delay = failure
                        .retry_after
                        .unwrap_or_else(|| backoff(attempt, self.jitter.next_unit()))
                        .min(MAX_RETRY_AFTER);
                    tracing::debug!(destination = %self.label, alert = %payload, attempt,
                        error = %failure.what, ?delay, "alert failed; will retry");
                    tokio::time::sleep(delay).await;
                    self.acquire().await;
                    attempt += 1;
                    AlertStats::add(&self.stats.retried, 1);
                }
            }
        }
    }

    async fn send_once(
        &self,
        client: &reqwest::Client,
        url: &reqwest::Url,
        body: &[u8],
    ) -> Result<(), Failure> {
        let mut request = client
            .post(url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(EVENT_ID_HEADER, event_id(body));
        if let Some(secret) = &self.secret {
            // Signed per attempt: a retry carries a fresh timestamp, so a
            // receiver's freshness window holds for it too.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request
                .header(TIMESTAMP_HEADER, now.to_string())
                .header(SIGNATURE_HEADER, sign(secret, now, body));
        }
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Failure {
                // reqwest shows the URL in its errors; it may be a secret.
                what: error_chain(&e.without_url()),
                retry_after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            _ => None,
        };
        Err(Failure {
            what: format!("HTTP {status}"),
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn record() -> BlockRecord {
        BlockRecord {
            ip: "203.0.113.7".into(),
            rule: "sshd<&>".into(),
            count: 52,
            window_secs: 60,
            first_seen: Timestamp::from_secs(1_800_000_000),
            last_seen: Timestamp::from_secs(1_800_000_050),
            blocked_at: Timestamp::from_secs(1_800_000_051),
            expires_at: Timestamp::from_secs(1_800_003_651),
            host: "web-1".into(),
            reason: "52 failures of rule sshd in 60s".into(),
            block_for_secs: 3600,
            offense: 1,
            shadow: false,
        }
    }

    fn record_for(ip: &str) -> BlockRecord {
        BlockRecord {
            ip: ip.into(),
            rule: "sshd".into(),
            ..record()
        }
    }

    #[test]
    fn slack_text_escapes_and_says_everything() {
        let body = slack_body(&record());
        let text = body["text"].as_str().unwrap_or_default();
        assert!(text.contains("`203.0.113.7`"), "{text}");
        assert!(text.contains("`sshd&lt;&amp;&gt;`"), "{text}");
        assert!(text.contains("52 failures in 60 s"), "{text}");
        assert!(text.contains(&record().expires_at.to_string()), "{text}");
        assert!(text.contains("in 60 min"), "{text}");
        assert!(text.contains("`web-1`"), "{text}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn webhook_body_is_the_record_json() {
        let rec = record();
        assert_eq!(
            webhook_body(&rec),
            serde_json::to_vec(&rec).unwrap_or_default()
        );
    }

    #[test]
    fn webhook_digest_has_the_documented_fields() {
        let digest = Digest {
            blocks: vec![record_for("203.0.113.7"), record_for("2001:db8::/64")],
            omitted: 35,
            window_secs: 60,
        };
        let body: serde_json::Value =
            serde_json::from_slice(&webhook_digest_body(&digest, "web-1")).unwrap();
        assert_eq!(body["digest"], true);
        assert_eq!(body["count"], 37);
        assert_eq!(body["window_secs"], 60);
        assert_eq!(body["host"], "web-1");
        assert_eq!(body["omitted"], 35);
        assert_eq!(body["blocks"][1]["ip"], "2001:db8::/64");
        assert_eq!(
            body["blocks"][0],
            serde_json::to_value(record_for("203.0.113.7")).unwrap()
        );
        assert_eq!(body.as_object().map(|o| o.len()), Some(6));
    }

    #[test]
    fn slack_digest_lists_then_counts() {
        let digest = Digest {
            blocks: vec![record_for("203.0.113.7"), record_for("198.51.100.4")],
            omitted: 35,
            window_secs: 60,
        };
        let text = slack_digest_body(&digest, "web-1")["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            text.contains("+37 more IPs blocked in the last 60 s"),
            "{text}"
        );
        assert!(
            text.contains("`203.0.113.7` (sshd), `198.51.100.4` (sshd) and 35 more"),
            "{text}"
        );
        assert!(text.contains("`web-1`"), "{text}");

        let only_counted = Digest {
            blocks: vec![],
            omitted: 1,
            window_secs: 1,
        };
        let text = slack_digest_body(&only_counted, "web-1").to_string();
        assert!(
            text.contains("+1 more IP blocked in the last 1 s"),
            "{text}"
        );
    }

    #[test]
    fn folding_lists_up_to_the_cap_and_counts_the_rest() {
        let mut f = Folding::new(SLACK_DIGEST_LIST_CAP);
        assert!(f.is_empty());
        for i in 0..SLACK_DIGEST_LIST_CAP + 5 {
            f.fold(&Arc::new(record_for(&format!("192.0.2.{i}"))));
        }
        f.fold_uncounted(3);
        let d = f.take();
        assert!(f.is_empty());
        assert_eq!(d.blocks.len(), SLACK_DIGEST_LIST_CAP);
        assert_eq!(d.blocks[0].ip, "192.0.2.0");
        assert_eq!(d.omitted, 8);
        assert_eq!(d.count(), SLACK_DIGEST_LIST_CAP as u64 + 8);
        assert_eq!(d.window_secs, 1);
    }

    #[test]
    fn labels_hide_paths_and_credentials() {
        assert_eq!(
            destination_label("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            destination_label("http://user:pw@127.0.0.1:8080/hook?token=x"),
            "http://127.0.0.1:8080"
        );
        let t = AlertTarget {
            secret: Some(Secret::new("hunter2")),
            ..AlertTarget::new(
                AlertKind::Slack,
                "https://hooks.slack.com/services/T0/B0/secret",
            )
        };
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("secret/") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn rates_parse_to_intervals() {
        let ms = |s: &str| RateLimit::parse_rate(s).map(|d| d.as_millis());
        assert_eq!(ms("1/s"), Ok(1000));
        assert_eq!(ms(" 20 / s "), Ok(50));
        assert_eq!(ms("20/m"), Ok(3000));
        assert_eq!(ms("30/1m"), Ok(2000));
        assert_eq!(ms("1/5s"), Ok(5000));
        for bad in [
            "", "1", "s", "0/s", "-1/s", "1/", "1/x", "1/5", "5000/s", "a/s",
        ] {
            assert!(RateLimit::parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(RateLimit::default().interval, Duration::from_secs(1));
        assert_eq!(RateLimit::default().burst.get(), 5);
    }

    #[test]
    fn the_limiter_allows_the_burst_then_refuses() {
        let limiter = RateLimiter::direct(RateLimit::SLACK.quota());
        for _ in 0..5 {
            assert!(limiter.check().is_ok());
        }
        let not_until = limiter.check().expect_err("the burst is spent");
        let wait = not_until.wait_time_from(limiter.clock().now());
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for (attempt, base_ms) in [(1u32, 500u128), (2, 1000), (3, 2000), (20, 30_000)] {
            assert_eq!(backoff(attempt, 0.5).as_millis(), base_ms, "{attempt}");
            assert_eq!(backoff(attempt, 0.0).as_millis(), base_ms / 2, "{attempt}");
            let high = backoff(attempt, 0.999_999).as_millis();
            assert!(
                high < base_ms * 3 / 2 && high > base_ms * 3 / 2 - 2,
                "{attempt}: {high}"
            );
        }
    }

    #[test]
    fn jitter_is_uniform_ish_and_differs_per_seed() {
        let j = Jitter::from_seed(42);
        let draws: Vec<f64> = (0..1000).map(|_| j.next_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        // Each tenth of [0, 1) is hit about 100 times.
        for decile in 0..10 {
            let lo = f64::from(decile) / 10.0;
            let n = draws.iter().filter(|&&u| u >= lo && u < lo + 0.1).count();
            assert!((50..150).contains(&n), "decile {decile}: {n}");
        }
        let other = Jitter::from_seed(43);
        assert_ne!(
            (0..8).map(|_| other.next_unit()).collect::<Vec<_>>(),
            draws[..8].to_vec()
        );
        // Two destinations seeded at the same moment still differ.
        let (a, b) = (Jitter::seeded("http://a"), Jitter::seeded("http://a"));
        assert_ne!(a.next_unit(), b.next_unit());
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", &[b"what do ya ", b"want for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign(&Secret::new("Jefe"), 1_800_000_000, b"{}"),
            format!("sha256={}", hmac_sha256_hex(b"Jefe", &[b"1800000000.{}"]))
        );
    }

    #[test]
    fn secrets_are_trimmed_refused_when_empty_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhook.secret");
        std::fs::write(&path, "  s3cret-value\n").unwrap();
        let secret = Secret::from_file(&path).unwrap();
        assert_eq!(secret.expose(), b"s3cret-value");
        assert_eq!(format!("{secret:?}"), "[redacted]");

        std::fs::write(&path, "\n").unwrap();
        let e = Secret::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("webhook.secret") && e.contains("empty"), "{e}");
        let e = Secret::from_file(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent"), "{e}");
    }

    #[test]
    fn relative_secret_files_are_credentials_under_systemd() {
        let etc = Path::new("/etc/authwatch");
        let creds = Path::new("/run/credentials/authwatch.service");
        assert_eq!(
            secret_path(Path::new("/srv/hook.secret"), etc, Some(creds)),
            PathBuf::from("/srv/hook.secret")
        );
        assert_eq!(
            secret_path(Path::new("webhook.secret"), etc, Some(creds)),
            creds.join("webhook.secret")
        );
        assert_eq!(
            secret_path(Path::new("webhook.secret"), etc, None),
            etc.join("webhook.secret")
        );
    }

    #[test]
    fn tls_provider_install_is_idempotent() {
        install_tls_provider();
        install_tls_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
