//! Alerts delivered to a real HTTP receiver: what a webhook and Slack
//! receive, retries and giving up, a destination that fails, hangs and
//! recovers, a flood folded into digests by the rate limit, signed
//! webhooks, and the `[[alert]]` settings that drive all this.
//!
//! Every story checks the one promise of the alerter: each alert ends
//! sent on its own, sent in a digest (listed or counted), or given up, and
//! the receiver's side of the story agrees with the counters.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authwatch::config::Config;
use authwatch::sink::alert::{
    webhook_body, AlertKind, AlertStats, AlertTarget, Alerter, RateLimit, Secret, QUEUE_CAPACITY,
    SIGNATURE_HEADER, SLACK_DIGEST_LIST_CAP, TIMESTAMP_HEADER, WEBHOOK_DIGEST_LIST_CAP,
};
use authwatch::sink::BlockRecord;
use authwatch::time::Timestamp;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{eventually, Receiver, Reply, Request, DEADLINE};

fn record(ip: &str) -> BlockRecord {
    let now = Timestamp::now();
    BlockRecord {
        ip: ip.to_owned(),
        rule: "sshd-password".to_owned(),
        count: 52,
        window_secs: 60,
        first_seen: now.saturating_sub(Duration::from_secs(59)),
        last_seen: now.saturating_sub(Duration::from_secs(1)),
        blocked_at: now,
        expires_at: now.saturating_add(Duration::from_secs(3600)),
        host: "bastion-1".to_owned(),
        reason: "52 failures of rule sshd-password in 60s".to_owned(),
        block_for_secs: 3600,
        offense: 1,
        shadow: false,
    }
}

/// `n` distinct addresses from the IPv6 documentation prefix.
fn addresses(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("2001:db8::{:x}", i + 1)).collect()
}

/// A target with a request timeout far beyond any test, so that only a
/// scripted hang makes a request fail by timeout.
fn target(kind: AlertKind, url: String) -> AlertTarget {
    AlertTarget {
        timeout: DEADLINE,
        ..AlertTarget::new(kind, url)
    }
}

fn rate(interval_ms: u64, burst: u32) -> RateLimit {
    RateLimit {
        interval: Duration::from_millis(interval_ms),
        burst: burst.try_into().expect("a non-zero burst"),
    }
}

/// An alerter with its shutdown handles.
struct Running {
    alerter: Alerter,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    fn start(target: AlertTarget) -> Running {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let alerter = Alerter::spawn(vec![target], "bastion-1".into(), shutdown.clone(), &tracker);
        Running {
            alerter,
            shutdown,
            tracker,
        }
    }

    fn notify_all(&self, ips: &[String]) {
        for ip in ips {
            self.alerter.notify(&record(ip));
        }
    }

    fn stat(&self, counter: fn(&AlertStats) -> &AtomicU64) -> u64 {
        counter(&self.alerter.stats()).load(Ordering::Relaxed)
    }

    fn sent(&self) -> u64 {
        self.stat(|s| &s.sent)
    }

    fn sent_in_digest(&self) -> u64 {
        self.stat(|s| &s.sent_in_digest)
    }

    fn given_up(&self) -> u64 {
        self.stat(|s| &s.given_up)
    }

    fn retried(&self) -> u64 {
        self.stat(|s| &s.retried)
    }

    /// Alerts that reached an outcome.
    fn settled(&self) -> u64 {
        self.sent() + self.sent_in_digest() + self.given_up()
    }

    /// Requests shutdown and waits (bounded) for every task to finish.
    async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(DEADLINE, self.tracker.wait())
            .await
            .expect("alert tasks finish after shutdown");
    }
}

/// What a webhook receiver was given, from the requests it answered 200.
#[derive(Debug, Default)]
struct Delivered {
    /// Addresses of single-alert requests, in order.
    single: Vec<String>,
    /// Addresses listed in digests, in order.
    listed: Vec<String>,
    /// The sum of the digests' `omitted`.
    omitted: u64,
    /// Each digest's `count`.
    digests: Vec<u64>,
}

