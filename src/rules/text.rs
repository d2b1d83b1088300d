//! Text matchers: regexes with a named group `ip` (and optionally `time`,
//! `repeat` and `xff`), over the whole line or over a syslog message.
//!
//! Regexes run in byte mode with Unicode off, so `.` and `\S` match any
//! byte: a line with invalid UTF-8 is matched as well as a clean one, and
//! an attacker cannot dodge a rule by sprinkling bad bytes in a username.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use memchr::memmem;
use regex::bytes::{CaptureLocations, Regex};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind, Literal, Look};

use super::Tally;
use crate::ip::parse_client_ip;
use crate::proxy::TrustedProxies;
use crate::syslog::SyslogHeader;
use crate::time::{SyslogClock, Timestamp};

/// How a text rule sees a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum TextFormat {
    /// The regex sees the whole line; time comes from a `time` group.
    Plain,
    /// The syslog header (time, host, program, pid) is parsed by hand and
    /// the regex sees only the message.
    Syslog {
        /// Program names accepted in the header; empty means any.
        programs: Vec<Vec<u8>>,
        /// Lines of one process (host and pid) are one session.
        session_by_pid: bool,
    },
}

/// One compiled pattern of a text rule.
#[derive(Clone, Debug)]
pub(super) struct Pattern {
    /// Shared, not cloned, between the copies the pattern cache makes: a
    /// cloned regex gets a pool of its own and starts with a cold lazy DFA.
    pub regex: Arc<Regex>,
    pub ip_group: usize,
    pub time_group: Option<usize>,
    pub repeat_group: Option<usize>,
    /// The logged `X-Forwarded-For` chain; with it, `ip` is the peer that
    /// sent the request, which may be a trusted proxy.
    pub xff_group: Option<usize>,
    pub tally: Tally,
    /// Literals every match contains, for the prefilter (derived here so
    /// that the pattern cache keeps them too).
    pub literals: Option<Vec<Vec<u8>>>,
    /// A cheaper way to the `ip` capture, when the pattern's shape allows.
    split: Option<Split>,
    /// A cheaper way to all the captures of a pattern with more groups
    /// than `split` takes, when its shape allows.
    tail: Option<Tail>,
}

thread_local! {
    /// Patterns compiled so far by the [`with_pattern_cache`] scope this
    /// thread is in, by source.
    static COMPILED: RefCell<Option<HashMap<String, Pattern>>> = const { RefCell::new(None) };
}

/// Runs `compile` with a cache of compiled patterns: rule files repeat
/// patterns (one rule per log source or per threshold, written from one
/// template), and compiling a pattern with its fast paths is most of what
/// loading rules costs, and so of the daemon's start-up. A compiled
/// pattern holds only immutable automata behind `Arc`s, so a copy matches
/// exactly as the original does. The cache lives as long as the scope.
pub(super) fn with_pattern_cache<T>(compile: impl FnOnce() -> T) -> T {
    COMPILED.with(|c| *c.borrow_mut() = Some(HashMap::new()));
    let out = compile();
    COMPILED.with(|c| *c.borrow_mut() = None);
    out
}

impl Pattern {
    pub(super) fn compile(source: &str, tally: Tally) -> Result<Pattern, String> {
        let cached = COMPILED.with(|c| c.borrow().as_ref().and_then(|m| m.get(source).cloned()));
        if let Some(p) = cached {
            return Ok(Pattern { tally, ..p });
        }
        let p = Pattern::compile_uncached(source, tally)?;
        COMPILED.with(|c| {
            if let Some(m) = c.borrow_mut().as_mut() {
                m.insert(source.to_owned(), p.clone());
            }
        });
        Ok(p)
    }

    fn compile_uncached(source: &str, tally: Tally) -> Result<Pattern, String> {
        let regex = regex::bytes::RegexBuilder::new(source)
            .unicode(false)
            .size_limit(4 << 20)
            .build()
            .map_err(|e| format!("invalid regex: {}", one_line(&e.to_string())))?;
        let group = |name: &str| regex.capture_names().position(|n| n == Some(name));
        let ip_group = group("ip").ok_or("the regex has no named group (?P<ip>…)")?;
        let split = Split::new(source);
        // `Tail` reports the `ip` capture and a time or count, not the
        // chain: for a pattern with an `xff` group it is built without that
        // group, and [`run`] asks the regex for the chain only when the
        // peer is a trusted proxy (the only case in which it is read).
        let tail = match split {
            Some(_) => None,
            None => parse_hir(source)
                .map(|hir| uncapture(&hir, "xff"))
                .and_then(|hir| Tail::new(&hir)),
        };
        Ok(Pattern {
            time_group: group("time"),
            repeat_group: group("repeat"),
            xff_group: group("xff"),
            ip_group,
            split,
            tail,
            regex: Arc::new(regex),
            literals: super::prefilter::required_literals(source),
            tally,
        })
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a pattern found in a line.
#[derive(Debug, PartialEq)]
pub(super) struct TextMatch<'t> {
    /// The `ip` capture: the client, or with `forwarded` the peer.
    pub ip: std::net::IpAddr,
    pub time: Option<Timestamp>,
    /// The `time` group captured text that is no time authwatch reads: the
    /// line counts at the time it was read, and the engine counts it.
    pub time_unreadable: bool,
    pub weight: u32,
    /// `Some` when the pattern has an `xff` group: what it captured, empty
    /// when the group took no part in the match.
    pub forwarded: Option<&'t [u8]>,
}

/// Runs `pattern` over `text`. `None` when it does not match, or when
/// what it captured as `ip` is not exactly an IP address.
///
/// `proxies` only says when the `xff` capture is worth the regex's capture
/// engine: its chain is read only for a peer that is a trusted proxy.
pub(super) fn run<'t>(
    pattern: &Pattern,
    locs: &mut CaptureLocations,
    text: &'t [u8],
    clock: &mut SyslogClock,
    proxies: &TrustedProxies,
) -> Option<TextMatch<'t>> {
    if let Some(split) = &pattern.split {
        match split.find(text, &*pattern.regex) {
            Found::One(s, e) => {
                return Some(TextMatch {
                    ip: parse_client_ip(&text[s..e])?,
                    time: None,
                    time_unreadable: false,
                    weight: 1,
                    // The fast path takes only patterns whose one group is `ip`.
                    forwarded: None,
                });
            }
            Found::None => return None,
            Found::Ambiguous => {}
        }
    }
    if let Some(tail) = &pattern.tail {
        match tail.find(text) {
            TailFound::One { ip: (s, e), fixed } => {
                let ip = parse_client_ip(&text[s..e])?;
                // A trusted peer's chain is read; only the regex captures
                // it, so such a line goes on to the regex below.
                if pattern.xff_group.is_none() || !proxies.contains(&ip) {
                    let (mut time, mut time_unreadable, mut weight) = (None, false, 1);
                    match fixed {
                        Some((Role::Time, s, e)) => {
                            time = crate::time::parse_log_time(&text[s..e], clock);
                            time_unreadable = time.is_none();
                        }
                        Some((Role::Repeat, s, e)) => weight = parse_count(&text[s..e])?,
                        None => {}
                    }
                    return Some(TextMatch {
                        ip,
                        time,
                        time_unreadable,
                        weight,
                        // The peer is the client: its chain is not read.
                        forwarded: None,
                    });
                }
            }
            TailFound::None => return None,
            TailFound::Ambiguous => {}
        }
    }
    pattern.regex.captures_read(locs, text)?;
    let (s, e) = locs.get(pattern.ip_group)?;
    let ip = parse_client_ip(&text[s..e])?;
    let (time, time_unreadable) = match pattern.time_group.and_then(|g| locs.get(g)) {
        Some((s, e)) => {
            let time = crate::time::parse_log_time(&text[s..e], clock);
            (time, time.is_none())
        }
        None => (None, false),
    };
    let weight = match pattern.repeat_group.and_then(|g| locs.get(g)) {
        Some((s, e)) => parse_count(&text[s..e])?,
        None => 1,
    };
    let forwarded = pattern
        .xff_group
        .map(|g| locs.get(g).map_or(&b""[..], |(s, e)| &text[s..e]));
    Some(TextMatch {
        ip,
        time,
        time_unreadable,
        weight,
        forwarded,
    })
}

