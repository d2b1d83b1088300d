//! `RuleSet::from_files` on any text, split into up to three files at NUL
//! bytes: errors name file and line, compilation never panics, and a rule
//! set that compiles has run its own examples.
#![no_main]

use std::path::PathBuf;

use authwatch::rules::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files: Vec<(PathBuf, String)> = text
        .splitn(3, '\0')
        .enumerate()
        .map(|(i, t)| (PathBuf::from(format!("/rules/{i}.toml")), t.to_owned()))
        .collect();
    match RuleSet::from_files(&files) {
        Ok(set) => {
            assert!(!set.rules().is_empty());
            assert!(set.check_examples().is_empty());
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                assert!(files.iter().any(|(p, _)| *p == e.file), "{e}");
                // Rendering the error must not panic either.
                let _ = e.to_string();
            }
        }
    }
});
