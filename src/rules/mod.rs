//! Rules: compiled once from rule files; they turn a line into hits.
//!
//! A rule file holds `[[rule]]` tables (the format is documented in
//! `README.md` and in the shipped files under `rules/`). Loading goes
//! through two stages, like the configuration: [`raw`] structs with spans,
//! then validated, compiled [`Rule`]s. Every mistake is reported with the
//! file, line, rule id and field, all at once, and a rule set with any
//! mistake is refused whole.
//!
//! Matching is the hot path. [`RuleSet::match_line`] runs the literal
//! [`prefilter`] first; only lines that contain a rule's literal reach a
//! regex or the JSON scanner, and a line that matches nothing allocates
//! nothing.

mod hit;
pub mod json;
pub mod json_scan;
mod prefilter;
mod raw;
mod text;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::bytes::CaptureLocations;
use toml::Spanned;

pub use hit::{Hit, RuleIdx, Tally};

use crate::config::line_at;
use crate::detector::Policy;
use crate::proxy::TrustedProxies;
use crate::time::{SyslogClock, Timestamp};
use json::{FieldSel, JsonMatcher, JsonMiss, Op, Predicate};
use prefilter::Prefilter;
use raw::{RawExample, RawRule, RawRuleFile};
use text::{Pattern, TextFormat};

pub const DEFAULT_THRESHOLD: u32 = 50;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
pub const DEFAULT_BLOCK_FOR: Duration = Duration::from_secs(15 * 60);

/// A mistake in a rule file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    /// The rule id, quoted, or `?` before the id is known.
    pub rule: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RuleError {
    /// `file:line: rule "id": field: message`, leaving out what is not
    /// known (a directory has no line; a syntax error may have no rule id).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if self.rule != "?" {
            write!(f, ": rule {}", self.rule)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuleError {}

/// Every mistake found in a set of rule files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

#[derive(Debug)]
enum Matcher {
    Text {
        format: TextFormat,
        patterns: Vec<Pattern>,
    },
    Json(JsonMatcher),
}

/// What an example line must yield.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Hit {
        ip: IpAddr,
        time: Option<Timestamp>,
        weight: Option<u32>,
    },
    NoMatch,
}

#[derive(Debug, Clone)]
pub struct Example {
    pub line: String,
    /// Where it is written, for messages.
    pub file_line: usize,
    pub expect: Expect,
    /// The proxies trusted while it runs: an example shows what a line
    /// yields behind given proxies, whatever the configuration trusts.
    pub proxies: TrustedProxies,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: Arc<str>,
    pub description: Option<String>,
    pub file: PathBuf,
    pub line: usize,
    /// Names of the sources it reads; `None` means all.
    pub sources: Option<Vec<String>>,
    pub threshold: u32,
    pub window: Duration,
    pub block_for: Duration,
    /// `mode = "shadow"`: decisions are alerted (marked shadow), never
    /// written to Redis — to try a rule on production traffic.
    pub shadow: bool,
    /// How long the Nth offence of an address is blocked (the last step
    /// repeats), counted in Redis; empty: `block_for` every time.
    pub escalate: Vec<Duration>,
    /// IPv6 failures also count per network of this prefix length.
    pub ipv6_prefix: u8,
    pub examples: Vec<Example>,
    matcher: Matcher,
    /// The first of this rule's prefilter units.
    first_unit: u32,
}

impl Rule {
    pub fn policy(&self) -> Policy {
        Policy {
            id: self.id.clone(),
            threshold: self.threshold,
            window: self.window,
            block_for: self.block_for,
            ipv6_prefix: self.ipv6_prefix,
        }
    }

    pub fn is_json(&self) -> bool {
        matches!(self.matcher, Matcher::Json(_))
    }
}

/// Why a line that reached a matcher gave no hit, counted by the engine.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MissCounts {
    /// JSON candidates that were not a valid object within the limits.
    pub malformed: u64,
    /// JSON candidates with the IP, time or chain field twice.
    pub ambiguous: u64,
    /// Lines from a trusted proxy whose `X-Forwarded-For` chain names no
    /// client (see [`crate::proxy::Unresolved`]): counted for nobody.
    pub unresolved: u64,
    /// Hits whose time field (JSON) or `time` capture (text) held no time
    /// authwatch reads (not a miss: they count, at the time they were read,
    /// or a syslog line's at its header's time).
    pub unreadable_time: u64,
}

/// The per-thread scratch state of matching: reusable buffers and the
/// syslog clock. One per task that matches lines.
pub struct MatchState {
    clock: SyslogClock,
    scanner: json_scan::Scanner,
    candidates: Vec<u32>,
    locations: Vec<CaptureLocations>,
    pub misses: MissCounts,
}

impl MatchState {
    /// Year-less syslog timestamps are placed relative to `reference`:
    /// now for a live source, the file's mtime for a replay.
    pub fn set_reference(&mut self, reference: Timestamp) {
        self.clock.set_reference(reference);
    }
}

/// Which rules a source's lines go to, and which proxies are trusted to
/// say who the client is in them.
#[derive(Debug, Clone)]
pub struct RuleFilter {
    rules: Vec<bool>,
    proxies: TrustedProxies,
}

impl RuleFilter {
    fn allows(&self, rule: usize) -> bool {
        self.rules.get(rule).copied().unwrap_or(false)
    }

    /// Only rule `rule` of `count`, behind `proxies`.
    fn only(rule: usize, count: usize, proxies: TrustedProxies) -> RuleFilter {
        let mut rules = vec![false; count];
        rules[rule] = true;
        RuleFilter { rules, proxies }
    }
}

/// Every rule, compiled, with the shared prefilter.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    prefilter: Prefilter,
    /// Unit → (rule, pattern index within the rule).
    units: Vec<(u16, u16)>,
    /// The proxies trusted in every source's lines, unless the source has
    /// its own list in `proxies_by_source`.
    proxies: TrustedProxies,
    proxies_by_source: Vec<(String, TrustedProxies)>,
}

