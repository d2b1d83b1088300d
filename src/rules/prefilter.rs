//! The literal prefilter: one Aho-Corasick pass over a line tells which
//! matchers could possibly match it, so that most lines are rejected
//! without running a regex or parsing JSON.
//!
//! A matcher with no usable literal is always a candidate: the prefilter
//! may only make things faster, never change what matches.

use aho_corasick::{AhoCorasick, MatchKind};
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
#[derive(Debug)]
pub(super) struct Prefilter {
    ac: Option<AhoCorasick>,
    /// AC pattern id → unit.
    owner: Vec<u32>,
    /// Units without literals: candidates for every line.
    always: Vec<u32>,
}

impl Prefilter {
    /// `units[i]` is the literal set of unit `i`, or `None` if it must
    /// always run.
    pub(super) fn new(units: &[Option<Vec<Vec<u8>>>]) -> Prefilter {
        let mut lits: Vec<&[u8]> = Vec::new();
        let mut owner = Vec::new();
        let mut always = Vec::new();
        for (i, u) in units.iter().enumerate() {
            match u {
                Some(set) => {
                    for l in set {
                        lits.push(l);
                        owner.push(i as u32);
                    }
                }
                None => always.push(i as u32),
            }
        }
        let ac = if lits.is_empty() {
            None
        } else {
            // Standard semantics: overlapping search must see every
            // literal, so that no candidate is hidden by another.
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&lits)
                .ok()
        };
        // If the automaton cannot be built (it only fails on absurd
        // sizes), fall back to running everything: slower, never wrong.
        if ac.is_none() && !lits.is_empty() {
            always = (0..units.len() as u32).collect();
            owner.clear();
        }
        Prefilter { ac, owner, always }
    }

    /// Fills `out` with the candidate units for `line`, sorted, no
    /// duplicates. Allocates nothing once `out` has grown.
    pub(super) fn candidates(&self, line: &[u8], out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.always);
        if let Some(ac) = &self.ac {
            let before = out.len();
            for m in ac.find_overlapping_iter(line) {
                out.push(self.owner[m.pattern().as_usize()]);
            }
            if out.len() == before && before == 0 {
                return;
            }
        }
        out.sort_unstable();
        out.dedup();
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
}