impl Delivered {
    /// `script` is what the receiver was told to answer first; the
    /// alerter sends one request at a time, so request `i` got `script[i]`
    /// and every request after the script got 200.
    fn from(requests: &[Request], script: &[Reply]) -> Delivered {
        let mut d = Delivered::default();
        for (i, req) in requests.iter().enumerate() {
            if !matches!(script.get(i), None | Some(Reply::Status(200))) {
                continue;
            }
            let body: serde_json::Value =
                serde_json::from_slice(&req.body).expect("a JSON webhook body");
            if body["digest"] == true {
                let blocks = body["blocks"].as_array().expect("digest blocks");
                assert!(blocks.len() <= WEBHOOK_DIGEST_LIST_CAP, "{body}");
                let omitted = body["omitted"].as_u64().expect("digest omitted");
                let count = body["count"].as_u64().expect("digest count");
                assert_eq!(count, blocks.len() as u64 + omitted, "{body}");
                assert!(
                    body["window_secs"].as_u64().is_some_and(|s| s >= 1),
                    "{body}"
                );
                assert_eq!(body["host"], "bastion-1");
                d.listed.extend(
                    blocks
                        .iter()
                        .map(|b| b["ip"].as_str().expect("a listed ip").to_owned()),
                );
                d.omitted += omitted;
                d.digests.push(count);
            } else {
                d.single
                    .push(body["ip"].as_str().expect("a record's ip").to_owned());
            }
        }
        d
    }

    /// Every alert the receiver was told of: one each single or listed,
    /// plus those only counted.
    fn total(&self) -> u64 {
        (self.single.len() + self.listed.len()) as u64 + self.omitted
    }

    /// Checks that no address was told twice, and that each was notified.
    fn assert_distinct_within(&self, notified: &[String]) {
        let notified: HashSet<&str> = notified.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        for ip in self.single.iter().chain(&self.listed) {
            assert!(notified.contains(ip.as_str()), "{ip} was never notified");
            assert!(seen.insert(ip), "{ip} delivered twice: {self:?}");
        }
    }
}