/// The `ip` capture without a capturing regex engine, for patterns of the
/// shape `^X(?P<ip>C+)Y$`: `C+` a run of one byte class, no other capture
/// group, no look-around inside `X` or `Y`, `X` never ending and `Y` never
/// starting with a byte of `C`. Every shipped sshd pattern has it
/// (`… from (?P<ip>\S+) port \d{1,5} ssh2$`).
///
/// # Why it gives the regex's answer
///
/// In any match, the byte before the group (if any) is `X`'s last and the
/// byte after it (if any) is `Y`'s first, neither in `C`: the group is a
/// whole maximal run of `C` bytes. So the matches are exactly the runs
/// `[s, e)` for which `^X$` matches the text before `s` and `^Y$` the text
/// from `e` on. When exactly one run qualifies, every match of the pattern
/// captures it, whatever the priorities of the regex's alternatives; when
/// none does, there is no match. When several do, the priorities decide,
/// and [`run`] asks the real regex.
///
/// # Why it is faster
///
/// The regex crate finds the match with a DFA, then extracts captures with
/// a backtracking engine that visits every state at every byte: about 20,000
/// instructions for a 70-byte sshd message. Here, a scan for runs, two byte
/// tests and a literal comparison at each end leave one candidate, which two
/// anchored DFA matches on short slices confirm: well under 1,000.
#[derive(Clone, Debug)]
struct Split {
    /// `^X$`.
    before: Anchored,
    /// The same test without a regex, when `X` is `A C* B` with `A` and
    /// `B` finite (`Failed password for .* from `).
    before_shape: Option<Sandwich>,
    /// `^Y$`.
    after: Anchored,
    /// The bytes the group may hold.
    class: ByteSet,
    /// The last bytes of non-empty matches of `X`, and whether `X` can
    /// match nothing.
    x_last: ByteSet,
    x_empty: bool,
    /// The first bytes of non-empty matches of `Y`, and whether `Y` can
    /// match nothing.
    y_first: ByteSet,
    y_empty: bool,
    /// Literals every match of `X` ends with (when known), and every match
    /// of `Y` starts with: cheap tests before the regexes run.
    x_suffixes: Option<Vec<Vec<u8>>>,
    y_prefixes: Option<Vec<Vec<u8>>>,
    /// A literal that every match has right after (or right before) the
    /// group, to find the candidate runs without looking at every byte.
    anchor: Option<Anchor>,
}

#[derive(Clone, Debug)]
enum Anchor {
    /// The group ends where this literal (`Y`'s only prefix) starts.
    After(memmem::Finder<'static>),
    /// The group starts where this literal (`X`'s only suffix) ends.
    Before(memmem::Finder<'static>),
}

/// What [`Split::find`] found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// The group is `text[s..e]`.
    One(usize, usize),
    /// The pattern does not match.
    None,
    /// More than one run qualifies: only the regex knows which it prefers.
    Ambiguous,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn insert_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.insert(b);
        }
    }

    #[inline]
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn union(&mut self, other: ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    fn is_disjoint(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(other.0).all(|(a, b)| a & b == 0)
    }
}

/// The bytes `hir` matches, if it is a single byte class.
fn class_bytes(hir: &Hir) -> Option<ByteSet> {
    let mut set = ByteSet::default();
    match hir.kind() {
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.iter() {
                set.insert_range(r.start(), r.end());
            }
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.iter() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                if hi > 0x7f {
                    return None;
                }
                set.insert_range(lo as u8, hi as u8);
            }
        }
        HirKind::Literal(Literal(bytes)) if bytes.len() == 1 => set.insert(bytes[0]),
        _ => return None,
    }
    Some(set)
}

/// The bytes a non-empty match of `hir` can start (`last = false`) or end
/// (`last = true`) with, and whether it can match the empty string. `None`
/// for look-around, which this analysis does not follow.
fn edge_bytes(hir: &Hir, last: bool) -> Option<(ByteSet, bool)> {
    match hir.kind() {
        HirKind::Empty => Some((ByteSet::default(), true)),
        HirKind::Literal(Literal(bytes)) => {
            let mut set = ByteSet::default();
            match if last { bytes.last() } else { bytes.first() } {
                Some(&b) => {
                    set.insert(b);
                    Some((set, false))
                }
                None => Some((set, true)),
            }
        }
        HirKind::Class(_) => Some((class_bytes(hir)?, false)),
        HirKind::Look(_) => None,
        HirKind::Repetition(r) => {
            let (set, empty) = edge_bytes(&r.sub, last)?;
            Some((set, empty || r.min == 0))
        }
        HirKind::Capture(c) => edge_bytes(&c.sub, last),
        HirKind::Concat(subs) => {
            let mut set = ByteSet::default();
            let ordered: Box<dyn Iterator<Item = &Hir>> = if last {
                Box::new(subs.iter().rev())
            } else {
                Box::new(subs.iter())
            };
            for sub in ordered {
                let (s, empty) = edge_bytes(sub, last)?;
                set.union(s);
                if !empty {
                    return Some((set, false));
                }
            }
            Some((set, true))
        }
        HirKind::Alternation(subs) => {
            let mut set = ByteSet::default();
            let mut any_empty = false;
            for sub in subs {
                let (s, empty) = edge_bytes(sub, last)?;
                set.union(s);
                any_empty |= empty;
            }
            Some((set, any_empty))
        }
    }
}

