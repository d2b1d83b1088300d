//! Counting semantics, as an operator would check them with
//! `authwatch replay --threshold N`: each story generates a realistic log,
//! replays it through the shipped rules, and pins the exact count at which
//! a block fires — a block at threshold = the expected count, none at the
//! expected count + 1.
//!
//! * sshd: the lines of one connection (one pid) count as the attempts
//!   they stand for, not as lines; summaries never count; rsyslog's
//!   `message repeated N times` counts N.
//! * The window is exact: an event exactly `window` old is out.
//! * Event time: year-less syslog times across New Year; epoch ms, epoch
//!   seconds and RFC 3339 times in JSON logs.
//! * Keys: an IPv4-mapped IPv6 client and its IPv4 form are one key.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authwatch::ip::Allowlist;
use authwatch::replay::{self, ReplayOptions};
use authwatch::rules::RuleSet;

/// One decision as `replay --json` prints it.
#[derive(serde::Deserialize, Debug, Clone, PartialEq)]
struct Block {
    ip: String,
    rule: String,
    count: u32,
    window_secs: u64,
    first_seen: String,
    last_seen: String,
    expires_at: String,
}

/// The sshd stories override the window to this, so that a story of ten
/// connections of seven lines each (70 s at one line a second) is judged
/// by its connections alone; the window has stories of its own.
const STORY_WINDOW: Duration = Duration::from_secs(600);

