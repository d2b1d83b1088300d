//! The literal prefilter: one Aho-Corasick pass over a line tells which
//! matchers could possibly match it, so that most lines are rejected
//! without running a regex or parsing JSON.
//!
//! A matcher with no usable literal is always a candidate: the prefilter
//! may only make things faster, never change what matches.

use aho_corasick::{packed, AhoCorasick, Input, MatchKind, Span};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Literals that every match of a pattern must contain, or `None` when no
/// such finite set can be derived. Prefixes are preferred; a pattern that
/// starts with `.*` may still have required suffixes.
pub(super) fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let suffix = matches!(kind, ExtractKind::Suffix);
        let mut seq = Extractor::new().kind(kind).extract(&hir);
        // Keep the set small and every literal distinctive; an empty
        // literal means "matches anything" and defeats the prefilter.
        if suffix {
            seq.optimize_for_suffix_by_preference();
        } else {
            seq.optimize_for_prefix_by_preference();
        }
        if let Some(lits) = seq.literals() {
            if !lits.is_empty() && lits.len() <= 64 && lits.iter().all(|l| l.as_bytes().len() >= 3)
            {
                return Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect());
            }
        }
    }
    None
}

/// Maps literal occurrences to candidate matcher units.
///
/// # Speed
///
/// This runs on every line, so it must cost far less than a pass of an
/// automaton over every byte. Aho-Corasick with leftmost-first semantics
/// can use its SIMD "packed" (Teddy) prefilter, which skips through text
/// that holds no literal at several bytes per cycle; the overlapping
/// (standard) search that would report every occurrence directly cannot,
/// and walks its automaton byte by byte (about 20 instructions a byte).
///
/// A leftmost search reports only one literal per start position, so
/// after each match at `p` every literal that could start at `p` is
/// compared there, and the search resumes at `p + 1`. That sees every
/// occurrence of every literal: a leftmost search from `q` finds the
/// earliest position at or after `q` where any literal starts. So the
/// candidates are exactly the units whose literal occurs, as before.
///
/// Each distinct literal is searched for once, however many units name it
/// (the four access-log patterns all name `" 401`).
#[derive(Debug)]
pub(super) struct Prefilter {
    ac: Option<Search>,
    /// AC pattern id → the units that named that literal.
    owners: Vec<Vec<u32>>,
    /// AC pattern id → literal.
    lits: Vec<Vec<u8>>,
    /// First byte → the ids of the literals that start with it.
    by_first: Vec<Vec<u32>>,
    /// Units without literals: candidates for every line.
    always: Vec<u32>,
}

/// The leftmost-first search over the distinct literals: the packed
/// (Teddy) searcher itself when it can be built — a line costs one call
/// into it, where the full automaton adds two layers of dispatch per call,
/// a tenth of the time on short lines — else the automaton, which falls
/// back to its own search where SIMD is missing.
#[derive(Debug)]
enum Search {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

impl Search {
    fn new(lits: &[Vec<u8>]) -> Option<Search> {
        let packed = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(lits)
            .build();
        if let Some(p) = packed {
            return Some(Search::Packed(p));
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(lits)
            .ok()
            .map(Search::Automaton)
    }

    /// Where the leftmost occurrence of any literal starting at or after
    /// `at` starts.
    #[inline]
    fn find(&self, line: &[u8], at: usize) -> Option<usize> {
        let m = match self {
            Search::Packed(p) => p.find_in(line, Span::from(at..line.len()))?,
            Search::Automaton(ac) => ac.find(Input::new(line).span(at..line.len()))?,
        };
        Some(m.start())
    }
}

impl Prefilter {
    /// `units[i]` is the literal set of unit `i`, or `None` if it must
    /// always run.
    pub(super) fn new(units: &[Option<Vec<Vec<u8>>>]) -> Prefilter {
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<u32>> = Vec::new();
        let mut always = Vec::new();
        for (i, u) in units.iter().enumerate() {
            let unit = i as u32;
            match u {
                Some(set) => {
                    for l in set {
                        if l.is_empty() {
                            // An empty literal occurs everywhere.
                            always.push(unit);
                        } else if let Some(k) = lits.iter().position(|x| x == l) {
                            if !owners[k].contains(&unit) {
                                owners[k].push(unit);
                            }
                        } else {
                            lits.push(l.clone());
                            owners.push(vec![unit]);
                        }
                    }
                }
                None => always.push(unit),
            }
        }
        let ac = if lits.is_empty() {
            None
        } else {
            Search::new(&lits)
        };
        // If the automaton cannot be built (it only fails on absurd
        // sizes), fall back to running everything: slower, never wrong.
        if ac.is_none() && !lits.is_empty() {
            always = (0..units.len() as u32).collect();
            owners.clear();
            lits.clear();
        }
        always.sort_unstable();
        always.dedup();
        let mut by_first = vec![Vec::new(); 256];
        for (id, l) in lits.iter().enumerate() {
            by_first[usize::from(l[0])].push(id as u32);
        }
        Prefilter {
            ac,
            owners,
            lits,
            by_first,
            always,
        }
    }

