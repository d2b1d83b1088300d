//! The engine: one stream of lines through rules and detector.
//!
//! It owns the match state and the detector, so it runs in exactly one
//! task (the daemon's) or thread (the replay's), with no locks on the
//! per-line path. It does no I/O: lines in, decisions out, counters kept.

use std::sync::Arc;

use crate::detector::{Decision, Detector};
use crate::ip::Allowlist;
use crate::rules::{RuleFilter, RuleSet, Tally};
use crate::time::Timestamp;

/// What the engine has seen, for the replay summary and the metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EngineStats {
    pub lines: u64,
    pub bytes: u64,
    /// Lines at `max_line_bytes` or longer: cut by the reader, and never
    /// matched, since the part that would anchor their fields is gone.
    pub lines_cut: u64,
    /// Hits per rule (index = rule index), allowlisted ones included.
    pub matched: Vec<u64>,
    /// Hits from allowlisted addresses: counted here, never blocked.
    pub allowlisted: u64,
    pub decisions: u64,
}

pub struct Engine {
    rules: Arc<RuleSet>,
    /// The rules each source's lines go to, by source index.
    filters: Vec<RuleFilter>,
    state: crate::rules::MatchState,
    detector: Detector,
    allowlist: Allowlist,
    max_line_bytes: usize,
    last_sweep: Timestamp,
    newest_hit: Option<Timestamp>,
    stats: EngineStats,
}

/// Sweep the detector once per this much event time: often enough to keep
/// memory close to the live set, rarely enough to cost nothing per line.
const SWEEP_EVERY_MS: i64 = 1_000;

impl Engine {
    pub fn new(
        rules: Arc<RuleSet>,
        filters: Vec<RuleFilter>,
        allowlist: Allowlist,
        max_line_bytes: usize,
    ) -> Engine {
        let detector = Detector::new(rules.policies());
        let state = rules.new_state(Timestamp::now());
        let matched = vec![0; rules.rules().len()];
        Engine {
            rules,
            filters,
            state,
            detector,
            allowlist,
            max_line_bytes,
            last_sweep: Timestamp::default(),
            newest_hit: None,
            stats: EngineStats {
                matched,
                ..EngineStats::default()
            },
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn misses(&self) -> crate::rules::MissCounts {
        self.state.misses
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    pub fn detector_mut(&mut self) -> &mut Detector {
        &mut self.detector
    }

    /// See [`crate::rules::MatchState::set_reference`].
    pub fn set_reference(&mut self, reference: Timestamp) {
        self.state.set_reference(reference);
    }

    /// Processes every line in `data` (lines separated by `\n`; the last
    /// may lack it) from source `source`, read at `read_time`.
    pub fn lines(
        &mut self,
        source: usize,
        data: &[u8],
        read_time: Timestamp,
        out: &mut impl FnMut(Decision),
    ) {
        // An empty chunk (a file just opened, or truncated) holds no line.
        if data.is_empty() {
            return;
        }
        for line in data
            .strip_suffix(b"\n")
            .unwrap_or(data)
            .split(|&b| b == b'\n')
        {
            self.line(source, line, read_time, out);
        }
    }

    /// The event time of the newest failure counted so far: what "now" is
    /// for the windows, live or catching up on a backlog.
    pub fn newest_hit(&self) -> Option<Timestamp> {
        self.newest_hit
    }

    /// Processes one line, without its `\n`.
    pub fn line(
        &mut self,
        source: usize,
        line: &[u8],
        read_time: Timestamp,
        out: &mut impl FnMut(Decision),
    ) {
        self.stats.lines += 1;
        self.stats.bytes += line.len() as u64 + 1;
        if line.len() >= self.max_line_bytes {
            self.stats.lines_cut += 1;
            return;
        }
        let Some(filter) = self.filters.get(source) else {
            return;
        };
        let Engine {
            rules,
            state,
            detector,
            allowlist,
            stats,
            last_sweep,
            newest_hit,
            ..
        } = self;
        rules.match_line(state, filter, line, &mut |hit| {
            if hit.tally == Tally::Reset {
                // A success, not a failure: no match in the stats. The
                // detector forgets the address's count and decides nothing.
                detector.observe(&hit, hit.time.unwrap_or(read_time));
                return;
            }
            stats.matched[hit.rule.0 as usize] += 1;
            if allowlist.contains(&hit.ip) {
                stats.allowlisted += 1;
                return;
            }
            let t = hit.time.unwrap_or(read_time);
            if newest_hit.is_none_or(|n| t > n) {
                *newest_hit = Some(t);
            }
            if t.as_millis() - last_sweep.as_millis() >= SWEEP_EVERY_MS {
                detector.sweep(t);
                *last_sweep = t;
            }
            for d in detector.observe(&hit, t) {
                stats.decisions += 1;
                out(d);
            }
        });
    }
}
