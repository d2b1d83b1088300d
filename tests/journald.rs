//! The journald source against real journal files and the real
//! `journalctl` (`cargo test --test journald`).
//!
//! Each test writes entries in the journal export format, turns them into a
//! real journal file with `systemd-journal-remote` (Debian package
//! `systemd-journal-remote`), and reads that file through
//! [`JournalReader`], which runs `journalctl --file`. journal-remote keeps
//! the trusted fields it is given (`_COMM`, `_PID`, `_SYSTEMD_UNIT`), as it
//! does for entries from another machine, so the tests can write entries
//! that look exactly like the ones journald stores for sshd — and for
//! `logger -t sshd`.
//!
//! Without `journalctl` or `systemd-journal-remote` (and no way to install
//! the latter with apt-get) each test prints why and passes without
//! checking anything.

use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use authwatch::rules::RuleSet;
use authwatch::source::journald::{
    JournalError, JournalLine, JournalReader, JournalSpec, JournalStats, MAX_LINE_BYTES,
};
use authwatch::source::tailer::StartAt;
use authwatch::time::Timestamp;

/// How long anything may take on a busy 2-core machine; a passing test
/// returns as soon as what it waits for has happened.
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `systemd-journal-remote`, installed with apt-get if missing and
/// possible; `None` (after printing why) when the tests cannot run here.
fn journal_remote() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        if !on_path("journalctl") {
            eprintln!("SKIP journald tests: journalctl is not installed (Debian package systemd)");
            return None;
        }
        let find = || {
            [
                "/lib/systemd/systemd-journal-remote",
                "/usr/lib/systemd/systemd-journal-remote",
            ]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        };
        if let Some(p) = find() {
            return Some(p);
        }
        if on_path("apt-get") {
            eprintln!("journald tests: installing systemd-journal-remote with apt-get");
            let _ = Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "systemd-journal-remote",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .status();
        }
        let p = find();
        if p.is_none() {
            eprintln!(
                "SKIP journald tests: /lib/systemd/systemd-journal-remote is missing and could \
                 not be installed (apt-get install systemd-journal-remote)"
            );
        }
        p
    });
    found.as_deref()
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Returns from the test (passing) when the tools are missing.
macro_rules! require_tools {
    () => {
        if journal_remote().is_none() {
            return;
        }
    };
}

