//! journald source (being written)
