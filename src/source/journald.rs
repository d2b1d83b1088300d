//! The journald source: reads the systemd journal through a `journalctl`
//! subprocess and turns each entry into one syslog-style line.
//!
//! Debian 12 writes no `/var/log/auth.log` by default, so sshd's failures
//! are only in the journal.
//!
//! # Why a subprocess
//!
//! The `systemd` crate needs libsystemd-dev at build time, and
//! `journalctl --cursor-file` is not updated in follow mode on systemd 252
//! (systemd#26746). So [`JournalReader`] runs
//! `journalctl --follow --output=json`, reads one JSON object per line, and
//! keeps each entry's `__CURSOR` itself: every [`JournalLine`] carries the
//! cursor of its entry, for the consumer to checkpoint once the line is
//! handled, and for the reader to resume from if journalctl exits.
//!
//! # The command
//!
//! ```text
//! journalctl --output=json --all --no-pager --output-fields=MESSAGE,_COMM,_PID,_HOSTNAME
//!            [--follow] [--merge] [--directory=DIR | --file=/ABS/PATH ...]
//!            (--after-cursor=CURSOR --no-tail | --lines=0 | --no-tail)
//!            [_SYSTEMD_UNIT=ssh.service + SYSLOG_IDENTIFIER=sshd + SYSLOG_IDENTIFIER=sshd-session]
//! ```
//!
//! * `--all`: without it journalctl writes `null` for any field over 4096
//!   bytes, and a long message would silently vanish.
//! * `--output-fields`: only what the line needs (journalctl always adds
//!   `__CURSOR`, `__REALTIME_TIMESTAMP`, `__MONOTONIC_TIMESTAMP` and
//!   `_BOOT_ID`), which keeps the JSON to parse small.
//! * Where to start: `--after-cursor` when there is a cursor (the one in
//!   the [`JournalSpec`], later the last one read); without one,
//!   [`StartAt::End`] is `--lines=0` (nothing already there) and
//!   [`StartAt::Beginning`] is `--no-tail` (everything). `--follow` implies
//!   `--lines=10`, which journalctl 252 applies even after a cursor: it
//!   prints the first 10 entries after the cursor, then jumps to the end
//!   and silently skips the rest. So `--no-tail` goes with the cursor too.
//! * `--merge` with `--directory`/`--file` only: in follow mode journalctl
//!   adds an implicit `--boot` (the *current* boot of *this* machine) unless
//!   `--merge` is given, and a copied journal, or one written by
//!   `systemd-journal-remote`, then shows nothing at all. For the local
//!   journal we keep journalctl's default, because `--merge` would also read
//!   the journals that `systemd-journal-remote` stores from other machines.
//!   The cost: following the local journal reads the current boot only, so
//!   after a reboot the entries of the previous boot written after the saved
//!   cursor (its last moments) are not read.
//! * `--file` paths are made absolute: journalctl 252 cannot follow a file
//!   given by a relative path ("Failed to get journal fd: Destination
//!   address required", systemd#38667). Note that journalctl does not follow
//!   a `--file` through rotation; `--directory` does.
//!
//! ## Matches
//!
//! journalctl ORs matches on the *same* field and ANDs matches on different
//! fields, unless they are separated by a `+`. We want an entry that comes
//! from any of the units **or** carries any of the identifiers, so every
//! match is its own `+`-separated term:
//!
//! ```text
//! units = ["ssh.service"], identifiers = ["sshd", "sshd-session"]
//!   → _SYSTEMD_UNIT=ssh.service + SYSLOG_IDENTIFIER=sshd + SYSLOG_IDENTIFIER=sshd-session
//! ```
//!
//! A unit name without a `.` gets `.service`, as `journalctl -u` and
//! `systemctl` do. `journalctl -u` itself is not used: it also matches the
//! messages systemd writes *about* the unit and the unit's core dumps, and
//! how it combines with other matches is hard to read. Matches are exact, so
//! globs (`ssh@*.service`) are refused. No units and no identifiers: the
//! whole journal.
//!
//! # The line
//!
//! ```text
//! 2026-12-03T13:43:13.123Z web1 sshd-session[123]: Failed password for root from 203.0.113.7 port 22 ssh2
//! └─ __REALTIME_TIMESTAMP ─┘ └_HOSTNAME └_COMM┘ └_PID  └──────────────── MESSAGE ────────────────────┘
//! ```
//!
//! That is the RFC 3339 header the `syslog` rule format reads
//! ([`crate::syslog::parse_header`]). The time is always written with three
//! fraction digits, so every line's header has the same width.
//!
//! ## Trust
//!
//! The program and pid come from `_COMM` and `_PID`, which journald fills
//! in itself from the kernel (the sender's credentials and `/proc`), never
//! from `SYSLOG_IDENTIFIER` and `SYSLOG_PID`, which the client chooses:
//! `logger -t sshd 'Failed password … from VICTIM …'` produces an entry with
//! `SYSLOG_IDENTIFIER=sshd` but `_COMM=logger`, so its line reads
//! `logger[pid]:` and the shipped sshd rule (`programs = ["sshd",
//! "sshd-session", "sshd-auth"]`) refuses it.
//!
//! `_COMM` is still the *process's* name, and a local user can choose it
//! (copy `logger` to a file named `sshd`, or `prctl(PR_SET_NAME)`). What a
//! local user cannot choose is `_SYSTEMD_UNIT` (the cgroup journald reads);
//! on a host with untrusted local users, configure `units` and no
//! `identifiers`, since an identifier match lets in any process that claims
//! the identifier. In entries received from other machines
//! (`systemd-journal-remote`) every field, trusted ones included, is what
//! the sender wrote.
//!
//! The other fields:
//!
//! * `_COMM` or `_PID` missing (kernel messages, some imported entries),
//!   given more than once, or not usable in a syslog header (a `_COMM`
//!   outside `A-Z a-z 0-9 - . _ / @` or longer than 64 bytes, a `_PID` that
//!   is not 1 to 10 digits): the program is `-` and there is no pid. No rule
//!   lists `-` as a program, so such a line only reaches rules without
//!   `programs`.
//! * `_HOSTNAME` missing, empty, longer than 255 bytes, or with a space or
//!   control byte: `-`.
//! * `MESSAGE` is a JSON string, or an array of byte values (journald's
//!   encoding of a message that is not printable UTF-8: invalid UTF-8, or a
//!   control character such as `\n`); both become the raw bytes. Trailing
//!   `\n`s are dropped (a line terminator, not content), every other `\n`
//!   becomes the two bytes `\n`, so that one entry is exactly one line and
//!   cannot inject a second. `\r` is kept.
//! * No `MESSAGE` (or `null`): no line, the entry is skipped.
//!   `MESSAGE` given more than once: [`JournalError::Ambiguous`], skipped
//!   and counted — which value would a rule see?
//! * The line is cut at [`MAX_LINE_BYTES`] (or
//!   [`JournalReader::with_max_line_bytes`]), and counted; the engine treats
//!   a line of that length as cut and does not match it.
//! * `__CURSOR` and `__REALTIME_TIMESTAMP` are required: an entry without
//!   them is an error, skipped and counted in [`JournalStats::malformed`].
//!
//! # Restarts
//!
//! In follow mode journalctl should never exit; if it does, the reader logs
//! its exit status and last stderr line and starts it again with
//! `--after-cursor` set to the last cursor read, after a backoff (250 ms,
//! doubling up to 30 s, back to 250 ms once a run has read entries). No
//! entry is handed out twice. Before the first cursor is known the restart
//! uses the original start position, so with [`StartAt::End`] and no cursor
//! entries written while journalctl was down are lost.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::tailer::StartAt;
use crate::time::Timestamp;

