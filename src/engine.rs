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

    /// Holds no more windows than `limits` allow (instead of the
    /// detector's default). Call it before the first line.
    pub fn with_detector_limits(mut self, limits: crate::detector::DetectorLimits) -> Engine {
        self.detector = Detector::with_limits(self.rules.policies(), limits);
        self
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
            // The clock that forgets (the sweep) and that checkpoints lag
            // behind never runs ahead of the time the line was read: a
            // line stamped in the future (a skewed clock, or a forged
            // line) would otherwise make the sweep drop every count in
            // progress, and a restart skip the lines that rebuild them.
            // Its own event time still counts in its own key's window.
            let clock = t.min(read_time);
            if newest_hit.is_none_or(|n| clock > n) {
                *newest_hit = Some(clock);
            }
            if clock.as_millis() - last_sweep.as_millis() >= SWEEP_EVERY_MS {
                detector.sweep(clock);
                *last_sweep = clock;
            }
            for d in detector.observe(&hit, t) {
                stats.decisions += 1;
                out(d);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shipped(threshold: u32) -> Engine {
        let mut rules = RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
            .expect("the shipped rules load");
        rules.override_all(Some(threshold), None);
        let rules = Arc::new(rules);
        let filters = vec![rules.filter_all()];
        Engine::new(rules, filters, Allowlist::loopback(), 65_536)
    }

    fn jwt_failure(ip: &str, ms: i64) -> String {
        format!(
            r#"{{"level":40,"time":{ms},"req":{{"remoteAddress":"{ip}"}},"msg":"invalid signature"}}"#
        )
    }

    #[test]
    fn a_line_stamped_in_the_future_does_not_sweep_counts_in_progress() {
        let mut engine = shipped(3);
        let now = Timestamp::from_millis(1_800_000_000_000);
        let year_ms = 365 * 86_400_000;
        let mut blocked = Vec::new();
        let lines = [
            jwt_failure("203.0.113.7", now.as_millis() - 3_000),
            jwt_failure("203.0.113.7", now.as_millis() - 2_000),
            // Another client's line, a year ahead of the clock.
            jwt_failure("198.51.100.9", now.as_millis() + year_ms),
            jwt_failure("203.0.113.7", now.as_millis() - 1_000),
        ];
        for line in &lines {
            engine.line(0, line.as_bytes(), now, &mut |d| {
                blocked.push(d.subject.to_string())
            });
        }
        assert_eq!(blocked, ["203.0.113.7"], "the third failure still blocks");
        assert_eq!(engine.stats().matched.iter().sum::<u64>(), 4);
        // Nor does it move the checkpoints' clock past the read time.
        assert_eq!(engine.newest_hit(), Some(now));
    }
}