// ------------------------------------------------------------ what arrives

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receives_the_record_json_with_headers() {
    let receiver = Receiver::start().await;
    let running = Running::start(target(AlertKind::Webhook, receiver.url("/hooks/block")));
    let rec = record("203.0.113.9");

    running.alerter.notify(&rec);

    let requests = receiver.wait_for_requests(1, DEADLINE).await;
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/block");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let agent = format!("authwatch/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(req.header("user-agent"), Some(agent.as_str()));
    assert_eq!(req.body, webhook_body(&rec));
    assert_eq!(
        req.header(SIGNATURE_HEADER),
        None,
        "no secret, no signature"
    );
    assert!(
        eventually(DEADLINE, || async { running.sent() == 1 }).await,
        "sent not counted"
    );
    running.stop().await;
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_message_names_ip_rule_count_expiry_and_host() {
    let receiver = Receiver::start().await;
    let running = Running::start(target(AlertKind::Slack, receiver.url("/services/T0/B0/x")));
    let rec = record("203.0.113.9");

    running.alerter.notify(&rec);

    let requests = receiver.wait_for_requests(1, DEADLINE).await;
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let text = body["text"].as_str().expect("a text field");
    for part in ["203.0.113.9", "sshd-password", "52", "bastion-1", "60 min"] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
    assert!(text.contains(&rec.expires_at.to_string()), "{text:?}");
    running.stop().await;
}

// ------------------------------------------------------ retries, giving up

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_until_accepted() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(500), Reply::Status(500)]); // then 200
    let running = Running::start(target(AlertKind::Webhook, receiver.url("/hook")));
    let rec = record("203.0.113.9");

    running.alerter.notify(&rec);

    assert!(
        eventually(DEADLINE, || async { running.sent() == 1 }).await,
        "never delivered"
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "two failures and one success");
    assert!(requests.iter().all(|r| r.body == webhook_body(&rec)));
    assert_eq!(running.retried(), 2);
    assert_eq!(running.given_up(), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_is_given_up_after_all_attempts() {
    let receiver = Receiver::start().await;
    receiver.script(std::iter::repeat_n(Reply::Status(500), 10));
    let running = Running::start(AlertTarget {
        attempts: 3,
        ..target(AlertKind::Webhook, receiver.url("/hook"))
    });

    running.alerter.notify(&record("203.0.113.9"));

    assert!(
        eventually(DEADLINE, || async { running.given_up() == 1 }).await,
        "never given up"
    );
    assert_eq!(receiver.requests().len(), 3, "exactly `attempts` requests");
    assert_eq!(running.retried(), 2);
    assert_eq!(running.sent(), 0);
    running.stop().await;
}

/// The issue's outage: the destination answers 500, then hangs, then resets
/// the connection, then answers 503, and then recovers, while blocks keep
/// coming. Nothing is lost: each alert arrives (alone or in a digest) or is
/// counted as given up, and the receiver saw exactly what was counted sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_errors_hangs_and_resets_every_alert_arrives_or_is_given_up() {
    let receiver = Receiver::start().await;
    let script = vec![
        Reply::Status(500),
        Reply::Hang(Duration::from_secs(600)),
        Reply::Close,
        Reply::Status(503),
    ];
    receiver.script(script.clone());
    let running = Running::start(AlertTarget {
        attempts: 2,
        // Long enough for a loaded machine to answer, short for a hang.
        timeout: Duration::from_secs(2),
        rate: rate(50, 5),
        ..AlertTarget::new(AlertKind::Webhook, receiver.url("/hook"))
    });
    let ips = addresses(30);

    // Ten blocks during the outage…
    running.notify_all(&ips[..10]);
    // …which ends with the first request answered 200…
    receiver.wait_for_requests(script.len() + 1, DEADLINE).await;
    // …and twenty more afterwards.
    running.notify_all(&ips[10..]);

    assert!(
        eventually(DEADLINE, || async { running.settled() == 30 }).await,
        "sent {} + in digests {} + given up {} != 30",
        running.sent(),
        running.sent_in_digest(),
        running.given_up()
    );
    running.stop().await;
    assert_eq!(running.settled(), 30, "and nothing counted twice");

    // The first alert met the 500 and the hang, the second the reset and
    // the 503: both used their two attempts.
    assert_eq!(running.given_up(), 2);
    assert_eq!(running.retried(), 2);
    let delivered = Delivered::from(&receiver.requests(), &script);
    delivered.assert_distinct_within(&ips);
    assert_eq!(
        delivered.total(),
        running.sent() + running.sent_in_digest(),
        "{delivered:?}"
    );
    assert_eq!(delivered.single.len() as u64, running.sent());
    let given_up = [&ips[0], &ips[1]];
    assert!(
        !delivered
            .single
            .iter()
            .chain(&delivered.listed)
            .any(|ip| given_up.contains(&ip)),
        "{delivered:?}"
    );
}

// ------------------------------------------------------- floods, digests

