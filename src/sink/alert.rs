//! Alerts: a notice of each new block, sent to webhooks and Slack.
//!
//! Detection must never wait on the network, so [`Alerter::notify`] only
//! puts the alert on a bounded queue, one per destination, and returns. One
//! task per destination takes alerts off its queue and delivers them, with
//! retries. A slow or dead destination therefore delays only its own alerts,
//! and when its queue is full further alerts for it are dropped and counted.
//!
//! Every alert handed to a destination ends in exactly one of the counters
//! of [`AlertStats`]: `sent`, `given_up` or `dropped_queue_full`.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::BlockRecord;

/// Alerts waiting per destination. At one Slack message per second (Slack's
/// pace) this is about a quarter of an hour of backlog; beyond that, newer
/// alerts are dropped rather than holding memory for a destination that is
/// not keeping up.
pub const QUEUE_CAPACITY: usize = 1024;

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
    /// The [`BlockRecord`] as JSON, exactly: see [`webhook_body`].
    Webhook,
    /// A Slack incoming webhook: see [`slack_body`].
    Slack,
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
}

impl AlertTarget {
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
            .finish()
    }
}

/// Counters over all destinations.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Alerts a destination accepted (answered 2xx).
    pub sent: AtomicU64,
    /// Requests repeated after a failure.
    pub retried: AtomicU64,
    /// Alerts abandoned: every attempt failed, the shutdown deadline passed,
    /// or the destination was unusable or already stopped.
    pub given_up: AtomicU64,
    /// Alerts not queued because the destination's queue was full.
    pub dropped_queue_full: AtomicU64,
}

impl AlertStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One alert on its way to one destination.
struct Job {
    ip: String,
    body: Vec<u8>,
}