/// One entry in the journal export format: a field whose value is
/// printable single-line UTF-8 as `NAME=value\n`, any other as `NAME\n`,
/// its length as 64-bit little-endian, the bytes and `\n`.
fn export_entry(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        let printable = std::str::from_utf8(value)
            .is_ok_and(|s| s.chars().all(|c| c == '\t' || !c.is_control()));
        out.extend_from_slice(name.as_bytes());
        if printable {
            out.push(b'=');
        } else {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        }
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// An sshd-session entry of `ssh.service` on host web1 at `2026-12-03
/// 13:43:00 UTC + secs`.
fn sshd(secs: u64, pid: u32, message: &[u8]) -> Vec<u8> {
    entry(secs, "sshd-session", pid, "sshd-session", message)
}

fn entry(secs: u64, comm: &str, pid: u32, identifier: &str, message: &[u8]) -> Vec<u8> {
    let realtime = ((1_796_305_380 + secs) * 1_000_000 + 123_456).to_string();
    let pid = pid.to_string();
    export_entry(&[
        ("__REALTIME_TIMESTAMP", realtime.as_bytes()),
        ("_HOSTNAME", b"web1"),
        ("_TRANSPORT", b"syslog"),
        ("_SYSTEMD_UNIT", b"ssh.service"),
        ("SYSLOG_IDENTIFIER", identifier.as_bytes()),
        ("SYSLOG_PID", pid.as_bytes()),
        ("_COMM", comm.as_bytes()),
        ("_PID", pid.as_bytes()),
        ("MESSAGE", message),
    ])
}

/// Appends `export` (entries in export format) to the journal file `file`,
/// creating it if needed, with systemd-journal-remote.
fn write_journal(file: &Path, export: &[u8]) {
    let remote = journal_remote().expect("checked by require_tools");
    let mut child = Command::new(remote)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-journal-remote");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(export)
        .expect("write export");
    let out = child.wait_with_output().expect("wait for journal-remote");
    assert!(
        out.status.success(),
        "systemd-journal-remote failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spec(file: &Path) -> JournalSpec {
    JournalSpec {
        source: 7,
        units: vec!["ssh.service".into()],
        identifiers: vec!["sshd".into(), "sshd-session".into()],
        files: vec![file.to_owned()],
        start_at: StartAt::Beginning,
        ..JournalSpec::default()
    }
}

/// Everything `spec` yields without following.
fn read_all(spec: JournalSpec) -> Vec<JournalLine> {
    assert!(!spec.follow);
    let mut lines = Vec::new();
    JournalReader::new(spec)
        .expect("valid spec")
        .run(
            |l| {
                lines.push(l);
                true
            },
            Arc::new(AtomicBool::new(false)),
        )
        .expect("journalctl ran");
    lines
}

fn text(l: &JournalLine) -> String {
    String::from_utf8_lossy(&l.line).into_owned()
}

/// A reader following a journal on its own thread.
struct Follower {
    rx: mpsc::Receiver<JournalLine>,
    stop: Arc<AtomicBool>,
    stats: Arc<JournalStats>,
    thread: Option<JoinHandle<Result<(), JournalError>>>,
}

impl Follower {
    fn start(spec: JournalSpec) -> Follower {
        let reader = JournalReader::new(JournalSpec {
            follow: true,
            ..spec
        })
        .expect("valid spec");
        let stats = reader.stats();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || reader.run(move |l| tx.send(l).is_ok(), s));
        Follower {
            rx,
            stop,
            stats,
            thread: Some(thread),
        }
    }

    /// The next `n` lines, failing the test if they do not come in time.
    fn take(&self, n: usize) -> Vec<JournalLine> {
        let until = Instant::now() + DEADLINE;
        (0..n)
            .map(|i| {
                let left = until.saturating_duration_since(Instant::now());
                self.rx
                    .recv_timeout(left)
                    .unwrap_or_else(|e| panic!("line {} of {n} did not come: {e}", i + 1))
            })
            .collect()
    }

    /// Whether anything more arrives within `d`.
    fn quiet_for(&self, d: Duration) -> Option<JournalLine> {
        self.rx.recv_timeout(d).ok()
    }

    fn journalctl_pid(&self) -> u32 {
        let until = Instant::now() + DEADLINE;
        loop {
            let pid = self.stats.journalctl_pid.load(Ordering::Relaxed);
            if pid != 0 {
                return pid;
            }
            assert!(Instant::now() < until, "journalctl did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> Result<(), JournalError> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        let until = Instant::now() + Duration::from_secs(5);
        while !thread.is_finished() {
            assert!(Instant::now() < until, "run did not return after stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        thread.join().expect("reader thread panicked")
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn process_exists(pid: u32) -> bool {
    // Signal 0 checks for existence without sending anything.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that `pid` exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// The IPs the shipped sshd rule finds in `line`.
fn sshd_rule_hits(line: &[u8]) -> Vec<IpAddr> {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sshd.toml");
        let text = std::fs::read_to_string(&path).expect("read rules/sshd.toml");
        RuleSet::from_files(&[(path, text)]).expect("rules/sshd.toml compiles")
    });
    let mut st = rules.new_state(Timestamp::now());
    let mut ips = Vec::new();
    rules.match_line(&mut st, &rules.filter_all(), line, &mut |hit| {
        ips.push(hit.ip)
    });
    ips
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP")
}

// ---------------------------------------------------------------------------
// Stories
// ---------------------------------------------------------------------------

/// The fixture's sshd session comes out as syslog-style lines with the
/// trusted program and pid, the unrelated cron entry does not come out,
/// and the shipped sshd rule reads the lines.
#[test]
fn sshd_entries_become_syslog_lines() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/journald/sshd-session.export");
    write_journal(&file, &std::fs::read(fixture).expect("read fixture"));

    let lines = read_all(spec(&file));
    let got: Vec<String> = lines.iter().map(text).collect();
    assert_eq!(
        got,
        [
            "2026-12-03T13:43:13.123Z web1 sshd-session[88812]: Invalid user admin from 203.0.113.7 port 50000",
            "2026-12-03T13:43:14.500Z web1 sshd-session[88812]: Failed password for invalid user admin from 203.0.113.7 port 50000 ssh2",
            "2026-12-03T13:43:15.000Z web1 sshd[4242]: Failed password for root from 2001:db8::17 port 50002 ssh2",
            "2026-12-03T13:43:16.250Z web1 sshd-auth[88813]: Connection closed by authenticating user root 203.0.113.9 port 50004 [preauth]",
            "2026-12-03T13:43:17.000Z web1 sshd-session[88820]: Accepted publickey for alice from 198.51.100.2 port 40000 ssh2: ED25519 SHA256:uuOz0lHlJV0qImGSA7UnTlAGv3wqq2x8WJD7dqmYGZk",
        ]
    );
    assert!(lines.iter().all(|l| l.source == 7));
    assert_eq!(lines[0].realtime, Timestamp::from_millis(1_796_305_393_123));
    assert_eq!(lines[3].realtime, Timestamp::from_millis(1_796_305_396_250));
    let cursors: HashSet<&str> = lines.iter().map(|l| l.cursor.as_str()).collect();
    assert_eq!(cursors.len(), lines.len(), "every entry has its own cursor");

    let hits: Vec<Vec<IpAddr>> = lines.iter().map(|l| sshd_rule_hits(&l.line)).collect();
    assert_eq!(
        hits,
        [
            vec![ip("203.0.113.7")],
            vec![ip("203.0.113.7")],
            vec![ip("2001:db8::17")],
            vec![ip("203.0.113.9")],
            vec![],
        ]
    );
}

/// `logger -t sshd -i 'Failed password …'` stores SYSLOG_IDENTIFIER=sshd
/// but _COMM=logger: the line says `logger`, and the sshd rule refuses it,
/// while the same message from sshd itself counts.
#[test]
fn forged_identifier_comes_out_as_logger() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let message = b"Failed password for root from 198.51.100.9 port 22 ssh2";
    let mut export = export_entry(&[
        ("__REALTIME_TIMESTAMP", b"1796305393123456"),
        ("_HOSTNAME", b"web1"),
        ("_TRANSPORT", b"syslog"),
        ("_SYSTEMD_UNIT", b"session-3.scope"),
        ("SYSLOG_IDENTIFIER", b"sshd"),
        ("SYSLOG_PID", b"4242"),
        ("_COMM", b"logger"),
        ("_PID", b"31337"),
        ("MESSAGE", message),
    ]);
    export.extend(entry(14, "sshd", 4242, "sshd", message));
    write_journal(&file, &export);

    let lines = read_all(spec(&file));
    let got: Vec<String> = lines.iter().map(text).collect();
    assert_eq!(
        got,
        [
            "2026-12-03T13:43:13.123Z web1 logger[31337]: Failed password for root from 198.51.100.9 port 22 ssh2",
            "2026-12-03T13:43:14.123Z web1 sshd[4242]: Failed password for root from 198.51.100.9 port 22 ssh2",
        ]
    );
    assert!(sshd_rule_hits(&lines[0].line).is_empty());
    assert_eq!(sshd_rule_hits(&lines[1].line), [ip("198.51.100.9")]);
}

/// `_SYSTEMD_UNIT=ssh.service + SYSLOG_IDENTIFIER=sshd + …` is an OR: an
/// entry that has any of them comes out, one that has none does not.
#[test]
fn units_and_identifiers_are_alternatives() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let with = |secs: &str, unit: &str, id: &str, msg: &str| {
        export_entry(&[
            ("__REALTIME_TIMESTAMP", secs.as_bytes()),
            ("_HOSTNAME", b"web1"),
            ("_SYSTEMD_UNIT", unit.as_bytes()),
            ("SYSLOG_IDENTIFIER", id.as_bytes()),
            ("_COMM", b"prog"),
            ("_PID", b"1"),
            ("MESSAGE", msg.as_bytes()),
        ])
    };
    let export = [
        with("1796305381000000", "ssh.service", "other", "unit only"),
        with(
            "1796305382000000",
            "user@1000.service",
            "sshd",
            "identifier sshd",
        ),
        with(
            "1796305383000000",
            "cron.service",
            "sshd-session",
            "identifier sshd-session",
        ),
        with("1796305384000000", "cron.service", "CRON", "neither"),
    ]
    .concat();
    write_journal(&file, &export);

    let messages = |s: JournalSpec| -> Vec<String> {
        read_all(s)
            .iter()
            .map(|l| text(l).split(": ").nth(1).unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        messages(spec(&file)),
        ["unit only", "identifier sshd", "identifier sshd-session"]
    );
    // `ssh` is `ssh.service`; units alone.
    assert_eq!(
        messages(JournalSpec {
            units: vec!["ssh".into()],
            identifiers: vec![],
            ..spec(&file)
        }),
        ["unit only"]
    );
    // Identifiers alone.
    assert_eq!(
        messages(JournalSpec {
            units: vec![],
            identifiers: vec!["sshd-session".into(), "CRON".into()],
            ..spec(&file)
        }),
        ["identifier sshd-session", "neither"]
    );
    // Neither: the whole journal.
    assert_eq!(
        messages(JournalSpec {
            units: vec![],
            identifiers: vec![],
            ..spec(&file)
        })
        .len(),
        4
    );
}

/// Starting after a cursor yields exactly the entries after it, for every
/// cursor; following from a cursor then picks up entries appended later,
/// and none comes twice.
#[test]
fn resuming_from_a_cursor_yields_exactly_the_rest() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let msg = |i: u64| format!("Failed password for root from 203.0.113.{i} port 22 ssh2");
    let export: Vec<u8> = (0..30)
        .flat_map(|i| sshd(i, 100, msg(i).as_bytes()))
        .collect();
    write_journal(&file, &export);

    let all = read_all(spec(&file));
    assert_eq!(all.len(), 30);
    for k in [0, 1, 14, 28, 29] {
        let rest = read_all(JournalSpec {
            cursor: Some(all[k].cursor.clone()),
            ..spec(&file)
        });
        assert_eq!(rest, all[k + 1..], "after entry {k}");
    }

    // Follow from entry 11's cursor: more than journalctl's default of 10
    // lines in follow mode, then new entries as they are written.
    let f = Follower::start(JournalSpec {
        cursor: Some(all[11].cursor.clone()),
        ..spec(&file)
    });
    assert_eq!(f.take(18), all[12..]);
    let more: Vec<u8> = (30..35)
        .flat_map(|i| sshd(i, 100, msg(i).as_bytes()))
        .collect();
    write_journal(&file, &more);
    let new = f.take(5);
    let got: Vec<String> = new.iter().map(text).collect();
    let want: Vec<String> = (30..35)
        .map(|i| {
            format!(
                "2026-12-03T13:43:{}.123Z web1 sshd-session[100]: {}",
                i,
                msg(i)
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(f.quiet_for(Duration::from_millis(500)), None);
    f.stop().expect("stopped cleanly");
}

/// A MESSAGE with newlines (journald stores it as a binary field) stays one
/// line: the `\n` becomes a backslash and an `n`, and the sshd line planted
/// after it is not read as a failure.
#[test]
fn multi_line_message_stays_one_line() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let message = b"hello\nDec  3 13:43:13 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\r\nend\n";
    write_journal(&file, &sshd(0, 200, message));

    let lines = read_all(spec(&file));
    assert_eq!(lines.len(), 1);
    assert_eq!(
        text(&lines[0]),
        "2026-12-03T13:43:00.123Z web1 sshd-session[200]: hello\\nDec  3 13:43:13 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\r\\nend"
    );
    assert!(!lines[0].line.contains(&b'\n'));
    assert!(sshd_rule_hits(&lines[0].line).is_empty());
}

/// A user name that is not UTF-8 makes journald store MESSAGE as bytes,
/// and journalctl print it as an array of numbers: the bytes come through
/// as they are, and the rule still finds the address. UTF-8 beyond ASCII
/// (a JSON string) comes through as it is too.
#[test]
fn non_utf8_message_survives() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let bytes = b"Invalid user \xff\xfe\xc3 from 203.0.113.8 port 40001";
    let utf8 = "Invalid user jürgen日本 from 203.0.113.9 port 40002".as_bytes();
    write_journal(&file, &[sshd(0, 300, bytes), sshd(1, 301, utf8)].concat());

    let lines = read_all(spec(&file));
    assert_eq!(lines.len(), 2);
    let want = [
        &b"2026-12-03T13:43:00.123Z web1 sshd-session[300]: "[..],
        bytes,
    ]
    .concat();
    assert_eq!(lines[0].line, want);
    assert_eq!(sshd_rule_hits(&lines[0].line), [ip("203.0.113.8")]);
    let want = [
        &b"2026-12-03T13:43:01.123Z web1 sshd-session[301]: "[..],
        utf8,
    ]
    .concat();
    assert_eq!(lines[1].line, want);
    assert_eq!(sshd_rule_hits(&lines[1].line), [ip("203.0.113.9")]);
}

/// A message over journalctl's 4096-byte display limit is read whole
/// (`--all`), and one over the line limit is cut and counted.
#[test]
fn long_messages_are_whole_up_to_the_limit() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let long = vec![b'a'; 5000];
    let huge = vec![b'b'; MAX_LINE_BYTES + 1000];
    write_journal(&file, &[sshd(0, 1, &long), sshd(1, 1, &huge)].concat());

    let f = Follower::start(spec(&file));
    let lines = f.take(2);
    assert!(
        lines[0].line.ends_with(&long),
        "the 5000-byte message is whole"
    );
    assert_eq!(lines[1].line.len(), MAX_LINE_BYTES);
    assert_eq!(f.stats.lines_cut.load(Ordering::Relaxed), 1);
    f.stop().expect("stopped cleanly");
}

/// `start_at = "end"` without a cursor skips what the journal holds and
/// reads only what is written after journalctl started.
#[test]
fn start_at_end_reads_only_new_entries() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let old: Vec<u8> = (0..5).flat_map(|i| sshd(i, 1, b"old entry")).collect();
    write_journal(&file, &old);

    let f = Follower::start(JournalSpec {
        start_at: StartAt::End,
        ..spec(&file)
    });
    f.journalctl_pid();
    // journalctl seeks to the end some time after it starts; write new
    // entries until one arrives, so the test does not guess how long.
    let until = Instant::now() + DEADLINE;
    let mut i = 10;
    let first = loop {
        assert!(Instant::now() < until, "no new entry came");
        write_journal(&file, &sshd(i, 2, format!("new entry {i}").as_bytes()));
        i += 1;
        if let Some(l) = f.quiet_for(Duration::from_millis(500)) {
            break l;
        }
    };
    assert!(text(&first).contains(": new entry "), "{}", text(&first));
    f.stop().expect("stopped cleanly");
}

/// When journalctl dies, the reader starts it again after the last cursor
/// it handed out: entries written meanwhile come out, none twice. Stopping
/// kills journalctl.
#[test]
fn journalctl_is_restarted_after_the_last_cursor_and_killed_on_stop() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.journal");
    let export: Vec<u8> = (0..3)
        .flat_map(|i| sshd(i, 1, format!("entry {i}").as_bytes()))
        .collect();
    write_journal(&file, &export);

    let f = Follower::start(spec(&file));
    let first = f.take(3);
    let pid = f.journalctl_pid();
    // SAFETY: kill(2) on the journalctl this test's reader started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    let export: Vec<u8> = (3..6)
        .flat_map(|i| sshd(i, 1, format!("entry {i}").as_bytes()))
        .collect();
    write_journal(&file, &export);
    let rest = f.take(3);
    assert_eq!(f.quiet_for(Duration::from_millis(500)), None);
    let got: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|l| text(l).rsplit(": ").next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        got,
        ["entry 0", "entry 1", "entry 2", "entry 3", "entry 4", "entry 5"]
    );
    assert_eq!(f.stats.restarts.load(Ordering::Relaxed), 1);

    let new_pid = f.journalctl_pid();
    assert_ne!(new_pid, pid);
    let stats = Arc::clone(&f.stats);
    f.stop().expect("stopped cleanly");
    assert_eq!(stats.journalctl_pid.load(Ordering::Relaxed), 0);
    assert!(!process_exists(new_pid), "journalctl {new_pid} still runs");
}

/// Without follow, a journalctl that fails is an error that says why.
#[test]
fn journalctl_failure_is_reported() {
    require_tools!();
    let dir = tempfile::tempdir().expect("tempdir");
    let err = JournalReader::new(spec(&dir.path().join("missing.journal")))
        .expect("valid spec")
        .run(|_| true, Arc::new(AtomicBool::new(false)))
        .expect_err("journalctl cannot open a missing file");
    match &err {
        JournalError::Exited { status, stderr } => {
            assert!(!status.success());
            assert!(stderr.is_some(), "{err}");
        }
        other => panic!("unexpected error: {other}"),
    }
}
