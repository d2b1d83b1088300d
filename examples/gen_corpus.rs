//! A deterministic, seeded generator of benchmark corpora, with their
//! ground truth.
//!
//! ```sh
//! cargo run --release --example gen_corpus -- --kind sshd --lines 1000000 --seed 42 --out DIR
//! ```
//!
//! writes `DIR/<kind>.log`, `DIR/<kind>.truth.jsonl` and `DIR/<kind>.stats`:
//!
//! * `<kind>.log`: the log. Its modification time is set to one minute after
//!   its last line, so that `replay` places year-less syslog times in the
//!   right year whenever it runs. Year-less times are written in UTC: replay
//!   with `TZ=UTC`.
//! * `<kind>.truth.jsonl`: every block decision the shipped rules must make
//!   at their defaults (50 failures in any 60 s, blocks of 15 min, IPv6
//!   counted per address and per /64; a /64 whose failures reach the
//!   threshold with its address's, all of them that address's, is not
//!   blocked besides the address) with the default allowlist
//!   (`127.0.0.0/8`, `::1/128`), one JSON object per line exactly as
//!   `authwatch replay --json` prints it. `sort` both and compare.
//! * `<kind>.stats`: what the corpus holds (`key value` lines).
//!
//! Kinds:
//!
//! * `sshd`: an auth.log of about 100 bytes a line: 30 % of the lines from
//!   attacks, the rest cron, sudo, logind and ordinary SSH logins and
//!   internet background noise; every time format the shipped sshd rule
//!   reads (classic syslog, journald short-precise, RFC 3339, short-iso) and
//!   every program name (`sshd`, `sshd-session`, `sshd-auth`). Attackers:
//!   fast brute force (blocked), bursts of exactly 49 attempts (just below),
//!   bursts of 50 in 50 s (just above), slow attackers (one attempt every
//!   1.3–5 s), scanners and password sprays over many addresses, public-key
//!   probes, user names that plant a victim address, a local script failing
//!   from 127.0.0.1 (allowlisted), 20 % IPv6 addresses, and IPv6 attackers
//!   rotating their address inside one /64 (only the /64 is blocked).
//! * `json`: a JSON service log of about 280 bytes a line, in the shapes of
//!   structlog, pino, winston, zap, log/slog, logstash-logback-encoder and
//!   tracing; 10 % of the lines are JWT signature failures in each library's
//!   wording, including ambiguous lines (the IP field twice, never counted)
//!   and addresses planted in nested objects and reflected strings.
//! * `access`: an nginx "combined" access log with bursts of 401.
//! * `distinct`: one failure from each of N distinct addresses (20 % IPv6)
//!   within 59 s: every address is tracked at once and none is blocked. This
//!   is the memory benchmark.
//!
//! The ground truth is computed here, independently of the crate's rules
//! and detector, from what the generator knows each line stands for and the
//! counting rules of `README.md`: one failed attempt counts once even when
//! sshd writes several lines for it (`Invalid user` and the following
//! `Failed password for invalid user` of the same connection are one
//! attempt; `Connection closed by authenticating user … [preauth]` counts
//! only when nothing else of the connection did); rsyslog's `message
//! repeated N times` counts N; ambiguous JSON lines count nothing.
//!
//! The same `--kind`, `--lines` and `--seed` always give the same bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The shipped rules' defaults, which the ground truth applies.
const THRESHOLD: usize = 50;
const WINDOW_MS: i64 = 60_000;
const BLOCK_FOR_MS: i64 = 15 * 60_000;

/// Where every corpus starts: 2026-03-05T06:00:00Z (far from New Year and
/// from any DST change, and written in UTC anyway).
const START_MS: i64 = 1_772_690_400_000;

/// Average lines per second of log time: the corpus of N lines spans
/// N / LINE_RATE seconds (1M lines: about 11 hours).
const LINE_RATE: i64 = 25;

/// The host name in syslog headers.
const HOST: &str = "web1";

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Sshd,
    Json,
    Access,
    Distinct,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sshd => "sshd",
            Kind::Json => "json",
            Kind::Access => "access",
            Kind::Distinct => "distinct",
        }
    }

    /// The id of the shipped rule that counts this corpus's failures.
    fn rule(self) -> &'static str {
        match self {
            Kind::Sshd | Kind::Distinct => "sshd",
            Kind::Json => "jwt-signature",
            Kind::Access => "http-401",
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "Generates a deterministic benchmark corpus and its ground truth")]
struct Args {
    #[arg(long, value_enum)]
    kind: Kind,
    /// Lines to write.
    #[arg(long, default_value_t = 1_000_000)]
    lines: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let mut g = Gen::new(args.seed, args.kind);
    match args.kind {
        Kind::Sshd => sshd::generate(&mut g, args.lines),
        Kind::Json => json::generate(&mut g, args.lines),
        Kind::Access => access::generate(&mut g, args.lines),
        Kind::Distinct => sshd::distinct(&mut g, args.lines),
    }
    g.finish(args.kind, args.lines, &args.out)
}

// ---------------------------------------------------------------------------
// Randomness: SplitMix64, so that the corpus depends on nothing but the seed.
// ---------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, chosen in proportion to them.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }

    fn base64ish(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n)
            .map(|_| char::from(A[self.below(64) as usize]))
            .collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

// ---------------------------------------------------------------------------
// Lines, their meaning, and the ground truth
// ---------------------------------------------------------------------------

/// How a syslog line writes its time. Each is one the sshd rule reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum TimeFmt {
    /// `Mar  5 06:25:01` (rsyslog's default, `journalctl -o short`).
    Classic,
    /// `Mar 05 06:25:01.123456` (`journalctl -o short-precise`).
    Precise,
    /// `2026-03-05T07:25:01.123456+01:00` (rsyslog's RFC 3339 template).
    Rfc3339,
    /// `2026-03-05T07:25:01+0100` (`journalctl -o short-iso`).
    ShortIso,
}

impl TimeFmt {
    /// Whether the format keeps the milliseconds.
    fn precise(self) -> bool {
        matches!(self, TimeFmt::Precise | TimeFmt::Rfc3339)
    }
}

enum Body {
    /// A syslog line: the header is written when the line's place in the
    /// file is known.
    Syslog {
        program: &'static str,
        pid: Option<u32>,
        message: String,
    },
    /// A line that carries its own time (JSON, access log); `rep` is the
    /// time it says, as the rules read it.
    Raw { text: String, rep: i64 },
}

struct Rec {
    /// The event time in ms; the line's written time may be coarser.
    t: i64,
    seq: u64,
    body: Body,
    /// What the line counts for under the README's semantics: (client,
    /// failures). `None` for lines that count nothing.
    counts: Option<(IpAddr, u32)>,
    /// Whether the line belongs to an attack (for the statistics).
    attack: bool,
    /// Whether the line matches the corpus's rule at all, counting or not
    /// (for the statistics: JWT failure share).
    failure: bool,
    /// The client address the line names, if any (for the IPv6 share).
    ip: Option<IpAddr>,
}

/// What a syslog line stands for, beyond its text.
#[derive(Clone, Copy)]
struct Meaning {
    /// The failures it counts for: (client, how many).
    counts: Option<(IpAddr, u32)>,
    attack: bool,
    /// The client address it names, if any.
    ip: Option<IpAddr>,
}

impl Meaning {
    /// Counts nothing, names no address.
    const NOISE: Meaning = Meaning {
        counts: None,
        attack: false,
        ip: None,
    };

    /// Counts nothing, names `ip`.
    fn about(ip: IpAddr) -> Meaning {
        Meaning {
            ip: Some(ip),
            ..Meaning::NOISE
        }
    }

    /// Counts `weight` failures of `ip` (none when 0).
    fn failures(ip: IpAddr, weight: u32, attack: bool) -> Meaning {
        Meaning {
            counts: (weight > 0).then_some((ip, weight)),
            attack,
            ip: Some(ip),
        }
    }
}

struct Gen {
    seed: u64,
    rng: Rng,
    kind: Kind,
    recs: Vec<Rec>,
    seq: u64,
    next_pid: u32,
    used_ips: HashSet<IpAddr>,
    /// Syslog time formats, weighted (classic, precise, rfc3339, short-iso).
    fmt_weights: [u64; 4],
}

/// The ground truth: an exact sliding window per client, and per /64 for
/// IPv6 clients (the rules' default `ipv6_prefix`), written here from the
/// README rather than borrowed from the crate's detector.
#[derive(Default)]
struct Oracle {
    keys: HashMap<Subject, KeyState>,
    decisions: Vec<String>,
}

/// What a window counts for: an address, or an IPv6 /64.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Addr(IpAddr),
    Net64(Ipv6Addr),
}

impl Subject {
    /// The subjects a failure of `ip` counts for.
    fn of(ip: IpAddr) -> impl Iterator<Item = Subject> {
        let net = match ip {
            IpAddr::V6(v6) => Some(Subject::Net64(Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            ))),
            IpAddr::V4(_) => None,
        };
        std::iter::once(Subject::Addr(ip)).chain(net)
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Addr(ip) => write!(f, "{ip}"),
            Subject::Net64(net) => write!(f, "{net}/64"),
        }
    }
}