impl RuleSet {
    /// Loads every `*.toml` file in `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
        let err = |message: String| {
            RuleErrors(vec![RuleError {
                file: dir.to_owned(),
                line: 0,
                rule: "?".into(),
                field: "rules_dir".into(),
                message,
            }])
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| err(format!("cannot read the rules directory: {e}")))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(err("no *.toml rule files in the rules directory".into()));
        }
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|e| {
                RuleErrors(vec![RuleError {
                    file: p.clone(),
                    line: 0,
                    rule: "?".into(),
                    field: "file".into(),
                    message: format!("cannot read: {e}"),
                }])
            })?;
            files.push((p, text));
        }
        RuleSet::from_files(&files)
    }

    /// Compiles rule files given as (path, text) pairs.
    pub fn from_files(files: &[(PathBuf, String)]) -> Result<RuleSet, RuleErrors> {
        // Files compile independently, on up to as many threads as there
        // are cores (a hundred rules are most of the daemon's start-up);
        // what depends on their order — ids, rule numbers — is settled
        // after, in file order, so the result and the errors are the same
        // as one thread would give.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len().div_ceil(8))
            .max(1);
        let per_thread = files.len().div_ceil(threads).max(1);
        let compiled: Vec<FileOutcome> = if threads == 1 {
            text::with_pattern_cache(|| files.iter().map(|(p, t)| compile_file(p, t)).collect())
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = files
                    .chunks(per_thread)
                    .map(|chunk| {
                        scope.spawn(move || {
                            text::with_pattern_cache(|| {
                                chunk
                                    .iter()
                                    .map(|(p, t)| compile_file(p, t))
                                    .collect::<Vec<_>>()
                            })
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| match h.join() {
                        Ok(outcomes) => outcomes,
                        // A panic in a compile is a bug; surface it as one.
                        Err(panic) => std::panic::resume_unwind(panic),
                    })
                    .collect()
            })
        };
        RuleSet::assemble(files, compiled)
    }

    /// Numbers the compiled rules in file order and builds the set.
    fn assemble(
        files: &[(PathBuf, String)],
        compiled: Vec<FileOutcome>,
    ) -> Result<RuleSet, RuleErrors> {
        let mut errors = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        let mut units_lits: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
        let mut units: Vec<(u16, u16)> = Vec::new();
        for outcome in compiled {
            let outcomes = match outcome {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for RuleOutcome {
                id,
                id_error,
                limit_error,
                compiled,
            } in outcomes
            {
                if rules.iter().any(|o| *o.id == *id) {
                    errors.push(id_error);
                    continue;
                }
                if rules.len() >= u16::MAX as usize {
                    errors.push(limit_error);
                    continue;
                }
                match compiled {
                    Ok((mut rule, lits)) => {
                        rule.first_unit = units.len() as u32;
                        for (k, l) in lits.into_iter().enumerate() {
                            units.push((rules.len() as u16, k as u16));
                            units_lits.push(l);
                        }
                        rules.push(rule);
                    }
                    Err(mut es) => errors.append(&mut es),
                }
            }
        }
        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        if rules.is_empty() {
            return Err(RuleErrors(vec![RuleError {
                file: files.first().map(|f| f.0.clone()).unwrap_or_default(),
                line: 0,
                rule: "?".into(),
                field: "rule".into(),
                message: "no [[rule]] defined".into(),
            }]));
        }
        let set = RuleSet {
            prefilter: Prefilter::new(&units_lits),
            rules,
            units,
            proxies: TrustedProxies::default(),
            proxies_by_source: Vec::new(),
        };
        let failures = set.check_examples();
        if failures.is_empty() {
            Ok(set)
        } else {
            Err(RuleErrors(failures))
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, idx: RuleIdx) -> Option<&Rule> {
        self.rules.get(idx.0 as usize)
    }

    pub fn policies(&self) -> Vec<Policy> {
        self.rules.iter().map(Rule::policy).collect()
    }

    /// `replay --threshold/--window`: the same values for every rule.
    pub fn override_all(&mut self, threshold: Option<u32>, window: Option<Duration>) {
        for r in &mut self.rules {
            if let Some(t) = threshold {
                r.threshold = t.max(1);
            }
            if let Some(w) = window {
                r.window = w;
            }
        }
    }

    /// The proxies whose `X-Forwarded-For` entries the rules believe, from
    /// the configuration: `default` for every source, and for the sources
    /// named in `by_source`, their own list instead. Without this call no
    /// proxy is trusted.
    pub fn trust_proxies(
        &mut self,
        default: TrustedProxies,
        by_source: Vec<(String, TrustedProxies)>,
    ) {
        self.proxies = default;
        self.proxies_by_source = by_source;
    }

    /// The proxies trusted in lines of every source without its own list.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// The rules that read lines of source `name`, and the proxies trusted
    /// in them.
    pub fn filter_for_source(&self, name: &str) -> RuleFilter {
        let proxies = self
            .proxies_by_source
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&self.proxies, |(_, p)| p);
        RuleFilter {
            rules: self
                .rules
                .iter()
                .map(|r| {
                    r.sources
                        .as_ref()
                        .is_none_or(|s| s.iter().any(|n| n == name))
                })
                .collect(),
            proxies: proxies.clone(),
        }
    }

    /// Every rule, whatever its sources, behind the default proxies: what
    /// `replay` uses.
    pub fn filter_all(&self) -> RuleFilter {
        RuleFilter {
            rules: vec![true; self.rules.len()],
            proxies: self.proxies.clone(),
        }
    }

    pub fn new_state(&self, reference: Timestamp) -> MatchState {
        let mut locations = Vec::with_capacity(self.units.len());
        for &(r, k) in &self.units {
            let locs = match &self.rules[r as usize].matcher {
                Matcher::Text { patterns, .. } => patterns[k as usize].regex.capture_locations(),
                // JSON units carry no regex; keep the index aligned.
                Matcher::Json(_) => empty_locations(),
            };
            locations.push(locs);
        }
        MatchState {
            clock: SyslogClock::system(reference),
            scanner: json_scan::Scanner::new(json_scan::Limits::default()),
            candidates: Vec::with_capacity(16),
            locations,
            misses: MissCounts::default(),
        }
    }

    /// Matches one line (without its `\n`; a trailing `\r` is stripped
    /// here) against the rules `filter` allows, calling `out` for each
    /// hit — at most one per rule, from its first matching pattern.
    pub fn match_line(
        &self,
        st: &mut MatchState,
        filter: &RuleFilter,
        line: &[u8],
        out: &mut impl FnMut(Hit),
    ) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.prefilter.candidates(line, &mut st.candidates);
        if st.candidates.is_empty() {
            return;
        }
        let mut header: Option<Option<crate::syslog::SyslogHeader<'_>>> = None;
        let mut i = 0;
        while i < st.candidates.len() {
            let unit = st.candidates[i] as usize;
            let (r, _) = self.units[unit];
            let rule_idx = r as usize;
            // The candidates of one rule are adjacent (units are numbered
            // rule by rule, and the list is sorted).
            let mut j = i;
            while j < st.candidates.len() && self.units[st.candidates[j] as usize].0 == r {
                j += 1;
            }
            if filter.allows(rule_idx) {
                if let Some(hit) = self.match_rule(st, RuleIdx(r), filter, i..j, line, &mut header)
                {
                    out(hit);
                }
            }
            i = j;
        }
    }

    fn match_rule<'l>(
        &self,
        st: &mut MatchState,
        idx: RuleIdx,
        filter: &RuleFilter,
        cands: std::ops::Range<usize>,
        line: &'l [u8],
        header: &mut Option<Option<crate::syslog::SyslogHeader<'l>>>,
    ) -> Option<Hit> {
        match &self.rules[idx.0 as usize].matcher {
            Matcher::Json(m) => match m.run(&mut st.scanner, line, &mut st.clock) {
                Ok(m) => {
                    let ip = client(
                        &filter.proxies,
                        &mut st.misses,
                        m.ip,
                        m.forwarded.as_deref().map(str::as_bytes),
                    )?;
                    st.misses.unreadable_time += u64::from(m.time_unreadable);
                    Some(Hit {
                        rule: idx,
                        ip,
                        time: m.time,
                        weight: 1,
                        session: None,
                        tally: Tally::Each,
                    })
                }
                Err(JsonMiss::Malformed) => {
                    st.misses.malformed += 1;
                    None
                }
                Err(JsonMiss::Ambiguous) => {
                    st.misses.ambiguous += 1;
                    None
                }
                Err(JsonMiss::NoMatch) => None,
            },
            Matcher::Text {
                format: TextFormat::Plain,
                patterns,
            } => {
                for c in cands {
                    let unit = st.candidates[c];
                    let k = self.units[unit as usize].1 as usize;
                    let p = &patterns[k];
                    if let Some(m) = text::run(
                        p,
                        &mut st.locations[unit as usize],
                        line,
                        &mut st.clock,
                        &filter.proxies,
                    ) {
                        // A line whose chain names no client is still this
                        // pattern's: no later pattern may read it (and
                        // count the proxy).
                        let ip = client(&filter.proxies, &mut st.misses, m.ip, m.forwarded)?;
                        st.misses.unreadable_time += u64::from(m.time_unreadable);
                        return Some(Hit {
                            rule: idx,
                            ip,
                            time: m.time,
                            weight: m.weight,
                            session: None,
                            tally: p.tally,
                        });
                    }
                }
                None
            }
            Matcher::Text {
                format:
                    TextFormat::Syslog {
                        programs,
                        session_by_pid,
                    },
                patterns,
            } => {
                let h =
                    header.get_or_insert_with(|| crate::syslog::parse_header(line, &mut st.clock));
                let h = h.as_ref()?;
                if !programs.is_empty() && !programs.iter().any(|p| p.as_slice() == h.program) {
                    return None;
                }
                let (message, repeat) = text::unwrap_repeated(h.message).unwrap_or((h.message, 1));
                for c in cands {
                    let unit = st.candidates[c];
                    let k = self.units[unit as usize].1 as usize;
                    let p = &patterns[k];
                    if let Some(m) = text::run(
                        p,
                        &mut st.locations[unit as usize],
                        message,
                        &mut st.clock,
                        &filter.proxies,
                    ) {
                        let ip = client(&filter.proxies, &mut st.misses, m.ip, m.forwarded)?;
                        st.misses.unreadable_time += u64::from(m.time_unreadable);
                        return Some(Hit {
                            rule: idx,
                            ip,
                            time: Some(m.time.unwrap_or(h.time)),
                            weight: m.weight.saturating_mul(repeat),
                            session: if *session_by_pid {
                                text::session_of(h)
                            } else {
                                None
                            },
                            tally: p.tally,
                        });
                    }
                }
                None
            }
        }
    }

    /// Runs every rule's examples against that rule alone; returns one
    /// error per example that does not do what it says.
    pub fn check_examples(&self) -> Vec<RuleError> {
        // Like compiling, on up to as many threads as there are cores, each
        // with its own match state over a range of rules; the errors come
        // back in rule order.
        let n = self.rules.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(n.div_ceil(8))
            .max(1);
        if threads == 1 {
            return self.check_examples_of(0..n);
        }
        let per_thread = n.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .step_by(per_thread)
                .map(|start| {
                    scope.spawn(move || self.check_examples_of(start..(start + per_thread).min(n)))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(errors) => errors,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    }

    fn check_examples_of(&self, range: std::ops::Range<usize>) -> Vec<RuleError> {
        let mut st = self.new_state(Timestamp::now());
        let mut errors = Vec::new();
        for (i, rule) in self
            .rules
            .iter()
            .enumerate()
            .skip(range.start)
            .take(range.len())
        {
            for ex in &rule.examples {
                let filter = RuleFilter::only(i, self.rules.len(), ex.proxies.clone());
                let mut hit = None;
                self.match_line(&mut st, &filter, ex.line.as_bytes(), &mut |h| hit = Some(h));
                let fail = |message: String| RuleError {
                    file: rule.file.clone(),
                    line: ex.file_line,
                    rule: format!("{:?}", &*rule.id),
                    field: "example".into(),
                    message,
                };
                match (&ex.expect, hit) {
                    (Expect::NoMatch, None) => {}
                    (Expect::NoMatch, Some(h)) => {
                        errors.push(fail(format!("must not match, but yields IP {}", h.ip)));
                    }
                    (Expect::Hit { .. }, None) => errors.push(fail("does not match".into())),
                    (Expect::Hit { ip, time, weight }, Some(h)) => {
                        if h.ip != *ip {
                            errors.push(fail(format!("yields IP {}, expected {ip}", h.ip)));
                        } else if time.is_some() && h.time != *time {
                            let got = h
                                .time
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| "no time".into());
                            errors.push(fail(format!(
                                "yields time {got}, expected {}",
                                time.unwrap_or_default()
                            )));
                        } else if weight.is_some_and(|w| w != h.weight) {
                            errors.push(fail(format!(
                                "counts {} failures, expected {}",
                                h.weight,
                                weight.unwrap_or(1)
                            )));
                        }
                    }
                }
            }
        }
        errors
    }
}