/// Literals that every match of `hir` starts (or ends) with, when there is
/// a small finite set of non-empty ones. Classes are not expanded: `\d`
/// after ` port ` would turn one literal into ten, then a hundred.
fn edge_literals(hir: &Hir, kind: ExtractKind) -> Option<Vec<Vec<u8>>> {
    let seq = Extractor::new().kind(kind).limit_class(1).extract(hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.len() > 8 || lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// A regex of the shape `^A C* B$` where `A` and `B` match finite sets of
/// strings and `C` is one byte class (`.` in `Failed password for .* from
/// `): whether it matches a text is a few comparisons, without the ~100 ns
/// a regex search costs even on a short text.
#[derive(Clone, Debug)]
struct Sandwich {
    /// Every string `A` matches.
    heads: Vec<Vec<u8>>,
    middle: ByteSet,
    /// Every string `B` matches.
    tails: Vec<Vec<u8>>,
}

impl Sandwich {
    /// `None` unless `hir` has the shape, with at most 64 strings each side.
    fn new(hir: &Hir) -> Option<Sandwich> {
        let HirKind::Concat(subs) = hir.kind() else {
            return None;
        };
        let mut star = None;
        for (i, sub) in subs.iter().enumerate() {
            if let HirKind::Repetition(r) = sub.kind() {
                if r.min == 0 && r.max.is_none() && class_bytes(&r.sub).is_some() {
                    if star.is_some() {
                        return None;
                    }
                    star = Some(i);
                }
            }
        }
        let i = star?;
        let HirKind::Repetition(r) = subs[i].kind() else {
            return None;
        };
        Some(Sandwich {
            heads: language(&Hir::concat(subs[..i].to_vec()))?,
            middle: class_bytes(&r.sub)?,
            tails: language(&Hir::concat(subs[i + 1..].to_vec()))?,
        })
    }

    fn matches(&self, text: &[u8]) -> bool {
        self.heads.iter().any(|h| {
            text.starts_with(h)
                && self.tails.iter().any(|t| {
                    h.len() + t.len() <= text.len()
                        && text.ends_with(t)
                        && text[h.len()..text.len() - t.len()]
                            .iter()
                            .all(|&b| self.middle.contains(b))
                })
        })
    }
}

/// Every string `hir` matches, if they are a few (all of its extracted
/// literals exact: each one a whole match, and every match one of them).
fn language(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let lits = seq.literals()?;
    if lits.len() > 64 || !lits.iter().all(|l| l.is_exact()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// The longest common prefix (or, with `suffix`, suffix) of `lits`.
fn common(lits: &[Vec<u8>], suffix: bool) -> Vec<u8> {
    let Some(first) = lits.first() else {
        return Vec::new();
    };
    let mut n = first.len();
    for l in &lits[1..] {
        let same = if suffix {
            first
                .iter()
                .rev()
                .zip(l.iter().rev())
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            first.iter().zip(l).take_while(|(a, b)| a == b).count()
        };
        n = n.min(same);
    }
    if suffix {
        first[first.len() - n..].to_vec()
    } else {
        first[..n].to_vec()
    }
}

impl Split {
    /// `None` when the pattern does not have the shape (see [`Split`]).
    fn new(source: &str) -> Option<Split> {
        let hir = parse_hir(source)?;
        if hir.properties().explicit_captures_len() != 1 {
            return None;
        }
        let HirKind::Concat(subs) = hir.kind() else {
            return None;
        };
        let (first, last) = (subs.first()?, subs.last()?);
        if first.kind() != &HirKind::Look(Look::Start) || last.kind() != &HirKind::Look(Look::End) {
            return None;
        }
        let at = subs.iter().position(
            |h| matches!(h.kind(), HirKind::Capture(c) if c.name.as_deref() == Some("ip")),
        )?;
        let HirKind::Capture(cap) = subs[at].kind() else {
            return None;
        };
        let HirKind::Repetition(rep) = cap.sub.kind() else {
            return None;
        };
        if rep.min == 0 || rep.max.is_some() {
            return None;
        }
        let class = class_bytes(&rep.sub)?;
        let x = Hir::concat(subs[1..at].to_vec());
        let y = Hir::concat(subs[at + 1..subs.len() - 1].to_vec());
        if !x.properties().look_set().is_empty() || !y.properties().look_set().is_empty() {
            return None;
        }
        let (x_last, x_empty) = edge_bytes(&x, true)?;
        let (y_first, y_empty) = edge_bytes(&y, false)?;
        if !x_last.is_disjoint(&class) || !y_first.is_disjoint(&class) {
            return None;
        }
        let x_suffixes = edge_literals(&x, ExtractKind::Suffix);
        let y_prefixes = edge_literals(&y, ExtractKind::Prefix);
        // The longer of what all of `Y`'s prefixes start with and what
        // all of `X`'s suffixes end with, if it has at least three bytes;
        // otherwise every run is looked at.
        let x_common = x_suffixes
            .as_deref()
            .map_or(Vec::new(), |l| common(l, true));
        let y_common = y_prefixes
            .as_deref()
            .map_or(Vec::new(), |l| common(l, false));
        let anchor = if y_common.len() >= 3 && y_common.len() >= x_common.len() {
            Some(Anchor::After(memmem::Finder::new(&y_common).into_owned()))
        } else if x_common.len() >= 3 {
            Some(Anchor::Before(memmem::Finder::new(&x_common).into_owned()))
        } else {
            None
        };
        Some(Split {
            before_shape: Sandwich::new(&x),
            before: anchored(&x)?,
            after: anchored(&y)?,
            class,
            x_last,
            x_empty,
            y_first,
            y_empty,
            x_suffixes,
            y_prefixes,
            anchor,
        })
    }

    /// Finds the group in `text`; `whole` is the pattern's own regex.
    fn find(&self, text: &[u8], whole: &impl IsMatch) -> Found {
        // The runs that pass the necessary tests: rarely more than one.
        let mut first = None;
        let mut plausible = 0usize;
        let mut consider = |s: usize, e: usize| {
            if s < e && self.plausible(text, s, e) {
                if first.is_none() {
                    first = Some((s, e));
                }
                plausible += 1;
            }
        };
        match &self.anchor {
            // Occurrences may overlap (" port " can share its space with
            // the next), so the search resumes one byte after each.
            Some(Anchor::After(lit)) => {
                let mut at = 0;
                while let Some(i) = lit.find(&text[at..]) {
                    let e = at + i;
                    consider(self.run_start(text, e), e);
                    at = e + 1;
                }
            }
            Some(Anchor::Before(lit)) => {
                let mut at = 0;
                while let Some(i) = lit.find(&text[at..]) {
                    let s = at + i + lit.needle().len();
                    consider(s, self.run_end(text, s));
                    at = at + i + 1;
                }
            }
            None => {
                let mut i = 0;
                while i < text.len() {
                    if self.class.contains(text[i]) {
                        let e = self.run_end(text, i);
                        consider(i, e);
                        i = e;
                    } else {
                        i += 1;
                    }
                }
            }
        }
        match (first, plausible > 1) {
            (None, _) => Found::None,
            // One candidate: the pattern matches only by it, if at all.
            (Some((s, e)), false) => {
                let yes = match &self.before_shape {
                    Some(shape) => shape.matches(&text[..s]) && self.after.is_match(&text[e..]),
                    None => whole.is_match(text),
                };
                if yes {
                    Found::One(s, e)
                } else {
                    Found::None
                }
            }
            // Each candidate costs `decide` two DFA passes over the line:
            // past a few (a crafted line full of ` port `), one pass of the
            // regex is cheaper than that quadratic walk.
            (Some(_), true) if plausible > MAX_SPLIT_CANDIDATES => Found::Ambiguous,
            (Some(_), true) => self.decide(text),
        }
    }

    /// Several runs passed the cheap tests: checks each with both regexes.
    fn decide(&self, text: &[u8]) -> Found {
        let mut found = None;
        let mut i = 0;
        while i < text.len() {
            if !self.class.contains(text[i]) {
                i += 1;
                continue;
            }
            let (s, e) = (i, self.run_end(text, i));
            i = e;
            if self.plausible(text, s, e)
                && self.after.is_match(&text[e..])
                && self.before_matches(&text[..s])
            {
                if found.is_some() {
                    return Found::Ambiguous;
                }
                found = Some((s, e));
            }
        }
        match found {
            Some((s, e)) => Found::One(s, e),
            None => Found::None,
        }
    }

    /// Whether `X` matches all of `head`.
    fn before_matches(&self, head: &[u8]) -> bool {
        match &self.before_shape {
            Some(shape) => shape.matches(head),
            None => self.before.is_match(head),
        }
    }

    /// The start of the run of `class` bytes that ends at `e`.
    fn run_start(&self, text: &[u8], e: usize) -> usize {
        let mut s = e;
        while s > 0 && self.class.contains(text[s - 1]) {
            s -= 1;
        }
        s
    }

    /// The end of the run of `class` bytes that starts at `s`.
    fn run_end(&self, text: &[u8], s: usize) -> usize {
        let mut e = s;
        while e < text.len() && self.class.contains(text[e]) {
            e += 1;
        }
        e
    }

    /// Whether the run `text[s..e]` passes the tests that every match
    /// passes: the bytes around it and the literals at its sides.
    #[inline]
    fn plausible(&self, text: &[u8], s: usize, e: usize) -> bool {
        let x_ok = match s {
            0 => self.x_empty,
            _ => self.x_last.contains(text[s - 1]),
        };
        let y_ok = match text.get(e) {
            None => self.y_empty,
            Some(&b) => self.y_first.contains(b),
        };
        if !x_ok || !y_ok {
            return false;
        }
        let (head, tail) = (&text[..s], &text[e..]);
        if let Some(l) = &self.x_suffixes {
            if !l.iter().any(|l| head.ends_with(l)) {
                return false;
            }
        }
        if let Some(l) = &self.y_prefixes {
            if !l.iter().any(|l| tail.starts_with(l)) {
                return false;
            }
        }
        true
    }
}

/// `source` parsed with the syntax flags of [`Pattern::compile`].
/// `hir` with the capture group `name` made a plain group: the same
/// language, one capture fewer.
fn uncapture(hir: &Hir, name: &str) -> Hir {
    match hir.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some(name) => uncapture(&c.sub, name),
        HirKind::Capture(c) => Hir::capture(regex_syntax::hir::Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(uncapture(&c.sub, name)),
        }),
        HirKind::Repetition(r) => Hir::repetition(regex_syntax::hir::Repetition {
            min: r.min,
            max: r.max,
            greedy: r.greedy,
            sub: Box::new(uncapture(&r.sub, name)),
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(|h| uncapture(h, name)).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(|h| uncapture(h, name)).collect())
        }
        _ => hir.clone(),
    }
}

fn parse_hir(source: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(source)
        .ok()
}

/// A test that a whole slice matches `^h$`: the parts of a pattern that
/// the fast paths test alone, on short slices.
///
/// Built with the meta engine of regex-automata (what `regex` runs on)
/// with only the PikeVM and the lazy DFA: `regex` would also determinise
/// a full DFA and build a one-pass DFA and a backtracker for each, which
/// made these small tests most of the cost of compiling a rule set (and
/// of the daemon's start-up) while saving nothing measurable per line —
/// the lazy DFA caches the few states a short slice visits. Behind an
/// `Arc` so that copies share one pool of caches, warm from the first.
#[derive(Clone, Debug)]
struct Anchored(Arc<regex_automata::meta::Regex>);

/// A whole-slice test: the pattern's own regex or an [`Anchored`] part.
trait IsMatch {
    fn is_match(&self, haystack: &[u8]) -> bool;
}

impl IsMatch for Regex {
    fn is_match(&self, haystack: &[u8]) -> bool {
        Regex::is_match(self, haystack)
    }
}

impl IsMatch for Anchored {
    fn is_match(&self, haystack: &[u8]) -> bool {
        self.0.is_match(haystack)
    }
}

fn anchored(h: &Hir) -> Option<Anchored> {
    use regex_automata::{meta, util::syntax};
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(4 << 20))
                .dfa(false)
                .onepass(false)
                .backtrack(false),
        )
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build(&anchored_source(h))
        .ok()
        .map(|re| Anchored(Arc::new(re)))
}

