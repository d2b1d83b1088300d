//! Sources: where lines come from.

pub mod checkpoint;
pub mod fingerprint;
pub mod tailer;
pub mod lines;
