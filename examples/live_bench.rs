//! Live benchmarks of the daemon: the release `authwatch run`, a real
//! `redis-server` on a free loopback port, and log lines appended to the
//! file it tails, at a controlled rate.
//!
//! ```sh
//! cargo build --release --bin authwatch --example live_bench
//! target/release/examples/live_bench latency      # p50/p99/max, append → block published
//! target/release/examples/live_bench throughput   # 200k lines/s: does it keep up?
//! target/release/examples/live_bench distinct     # 1M distinct IPs below threshold: RSS
//! target/release/examples/live_bench startup      # spawn → READY=1 with 100 rules
//! ```
//!
//! `benches/live.sh` runs all four and collects their results in
//! `target/bench/live.md` (see `BENCHMARKS.md`). Each mode prints its
//! results on stdout as Markdown list items, its progress on stderr, and
//! exits 1 when a check against what it appended fails (2 when it could not
//! run): a fast wrong answer does not count.
//!
//! In `throughput`, the lag is sampled every 100 ms: the lines appended
//! before a `GET /v1/status` that the daemon had not processed when it
//! answered. The daemon answers between chunks, so 0 means it had drained
//! its input by then; the time from the last append until every line is
//! processed is the other half of "keeps up".
//!
//! # What is measured, and how
//!
//! * Every daemon is started with `NOTIFY_SOCKET` pointing at a unix
//!   datagram socket this program binds, and is "ready" when `READY=1`
//!   arrives there, exactly as systemd would see it. `startup` times spawn
//!   → `READY=1`.
//! * Lines are written by one thread that wakes every millisecond and
//!   appends, with one `write(2)`, every line due at the configured rate
//!   (the way rsyslog writes a batch). The background traffic is cron, sudo,
//!   logind and accepted SSH logins, plus 5 % failed passwords spread over
//!   65,536 addresses so that none comes near the threshold.
//! * An attacker is one fresh address (198.18.0.0/15) writing 50 failed
//!   passwords: the shipped sshd rule's threshold. The latency of a block
//!   runs from the moment `write(2)` of the 50th line returned to the
//!   moment the block's `PUBLISH` on `authwatch:events` is read by a
//!   subscriber in this process. The daemon's Lua script sets the block key
//!   and publishes in one atomic step, so the key exists no later than the
//!   message is sent; at the end every attacker's key is checked with
//!   `EXISTS` and the index must hold exactly the attackers.
//! * The daemon's own view comes from its control API (`GET /v1/status` on
//!   its unix socket): lines processed, tracked keys. Memory is `VmHWM`
//!   (peak RSS) and `VmRSS` from `/proc/PID/status`; CPU time from
//!   `/proc/PID/stat`.
//!
//! The harness runs on the same cores as the daemon and Redis: its writer
//! and subscriber compete with them, which makes the numbers pessimistic
//! rather than flattering. The load average is printed with every result.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};