fn anchored_source(h: &Hir) -> String {
    Hir::concat(vec![
        Hir::look(Look::Start),
        h.clone(),
        Hir::look(Look::End),
    ])
    .to_string()
}

/// More candidate starts of `T` than this in one line, and [`Tail`]
/// leaves the line to the regex: each costs a DFA pass over the rest of
/// the line, and a crafted line must not make that quadratic.
const MAX_TAIL_STARTS: usize = 8;

/// More plausible runs than this in one line, and [`Split`] leaves the
/// line to the regex, for the same reason as [`MAX_TAIL_STARTS`].
const MAX_SPLIT_CANDIDATES: usize = 8;

/// All the captures without a capturing regex engine, for patterns of the
/// shape `^H T$`: `T` (non-empty, starting with one of a few literals) holds
/// no capture group, and `H` is either in [`Split`]'s shape (its only
/// group is `ip`) or is `H1 G`, with `G` a `time` or `repeat` group that
/// matches a fixed number of bytes and `H1` in [`Split`]'s shape. No
/// look-around inside. The access-log patterns (rules/http.toml) have it:
/// `^(?P<ip>…) \S+ .* \[(?P<time>\d{2}/…/\d{4}:…)\] "…" 401 …$`.
///
/// # Why it gives the regex's answer
///
/// A match is an `H` path over `text[..k]` followed by a `T` path over
/// `text[k..]`, and the regex prefers paths by their choices in order,
/// `H`'s first. When exactly one `k` lets `T` match the rest, every match
/// splits there, and the regex's is the `H` path it prefers over
/// `text[..k]`: the captures of `^H$` there. `T` starts with one of its
/// literals, so the `k` are among their occurrences. In `H1 G`, `G` is the
/// last `len` bytes before `k` for the same reason, and `H1`'s preferred
/// path is what [`Split`] finds. When several `k` qualify, or `Split` calls
/// its part ambiguous, [`run`] asks the regex.
///
/// # Why it is faster
///
/// The backtracking engine that extracts captures visits every state at
/// every byte: 36,000 instructions for a 135-byte access-log line. Here a
/// literal search and two DFA passes cost a tenth of that.
#[derive(Clone, Debug)]
struct Tail {
    /// `^T$`.
    tail: Anchored,
    /// Every match of `T` starts with one of these.
    starts: Vec<memmem::Finder<'static>>,
    head: Head,
}