/// The client of a hit: the captured address, or, when the rule logged an
/// `X-Forwarded-For` chain beside it, whom the trusted proxies say it is.
/// `None` (and counted) when the chain names no one.
fn client(
    proxies: &TrustedProxies,
    misses: &mut MissCounts,
    peer: IpAddr,
    forwarded: Option<&[u8]>,
) -> Option<IpAddr> {
    let Some(chain) = forwarded else {
        return Some(peer);
    };
    match proxies.resolve(peer, chain) {
        Ok(ip) => Some(ip),
        Err(_) => {
            misses.unresolved += 1;
            None
        }
    }
}

fn empty_locations() -> CaptureLocations {
    static EMPTY: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| regex::bytes::Regex::new("").expect("the empty regex compiles"))
        .capture_locations()
}

/// Where a rule is being compiled, for its error messages.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    rule: String,
}

impl Ctx<'_> {
    fn err(&self, span: std::ops::Range<usize>, field: &str, message: String) -> RuleError {
        RuleError {
            file: self.file.to_owned(),
            line: line_at(self.text, span.start),
            rule: self.rule.clone(),
            field: field.to_owned(),
            message,
        }
    }
}

/// A string or a list of strings, as several rule fields accept.
fn strings(ctx: &Ctx<'_>, v: &Spanned<toml::Value>, field: &str) -> Result<Vec<String>, RuleError> {
    let list = match v.get_ref() {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ctx.err(
                    v.span(),
                    field,
                    "must be a string or a list of strings".into(),
                )
            })?,
        _ => {
            return Err(ctx.err(
                v.span(),
                field,
                "must be a string or a list of strings".into(),
            ))
        }
    };
    if list.is_empty() || list.iter().any(|s| s.is_empty()) {
        return Err(ctx.err(v.span(), field, "must not be empty".into()));
    }
    Ok(list)
}

/// The most steps an `escalate` ladder may have.
pub const MAX_ESCALATE_STEPS: usize = 16;

/// `escalate = ["15m", "1h", …]`: at least one step, each longer than
/// zero and none shorter than the one before (a ladder that goes down is
/// a typo, not a policy).
fn escalate_ladder(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    errors: &mut Vec<RuleError>,
) -> Vec<Duration> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let steps = raw.get_ref();
    if steps.is_empty() || steps.len() > MAX_ESCALATE_STEPS {
        errors.push(ctx.err(
            raw.span(),
            "escalate",
            format!("must list 1 to {MAX_ESCALATE_STEPS} durations; omit it to block for block_for every time"),
        ));
        return Vec::new();
    }
    let mut ladder = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let field = format!("escalate[{i}]");
        match crate::duration::parse(s.get_ref()) {
            Ok(d) if d.is_zero() => {
                errors.push(ctx.err(s.span(), &field, "must be longer than zero".into()))
            }
            Ok(d) if ladder.last().is_some_and(|&prev| d < prev) => errors.push(ctx.err(
                s.span(),
                &field,
                format!("{:?} is shorter than the step before it", s.get_ref()),
            )),
            Ok(d) => ladder.push(d),
            Err(e) => errors.push(ctx.err(s.span(), &field, e.to_string())),
        }
    }
    if ladder.len() == steps.len() {
        ladder
    } else {
        Vec::new()
    }
}

