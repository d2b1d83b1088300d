//! `json_scan::Scanner::scan` on any bytes, two ways:
//!
//! * with the matcher's default limits and a visitor that may stop early
//!   (chosen by the input): never a panic, and the paths it hands out stay
//!   within the depth limit;
//! * differentially against serde_json, with generous limits: every line
//!   serde_json reads as one object (tightly framed by `{` … `}`, within the
//!   depth limit) the scanner accepts too, and every line the scanner
//!   accepts serde_json reads, except where the scanner is documented to be
//!   more lenient (invalid UTF-8 and lone surrogate escapes become U+FFFD;
//!   numbers are checked for grammar, not range).
#![no_main]

use authwatch::rules::json_scan::{Flow, Limits, Scanner};
use libfuzzer_sys::fuzz_target;

const DIFF_DEPTH: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&stop_byte, line)) = data.split_first() else {
        return;
    };

    // 1. As the JSON rules run it.
    let limits = Limits::default();
    let mut scanner = Scanner::new(limits);
    let stop_after = usize::from(stop_byte);
    let mut leaves = 0usize;
    let _ = scanner.scan(line, |path, _value| {
        assert!(!path.is_empty() && path.len() <= limits.max_depth);
        leaves += 1;
        assert!(leaves <= limits.max_values);
        if leaves == stop_after {
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    // The scanner is reused line after line: a second scan must agree.
    let first = scanner.scan(line, |_, _| Flow::Continue);
    assert_eq!(first, scanner.scan(line, |_, _| Flow::Continue));

    // 2. Against serde_json.
    let mut wide = Scanner::new(Limits {
        max_depth: DIFF_DEPTH,
        max_values: usize::MAX,
    });
    let ours = wide.scan(line, |_, _| Flow::Continue);
    let theirs = serde_json::from_slice::<serde_json::Value>(line);
    match (&ours, &theirs) {
        (Err(e), Ok(v)) => {
            let framed = line.first() == Some(&b'{') && line.last() == Some(&b'}');
            if v.is_object() && framed && depth(v) <= DIFF_DEPTH {
                panic!("serde_json reads an object the scanner rejects: {e:?}");
            }
        }
        (Ok(()), Err(e)) => {
            let msg = e.to_string();
            let lenient = std::str::from_utf8(line).is_err()
                || has_surrogate_escape(line)
                || msg.contains("out of range");
            assert!(
                lenient,
                "the scanner accepts what serde_json rejects: {msg}"
            );
        }
        (Ok(()), Ok(v)) => assert!(v.is_object()),
        (Err(_), Err(_)) => {}
    }
});

/// Nesting depth as the scanner counts it: the line's object is 1.
fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether `line` holds a `\uD800`..`\uDFFF` escape: half of a surrogate
/// pair, which the scanner turns into U+FFFD when it stands alone and
/// serde_json rejects (with messages that vary with what follows it).
fn has_surrogate_escape(line: &[u8]) -> bool {
    line.windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && matches!(w[2], b'd' | b'D')
            && matches!(w[3], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
    })
}