    /// Fills `out` with the candidate units for `line`, sorted, no
    /// duplicates. Allocates nothing once `out` has grown.
    pub(super) fn candidates(&self, line: &[u8], out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.always);
        let Some(ac) = &self.ac else {
            return;
        };
        let before = out.len();
        let mut at = 0;
        while at < line.len() {
            let Some(p) = ac.find(line, at) else {
                break;
            };
            let rest = &line[p..];
            for &id in &self.by_first[usize::from(line[p])] {
                if rest.starts_with(&self.lits[id as usize]) {
                    out.extend_from_slice(&self.owners[id as usize]);
                }
            }
            at = p + 1;
        }
        if out.len() > before {
            out.sort_unstable();
            out.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_prefixes_of_anchored_patterns() {
        let l = required_literals(r"^Failed (?:password|publickey) for (?P<ip>\S+)").unwrap();
        assert!(l.iter().any(|x| x.starts_with(b"Failed p")), "{l:?}");
    }

    #[test]
    fn falls_back_to_suffixes_and_to_none() {
        let l = required_literals(r".* port \d+ \[preauth\]$");
        assert!(l.is_some());
        assert_eq!(required_literals(r".*"), None);
        assert_eq!(required_literals(r"\S+ \d+"), None);
    }

    #[test]
    fn candidates_are_exactly_the_units_whose_literal_occurs() {
        let pf = Prefilter::new(&[
            Some(vec![b"Failed".to_vec()]),
            None,
            Some(vec![b"Invalid user".to_vec(), b"xyz".to_vec()]),
        ]);
        let mut out = Vec::new();
        pf.candidates(b"noise line", &mut out);
        assert_eq!(out, vec![1]);
        pf.candidates(b"Failed password; Invalid user", &mut out);
        assert_eq!(out, vec![0, 1, 2]);
        let none = Prefilter::new(&[Some(vec![b"abc".to_vec()])]);
        none.candidates(b"zzz", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn literals_at_one_position_or_inside_another_are_all_seen() {
        // A leftmost search reports one literal per position; the others
        // starting there, and those inside it, must not be lost.
        let pf = Prefilter::new(&[
            Some(vec![b"Failed password".to_vec()]),
            Some(vec![b"Failed".to_vec()]),
            Some(vec![b"password for".to_vec()]),
            Some(vec![b"ass".to_vec()]),
            Some(vec![b"sss".to_vec()]),
            Some(vec![b"zzz".to_vec()]),
        ]);
        let mut out = Vec::new();
        pf.candidates(b"Failed password for root", &mut out);
        assert_eq!(out, vec![0, 1, 2, 3]);
        // Overlapping occurrences of one literal.
        pf.candidates(b"ssss", &mut out);
        assert_eq!(out, vec![4]);
        pf.candidates(b"", &mut out);
        assert!(out.is_empty());
    }

    proptest::proptest! {
        /// The candidates are exactly the units one of whose literals is a
        /// substring of the line.
        #[test]
        fn candidates_agree_with_substring_search(
            units in proptest::collection::vec(
                proptest::option::of(proptest::collection::vec("[ab ]{1,4}", 1..3)),
                1..6,
            ),
            line in "[ab ]{0,24}",
        ) {
            let units: Vec<Option<Vec<Vec<u8>>>> = units
                .into_iter()
                .map(|u| u.map(|l| l.into_iter().map(String::into_bytes).collect()))
                .collect();
            let mut pf = Prefilter::new(&units);
            let mut out = Vec::new();
            pf.candidates(line.as_bytes(), &mut out);
            // The automaton, used where the packed searcher cannot be
            // built, gives the same.
            if !pf.lits.is_empty() {
                pf.ac = AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(&pf.lits)
                    .ok()
                    .map(Search::Automaton);
                let mut again = Vec::new();
                pf.candidates(line.as_bytes(), &mut again);
                proptest::prop_assert_eq!(&again, &out);
            }
            let want: Vec<u32> = units
                .iter()
                .enumerate()
                .filter(|(_, u)| match u {
                    None => true,
                    Some(lits) => lits
                        .iter()
                        .any(|l| line.as_bytes().windows(l.len()).any(|w| w == l.as_slice())),
                })
                .map(|(i, _)| i as u32)
                .collect();
            proptest::prop_assert_eq!(out, want);
        }
    }
}