/// The issue's flood. A current-thread runtime, so that all 500 alerts are
/// queued before the destination's task first runs, as when a botnet trips
/// the threshold from 500 addresses at once.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_500_blocks_is_a_handful_of_requests_accounting_for_every_ip() {
    let receiver = Receiver::start().await;
    let running = Running::start(AlertTarget {
        rate: rate(200, 5),
        ..target(AlertKind::Webhook, receiver.url("/hook"))
    });
    let ips = addresses(500);

    running.notify_all(&ips);

    assert!(
        eventually(DEADLINE, || async {
            running.sent() + running.sent_in_digest() == 500
        })
        .await,
        "sent {} + in digests {} != 500",
        running.sent(),
        running.sent_in_digest()
    );
    running.stop().await;
    assert_eq!(running.given_up(), 0);

    let requests = receiver.requests();
    // The burst of 5 went out on its own (a few more if this machine is so
    // slow that the limiter refilled meanwhile); all the rest in one digest.
    assert!(
        (6..=9).contains(&requests.len()),
        "{} requests",
        requests.len()
    );
    let delivered = Delivered::from(&requests, &[]);
    assert!(delivered.single.len() >= 5, "{delivered:?}");
    let singles = delivered.single.len();
    assert_eq!(delivered.single, ips[..singles], "the burst, in order");
    // Once one alert waits, all queued behind it join the same digest,
    // which lists the first hundred of them.
    assert_eq!(
        delivered.digests,
        vec![500 - singles as u64],
        "{delivered:?}"
    );
    assert_eq!(
        delivered.listed,
        ips[singles..singles + WEBHOOK_DIGEST_LIST_CAP]
    );
    assert_eq!(delivered.total(), 500, "{delivered:?}");
    delivered.assert_distinct_within(&ips);
    assert_eq!(delivered.single.len() as u64, running.sent());
    assert_eq!(
        running.stat(|s| &s.digests_sent),
        delivered.digests.len() as u64
    );
}

/// Slack gets the digest as a sentence: "+28 more IPs blocked in the last
/// 1 s: `…` (sshd-password), … and 8 more".
#[tokio::test(flavor = "current_thread")]
async fn slack_digest_lists_twenty_ips_and_counts_the_rest() {
    let receiver = Receiver::start().await;
    let running = Running::start(AlertTarget {
        rate: rate(500, 2),
        ..target(AlertKind::Slack, receiver.url("/services/T0/B0/x"))
    });
    let ips = addresses(30);

    running.notify_all(&ips);

    assert!(
        eventually(DEADLINE, || async {
            running.sent() + running.sent_in_digest() == 30
        })
        .await,
        "not all delivered"
    );
    running.stop().await;
    let texts: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["text"].as_str().expect("a text field").to_owned()
        })
        .collect();
    let (digests, singles): (Vec<&String>, Vec<&String>) =
        texts.iter().partition(|t| t.contains("more IPs blocked"));
    assert_eq!(singles.len() as u64, running.sent(), "{texts:#?}");
    assert!(singles.iter().all(|t| t.contains("*authwatch blocked*")));
    assert_eq!(digests.len(), 1, "{texts:#?}");
    let in_digest = running.sent_in_digest();
    let digest = digests[0];
    assert!(
        digest.contains(&format!("+{in_digest} more IPs blocked in the last ")),
        "{digest}"
    );
    let listed = &ips[singles.len()..singles.len() + SLACK_DIGEST_LIST_CAP];
    for ip in listed {
        assert!(
            digest.contains(&format!("`{ip}` (sshd-password)")),
            "{digest}"
        );
    }
    assert!(!digest.contains(&format!("`{}`", ips[29])), "{digest}");
    assert!(
        digest.contains(&format!(
            " and {} more",
            in_digest - SLACK_DIGEST_LIST_CAP as u64
        )),
        "{digest}"
    );
    assert!(digest.contains("`bastion-1`"), "{digest}");
}