#[derive(Default)]
struct KeyState {
    /// Event times inside the window, oldest first (one entry per failure).
    events: VecDeque<i64>,
    /// No failure counts before this time: a block stands.
    blocked_until: i64,
    /// The most failures this key ever had in one window.
    peak: usize,
    blocks: u32,
}

impl Oracle {
    /// Counts `weight` failures of `ip` at time `t`, for the address and
    /// for its /64; events come in time order (the generator makes sure of
    /// it).
    ///
    /// An address already blocked adds nothing to its /64; an address and
    /// its /64 reaching the threshold on the same failure with the same
    /// count block the address alone, and the /64 starts afresh.
    fn count(&mut self, rule: &str, ip: IpAddr, t: i64, weight: u32) {
        if is_allowlisted(ip) {
            return;
        }
        let mut subjects = Subject::of(ip);
        let Some(addr) = subjects.next() else {
            return;
        };
        let addr_was_blocked = self
            .keys
            .get(&addr)
            .is_some_and(|k| k.events.is_empty() && t < k.blocked_until);
        let addr_reached = self.count_for(rule, addr, t, weight);
        if addr_was_blocked {
            return;
        }
        for net in subjects {
            let net_reached = self.count_for(rule, net, t, weight);
            if net_reached.is_some() && net_reached == addr_reached {
                self.decisions.pop();
                self.keys.remove(&net);
            }
        }
    }

    /// Counts for one subject; the count when it reached the threshold.
    fn count_for(&mut self, rule: &str, subject: Subject, t: i64, weight: u32) -> Option<usize> {
        let k = self.keys.entry(subject).or_default();
        if k.events.is_empty() && t < k.blocked_until {
            return None;
        }
        while k.events.front().is_some_and(|&e| e <= t - WINDOW_MS) {
            k.events.pop_front();
        }
        let count = k.events.len() + weight as usize;
        k.peak = k.peak.max(count);
        if count >= THRESHOLD {
            let first = k.events.front().copied().unwrap_or(t);
            k.events.clear();
            k.blocked_until = t + BLOCK_FOR_MS;
            k.blocks += 1;
            self.decisions.push(format!(
                "{{\"ip\":\"{subject}\",\"rule\":\"{rule}\",\"count\":{count},\"window_secs\":{},\"first_seen\":\"{}\",\"last_seen\":\"{}\",\"expires_at\":\"{}\"}}",
                WINDOW_MS / 1000,
                iso(first),
                iso(t),
                iso(t + BLOCK_FOR_MS)
            ));
            Some(count)
        } else {
            k.events.extend(std::iter::repeat_n(t, weight as usize));
            None
        }
    }
}

fn is_allowlisted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