type Compiled = (Rule, Vec<Option<Vec<Vec<u8>>>>);

/// One rule of a file, compiled, with the errors that only the whole set
/// can decide (a duplicate id, too many rules) prepared for it.
struct RuleOutcome {
    id: String,
    id_error: RuleError,
    limit_error: RuleError,
    compiled: Result<Compiled, Vec<RuleError>>,
}

/// A rule file: its rules, or the error that stopped it being read.
type FileOutcome = Result<Vec<RuleOutcome>, RuleError>;

/// Parses and compiles one rule file, independently of the others.
fn compile_file(path: &Path, text: &str) -> FileOutcome {
    let raw: RawRuleFile = toml::from_str(text).map_err(|e| {
        let located = crate::config::toml_error(path, text, &e);
        let (line, field, message) = match located {
            crate::config::ConfigError::At {
                line, key, message, ..
            } => (line, key, message),
            other => (0, String::new(), other.to_string()),
        };
        RuleError {
            file: path.to_owned(),
            line,
            rule: "?".into(),
            field,
            message,
        }
    })?;
    Ok(raw
        .rule
        .into_iter()
        .map(|r| {
            let span = r.span();
            let ctx = Ctx {
                file: path,
                text,
                rule: format!("{:?}", r.get_ref().id.get_ref()),
            };
            let id = r.get_ref().id.get_ref().to_string();
            let id_error = ctx.err(
                r.get_ref().id.span(),
                "id",
                "this rule id is already defined".into(),
            );
            let limit_error = ctx.err(span.clone(), "rule", "too many rules".into());
            RuleOutcome {
                id,
                id_error,
                limit_error,
                compiled: compile_rule(&ctx, r.into_inner(), line_at(text, span.start)),
            }
        })
        .collect())
}

