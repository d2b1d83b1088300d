//! Limits under hostile input, against the real binary: a 100 MB line, JSON
//! nested 100 000 deep, a million distinct addresses, and a Redis password
//! that must never reach the logs. SECURITY.md promises each of these.
//!
//! This is its own test binary (not a module of `tests/it`) because it
//! measures the peak memory of the processes it starts, and runs a few
//! heavy ones that are better kept apart from the integration stories.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use authwatch::rules::json_scan::{Flow, Limits, Scalar, ScanError, Scanner};
use authwatch::rules::RuleSet;
use authwatch::source::lines::LineReader;
use authwatch::time::Timestamp;

const MIB: u64 = 1024 * 1024;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_authwatch")
}

fn shipped_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// What a finished child did, with its peak resident memory.
struct Measured {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    max_rss_bytes: u64,
    elapsed: Duration,
}

/// Runs `cmd` with `feed` writing its standard input (from a thread, while
/// stdout and stderr are drained by two others, so no pipe fills up), and
/// reaps it with wait4(2), which reports the child's own peak RSS — not
/// that of other children the test binary runs in parallel.
// The child is reaped by wait4(2) below, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command, feed: impl FnOnce(&mut dyn Write) + Send + 'static) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start authwatch");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        feed(&mut stdin);
        // Dropping stdin closes it: end of input.
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    });

    let pid = child.id() as libc::pid_t;
    let mut raw_status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: `pid` is our own child, not yet reaped (nothing else
        // waits for it: `child` is never waited on), and both pointers are
        // to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut raw_status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = started.elapsed();
    // The child is gone; a writer still blocked on a full pipe gets EPIPE.
    let _ = writer.join();
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    use std::os::unix::process::ExitStatusExt;
    Measured {
        status: ExitStatus::from_raw(raw_status),
        stdout,
        stderr,
        // Linux reports ru_maxrss in KiB.
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        elapsed,
    }
}

fn replay(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("replay").args(args).env("AUTHWATCH_LOG", "warn");
    cmd
}

/// Writes `total` bytes of `byte` in 1 MiB blocks; stops quietly if the
/// reader went away (its exit status tells the story).
fn write_repeated(w: &mut dyn Write, byte: u8, total: u64) {
    let block = vec![byte; MIB as usize];
    let mut left = total;
    while left > 0 {
        let n = left.min(MIB) as usize;
        if w.write_all(&block[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
}

// ---------------------------------------------------------------------------
// A 100 MB line
// ---------------------------------------------------------------------------

#[test]
fn a_100_mb_line_without_newline_keeps_replay_memory_bounded() {
    let rules = shipped_rules();
    let m = run_measured(
        replay(&["--rules", rules.to_str().unwrap(), "-"]),
        |stdin| write_repeated(stdin, b'A', 100 * MIB),
    );
    assert!(
        m.status.success(),
        "replay failed: {:?}\n{}",
        m.status,
        m.stderr
    );
    assert!(
        m.stderr.contains("lines cut: 1"),
        "the line is cut, once:\n{}",
        m.stderr
    );
    assert!(
        m.max_rss_bytes < 64 * MIB,
        "peak RSS {} MiB for a 100 MB line",
        m.max_rss_bytes / MIB
    );
    eprintln!(
        "a 100 MB line: {:?}, peak RSS {} MiB",
        m.elapsed,
        m.max_rss_bytes / MIB
    );
}

#[test]
fn lines_after_an_over_long_line_still_count() {
    let rules = shipped_rules();
    let m = run_measured(
        replay(&[
            "--rules",
            rules.to_str().unwrap(),
            "--threshold",
            "3",
            "--json",
            "-",
        ]),
        |stdin| {
            // A 10 MB "line" that looks like a failure at its start: cut and
            // never matched, whatever its head says.
            let head = b"Mar  5 06:25:01 web1 sshd[1]: Failed password for root from 192.0.2.66 port 1 ssh2 ";
            let _ = stdin.write_all(head);
            write_repeated(stdin, b'x', 10 * MIB);
            let _ = stdin.write_all(b"\n");
            for i in 0..3 {
                let line = format!(
                    "Mar  5 06:25:0{i} web1 sshd[1234]: Failed password for root from 203.0.113.7 port 5000{i} ssh2\n"
                );
                let _ = stdin.write_all(line.as_bytes());
            }
        },
    );
    assert!(m.status.success(), "{:?}\n{}", m.status, m.stderr);
    let out = String::from_utf8_lossy(&m.stdout);
    assert!(
        out.contains("\"ip\":\"203.0.113.7\""),
        "no block:\n{out}\n{}",
        m.stderr
    );
    assert!(!out.contains("192.0.2.66"), "the cut line counted:\n{out}");
    assert!(
        m.max_rss_bytes < 64 * MIB,
        "peak RSS {} MiB",
        m.max_rss_bytes / MIB
    );
}

// ---------------------------------------------------------------------------
// Deeply nested JSON
// ---------------------------------------------------------------------------

/// A JWT failure line whose extra field nests `depth` arrays: it passes the
/// prefilter, so the JSON matcher must parse it.
fn nested_jwt_line(depth: usize) -> Vec<u8> {
    let mut line = br#"{"msg":"invalid signature","client_ip":"203.0.113.7","x":"#.to_vec();
    line.extend(std::iter::repeat_n(b'[', depth));
    line.extend(std::iter::repeat_n(b']', depth));
    line.push(b'}');
    line
}

#[test]
fn json_nested_100k_deep_is_too_deep_for_the_scanner() {
    let mut scanner = Scanner::new(Limits::default());
    let mut leaves = 0;
    let r = scanner.scan(&nested_jwt_line(100_000), |_, _| {
        leaves += 1;
        Flow::Continue
    });
    assert_eq!(r, Err(ScanError::TooDeep));
    // Only `[` all the way down, unclosed: no stack to overflow either.
    let mut open = b"{\"a\":".to_vec();
    open.extend(std::iter::repeat_n(b'[', 100_000));
    assert_eq!(
        scanner.scan(&open, |_, _| Flow::Continue),
        Err(ScanError::TooDeep)
    );
}

#[test]
fn json_nested_100k_deep_counts_as_malformed_in_the_rules() {
    let set = RuleSet::load_dir(&shipped_rules()).expect("shipped rules");
    let filter = set.filter_all();
    let mut state = set.new_state(Timestamp::now());
    let mut hits = 0;
    set.match_line(&mut state, &filter, &nested_jwt_line(100_000), &mut |_| {
        hits += 1
    });
    assert_eq!(hits, 0);
    assert_eq!(state.misses.malformed, 1);
    // The same line, shallow, is a hit: the depth alone made it malformed.
    set.match_line(&mut state, &filter, &nested_jwt_line(3), &mut |_| hits += 1);
    assert_eq!(hits, 1);
}

#[test]
fn json_nested_100k_deep_through_replay_is_malformed_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("authwatch.toml");
    // The line is 200 kB: raise the line cap so it reaches the matcher.
    std::fs::write(
        &config,
        format!(
            "rules_dir = {:?}\nstate_dir = \"state\"\nmax_line_bytes = 1048576\n",
            shipped_rules()
        ),
    )
    .unwrap();
    let m = run_measured(
        replay(&["--config", config.to_str().unwrap(), "-"]),
        |stdin| {
            let mut line = nested_jwt_line(100_000);
            line.push(b'\n');
            let _ = stdin.write_all(&line);
        },
    );
    assert!(m.status.success(), "{:?}\n{}", m.status, m.stderr);
    assert!(
        m.stderr.contains("malformed json: 1"),
        "counted as malformed:\n{}",
        m.stderr
    );
    assert!(m.stdout.is_empty(), "no decision");
}

// ---------------------------------------------------------------------------
// A million distinct addresses
// ---------------------------------------------------------------------------

const MILLION: u32 = 1_000_000;

/// The `i`th distinct address from 11.0.0.0 upward: public addresses,
/// none of them allowlisted or special.
fn nth_ip(i: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(11, 0, 0, 0)) + i)
}

