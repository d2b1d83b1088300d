//! Sources: where lines come from.

pub mod checkpoint;
pub mod fingerprint;
pub mod journald;
pub mod lines;
pub mod tailer;