/// Lines are cut at this many bytes by default (`max_line_bytes`' default).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The longest JSON line read from journalctl. A message is at most
/// [`MAX_LINE_BYTES`] of the line, but a non-UTF-8 message is an array of
/// numbers, up to four bytes of JSON per byte, and the cut happens after
/// parsing. A longer JSON line is skipped and counted in
/// [`JournalStats::oversized`].
const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;

/// The program journalctl is run as (found through `PATH`).
const JOURNALCTL: &str = "journalctl";

/// The fields the line is built from; `--output-fields`.
const OUTPUT_FIELDS: &str = "MESSAGE,_COMM,_PID,_HOSTNAME";

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A journalctl that ran this long resets the backoff even if it read
/// nothing (a quiet journal).
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// How often `run` checks its stop flag while waiting.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// JSON lines in flight between the pipe reader and `run`.
const CHANNEL_LINES: usize = 256;

/// The longest program name a syslog header may carry
/// ([`crate::syslog::parse_header`]).
const MAX_PROGRAM_LEN: usize = 64;
const MAX_PID_LEN: usize = 10;
const MAX_HOSTNAME_LEN: usize = 255;
/// Cursors are about 130 bytes; anything far longer is not one.
const MAX_CURSOR_LEN: usize = 1024;

/// What to read from the journal; built from a `[[source]]` with a
/// `journal = { … }` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalSpec {
    /// Carried into every [`JournalLine`].
    pub source: usize,
    /// `_SYSTEMD_UNIT` values (`ssh.service`; `ssh` means `ssh.service`).
    pub units: Vec<String>,
    /// `SYSLOG_IDENTIFIER` values (`sshd`, `sshd-session`).
    pub identifiers: Vec<String>,
    /// Read the journal files in this directory (`--directory`) instead of
    /// the system journal.
    pub directory: Option<PathBuf>,
    /// Read these journal files (`--file`) instead of the system journal.
    pub files: Vec<PathBuf>,
    /// Where to start when there is no `cursor`.
    pub start_at: StartAt,
    /// Resume after this entry (a saved [`JournalLine::cursor`]).
    pub cursor: Option<String>,
    /// Keep reading as entries arrive (`--follow`); otherwise stop at the
    /// end of what is there.
    pub follow: bool,
}

/// One journal entry turned into a syslog-style line for the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalLine {
    pub source: usize,
    /// Without a newline; see the module documentation for its form.
    pub line: Vec<u8>,
    /// The entry's `__CURSOR`: checkpoint it once the line is handled.
    pub cursor: String,
    /// The entry's `__REALTIME_TIMESTAMP`, to the millisecond.
    pub realtime: Timestamp,
}

/// Counters for one journal source, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// JSON lines read from journalctl.
    pub entries: AtomicU64,
    /// Lines handed out.
    pub lines: AtomicU64,
    /// Entries without a `MESSAGE`: nothing to match, skipped.
    pub no_message: AtomicU64,
    /// Entries skipped because [`entry_to_line`] refused them (no cursor,
    /// no time, not JSON, a field given twice…).
    pub malformed: AtomicU64,
    /// JSON lines longer than journalctl should ever write, skipped.
    pub oversized: AtomicU64,
    /// Lines cut at the line limit.
    pub lines_cut: AtomicU64,
    /// Times journalctl exited unexpectedly and was started again.
    pub restarts: AtomicU64,
    /// The pid of the journalctl running now, 0 when none.
    pub journalctl_pid: AtomicU32,
}