/// The shipped sshd rule's threshold: an attacker's 50th line blocks it.
const THRESHOLD: u32 = 50;
/// Addresses of the background failures (100.64.0.0/16), taken in turn:
/// at 10,000 failures a second each comes back every 6.5 s, so at most 10
/// in any 60 s, far below the threshold.
const POOL: u32 = 65_536;
/// One line in this many of the background traffic is a failure.
const FAILURE_EVERY: u64 = 20;
/// How long a block may take before it counts as missing.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "Live benchmarks of authwatch run against a real Redis")]
struct Args {
    /// The daemon binary.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/authwatch"))]
    bin: PathBuf,
    /// Where each run's config, logs, state and daemon log go (emptied
    /// first).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench/live"))]
    out: PathBuf,
    /// The shipped rules.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/rules"))]
    rules: PathBuf,
    /// The daemon's state directory (checkpoints, outbox), instead of one
    /// under `--out`: e.g. on tmpfs, to see what the outbox's fsync costs.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Append → block published, per attacker, under background traffic.
    Latency {
        /// Attackers measured (after the warm-up ones).
        #[arg(long, default_value_t = 1000)]
        samples: u32,
        /// Attackers blocked first and not measured.
        #[arg(long, default_value_t = 10)]
        warmup: u32,
        /// Background lines a second.
        #[arg(long, default_value_t = 10_000)]
        noise: u32,
        /// Milliseconds between two attackers' 50th lines.
        #[arg(long, default_value_t = 10)]
        every_ms: u64,
    },
    /// A sustained rate of lines: does the daemon keep up?
    Throughput {
        /// Lines a second, attackers included.
        #[arg(long, default_value_t = 200_000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Attackers (50 lines each) a second, blocked and timed.
        #[arg(long, default_value_t = 100)]
        attackers: u32,
    },
    /// One failure from each of N distinct addresses, within one window.
    Distinct {
        #[arg(long, default_value_t = 1_000_000)]
        ips: u32,
        /// Every Nth address is IPv6, in its own /64, which the shipped rule
        /// counts twice (address and /64); 0: IPv4 only, so that N
        /// addresses are N keys.
        #[arg(long, default_value_t = 0)]
        ipv6_every: u32,
        /// Lines a second.
        #[arg(long, default_value_t = 200_000)]
        rate: u32,
    },
    /// Spawn → READY=1, with a rules directory of N rules.
    Startup {
        #[arg(long, default_value_t = 100)]
        rules: usize,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("live_bench: a check FAILED (see above)");
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("live_bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `Ok(false)`: the run completed but a correctness check failed.
fn run(args: &Args) -> Result<bool> {
    if !args.bin.is_file() {
        bail!(
            "{} not found: cargo build --release --bin authwatch",
            args.bin.display()
        );
    }
    if args.out.exists() {
        fs::remove_dir_all(&args.out)
            .with_context(|| format!("cannot empty {}", args.out.display()))?;
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let redis = Redis::start(&args.out.join("redis"))?;
    match args.mode {
        Mode::Latency {
            samples,
            warmup,
            noise,
            every_ms,
        } => latency(args, &redis, samples, warmup, noise, every_ms),
        Mode::Throughput {
            rate,
            secs,
            attackers,
        } => throughput(args, &redis, rate, secs, attackers),
        Mode::Distinct {
            ips,
            ipv6_every,
            rate,
        } => distinct(args, &redis, ips, ipv6_every, rate),
        Mode::Startup { rules, runs } => startup(args, &redis, rules, runs),
    }
}

// ---------------------------------------------------------------------------
// The modes
// ---------------------------------------------------------------------------

fn latency(
    args: &Args,
    redis: &Redis,
    samples: u32,
    warmup: u32,
    noise: u32,
    every_ms: u64,
) -> Result<bool> {
    let host = Host::new(args, &args.out.join("host"), &args.rules, &redis.url())?;
    let mut daemon = Daemon::start(&args.bin, &host)?;
    let events = Subscriber::start(redis)?;
    host.wait_for_api()?;
    let load_before = load();
    let cpu_before = daemon.cpu_secs()?;

    let attackers = warmup + samples;
    let every = Duration::from_millis(every_ms);
    let plan = Plan {
        rate: f64::from(noise),
        until: every * (attackers + 1),
        attacks: (0..attackers).map(|k| every * (k + 1)).collect::<Vec<_>>(),
    };
    eprintln!(
        "latency: {attackers} attackers ({warmup} warm-up), one every {every_ms} ms, over {noise} background lines/s"
    );
    let written = Writer::run(&host.log, plan, None)?;
    let outcome = settle(&host, &daemon, &events, &written)?;

    let lat: Vec<Duration> = outcome.latencies[warmup as usize..]
        .iter()
        .flatten()
        .copied()
        .collect();
    let cpu = daemon.cpu_secs()? - cpu_before;
    let load_after = load();
    let ok = outcome.report(redis, attackers)?;
    let s = Summary::of(&lat);
    println!(
        "- live latency: append of the 50th failure → block published, {} attackers, {noise} lines/s background; p50 {}; p90 {}; p99 {}; max {}; mean {}; n = {}, missing {}; daemon CPU {:.2} s over {:.1} s; load {load_before}/{load_after}",
        samples,
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.max),
        ms(s.mean),
        s.n,
        samples as usize - s.n,
        cpu,
        written.elapsed.as_secs_f64(),
    );
    daemon.stop()?;
    Ok(ok && s.n == samples as usize)
}

fn throughput(args: &Args, redis: &Redis, rate: u32, secs: u64, attackers: u32) -> Result<bool> {
    let host = Host::new(args, &args.out.join("host"), &args.rules, &redis.url())?;
    let mut daemon = Daemon::start(&args.bin, &host)?;
    let events = Subscriber::start(redis)?;
    host.wait_for_api()?;
    let load_before = load();
    let cpu_before = daemon.cpu_secs()?;

    let until = Duration::from_secs(secs);
    let n = (attackers as u64 * secs) as u32;
    let plan = Plan {
        rate: f64::from(rate),
        until,
        // Spread evenly, the first after 0.5 s.
        attacks: (0..n)
            .map(|k| Duration::from_millis(500) + until.mul_f64(f64::from(k) / f64::from(n.max(1))))
            .filter(|&t| t < until)
            .collect(),
    };
    eprintln!("throughput: {rate} lines/s for {secs} s, {n} attackers");
    // The lag is sampled while the lines are written: lines appended minus
    // lines the daemon has processed.
    let appended = Arc::new(AtomicU64::new(0));
    let monitor = Monitor::start(&host, appended.clone());
    let written = Writer::run(&host.log, plan, Some(appended))?;
    let drained_at = Instant::now();
    let lags = monitor.finish();
    let outcome = settle(&host, &daemon, &events, &written)?;
    let drain = outcome.caught_up.saturating_duration_since(drained_at);
    let cpu = daemon.cpu_secs()? - cpu_before;
    let load_after = load();
    let ok = outcome.report(redis, written.attacks.len() as u32)?;

    let max_lag = lags.iter().map(|&(_, l)| l).max().unwrap_or(0);
    let secs_written = written.elapsed.as_secs_f64();
    let lat: Vec<Duration> = outcome.latencies.iter().flatten().copied().collect();
    let s = Summary::of(&lat);
    println!(
        "- live throughput: {} lines in {:.2} s = {:.0} lines/s appended ({} attackers); processed all {} lines {} after the last append; largest lag seen {} lines ({:.1} ms of input; {} samples); block latency under load p50 {} p99 {} max {} (n = {}); daemon CPU {:.2} s = {:.0} % of one core; load {load_before}/{load_after}",
        written.lines,
        secs_written,
        written.lines as f64 / secs_written,
        written.attacks.len(),
        outcome.processed,
        ms(drain),
        max_lag,
        max_lag as f64 / f64::from(rate) * 1000.0,
        lags.len(),
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        s.n,
        cpu,
        cpu / secs_written * 100.0,
    );
    daemon.stop()?;
    Ok(ok && s.n == written.attacks.len())
}

fn distinct(args: &Args, redis: &Redis, ips: u32, ipv6_every: u32, rate: u32) -> Result<bool> {
    let host = Host::new(args, &args.out.join("host"), &args.rules, &redis.url())?;
    let mut daemon = Daemon::start(&args.bin, &host)?;
    host.wait_for_api()?;
    let load_before = load();
    let rss_ready = daemon.proc_status_kib("VmRSS")?;
    eprintln!("distinct: {ips} addresses, one failure each, at {rate} lines/s");

    // IPv4 from 10.0.0.0/8; with `ipv6_every`, some IPv6, each in its own
    // /64, which the shipped rule counts per address and per /64: two keys.
    let started = Instant::now();
    let mut file = append_to(&host.log)?;
    let mut lines = Lines::new();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut k = 0u32;
    let mut v6 = 0u32;
    while k < ips {
        let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as u32;
        let upto = due.min(ips);
        if upto <= k {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        lines.stamp();
        buf.clear();
        while k < upto {
            if ipv6_every > 0 && k % ipv6_every == ipv6_every - 1 {
                v6 += 1;
                let ip = format!("2001:db8:{:x}:{:x}::1", k >> 16, k & 0xffff);
                lines.failure(&mut buf, &ip);
            } else {
                lines.failure(&mut buf, &Ipv4Addr::from(0x0a00_0000 + k));
            }
            k += 1;
        }
        file.write_all(&buf).context("append to the log")?;
    }
    let elapsed = started.elapsed();
    let processed = host.wait_for_lines(u64::from(ips), GRACE)?;
    let status = host.status()?;
    let keys = status["tracked_keys"].as_u64().unwrap_or(0);
    let evictions = status["evictions"].as_u64().unwrap_or(0);
    let hwm = daemon.proc_status_kib("VmHWM")?;
    let rss = daemon.proc_status_kib("VmRSS")?;
    let load_after = load();
    let expected_keys = u64::from(ips) + u64::from(v6);
    let blocks = redis.zcard()?;
    // Every key is either held or was evicted at the detector's cap (a
    // million keys by default); below the cap, none is evicted.
    let cap = authwatch::detector::DEFAULT_MAX_KEYS as u64;
    let ok = keys + evictions == expected_keys
        && (expected_keys > cap || evictions == 0)
        && blocks == 0
        && processed >= u64::from(ips);
    println!(
        "- live 1M-IP memory: {ips} distinct addresses ({v6} IPv6) appended in {:.2} s; tracked keys {keys}, evicted {evictions} (keys expected {expected_keys}, cap {cap}); peak RSS (VmHWM) {:.1} MiB; RSS after {:.1} MiB; RSS at ready {:.1} MiB; blocks {blocks} (expected 0); {}; load {load_before}/{load_after}",
        elapsed.as_secs_f64(),
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0,
        rss_ready as f64 / 1024.0,
        if ok { "exact" } else { "WRONG" },
    );
    daemon.stop()?;
    Ok(ok)
}

fn startup(args: &Args, redis: &Redis, n_rules: usize, runs: usize) -> Result<bool> {
    let rules = args.out.join("rules-many");
    let count = write_rule_variants(&args.rules, &rules, n_rules)?;
    let mut ok = true;
    for (label, dir, n) in [
        ("shipped", args.rules.clone(), 3),
        ("generated", rules, count),
    ] {
        let mut times = Vec::new();
        let load_before = load();
        for i in 0..runs {
            let host = Host::new(
                args,
                &args.out.join(format!("startup-{label}-{i}")),
                &dir,
                &redis.url(),
            )?;
            let mut daemon = Daemon::start(&args.bin, &host)?;
            times.push(daemon.ready_after);
            let status = host.status_after_ready()?;
            let loaded = status["rules"].as_array().map_or(0, Vec::len);
            if loaded != n {
                eprintln!("startup: the daemon reports {loaded} rules, expected {n}");
                ok = false;
            }
            daemon.stop()?;
        }
        let s = Summary::of(&times);
        println!(
            "- start-up, {n} rules ({label}): spawn → READY=1; min {}; median {}; p90 {}; max {}; {runs} runs; load {load_before}/{}",
            ms(s.min),
            ms(s.p50),
            ms(s.p90),
            ms(s.max),
            load(),
        );
    }
    Ok(ok)
}

/// Writes `n` rules: variants of the shipped ones, each with its examples
/// (which the daemon runs before it starts), each under its own id and
/// threshold. Returns how many.
fn write_rule_variants(shipped: &Path, dir: &Path, n: usize) -> Result<usize> {
    fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for e in fs::read_dir(shipped).with_context(|| format!("read {}", shipped.display()))? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "toml") {
            files.push(
                fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?,
            );
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no rule files in {}", shipped.display());
    }
    for i in 0..n {
        let text = &files[i % files.len()];
        let mut out = String::with_capacity(text.len());
        let mut renamed = false;
        for line in text.lines() {
            if let Some(id) = line
                .strip_prefix("id = \"")
                .and_then(|r| r.strip_suffix('"'))
            {
                if renamed {
                    bail!("the variants assume one rule per shipped file");
                }
                let _ = writeln!(out, "id = \"{id}-{i:03}\"");
                renamed = true;
            } else if line.starts_with("threshold = ") {
                let _ = writeln!(out, "threshold = {}", 20 + i);
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        fs::write(dir.join(format!("rule-{i:03}.toml")), out)?;
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// Writing lines at a rate
// ---------------------------------------------------------------------------

/// What the writer appends: background lines at `rate`, for `until`, and an
/// attacker's 50th line at each of `attacks` (offsets from the start).
struct Plan {
    rate: f64,
    until: Duration,
    attacks: Vec<Duration>,
}

/// What the writer did.
struct Written {
    lines: u64,
    elapsed: Duration,
    /// Per attacker: its address and when the write of its 50th line
    /// returned.
    attacks: Vec<(String, Instant)>,
}

struct Writer;

impl Writer {
    /// Writes `plan` to `log` on this thread. An attacker's first 49 lines go
    /// out with the background batch of the tick before its 50th, which is
    /// written on its own so that its write can be timed.
    fn run(log: &Path, plan: Plan, appended: Option<Arc<AtomicU64>>) -> Result<Written> {
        let mut file = append_to(log)?;
        let mut lines = Lines::new();
        let mut buf = Vec::with_capacity(1 << 20);
        let mut attacks = Vec::with_capacity(plan.attacks.len());
        let mut next_attack = 0usize;
        let mut primed = false;
        let mut background = 0u64;
        let mut total = 0u64;
        let started = Instant::now();
        let tick = Duration::from_millis(1);
        let mut next_tick = started;
        loop {
            let now = Instant::now();
            if now < next_tick {
                std::thread::sleep(next_tick - now);
            }
            next_tick += tick;
            let at = started.elapsed();
            let done = at >= plan.until && next_attack == plan.attacks.len();
            let due = (at.min(plan.until).as_secs_f64() * plan.rate) as u64;
            lines.stamp();
            buf.clear();
            while background < due {
                lines.background(&mut buf);
                background += 1;
                total += 1;
            }
            let attack_now = plan.attacks.get(next_attack).is_some_and(|&t| t <= at);
            if !primed && next_attack < plan.attacks.len() {
                // The 49 lines before the threshold, one tick ahead.
                let ip = attacker(next_attack as u32);
                for _ in 1..THRESHOLD {
                    lines.failure(&mut buf, &ip);
                    total += 1;
                }
                primed = true;
            }
            if !buf.is_empty() {
                file.write_all(&buf).context("append to the log")?;
            }
            if attack_now && primed {
                let ip = attacker(next_attack as u32);
                buf.clear();
                lines.failure(&mut buf, &ip);
                file.write_all(&buf).context("append to the log")?;
                attacks.push((ip.to_string(), Instant::now()));
                total += 1;
                next_attack += 1;
                primed = false;
            }
            if let Some(a) = &appended {
                a.store(total, Ordering::Relaxed);
            }
            if done {
                break;
            }
        }
        Ok(Written {
            lines: total,
            elapsed: started.elapsed(),
            attacks,
        })
    }
}

fn append_to(log: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {} for append", log.display()))
}

/// The k-th attacker: 198.18.0.0/15 (RFC 2544's benchmarking range).
fn attacker(k: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_0000 + k % 131_072)
}

/// Syslog lines as rsyslog writes them (RFC 3339 times), stamped now.
struct Lines {
    stamp: String,
    pid: u32,
    n: u64,
    pool: u32,
}

impl Lines {
    fn new() -> Lines {
        let mut l = Lines {
            stamp: String::new(),
            pid: 10_000,
            n: 0,
            pool: 0,
        };
        l.stamp();
        l
    }

    /// Takes the time for the lines that follow (once per batch: the
    /// formatting would otherwise cost more than the lines).
    fn stamp(&mut self) {
        self.stamp = authwatch::time::Timestamp::now().to_string();
    }

    fn pid(&mut self) -> u32 {
        self.pid = if self.pid >= 4_000_000 {
            10_000
        } else {
            self.pid + 1
        };
        self.pid
    }

    /// One failed password, its own connection.
    fn failure(&mut self, out: &mut Vec<u8>, ip: &dyn std::fmt::Display) {
        let pid = self.pid();
        let _ = writeln!(
            Buf(out),
            "{} web1 sshd[{pid}]: Failed password for root from {ip} port {} ssh2",
            self.stamp,
            30_000 + pid % 30_000
        );
    }

    /// One line of ordinary traffic.
    fn background(&mut self, out: &mut Vec<u8>) {
        self.n += 1;
        let pid = self.pid();
        let ts = &self.stamp;
        let w = &mut Buf(out);
        let r = match self.n % FAILURE_EVERY {
            0 => {
                self.pool = (self.pool + 1) % POOL;
                let ip = Ipv4Addr::from(0x6440_0000 + self.pool);
                writeln!(w, "{ts} web1 sshd[{pid}]: Failed password for invalid user admin from {ip} port {} ssh2", 30_000 + pid % 30_000)
            }
            1..=6 => writeln!(
                w,
                "{ts} web1 CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)"
            ),
            7..=9 => writeln!(
                w,
                "{ts} web1 sshd[{pid}]: Accepted publickey for deploy from 192.0.2.{} port {} ssh2: ED25519 SHA256:Qv3r8kTt0mJmXkq5d2Yc1n2b3v4c5x6z7a8s9d0f1g2",
                pid % 250,
                30_000 + pid % 30_000
            ),
            10..=12 => writeln!(
                w,
                "{ts} web1 sshd[{pid}]: Received disconnect from 192.0.2.{} port {}:11: disconnected by user",
                pid % 250,
                30_000 + pid % 30_000
            ),
            13..=15 => writeln!(
                w,
                "{ts} web1 systemd-logind[812]: New session {pid} of user deploy."
            ),
            _ => writeln!(
                w,
                "{ts} web1 sudo[{pid}]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
            ),
        };
        // Writing into a Vec cannot fail.
        let _ = r;
    }
}

/// `write!` into a `Vec<u8>` without going through `io::Write`'s error.
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// After the writer: waiting for the daemon, checking what it did
// ---------------------------------------------------------------------------

struct Outcome {
    /// Per attacker, in order: append → published, if it was.
    latencies: Vec<Option<Duration>>,
    attackers: Vec<String>,
    /// When the daemon had processed every line appended.
    caught_up: Instant,
    processed: u64,
}

/// Waits until the daemon has processed every line and every attacker's
/// block was published (or [`GRACE`] passed), and pairs appends with
/// publications.
fn settle(host: &Host, daemon: &Daemon, events: &Subscriber, written: &Written) -> Result<Outcome> {
    let processed = host.wait_for_lines(written.lines, GRACE)?;
    let caught_up = Instant::now();
    let wanted: Vec<&str> = written.attacks.iter().map(|(ip, _)| ip.as_str()).collect();
    let seen = events.wait_for(&wanted, GRACE);
    daemon.check_alive()?;
    let latencies = written
        .attacks
        .iter()
        .map(|(ip, at)| seen.get(ip).map(|t| t.saturating_duration_since(*at)))
        .collect();
    Ok(Outcome {
        latencies,
        attackers: written.attacks.iter().map(|(ip, _)| ip.clone()).collect(),
        caught_up,
        processed,
    })
}

impl Outcome {
    /// The checks against the ground truth: every attacker's key exists,
    /// every block was published, and nothing else was blocked. Prints them;
    /// `Ok(false)` if one failed.
    fn report(&self, redis: &Redis, attackers: u32) -> Result<bool> {
        let published = self.latencies.iter().flatten().count();
        let existing = redis.exists_count(&self.attackers)?;
        let index = redis.zcard()?;
        let ok = published == attackers as usize
            && existing == attackers as usize
            && index == u64::from(attackers);
        println!(
            "- check: {attackers} attackers; published {published}; keys existing {existing}; index (authwatch:blocks) {index}; {}",
            if ok { "exact" } else { "WRONG" }
        );
        Ok(ok)
    }
}

/// Samples the daemon's lag while lines are written: lines appended minus
/// lines processed, every 100 ms.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Duration, u64)>>,
}

impl Monitor {
    fn start(host: &Host, appended: Arc<AtomicU64>) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let socket = host.api_socket.clone();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut out = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                // Read "appended" first: the lag is then never overstated.
                let a = appended.load(Ordering::Relaxed);
                if let Ok(s) = api_json(&socket, "/v1/status") {
                    let p = s["lines"].as_u64().unwrap_or(0);
                    out.push((started.elapsed(), a.saturating_sub(p)));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            out
        });
        Monitor { stop, thread }
    }

    fn finish(self) -> Vec<(Duration, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// Redis: a private server, a subscriber, checks
// ---------------------------------------------------------------------------

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// A private `redis-server` on a free loopback port, nothing saved.
    fn start(dir: &Path) -> Result<Redis> {
        fs::create_dir_all(dir)?;
        // redis-server changes into --dir before it opens --logfile, so a
        // relative path would name a file under itself.
        let dir = &fs::canonicalize(dir)?;
        let mut last = anyhow!("not tried");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .arg("--logfile")
                .arg(dir.join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot run redis-server (apt-get install redis-server)")?;
            let until = Instant::now() + Duration::from_secs(10);
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = anyhow!("redis-server on port {port} exited: {status}");
                    break;
                }
                // Our server, not another that took the port meanwhile.
                let info = client
                    .get_connection_with_timeout(Duration::from_millis(500))
                    .and_then(|mut c| redis::cmd("INFO").arg("server").query::<String>(&mut c));
                if info.is_ok_and(|i| i.contains(&format!("process_id:{}\r", child.id()))) {
                    return Ok(Redis { child, port });
                }
                if Instant::now() > until {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = anyhow!("redis-server on port {port} did not answer within 10 s");
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(last)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn conn(&self) -> Result<redis::Connection> {
        Ok(redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(5))?)
    }

    /// How many of `ips` have a block key.
    fn exists_count(&self, ips: &[String]) -> Result<usize> {
        let mut c = self.conn()?;
        let mut n = 0usize;
        for chunk in ips.chunks(1000) {
            let mut cmd = redis::cmd("EXISTS");
            for ip in chunk {
                cmd.arg(format!("authwatch:block:{ip}"));
            }
            n += cmd.query::<usize>(&mut c)?;
        }
        Ok(n)
    }

    /// Members of the block index.
    fn zcard(&self) -> Result<u64> {
        Ok(redis::cmd("ZCARD")
            .arg("authwatch:blocks")
            .query::<u64>(&mut self.conn()?)?)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A thread subscribed to `authwatch:events`, noting when each block's
/// message arrives.
struct Subscriber {
    rx: mpsc::Receiver<(String, Instant)>,
    seen: std::cell::RefCell<HashMap<String, Instant>>,
}

impl Subscriber {
    /// Returns once subscribed: nothing published afterwards is missed.
    fn start(redis: &Redis) -> Result<Subscriber> {
        let mut conn = redis.conn()?;
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        std::thread::spawn(move || {
            let mut ps = conn.as_pubsub();
            if let Err(e) = ps.subscribe("authwatch:events") {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            while let Ok(msg) = ps.get_message() {
                let at = Instant::now();
                let ip = serde_json::from_slice::<serde_json::Value>(msg.get_payload_bytes())
                    .ok()
                    .and_then(|v| v["ip"].as_str().map(str::to_owned));
                if let Some(ip) = ip {
                    if tx.send((ip, at)).is_err() {
                        return;
                    }
                }
            }
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("SUBSCRIBE authwatch:events: {e}"),
            Err(_) => bail!("SUBSCRIBE authwatch:events did not answer"),
        }
        Ok(Subscriber {
            rx,
            seen: std::cell::RefCell::new(HashMap::new()),
        })
    }

    /// Collects messages until every one of `ips` was seen or `grace`
    /// passed; returns every arrival seen so far.
    fn wait_for(&self, ips: &[&str], grace: Duration) -> HashMap<String, Instant> {
        let until = Instant::now() + grace;
        let mut seen = self.seen.borrow_mut();
        while !ips.iter().all(|ip| seen.contains_key(*ip)) {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((ip, at)) => {
                    seen.entry(ip).or_insert(at);
                }
                Err(_) => break,
            }
        }
        while let Ok((ip, at)) = self.rx.try_recv() {
            seen.entry(ip).or_insert(at);
        }
        seen.clone()
    }
}

// ---------------------------------------------------------------------------
// The daemon and its host
// ---------------------------------------------------------------------------

/// A directory that plays a host: config, log, state, the API socket.
struct Host {
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    api_socket: PathBuf,
}

impl Host {
    fn new(args: &Args, dir: &Path, rules: &Path, redis_url: &str) -> Result<Host> {
        fs::create_dir_all(dir.join("log"))?;
        let state = match &args.state_dir {
            Some(s) => {
                if s.exists() {
                    fs::remove_dir_all(s).with_context(|| format!("empty {}", s.display()))?;
                }
                s.clone()
            }
            None => dir.join("state"),
        };
        let log = dir.join("log/auth.log");
        let api = dir.join("log/api.log");
        let access = dir.join("log/access.log");
        for f in [&log, &api, &access] {
            File::create(f).with_context(|| format!("create {}", f.display()))?;
        }
        let rules = fs::canonicalize(rules).with_context(|| format!("{}", rules.display()))?;
        let config = dir.join("authwatch.toml");
        // The shipped sshd rule reads the source named "sshd"; jwt and http
        // name no source, so they read every source, auth.log included.
        let text = format!(
            "rules_dir = {rules:?}\nstate_dir = {state:?}\nhost = \"bench\"\n\n\
             [redis]\nurl = \"{redis_url}\"\n\n\
             [api]\nsocket = \"run/api.sock\"\n\n\
             [[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n\n\
             [[source]]\nname = \"api\"\npath = \"log/api.log\"\n\n\
             [[source]]\nname = \"access\"\npath = \"log/access.log\"\n"
        );
        fs::write(&config, text)?;
        Ok(Host {
            dir: dir.to_owned(),
            config,
            log,
            api_socket: dir.join("run/api.sock"),
        })
    }

    /// The API answers once the daemon has reached Redis.
    fn wait_for_api(&self) -> Result<()> {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            match api_json(&self.api_socket, "/v1/status") {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > until => {
                    return Err(e.context("the daemon's API did not answer within 20 s"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn status(&self) -> Result<serde_json::Value> {
        api_json(&self.api_socket, "/v1/status")
    }

    fn status_after_ready(&self) -> Result<serde_json::Value> {
        self.wait_for_api()?;
        self.status()
    }

    /// Polls the daemon until it has processed `n` lines; returns how many
    /// it had when it stopped looking.
    fn wait_for_lines(&self, n: u64, grace: Duration) -> Result<u64> {
        let until = Instant::now() + grace;
        loop {
            let got = self.status()?["lines"].as_u64().unwrap_or(0);
            if got >= n || Instant::now() > until {
                if got < n {
                    eprintln!("the daemon processed {got} of {n} lines within {grace:?}");
                }
                return Ok(got);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// `GET path` on the daemon's unix socket; the body as JSON.
fn api_json(socket: &Path, path: &str) -> Result<serde_json::Value> {
    let mut s =
        UnixStream::connect(socket).with_context(|| format!("connect to {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    // HTTP/1.0: the answer is not chunked and the connection closes.
    write!(s, "GET {path} HTTP/1.0\r\nHost: authwatch\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{path}: not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("{path}: {}", head.lines().next().unwrap_or(""));
    }
    serde_json::from_str(body).with_context(|| format!("{path}: not JSON"))
}

/// The release daemon, started as systemd would with `Type=notify`.
struct Daemon {
    child: Child,
    /// Spawn → `READY=1`.
    ready_after: Duration,
    stderr: PathBuf,
    drain_stop: Arc<AtomicBool>,
}

impl Daemon {
    fn start(bin: &Path, host: &Host) -> Result<Daemon> {
        let notify_path = host.dir.join("notify.sock");
        let _ = fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path)
            .with_context(|| format!("bind {}", notify_path.display()))?;
        notify.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stderr = host.dir.join("authwatch.log");
        let err_file = File::create(&stderr)?;
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .args(["run", "--allow-root", "--config"])
            .arg(&host.config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("AUTHWATCH_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let mut buf = [0u8; 4096];
        let ready_after = loop {
            match notify.recv(&mut buf) {
                Ok(n) => {
                    let at = spawned.elapsed();
                    if buf[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1") {
                        break at;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e).context("read the notify socket"),
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "authwatch exited ({status}) before READY=1:\n{}",
                    fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            if spawned.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                bail!("no READY=1 within 30 s");
            }
        };
        // Keep reading the daemon's status lines: a full socket buffer would
        // block its notifications.
        let drain_stop = Arc::new(AtomicBool::new(false));
        let flag = drain_stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = notify.recv(&mut buf);
            }
        });
        Ok(Daemon {
            child,
            ready_after,
            stderr,
            drain_stop,
        })
    }

    fn check_alive(&self) -> Result<()> {
        if fs::metadata(format!("/proc/{}", self.child.id())).is_err() {
            bail!(
                "authwatch is gone:\n{}",
                fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
        Ok(())
    }

    /// A `kB` line of `/proc/PID/status` (`VmHWM`, `VmRSS`).
    fn proc_status_kib(&self, key: &str) -> Result<u64> {
        let text = fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .ok_or_else(|| anyhow!("no {key} in /proc/PID/status"))
    }

    /// User + system CPU seconds so far.
    fn cpu_secs(&self) -> Result<f64> {
        let text = fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which may hold spaces: ") S ppid …".
        let rest = text
            .rsplit_once(") ")
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("unexpected /proc/PID/stat"))?;
        let f: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of stat(5); here 12 and 13.
        let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        // SAFETY: sysconf has no memory effects.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Ok(ticks as f64 / hz)
    }

    /// SIGTERM and a clean exit within 20 s.
    fn stop(&mut self) -> Result<()> {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!(
                        "authwatch exited with {status}:\n{}",
                        fs::read_to_string(&self.stderr).unwrap_or_default()
                    );
                }
                return Ok(());
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                bail!("authwatch did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.drain_stop.store(true, Ordering::Relaxed);
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

struct Summary {
    n: usize,
    min: Duration,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
}

impl Summary {
    /// Nearest-rank percentiles.
    fn of(samples: &[Duration]) -> Summary {
        let mut v = samples.to_vec();
        v.sort();
        let at = |p: f64| -> Duration {
            if v.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        let sum: Duration = v.iter().sum();
        Summary {
            n: v.len(),
            min: v.first().copied().unwrap_or_default(),
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: v.last().copied().unwrap_or_default(),
            mean: if v.is_empty() {
                Duration::ZERO
            } else {
                sum / v.len() as u32
            },
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The 1-minute load average.
fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split(' ').next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