/// The canonical form: IPv4-mapped IPv6 is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Civil UTC date and time of `ms`: (year, month, day, hour, min, sec, ms).
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Days to civil date (the inverse of days_from_civil, by eras of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = rem / 1000;
    (
        year,
        month,
        day,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
        (rem % 1000) as u32,
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2026-03-05T06:25:01Z`, or with `.123` when there are milliseconds: the
/// form `replay --json` prints.
fn iso(ms: i64) -> String {
    let (y, mo, d, h, mi, s, frac) = civil(ms);
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    }
}

impl Gen {
    fn new(seed: u64, kind: Kind) -> Gen {
        // Mix the kind in, so that the corpora of one seed differ.
        let mut rng = Rng(seed ^ (kind as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        rng.next();
        Gen {
            seed,
            rng,
            kind,
            recs: Vec::new(),
            seq: 0,
            next_pid: 1000 + (seed % 1000) as u32,
            used_ips: HashSet::new(),
            fmt_weights: [70, 10, 12, 8],
        }
    }

    /// The next pid, as a system with `pid_max` 99,999 hands them out.
    /// sshd's sessions are keyed by host and pid: pids come back only
    /// after hours of log time (about 14 are used a second), long after
    /// the detector forgot their sessions (10 minutes idle).
    fn pid(&mut self) -> u32 {
        self.next_pid += 1 + self.rng.below(3) as u32;
        if self.next_pid > 99_999 {
            self.next_pid = 1_000 + self.next_pid % 100;
        }
        self.next_pid
    }

    fn port(&mut self) -> u16 {
        self.rng.range(1024, 65535) as u16
    }

    fn push_full(
        &mut self,
        t: i64,
        body: Body,
        counts: Option<(IpAddr, u32)>,
        attack: bool,
        failure: bool,
        ip: Option<IpAddr>,
    ) {
        self.seq += 1;
        let ip = ip.or(counts.map(|c| c.0));
        self.recs.push(Rec {
            t,
            seq: self.seq,
            body,
            counts: counts.map(|(ip, w)| (canonical(ip), w)),
            attack,
            failure,
            ip,
        });
    }

    fn syslog(
        &mut self,
        t: i64,
        program: &'static str,
        pid: Option<u32>,
        message: String,
        m: Meaning,
    ) {
        self.push_full(
            t,
            Body::Syslog {
                program,
                pid,
                message,
            },
            m.counts,
            m.attack,
            m.counts.is_some(),
            m.ip,
        );
    }

    /// An attacker rotating its source address inside one IPv6 /64, new to
    /// the corpus: `times` split among fresh addresses of it, one to
    /// `per_addr` attempts each. No address comes near the threshold; the
    /// /64 does, and is what must be blocked.
    fn rotation(&mut self, times: &[i64], per_addr: i64) -> Vec<(IpAddr, Vec<i64>)> {
        let net = match self.fresh_ip(100) {
            IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
            IpAddr::V4(_) => unreachable!("fresh_ip(100) is IPv6"),
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < times.len() {
            let ip = loop {
                let ip = IpAddr::V6(Ipv6Addr::from(net | u128::from(self.rng.next())));
                if self.used_ips.insert(ip) {
                    break ip;
                }
            };
            let n = (self.rng.range(1, per_addr) as usize).min(times.len() - i);
            out.push((ip, times[i..i + n].to_vec()));
            i += n;
        }
        out
    }

    /// A fresh public address, never handed out before; IPv6 with
    /// probability `v6_percent`.
    fn fresh_ip(&mut self, v6_percent: u64) -> IpAddr {
        loop {
            let ip = if self.rng.chance(v6_percent) {
                // Prefixes of real hosting and access networks.
                const PREFIXES: [[u16; 2]; 6] = [
                    [0x2a01, 0x04f8],
                    [0x2604, 0xa880],
                    [0x240e, 0x0390],
                    [0x2001, 0x0db8],
                    [0x2a02, 0x0c7c],
                    [0x2607, 0xf8b0],
                ];
                let p = *self.rng.pick(&PREFIXES);
                let r = self.rng.next();
                let low = self.rng.next();
                let seg = |x: u64| x as u16;
                // Half of them have a zero run (`::`), as most hosts do.
                let ip = if low.is_multiple_of(2) {
                    Ipv6Addr::new(p[0], p[1], seg(r), seg(r >> 16), 0, 0, 0, seg(low >> 8))
                } else {
                    Ipv6Addr::new(
                        p[0],
                        p[1],
                        seg(r),
                        seg(r >> 16),
                        seg(r >> 32),
                        seg(r >> 48),
                        seg(low >> 8),
                        seg(low >> 24),
                    )
                };
                IpAddr::V6(ip)
            } else {
                let x = self.rng.next() as u32;
                let a = (x >> 24) as u8;
                // Public unicast only, and never the victim range 10/8 or
                // loopback, which have their own roles.
                if a == 0 || a == 10 || a == 127 || a == 100 || a >= 224 || a == 169 || a == 172 {
                    continue;
                }
                IpAddr::V4(Ipv4Addr::from(x))
            };
            if self.used_ips.insert(ip) {
                return ip;
            }
        }
    }

    /// Sorts the lines by time, writes the log, runs the oracle over it and
    /// writes the truth and the statistics.
    fn finish(mut self, kind: Kind, lines: usize, out: &std::path::Path) -> std::io::Result<()> {
        self.recs.sort_by_key(|r| (r.t, r.seq));
        self.recs.truncate(lines);
        let log_path = out.join(format!("{}.log", kind.name()));
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&log_path)?);
        let mut oracle = Oracle::default();
        let mut last_rep = i64::MIN;
        let mut line = String::with_capacity(512);
        let mut st = Stats::default();
        let mut segment_left = 0;
        let mut segment_fmt = TimeFmt::Classic;
        for r in &self.recs {
            line.clear();
            let rep = match &r.body {
                Body::Syslog {
                    program,
                    pid,
                    message,
                } => {
                    // A host writes one format for a while (until its
                    // logging is reconfigured or sshd upgraded): segments
                    // of a few thousand lines each.
                    if segment_left == 0 {
                        segment_fmt = match self.rng.weighted(&self.fmt_weights) {
                            0 => TimeFmt::Classic,
                            1 => TimeFmt::Precise,
                            2 => TimeFmt::Rfc3339,
                            _ => TimeFmt::ShortIso,
                        };
                        segment_left = self.rng.range(2_000, 20_000);
                    }
                    segment_left -= 1;
                    let mut fmt = segment_fmt;
                    // A whole-second stamp may not go back before the
                    // previous line's milliseconds: the lines of a file come
                    // in time order, and so must the times the rules read.
                    if !fmt.precise() && r.t - r.t.rem_euclid(1000) < last_rep {
                        fmt = TimeFmt::Rfc3339;
                    }
                    st.formats[fmt as usize] += 1;
                    let rep = write_syslog_time(&mut line, r.t, fmt, &mut self.rng);
                    let _ = write!(line, " {HOST} {program}");
                    if let Some(pid) = pid {
                        let _ = write!(line, "[{pid}]");
                    }
                    let _ = write!(line, ": {message}");
                    *st.programs.entry(program).or_default() += 1;
                    rep
                }
                Body::Raw { text, rep } => {
                    line.push_str(text);
                    *rep
                }
            };
            debug_assert!(rep >= last_rep, "times must not go back");
            last_rep = rep;
            if let Some((ip, weight)) = r.counts {
                oracle.count(kind.rule(), ip, rep, weight);
                st.counted_failures += u64::from(weight);
                if is_allowlisted(ip) {
                    st.allowlisted_failures += u64::from(weight);
                }
            }
            st.lines += 1;
            st.bytes += line.len() as u64 + 1;
            st.attack_lines += u64::from(r.attack);
            st.failure_lines += u64::from(r.failure);
            if let Some(ip) = r.ip {
                st.ip_lines += 1;
                st.v6_lines += u64::from(canonical(ip).is_ipv6());
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        w.flush()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis((last_rep.max(START_MS) + 60_000) as u64);
        f.set_modified(mtime)?;
        drop(f);

        let mut truth = BufWriter::new(File::create(
            out.join(format!("{}.truth.jsonl", kind.name())),
        )?);
        for d in &oracle.decisions {
            writeln!(truth, "{d}")?;
        }
        truth.flush()?;

        let addresses = || {
            oracle
                .keys
                .iter()
                .filter(|(s, _)| matches!(s, Subject::Addr(_)))
                .map(|(_, k)| k)
        };
        let blocked: usize = addresses().filter(|k| k.blocks > 0).count();
        let blocked_nets = oracle
            .keys
            .iter()
            .filter(|(s, k)| matches!(s, Subject::Net64(_)) && k.blocks > 0)
            .count();
        let near: usize = addresses()
            .filter(|k| k.blocks == 0 && (45..THRESHOLD).contains(&k.peak))
            .count();
        let exactly_49 = addresses()
            .filter(|k| k.blocks == 0 && k.peak == THRESHOLD - 1)
            .count();
        let reblocked = addresses().filter(|k| k.blocks > 1).count();
        let mut s = String::new();
        let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
        let _ = writeln!(s, "kind {}", kind.name());
        let _ = writeln!(s, "seed {}", self.seed);
        let _ = writeln!(s, "rule {}", kind.rule());
        let _ = writeln!(s, "lines {}", st.lines);
        let _ = writeln!(s, "bytes {}", st.bytes);
        let _ = writeln!(
            s,
            "bytes_per_line {:.1}",
            st.bytes as f64 / st.lines.max(1) as f64
        );
        let _ = writeln!(s, "span_seconds {}", (last_rep - START_MS).max(0) / 1000);
        let _ = writeln!(
            s,
            "attack_lines_percent {:.1}",
            pct(st.attack_lines, st.lines)
        );
        let _ = writeln!(
            s,
            "rule_matching_lines_percent {:.1}",
            pct(st.failure_lines, st.lines)
        );
        let _ = writeln!(
            s,
            "ipv6_percent_of_lines_with_an_address {:.1}",
            pct(st.v6_lines, st.ip_lines)
        );
        let _ = writeln!(s, "counted_failures {}", st.counted_failures);
        let _ = writeln!(s, "allowlisted_failures {}", st.allowlisted_failures);
        let _ = writeln!(s, "distinct_failing_addresses {}", addresses().count());
        let _ = writeln!(s, "decisions {}", oracle.decisions.len());
        let _ = writeln!(s, "blocked_addresses {blocked}");
        let _ = writeln!(s, "blocked_ipv6_networks {blocked_nets}");
        let _ = writeln!(s, "blocked_more_than_once {reblocked}");
        let _ = writeln!(s, "unblocked_with_peak_45_to_49 {near}");
        let _ = writeln!(s, "unblocked_with_peak_exactly_49 {exactly_49}");
        if self.kind != Kind::Json && self.kind != Kind::Access {
            let _ = writeln!(
                s,
                "time_formats classic={} precise={} rfc3339={} short_iso={}",
                st.formats[0], st.formats[1], st.formats[2], st.formats[3]
            );
            let mut programs: Vec<_> = st.programs.iter().collect();
            programs.sort();
            let list: Vec<String> = programs.iter().map(|(p, n)| format!("{p}={n}")).collect();
            let _ = writeln!(s, "programs {}", list.join(" "));
        }
        std::fs::write(out.join(format!("{}.stats", kind.name())), &s)?;
        eprint!("{s}");
        Ok(())
    }
}

#[derive(Default)]
struct Stats {
    lines: u64,
    bytes: u64,
    attack_lines: u64,
    failure_lines: u64,
    ip_lines: u64,
    v6_lines: u64,
    counted_failures: u64,
    allowlisted_failures: u64,
    formats: [u64; 4],
    programs: HashMap<&'static str, u64>,
}

/// Writes the time of a syslog line in `fmt`; returns the time the rules
/// read from it (whole seconds or milliseconds).
fn write_syslog_time(out: &mut String, t: i64, fmt: TimeFmt, rng: &mut Rng) -> i64 {
    let micros = rng.below(1000);
    match fmt {
        TimeFmt::Classic => {
            let (_, mo, d, h, mi, s, _) = civil(t);
            let _ = write!(
                out,
                "{} {d:>2} {h:02}:{mi:02}:{s:02}",
                MONTHS[mo as usize - 1]
            );
            t - t.rem_euclid(1000)
        }
        TimeFmt::Precise => {
            let (_, mo, d, h, mi, s, ms) = civil(t);
            let _ = write!(
                out,
                "{} {d:02} {h:02}:{mi:02}:{s:02}.{ms:03}{micros:03}",
                MONTHS[mo as usize - 1]
            );
            t
        }
        TimeFmt::Rfc3339 => {
            // Local time one hour ahead of UTC, as in Central Europe.
            let (y, mo, d, h, mi, s, ms) = civil(t + 3_600_000);
            let _ = write!(
                out,
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}{micros:03}+01:00"
            );
            t
        }
        TimeFmt::ShortIso => {
            let (y, mo, d, h, mi, s, _) = civil(t + 3_600_000);
            let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+0100");
            t - t.rem_euclid(1000)
        }
    }
}

/// How an attacker spaces its attempts in time.
enum Pace {
    /// `n` attempts, `gap_ms` apart, with up to `jitter_ms` of noise.
    Steady { n: u32, gap_ms: i64, jitter_ms: i64 },
    /// `bursts` bursts of `per_burst` attempts `gap_ms` apart, each burst
    /// starting `pause_ms` after the previous one ended.
    Bursts {
        bursts: u32,
        per_burst: u32,
        gap_ms: i64,
        pause_ms: i64,
    },
}

impl Pace {
    fn times(&self, rng: &mut Rng, start: i64) -> Vec<i64> {
        let mut out = Vec::new();
        match *self {
            Pace::Steady {
                n,
                gap_ms,
                jitter_ms,
            } => {
                let mut t = start;
                for _ in 0..n {
                    out.push(t);
                    t += gap_ms + rng.range(0, jitter_ms);
                }
            }
            Pace::Bursts {
                bursts,
                per_burst,
                gap_ms,
                pause_ms,
            } => {
                let mut t = start;
                for _ in 0..bursts {
                    for i in 0..per_burst {
                        out.push(t);
                        if i + 1 < per_burst {
                            t += gap_ms;
                        }
                    }
                    t += pause_ms;
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// sshd
// ---------------------------------------------------------------------------

mod sshd {
    use super::*;

    const INVALID_USERS: [&str; 16] = [
        "admin", "test", "oracle", "ubuntu", "user", "guest", "postgres", "ftpuser", "pi",
        "support", "deploy", "git", "mysql", "hadoop", "ansible", "jenkins",
    ];
    const VALID_USERS: [&str; 3] = ["root", "ubuntu", "debian"];
    const PROGRAMS: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

    /// How a connection tries.
    #[derive(Copy, Clone, PartialEq, Eq)]
    enum Style {
        /// `Failed password for root`, with PAM's lines around it.
        Password,
        /// `Invalid user X`, then `Failed password for invalid user X`.
        InvalidUser,
        /// `Failed keyboard-interactive/pam for invalid user X`.
        KbdInteractive,
        /// A public key offered and rejected: only `Connection closed by
        /// authenticating user … [preauth]` (LogLevel INFO), or with
        /// `Failed publickey` lines first (VERBOSE).
        Pubkey,
        /// A user name that plants a victim's address.
        Injection,
    }

    /// One connection of `attempts` failures at `times` (the time each
    /// attempt is counted at). Returns nothing: the lines go to `g`.
    fn connection(g: &mut Gen, ip: IpAddr, times: &[i64], style: Style, program: &'static str) {
        let pid = Some(g.pid());
        let port = g.port();
        let ms = |g: &mut Gen, lo: i64, hi: i64| g.rng.range(lo, hi);
        let first = times[0];
        let last = *times.last().unwrap_or(&first);
        let user_valid = *g.rng.pick(&VALID_USERS);
        let user_invalid = *g.rng.pick(&INVALID_USERS);
        let attack = true;
        let mut line = |g: &mut Gen, t: i64, msg: String, w: u32| {
            g.syslog(t, program, pid, msg, Meaning::failures(ip, w, attack));
        };
        // Rarely, a connection is written through rsyslog's repeat folding:
        // the first failure in full, the next identical ones as one line.
        let fold = times.len() >= 3 && g.rng.chance(12);
        match style {
            Style::Password => {
                let lead = ms(g, 5, 40);
                if g.rng.chance(60) {
                    line(
                        g,
                        first - lead,
                        format!("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user_valid}"),
                        0,
                    );
                }
                let failed = format!("Failed password for {user_valid} from {ip} port {port} ssh2");
                if fold {
                    line(g, first, failed.clone(), 1);
                    let n = times.len() as u32 - 1;
                    line(
                        g,
                        last,
                        format!("message repeated {n} times: [ {failed}]"),
                        n,
                    );
                } else {
                    for &t in times {
                        line(g, t, failed.clone(), 1);
                    }
                }
                let peer = Peer {
                    ip,
                    port,
                    user: user_valid,
                    invalid: false,
                };
                close_after_failures(g, &mut line, last, &peer, times.len());
            }
            Style::InvalidUser | Style::KbdInteractive | Style::Injection => {
                let (user, method) = match style {
                    Style::Injection => ("x from 10.0.0.1 port 22 ssh2", "password"),
                    Style::KbdInteractive => (user_invalid, "keyboard-interactive/pam"),
                    _ => (user_invalid, "password"),
                };
                let announce = if style == Style::Injection {
                    format!("Invalid user x from 10.0.0.1 port 22 from {ip} port {port}")
                } else {
                    format!("Invalid user {user} from {ip} port {port}")
                };
                // The announcement is the first attempt: it counts, and the
                // first `Failed … invalid user` after it is the same attempt.
                line(g, first, announce, 1);
                let probe_only = times.len() == 1 && g.rng.chance(40);
                if !probe_only {
                    let failed = format!(
                        "Failed {method} for invalid user {user} from {ip} port {port} ssh2"
                    );
                    line(
                        g,
                        first + 1,
                        "pam_unix(sshd:auth): check pass; user unknown".to_owned(),
                        0,
                    );
                    line(
                        g,
                        first + 2,
                        format!("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip} "),
                        0,
                    );
                    let lag = ms(g, 300, 900).min(gap_after(times, 0));
                    line(g, first + 2 + lag, failed.clone(), 0);
                    let rest = &times[1..];
                    if fold && rest.len() >= 2 {
                        let n = rest.len() as u32;
                        line(
                            g,
                            *rest.last().unwrap_or(&first),
                            format!("message repeated {n} times: [ {failed}]"),
                            n,
                        );
                    } else {
                        for &t in rest {
                            line(g, t, failed.clone(), 1);
                        }
                    }
                }
                let peer = Peer {
                    ip,
                    port,
                    user,
                    invalid: true,
                };
                close_after_failures(g, &mut line, last + 3, &peer, times.len());
            }
            Style::Pubkey => {
                let verbose = g.rng.chance(30);
                if verbose {
                    let key = g.rng.base64ish(43);
                    for &t in times {
                        line(
                            g,
                            t,
                            format!("Failed publickey for {user_valid} from {ip} port {port} ssh2: ED25519 SHA256:{key}"),
                            1,
                        );
                    }
                    let t = last + ms(g, 5, 50);
                    line(
                        g,
                        t,
                        format!("Connection closed by authenticating user {user_valid} {ip} port {port} [preauth]"),
                        0,
                    );
                } else {
                    // At INFO the closing line is the only trace: it counts,
                    // once per connection.
                    line(
                        g,
                        first,
                        format!("Connection closed by authenticating user {user_valid} {ip} port {port} [preauth]"),
                        1,
                    );
                }
            }
        }
    }

    /// The time from attempt `i` to the next one (or a second).
    fn gap_after(times: &[i64], i: usize) -> i64 {
        times
            .get(i + 1)
            .map_or(1000, |&n| (n - times[i] - 3).max(1))
    }

    /// Who a connection's closing lines name.
    struct Peer<'a> {
        ip: IpAddr,
        port: u16,
        user: &'a str,
        /// The user does not exist (`invalid user` in sshd's words).
        invalid: bool,
    }

    /// What sshd writes when a connection with `n` failures ends.
    fn close_after_failures(
        g: &mut Gen,
        line: &mut impl FnMut(&mut Gen, i64, String, u32),
        t: i64,
        peer: &Peer<'_>,
        n: usize,
    ) {
        let Peer {
            ip,
            port,
            user,
            invalid,
        } = *peer;
        let who = if invalid {
            "invalid user"
        } else {
            "authenticating user"
        };
        let t = t + g.rng.range(10, 400);
        if n >= 6 {
            let inv = if invalid { "invalid user " } else { "" };
            line(
                g,
                t,
                format!("error: maximum authentication attempts exceeded for {inv}{user} from {ip} port {port} ssh2 [preauth]"),
                0,
            );
            line(
                g,
                t + 1,
                format!("Disconnecting {who} {user} {ip} port {port}: Too many authentication failures [preauth]"),
                0,
            );
        } else {
            match g.rng.below(3) {
                0 => line(
                    g,
                    t,
                    format!("Connection closed by {who} {user} {ip} port {port} [preauth]"),
                    0,
                ),
                1 => {
                    line(
                        g,
                        t,
                        format!("Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"),
                        0,
                    );
                    line(
                        g,
                        t + 1,
                        format!("Disconnected from {who} {user} {ip} port {port} [preauth]"),
                        0,
                    );
                }
                _ => line(
                    g,
                    t,
                    format!("Connection reset by {who} {user} {ip} port {port} [preauth]"),
                    0,
                ),
            }
        }
        if n >= 2 && !invalid {
            line(
                g,
                t + 2,
                format!("PAM {} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}", n - 1),
                0,
            );
        }
    }

    /// An attacker: its attempt times, split into connections of at most
    /// six attempts (sshd's MaxAuthTries), each in some style.
    fn attacker(g: &mut Gen, ip: IpAddr, times: &[i64], styles: &[Style]) {
        let program = *g.rng.pick(&PROGRAMS);
        let mut i = 0;
        while i < times.len() {
            let style = *g.rng.pick(styles);
            let max = if style == Style::Pubkey { 1 } else { 6 };
            let n = (g.rng.range(1, max) as usize).min(times.len() - i);
            // A connection's attempts must leave room for its own lines.
            connection(g, ip, &times[i..i + n], style, program);
            i += n;
        }
    }

    const ALL: [Style; 5] = [
        Style::Password,
        Style::InvalidUser,
        Style::KbdInteractive,
        Style::Pubkey,
        Style::InvalidUser,
    ];

    pub(super) fn generate(g: &mut Gen, lines: usize) {
        let span = (lines as i64 / LINE_RATE).max(600) * 1000;
        let attack_target = lines * 30 / 100;
        let v6 = 20;
        // Attack campaigns at random times until 30 % of the lines.
        while g.recs.len() < attack_target {
            let start = START_MS + g.rng.range(0, span - 1);
            match g.rng.weighted(&[30, 8, 8, 16, 14, 5, 4, 4, 3]) {
                0 => {
                    // Fast brute force: well above the threshold, for
                    // 2-15 minutes (blocked, and again after 15 minutes).
                    let ip = g.fresh_ip(v6);
                    let minutes = g.rng.range(2, 15);
                    let gap = g.rng.range(400, 1000);
                    let n = (minutes * 60_000 / gap) as u32;
                    let times = Pace::Steady {
                        n,
                        gap_ms: gap,
                        jitter_ms: 200,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &ALL);
                }
                1 => {
                    // Just below: bursts of exactly 49 attempts a second
                    // apart, 61 s of silence between bursts. Counting lines
                    // instead of attempts would block it.
                    let ip = g.fresh_ip(v6);
                    let times = Pace::Bursts {
                        bursts: g.rng.range(2, 6) as u32,
                        per_burst: 49,
                        gap_ms: 1000,
                        pause_ms: 61_000 + g.rng.range(0, 5_000),
                    }
                    .times(&mut g.rng, start);
                    attacker(
                        g,
                        ip,
                        &times,
                        &[Style::InvalidUser, Style::Password, Style::KbdInteractive],
                    );
                }
                2 => {
                    // Just above: 50 attempts in 49 s, once.
                    let ip = g.fresh_ip(v6);
                    let times = Pace::Steady {
                        n: 50,
                        gap_ms: 1000,
                        jitter_ms: 0,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &[Style::InvalidUser, Style::Password]);
                }
                3 => {
                    // Slow: one attempt every 1.3 to 5 s for up to an hour.
                    let ip = g.fresh_ip(v6);
                    let gap = g.rng.range(1300, 5000);
                    let n = (g.rng.range(10, 60) * 60_000 / gap) as u32;
                    let times = Pace::Steady {
                        n,
                        gap_ms: gap,
                        jitter_ms: 0,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &ALL);
                }
                4 => {
                    // A scan or password spray: many addresses, one to three
                    // attempts each, spread over some minutes.
                    let hosts = g.rng.range(20, 200);
                    for _ in 0..hosts {
                        let ip = g.fresh_ip(v6);
                        let at = start + g.rng.range(0, 600_000);
                        let n = g.rng.range(1, 3) as u32;
                        let times = Pace::Steady {
                            n,
                            gap_ms: 2000,
                            jitter_ms: 1000,
                        }
                        .times(&mut g.rng, at);
                        attacker(g, ip, &times, &ALL);
                    }
                }
                5 => {
                    // Public-key probes from one address: each connection
                    // leaves only its closing line, which counts.
                    let ip = g.fresh_ip(v6);
                    let times = Pace::Steady {
                        n: g.rng.range(20, 120) as u32,
                        gap_ms: 700,
                        jitter_ms: 600,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &[Style::Pubkey]);
                }
                6 => {
                    // User names that plant 10.0.0.1: only the real client
                    // may be blocked.
                    let ip = g.fresh_ip(v6);
                    let times = Pace::Steady {
                        n: g.rng.range(30, 150) as u32,
                        gap_ms: 600,
                        jitter_ms: 300,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &[Style::Injection]);
                }
                7 => {
                    // Rotating addresses inside one /64.
                    let times = Pace::Steady {
                        n: g.rng.range(60, 200) as u32,
                        gap_ms: 500,
                        jitter_ms: 300,
                    }
                    .times(&mut g.rng, start);
                    for (ip, times) in g.rotation(&times, 4) {
                        attacker(g, ip, &times, &ALL);
                    }
                }
                _ => {
                    // A local script failing from loopback: counted,
                    // never blocked.
                    let ip = if g.rng.chance(70) {
                        IpAddr::V4(Ipv4Addr::LOCALHOST)
                    } else {
                        IpAddr::V6(Ipv6Addr::LOCALHOST)
                    };
                    let times = Pace::Steady {
                        n: g.rng.range(60, 200) as u32,
                        gap_ms: 500,
                        jitter_ms: 100,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &[Style::Password]);
                }
            }
        }
        noise(g, lines, span);
    }

    /// Everything else an auth.log holds, until `lines`.
    fn noise(g: &mut Gen, lines: usize, span: i64) {
        let office: Vec<IpAddr> = (0..12).map(|_| g.fresh_ip(20)).collect();
        let mut session_no = 100u32;
        while g.recs.len() < lines {
            let t = START_MS + g.rng.range(0, span - 1);
            let episode = g.rng.weighted(&[20, 6, 8, 2, 40, 4]);
            match episode {
                0 => {
                    let pid = Some(g.pid());
                    let cmd = *g.rng.pick(&[
                        "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
                        "cd / && run-parts --report /etc/cron.hourly",
                        "/usr/local/bin/backup.sh --incremental",
                        "/usr/lib/php/sessionclean",
                    ]);
                    g.syslog(
                        t,
                        "CRON",
                        pid,
                        "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
                            .into(),
                        Meaning::NOISE,
                    );
                    g.syslog(
                        t + 1,
                        "CRON",
                        pid,
                        format!("(root) CMD ({cmd})"),
                        Meaning::NOISE,
                    );
                    let end = t + g.rng.range(50, 5000);
                    g.syslog(
                        end,
                        "CRON",
                        pid,
                        "pam_unix(cron:session): session closed for user root".into(),
                        Meaning::NOISE,
                    );
                }
                1 => {
                    let pid = Some(g.pid());
                    let who = *g.rng.pick(&["alice", "bob", "deploy"]);
                    let cmd = *g.rng.pick(&[
                        "/usr/bin/systemctl restart nginx.service",
                        "/usr/bin/journalctl -u authwatch --since today",
                        "/usr/bin/apt-get upgrade -y",
                    ]);
                    g.syslog(
                        t,
                        "sudo",
                        None,
                        format!(
                            "   {who} : TTY=pts/0 ; PWD=/home/{who} ; USER=root ; COMMAND={cmd}"
                        ),
                        Meaning::NOISE,
                    );
                    g.syslog(t + 1, "sudo", pid, format!("pam_unix(sudo:session): session opened for user root(uid=0) by {who}(uid=1000)"), Meaning::NOISE);
                    let end = t + g.rng.range(100, 20_000);
                    g.syslog(
                        end,
                        "sudo",
                        pid,
                        "pam_unix(sudo:session): session closed for user root".into(),
                        Meaning::NOISE,
                    );
                }
                2 | 3 => {
                    // An ordinary login; with 3, after one mistyped password,
                    // which counts (one failure is far from any block).
                    let ip = *g.rng.pick(&office);
                    let program = *g.rng.pick(&PROGRAMS[..2]);
                    let pid = Some(g.pid());
                    let port = g.port();
                    let who = *g.rng.pick(&["alice", "bob", "deploy"]);
                    let mut t = t;
                    if episode == 3 {
                        g.syslog(
                            t,
                            program,
                            pid,
                            format!("Failed password for {who} from {ip} port {port} ssh2"),
                            Meaning::failures(ip, 1, false),
                        );
                        t += g.rng.range(1000, 4000);
                        g.syslog(
                            t,
                            program,
                            pid,
                            format!("Accepted password for {who} from {ip} port {port} ssh2"),
                            Meaning::about(ip),
                        );
                    } else {
                        let key = g.rng.base64ish(43);
                        g.syslog(t, program, pid, format!("Accepted publickey for {who} from {ip} port {port} ssh2: ED25519 SHA256:{key}"), Meaning::about(ip));
                    }
                    session_no += 1;
                    let logind = Some(700);
                    g.syslog(t + 3, program, pid, format!("pam_unix(sshd:session): session opened for user {who}(uid=1000) by (uid=0)"), Meaning::NOISE);
                    g.syslog(
                        t + 9,
                        "systemd-logind",
                        logind,
                        format!("New session {session_no} of user {who}."),
                        Meaning::NOISE,
                    );
                    let end = t + g.rng.range(5_000, 3_600_000);
                    g.syslog(
                        end,
                        program,
                        pid,
                        format!(
                            "Received disconnect from {ip} port {port}:11: disconnected by user"
                        ),
                        Meaning::about(ip),
                    );
                    g.syslog(
                        end + 1,
                        program,
                        pid,
                        format!("Disconnected from user {who} {ip} port {port}"),
                        Meaning::about(ip),
                    );
                    g.syslog(
                        end + 2,
                        program,
                        pid,
                        format!("pam_unix(sshd:session): session closed for user {who}"),
                        Meaning::NOISE,
                    );
                    g.syslog(
                        end + 5,
                        "systemd-logind",
                        logind,
                        format!("Session {session_no} logged out. Waiting for processes to exit."),
                        Meaning::NOISE,
                    );
                    g.syslog(
                        end + 7,
                        "systemd-logind",
                        logind,
                        format!("Removed session {session_no}."),
                        Meaning::NOISE,
                    );
                }
                4 => {
                    // Background noise from the internet: nothing that counts.
                    let ip = g.fresh_ip(23);
                    let program = *g.rng.pick(&PROGRAMS);
                    let pid = Some(g.pid());
                    let port = g.port();
                    let msg = match g.rng.weighted(&[30, 15, 15, 15, 5, 5, 5]) {
                        0 => format!("Connection closed by {ip} port {port} [preauth]"),
                        1 => format!("Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"),
                        2 => "error: kex_exchange_identification: Connection closed by remote host".to_owned(),
                        3 => format!("Connection reset by {ip} port {port} [preauth]"),
                        4 => format!("Unable to negotiate with {ip} port {port}: no matching key exchange method found. Their offer: diffie-hellman-group14-sha1,diffie-hellman-group1-sha1 [preauth]"),
                        5 => format!("banner exchange: Connection from {ip} port {port}: invalid format"),
                        _ => format!("Timeout before authentication for {ip} port {port}"),
                    };
                    g.syslog(t, program, pid, msg, Meaning::about(ip));
                }
                _ => {
                    let msg = *g.rng.pick(&[
                        "Started session-c1.scope - Session c1 of User root.",
                        "Starting logrotate.service - Rotate log files...",
                        "Finished logrotate.service - Rotate log files.",
                        "pam_unix(systemd-user:session): session opened for user alice(uid=1000) by (uid=0)",
                    ]);
                    g.syslog(t, "systemd", Some(1), msg.to_owned(), Meaning::NOISE);
                }
            }
        }
    }

    /// `distinct`: N addresses failing once each within 59 s.
    pub(super) fn distinct(g: &mut Gen, lines: usize) {
        let per_ms = 59_000.0 / lines.max(1) as f64;
        for i in 0..lines {
            let t = START_MS + (i as f64 * per_ms) as i64;
            let ip = g.fresh_ip(20);
            let pid = Some(g.pid());
            let port = g.port();
            let program = *g.rng.pick(&PROGRAMS);
            let msg = match g.rng.below(3) {
                0 => format!("Failed password for root from {ip} port {port} ssh2"),
                1 => format!("Invalid user admin from {ip} port {port}"),
                _ => format!(
                    "Connection closed by authenticating user root {ip} port {port} [preauth]"
                ),
            };
            g.syslog(t, program, pid, msg, Meaning::failures(ip, 1, true));
        }
    }
}