fn compile_rule(ctx: &Ctx<'_>, raw: RawRule, line: usize) -> Result<Compiled, Vec<RuleError>> {
    let mut errors = Vec::new();
    let id = raw.id.get_ref().trim().to_owned();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        errors.push(ctx.err(
            raw.id.span(),
            "id",
            "must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    let threshold = match &raw.threshold {
        None => DEFAULT_THRESHOLD,
        Some(t) if (1..=100_000).contains(t.get_ref()) => *t.get_ref() as u32,
        Some(t) => {
            errors.push(ctx.err(t.span(), "threshold", "must be between 1 and 100000".into()));
            DEFAULT_THRESHOLD
        }
    };
    let mut duration = |v: &Option<Spanned<String>>, field: &str, default: Duration| match v {
        None => default,
        Some(s) => match crate::duration::parse(s.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                errors.push(ctx.err(s.span(), field, "must be longer than zero".into()));
                default
            }
            Err(e) => {
                errors.push(ctx.err(s.span(), field, e.to_string()));
                default
            }
        },
    };
    let window = duration(&raw.window, "window", DEFAULT_WINDOW);
    let block_for = duration(&raw.block_for, "block_for", DEFAULT_BLOCK_FOR);
    let escalate = escalate_ladder(ctx, raw.escalate.as_ref(), &mut errors);
    let shadow = match raw.mode.as_ref().map(|m| (m.span(), m.get_ref().as_str())) {
        None | Some((_, "enforce")) => false,
        Some((_, "shadow")) => true,
        Some((span, other)) => {
            errors.push(ctx.err(
                span,
                "mode",
                format!("{other:?} is neither \"enforce\" nor \"shadow\""),
            ));
            false
        }
    };
    // A rule with a ladder and no block_for blocks its first offence for
    // the first step, so that the decision's own expiry (what the outbox
    // keeps it for) matches the block a first offence gets.
    let block_for = match (&raw.block_for, escalate.first()) {
        (None, Some(&first)) => first,
        _ => block_for,
    };
    let ipv6_prefix = match &raw.ipv6_prefix {
        None => Policy::DEFAULT_IPV6_PREFIX,
        Some(p) => match u8::try_from(*p.get_ref()) {
            Ok(n @ 1..=128) => n,
            _ => {
                errors.push(ctx.err(p.span(), "ipv6_prefix", "must be between 1 and 128".into()));
                Policy::DEFAULT_IPV6_PREFIX
            }
        },
    };
    let sources = raw.sources.as_ref().map(|s| s.get_ref().clone());
    if let Some(s) = &raw.sources {
        if s.get_ref().is_empty() {
            errors.push(ctx.err(
                s.span(),
                "sources",
                "an empty list reads nothing: omit it to read every source".into(),
            ));
        }
    }

    let format = raw
        .format
        .as_ref()
        .map(|f| f.get_ref().as_str())
        .unwrap_or("plain");
    let mut lits = Vec::new();
    let matcher = match format {
        "plain" | "syslog" => {
            for (field, present) in [
                ("ip", raw.ip.is_some()),
                ("time", raw.time.is_some()),
                ("xff", raw.xff.is_some()),
                ("when", !raw.when.is_empty()),
            ] {
                if present {
                    errors.push(ctx.err(
                        raw.id.span(),
                        field,
                        format!("only json rules take `{field}`; text rules use named groups"),
                    ));
                }
            }
            if raw.pattern.is_empty() {
                errors.push(ctx.err(
                    raw.id.span(),
                    "pattern",
                    "a text rule needs at least one [[rule.pattern]]".into(),
                ));
            }
            let mut patterns = Vec::new();
            for (k, p) in raw.pattern.iter().enumerate() {
                let p = p.get_ref();
                let field = format!("pattern[{k}]");
                let tally = match p.tally.as_ref().map(|t| t.get_ref().as_str()) {
                    None | Some("each") => Tally::Each,
                    Some("announce") => Tally::Announce,
                    Some("if_first") => Tally::IfFirst,
                    Some("reset") => Tally::Reset,
                    Some(other) => {
                        let span = p.tally.as_ref().map(|t| t.span()).unwrap_or_default();
                        errors.push(ctx.err(
                            span,
                            &format!("{field}.tally"),
                            format!("{other:?} is not one of \"each\", \"announce\", \"if_first\", \"reset\""),
                        ));
                        Tally::Each
                    }
                };
                let derived = match Pattern::compile(p.regex.get_ref(), tally) {
                    Ok(c) => {
                        let derived = c.literals.clone();
                        patterns.push(c);
                        derived
                    }
                    Err(m) => {
                        errors.push(ctx.err(p.regex.span(), &format!("{field}.regex"), m));
                        None
                    }
                };
                lits.push(match &p.literals {
                    Some(l)
                        if l.get_ref().iter().all(|x| !x.is_empty()) && !l.get_ref().is_empty() =>
                    {
                        Some(l.get_ref().iter().map(|x| x.as_bytes().to_vec()).collect())
                    }
                    Some(l) => {
                        errors.push(ctx.err(
                            l.span(),
                            &format!("{field}.literals"),
                            "must be a non-empty list of non-empty strings".into(),
                        ));
                        None
                    }
                    None => derived,
                });
            }
            let text_format = if format == "syslog" {
                let session_by_pid = match &raw.session {
                    None => false,
                    Some(s) if s.get_ref() == "pid" => true,
                    Some(s) => {
                        errors.push(ctx.err(
                            s.span(),
                            "session",
                            "the only session key is \"pid\"".into(),
                        ));
                        false
                    }
                };
                TextFormat::Syslog {
                    programs: raw
                        .programs
                        .as_ref()
                        .map(|p| p.get_ref().iter().map(|s| s.as_bytes().to_vec()).collect())
                        .unwrap_or_default(),
                    session_by_pid,
                }
            } else {
                for (field, present) in [
                    ("programs", raw.programs.is_some()),
                    ("session", raw.session.is_some()),
                ] {
                    if present {
                        errors.push(ctx.err(
                            raw.id.span(),
                            field,
                            format!("`{field}` needs format = \"syslog\""),
                        ));
                    }
                }
                TextFormat::Plain
            };
            Matcher::Text {
                format: text_format,
                patterns,
            }
        }
        "json" => {
            for (field, present) in [
                ("pattern", !raw.pattern.is_empty()),
                ("programs", raw.programs.is_some()),
                ("session", raw.session.is_some()),
            ] {
                if present {
                    errors.push(ctx.err(
                        raw.id.span(),
                        field,
                        format!("json rules do not take `{field}`"),
                    ));
                }
            }
            let field_list = |v: &Option<Spanned<toml::Value>>,
                              name: &str,
                              errors: &mut Vec<RuleError>|
             -> Vec<String> {
                match v {
                    None => Vec::new(),
                    Some(v) => match strings(ctx, v, name) {
                        Ok(l) if l.len() <= json::MAX_CANDIDATES => l,
                        Ok(_) => {
                            errors.push(ctx.err(
                                v.span(),
                                name,
                                format!("at most {} candidate fields", json::MAX_CANDIDATES),
                            ));
                            Vec::new()
                        }
                        Err(e) => {
                            errors.push(e);
                            Vec::new()
                        }
                    },
                }
            };
            let ip_fields = field_list(&raw.ip, "ip", &mut errors);
            if raw.ip.is_none() {
                errors.push(ctx.err(
                    raw.id.span(),
                    "ip",
                    "a json rule must name the field(s) holding the client IP".into(),
                ));
            }
            let time_fields = field_list(&raw.time, "time", &mut errors);
            let xff_fields = field_list(&raw.xff, "xff", &mut errors);
            if raw.when.is_empty() {
                errors.push(ctx.err(
                    raw.id.span(),
                    "when",
                    "a json rule needs at least one [[rule.when]] predicate".into(),
                ));
            }
            if raw.when.len() > 63 {
                errors.push(ctx.err(raw.id.span(), "when", "at most 63 predicates".into()));
            }
            let mut predicates = Vec::new();
            let mut best_lits: Option<Vec<Vec<u8>>> = None;
            for (k, w) in raw.when.iter().enumerate() {
                let field_name = format!("when[{k}]");
                let w = w.get_ref();
                let field = match strings(ctx, &w.field, &format!("{field_name}.field")) {
                    Ok(l) if l == ["*"] => FieldSel::AnyString,
                    Ok(l) => FieldSel::Paths(l),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                let ops = [
                    w.equals.is_some(),
                    w.contains.is_some(),
                    w.one_of.is_some(),
                    w.regex.is_some(),
                ];
                if ops.iter().filter(|&&b| b).count() != 1 {
                    errors.push(ctx.err(
                        w.field.span(),
                        &field_name,
                        "needs exactly one of equals, contains, one_of, regex".into(),
                    ));
                    continue;
                }
                let (op, values): (Op, Vec<String>) = if let Some(e) = &w.equals {
                    (Op::Equals(e.get_ref().clone()), vec![e.get_ref().clone()])
                } else if let Some(c) = &w.contains {
                    match strings(ctx, c, &format!("{field_name}.contains")) {
                        Ok(l) => (
                            Op::Contains(
                                l.iter()
                                    .map(|s| memchr::memmem::Finder::new(s.as_bytes()).into_owned())
                                    .collect(),
                            ),
                            l,
                        ),
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    }
                } else if let Some(o) = &w.one_of {
                    if o.get_ref().is_empty() {
                        errors.push(ctx.err(
                            o.span(),
                            &format!("{field_name}.one_of"),
                            "must not be empty".into(),
                        ));
                        continue;
                    }
                    (Op::OneOf(o.get_ref().clone()), o.get_ref().clone())
                } else if let Some(r) = &w.regex {
                    match regex::RegexBuilder::new(r.get_ref())
                        .size_limit(4 << 20)
                        .build()
                    {
                        Ok(re) => (Op::Regex(re), Vec::new()),
                        Err(e) => {
                            errors.push(ctx.err(
                                r.span(),
                                &format!("{field_name}.regex"),
                                format!(
                                        "invalid regex: {}",
                                        e.to_string()
                                            .split_whitespace()
                                            .collect::<Vec<_>>()
                                            .join(" ")
                                    ),
                            ));
                            continue;
                        }
                    }
                } else {
                    continue;
                };
                // A value that a JSON encoder could escape (quotes,
                // backslashes, control or non-ASCII characters, '/') may
                // not appear verbatim in the line: no prefilter from it.
                let verbatim = |s: &str| {
                    s.len() >= 3
                        && s.bytes().all(|b| {
                            (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' && b != b'/'
                        })
                };
                if !values.is_empty() && values.iter().all(|v| verbatim(v)) {
                    let cand: Vec<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
                    let better = best_lits
                        .as_ref()
                        .is_none_or(|b| shortest(&cand) > shortest(b));
                    if better {
                        best_lits = Some(cand);
                    }
                }
                predicates.push(Predicate { field, op });
            }
            lits.push(best_lits);
            Matcher::Json(JsonMatcher {
                ip_fields,
                time_fields,
                xff_fields,
                predicates,
            })
        }
        other => {
            let span = raw.format.as_ref().map(|f| f.span()).unwrap_or_default();
            errors.push(ctx.err(
                span,
                "format",
                format!("{other:?} is not one of \"plain\", \"syslog\", \"json\""),
            ));
            Matcher::Text {
                format: TextFormat::Plain,
                patterns: Vec::new(),
            }
        }
    };

    let examples = raw
        .example
        .iter()
        .filter_map(|e| match compile_example(ctx, e) {
            Ok(x) => Some(x),
            Err(err) => {
                errors.push(err);
                None
            }
        })
        .collect();

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        Rule {
            id: Arc::from(id),
            description: raw.description,
            file: ctx.file.to_owned(),
            line,
            sources,
            threshold,
            window,
            block_for,
            shadow,
            escalate,
            ipv6_prefix,
            examples,
            matcher,
            first_unit: 0,
        },
        lits,
    ))
}

fn shortest(l: &[Vec<u8>]) -> usize {
    l.iter().map(Vec::len).min().unwrap_or(0)
}