/// A destination stuck on one request: `notify` still returns at once, the
/// queue fills, and what does not fit is counted into the digest that goes
/// out when the destination answers again — not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_counted_into_the_next_digest_not_lost() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Hang(Duration::from_secs(600))]);
    let running = Running::start(AlertTarget {
        attempts: 1,
        // The hang outlasts the flood below by far; then the request fails.
        timeout: Duration::from_secs(3),
        ..AlertTarget::new(AlertKind::Webhook, receiver.url("/hook"))
    });

    running.alerter.notify(&record("203.0.113.9"));
    // notify() has returned; the receiver now holds that request unanswered.
    receiver.wait_for_requests(1, DEADLINE).await;
    let ips = addresses(QUEUE_CAPACITY + 10);
    running.notify_all(&ips);
    assert_eq!(running.stat(|s| &s.overflowed), 10);
    assert_eq!(
        receiver.requests().len(),
        1,
        "still stuck on the first alert"
    );

    assert!(
        eventually(DEADLINE, || async {
            running.settled() == 1 + ips.len() as u64
        })
        .await,
        "sent {} + in digests {} + given up {}",
        running.sent(),
        running.sent_in_digest(),
        running.given_up()
    );
    running.stop().await;
    assert_eq!(running.given_up(), 1, "the hung alert");
    assert_eq!(running.sent_in_digest(), ips.len() as u64);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "the hung alert, then one digest");
    let delivered = Delivered::from(&requests, &[Reply::Hang(Duration::ZERO)]);
    assert_eq!(delivered.digests, vec![ips.len() as u64]);
    assert_eq!(delivered.listed, ips[..WEBHOOK_DIGEST_LIST_CAP]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_what_a_hung_destination_holds() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Hang(Duration::from_secs(600))]);
    // A request timeout far beyond the test: the first alert stays in flight.
    let running = Running::start(AlertTarget {
        attempts: 1,
        timeout: Duration::from_secs(600),
        ..AlertTarget::new(AlertKind::Webhook, receiver.url("/hook"))
    });
    running.alerter.notify(&record("203.0.113.9"));
    receiver.wait_for_requests(1, DEADLINE).await;
    running.notify_all(&addresses(QUEUE_CAPACITY + 10));

    // Shutdown gives up the stuck alert, everything queued behind it, and
    // what only fitted in the overflow count.
    running.stop().await;
    assert_eq!(running.sent() + running.sent_in_digest(), 0);
    assert_eq!(running.given_up(), 1 + QUEUE_CAPACITY as u64 + 10);
    // And an alert after shutdown is given up too, not lost.
    running.alerter.notify(&record("203.0.113.10"));
    assert_eq!(running.given_up(), 1 + QUEUE_CAPACITY as u64 + 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_what_is_queued() {
    let receiver = Receiver::start().await;
    let running = Running::start(target(AlertKind::Webhook, receiver.url("/hook")));
    running.notify_all(&addresses(5));

    running.stop().await;

    assert_eq!(running.sent(), 5, "within the default burst of 5");
    assert_eq!(receiver.requests().len(), 5);
}

// ---------------------------------------------------------------- signing

const SECRET: &[u8] = b"k9R2-webhook-shared-secret";

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a receiver does: recompute the MAC over "<timestamp>.<body>" and
/// compare in constant time; refuse a stale timestamp.
fn verifies(req: &Request, secret: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (req.header(TIMESTAMP_HEADER), req.header(SIGNATURE_HEADER)) else {
        return false;
    };
    let Some(tag) = sig.strip_prefix("sha256=").and_then(hex_decode) else {
        return false;
    };
    let Ok(ts_secs) = ts.parse::<u64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    if now.abs_diff(ts_secs) > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&req.body);
    mac.verify_slice(&tag).is_ok()
}