// ---------------------------------------------------------------------------
// JSON service logs
// ---------------------------------------------------------------------------

mod json {
    use super::*;

    /// The library whose shape a line has.
    #[derive(Copy, Clone)]
    enum Shape {
        /// Python, PyJWT, structlog's JSONRenderer.
        Structlog,
        /// Node, jsonwebtoken, pino (`time` in epoch ms, `req.remoteAddress`).
        Pino,
        /// Node, express-jwt, winston (`ip` as `::ffff:a.b.c.d`).
        Winston,
        /// Go, golang-jwt v5, zap (`ts` in epoch seconds, `remote_addr` with port).
        Zap,
        /// Go, golang-jwt v5, log/slog (nanosecond RFC 3339).
        Slog,
        /// Java, jjwt, logstash-logback-encoder (`@timestamp` with an offset).
        Logback,
        /// Java, Spring Security / nimbus-jose-jwt.
        Spring,
        /// Rust, jsonwebtoken, tracing-subscriber's JSON format.
        Tracing,
    }

    const SHAPES: [Shape; 8] = [
        Shape::Structlog,
        Shape::Pino,
        Shape::Winston,
        Shape::Zap,
        Shape::Slog,
        Shape::Logback,
        Shape::Spring,
        Shape::Tracing,
    ];

