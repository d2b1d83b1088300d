//! Rules: compiled once from rule files; turn a line into a hit.

pub mod json_scan;