fn compile_example(ctx: &Ctx<'_>, e: &Spanned<RawExample>) -> Result<Example, RuleError> {
    let span = e.span();
    let e = e.get_ref();
    let file_line = line_at(ctx.text, e.line.span().start);
    let expect = match (&e.ip, e.matches.as_ref().map(|m| *m.get_ref())) {
        (Some(ip), None | Some(true)) => Expect::Hit {
            ip: crate::ip::parse_client_ip(ip.get_ref().as_bytes()).ok_or_else(|| {
                ctx.err(
                    ip.span(),
                    "example.ip",
                    format!("{:?} is not an IP address", ip.get_ref()),
                )
            })?,
            time: match &e.time {
                None => None,
                Some(t) => Some(
                    crate::time::parse_rfc3339(t.get_ref().as_bytes()).ok_or_else(|| {
                        ctx.err(t.span(), "example.time", "must be an RFC 3339 time".into())
                    })?,
                ),
            },
            weight: match &e.weight {
                None => None,
                Some(w) if *w.get_ref() >= 1 && *w.get_ref() <= 1_000_000 => {
                    Some(*w.get_ref() as u32)
                }
                Some(w) => {
                    return Err(ctx.err(
                        w.span(),
                        "example.weight",
                        "must be between 1 and 1000000".into(),
                    ))
                }
            },
        },
        (None, Some(false)) => Expect::NoMatch,
        _ => {
            return Err(ctx.err(
                span,
                "example",
                "give either `ip = \"…\"` (it must match) or `matches = false`".into(),
            ));
        }
    };
    let proxies = match &e.trusted_proxies {
        None => TrustedProxies::default(),
        Some(list) => TrustedProxies::new(
            list.get_ref()
                .iter()
                .map(|s| crate::proxy::parse_trusted(s))
                .collect::<Result<_, _>>()
                .map_err(|m| ctx.err(list.span(), "example.trusted_proxies", m))?,
        ),
    };
    Ok(Example {
        line: e.line.get_ref().clone(),
        file_line,
        expect,
        proxies,
    })
}