    const PATHS: [&str; 8] = [
        "/api/v1/orders",
        "/api/v1/me",
        "/api/v1/invoices/2024-0117",
        "/api/v2/search?q=blue+widgets&page=2",
        "/healthz",
        "/api/v1/cart/items",
        "/oauth/token",
        "/api/v1/users/48213/preferences",
    ];

    const AGENTS: [&str; 5] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "okhttp/4.12.0",
        "python-requests/2.31.0",
        "MyApp/3.2.1 (iPhone; iOS 17.4)",
        "Go-http-client/1.1",
    ];

    /// What a line says happened.
    enum Event<'a> {
        /// A request served.
        Ok { status: u16, ms: u32 },
        /// Another authentication failure: not a signature failure.
        OtherAuth(&'a str),
        /// A JWT signature failure.
        Jwt,
    }

    /// How an attacker's line is dressed.
    #[derive(Copy, Clone, PartialEq, Eq)]
    enum Trick {
        None,
        /// The IP field twice: ambiguous, counts nothing.
        Duplicate,
        /// A victim's `client_ip` inside a logged body: the real one counts.
        Nested,
        /// A reflected string with escaped quotes and a planted field.
        Reflected,
    }

    fn rfc3339_utc(t: i64, sub: u64, digits: usize) -> String {
        let (y, mo, d, h, mi, s, ms) = civil(t);
        match digits {
            3 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"),
            6 => format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}{:03}Z",
                sub % 1000
            ),
            _ => format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}{:06}Z",
                sub % 1_000_000
            ),
        }
    }

    fn v4_mapped(ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => format!("::ffff:{v4}"),
            v6 => v6.to_string(),
        }
    }

    fn socket(ip: IpAddr, port: u16) -> String {
        match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        }
    }

    /// One line of `shape` at time `t` from `ip`.
    fn line(g: &mut Gen, shape: Shape, t: i64, ip: IpAddr, ev: &Event<'_>, trick: Trick) -> String {
        let sub = g.rng.next();
        let rid = g.rng.uuid();
        let path = *g.rng.pick(&PATHS);
        let agent = *g.rng.pick(&AGENTS);
        let port = g.port();
        let method = *g.rng.pick(&["GET", "GET", "POST", "PUT"]);
        // Each library's own wording of a signature failure.
        let jwt_msg = match shape {
            Shape::Structlog => "Signature verification failed",
            Shape::Pino | Shape::Winston => "invalid signature",
            Shape::Zap | Shape::Slog => "token signature is invalid: signature is invalid",
            Shape::Logback => "JWT signature does not match locally computed signature. JWT validity cannot be asserted and should not be trusted.",
            Shape::Spring => "An error occurred while attempting to decode the Jwt: Signed JWT rejected: Invalid signature",
            Shape::Tracing => "InvalidSignature",
        };
        let err = match ev {
            Event::Jwt if trick == Trick::Reflected => {
                format!("{jwt_msg}: kid \\\"x\\\\n\\\",\\\"client_ip\\\":\\\"10.0.0.1\\\"")
            }
            Event::Jwt => jwt_msg.to_owned(),
            Event::OtherAuth(m) => (*m).to_owned(),
            Event::Ok { .. } => String::new(),
        };
        let (status, latency) = match ev {
            Event::Ok { status, ms } => (*status, *ms),
            _ => (401, g.rng.range(1, 9) as u32),
        };
        let failed = !matches!(ev, Event::Ok { .. });
        // Extra fields an attacker's line may carry.
        let extra_ip = match trick {
            Trick::Duplicate => ",\"client_ip\":\"10.0.0.1\"".to_owned(),
            _ => String::new(),
        };
        let body = match trick {
            Trick::Nested => {
                ",\"body\":{\"client_ip\":\"10.0.0.1\",\"grant_type\":\"refresh_token\"}".to_owned()
            }
            _ => String::new(),
        };
        match shape {
            Shape::Structlog => {
                let ts = rfc3339_utc(t, sub, 6);
                if failed {
                    format!("{{\"event\": \"token rejected\", \"error\": \"{err}\", \"client_ip\": \"{ip}\"{}, \"method\": \"{method}\", \"path\": \"{path}\", \"request_id\": \"{rid}\", \"user_agent\": \"{agent}\", \"level\": \"warning\", \"logger\": \"api.auth\", \"timestamp\": \"{ts}\"}}", extra_ip.replace(":\"", ": \""))
                } else {
                    format!("{{\"event\": \"request finished\", \"method\": \"{method}\", \"path\": \"{path}\", \"status\": {status}, \"duration_ms\": {latency}.{}, \"client_ip\": \"{ip}\", \"request_id\": \"{rid}\", \"level\": \"info\", \"timestamp\": \"{ts}\"}}", sub % 10)
                }
            }
            Shape::Pino => {
                let level = if failed { 40 } else { 30 };
                let remote = v4_mapped(ip);
                let head = format!("{{\"level\":{level},\"time\":{t},\"pid\":4242,\"hostname\":\"api-1\",\"req\":{{\"id\":{},\"method\":\"{method}\",\"url\":\"{path}\",\"remoteAddress\":\"{remote}\",\"remotePort\":{port}}}", sub % 100_000);
                if failed {
                    format!("{head}{body},\"err\":{{\"type\":\"JsonWebTokenError\",\"message\":\"{err}\",\"stack\":\"JsonWebTokenError: {err}\\n    at /app/node_modules/jsonwebtoken/verify.js:171:19\"}},\"msg\":\"{err}\"}}")
                } else {
                    format!("{head},\"res\":{{\"statusCode\":{status}}},\"responseTime\":{latency},\"msg\":\"request completed\"}}")
                }
            }
            Shape::Winston => {
                let ts = rfc3339_utc(t, sub, 3);
                let client = v4_mapped(ip);
                if failed {
                    format!("{{\"level\":\"warn\",\"message\":\"UnauthorizedError: {err}\",\"ip\":\"{client}\",\"method\":\"{method}\",\"url\":\"{path}\",\"userAgent\":\"{agent}\",\"requestId\":\"{rid}\",\"timestamp\":\"{ts}\"}}")
                } else {
                    format!("{{\"level\":\"info\",\"message\":\"{method} {path} {status} {latency}ms\",\"ip\":\"{client}\",\"method\":\"{method}\",\"url\":\"{path}\",\"status\":{status},\"userAgent\":\"{agent}\",\"timestamp\":\"{ts}\"}}")
                }
            }
            Shape::Zap => {
                let ts = format!("{}.{:03}{:03}", t / 1000, t % 1000, sub % 1000);
                let remote = socket(ip, port);
                if failed {
                    format!("{{\"level\":\"warn\",\"ts\":{ts},\"caller\":\"auth/middleware.go:42\",\"msg\":\"jwt rejected\",\"error\":\"{err}\",\"remote_addr\":\"{remote}\",\"method\":\"{method}\",\"path\":\"{path}\",\"request_id\":\"{rid}\",\"user_agent\":\"{agent}\"}}")
                } else {
                    format!("{{\"level\":\"info\",\"ts\":{ts},\"caller\":\"http/log.go:88\",\"msg\":\"request\",\"method\":\"{method}\",\"path\":\"{path}\",\"status\":{status},\"latency\":\"{latency}.{}ms\",\"remote_addr\":\"{remote}\",\"request_id\":\"{rid}\",\"user_agent\":\"{agent}\"}}", sub % 1000)
                }
            }
            Shape::Slog => {
                let ts = rfc3339_utc(t, sub, 9);
                let remote = socket(ip, port);
                if failed {
                    format!("{{\"time\":\"{ts}\",\"level\":\"WARN\",\"msg\":\"authentication failed\",\"err\":\"{err}\",\"remote_addr\":\"{remote}\",\"method\":\"{method}\",\"path\":\"{path}\",\"request_id\":\"{rid}\",\"user_agent\":\"{agent}\"}}")
                } else {
                    format!("{{\"time\":\"{ts}\",\"level\":\"INFO\",\"msg\":\"request served\",\"method\":\"{method}\",\"path\":\"{path}\",\"status\":{status},\"duration\":{}{latency},\"remote_addr\":\"{remote}\",\"request_id\":\"{rid}\",\"user_agent\":\"{agent}\"}}", sub % 9 + 1)
                }
            }
            Shape::Logback => {
                let (y, mo, d, h, mi, s, ms) = civil(t + 3_600_000);
                let ts = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}+01:00");
                let thread = sub % 200;
                if failed {
                    format!("{{\"@timestamp\":\"{ts}\",\"@version\":\"1\",\"message\":\"{err}\",\"logger_name\":\"com.example.security.JwtFilter\",\"thread_name\":\"http-nio-8080-exec-{thread}\",\"level\":\"WARN\",\"level_value\":30000,\"clientIp\":\"{ip}\",\"requestId\":\"{rid}\"}}")
                } else {
                    format!("{{\"@timestamp\":\"{ts}\",\"@version\":\"1\",\"message\":\"Completed {status} OK for {method} {path}\",\"logger_name\":\"org.springframework.web.servlet.DispatcherServlet\",\"thread_name\":\"http-nio-8080-exec-{thread}\",\"level\":\"INFO\",\"level_value\":20000,\"clientIp\":\"{ip}\",\"requestId\":\"{rid}\"}}")
                }
            }
            Shape::Spring => {
                let ts = rfc3339_utc(t, sub, 3);
                if failed {
                    format!("{{\"@timestamp\":\"{ts}\",\"level\":\"DEBUG\",\"logger_name\":\"o.s.s.o.s.r.a.JwtAuthenticationProvider\",\"message\":\"Failed to authenticate since the JWT was invalid\",\"error\":\"{err}\",\"remote_addr\":\"{ip}\",\"thread_name\":\"http-nio-8443-exec-{}\"}}", sub % 200)
                } else {
                    format!("{{\"@timestamp\":\"{ts}\",\"level\":\"INFO\",\"logger_name\":\"o.s.web.servlet.DispatcherServlet\",\"message\":\"Completed {status} for {method} \\\"{path}\\\"\",\"remote_addr\":\"{ip}\",\"thread_name\":\"http-nio-8443-exec-{}\"}}", sub % 200)
                }
            }
            Shape::Tracing => {
                let ts = rfc3339_utc(t, sub, 6);
                if failed {
                    format!("{{\"timestamp\":\"{ts}\",\"level\":\"WARN\",\"fields\":{{\"message\":\"jwt rejected\",\"error\":\"{err}\",\"client_ip\":\"{ip}\"}},\"target\":\"api::auth\",\"span\":{{\"method\":\"{method}\",\"path\":\"{path}\",\"request_id\":\"{rid}\",\"name\":\"request\"}}}}")
                } else {
                    format!("{{\"timestamp\":\"{ts}\",\"level\":\"INFO\",\"fields\":{{\"message\":\"finished processing request\",\"status\":{status},\"latency_ms\":{latency},\"client_ip\":\"{ip}\"}},\"target\":\"tower_http::trace::on_response\",\"span\":{{\"method\":\"{method}\",\"path\":\"{path}\",\"request_id\":\"{rid}\",\"name\":\"request\"}}}}")
                }
            }
        }
    }

    /// Pushes one line; counts it when it is a JWT failure without tricks
    /// that make it ambiguous.
    fn emit(
        g: &mut Gen,
        shape: Shape,
        t: i64,
        ip: IpAddr,
        ev: Event<'_>,
        trick: Trick,
        attack: bool,
    ) {
        let jwt = matches!(ev, Event::Jwt);
        let text = line(g, shape, t, ip, &ev, trick);
        let counts = (jwt && trick != Trick::Duplicate).then_some((ip, 1));
        g.push_full(t, Body::Raw { text, rep: t }, counts, attack, jwt, Some(ip));
    }

    fn attacker(g: &mut Gen, ip: IpAddr, times: &[i64], tricks: &[Trick]) {
        // One service per attacker: the shape stays the same.
        let shape = *g.rng.pick(&SHAPES);
        for &t in times {
            let trick = *g.rng.pick(tricks);
            // Each trick where the shape can carry it; elsewhere the line
            // is a plain one.
            let trick = match (trick, shape) {
                // (Only where `client_ip` is the real field: elsewhere a
                // planted `client_ip` would outrank the real field, which
                // is the rule's documented choice, not an ambiguity.)
                (Trick::Duplicate, Shape::Structlog) => trick,
                (Trick::Nested, Shape::Pino) => trick,
                (Trick::Reflected, _) => trick,
                _ => Trick::None,
            };
            emit(g, shape, t, ip, Event::Jwt, trick, true);
        }
    }

    pub(super) fn generate(g: &mut Gen, lines: usize) {
        let span = (lines as i64 / LINE_RATE).max(600) * 1000;
        let jwt_target = lines / 10;
        let v6 = 20;
        while g.recs.len() < jwt_target {
            let start = START_MS + g.rng.range(0, span - 1);
            let plain = [Trick::None];
            match g.rng.weighted(&[30, 10, 10, 15, 15, 8, 4, 4]) {
                0 => {
                    // A forger replaying tampered tokens fast: blocked.
                    let ip = g.fresh_ip(v6);
                    let gap = g.rng.range(100, 1000);
                    let n = (g.rng.range(1, 10) * 60_000 / gap) as u32;
                    let times = Pace::Steady {
                        n,
                        gap_ms: gap,
                        jitter_ms: 100,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &plain);
                }
                1 => {
                    // Just below: 49 in 48 s, 61 s of silence, again.
                    let ip = g.fresh_ip(v6);
                    let times = Pace::Bursts {
                        bursts: g.rng.range(2, 8) as u32,
                        per_burst: 49,
                        gap_ms: 1000,
                        pause_ms: 61_000 + g.rng.range(0, 3000),
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &plain);
                }
                2 => {
                    // Just above: exactly 50 in 49 s.
                    let ip = g.fresh_ip(v6);
                    let times = Pace::Steady {
                        n: 50,
                        gap_ms: 1000,
                        jitter_ms: 0,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &plain);
                }
                3 => {
                    // Slow: one every 1.3 to 5 s.
                    let ip = g.fresh_ip(v6);
                    let gap = g.rng.range(1300, 5000);
                    let n = (g.rng.range(10, 60) * 60_000 / gap) as u32;
                    let times = Pace::Steady {
                        n,
                        gap_ms: gap,
                        jitter_ms: 0,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &plain);
                }
                4 => {
                    // Many addresses, a few forged tokens each.
                    for _ in 0..g.rng.range(20, 200) {
                        let ip = g.fresh_ip(v6);
                        let at = start + g.rng.range(0, 600_000);
                        let n = g.rng.range(1, 5) as u32;
                        let times = Pace::Steady {
                            n,
                            gap_ms: 1500,
                            jitter_ms: 1500,
                        }
                        .times(&mut g.rng, at);
                        attacker(g, ip, &times, &plain);
                    }
                }
                5 => {
                    // Tricks: duplicated IP fields, planted nested and
                    // reflected addresses. Only the real client may count.
                    let ip = g.fresh_ip(v6);
                    let n = g.rng.range(40, 200) as u32;
                    let times = Pace::Steady {
                        n,
                        gap_ms: 500,
                        jitter_ms: 500,
                    }
                    .times(&mut g.rng, start);
                    attacker(
                        g,
                        ip,
                        &times,
                        &[
                            Trick::Duplicate,
                            Trick::Nested,
                            Trick::Reflected,
                            Trick::None,
                        ],
                    );
                }
                6 => {
                    // Rotating addresses inside one /64.
                    let times = Pace::Steady {
                        n: g.rng.range(60, 300) as u32,
                        gap_ms: 300,
                        jitter_ms: 300,
                    }
                    .times(&mut g.rng, start);
                    for (ip, times) in g.rotation(&times, 5) {
                        attacker(g, ip, &times, &plain);
                    }
                }
                _ => {
                    // A misconfigured local client: allowlisted.
                    let ip = if g.rng.chance(70) {
                        IpAddr::V4(Ipv4Addr::LOCALHOST)
                    } else {
                        IpAddr::V6(Ipv6Addr::LOCALHOST)
                    };
                    let n = g.rng.range(60, 300) as u32;
                    let times = Pace::Steady {
                        n,
                        gap_ms: 300,
                        jitter_ms: 100,
                    }
                    .times(&mut g.rng, start);
                    attacker(g, ip, &times, &plain);
                }
            }
        }
        // Ordinary traffic: a few hundred clients, and other auth failures
        // that are not signature failures.
        let clients: Vec<IpAddr> = (0..400).map(|_| g.fresh_ip(v6)).collect();
        while g.recs.len() < lines {
            let t = START_MS + g.rng.range(0, span - 1);
            let ip = *g.rng.pick(&clients);
            let shape = *g.rng.pick(&SHAPES);
            let ev = match g.rng.weighted(&[80, 6, 5, 3, 3, 3]) {
                0 => Event::Ok {
                    status: 200,
                    ms: g.rng.range(1, 300) as u32,
                },
                1 => Event::Ok {
                    status: 304,
                    ms: g.rng.range(1, 20) as u32,
                },
                2 => Event::Ok {
                    status: 404,
                    ms: g.rng.range(1, 20) as u32,
                },
                3 => Event::OtherAuth("Signature has expired"),
                4 => Event::OtherAuth("token has invalid claims: token is expired"),
                _ => Event::OtherAuth("missing bearer token"),
            };
            emit(g, shape, t, ip, ev, Trick::None, false);
        }
    }
}