/// The sending side of one destination's queue.
struct Queue {
    kind: AlertKind,
    label: String,
    tx: mpsc::Sender<Job>,
    /// Whether alerts are being dropped right now: a full queue is logged at
    /// warn once when dropping starts and once when it ends, with the count,
    /// rather than once per alert during a flood.
    dropping: AtomicBool,
    dropped_in_episode: AtomicU64,
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
    /// `host` names this daemon in the warnings the tasks log (each alert
    /// body carries the deciding host from its record).
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
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            // A webhook that redirects is misconfigured, and following a
            // redirect would turn the POST into a GET: fail visibly instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| error_chain(&e));
        if let Err(e) = &client {
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
            let destination = Destination {
                kind: target.kind,
                label: label.clone(),
                endpoint,
                timeout: target.timeout,
                attempts: target.attempts.max(1),
                host: host.clone(),
                stats: Arc::clone(&stats),
            };
            tracker.spawn(destination.run(rx, shutdown.clone()));
            queues.push(Queue {
                kind: target.kind,
                label,
                tx,
                dropping: AtomicBool::new(false),
                dropped_in_episode: AtomicU64::new(0),
            });
        }
        Alerter {
            queues: queues.into(),
            stats,
        }
    }

    /// Queues an alert for every destination. Never blocks and never waits
    /// on the network.
    pub fn notify(&self, rec: &BlockRecord) {
        let mut webhook = None;
        let mut slack = None;
        for queue in self.queues.iter() {
            let body = match queue.kind {
                AlertKind::Webhook => webhook.get_or_insert_with(|| webhook_body(rec)).clone(),
                AlertKind::Slack => slack
                    .get_or_insert_with(|| slack_body(rec).to_string().into_bytes())
                    .clone(),
            };
            let job = Job {
                ip: rec.ip.clone(),
                body,
            };
            match queue.tx.try_send(job) {
                Ok(()) => {
                    if queue.dropping.swap(false, Ordering::Relaxed) {
                        let dropped = queue.dropped_in_episode.swap(0, Ordering::Relaxed);
                        tracing::warn!(destination = %queue.label, dropped,
                            "alert queue accepts alerts again");
                    }
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    AlertStats::add(&self.stats.dropped_queue_full, 1);
                    queue.dropped_in_episode.fetch_add(1, Ordering::Relaxed);
                    if queue.dropping.swap(true, Ordering::Relaxed) {
                        tracing::debug!(destination = %queue.label, ip = %rec.ip,
                            "alert queue full; alert dropped");
                    } else {
                        tracing::warn!(destination = %queue.label, ip = %rec.ip,
                            capacity = QUEUE_CAPACITY,
                            "alert queue full: dropping alerts until it drains");
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    AlertStats::add(&self.stats.given_up, 1);
                    tracing::warn!(destination = %queue.label, ip = %rec.ip,
                        "alert destination has stopped; alert given up");
                }
            }
        }
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

/// The receiving side of one destination: its task's state.
struct Destination {
    kind: AlertKind,
    label: String,
    /// Where to send, or why nothing can be sent.
    endpoint: Result<(reqwest::Client, reqwest::Url), String>,
    timeout: Duration,
    attempts: u32,
    host: String,
    stats: Arc<AlertStats>,
}

impl Destination {
    async fn run(self, mut rx: mpsc::Receiver<Job>, shutdown: CancellationToken) {
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

        loop {
            let job = if shutdown.is_cancelled() {
                // Draining: take only what is already queued.
                match rx.try_recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            } else {
                tokio::select! {
                    biased;
                    job = rx.recv() => match job {
                        Some(job) => job,
                        None => break, // every Alerter dropped, queue empty
                    },
                    () = shutdown.cancelled() => continue,
                }
            };
            tokio::select! {
                () = self.deliver(&job) => {}
                () = &mut drain_deadline => {
                    AlertStats::add(&self.stats.given_up, 1);
                    tracing::warn!(destination = %self.label, ip = %job.ip, host = %self.host,
                        "shutdown deadline passed while sending an alert; alert given up");
                    break;
                }
            }
        }

        // Refuse new alerts, then count what will never be sent.
        rx.close();
        let mut left = 0u64;
        while rx.try_recv().is_ok() {
            left += 1;
        }
        if left > 0 {
            AlertStats::add(&self.stats.given_up, left);
            tracing::warn!(destination = %self.label, left, host = %self.host,
                "alerts still queued at shutdown were given up");
        }
    }

    /// Sends one alert, retrying, and counts the outcome.
    async fn deliver(&self, job: &Job) {
        let (client, url) = match &self.endpoint {
            Ok(endpoint) => endpoint,
            Err(why) => {
                AlertStats::add(&self.stats.given_up, 1);
                tracing::warn!(destination = %self.label, ip = %job.ip, reason = %why,
                    "alert destination unusable; alert given up");
                return;
            }
        };
        let mut attempt = 1;
        loop {
            match self.send_once(client, url, &job.body).await {
                Ok(()) => {
                    AlertStats::add(&self.stats.sent, 1);
                    tracing::debug!(destination = %self.label, ip = %job.ip, attempt, "alert sent");
                    return;
                }
                Err(failure) if attempt >= self.attempts => {
                    AlertStats::add(&self.stats.given_up, 1);
                    tracing::warn!(destination = %self.label, kind = ?self.kind, ip = %job.ip,
                        attempts = attempt, error = %failure.what, host = %self.host,
                        "alert given up");
                    return;
                }
                Err(failure) => {
                    let delay = failure
                        .retry_after
                        .unwrap_or_else(|| backoff(attempt))
                        .min(MAX_RETRY_AFTER);
                    tracing::debug!(destination = %self.label, ip = %job.ip, attempt,
                        error = %failure.what, ?delay, "alert failed; will retry");
                    tokio::time::sleep(delay).await;
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
        let response = client
            .post(url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
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

/// The delay after failed attempt `attempt` (1-based): 0.5 s, 1 s, 2 s, …
/// up to 30 s, each scaled by a random factor in [0.75, 1.25) so that
/// several daemons that failed together do not retry together.
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    // std's randomly seeded hasher is all the randomness jitter needs.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let unit = (hasher.finish() % 1000) as f64 / 1000.0;
    base.mul_f64(0.75 + 0.5 * unit)
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
            kind: AlertKind::Slack,
            url: "https://hooks.slack.com/services/T0/B0/secret".into(),
            timeout: Duration::from_secs(5),
            attempts: 4,
        };
        assert!(!format!("{t:?}").contains("secret"));
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for (attempt, base_ms) in [(1u32, 500u128), (2, 1000), (3, 2000), (20, 30_000)] {
            let d = backoff(attempt).as_millis();
            assert!(
                d >= base_ms * 3 / 4 && d < base_ms * 5 / 4,
                "{attempt}: {d}"
            );
        }
    }

    #[test]
    fn tls_provider_install_is_idempotent() {
        install_tls_provider();
        install_tls_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