/// Signed single alerts, a signed retry and a signed digest all verify with
/// the shared secret, and only with it, and only over the exact body.
#[tokio::test(flavor = "current_thread")]
async fn signed_webhooks_verify_with_the_secret_over_timestamp_and_body() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(500)]); // the retry is signed afresh
    let running = Running::start(AlertTarget {
        secret: Some(Secret::new(SECRET)),
        rate: rate(50, 1),
        ..target(AlertKind::Webhook, receiver.url("/hook"))
    });
    // With a burst of 1, the third alert (at least) waits in a digest.
    running.notify_all(&addresses(3));

    assert!(
        eventually(DEADLINE, || async {
            running.sent() + running.sent_in_digest() == 3
        })
        .await,
        "not all delivered"
    );
    running.stop().await;
    assert!(running.stat(|s| &s.digests_sent) >= 1);
    let requests = receiver.requests();
    assert!(requests.len() >= 3, "{requests:?}");
    for req in &requests {
        let sig = req.header(SIGNATURE_HEADER).expect("signed");
        assert!(
            sig.len() == "sha256=".len() + 64 && sig.starts_with("sha256="),
            "{sig}"
        );
        assert!(verifies(req, SECRET), "{req:?}");
        assert!(!verifies(req, b"another secret"), "{req:?}");
        let mut tampered = req.clone();
        tampered.body.push(b' ');
        assert!(!verifies(&tampered, SECRET), "{req:?}");
    }
    assert!(requests
        .iter()
        .any(|r| r.body.starts_with(br#"{"digest":true"#)));
}

// ----------------------------------------------------------- configuration

fn config_error(file: &Path, text: &str) -> String {
    Config::parse(file, text)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn secret_files_are_read_never_shown_and_their_problems_located() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("authwatch.toml");
    let secret = dir.path().join("webhook.secret");
    std::fs::write(&secret, "topsecret-k9R2\n").expect("write secret");
    let webhook = |path: &Path| {
        format!(
            "[[alert]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = {:?}\n",
            path.display().to_string()
        )
    };

    let config = Config::parse(&file, &webhook(&secret)).expect("a readable secret");
    assert!(config.alerts[0].secret.is_some());
    let shown = format!("{config:?}");
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");

    let at = format!("{}:4: alert.secret_file: ", file.display());
    let absent = dir.path().join("absent.secret");
    let e = config_error(&file, &webhook(&absent));
    assert!(e.starts_with(&at) && e.contains("absent.secret"), "{e}");

    let empty = dir.path().join("empty.secret");
    std::fs::write(&empty, " \n").expect("write empty secret");
    let e = config_error(&file, &webhook(&empty));
    assert!(
        e.starts_with(&at) && e.contains("empty.secret") && e.contains("empty"),
        "{e}"
    );

    // A directory cannot be read as a file.
    let e = config_error(&file, &webhook(dir.path()));
    assert!(e.starts_with(&at), "{e}");

    if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
        // Outside systemd, relative means relative to the config file.
        let config = Config::parse(&file, &webhook(Path::new("webhook.secret")))
            .expect("relative to the config directory");
        assert!(config.alerts[0].secret.is_some());
    }

    let e = config_error(
        &file,
        &format!(
            "[[alert]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/x\"\nsecret_file = {:?}\n",
            secret.display().to_string()
        ),
    );
    assert!(e.starts_with(&at) && e.contains("only a webhook"), "{e}");
}

#[test]
fn rate_and_burst_are_set_per_alert_and_default_to_slacks_pace() {
    let file = Path::new("/etc/authwatch/authwatch.toml");
    let config = Config::parse(
        file,
        "[[alert]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/x\"\n\n\
         [[alert]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nrate = \"30/1m\"\nburst = 10\n",
    )
    .expect("valid rates");
    assert_eq!(config.alerts[0].rate, RateLimit::SLACK);
    assert_eq!(config.alerts[0].rate, rate(1000, 5));
    assert_eq!(config.alerts[1].rate, rate(2000, 10));

    let alert = |extra: &str| {
        format!("[[alert]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n{extra}\n")
    };
    let e = config_error(file, &alert("rate = \"fast\""));
    assert!(e.contains(":4: alert.rate: "), "{e}");
    let e = config_error(file, &alert("rate = \"0/s\""));
    assert!(e.contains(":4: alert.rate: "), "{e}");
    for burst in ["0", "-1", "1001"] {
        let e = config_error(file, &alert(&format!("burst = {burst}")));
        assert!(e.contains(":4: alert.burst: "), "{e}");
    }
}
