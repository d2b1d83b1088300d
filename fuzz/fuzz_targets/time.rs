//! The timestamp parsers on any bytes, in a time zone and at a reference
//! time chosen by the input: `parse_log_time`, `parse_rfc3339`,
//! `parse_epoch`, `SyslogClock::parse_prefix` and `syslog::parse_header`.
//!
//! Besides "never panics", each checks what its documentation promises:
//! consumed lengths stay within the input, epoch times stay in 1990..2200,
//! a year-less syslog time is never more than a day after the reference,
//! an RFC 3339 time survives a round trip through `Timestamp`'s display,
//! and a syslog header's parts are slices of the line.
#![no_main]

use arbitrary::Arbitrary;
use authwatch::syslog::parse_header;
use authwatch::time::{
    parse_epoch, parse_log_time, parse_rfc3339, parse_rfc3339_prefix, SyslogClock, Timestamp,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    zone: u8,
    offset_secs: i32,
    reference_ms: i64,
    text: &'a [u8],
}

/// Zones with DST, a half-hour transition not on the hour (Lord Howe) and
/// a negative non-whole-hour offset (St John's), besides UTC and a fixed
/// offset from the input.
const ZONES: [&str; 4] = [
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Kiritimati",
];

const DAY_MS: i64 = 86_400_000;

fn zone(pick: u8, offset_secs: i32) -> jiff::tz::TimeZone {
    match pick % 6 {
        0 => jiff::tz::TimeZone::UTC,
        1 => jiff::tz::Offset::from_seconds(offset_secs % (25 * 3600))
            .map(jiff::tz::TimeZone::fixed)
            .unwrap_or(jiff::tz::TimeZone::UTC),
        n => jiff::tz::TimeZone::get(ZONES[usize::from(n - 2)]).unwrap_or(jiff::tz::TimeZone::UTC),
    }
}

fuzz_target!(|input: Input<'_>| {
    let s = input.text;
    // Mostly references near today, sometimes anywhere in i64.
    let reference = if input.zone & 0x80 == 0 {
        Timestamp::from_millis(1_764_000_000_000 + input.reference_ms % (200 * 365 * DAY_MS))
    } else {
        Timestamp::from_millis(input.reference_ms)
    };
    let mut clock = SyslogClock::new(zone(input.zone, input.offset_secs), reference);

    if let Some((t, n)) = clock.parse_prefix(s) {
        assert!(n <= s.len());
        assert!(
            t.as_millis() <= reference.as_millis().saturating_add(DAY_MS),
            "{t} is more than a day after the reference {reference}"
        );
    }

    if let Some((t, n)) = parse_rfc3339_prefix(s) {
        assert!((20..=s.len()).contains(&n));
        assert_eq!(parse_rfc3339(&s[..n]), Some(t));
        let shown = t.to_string();
        // Years 0000..=9999 display as RFC 3339 and read back exactly.
        if shown.as_bytes().first().is_some_and(u8::is_ascii_digit) && shown.len() >= 20 {
            assert_eq!(parse_rfc3339(shown.as_bytes()), Some(t), "{shown}");
        }
    }

    if let Some(t) = parse_epoch(s) {
        // 1990-01-01 ..= 2200-01-01.
        assert!((631_152_000_000..=7_258_118_400_000).contains(&t.as_millis()));
    }

    let _ = parse_log_time(s, &mut clock);

    if let Some(h) = parse_header(s, &mut clock) {
        let within = |part: &[u8]| {
            let (start, end) = (s.as_ptr() as usize, s.as_ptr() as usize + s.len());
            let p = part.as_ptr() as usize;
            start <= p && p + part.len() <= end
        };
        assert!(within(h.host) && within(h.program) && within(h.message));
        assert!(!h.host.is_empty() && !h.program.is_empty() && h.program.len() <= 64);
        if let Some(pid) = h.pid {
            assert!(within(pid) && (1..=10).contains(&pid.len()));
            assert!(pid.iter().all(u8::is_ascii_digit));
        }
        // The message is the line's tail.
        assert!(s.ends_with(h.message));
    }
});
