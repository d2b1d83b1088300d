//! `authwatch replay`: old logs through the live rules and detector,
//! from their first line, at their own event times — what fail2ban-regex
//! is to fail2ban, but with the real decisions.
//!
//! It writes nothing to Redis. Each block decision is printed to stdout
//! (text, or one JSON object per line), a summary goes to stderr.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::detector::Decision;
use crate::engine::{Engine, EngineStats};
use crate::ip::Allowlist;
use crate::rules::RuleSet;
use crate::source::lines::LineReader;
use crate::time::Timestamp;

/// Reading blocks of this size keeps syscalls rare and memory flat.
const READ_BUF_BYTES: usize = 256 * 1024;

pub struct ReplayOptions {
    /// Files to read in order; `-` is standard input.
    pub inputs: Vec<PathBuf>,
    pub json: bool,
    pub max_line_bytes: usize,
    /// Only the rules of this source; `None` applies every rule.
    pub source: Option<String>,
}

/// One decision as `replay --json` prints it.
#[derive(Serialize)]
struct DecisionLine<'a> {
    ip: String,
    rule: &'a str,
    count: u32,
    window_secs: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    expires_at: Timestamp,
}

/// What a replay did, for its summary.
pub struct ReplaySummary {
    pub stats: EngineStats,
    pub malformed: u64,
    pub ambiguous: u64,
    /// Lines from a trusted proxy whose `X-Forwarded-For` named no client.
    pub unresolved: u64,
    /// Hits counted at their read time: their time was unreadable.
    pub unreadable_time: u64,
    pub elapsed: std::time::Duration,
}

/// Runs the replay, writing decisions to `out`.
pub fn run(
    rules: Arc<RuleSet>,
    allowlist: Allowlist,
    opts: &ReplayOptions,
    out: &mut dyn Write,
) -> io::Result<ReplaySummary> {
    let filter = match &opts.source {
        Some(name) => rules.filter_for_source(name),
        None => rules.filter_all(),
    };
    let mut engine = Engine::new(rules, vec![filter], allowlist, opts.max_line_bytes);
    let started = Instant::now();
    let mut write_error: Option<io::Error> = None;
    for input in &opts.inputs {
        let (reader, reference): (Box<dyn Read>, Timestamp) = if input.as_os_str() == "-" {
            (Box::new(io::stdin().lock()), Timestamp::now())
        } else {
            let f = File::open(input)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", input.display())))?;
            // Year-less syslog times are placed relative to the file's
            // last write, so last December's log replays as last December.
            let mtime = f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| Timestamp::from_millis(d.as_millis() as i64))
                .unwrap_or_else(Timestamp::now);
            (Box::new(f), mtime)
        };
        engine.set_reference(reference);
        let mut lines = LineReader::new(reader, opts.max_line_bytes, READ_BUF_BYTES);
        let read_time = reference;
        let mut emit = |d: Decision| {
            if write_error.is_none() {
                if let Err(e) = print_decision(out, &d, opts.json) {
                    write_error = Some(e);
                }
            }
        };
        loop {
            let more = lines.read_batch(&mut |line| engine.line(0, line, read_time, &mut emit))?;
            if !more {
                break;
            }
        }
        if let Some(e) = write_error.take() {
            return Err(e);
        }
    }
    out.flush()?;
    let misses = engine.misses();
    Ok(ReplaySummary {
        stats: engine.stats().clone(),
        malformed: misses.malformed,
        ambiguous: misses.ambiguous,
        unresolved: misses.unresolved,
        unreadable_time: misses.unreadable_time,
        elapsed: started.elapsed(),
    })
}

fn print_decision(out: &mut dyn Write, d: &Decision, json: bool) -> io::Result<()> {
    if json {
        let line = DecisionLine {
            ip: d.subject.to_string(),
            rule: &d.rule,
            count: d.count,
            window_secs: d.window.as_secs(),
            first_seen: d.first_seen,
            last_seen: d.last_seen,
            expires_at: d.expires_at(),
        };
        serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
        out.write_all(b"\n")
    } else {
        writeln!(
            out,
            "{}  block {}  rule={} count={} window={} first_seen={} expires={}",
            d.last_seen,
            d.subject,
            d.rule,
            d.count,
            crate::duration::format(d.window),
            d.first_seen,
            d.expires_at()
        )
    }
}

impl ReplaySummary {
    /// The human summary printed to stderr.
    pub fn render(&self, rules: &RuleSet) -> String {
        let s = &self.stats;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let per_rule: Vec<String> = rules
            .rules()
            .iter()
            .zip(&s.matched)
            .map(|(r, n)| format!("{}={n}", r.id))
            .collect();
        format!(
            "replay: {} lines ({:.1} MB) in {:.3} s, {:.0} lines/s\n\
             matched per rule: {}\n\
             blocks: {}; allowlisted hits: {}; lines cut: {}; malformed json: {}; ambiguous json: {}; \
             proxied lines without a client: {}; hits with an unreadable time: {}",
            s.lines,
            s.bytes as f64 / 1e6,
            secs,
            s.lines as f64 / secs,
            per_rule.join(", "),
            s.decisions,
            s.allowlisted,
            s.lines_cut,
            self.malformed,
            self.ambiguous,
            self.unresolved,
            self.unreadable_time
        )
    }
}
