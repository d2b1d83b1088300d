//! Rules: compiled once from rule files; turn a line into a hit.

mod hit;
pub mod json_scan;

pub use hit::{Hit, RuleIdx, Tally};