/// A local wall-clock time, as syslog writes it and as file times are set.
fn local(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> jiff::Timestamp {
    jiff::civil::datetime(y, mo, d, h, mi, s, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .expect("a local time")
        .timestamp()
}

/// How `replay --json` prints a time: RFC 3339 in UTC, with milliseconds
/// only when there are any.
fn printed(t: jiff::Timestamp) -> String {
    if t.subsec_millisecond() == 0 {
        t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

/// Replays `log` (a file whose modification time is `mtime`, which places
/// year-less syslog times) through the shipped rules with every threshold
/// at `threshold` (and every window at `window`, if given).
fn replay(
    log: &str,
    threshold: u32,
    window: Option<Duration>,
    mtime: jiff::Timestamp,
) -> Vec<Block> {
    let mut rules = RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .unwrap_or_else(|e| panic!("shipped rules must load:\n{e}"));
    rules.override_all(Some(threshold), window);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("story.log");
    std::fs::write(&path, log).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(SystemTime::try_from(mtime).unwrap()))
        .unwrap();
    let opts = ReplayOptions {
        inputs: vec![path],
        json: true,
        max_line_bytes: 65_536,
        source: None,
    };
    let mut out = Vec::new();
    replay::run(Arc::new(rules), Allowlist::default(), &opts, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Checks that `log` blocks `ip` under `rule` at threshold `expected` and
/// not at `expected + 1`, and that nothing else is blocked; returns the
/// block.
fn fires_at(
    log: &str,
    ip: &str,
    rule: &str,
    expected: u32,
    window: Option<Duration>,
    mtime: jiff::Timestamp,
) -> Block {
    let at = replay(log, expected, window, mtime);
    assert_eq!(
        at.len(),
        1,
        "threshold {expected}: want one block of {ip}, got {at:?}"
    );
    let block = at[0].clone();
    assert_eq!(
        (block.ip.as_str(), block.rule.as_str()),
        (ip, rule),
        "{block:?}"
    );
    assert_eq!(block.count, expected, "{block:?}");
    let above = replay(log, expected + 1, window, mtime);
    assert!(
        above.is_empty(),
        "threshold {}: want no block, got {above:?}",
        expected + 1
    );
    block
}

// ---------------------------------------------------------------------------
// sshd: one attempt counts once, whatever lines it writes
// ---------------------------------------------------------------------------

/// A syslog file being written by sshd: one line a second, each line
/// stamped `Mmm dd HH:MM:SS host program[pid]: message`.
struct AuthLog {
    text: String,
    /// The local time of the next line.
    next: jiff::civil::DateTime,
}

impl AuthLog {
    fn starting(at: jiff::civil::DateTime) -> AuthLog {
        AuthLog {
            text: String::new(),
            next: at,
        }
    }

    fn line(&mut self, program: &str, pid: u32, message: &str) {
        // Syslog pads the day with a space: `Mar  5`.
        let stamp = self.next.strftime("%b %e %H:%M:%S");
        writeln!(self.text, "{stamp} web1 {program}[{pid}]: {message}").unwrap();
        self.next = self.next.checked_add(jiff::Span::new().seconds(1)).unwrap();
    }

    /// `connections` connections from `ip`, each with its own pid and
    /// source port, two at a time with their lines interleaved, as sshd
    /// writes them when a scanner opens connections in parallel. `lines`
    /// gives the (program, message) lines of one connection from its port.
    fn connections(
        &mut self,
        connections: u32,
        first_pid: u32,
        lines: impl Fn(u16) -> Vec<(&'static str, String)>,
    ) {
        for pair in (0..connections).collect::<Vec<_>>().chunks(2) {
            let per: Vec<(u32, Vec<(&str, String)>)> = pair
                .iter()
                .map(|&c| (first_pid + c, lines(40_000 + c as u16)))
                .collect();
            let longest = per.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
            for k in 0..longest {
                for (pid, l) in &per {
                    if let Some((program, message)) = l.get(k) {
                        self.line(program, *pid, message);
                    }
                }
            }
        }
    }
}

const ATTACKER: &str = "203.0.113.7";

/// Replays ten connections of the given shape and checks the total.
fn sshd_story(per_connection: u32, lines: impl Fn(u16) -> Vec<(&'static str, String)>) {
    let mut log = AuthLog::starting(jiff::civil::datetime(2026, 3, 5, 6, 0, 0, 0));
    log.connections(10, 20_000, lines);
    let mtime = local(2026, 3, 5, 7, 0, 0);
    fires_at(
        &log.text,
        ATTACKER,
        "sshd",
        10 * per_connection,
        Some(STORY_WINDOW),
        mtime,
    );
}

#[test]
fn invalid_user_then_its_failure_then_the_close_is_one_attempt() {
    sshd_story(1, |port| {
        vec![
            (
                "sshd",
                format!("Invalid user bob from {ATTACKER} port {port}"),
            ),
            (
                "sshd",
                format!("Failed password for invalid user bob from {ATTACKER} port {port} ssh2"),
            ),
            (
                "sshd",
                format!("Connection closed by invalid user bob {ATTACKER} port {port} [preauth]"),
            ),
        ]
    });
}

#[test]
fn three_failed_passwords_then_the_close_are_three_attempts() {
    sshd_story(3, |port| {
        let failed = format!("Failed password for root from {ATTACKER} port {port} ssh2");
        vec![
            ("sshd", failed.clone()),
            ("sshd", failed.clone()),
            ("sshd", failed),
            (
                "sshd",
                format!(
                    "Connection closed by authenticating user root {ATTACKER} port {port} [preauth]"
                ),
            ),
        ]
    });
}

#[test]
fn a_close_alone_is_one_attempt_a_rejected_key_at_loglevel_info() {
    sshd_story(1, |port| {
        vec![(
            "sshd",
            format!(
                "Connection closed by authenticating user root {ATTACKER} port {port} [preauth]"
            ),
        )]
    });
}

#[test]
fn invalid_user_then_two_failed_passwords_are_two_attempts() {
    sshd_story(2, |port| {
        let failed = format!("Failed password for invalid user x from {ATTACKER} port {port} ssh2");
        vec![
            (
                "sshd",
                format!("Invalid user x from {ATTACKER} port {port}"),
            ),
            ("sshd", failed.clone()),
            ("sshd", failed),
            (
                "sshd",
                format!("Connection closed by invalid user x {ATTACKER} port {port} [preauth]"),
            ),
        ]
    });
}

#[test]
fn pam_and_max_attempts_summaries_do_not_count() {
    sshd_story(3, |port| {
        let failed = format!("Failed password for root from {ATTACKER} port {port} ssh2");
        vec![
            (
                "sshd",
                format!(
                    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ATTACKER}  user=root"
                ),
            ),
            ("sshd", failed.clone()),
            ("sshd", failed.clone()),
            ("sshd", failed),
            (
                "sshd",
                format!(
                    "error: maximum authentication attempts exceeded for root from {ATTACKER} port {port} ssh2 [preauth]"
                ),
            ),
            (
                "sshd",
                format!(
                    "Disconnecting authenticating user root {ATTACKER} port {port}: Too many authentication failures [preauth]"
                ),
            ),
            (
                "sshd",
                format!(
                    "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={ATTACKER}  user=root"
                ),
            ),
        ]
    });
}

#[test]
fn message_repeated_three_times_is_three_attempts() {
    sshd_story(3, |port| {
        vec![(
            "sshd",
            format!(
                "message repeated 3 times: [ Failed password for root from {ATTACKER} port {port} ssh2]"
            ),
        )]
    });
}

#[test]
fn a_failure_then_its_repeat_twice_is_three_attempts() {
    sshd_story(3, |port| {
        let failed = format!("Failed password for root from {ATTACKER} port {port} ssh2");
        vec![
            ("sshd", failed.clone()),
            ("sshd", format!("message repeated 2 times: [ {failed}]")),
        ]
    });
}

#[test]
fn openssh_10_sshd_session_lines_correlate_by_pid() {
    sshd_story(1, |port| {
        vec![
            (
                "sshd-session",
                format!("Invalid user bob from {ATTACKER} port {port}"),
            ),
            (
                "sshd-session",
                format!("Failed password for invalid user bob from {ATTACKER} port {port} ssh2"),
            ),
            (
                "sshd-session",
                format!("Connection closed by invalid user bob {ATTACKER} port {port} [preauth]"),
            ),
        ]
    });
    sshd_story(2, |port| {
        let failed = format!(
            "Failed keyboard-interactive/pam for invalid user oracle from {ATTACKER} port {port} ssh2"
        );
        vec![
            (
                "sshd-session",
                format!("Invalid user oracle from {ATTACKER} port {port}"),
            ),
            ("sshd-session", failed.clone()),
            ("sshd-session", failed),
            (
                "sshd-session",
                format!("Disconnected from invalid user oracle {ATTACKER} port {port} [preauth]"),
            ),
        ]
    });
}

#[test]
fn openssh_10_sshd_auth_close_alone_is_one_attempt() {
    sshd_story(1, |port| {
        vec![(
            "sshd-auth",
            format!(
                "Connection closed by authenticating user git {ATTACKER} port {port} [preauth]"
            ),
        )]
    });
}

// ---------------------------------------------------------------------------
// The window is exact
// ---------------------------------------------------------------------------

/// 2024-05-01T12:34:56.789Z in epoch milliseconds.
const T0_MS: i64 = 1_714_566_896_789;

/// JWT failures as pino writes them, one per offset (ms after `T0_MS`).
fn pino_failures(ip: &str, offsets_ms: impl IntoIterator<Item = i64>) -> String {
    let mut log = String::new();
    for (i, off) in offsets_ms.into_iter().enumerate() {
        writeln!(
            log,
            r#"{{"level":40,"time":{},"pid":4242,"hostname":"api-1","req":{{"id":{i},"method":"GET","url":"/v1/me","remoteAddress":"{ip}","remotePort":{}}},"err":{{"type":"JsonWebTokenError","message":"invalid signature"}},"msg":"invalid signature"}}"#,
            T0_MS + off,
            40_000 + i
        )
        .unwrap();
    }
    log
}

fn at_ms(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap()
}

/// The file time of the JSON stories: a day later, so that it cannot be
/// mistaken for an event time.
fn json_mtime() -> jiff::Timestamp {
    at_ms(T0_MS + 86_400_000)
}

/// The most events of `offsets` in any window `(t − window, t]`.
fn densest_window(offsets: &[i64], window_ms: i64) -> u32 {
    offsets
        .iter()
        .map(|&t| {
            offsets
                .iter()
                .filter(|&&o| o > t - window_ms && o <= t)
                .count() as u32
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn fifty_five_failures_over_110_s_never_reach_50_in_60_s() {
    let offsets: Vec<i64> = (0..55).map(|i| i * 110_000 / 54).collect();
    assert_eq!(offsets[54], 110_000);
    let log = pino_failures("203.0.113.9", offsets.iter().copied());
    assert!(replay(&log, 50, None, json_mtime()).is_empty());
    // About one failure every 2.04 s: at most 30 in any 60 s, and exactly
    // that many is what blocks.
    assert_eq!(densest_window(&offsets, 60_000), 30);
    fires_at(&log, "203.0.113.9", "jwt-signature", 30, None, json_mtime());
}

#[test]
fn fifty_failures_within_59_s_block() {
    // One every 1.2 s: a token bucket of 50 per minute would never trip.
    let offsets: Vec<i64> = (0..50).map(|i| i * 59_000 / 49).collect();
    let log = pino_failures("203.0.113.9", offsets.iter().copied());
    let block = fires_at(&log, "203.0.113.9", "jwt-signature", 50, None, json_mtime());
    assert_eq!(block.first_seen, printed(at_ms(T0_MS)));
    assert_eq!(block.last_seen, printed(at_ms(T0_MS + 59_000)));
    assert_eq!(block.window_secs, 60);
    assert_eq!(
        block.expires_at,
        printed(at_ms(T0_MS + 59_000 + 15 * 60_000))
    );
}

#[test]
fn the_failure_exactly_a_window_old_is_out() {
    // The 1st and the 50th exactly 60 s apart: at the 50th, the 1st has
    // left the window, so 49 is all there ever is.
    let offsets: Vec<i64> = (0..50).map(|i| i * 60_000 / 49).collect();
    assert_eq!(offsets[49] - offsets[0], 60_000);
    let log = pino_failures("203.0.113.9", offsets.iter().copied());
    assert!(replay(&log, 50, None, json_mtime()).is_empty());
    let block = fires_at(&log, "203.0.113.9", "jwt-signature", 49, None, json_mtime());
    assert_eq!(block.first_seen, printed(at_ms(T0_MS)));
    assert_eq!(block.last_seen, printed(at_ms(T0_MS + offsets[48])));
    // One millisecond closer, and the 50th blocks.
    let mut closer = offsets.clone();
    closer[49] -= 1;
    let log = pino_failures("203.0.113.9", closer);
    fires_at(&log, "203.0.113.9", "jwt-signature", 50, None, json_mtime());
}

#[test]
fn the_sshd_failure_exactly_a_window_old_is_out() {
    // Whole seconds, as classic syslog writes them: 49 failures at 0..48 s
    // and the 50th at 60 s.
    let mut log = AuthLog::starting(jiff::civil::datetime(2026, 3, 5, 6, 0, 0, 0));
    for i in 0..49 {
        log.line(
            "sshd",
            30_000 + i,
            &format!(
                "Failed password for root from {ATTACKER} port {} ssh2",
                40_000 + i
            ),
        );
    }
    log.next = jiff::civil::datetime(2026, 3, 5, 6, 1, 0, 0);
    log.line(
        "sshd",
        30_049,
        &format!("Failed password for root from {ATTACKER} port 40049 ssh2"),
    );
    let mtime = local(2026, 3, 5, 7, 0, 0);
    assert!(replay(&log.text, 50, None, mtime).is_empty());
    fires_at(&log.text, ATTACKER, "sshd", 49, None, mtime);
}

// ---------------------------------------------------------------------------
// Event time
// ---------------------------------------------------------------------------

/// Sixty failed passwords, one a second from `start` (local time), one
/// connection each.
fn sixty_failures_from(start: jiff::civil::DateTime) -> String {
    let mut log = AuthLog::starting(start);
    for i in 0..60 {
        log.line(
            "sshd",
            50_000 + i,
            &format!(
                "Failed password for root from {ATTACKER} port {} ssh2",
                41_000 + i
            ),
        );
    }
    log.text
}

#[test]
fn a_log_across_new_year_blocks_as_a_log_within_one_day() {
    let new_year = sixty_failures_from(jiff::civil::datetime(2025, 12, 31, 23, 59, 30, 0));
    assert!(new_year.starts_with("Dec 31 23:59:30 "));
    assert!(new_year.ends_with("Jan  1 00:00:29 web1 sshd[50059]: Failed password for root from 203.0.113.7 port 41059 ssh2\n"));
    // Written just after midnight: December is last year's.
    let block = fires_at(
        &new_year,
        ATTACKER,
        "sshd",
        60,
        None,
        local(2026, 1, 1, 0, 5, 0),
    );
    assert_eq!(block.first_seen, printed(local(2025, 12, 31, 23, 59, 30)));
    assert_eq!(block.last_seen, printed(local(2026, 1, 1, 0, 0, 29)));

    let one_day = sixty_failures_from(jiff::civil::datetime(2026, 6, 15, 11, 59, 30, 0));
    let same = fires_at(
        &one_day,
        ATTACKER,
        "sshd",
        60,
        None,
        local(2026, 6, 15, 12, 5, 0),
    );
    assert_eq!(same.first_seen, printed(local(2026, 6, 15, 11, 59, 30)));
    assert_eq!(same.last_seen, printed(local(2026, 6, 15, 12, 0, 29)));
}

/// Five failures 1.5 s apart, in the time format a JSON logger writes;
/// `line(i)` writes the i-th.
fn json_time_story(line: impl Fn(usize) -> String, first: &str, last: &str) {
    let log: String = (0..5).map(|i| line(i) + "\n").collect();
    let block = fires_at(&log, "203.0.113.21", "jwt-signature", 5, None, json_mtime());
    assert_eq!(
        (block.first_seen.as_str(), block.last_seen.as_str()),
        (first, last)
    );
}

#[test]
fn pino_epoch_milliseconds_give_the_event_times() {
    json_time_story(
        |i| {
            format!(
                r#"{{"level":40,"time":{},"pid":4242,"hostname":"api-1","req":{{"method":"GET","url":"/v1/me","remoteAddress":"::ffff:203.0.113.21","remotePort":51234}},"msg":"invalid signature"}}"#,
                T0_MS + 1_500 * i as i64
            )
        },
        "2024-05-01T12:34:56.789Z",
        "2024-05-01T12:35:02.789Z",
    );
}

#[test]
fn zap_epoch_second_floats_give_the_event_times() {
    // zap's default `ts`: float seconds with sub-millisecond digits.
    json_time_story(
        |i| {
            let micros = 1_714_566_896_789_123_i64 + 1_500_000 * i as i64;
            format!(
                r#"{{"level":"warn","ts":{}.{:06},"caller":"auth/middleware.go:42","msg":"jwt rejected","error":"token signature is invalid: signature is invalid","remote_addr":"203.0.113.21:51234"}}"#,
                micros / 1_000_000,
                micros % 1_000_000
            )
        },
        "2024-05-01T12:34:56.789Z",
        "2024-05-01T12:35:02.789Z",
    );
}

#[test]
fn rfc3339_strings_give_the_event_times() {
    // structlog's ISO times with an offset and microseconds.
    json_time_story(
        |i| {
            let t = at_ms(T0_MS + 1_500 * i as i64)
                .checked_add(jiff::Span::new().microseconds(12))
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(2)));
            format!(
                r#"{{"event": "token rejected", "error": "Signature verification failed", "client_ip": "203.0.113.21", "path": "/api/v1/me", "level": "warning", "timestamp": "{}"}}"#,
                t.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
            )
        },
        "2024-05-01T12:34:56.789Z",
        "2024-05-01T12:35:02.789Z",
    );
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

#[test]
fn mapped_and_plain_ipv4_failures_add_up_to_one_key() {
    // Node behind a dual-stack socket writes `::ffff:203.0.113.5`, Go
    // writes `[::ffff:203.0.113.5]:port` or `203.0.113.5:port`, Python the
    // plain address: one client, one count.
    let mut log = String::new();
    for i in 0..30_i64 {
        let t = T0_MS + 1_000 * i;
        let line = match i % 3 {
            0 => format!(
                r#"{{"level":40,"time":{t},"req":{{"remoteAddress":"::ffff:203.0.113.5"}},"msg":"invalid signature"}}"#
            ),
            1 => format!(
                r#"{{"level":"warn","ts":{}.{:03},"msg":"jwt rejected","error":"token signature is invalid","remote_addr":"[::ffff:203.0.113.5]:{}"}}"#,
                t / 1000,
                t % 1000,
                50_000 + i
            ),
            _ => format!(
                r#"{{"event": "token rejected", "error": "Signature verification failed", "client_ip": "203.0.113.5", "timestamp": "{}"}}"#,
                printed(at_ms(t))
            ),
        };
        log.push_str(&line);
        log.push('\n');
    }
    fires_at(&log, "203.0.113.5", "jwt-signature", 30, None, json_mtime());

    // The same in sshd's log.
    let mut auth = AuthLog::starting(jiff::civil::datetime(2026, 3, 5, 6, 0, 0, 0));
    for i in 0..20 {
        let from = if i % 2 == 0 {
            "::ffff:203.0.113.5"
        } else {
            "203.0.113.5"
        };
        auth.line(
            "sshd",
            60_000 + i,
            &format!(
                "Failed password for root from {from} port {} ssh2",
                42_000 + i
            ),
        );
    }
    fires_at(
        &auth.text,
        "203.0.113.5",
        "sshd",
        20,
        None,
        local(2026, 3, 5, 7, 0, 0),
    );
}