/// What can go wrong reading the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    // --- one entry: the entry is skipped and counted ---
    #[error("journal entry is not a JSON object as journalctl writes it: {0}")]
    Json(#[from] serde_json::Error),
    #[error("journal entry has no __CURSOR")]
    MissingCursor,
    #[error("journal entry has an unusable __CURSOR (not one short printable string)")]
    BadCursor,
    #[error("journal entry has no usable __REALTIME_TIMESTAMP")]
    BadTimestamp,
    #[error("journal entry has more than one {0}")]
    Ambiguous(&'static str),

    // --- the source's configuration ---
    #[error("a journal source takes `directory` or `files`, not both")]
    DirectoryAndFiles,
    #[error("journal {field} {value:?}: {reason}")]
    BadMatch {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("journal cursor {0:?} is not one short printable string")]
    BadSpecCursor(String),
    #[error("journal file {}: {error}", .path.display())]
    BadPath { path: PathBuf, error: io::Error },

    // --- journalctl itself ---
    #[error("cannot start journalctl: {0}")]
    Spawn(#[source] io::Error),
    #[error("journalctl exited with {status}{}", stderr_suffix(.stderr))]
    Exited {
        status: ExitStatus,
        /// Its last line on stderr, if any.
        stderr: Option<String>,
    },
}

fn stderr_suffix(stderr: &Option<String>) -> String {
    match stderr {
        Some(s) => format!(": {s}"),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// One entry → one line
// ---------------------------------------------------------------------------

/// Turns one line of `journalctl --output=json` into the syslog-style line
/// described in the module documentation, with the entry's cursor and time.
/// `Ok(None)`: the entry has no `MESSAGE`. The line is cut at
/// [`MAX_LINE_BYTES`].
pub fn entry_to_line(json: &[u8]) -> Result<Option<(Vec<u8>, String, Timestamp)>, JournalError> {
    let entry = parse_entry(json, MAX_LINE_BYTES)?;
    Ok(entry.line.map(|l| (l.bytes, entry.cursor, entry.realtime)))
}

/// An entry as `run` needs it: the cursor even when there is no line.
struct Entry {
    cursor: String,
    realtime: Timestamp,
    line: Option<BuiltLine>,
}

struct BuiltLine {
    bytes: Vec<u8>,
    cut: bool,
}

fn parse_entry(json: &[u8], max_line: usize) -> Result<Entry, JournalError> {
    let raw: RawEntry = serde_json::from_slice(json)?;
    let cursor = match raw.cursor {
        None => return Err(JournalError::MissingCursor),
        Some(Field::Text(c)) if is_cursor(&c) => c,
        Some(_) => return Err(JournalError::BadCursor),
    };
    let realtime = match raw.realtime {
        Some(Field::Text(t)) => parse_realtime(&t).ok_or(JournalError::BadTimestamp)?,
        _ => return Err(JournalError::BadTimestamp),
    };
    let message = match raw.message {
        None => None,
        Some(Field::Text(s)) => Some(s.into_bytes()),
        Some(Field::Bytes(b)) => Some(b),
        Some(Field::Many) => return Err(JournalError::Ambiguous("MESSAGE")),
    };
    let line = match message {
        None => None,
        Some(message) => {
            let host = raw
                .hostname
                .as_ref()
                .and_then(Field::single)
                .filter(|h| is_hostname(h));
            let comm = raw
                .comm
                .as_ref()
                .and_then(Field::single)
                .filter(|c| is_program(c));
            let pid = raw
                .pid
                .as_ref()
                .and_then(Field::single)
                .filter(|p| is_pid(p));
            let program = match (comm, pid) {
                (Some(comm), Some(pid)) => Some((comm, pid)),
                _ => None,
            };
            Some(build_line(realtime, host, program, &message, max_line)?)
        }
    };
    Ok(Entry {
        cursor,
        realtime,
        line,
    })
}

fn build_line(
    realtime: Timestamp,
    host: Option<&[u8]>,
    program: Option<(&[u8], &[u8])>,
    message: &[u8],
    max_line: usize,
) -> Result<BuiltLine, JournalError> {
    let mut line = Vec::with_capacity(64 + message.len().min(max_line));
    // Always three fraction digits (`Timestamp`'s Display drops `.000`), so
    // that every header has the same width.
    let ts = jiff::Timestamp::from_millisecond(realtime.as_millis())
        .map_err(|_| JournalError::BadTimestamp)?;
    // Writing to a Vec cannot fail.
    let _ = write!(line, "{}", ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"));
    line.push(b' ');
    line.extend_from_slice(host.unwrap_or(b"-"));
    line.push(b' ');
    match program {
        Some((comm, pid)) => {
            line.extend_from_slice(comm);
            line.push(b'[');
            line.extend_from_slice(pid);
            line.push(b']');
        }
        None => line.push(b'-'),
    }
    line.extend_from_slice(b": ");

    let mut message = message;
    while let Some(rest) = message.strip_suffix(b"\n") {
        message = rest;
    }
    let mut cut = false;
    for (i, part) in message.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            line.extend_from_slice(b"\\n");
        }
        line.extend_from_slice(part);
        if line.len() > max_line {
            cut = true;
            break;
        }
    }
    if line.len() > max_line {
        cut = true;
        line.truncate(max_line);
    }
    Ok(BuiltLine { bytes: line, cut })
}

/// `__REALTIME_TIMESTAMP`: decimal microseconds since the epoch.
fn parse_realtime(s: &str) -> Option<Timestamp> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let us: u64 = s.parse().ok()?;
    let ms = i64::try_from(us / 1000).ok()?;
    // Only times the line's header can be written for.
    jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(Timestamp::from_millis(ms))
}

fn is_cursor(c: &str) -> bool {
    !c.is_empty() && c.len() <= MAX_CURSOR_LEN && c.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// What [`crate::syslog::parse_header`] reads as a program name.
fn is_program(c: &[u8]) -> bool {
    !c.is_empty()
        && c.len() <= MAX_PROGRAM_LEN
        && c.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/' | b'@'))
}

fn is_pid(p: &[u8]) -> bool {
    !p.is_empty() && p.len() <= MAX_PID_LEN && p.iter().all(u8::is_ascii_digit)
}

/// One token of the header: no space, no control byte.
fn is_hostname(h: &[u8]) -> bool {
    !h.is_empty() && h.len() <= MAX_HOSTNAME_LEN && h.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// The fields of a journalctl JSON object that the line is built from.
///
/// serde's derived struct visitor refuses a key given twice, and skips the
/// fields we do not name without building them.
#[derive(serde::Deserialize)]
struct RawEntry {
    #[serde(rename = "__CURSOR")]
    cursor: Option<Field>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<Field>,
    #[serde(rename = "_HOSTNAME")]
    hostname: Option<Field>,
    #[serde(rename = "_COMM")]
    comm: Option<Field>,
    #[serde(rename = "_PID")]
    pid: Option<Field>,
    #[serde(rename = "MESSAGE")]
    message: Option<Field>,
}

/// A field's value as journalctl's JSON output writes it. (`null`, for a
/// field too large to show without `--all`, is `None` around it.)
#[derive(Debug, PartialEq, Eq)]
enum Field {
    /// A string: the value is printable UTF-8.
    Text(String),
    /// An array of numbers 0..=255: any other bytes.
    Bytes(Vec<u8>),
    /// An array of values (strings or byte arrays): the field was given
    /// more than once in the entry.
    Many,
}

impl Field {
    /// The bytes of a field given once.
    fn single(&self) -> Option<&[u8]> {
        match self {
            Field::Text(s) => Some(s.as_bytes()),
            Field::Bytes(b) => Some(b),
            Field::Many => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array of bytes, or an array of values")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Field::Text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_LINE_BYTES));
        let mut values = 0usize;
        while let Some(elem) = seq.next_element::<Elem>()? {
            match elem {
                Elem::Byte(b) => bytes.push(b),
                Elem::Value => values += 1,
            }
            if !bytes.is_empty() && values > 0 {
                return Err(de::Error::custom("an array mixing bytes and values"));
            }
        }
        Ok(if values > 0 {
            Field::Many
        } else {
            Field::Bytes(bytes)
        })
    }
}

/// An element of a field's array: a byte of a binary value, or one of the
/// values of a field given several times (whose content is not kept).
enum Elem {
    Byte(u8),
    Value,
}

impl<'de> serde::Deserialize<'de> for Elem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Elem, D::Error> {
        d.deserialize_any(ElemVisitor)
    }
}

struct ElemVisitor;

impl<'de> Visitor<'de> for ElemVisitor {
    type Value = Elem;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte (0 to 255), a string, or an array of bytes")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Elem, E> {
        u8::try_from(v)
            .map(Elem::Byte)
            .map_err(|_| E::custom("a byte value above 255"))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Elem, E> {
        u8::try_from(v)
            .map(Elem::Byte)
            .map_err(|_| E::custom("a byte value out of range"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Elem, E> {
        Ok(Elem::Value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Elem, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Elem::Value)
    }
}

// ---------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------

/// Runs journalctl for one [`JournalSpec`] and hands out its lines; see the
/// module documentation.
pub struct JournalReader {
    spec: JournalSpec,
    /// `spec.files`, made absolute.
    files: Vec<PathBuf>,
    max_line_bytes: usize,
    stats: Arc<JournalStats>,
}

impl JournalReader {
    /// Checks `spec` (no `directory` with `files`; units and identifiers
    /// non-empty, without control characters, units without globs; a
    /// printable cursor) and makes its file paths absolute.
    pub fn new(spec: JournalSpec) -> Result<JournalReader, JournalError> {
        if spec.directory.is_some() && !spec.files.is_empty() {
            return Err(JournalError::DirectoryAndFiles);
        }
        for unit in &spec.units {
            check_match_value("unit", unit)?;
            if unit.contains(['*', '?', '[']) {
                return Err(JournalError::BadMatch {
                    field: "unit",
                    value: unit.clone(),
                    reason: "globs are not supported: list the units, or use identifiers",
                });
            }
        }
        for id in &spec.identifiers {
            check_match_value("identifier", id)?;
        }
        if let Some(c) = &spec.cursor {
            if !is_cursor(c) {
                return Err(JournalError::BadSpecCursor(c.clone()));
            }
        }
        let files = spec
            .files
            .iter()
            .map(|p| {
                std::path::absolute(p).map_err(|error| JournalError::BadPath {
                    path: p.clone(),
                    error,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(JournalReader {
            spec,
            files,
            max_line_bytes: MAX_LINE_BYTES,
            stats: Arc::default(),
        })
    }

    /// Cuts lines at `n` bytes instead of [`MAX_LINE_BYTES`]: pass the
    /// configuration's `max_line_bytes`, which the engine takes a line of
    /// that length to be cut at.
    pub fn with_max_line_bytes(mut self, n: usize) -> JournalReader {
        // A line must at least hold its header.
        self.max_line_bytes = n.max(64);
        self
    }

    pub fn stats(&self) -> Arc<JournalStats> {
        Arc::clone(&self.stats)
    }

    /// The arguments journalctl is run with to start after `cursor` (or at
    /// the spec's start position when `None`); see the module documentation.
    pub fn args(&self, cursor: Option<&str>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--output=json".into(),
            "--all".into(),
            "--no-pager".into(),
            format!("--output-fields={OUTPUT_FIELDS}").into(),
        ];
        if self.spec.follow {
            args.push("--follow".into());
        }
        if let Some(dir) = &self.spec.directory {
            args.push("--merge".into());
            let mut a = OsString::from("--directory=");
            a.push(dir);
            args.push(a);
        } else if !self.files.is_empty() {
            args.push("--merge".into());
            for f in &self.files {
                let mut a = OsString::from("--file=");
                a.push(f);
                args.push(a);
            }
        }
        match (cursor, self.spec.start_at) {
            (Some(c), _) => {
                args.push(format!("--after-cursor={c}").into());
                // Without it, `--follow` prints only the first 10 entries
                // after the cursor and skips the rest (systemd 252).
                args.push("--no-tail".into());
            }
            (None, StartAt::End) => args.push("--lines=0".into()),
            (None, StartAt::Beginning) => args.push("--no-tail".into()),
        }
        let units = self.spec.units.iter().map(|u| {
            if u.contains('.') {
                format!("_SYSTEMD_UNIT={u}")
            } else {
                format!("_SYSTEMD_UNIT={u}.service")
            }
        });
        let ids = self
            .spec
            .identifiers
            .iter()
            .map(|i| format!("SYSLOG_IDENTIFIER={i}"));
        for (k, m) in units.chain(ids).enumerate() {
            if k > 0 {
                args.push("+".into());
            }
            args.push(m.into());
        }
        args
    }

    /// Blocking loop for a dedicated thread: runs journalctl and calls `out`
    /// for each line, until `stop` is set (checked at least every 100 ms),
    /// `out` returns false (the receiver is gone) or — without
    /// [`JournalSpec::follow`] — journalctl reaches the end. journalctl is
    /// killed when the loop ends.
    ///
    /// Errors of single entries are counted and logged, not returned. In
    /// follow mode an exit of journalctl is logged and it is started again
    /// (see the module documentation); only a failure to start it the first
    /// time (journalctl missing) is returned. Without follow, an exit with a
    /// failure status is returned as [`JournalError::Exited`].
    pub fn run(
        self,
        mut out: impl FnMut(JournalLine) -> bool,
        stop: Arc<AtomicBool>,
    ) -> Result<(), JournalError> {
        let mut cursor = self.spec.cursor.clone();
        let mut backoff = BACKOFF_MIN;
        let mut started_once = false;
        let mut warn = WarnLimit::default();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let mut proc = match self.spawn(cursor.as_deref()) {
                Ok(p) => p,
                Err(e) if !started_once => return Err(e),
                Err(e) => {
                    tracing::warn!(
                        source = self.spec.source,
                        "journal: {e}; retrying in {backoff:?}"
                    );
                    sleep_unless_stopped(backoff, &stop);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            started_once = true;
            let read = self.drain(&mut proc, &mut cursor, &mut out, &stop, &mut warn);
            let ended = match read {
                Drained::Stopped | Drained::ReceiverGone => {
                    tracing::debug!(source = self.spec.source, "journal: stopping journalctl");
                    return Ok(());
                }
                Drained::Eof { read_entries } => {
                    let status = proc.wait();
                    let stderr = proc.last_stderr();
                    (status, stderr, read_entries)
                }
            };
            let (status, stderr, read_entries) = ended;
            let status = status.map_err(JournalError::Spawn)?;
            if !self.spec.follow {
                return if status.success() {
                    Ok(())
                } else {
                    Err(JournalError::Exited { status, stderr })
                };
            }
            if read_entries || started.elapsed() >= BACKOFF_RESET_AFTER {
                backoff = BACKOFF_MIN;
            }
            self.stats.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                source = self.spec.source,
                "journal: {}; restarting in {backoff:?}",
                JournalError::Exited { status, stderr }
            );
            sleep_unless_stopped(backoff, &stop);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        Ok(())
    }

    fn spawn(&self, cursor: Option<&str>) -> Result<Running, JournalError> {
        let mut cmd = Command::new(JOURNALCTL);
        cmd.args(self.args(cursor))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("SYSTEMD_PAGER", "");
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the child between fork and exec
            // and only calls prctl(2), which is async-signal-safe.
            // PR_SET_PDEATHSIG kills journalctl if the thread that started
            // it dies without killing it (the process killed hard, say);
            // otherwise a `--follow` journalctl on a quiet journal would
            // linger until its next write hits the closed pipe.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().map_err(JournalError::Spawn)?;
        self.stats
            .journalctl_pid
            .store(child.id(), Ordering::Relaxed);
        tracing::debug!(source = self.spec.source, pid = child.id(), args = ?self.args(cursor), "journal: started journalctl");
        let (tx, rx) = mpsc::sync_channel(CHANNEL_LINES);
        let stdout = child.stdout.take();
        let stdout_thread = stdout.map(|s| {
            std::thread::Builder::new()
                .name("journalctl-out".into())
                .spawn(move || read_json_lines(s, tx, MAX_JSON_BYTES))
        });
        let last_stderr = Arc::new(Mutex::new(None));
        let stderr = child.stderr.take();
        let source = self.spec.source;
        let keep = Arc::clone(&last_stderr);
        let stderr_thread = stderr.map(|s| {
            std::thread::Builder::new()
                .name("journalctl-err".into())
                .spawn(move || log_stderr(s, source, &keep))
        });
        let mut running = Running {
            child,
            rx: Some(rx),
            threads: Vec::new(),
            last_stderr,
            stats: Arc::clone(&self.stats),
            exited: false,
        };
        for t in [stdout_thread, stderr_thread].into_iter().flatten() {
            running.threads.push(t.map_err(JournalError::Spawn)?);
        }
        Ok(running)
    }

    /// Reads journalctl's output until it ends, `stop`, or the receiver
    /// goes away.
    fn drain(
        &self,
        proc: &mut Running,
        cursor: &mut Option<String>,
        out: &mut impl FnMut(JournalLine) -> bool,
        stop: &AtomicBool,
        warn: &mut WarnLimit,
    ) -> Drained {
        let mut read_entries = false;
        let Some(rx) = proc.rx.as_ref() else {
            return Drained::Eof { read_entries };
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                return Drained::Stopped;
            }
            let json = match rx.recv_timeout(STOP_CHECK) {
                Ok(Ok(json)) => json,
                Ok(Err(TooLong)) => {
                    self.stats.oversized.fetch_add(1, Ordering::Relaxed);
                    warn.warn(self.spec.source, "a JSON line over the size limit, skipped");
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Drained::Eof { read_entries },
            };
            self.stats.entries.fetch_add(1, Ordering::Relaxed);
            let entry = match parse_entry(&json, self.max_line_bytes) {
                Ok(e) => e,
                Err(e) => {
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    warn.warn(self.spec.source, &format!("{e}; skipped"));
                    continue;
                }
            };
            read_entries = true;
            let Some(line) = entry.line else {
                self.stats.no_message.fetch_add(1, Ordering::Relaxed);
                *cursor = Some(entry.cursor);
                continue;
            };
            if line.cut {
                self.stats.lines_cut.fetch_add(1, Ordering::Relaxed);
            }
            *cursor = Some(entry.cursor.clone());
            self.stats.lines.fetch_add(1, Ordering::Relaxed);
            let keep_going = out(JournalLine {
                source: self.spec.source,
                line: line.bytes,
                cursor: entry.cursor,
                realtime: entry.realtime,
            });
            if !keep_going {
                return Drained::ReceiverGone;
            }
        }
    }
}

fn check_match_value(field: &'static str, value: &str) -> Result<(), JournalError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(JournalError::BadMatch {
        field,
        value: value.to_owned(),
        reason,
    })
}

enum Drained {
    Stopped,
    ReceiverGone,
    Eof { read_entries: bool },
}

/// A JSON line longer than [`MAX_JSON_BYTES`].
struct TooLong;

/// A running journalctl with its pipe readers. Dropping it kills
/// journalctl (unless it has exited) and waits for it and the readers, so
/// that no journalctl outlives its `run`, whatever way `run` ends.
struct Running {
    child: Child,
    /// `None` once dropped, so the stdout reader blocked on a full channel
    /// sees the receiver gone.
    rx: Option<Receiver<Result<Vec<u8>, TooLong>>>,
    threads: Vec<JoinHandle<()>>,
    last_stderr: Arc<Mutex<Option<String>>>,
    stats: Arc<JournalStats>,
    exited: bool,
}

impl Running {
    /// Waits for journalctl to exit (its stdout has ended) and for the pipe
    /// readers to finish.
    fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait();
        self.exited = true;
        self.stats.journalctl_pid.store(0, Ordering::Relaxed);
        self.rx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        status
    }

    fn last_stderr(&self) -> Option<String> {
        self.last_stderr.lock().ok().and_then(|s| s.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.exited {
            // Fails only if it has already exited; wait reaps it either way.
            let _ = self.child.kill();
            let _ = self.wait();
        }
    }
}

/// Splits journalctl's stdout into lines of at most `max` bytes (a longer
/// one is skipped and reported as [`TooLong`]) and sends them, until EOF or
/// until the receiver is gone. A last line without its newline (journalctl
/// killed mid-write) is sent as it is and fails to parse.
fn read_json_lines(stdout: impl Read, tx: SyncSender<Result<Vec<u8>, TooLong>>, max: usize) {
    let mut r = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("journal: reading journalctl's output: {e}");
                return;
            }
        };
        if buf.is_empty() {
            if !line.is_empty() && !too_long {
                let _ = tx.send(Ok(line));
            }
            return;
        }
        let (part, consumed, complete) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if !too_long {
            if line.len() + part.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(part);
            }
        }
        r.consume(consumed);
        if complete {
            let msg = if too_long {
                Err(TooLong)
            } else {
                Ok(std::mem::take(&mut line))
            };
            too_long = false;
            if tx.send(msg).is_err() {
                return;
            }
        }
    }
}

/// Logs journalctl's stderr (its warnings, e.g. "Hint: You are currently
/// not seeing messages from other users and the system") and keeps the
/// last line for the exit message.
fn log_stderr(stderr: impl Read, source: usize, last: &Mutex<Option<String>>) {
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { return };
        let mut text = String::from_utf8_lossy(&line).trim_end().to_owned();
        if text.is_empty() {
            continue;
        }
        if text.len() > 1024 {
            let mut end = 1024;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        tracing::warn!(source, "journalctl: {text}");
        if let Ok(mut l) = last.lock() {
            *l = Some(text);
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(STOP_CHECK));
    }
}

/// Logs skipped entries at most every 10 s, with the number left unlogged,
/// so that a flood of bad entries cannot flood authwatch's own log.
#[derive(Default)]
struct WarnLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimit {
    fn warn(&mut self, source: usize, msg: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10))
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!(
                source,
                "journal: {msg} ({} more not logged)",
                self.suppressed
            );
        } else {
            tracing::warn!(source, "journal: {msg}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURSOR: &str = "s=1fcc2c873faa499c94659d56fd904224;i=1;b=00000000000000000000000000000000;m=0;t=661baf0dd8080;x=80d19f165632bc3e";

    /// A journalctl JSON object with `__CURSOR` and `__REALTIME_TIMESTAMP`
    /// (2026-12-03T13:43:13.123456Z) and the given extra members.
    fn json(extra: &str) -> Vec<u8> {
        let sep = if extra.is_empty() { "" } else { "," };
        format!(
            r#"{{"__CURSOR":"{CURSOR}","__REALTIME_TIMESTAMP":"1796305393123456","__MONOTONIC_TIMESTAMP":"0","_BOOT_ID":"0"{sep}{extra}}}"#
        )
        .into_bytes()
    }

    fn line(extra: &str) -> String {
        let (l, _, _) = entry_to_line(&json(extra)).unwrap().unwrap();
        String::from_utf8(l).unwrap()
    }

    const SSHD: &str = r#""_COMM":"sshd-session","_PID":"123","_HOSTNAME":"web1""#;

    #[test]
    fn sshd_entry() {
        let j = json(&format!(
            r#"{SSHD},"MESSAGE":"Failed password for root from 203.0.113.7 port 22 ssh2""#
        ));
        let (l, cursor, t) = entry_to_line(&j).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(l).unwrap(),
            "2026-12-03T13:43:13.123Z web1 sshd-session[123]: Failed password for root from 203.0.113.7 port 22 ssh2"
        );
        assert_eq!(cursor, CURSOR);
        assert_eq!(t, Timestamp::from_millis(1_796_305_393_123));
    }

    #[test]
    fn the_line_parses_as_a_syslog_header() {
        let l = line(&format!(r#"{SSHD},"MESSAGE":"hello""#));
        let mut clock = crate::time::SyslogClock::new(jiff::tz::TimeZone::UTC, Timestamp::now());
        let h = crate::syslog::parse_header(l.as_bytes(), &mut clock).unwrap();
        assert_eq!(h.time, Timestamp::from_millis(1_796_305_393_123));
        assert_eq!(h.host, b"web1");
        assert_eq!(h.program, b"sshd-session");
        assert_eq!(h.pid, Some(&b"123"[..]));
        assert_eq!(h.message, b"hello");
    }

    #[test]
    fn whole_seconds_keep_three_digits() {
        let j = format!(
            r#"{{"__CURSOR":"{CURSOR}","__REALTIME_TIMESTAMP":"1796305393000999",{SSHD},"MESSAGE":"m"}}"#
        );
        let (l, _, t) = entry_to_line(j.as_bytes()).unwrap().unwrap();
        assert!(l.starts_with(b"2026-12-03T13:43:13.000Z web1 "), "{l:?}");
        assert_eq!(t, Timestamp::from_millis(1_796_305_393_000));
    }

    #[test]
    fn forged_identifier_keeps_the_real_program() {
        // `logger -t sshd -i`: the client's SYSLOG_IDENTIFIER and
        // SYSLOG_PID are not used.
        let l = line(
            r#""_COMM":"logger","_PID":"999","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","SYSLOG_PID":"1","MESSAGE":"Failed password for root from 198.51.100.9 port 22 ssh2""#,
        );
        assert_eq!(
            l,
            "2026-12-03T13:43:13.123Z web1 logger[999]: Failed password for root from 198.51.100.9 port 22 ssh2"
        );
    }

    #[test]
    fn missing_or_unusable_comm_or_pid_is_a_dash() {
        for fields in [
            // A kernel message: no _COMM, no _PID.
            r#""_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"kernel""#,
            r#""_COMM":"sshd","_HOSTNAME":"web1""#,
            r#""_PID":"5","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd""#,
            r#""_COMM":"(sd-pam)","_PID":"5","_HOSTNAME":"web1""#,
            r#""_COMM":"ss hd","_PID":"5","_HOSTNAME":"web1""#,
            r#""_COMM":"sshd","_PID":"5x","_HOSTNAME":"web1""#,
            r#""_COMM":"sshd","_PID":"12345678901","_HOSTNAME":"web1""#,
            r#""_COMM":["sshd","logger"],"_PID":"5","_HOSTNAME":"web1""#,
            r#""_COMM":[115,115,104,100,255],"_PID":"5","_HOSTNAME":"web1""#,
        ] {
            assert_eq!(
                line(&format!(r#"{fields},"MESSAGE":"m""#)),
                "2026-12-03T13:43:13.123Z web1 -: m",
                "{fields}"
            );
        }
        // A byte-array _COMM that is a valid name is used.
        assert_eq!(
            line(r#""_COMM":[115,115,104,100],"_PID":"5","_HOSTNAME":"h","MESSAGE":"m""#),
            "2026-12-03T13:43:13.123Z h sshd[5]: m"
        );
    }

    #[test]
    fn unusable_hostname_is_a_dash() {
        for h in [
            r#""""#,
            r#""web 1""#,
            r#""web\t1""#,
            r#""a\nb""#,
            r#"["a","b"]"#,
        ] {
            assert_eq!(
                line(&format!(
                    r#""_COMM":"sshd","_PID":"1","_HOSTNAME":{h},"MESSAGE":"m""#
                )),
                "2026-12-03T13:43:13.123Z - sshd[1]: m",
                "{h}"
            );
        }
        let long = "h".repeat(256);
        assert_eq!(
            line(&format!(
                r#""_COMM":"sshd","_PID":"1","_HOSTNAME":"{long}","MESSAGE":"m""#
            )),
            "2026-12-03T13:43:13.123Z - sshd[1]: m"
        );
        assert_eq!(
            line(r#""_COMM":"sshd","_PID":"1","MESSAGE":"m""#),
            "2026-12-03T13:43:13.123Z - sshd[1]: m"
        );
    }

    #[test]
    fn newlines_cannot_make_a_second_line() {
        // As a JSON string (hand-written) and as bytes (journalctl writes a
        // message with a control character as an array).
        let text = line(&format!(
            r#"{SSHD},"MESSAGE":"a\nMar  5 06:25:01 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\r\n\n""#
        ));
        assert_eq!(
            text,
            "2026-12-03T13:43:13.123Z web1 sshd-session[123]: a\\nMar  5 06:25:01 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\r"
        );
        let bytes = line(&format!(
            r#"{SSHD},"MESSAGE":[108,105,110,101,49,10,108,105,110,101,50,13,120,10]"#
        ));
        assert_eq!(
            bytes,
            "2026-12-03T13:43:13.123Z web1 sshd-session[123]: line1\\nline2\rx"
        );
        assert!(!bytes.contains('\n'));
    }

    #[test]
    fn non_utf8_message_survives() {
        let j = json(&format!(
            r#"{SSHD},"MESSAGE":[73,110,118,97,108,105,100,32,117,115,101,114,32,255,254,32,102,114,111,109,32,50,48,51,46,48,46,49,49,51,46,56]"#
        ));
        let (l, _, _) = entry_to_line(&j).unwrap().unwrap();
        let want = [
            &b"2026-12-03T13:43:13.123Z web1 sshd-session[123]: Invalid user "[..],
            &[0xff, 0xfe],
            b" from 203.0.113.8",
        ]
        .concat();
        assert_eq!(l, want);
    }

    #[test]
    fn empty_message_is_a_line() {
        assert_eq!(
            line(&format!(r#"{SSHD},"MESSAGE":"""#)),
            "2026-12-03T13:43:13.123Z web1 sshd-session[123]: "
        );
        assert_eq!(
            line(&format!(r#"{SSHD},"MESSAGE":[]"#)),
            "2026-12-03T13:43:13.123Z web1 sshd-session[123]: "
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let msg = "x".repeat(70_000);
        let l = line(&format!(r#"{SSHD},"MESSAGE":"{msg}""#));
        assert_eq!(l.len(), MAX_LINE_BYTES);
        // Escapes count toward the limit.
        let msg = "\\n".repeat(40_000);
        let l = line(&format!(r#"{SSHD},"MESSAGE":"{msg}x""#));
        assert_eq!(l.len(), MAX_LINE_BYTES);
        let e = parse_entry(&json(&format!(r#"{SSHD},"MESSAGE":"{msg}x""#)), 100).unwrap();
        let built = e.line.unwrap();
        assert!(built.cut);
        assert_eq!(built.bytes.len(), 100);
        // Exactly at the limit is not cut.
        let head = "2026-12-03T13:43:13.123Z web1 sshd-session[123]: ".len();
        let msg = "y".repeat(100 - head);
        let built = parse_entry(&json(&format!(r#"{SSHD},"MESSAGE":"{msg}""#)), 100)
            .unwrap()
            .line
            .unwrap();
        assert!(!built.cut);
        assert_eq!(built.bytes.len(), 100);
    }

    #[test]
    fn no_message_is_no_line() {
        assert_eq!(entry_to_line(&json(SSHD)).unwrap(), None);
        assert_eq!(
            entry_to_line(&json(&format!(r#"{SSHD},"MESSAGE":null"#))).unwrap(),
            None
        );
        // The reader still learns the cursor.
        let e = parse_entry(&json(SSHD), MAX_LINE_BYTES).unwrap();
        assert_eq!(e.cursor, CURSOR);
    }

    #[test]
    fn errors() {
        let no_cursor = br#"{"__REALTIME_TIMESTAMP":"1796305393123456","MESSAGE":"m"}"#;
        assert!(matches!(
            entry_to_line(no_cursor),
            Err(JournalError::MissingCursor)
        ));
        for c in [r#""""#, r#""a b""#, r#"["a","b"]"#, "[97]"] {
            let j = format!(r#"{{"__CURSOR":{c},"__REALTIME_TIMESTAMP":"1","MESSAGE":"m"}}"#);
            assert!(
                matches!(entry_to_line(j.as_bytes()), Err(JournalError::BadCursor)),
                "{c}"
            );
        }
        for t in [
            r#""""#,
            r#""-1""#,
            r#""1e6""#,
            r#""99999999999999999999999""#,
            r#""18446744073709551615""#,
        ] {
            let j = format!(r#"{{"__CURSOR":"c","__REALTIME_TIMESTAMP":{t},"MESSAGE":"m"}}"#);
            assert!(
                matches!(entry_to_line(j.as_bytes()), Err(JournalError::BadTimestamp)),
                "{t}"
            );
        }
        let no_time = br#"{"__CURSOR":"c","MESSAGE":"m"}"#;
        assert!(matches!(
            entry_to_line(no_time),
            Err(JournalError::BadTimestamp)
        ));
        assert!(matches!(
            entry_to_line(&json(r#""MESSAGE":["one","two"]"#)),
            Err(JournalError::Ambiguous("MESSAGE"))
        ));
        assert!(matches!(
            entry_to_line(&json(r#""MESSAGE":[[1,2],[3]]"#)),
            Err(JournalError::Ambiguous("MESSAGE"))
        ));
        // A key given twice, whichever wins in other parsers.
        for j in [
            json(r#""MESSAGE":"a","MESSAGE":"b""#),
            json(r#""_COMM":"logger","_COMM":"sshd","MESSAGE":"m""#),
        ] {
            assert!(matches!(entry_to_line(&j), Err(JournalError::Json(_))));
        }
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"null",
            br#"{"__CURSOR":"c"} x"#,
            &json(r#""MESSAGE":[1,"a"]"#),
            &json(r#""MESSAGE":[256]"#),
            &json(r#""MESSAGE":[-1]"#),
            &json(r#""MESSAGE":1"#),
            &json(r#""MESSAGE":{"a":1}"#),
        ] {
            assert!(
                matches!(entry_to_line(bad), Err(JournalError::Json(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn spec() -> JournalSpec {
        JournalSpec {
            units: vec!["ssh.service".into()],
            identifiers: vec!["sshd".into(), "sshd-session".into()],
            follow: true,
            ..JournalSpec::default()
        }
    }

    fn args(spec: JournalSpec, cursor: Option<&str>) -> Vec<String> {
        JournalReader::new(spec)
            .unwrap()
            .args(cursor)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn journalctl_arguments() {
        let common = [
            "--output=json",
            "--all",
            "--no-pager",
            "--output-fields=MESSAGE,_COMM,_PID,_HOSTNAME",
        ];
        let matches = [
            "_SYSTEMD_UNIT=ssh.service",
            "+",
            "SYSLOG_IDENTIFIER=sshd",
            "+",
            "SYSLOG_IDENTIFIER=sshd-session",
        ];
        let want = |mid: &[&str]| -> Vec<String> {
            common
                .iter()
                .chain(mid)
                .chain(&matches)
                .map(|s| s.to_string())
                .collect()
        };
        assert_eq!(args(spec(), None), want(&["--follow", "--lines=0"]));
        assert_eq!(
            args(spec(), Some("s=1;i=2")),
            want(&["--follow", "--after-cursor=s=1;i=2", "--no-tail"])
        );
        let s = JournalSpec {
            start_at: StartAt::Beginning,
            follow: false,
            directory: Some("/var/log/copied".into()),
            cursor: Some("s=9".into()),
            ..spec()
        };
        assert_eq!(
            args(s.clone(), None),
            want(&["--merge", "--directory=/var/log/copied", "--no-tail"])
        );
        let s = JournalSpec {
            directory: None,
            files: vec!["/j/a.journal".into(), "/j/b.journal".into()],
            ..s
        };
        assert_eq!(
            args(s, Some("c")),
            want(&[
                "--merge",
                "--file=/j/a.journal",
                "--file=/j/b.journal",
                "--after-cursor=c",
                "--no-tail",
            ])
        );
    }

    #[test]
    fn match_terms() {
        let s = JournalSpec {
            units: vec!["ssh".into(), "sshd.service".into()],
            identifiers: vec![],
            follow: false,
            ..spec()
        };
        let a = args(s, None);
        assert_eq!(
            a[a.len() - 3..],
            [
                "_SYSTEMD_UNIT=ssh.service",
                "+",
                "_SYSTEMD_UNIT=sshd.service"
            ]
        );
        let s = JournalSpec {
            units: vec![],
            identifiers: vec![],
            ..spec()
        };
        assert_eq!(args(s, None).last().unwrap(), "--lines=0");
    }

    #[test]
    fn relative_files_become_absolute() {
        let s = JournalSpec {
            files: vec!["x.journal".into()],
            ..spec()
        };
        let a = args(s, None);
        let f = a.iter().find(|a| a.starts_with("--file=")).unwrap();
        assert!(
            f.starts_with("--file=/") && f.ends_with("/x.journal"),
            "{f}"
        );
    }

    #[test]
    fn bad_specs() {
        let bad = [
            JournalSpec {
                directory: Some("/d".into()),
                files: vec!["/f".into()],
                ..spec()
            },
            JournalSpec {
                units: vec!["".into()],
                ..spec()
            },
            JournalSpec {
                units: vec!["ssh@*.service".into()],
                ..spec()
            },
            JournalSpec {
                identifiers: vec!["a\nb".into()],
                ..spec()
            },
            JournalSpec {
                cursor: Some("".into()),
                ..spec()
            },
            JournalSpec {
                cursor: Some("s=1\n".into()),
                ..spec()
            },
        ];
        for s in bad {
            assert!(JournalReader::new(s.clone()).is_err(), "{s:?}");
        }
    }

    #[test]
    fn json_lines_are_split_and_capped() {
        let input = b"{\"a\":1}\n0123456789abcdef\n{\"b\":2}\ntail".to_vec();
        let (tx, rx) = mpsc::sync_channel(16);
        read_json_lines(&input[..], tx, 10);
        let got: Vec<_> = rx.iter().map(|r| r.map_err(|TooLong| "too long")).collect();
        assert_eq!(
            got,
            vec![
                Ok(b"{\"a\":1}".to_vec()),
                Err("too long"),
                Ok(b"{\"b\":2}".to_vec()),
                Ok(b"tail".to_vec()),
            ]
        );
    }
}