#[derive(Clone, Debug)]
enum Head {
    /// `H` holds only the `ip` group; `whole` is `^H$`.
    Split { split: Split, whole: Anchored },
    /// `H` is `H1 G`; `whole` is `^H1$`, `group` is `^G$`, which matches
    /// exactly `len` bytes.
    Fixed {
        split: Split,
        whole: Anchored,
        group: Anchored,
        len: usize,
        role: Role,
    },
}

/// What a fixed-length group holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Time,
    Repeat,
}

/// What [`Tail::find`] found.
#[derive(Debug, PartialEq, Eq)]
enum TailFound {
    /// The `ip` group's span, and the fixed group's role and span.
    One {
        ip: (usize, usize),
        fixed: Option<(Role, usize, usize)>,
    },
    /// The pattern does not match.
    None,
    /// Only the regex knows.
    Ambiguous,
}

impl Tail {
    /// `None` when the pattern does not have the shape (see [`Tail`]).
    fn new(hir: &Hir) -> Option<Tail> {
        let HirKind::Concat(subs) = hir.kind() else {
            return None;
        };
        let (first, last) = (subs.first()?, subs.last()?);
        if first.kind() != &HirKind::Look(Look::Start) || last.kind() != &HirKind::Look(Look::End) {
            return None;
        }
        let inner = &subs[1..subs.len() - 1];
        if !Hir::concat(inner.to_vec())
            .properties()
            .look_set()
            .is_empty()
        {
            return None;
        }
        // Every group at the top level, none inside another.
        let groups: Vec<usize> = (0..inner.len())
            .filter(|&i| matches!(inner[i].kind(), HirKind::Capture(_)))
            .collect();
        if groups.len() != hir.properties().explicit_captures_len() {
            return None;
        }
        for &i in &groups {
            if inner[i].properties().explicit_captures_len() != 1 {
                return None;
            }
        }
        let last_group = *groups.last()?;
        let t = Hir::concat(inner[last_group + 1..].to_vec());
        let starts = edge_literals(&t, ExtractKind::Prefix)?
            .iter()
            .map(|l| memmem::Finder::new(l).into_owned())
            .collect();
        let h = &inner[..=last_group];
        let head = match groups.len() {
            1 => {
                let source = anchored_source(&Hir::concat(h.to_vec()));
                Head::Split {
                    split: Split::new(&source)?,
                    whole: anchored(&Hir::concat(h.to_vec()))?,
                }
            }
            2 => {
                let HirKind::Capture(g) = h[last_group].kind() else {
                    return None;
                };
                let role = match g.name.as_deref() {
                    Some("time") => Role::Time,
                    Some("repeat") => Role::Repeat,
                    _ => return None,
                };
                let len = g.sub.properties().minimum_len()?;
                if len == 0 || g.sub.properties().maximum_len() != Some(len) {
                    return None;
                }
                let h1 = Hir::concat(h[..last_group].to_vec());
                Head::Fixed {
                    split: Split::new(&anchored_source(&h1))?,
                    whole: anchored(&h1)?,
                    group: anchored(&g.sub)?,
                    len,
                    role,
                }
            }
            _ => return None,
        };
        Some(Tail {
            tail: anchored(&t)?,
            starts,
            head,
        })
    }

    fn find(&self, text: &[u8]) -> TailFound {
        // Where `T` may start: every occurrence of its literals, which may
        // overlap, so each search resumes one byte on.
        let mut ks = [0usize; MAX_TAIL_STARTS];
        let mut n = 0;
        for lit in &self.starts {
            let mut at = 0;
            while let Some(i) = lit.find(&text[at..]) {
                let k = at + i;
                if !ks[..n].contains(&k) {
                    if n == MAX_TAIL_STARTS {
                        return TailFound::Ambiguous;
                    }
                    ks[n] = k;
                    n += 1;
                }
                at = k + 1;
            }
        }
        let mut split_at = None;
        for &k in &ks[..n] {
            if self.tail.is_match(&text[k..]) {
                if split_at.is_some() {
                    return TailFound::Ambiguous;
                }
                split_at = Some(k);
            }
        }
        let Some(k) = split_at else {
            return TailFound::None;
        };
        let (split, whole, head_end, fixed) = match &self.head {
            Head::Split { split, whole } => (split, whole, k, None),
            Head::Fixed {
                split,
                whole,
                group,
                len,
                role,
            } => {
                let Some(s) = k.checked_sub(*len) else {
                    return TailFound::None;
                };
                if !group.is_match(&text[s..k]) {
                    return TailFound::None;
                }
                (split, whole, s, Some((*role, s, k)))
            }
        };
        match split.find(&text[..head_end], whole) {
            Found::One(s, e) => TailFound::One { ip: (s, e), fixed },
            Found::None => TailFound::None,
            Found::Ambiguous => TailFound::Ambiguous,
        }
    }
}