/// `authwatch rules test`: what each rule (or only `only`) makes of one
/// line — whether it matches, which IP, which time, whether it would count.
pub fn explain(
    set: &RuleSet,
    allowlist: &crate::ip::Allowlist,
    only: Option<&str>,
    line: &[u8],
) -> Result<String, String> {
    use std::fmt::Write;
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if let Some(id) = only {
        if !set.rules.iter().any(|r| &*r.id == id) {
            return Err(format!("no rule with id {id:?}"));
        }
    }
    let mut st = set.new_state(Timestamp::now());
    let mut out = String::new();
    for (i, rule) in set.rules.iter().enumerate() {
        if only.is_some_and(|id| id != &*rule.id) {
            continue;
        }
        let filter = RuleFilter::only(i, set.rules.len(), set.proxies.clone());
        let mut hit = None;
        let unresolved = st.misses.unresolved;
        let unreadable_time = st.misses.unreadable_time;
        set.match_line(&mut st, &filter, line, &mut |h| hit = Some(h));
        let _ = match hit {
            None if st.misses.unresolved > unresolved => writeln!(
                out,
                "rule {}: match, but no client: the peer is a trusted proxy and the right-most untrusted X-Forwarded-For entry is not an address (or the chain is too long)",
                rule.id
            ),
            None => writeln!(out, "rule {}: no match", rule.id),
            Some(h) => {
                let time = match h.time {
                    Some(t) => format!("{t} (from the line)"),
                    None if st.misses.unreadable_time > unreadable_time => {
                        "unreadable in the line: the time it is read".to_owned()
                    }
                    None => "none in the line: the time it is read".to_owned(),
                };
                let failures = match (h.session, h.tally) {
                    (_, Tally::Reset) => "none: a success, which forgets the address's failures in this rule".to_owned(),
                    (None, _) => h.weight.to_string(),
                    (Some(_), Tally::Each) => format!(
                        "{} (none if an earlier `announce` line of the same session counted this attempt)",
                        h.weight
                    ),
                    (Some(_), Tally::Announce) => format!(
                        "{} (`announce`: the next failure of the same session is this same attempt)",
                        h.weight
                    ),
                    (Some(_), Tally::IfFirst) => format!(
                        "{} (`if_first`: only if no other line of the same session counted)",
                        h.weight
                    ),
                };
                let verdict = if allowlist.contains(&h.ip) {
                    format!("no: {} is allowlisted", h.ip)
                } else {
                    format!(
                        "yes, toward {} in {}",
                        rule.threshold,
                        crate::duration::format(rule.window)
                    )
                };
                writeln!(
                    out,
                    "rule {}: match\n  ip:          {}\n  time:        {}\n  failures:    {}\n  would count: {}",
                    rule.id, h.ip, time, failures, verdict
                )
            }
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> RuleSet {
        RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn explain_says_how_a_line_counts() {
        let set = shipped();
        let allow = crate::ip::Allowlist::new(vec!["203.0.113.0/28".parse().unwrap()]);
        let explain = |line: &str| explain(&set, &allow, None, line.as_bytes()).unwrap();
        let text = explain(
            "Mar  5 06:25:01 web1 sshd[1234]: Invalid user admin from 198.51.100.7 port 52344",
        );
        assert!(
            text.contains("rule sshd: match\n  ip:          198.51.100.7"),
            "{text}"
        );
        assert!(
            text.contains("`announce`: the next failure of the same session"),
            "{text}"
        );
        assert!(text.contains("would count: yes, toward 50 in 1m"), "{text}");
        assert!(text.contains("rule http-401: no match"), "{text}");
        let text = explain(r#"{"msg":"invalid signature","client_ip":"203.0.113.7","ts":"soon"}"#);
        assert!(
            text.contains("time:        unreadable in the line"),
            "{text}"
        );
        assert!(
            text.contains("would count: no: 203.0.113.7 is allowlisted"),
            "{text}"
        );
    }

    #[test]
    fn shipped_rules_load_and_pass_their_examples() {
        let set = shipped();
        let ids: Vec<&str> = set.rules().iter().map(|r| &*r.id).collect();
        assert_eq!(ids, ["http-401", "jwt-signature", "sshd"]);
        for r in set.rules() {
            assert!(
                r.examples.len() >= 10,
                "{} has only {} examples",
                r.id,
                r.examples.len()
            );
            assert!(
                r.examples.iter().any(|e| e.expect == Expect::NoMatch),
                "{} has no negative example",
                r.id
            );
        }
    }

    fn compile(text: &str) -> Result<RuleSet, RuleErrors> {
        RuleSet::from_files(&[(
            PathBuf::from("/etc/authwatch/rules/t.toml"),
            text.to_owned(),
        )])
    }

    /// Forty files compile on several threads: the rules keep file order,
    /// a duplicate id is the later file's error, and errors come in file
    /// order, as on one thread.
    #[test]
    fn many_files_compile_in_parallel_with_file_order_kept() {
        let rule = |id: &str, example_ip: &str| {
            format!(
                "[[rule]]\nid = \"{id}\"\n[[rule.pattern]]\nregex = 'fail {id} (?P<ip>\\S+)$'\n[[rule.example]]\nline = 'fail {id} 1.2.3.4'\nip = \"{example_ip}\"\n"
            )
        };
        let files: Vec<(PathBuf, String)> = (0..40)
            .map(|i| {
                (
                    PathBuf::from(format!("r{i:02}.toml")),
                    rule(&format!("r{i:02}"), "1.2.3.4"),
                )
            })
            .collect();
        let set = RuleSet::from_files(&files).unwrap();
        let ids: Vec<String> = set.rules().iter().map(|r| r.id.to_string()).collect();
        let want: Vec<String> = (0..40).map(|i| format!("r{i:02}")).collect();
        assert_eq!(ids, want);
        // Compile errors, in file order; examples run only when there are none.
        let mut broken = files.clone();
        broken[5].1 = rule("r05", "1.2.3.5");
        broken[37].1 = rule("r03", "1.2.3.4");
        broken[33].1 = "[[rule]\n".into();
        let errors = RuleSet::from_files(&broken).unwrap_err().to_string();
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines.len(), 2, "{errors}");
        assert!(lines[0].starts_with("r33.toml:1:"), "{errors}");
        assert!(
            lines[1].starts_with("r37.toml:2: rule \"r03\": id: this rule id is already defined"),
            "{errors}"
        );
        // Failing examples, checked on several threads, in rule order.
        let mut broken = files.clone();
        broken[5].1 = rule("r05", "1.2.3.5");
        broken[30].1 = rule("r30", "1.2.3.6");
        let errors = RuleSet::from_files(&broken).unwrap_err().to_string();
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines.len(), 2, "{errors}");
        assert!(
            lines[0].starts_with("r05.toml:6: rule \"r05\": example:"),
            "{errors}"
        );
        assert!(
            lines[1].starts_with("r30.toml:6: rule \"r30\": example:"),
            "{errors}"
        );
    }

    #[test]
    fn a_failing_example_is_an_error_naming_file_line_rule_and_field() {
        let e = compile("[[rule]]\nid = \"t\"\n[[rule.pattern]]\nregex = 'fail (?P<ip>\\S+)$'\n[[rule.example]]\nline = 'fail 1.2.3.4'\nip = \"1.2.3.5\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/etc/authwatch/rules/t.toml:6: rule \"t\": example: yields IP 1.2.3.4, expected 1.2.3.5");
    }

    #[test]
    fn mistakes_are_all_reported_with_their_lines() {
        let e = compile("[[rule]]\nid = \"t\"\nthreshold = 0\nblock_for = \"soon\"\nformat = \"json\"\nip = \"client_ip\"\n[[rule.when]]\nfield = \"msg\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:3: rule \"t\": threshold:"), "{e}");
        assert!(e.contains("t.toml:4: rule \"t\": block_for:"), "{e}");
        assert!(
            e.contains("t.toml:8: rule \"t\": when[0]: needs exactly one of"),
            "{e}"
        );
        let e = compile("[[rule]]\nid = \"t\"\ntreshold = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:3") && e.contains("treshold"), "{e}");
    }

    #[test]
    fn escalate_is_a_rising_ladder_and_sets_the_first_block() {
        let rule = "[[rule]]\nid = \"t\"\n[[rule.pattern]]\nregex = 'fail (?P<ip>\\S+)$'\n";
        let set = compile(&rule.replace(
            "[[rule.pattern]]",
            "escalate = [\"15m\", \"1h\", \"24h\"]\n[[rule.pattern]]",
        ))
        .unwrap();
        let r = &set.rules()[0];
        assert_eq!(r.escalate, [900, 3600, 86400].map(Duration::from_secs));
        assert_eq!(r.block_for, Duration::from_secs(900), "the first step");
        let set = compile(&rule.replace(
            "[[rule.pattern]]",
            "block_for = \"5m\"\nescalate = [\"1h\"]\n[[rule.pattern]]",
        ))
        .unwrap();
        assert_eq!(
            set.rules()[0].block_for,
            Duration::from_secs(300),
            "given: kept"
        );
        assert!(compile(rule).unwrap().rules()[0].escalate.is_empty());
        for (ladder, field) in [
            ("[]", "escalate:"),
            ("[\"1h\",\n \"15m\"]", "escalate[1]:"),
            ("[\"1h\", \"soon\"]", "escalate[1]:"),
            ("[\"0s\"]", "escalate[0]:"),
        ] {
            let e = compile(&rule.replace(
                "[[rule.pattern]]",
                &format!("escalate = {ladder}\n[[rule.pattern]]"),
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(&format!("rule \"t\": {field}")), "{ladder}: {e}");
        }
        let e = compile(&rule.replace(
            "[[rule.pattern]]",
            "escalate = [\"1h\",\n  \"15m\"]\n[[rule.pattern]]",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/etc/authwatch/rules/t.toml:4: rule \"t\": escalate[1]:"),
            "{e}"
        );
    }

    fn trusting(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    /// What `set` makes of `line` with the default proxies: the hit's IP
    /// and time, and the misses it added.
    fn hit_of(set: &RuleSet, line: &str) -> (Option<(IpAddr, Option<Timestamp>)>, MissCounts) {
        let mut st = set.new_state(Timestamp::now());
        let mut hit = None;
        set.match_line(&mut st, &set.filter_all(), line.as_bytes(), &mut |h| {
            hit = Some((h.ip, h.time))
        });
        (hit, st.misses)
    }

    /// [`hit_of`]'s IP.
    fn client_of(set: &RuleSet, line: &str) -> (Option<IpAddr>, MissCounts) {
        let (hit, misses) = hit_of(set, line);
        (hit.map(|(ip, _)| ip), misses)
    }

    #[test]
    fn a_json_hit_with_an_unreadable_time_counts_and_is_counted() {
        let rule = r#"
[[rule]]
id = "j"
format = "json"
ip = "client_ip"
time = ["ts", "time"]
  [[rule.when]]
  field = "msg"
  equals = "invalid signature"
"#;
        let set = compile(rule).unwrap_or_else(|e| panic!("{e}"));
        let hit = |line: &str| {
            let (hit, misses) = hit_of(&set, line);
            (hit, misses.unreadable_time)
        };
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for (line, time, unreadable) in [
            (
                r#"{"msg":"invalid signature","client_ip":"203.0.113.7","ts":"2024-05-01T12:34:56Z"}"#,
                Some(Timestamp::from_millis(1_714_566_896_000)),
                0,
            ),
            // No time field: the read time, and nothing wrong with that.
            (
                r#"{"msg":"invalid signature","client_ip":"203.0.113.7"}"#,
                None,
                0,
            ),
            // A time field with no time in it: the read time, counted.
            (
                r#"{"msg":"invalid signature","client_ip":"203.0.113.7","ts":"yesterday"}"#,
                None,
                1,
            ),
            (
                r#"{"msg":"invalid signature","client_ip":"203.0.113.7","time":true}"#,
                None,
                1,
            ),
        ] {
            assert_eq!(hit(line), (Some((ip, time)), unreadable), "{line}");
        }
    }

    #[test]
    fn a_text_hit_with_an_unreadable_time_counts_and_is_counted() {
        let rule = r#"
[[rule]]
id = "t"
  [[rule.pattern]]
  regex = '^\[(?P<time>[^\]]+)\] denied (?P<ip>\S+)$'
"#;
        let set = compile(rule).unwrap_or_else(|e| panic!("{e}"));
        for (line, time, unreadable) in [
            (
                "[2024-05-01T12:34:56Z] denied 203.0.113.7",
                Some(Timestamp::from_millis(1_714_566_896_000)),
                0,
            ),
            ("[in a while] denied 203.0.113.7", None, 1),
        ] {
            let (hit, misses) = hit_of(&set, line);
            let ip: IpAddr = "203.0.113.7".parse().unwrap();
            assert_eq!(hit, Some((ip, time)), "{line}");
            assert_eq!(misses.unreadable_time, unreadable, "{line}");
        }
    }

    #[test]
    fn a_json_field_named_twice_is_ambiguous_whatever_its_second_value() {
        let rule = r#"
[[rule]]
id = "j"
format = "json"
ip = ["client_ip", "remote_addr"]
  [[rule.when]]
  field = "msg"
  equals = "invalid signature"
"#;
        let set = compile(rule).unwrap_or_else(|e| panic!("{e}"));
        let ip = |s: &str| -> Option<IpAddr> { Some(s.parse().unwrap()) };
        for (line, want, ambiguous) in [
            (
                r#"{"msg":"invalid signature","client_ip":"203.0.113.7","client_ip":["10.0.0.1"]}"#,
                None,
                1,
            ),
            (
                r#"{"msg":"invalid signature","client_ip":{"v":"10.0.0.1"},"client_ip":"203.0.113.7"}"#,
                None,
                1,
            ),
            // Once, as an array or object: no address there; the next field.
            (
                r#"{"msg":"invalid signature","client_ip":["10.0.0.1"],"remote_addr":"203.0.113.7"}"#,
                ip("203.0.113.7"),
                0,
            ),
            (
                r#"{"msg":"invalid signature","client_ip":{},"remote_addr":"203.0.113.7"}"#,
                ip("203.0.113.7"),
                0,
            ),
        ] {
            let (got, misses) = client_of(&set, line);
            assert_eq!((got, misses.ambiguous), (want, ambiguous), "{line}");
        }
    }

    #[test]
    fn json_rules_read_the_chain_from_their_xff_fields() {
        let rule = r#"
[[rule]]
id = "j"
format = "json"
ip = "remote_addr"
xff = ["headers.x-forwarded-for", "x_forwarded_for"]
  [[rule.when]]
  field = "msg"
  equals = "invalid signature"
  [[rule.example]]
  line = '{"msg":"invalid signature","remote_addr":"10.0.0.5","x_forwarded_for":"198.51.100.9, 203.0.113.7"}'
  trusted_proxies = ["10.0.0.0/8"]
  ip = "203.0.113.7"
  [[rule.example]]
  line = '{"msg":"invalid signature","remote_addr":"10.0.0.5","x_forwarded_for":"198.51.100.9, 203.0.113.7"}'
  ip = "10.0.0.5"
"#;
        let mut set = compile(rule).unwrap_or_else(|e| panic!("{e}"));
        set.trust_proxies(trusting(&["10.0.0.0/8"]), Vec::new());
        let ip = |s: &str| -> Option<IpAddr> { Some(s.parse().unwrap()) };
        for (line, want, unresolved, ambiguous) in [
            // The first field of the list present wins; nested paths work.
            (
                r#"{"msg":"invalid signature","remote_addr":"10.0.0.5","headers":{"x-forwarded-for":"203.0.113.8"},"x_forwarded_for":"203.0.113.7"}"#,
                ip("203.0.113.8"),
                0,
                0,
            ),
            // An untrusted peer: its header is ignored.
            (
                r#"{"msg":"invalid signature","remote_addr":"203.0.113.7","x_forwarded_for":"198.51.100.9"}"#,
                ip("203.0.113.7"),
                0,
                0,
            ),
            // No chain field: the proxy itself (allowlisted by the config).
            (
                r#"{"msg":"invalid signature","remote_addr":"10.0.0.5"}"#,
                ip("10.0.0.5"),
                0,
                0,
            ),
            // The chain field twice: ambiguous, never counted.
            (
                r#"{"msg":"invalid signature","remote_addr":"10.0.0.5","x_forwarded_for":"203.0.113.7","x_forwarded_for":"198.51.100.9"}"#,
                None,
                0,
                1,
            ),
            // Not a string, or garbage at its right end: nobody.
            (
                r#"{"msg":"invalid signature","remote_addr":"10.0.0.5","x_forwarded_for":172114498}"#,
                None,
                1,
                0,
            ),
            (
                r#"{"msg":"invalid signature","remote_addr":"10.0.0.5","x_forwarded_for":"198.51.100.9, unknown"}"#,
                None,
                1,
                0,
            ),
        ] {
            let (got, misses) = client_of(&set, line);
            assert_eq!(got, want, "{line}");
            assert_eq!(
                (misses.unresolved, misses.ambiguous),
                (unresolved, ambiguous),
                "{line}"
            );
        }
        let e = compile("[[rule]]\nid = \"j\"\nxff = \"x_forwarded_for\"\n[[rule.pattern]]\nregex = '(?P<ip>x)'\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule \"j\": xff: only json rules take `xff`"),
            "{e}"
        );
    }

    #[test]
    fn an_unresolved_chain_ends_the_rule_so_no_later_pattern_counts_the_proxy() {
        let rule = r#"
[[rule]]
id = "t"
format = "plain"
  [[rule.pattern]]
  regex = '^(?P<ip>\S+) fail "(?P<xff>[^"]*)"$'
  [[rule.pattern]]
  regex = '^(?P<ip>\S+) fail .*$'
"#;
        let mut set = compile(rule).unwrap_or_else(|e| panic!("{e}"));
        set.trust_proxies(
            trusting(&["10.0.0.0/8"]),
            vec![("direct".into(), TrustedProxies::default())],
        );
        let (got, misses) = client_of(&set, r#"10.0.0.5 fail "10.66.66.66, unknown""#);
        assert_eq!((got, misses.unresolved), (None, 1));
        let (got, _) = client_of(&set, r#"10.0.0.5 fail "10.66.66.66, 203.0.113.7""#);
        assert_eq!(got, Some("203.0.113.7".parse().unwrap()));
        // A source with its own (empty) list trusts nobody.
        let mut st = set.new_state(Timestamp::now());
        let mut got = None;
        set.match_line(
            &mut st,
            &set.filter_for_source("direct"),
            br#"10.0.0.5 fail "10.66.66.66, 203.0.113.7""#,
            &mut |h| got = Some(h.ip),
        );
        assert_eq!(got, Some("10.0.0.5".parse().unwrap()));
        // An example's proxies must parse, and are named by line.
        let e = compile(&format!(
            "{rule}  [[rule.example]]\n  line = '10.0.0.5 fail \"1.2.3.4\"'\n  trusted_proxies = [\"10.0.0.5/8\"]\n  ip = \"1.2.3.4\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "t.toml:11: rule \"t\": example.trusted_proxies: \"10.0.0.5/8\" has bits set"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_line_that_matches_nothing_takes_no_regex_and_no_allocation_path() {
        let set = shipped();
        let mut st = set.new_state(Timestamp::now());
        let mut hits = 0;
        set.match_line(
            &mut st,
            &set.filter_all(),
            b"Mar  5 06:25:01 web1 CRON[77]: (root) CMD (run-parts /etc/cron.hourly)",
            &mut |_| hits += 1,
        );
        assert_eq!(hits, 0);
        assert!(
            st.candidates.is_empty(),
            "the prefilter rejected the line: {:?}",
            st.candidates
        );
    }
}
