//! `Config::parse` on any text: a located error or a configuration, never
//! a panic. The configuration is the operator's, not an attacker's, but a
//! typo must give a message, not a crash.
#![no_main]

use std::path::Path;

use authwatch::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A relative and an absolute file name: relative paths in the text are
    // resolved against the file's directory.
    for file in ["authwatch.toml", "/etc/authwatch/authwatch.toml"] {
        match Config::parse(Path::new(file), text) {
            Ok(config) => {
                assert!(config.max_line_bytes > 0);
                assert!(!config.host.is_empty());
            }
            Err(ConfigError::At { line, .. }) => {
                // Lines are 1-based and inside the text (or just after it).
                assert!(line >= 1);
                assert!(line <= text.lines().count() + 1);
            }
            Err(ConfigError::Read { .. }) => panic!("parse never reads files"),
        }
    }
});