#[test]
fn a_million_distinct_addresses_keep_replay_working() {
    let rules = shipped_rules();
    let m = run_measured(
        replay(&["--rules", rules.to_str().unwrap(), "--json", "-"]),
        |stdin| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
            // All within 50 s, so every address is in its window at once
            // and the detector holds (and must cap) a million keys.
            for i in 0..MILLION {
                let (s, us) = (i / 20_000, (i % 20_000) * 50);
                let ip = nth_ip(i);
                if writeln!(
                    w,
                    "Dec  3 13:00:{s:02}.{us:06} web1 sshd[{}]: Failed password for root from {ip} port 40000 ssh2",
                    1000 + i % 30_000
                )
                .is_err()
                {
                    return;
                }
            }
            // Then a real attacker: 50 failures in the next second.
            for k in 0..50 {
                let _ = writeln!(
                    w,
                    "Dec  3 13:00:51.{:06} web1 sshd[7]: Failed password for root from 198.51.100.9 port {} ssh2",
                    k * 1000,
                    50_000 + k
                );
            }
            let _ = w.flush();
        },
    );
    assert!(m.status.success(), "{:?}\n{}", m.status, m.stderr);
    assert!(
        m.stderr.contains(&format!("{} lines", MILLION + 50)),
        "every line read:\n{}",
        m.stderr
    );
    let out = String::from_utf8_lossy(&m.stdout);
    let blocks: Vec<&str> = out.lines().collect();
    assert_eq!(blocks.len(), 1, "exactly the attacker is blocked:\n{out}");
    assert!(blocks[0].contains("\"ip\":\"198.51.100.9\""), "{out}");
    assert!(
        m.elapsed < Duration::from_secs(300),
        "a million lines took {:?}",
        m.elapsed
    );
    // The detector caps its keys at a million (~70 MB of IPv4 keys); the
    // rest is rules, buffers and the allocator's slack. Measured: 96 MiB.
    assert!(
        m.max_rss_bytes < 256 * MIB,
        "peak RSS {} MiB",
        m.max_rss_bytes / MIB
    );
    eprintln!(
        "a million addresses: {:?}, peak RSS {} MiB",
        m.elapsed,
        m.max_rss_bytes / MIB
    );
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