// ---------------------------------------------------------------------------
// nginx access logs
// ---------------------------------------------------------------------------

mod access {
    use super::*;

    fn clf_time(t: i64) -> (String, i64) {
        // nginx writes local time with its offset; here one hour east.
        let (y, mo, d, h, mi, s, _) = civil(t + 3_600_000);
        (
            format!(
                "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} +0100",
                MONTHS[mo as usize - 1]
            ),
            t - t.rem_euclid(1000),
        )
    }

    const AGENTS: [&str; 5] = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
    ];

    const PATHS: [&str; 6] = [
        "/",
        "/api/v1/me",
        "/static/app.8f2c1e.js",
        "/api/v1/orders?page=3",
        "/images/logo.svg",
        "/login",
    ];

    /// One request as the access log shows it.
    struct Request<'a> {
        user: &'a str,
        line: &'a str,
        status: u16,
        agent: &'a str,
    }

    fn emit(g: &mut Gen, t: i64, ip: IpAddr, r: &Request<'_>, attack: bool) {
        let Request {
            user,
            line: req,
            status,
            agent,
        } = *r;
        let (ts, rep) = clf_time(t);
        let bytes = if status == 304 {
            0
        } else {
            g.rng.range(45, 40_000)
        };
        let referer = if g.rng.chance(40) {
            "https://shop.example.com/"
        } else {
            "-"
        };
        let text =
            format!("{ip} - {user} [{ts}] \"{req}\" {status} {bytes} \"{referer}\" \"{agent}\"");
        let counts = (status == 401).then_some((ip, 1));
        g.push_full(
            t,
            Body::Raw { text, rep },
            counts,
            attack,
            status == 401,
            Some(ip),
        );
    }

    pub(super) fn generate(g: &mut Gen, lines: usize) {
        let span = (lines as i64 / LINE_RATE).max(600) * 1000;
        let target = lines / 10;
        let v6 = 20;
        while g.recs.len() < target {
            let start = START_MS + g.rng.range(0, span - 1);
            let (ip, times, injected) = match g.rng.weighted(&[30, 10, 10, 15, 15, 5, 4, 4]) {
                0 => {
                    let gap = g.rng.range(100, 1000);
                    let n = (g.rng.range(1, 10) * 60_000 / gap) as u32;
                    (
                        g.fresh_ip(v6),
                        Pace::Steady {
                            n,
                            gap_ms: gap,
                            jitter_ms: 100,
                        }
                        .times(&mut g.rng, start),
                        false,
                    )
                }
                1 => {
                    let p = Pace::Bursts {
                        bursts: g.rng.range(2, 8) as u32,
                        per_burst: 49,
                        gap_ms: 1000,
                        pause_ms: 62_000,
                    };
                    (g.fresh_ip(v6), p.times(&mut g.rng, start), false)
                }
                2 => (
                    g.fresh_ip(v6),
                    Pace::Steady {
                        n: 50,
                        gap_ms: 1000,
                        jitter_ms: 0,
                    }
                    .times(&mut g.rng, start),
                    false,
                ),
                3 => {
                    let gap = g.rng.range(1300, 5000);
                    let n = (g.rng.range(10, 60) * 60_000 / gap) as u32;
                    (
                        g.fresh_ip(v6),
                        Pace::Steady {
                            n,
                            gap_ms: gap,
                            jitter_ms: 0,
                        }
                        .times(&mut g.rng, start),
                        false,
                    )
                }
                4 => {
                    for _ in 0..g.rng.range(20, 200) {
                        let ip = g.fresh_ip(v6);
                        let at = start + g.rng.range(0, 600_000);
                        let n = g.rng.range(1, 5) as u32;
                        let times = Pace::Steady {
                            n,
                            gap_ms: 1500,
                            jitter_ms: 1500,
                        }
                        .times(&mut g.rng, at);
                        for t in times {
                            let r = Request {
                                user: "admin",
                                line: "POST /login HTTP/1.1",
                                status: 401,
                                agent: "python-requests/2.31.0",
                            };
                            emit(g, t, ip, &r, true);
                        }
                    }
                    continue;
                }
                5 => {
                    let n = g.rng.range(40, 200) as u32;
                    (
                        g.fresh_ip(v6),
                        Pace::Steady {
                            n,
                            gap_ms: 500,
                            jitter_ms: 500,
                        }
                        .times(&mut g.rng, start),
                        true,
                    )
                }
                6 => {
                    // Rotating addresses inside one /64.
                    let times = Pace::Steady {
                        n: g.rng.range(60, 300) as u32,
                        gap_ms: 300,
                        jitter_ms: 300,
                    }
                    .times(&mut g.rng, start);
                    for (ip, times) in g.rotation(&times, 5) {
                        for t in times {
                            let r = Request {
                                user: "-",
                                line: "GET /api/v1/me HTTP/1.1",
                                status: 401,
                                agent: "Go-http-client/1.1",
                            };
                            emit(g, t, ip, &r, true);
                        }
                    }
                    continue;
                }
                _ => {
                    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
                    let n = g.rng.range(60, 300) as u32;
                    (
                        ip,
                        Pace::Steady {
                            n,
                            gap_ms: 300,
                            jitter_ms: 100,
                        }
                        .times(&mut g.rng, start),
                        false,
                    )
                }
            };
            let user = *g.rng.pick(&["-", "admin", "root", "api"]);
            for t in times {
                let agent = if injected {
                    // A user agent that imitates a whole 401 line of a victim
                    // (nginx escapes the client's quotes as \x22).
                    "10.0.0.1 - - [05/Mar/2026:07:00:00 +0100] \\x22GET / HTTP/1.1\\x22 401 45"
                } else {
                    "python-requests/2.31.0"
                };
                let r = Request {
                    user,
                    line: "GET /api/v1/me HTTP/1.1",
                    status: 401,
                    agent,
                };
                emit(g, t, ip, &r, true);
            }
        }
        let clients: Vec<IpAddr> = (0..500).map(|_| g.fresh_ip(v6)).collect();
        while g.recs.len() < lines {
            let t = START_MS + g.rng.range(0, span - 1);
            let ip = *g.rng.pick(&clients);
            let status = [200, 200, 200, 200, 200, 304, 404, 302, 401][g.rng.below(9) as usize];
            let path = *g.rng.pick(&PATHS);
            let method = if path == "/login" { "POST" } else { "GET" };
            let req = format!("{method} {path} HTTP/1.1");
            let agent = *g.rng.pick(&AGENTS);
            let r = Request {
                user: "-",
                line: &req,
                status,
                agent,
            };
            emit(g, t, ip, &r, false);
        }
    }
}
