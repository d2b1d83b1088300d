//! The torture run: a writer appends failure lines with unique addresses
//! (threshold 1, so every line is one block) while the log is rotated both
//! ways, truncated, deleted and recreated, and the daemon is stopped,
//! SIGKILLed and restarted at random. Afterwards the set of block keys in
//! Redis equals the set of lines written, and the webhook received each
//! alert once.
//!
//! Seeded: `AUTHWATCH_TORTURE_SEED` replays one run, `AUTHWATCH_TORTURE_RUNS`
//! sets how many (default 3 in CI). Copytruncate and deletion inherently
//! lose lines written since the last read (logrotate's own race), so the
//! writer waits until the daemon has caught up before doing them, as a
//! careful logrotate `prerotate` would; renames need no such care.

use std::collections::{HashMap, HashSet};

use redis::AsyncCommands;

use crate::common::daemon::{sshd_line, Daemon, TestHost};
use crate::common::{Receiver, RedisServer, DEADLINE};

const RULE: &str = r#"
[[rule]]
id = "t1"
format = "syslog"
programs = ["sshd"]
threshold = 1
ipv6_prefix = 128
window = "60s"
block_for = "1h"
  [[rule.pattern]]
  regex = '^Failed password for .* from (?P<ip>\S+) port \d+ ssh2$'
"#;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Run {
    host: TestHost,
    daemon: Option<Daemon>,
    written: Vec<String>,
    next: u32,
}

impl Run {
    fn append(&mut self, rng: &mut Rng) {
        let n = 1 + rng.below(15) as u32;
        let lines: Vec<String> = (0..n)
            .map(|_| {
                self.next += 1;
                let i = self.next;
                let ip = if i.is_multiple_of(5) {
                    // The canonical text, as the block key spells it.
                    std::net::Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        (i >> 16) as u16,
                        0,
                        0,
                        0,
                        0,
                        (i & 0xffff) as u16,
                    )
                    .to_string()
                } else {
                    format!("100.{}.{}.{}", 64 + (i >> 16), (i >> 8) & 0xff, i & 0xff)
                };
                self.written.push(ip.clone());
                sshd_line(
                    i,
                    &format!("Failed password for root from {ip} port 22 ssh2"),
                )
            })
            .collect();
        self.host.append("auth.log", &lines);
    }

    fn start(&mut self) {
        if self.daemon.is_none() {
            self.daemon = Some(self.host.start_daemon());
        }
    }

    async fn caught_up(&self, conn: &mut redis::aio::MultiplexedConnection) {
        let until = std::time::Instant::now() + DEADLINE;
        loop {
            let n: usize = conn.zcard("authwatch:blocks").await.expect("ZCARD");
            if n >= self.written.len() {
                return;
            }
            if std::time::Instant::now() >= until {
                let logs = self
                    .daemon
                    .as_ref()
                    .map(|d| d.logs().join("\n"))
                    .unwrap_or_default();
                panic!(
                    "daemon did not catch up: {n} of {} blocked\n{logs}",
                    self.written.len()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Every IP an alert request names: a single block, or a digest's list.
fn alerted_ips(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    if let Some(ip) = v["ip"].as_str() {
        return vec![ip.to_owned()];
    }
    v["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["ip"].as_str().map(str::to_owned))
        .collect()
}

async fn torture(seed: u64) {
    let mut rng = Rng(seed.max(1));
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    let host = TestHost::with_rules(
        &redis.url(),
        RULE,
        &format!(
            // Paced for the test's bursts: digests are covered elsewhere.
            "[[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n\n[[alert]]\nkind = \"webhook\"\nurl = \"{}\"\nrate = \"1000/s\"\nburst = 1000\n",
            receiver.url("/hook")
        ),
    );
    host.append("auth.log", &[]);
    let mut conn = redis.conn().await;
    let mut run = Run {
        host,
        daemon: None,
        written: Vec::new(),
        next: 0,
    };
    run.start();
    let log = run.host.log("auth.log");
    let mut rotations = 0;

    for _ in 0..14 {
        let op = rng.below(10);
        eprintln!(
            "seed {seed}: op {op}, written {}, daemon {}",
            run.written.len(),
            run.daemon.is_some()
        );
        match op {
            0..=3 => run.append(&mut rng),
            4 => {
                // rename-and-create, as logrotate's `create` does.
                rotations += 1;
                std::fs::rename(&log, run.host.log(&format!("auth.log.{rotations}")))
                    .expect("rotate");
                run.host.append("auth.log", &[]);
            }
            5 if run.daemon.is_some() => {
                run.caught_up(&mut conn).await;
                std::fs::copy(&log, run.host.log("auth.log.copy")).expect("copy");
                std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&log)
                    .expect("truncate");
            }
            6 if run.daemon.is_some() => {
                run.caught_up(&mut conn).await;
                std::fs::remove_file(&log).expect("delete");
                run.host.append("auth.log", &[]);
            }
            7 => {
                if let Some(mut d) = run.daemon.take() {
                    d.kill9();
                } else {
                    run.start();
                }
            }
            8 => {
                if let Some(mut d) = run.daemon.take() {
                    assert!(d.stop().success(), "clean stop");
                } else {
                    run.start();
                }
            }
            _ => run.start(),
        }
    }
    run.append(&mut rng);
    run.start();
    run.caught_up(&mut conn).await;

    let keys: Vec<String> = conn.keys("authwatch:block:*").await.expect("KEYS");
    let blocked: HashSet<String> = keys
        .iter()
        .map(|k| k.trim_start_matches("authwatch:block:").to_owned())
        .collect();
    let written: HashSet<String> = run.written.iter().cloned().collect();
    assert_eq!(written.len(), run.written.len(), "unique addresses");
    assert_eq!(
        blocked, written,
        "seed {seed}: the blocks are exactly the lines written"
    );

    let until = std::time::Instant::now() + DEADLINE;
    loop {
        let mut seen: HashMap<String, usize> = HashMap::new();
        // One count per event id: an alert sent again after a SIGKILL that
        // hit between delivery and bookkeeping carries the same id.
        let mut ids = HashSet::new();
        for r in receiver.requests() {
            if !ids.insert(
                r.header("x-authwatch-event-id")
                    .unwrap_or_default()
                    .to_owned(),
            ) {
                continue;
            }
            for ip in alerted_ips(&r.body) {
                *seen.entry(ip).or_default() += 1;
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
        assert!(
            twice.is_empty(),
            "seed {seed}: alerted more than once: {twice:?}"
        );
        if seen.len() == written.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "seed {seed}: {} of {} alerts arrived",
            seen.len(),
            written.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_is_blocked_once_through_rotation_truncation_and_kills() {
    let runs: u64 = std::env::var("AUTHWATCH_TORTURE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    match std::env::var("AUTHWATCH_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => torture(seed).await,
        None => {
            for seed in 1..=runs {
                torture(seed * 0x9e37_79b9).await;
            }
        }
    }
}