const PASSWORD: &str = "s3cr3t-pass";

/// Whether `authwatch run` knows `--allow-root` (the flag is being added;
/// until then the daemon does not refuse root either).
fn run_accepts_allow_root() -> bool {
    let out = Command::new(bin())
        .args(["run", "--help"])
        .output()
        .expect("authwatch run --help");
    String::from_utf8_lossy(&out.stdout).contains("--allow-root")
}

#[test]
fn the_redis_password_never_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(&log, b"").unwrap();
    let config = dir.path().join("authwatch.toml");
    // Port 1 on loopback: nothing listens, every connection is refused, so
    // the daemon logs its connection errors (with the URL, if it were to).
    std::fs::write(
        &config,
        format!(
            "rules_dir = {rules:?}\nstate_dir = \"state\"\nhost = \"test-host\"\n\n\
             [redis]\nurl = \"redis://:{PASSWORD}@127.0.0.1:1/0\"\n\n\
             [api]\nsocket = \"api.sock\"\n\n\
             [[source]]\nname = \"sshd\"\npath = {log:?}\nstart_at = \"beginning\"\n",
            rules = shipped_rules(),
        ),
    )
    .unwrap();

    let mut cmd = Command::new(bin());
    cmd.arg("run").arg("--config").arg(&config);
    if run_accepts_allow_root() {
        // Whoever runs the tests (root in CI): the point here is the logs.
        cmd.arg("--allow-root");
    }
    // Debug, not trace: at trace the tailer logs every inotify event.
    cmd.env("AUTHWATCH_LOG", "debug")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start the daemon");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });

    // Give it a current attack to block, so the writer has something to
    // send to the unreachable Redis, and time to fail, retry and log.
    std::thread::sleep(Duration::from_millis(500));
    let lines: String = (0..60)
        .map(|i| {
            format!(
                "{} web1 sshd[9]: Failed password for root from 203.0.113.7 port {} ssh2\n",
                Timestamp::now(),
                40_000 + i
            )
        })
        .collect();
    std::fs::write(&log, lines).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break; // it gave up on Redis by itself: its output still counts
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().ok().flatten().is_none() {
        // SIGTERM: a clean stop logs too.
        // SAFETY: kill(2) on our own child's pid, which is not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let stop_deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < stop_deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let all = [stdout.as_slice(), stderr.as_slice()].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.to_lowercase().contains("redis"),
        "the daemon logged nothing about Redis, so this test shows nothing:\n{text}"
    );
    assert!(
        !text.contains(PASSWORD),
        "the Redis password is in the daemon's output:\n{text}"
    );
    // Nor anything written into the state directory.
    let state = dir.path().join("state");
    if state.is_dir() {
        for entry in walk(&state) {
            let bytes = std::fs::read(&entry).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(PASSWORD),
                "the password is in {}",
                entry.display()
            );
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

// ---------------------------------------------------------------------------
// Regressions found by the fuzz targets (inputs in fuzz/regressions/)
// ---------------------------------------------------------------------------

fn read_lines(input: &[u8], max_line: usize, buf_bytes: usize) -> Vec<Vec<u8>> {
    let mut reader = LineReader::new(input, max_line, buf_bytes);
    let mut lines = Vec::new();
    while reader.read_batch(&mut |l| lines.push(l.to_vec())).unwrap() {}
    lines
}

/// `lines` target, fuzz/regressions/lines/crash-fa852aaa…: a line over the
/// cap that arrived whole in one read (its `\n` included) was handed out
/// whole; only a line still open at the end of a read was cut.
#[test]
fn fuzz_lines_a_long_line_read_in_one_block_is_cut_too() {
    assert_eq!(
        read_lines(b"in\xff\xffkkkk\n\xff", 1, 1024),
        vec![b"i".to_vec(), b"\xff".to_vec()]
    );
    let mut input = vec![b'x'; 100];
    input.extend_from_slice(b"\nshort\n");
    assert_eq!(
        read_lines(&input, 10, 4096),
        vec![vec![b'x'; 10], b"short".to_vec()]
    );
}

/// `json_scan` target, fuzz/regressions/json_scan/crash-507357a6…: a high
/// surrogate escape followed by plain text. Not a scanner bug — lone
/// surrogates become U+FFFD, as documented, where serde_json rejects the
/// line — but the differential check had to learn it; this pins the
/// behaviour it now relies on.
#[test]
fn fuzz_json_scan_a_lone_surrogate_escape_becomes_a_replacement_char() {
    let line = br#"{"":"t\uD9999eve-A}"}"#;
    let mut values = Vec::new();
    let r = Scanner::new(Limits::default()).scan(line, |_, v| {
        if let Scalar::Str(s) = v {
            values.push(s.into_owned());
        }
        Flow::Continue
    });
    assert_eq!(r, Ok(()));
    assert_eq!(values, vec!["t\u{fffd}9eve-A}".to_string()]);
    assert!(serde_json::from_slice::<serde_json::Value>(line).is_err());
}