/// rsyslog folds identical consecutive messages into
/// `message repeated N times: [ <message>]`. Returns the inner message and
/// N, so that every rule counts such a line N times.
pub(super) fn unwrap_repeated(message: &[u8]) -> Option<(&[u8], u32)> {
    let rest = message.strip_prefix(b"message repeated ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let n = parse_count(&rest[..digits])?;
    let inner = rest[digits..].strip_prefix(b" times: [ ")?;
    let inner = inner.strip_suffix(b"]")?;
    Some((inner, n))
}

/// A positive count of at most 1,000,000 (more is not a real repetition).
fn parse_count(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (1..=1_000_000).contains(&n).then_some(n)
}

/// The session key of a syslog line: its host and pid.
pub(super) fn session_of(header: &SyslogHeader<'_>) -> Option<u64> {
    let pid = header.pid?;
    // FNV-1a: stable, fast, and collisions only merge two sessions'
    // credits, never invent an IP.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in header.host.iter().chain(b"\0").chain(pid) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_rsyslog_repeats() {
        let (m, n) = unwrap_repeated(
            b"message repeated 3 times: [ Failed password for root from 1.2.3.4 port 22 ssh2]",
        )
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(m, b"Failed password for root from 1.2.3.4 port 22 ssh2");
        assert!(unwrap_repeated(b"message repeated 0 times: [ x]").is_none());
        assert!(unwrap_repeated(b"message repeated 3 times: [ x").is_none());
        assert!(unwrap_repeated(b"Failed password").is_none());
    }

    #[test]
    fn byte_mode_matches_through_invalid_utf8() {
        let p = Pattern::compile(
            r"^Failed password for .* from (?P<ip>\S+) port \d+ ssh2$",
            Tally::Each,
        )
        .unwrap();
        let mut locs = p.regex.capture_locations();
        let mut clock = SyslogClock::system(Timestamp::now());
        let m = run(
            &p,
            &mut locs,
            b"Failed password for \xff\xfe from 203.0.113.9 port 22 ssh2",
            &mut clock,
            &TrustedProxies::default(),
        )
        .unwrap();
        assert_eq!(m.ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn missing_ip_group_is_refused() {
        assert!(Pattern::compile(r"^Failed from (\S+)", Tally::Each)
            .unwrap_err()
            .contains("(?P<ip>"));
        assert!(Pattern::compile(r"^Failed (", Tally::Each)
            .unwrap_err()
            .starts_with("invalid regex"));
    }

    /// The shipped sshd patterns (rules/sshd.toml), which the fast path
    /// must serve exactly as the regex does.
    const SSHD: [&str; 3] = [
        r"^Failed (?:password|keyboard-interactive/pam|publickey|hostbased|none|gssapi-with-mic) for (?:invalid user )?.* from (?P<ip>\S+) port \d{1,5} ssh2(?:: [A-Za-z0-9@._-]+ SHA256:[A-Za-z0-9+/=]+)?$",
        r"^Invalid user .* from (?P<ip>\S+)(?: port \d{1,5})?$",
        r"^(?:Connection closed by|Connection reset by|Disconnected from) (?:authenticating|invalid) user .* (?P<ip>\S+) port \d{1,5} \[preauth\]$",
    ];

    /// The `ip` span as the regex captures it.
    fn by_regex(p: &Pattern, text: &[u8]) -> Option<(usize, usize)> {
        let mut locs = p.regex.capture_locations();
        p.regex.captures_read(&mut locs, text)?;
        locs.get(p.ip_group)
    }

    /// The fast path agrees with the regex, or defers to it.
    fn assert_agrees(p: &Pattern, text: &[u8]) {
        let split = p.split.as_ref().expect("the pattern has the shape");
        let want = by_regex(p, text);
        match split.find(text, &*p.regex) {
            Found::One(s, e) => {
                assert_eq!(Some((s, e)), want, "{:?}", String::from_utf8_lossy(text))
            }
            Found::None => assert_eq!(None, want, "{:?}", String::from_utf8_lossy(text)),
            Found::Ambiguous => {}
        }
    }

    /// A user name full of ` from X port N ssh2` gives Split many
    /// plausible runs: past a few it hands the line to the regex, which
    /// still captures the address sshd wrote last.
    #[test]
    fn many_plausible_runs_go_to_the_regex() {
        let p = Pattern::compile(SSHD[0], Tally::Each).unwrap();
        let split = p.split.as_ref().unwrap();
        let mut line = String::from("Failed password for invalid user x");
        for _ in 0..MAX_SPLIT_CANDIDATES {
            line.push_str(" from 10.66.66.66 port 22 ssh2");
        }
        line.push_str(" from 203.0.113.9 port 50022 ssh2");
        assert_eq!(split.find(line.as_bytes(), &*p.regex), Found::Ambiguous);
        let mut clock = SyslogClock::system(Timestamp::now());
        let mut locs = p.regex.capture_locations();
        let m = run(
            &p,
            &mut locs,
            line.as_bytes(),
            &mut clock,
            &TrustedProxies::default(),
        );
        assert_eq!(m.map(|m| m.ip.to_string()).as_deref(), Some("203.0.113.9"));
        // At the cap, Split still decides alone.
        let few = line.replacen(" from 10.66.66.66 port 22 ssh2", "", 2);
        assert_ne!(split.find(few.as_bytes(), &*p.regex), Found::Ambiguous);
        assert_agrees(&p, few.as_bytes());
    }

    #[test]
    fn the_fast_path_takes_the_shipped_sshd_patterns_and_no_others() {
        for p in SSHD {
            let split = Pattern::compile(p, Tally::Each).unwrap().split;
            // And each finds its candidates from a literal, not byte by
            // byte, and checks what comes before without a regex.
            assert!(
                split.is_some_and(|s| s.anchor.is_some() && s.before_shape.is_some()),
                "{p}"
            );
        }
        let some = |re: &str| Pattern::compile(re, Tally::Each).unwrap().split.is_some();
        assert!(some(r"^(?P<ip>\S+)$"));
        assert!(some(r"^x=(?P<ip>[0-9a-f:.]+);.*$"));
        // Another group, look-around inside, a bounded run, a neighbour
        // that may belong to the run, no anchors: the regex decides.
        assert!(!some(r"^(?P<ip>\S+) \[(?P<time>[^]]+)\]$"));
        assert!(!some(r"^.*\bfrom (?P<ip>\S+)$"));
        assert!(!some(r"^from (?P<ip>\S{1,45}) port$"));
        assert!(!some(r"^from (?P<ip>\S+)x$"));
        assert!(!some(r"^from(?P<ip>\S+) port$"));
        assert!(!some(r"from (?P<ip>\S+) port"));
        assert!(!some(r"^from (?P<ip>\S+) port"));
    }

    #[test]
    fn sandwiches_agree_with_their_regex() {
        for (x, yes, no) in [
            (
                r"Failed (?:password|publickey) for (?:invalid user )?.* from ",
                &[
                    &b"Failed password for root from "[..],
                    b"Failed publickey for invalid user  from ",
                    b"Failed password for  from  from ",
                ][..],
                &[
                    &b"Failed password for root from"[..],
                    b"Failed password for\nx from ",
                    b"Failed password fo from ",
                    b"xFailed password for a from ",
                    b"",
                ][..],
            ),
            (
                r"Invalid user .* from ",
                &[&b"Invalid user x from "[..], b"Invalid user  from "],
                &[&b"Invalid user from "[..], b"Invalid user x from"],
            ),
            (
                r"a?[0-9]*b",
                &[&b"b"[..], b"a1b", b"123b", b"ab"],
                &[&b"a"[..], b"ba", b"a1", b"xb"],
            ),
        ] {
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(x)
                .unwrap();
            let shape = Sandwich::new(&hir).unwrap_or_else(|| panic!("{x}"));
            let re = regex::bytes::RegexBuilder::new(&format!("^(?:{x})$"))
                .unicode(false)
                .build()
                .unwrap();
            for t in yes.iter().chain(no.iter()) {
                assert_eq!(
                    shape.matches(t),
                    re.is_match(t),
                    "{x} on {:?}",
                    String::from_utf8_lossy(t)
                );
            }
            for t in yes {
                assert!(shape.matches(t), "{x} on {:?}", String::from_utf8_lossy(t));
            }
        }
        // Not the shape: two stars, a bounded run, an infinite side.
        for x in [r"a.*b.*c", r"a.{0,5}b", r"\d+.*x", r"abc"] {
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(x)
                .unwrap();
            assert!(Sandwich::new(&hir).is_none(), "{x}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_regex_on_sshd_messages() {
        let lines: &[&[u8]] = &[
            b"Failed password for root from 203.0.113.7 port 52344 ssh2",
            b"Failed password for invalid user admin from 2001:db8::7 port 52344 ssh2",
            b"Failed publickey for git from 2001:db8:1:2::17 port 40022 ssh2: ED25519 SHA256:uuOz0lHlJV0qImGSA7UnTlAGv3wqq2x8WJD7dqmYGZk",
            b"Failed password for invalid user x from 10.0.0.1 port 22 ssh2 from 203.0.113.7 port 52344 ssh2",
            b"Failed password for x port port 1 ssh2 from 1.2.3.4 port port 2 ssh2",
            b"Failed password for  from  port 1 ssh2",
            b"Failed password for root from attacker.example.net port 52344 ssh2",
            b"Failed password for root from 1.2.3.4 port 123456 ssh2",
            b"Invalid user admin from 203.0.113.7 port 52344",
            b"Invalid user admin from 203.0.113.7",
            b"Invalid user x from 10.0.0.1 port 22 from 203.0.113.7 port 52344",
            b"Invalid user from from from 1.2.3.4",
            b"Invalid user  from 203.0.113.7 port 52344",
            b"Connection closed by authenticating user root 203.0.113.7 port 52344 [preauth]",
            b"Connection closed by invalid user x 10.0.0.1 port 22 [preauth] 203.0.113.7 port 52344 [preauth]",
            b"Disconnected from invalid user test 203.0.113.7 port 52344 [preauth]",
            b"Connection closed by 203.0.113.7 port 52344 [preauth]",
            b"Failed password for \xff\xfe from 203.0.113.9 port 22 ssh2",
            b"",
        ];
        for p in SSHD {
            let p = Pattern::compile(p, Tally::Each).unwrap();
            for l in lines {
                assert_agrees(&p, l);
            }
        }
    }

    proptest::proptest! {
        /// Messages stitched from the words these patterns look for, so
        /// that near misses, repeats and injections are common.
        #[test]
        fn the_fast_path_agrees_with_the_regex_on_generated_messages(
            words in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("Failed password for"),
                    proptest::strategy::Just("Invalid user"),
                    proptest::strategy::Just("Connection closed by invalid user"),
                    proptest::strategy::Just("from"),
                    proptest::strategy::Just("port"),
                    proptest::strategy::Just("ssh2"),
                    proptest::strategy::Just("[preauth]"),
                    proptest::strategy::Just("1.2.3.4"),
                    proptest::strategy::Just("::1"),
                    proptest::strategy::Just("22"),
                    proptest::strategy::Just("x"),
                    proptest::strategy::Just(""),
                ],
                0..12,
            ),
            spaces in proptest::collection::vec(1usize..3, 12),
        ) {
            let mut text = String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    text.push_str(&" ".repeat(spaces[i]));
                }
                text.push_str(w);
            }
            for p in SSHD {
                assert_agrees(&Pattern::compile(p, Tally::Each).unwrap(), text.as_bytes());
            }
        }
    }

    /// The shipped access-log patterns (rules/http.toml).
    const HTTP: [&str; 4] = [
        r#"^(?P<ip>[0-9A-Fa-f:.]+) \S+ .* \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(?:[^"\\]|\\.)*" 401 (?:\d+|-) "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"(?: "(?P<xff>(?:[^"\\]|\\.)*)"|(?: "(?:[^"\\]|\\.)*"){2,})?$"#,
        r#"^(?P<ip>[0-9A-Fa-f:.]+) \S+ .* \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(?:[^"\\]|\\.)*" 401 (?:\d+|-)$"#,
        r#"^(?:\x1b\[[0-9;]*m)*INFO(?:\x1b\[[0-9;]*m)*: +(?P<ip>[0-9A-Fa-f:.]+):\d{1,5} - "(?:[^"\\]|\\.)*" (?:\x1b\[[0-9;]*m)*401(?: [A-Za-z ]*)?(?:\x1b\[[0-9;]*m)*$"#,
        r#"^(?P<ip>[0-9A-Fa-f:.]+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4} \d{2}:\d{2}:\d{2})\] (?:\x1b\[[0-9;]*m)*".*" 401 (?:\d+|-)(?:\x1b\[[0-9;]*m)*$"#,
    ];

    type Span = (usize, usize);

    /// The `ip` and `time` spans as the regex captures them.
    fn spans_by_regex(p: &Pattern, text: &[u8]) -> Option<(Span, Option<Span>)> {
        let mut locs = p.regex.capture_locations();
        p.regex.captures_read(&mut locs, text)?;
        Some((
            locs.get(p.ip_group)?,
            p.time_group.and_then(|g| locs.get(g)),
        ))
    }

    /// The tail fast path agrees with the regex, or defers to it.
    fn assert_tail_agrees(p: &Pattern, text: &[u8]) {
        let tail = p.tail.as_ref().expect("the pattern has the shape");
        let want = spans_by_regex(p, text);
        let shown = String::from_utf8_lossy(text);
        match tail.find(text) {
            TailFound::One { ip, fixed } => {
                let time = fixed.map(|(role, s, e)| {
                    assert_eq!(role, Role::Time);
                    (s, e)
                });
                assert_eq!(Some((ip, time)), want, "{shown:?}");
            }
            TailFound::None => assert_eq!(None, want, "{shown:?}"),
            TailFound::Ambiguous => {}
        }
    }

    #[test]
    fn the_tail_path_takes_the_shipped_access_log_patterns() {
        for p in HTTP {
            let p = Pattern::compile(p, Tally::Each).unwrap();
            assert!(p.split.is_none() && p.tail.is_some(), "{:?}", p.regex);
        }
        let some = |re: &str| Pattern::compile(re, Tally::Each).unwrap().tail.is_some();
        assert!(some(r"^(?P<ip>\S+) \[(?P<time>\d{4})\] .*$"));
        // A variable-length time, a group inside a group, look-around, a
        // tail that may be empty: the regex decides.
        assert!(!some(r"^(?P<ip>\S+) \[(?P<time>[^]]+)\] .*$"));
        assert!(!some(r"^(?P<ip>\S+) \[(?P<time>(\d{4}))\] .*$"));
        assert!(!some(r"^(?P<ip>\S+) \[(?P<time>\d{4})\]\b.*$"));
        assert!(!some(r"^(?P<ip>\S+) \[(?P<time>\d{4})(?:\] .*)?$"));
    }

    #[test]
    fn the_tail_path_agrees_with_the_regex_on_access_lines() {
        let lines: &[&[u8]] = &[
            br#"203.0.113.7 - - [03/Dec/2026:13:55:36 +0000] "GET /api/v1/me HTTP/1.1" 401 45 "-" "python-requests/2.31.0""#,
            br#"2001:db8::7 - alice [03/Dec/2026:14:55:36 +0100] "POST /login HTTP/2.0" 401 0 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)""#,
            br#"203.0.113.7 - - [03/Dec/2026:13:55:36 +0000] "GET /private HTTP/1.1" 401 381"#,
            br#"203.0.113.7 - - [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "10.0.0.1 - - [03/Dec/2026:13:55:36 +0000] \x22GET / HTTP/1.1\x22 401 45""#,
            br#"203.0.113.7 - a [01/Jan/2020:00:00:00 +0000] b [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "curl/8.5.0""#,
            br#"203.0.113.7 - a [01/Jan/2020:00:00:00 +0000] "x" 401 1 "y" "z" [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "curl/8.5.0""#,
            br#"203.0.113.7 - - [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 45 "-" "curl/8.5.0""#,
            b"INFO:     2001:db8::7:51234 - \"GET /api/v1/me HTTP/1.1\" 401 Unauthorized",
            b"\x1b[32mINFO\x1b[0m:     203.0.113.7:51234 - \"\x1b[1mGET /x HTTP/1.1\x1b[0m\" \x1b[31m401 Unauthorized\x1b[0m",
            b"203.0.113.7 - - [03/Dec/2026 13:55:36] \x1b[1m\x1b[31m\"GET /api/v1/me HTTP/1.1\" 401 -\x1b[0m",
            b"203.0.113.7 - - [03/Dec/2026 13:55:36] \"GET /x\" 401 - [03/Dec/2026 13:55:37] \"y\" 401 -",
            br#"[03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "-""#,
            b"",
        ];
        for p in HTTP {
            let p = Pattern::compile(p, Tally::Each).unwrap();
            for l in lines {
                assert_tail_agrees(&p, l);
            }
        }
    }

    /// With an `xff` group, the tail path answers only for untrusted
    /// peers; for a trusted one the regex reads the chain. Either way `run`
    /// gives what the regex alone gives.
    #[test]
    fn the_tail_path_leaves_a_trusted_peers_chain_to_the_regex() {
        let fast = Pattern::compile(HTTP[0], Tally::Each).unwrap();
        assert!(fast.xff_group.is_some() && fast.tail.is_some());
        let mut slow = Pattern::compile(HTTP[0], Tally::Each).unwrap();
        slow.tail = None;
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let lines: &[&[u8]] = &[
            br#"10.0.0.5 - - [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "curl/8.5.0" "198.51.100.9, 203.0.113.7""#,
            br#"203.0.113.8 - - [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "curl/8.5.0" "10.66.66.66""#,
            br#"10.0.0.5 - - [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "curl/8.5.0""#,
            br#"10.0.0.5 - - [03/Dec/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 45 "-" "curl/8.5.0" "-""#,
        ];
        for proxies in [TrustedProxies::default(), trusted] {
            for l in lines {
                let mut clock = SyslogClock::system(Timestamp::now());
                let mut locs = fast.regex.capture_locations();
                let got = run(&fast, &mut locs, l, &mut clock, &proxies);
                let want = run(&slow, &mut locs, l, &mut clock, &proxies);
                let shown = String::from_utf8_lossy(l);
                match (&got, &want) {
                    (Some(g), Some(w)) => {
                        assert_eq!(
                            (g.ip, g.time, g.weight),
                            (w.ip, w.time, w.weight),
                            "{shown}"
                        );
                        // The chain matters only for a trusted peer.
                        if proxies.contains(&w.ip) {
                            assert_eq!(g.forwarded, w.forwarded, "{shown}");
                        }
                    }
                    _ => assert_eq!(got.is_some(), want.is_some(), "{shown}"),
                }
            }
        }
        // The first line's chain is read when its peer is trusted.
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let mut clock = SyslogClock::system(Timestamp::now());
        let mut locs = fast.regex.capture_locations();
        let m = run(&fast, &mut locs, lines[0], &mut clock, &trusted).unwrap();
        assert_eq!(m.forwarded, Some(&b"198.51.100.9, 203.0.113.7"[..]));
    }

    proptest::proptest! {
        /// Access lines stitched from the pieces the patterns look for, so
        /// that forged dates, quotes, statuses and addresses are common.
        #[test]
        fn the_tail_path_agrees_with_the_regex_on_generated_access_lines(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("203.0.113.7"),
                    proptest::strategy::Just("2001:db8::7:51234"),
                    proptest::strategy::Just("-"),
                    proptest::strategy::Just("[03/Dec/2026:13:55:36 +0000]"),
                    proptest::strategy::Just("[03/Dec/2026 13:55:36]"),
                    proptest::strategy::Just("\"GET / HTTP/1.1\""),
                    proptest::strategy::Just("\"a\\\"b\""),
                    proptest::strategy::Just("\""),
                    proptest::strategy::Just("401"),
                    proptest::strategy::Just("45"),
                    proptest::strategy::Just("INFO:"),
                    proptest::strategy::Just("\x1b[31m"),
                    proptest::strategy::Just("]"),
                ],
                0..14,
            ),
            spaces in proptest::collection::vec(0usize..3, 14),
        ) {
            let mut text = String::new();
            for (i, w) in pieces.iter().enumerate() {
                if i > 0 {
                    text.push_str(&" ".repeat(spaces[i]));
                }
                text.push_str(w);
            }
            for p in HTTP {
                assert_tail_agrees(&Pattern::compile(p, Tally::Each).unwrap(), text.as_bytes());
            }
        }
    }
}
