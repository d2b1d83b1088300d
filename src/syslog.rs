//! The header that syslog-style lines carry: time, host, program, pid, and
//! where the message starts.
//!
//! This module owns the split of a line such as
//!
//! ```text
//! Mar  5 06:25:01 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52344 ssh2
//! └──── time ───┘ host └prog┘ pid  └──────────────────── message ─────────────────────────┘
//! ```
//!
//! into a [`SyslogHeader`] of borrowed slices, so rules can match on the
//! program and message alone. The timestamps are read by [`crate::time`]:
//! BSD syslog / journald `short` and `short-precise` through a
//! [`SyslogClock`], RFC 3339 (rsyslog) and journald `short-iso[-precise]`
//! through [`parse_rfc3339_prefix`].
//!
//! The parser is hand-written and allocation-free (it runs on every line),
//! and strict: anything that is not exactly a header gives `None`, never a
//! panic, whatever the bytes.

use crate::time::{parse_rfc3339_prefix, SyslogClock, Timestamp};

/// The longest program name accepted; longer ones are not syslog headers.
const MAX_PROGRAM_LEN: usize = 64;
/// The most digits a pid may have (`u32::MAX` has 10).
const MAX_PID_LEN: usize = 10;

/// The parts of a syslog-style line, borrowed from it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SyslogHeader<'a> {
    /// When the line says the event happened.
    pub time: Timestamp,
    /// One token, without spaces.
    pub host: &'a [u8],
    /// 1..=64 bytes of `A-Z a-z 0-9 - . _ / @` (`sshd-session`,
    /// `postfix/smtpd`, `systemd-logind`, `user@1000.service`).
    pub program: &'a [u8],
    /// 1..=10 ASCII digits, when the line has `[pid]`.
    pub pid: Option<&'a [u8]>,
    /// Everything after `]: ` or `: ` (one space consumed), up to the end of
    /// the line as given: a trailing `\r` is the caller's to strip.
    pub message: &'a [u8],
}

/// Splits `line` into its syslog header and message, or `None` if it does
/// not start with one.
///
/// The line is `TIME SP HOST SP PROGRAM[ "[" PID "]" ] ":" SP MESSAGE`,
/// where TIME is either syslog's `Mmm dd HH:MM:SS[.fraction]` (the year and
/// zone come from `clock`) or RFC 3339 with an offset (`+02:00` or `+0200`).
pub fn parse_header<'a>(line: &'a [u8], clock: &mut SyslogClock) -> Option<SyslogHeader<'a>> {
    // An RFC 3339 time starts with its year, a syslog one with its month.
    let (time, time_len) = if line.first()?.is_ascii_digit() {
        parse_rfc3339_prefix(line)?
    } else {
        clock.parse_prefix(line)?
    };
    let rest = after_space(line.get(time_len..)?)?;

    let host_len = memchr::memchr(b' ', rest)?;
    if host_len == 0 {
        return None;
    }
    let (host, rest) = rest.split_at_checked(host_len)?;
    let rest = after_space(rest)?;

    // Scan at most one byte past the limit: enough to reject a longer name
    // without walking an attacker's megabyte of letters.
    let program_len = rest
        .iter()
        .take(MAX_PROGRAM_LEN + 1)
        .take_while(|&&b| is_program_byte(b))
        .count();
    if program_len == 0 || program_len > MAX_PROGRAM_LEN {
        return None;
    }
    let (program, rest) = rest.split_at_checked(program_len)?;

    let (pid, rest) = match rest.first()? {
        b'[' => {
            let digits = rest.get(1..)?;
            let pid_len = digits
                .iter()
                .take(MAX_PID_LEN + 1)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if pid_len == 0 || pid_len > MAX_PID_LEN {
                return None;
            }
            let (pid, rest) = digits.split_at_checked(pid_len)?;
            (Some(pid), rest.strip_prefix(b"]")?)
        }
        _ => (None, rest),
    };
    let message = rest.strip_prefix(b": ")?;

    Some(SyslogHeader {
        time,
        host,
        program,
        pid,
        message,
    })
}

/// `s` without its first byte, which must be a space.
#[inline]
fn after_space(s: &[u8]) -> Option<&[u8]> {
    s.strip_prefix(b" ")
}

#[inline]
fn is_program_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/' | b'@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    const FAILED: &[u8] = b"Failed password for root from 203.0.113.7 port 52344 ssh2";

    fn at(s: &str) -> Timestamp {
        let ts: jiff::Timestamp = s.parse().unwrap();
        Timestamp::from_millis(ts.as_millisecond())
    }

    /// A clock in UTC with a reference in mid-2025, so `Mar  5` is 2025.
    fn clock() -> SyslogClock {
        SyslogClock::new(TimeZone::UTC, at("2025-06-01T00:00:00Z"))
    }

    fn header(line: &[u8]) -> Option<SyslogHeader<'_>> {
        parse_header(line, &mut clock())
    }

    fn line(prefix: &str, message: &[u8]) -> Vec<u8> {
        [prefix.as_bytes(), message].concat()
    }

    /// What every parsed header must be, whatever the input.
    fn assert_well_formed(line: &[u8], h: &SyslogHeader<'_>) {
        assert!(!h.host.is_empty() && !h.host.contains(&b' '), "{h:?}");
        assert!((1..=MAX_PROGRAM_LEN).contains(&h.program.len()), "{h:?}");
        assert!(h.program.iter().all(|&b| is_program_byte(b)), "{h:?}");
        if let Some(pid) = h.pid {
            assert!((1..=MAX_PID_LEN).contains(&pid.len()), "{h:?}");
            assert!(pid.iter().all(u8::is_ascii_digit), "{h:?}");
        }
        assert!(line.ends_with(h.message), "{h:?}");
        let head = &line[..line.len() - h.message.len()];
        assert!(head.ends_with(b": "), "{h:?}");
    }

    #[test]
    fn bsd_syslog() {
        let l = line("Mar  5 06:25:01 web1 sshd[1234]: ", FAILED);
        let h = header(&l).unwrap();
        assert_eq!(
            h,
            SyslogHeader {
                time: at("2025-03-05T06:25:01Z"),
                host: b"web1",
                program: b"sshd",
                pid: Some(b"1234"),
                message: FAILED,
            }
        );
        let h = header(b"Mar 15 06:25:01 web1 sshd[1234]: Accepted publickey for deploy").unwrap();
        assert_eq!(h.time, at("2025-03-15T06:25:01Z"));
        assert_eq!(h.message, b"Accepted publickey for deploy");
    }

    #[test]
    fn journald_short_precise() {
        let l = line("Mar 05 06:25:01.123456 web1 sshd-session[1234]: ", FAILED);
        let h = header(&l).unwrap();
        assert_eq!(h.time, at("2025-03-05T06:25:01.123Z"));
        assert_eq!(h.host, b"web1");
        assert_eq!(h.program, b"sshd-session");
        assert_eq!(h.pid, Some(&b"1234"[..]));
        assert_eq!(h.message, FAILED);
    }

    #[test]
    fn rfc3339_as_rsyslog_writes_it() {
        let l = line("2024-05-01T12:34:56.123456+02:00 web1 sshd[1234]: ", FAILED);
        let h = header(&l).unwrap();
        assert_eq!(h.time, at("2024-05-01T10:34:56.123Z"));
        assert_eq!(
            (h.host, h.program, h.pid),
            (&b"web1"[..], &b"sshd"[..], Some(&b"1234"[..]))
        );
        assert_eq!(h.message, FAILED);
    }

    #[test]
    fn journald_short_iso() {
        let l = line("2024-05-01T12:34:56+0200 web1 sshd[1234]: ", FAILED);
        let h = header(&l).unwrap();
        assert_eq!(h.time, at("2024-05-01T10:34:56Z"));
        assert_eq!(h.message, FAILED);

        let l = line("2024-05-01T12:34:56.123456+0200 web1 sshd[1234]: ", FAILED);
        let h = header(&l).unwrap();
        assert_eq!(h.time, at("2024-05-01T10:34:56.123Z"));
        assert_eq!(h.program, b"sshd");
        assert_eq!(h.message, FAILED);
    }

    #[test]
    fn program_without_pid() {
        let h =
            header(b"Mar  5 06:25:01 web1 CRON: pam_unix(cron:session): session opened").unwrap();
        assert_eq!(h.program, b"CRON");
        assert_eq!(h.pid, None);
        assert_eq!(h.message, b"pam_unix(cron:session): session opened");
    }

    #[test]
    fn program_names() {
        for program in [
            "postfix/smtpd",
            "sshd-session",
            "systemd-logind",
            "user@1000.service",
            "python3.12",
            "my_daemon",
            "a",
        ] {
            let l =
                format!("Mar  5 06:25:01 mail {program}[42]: connect from unknown[203.0.113.7]");
            let h = header(l.as_bytes()).unwrap();
            assert_eq!(h.program, program.as_bytes());
            assert_eq!(h.pid, Some(&b"42"[..]));
            assert_eq!(h.message, b"connect from unknown[203.0.113.7]");
        }
        let longest = "p".repeat(64);
        let l = format!("Mar  5 06:25:01 web1 {longest}: x");
        assert_eq!(header(l.as_bytes()).unwrap().program, longest.as_bytes());
        let l = format!("Mar  5 06:25:01 web1 {longest}p: x");
        assert_eq!(header(l.as_bytes()), None);
    }

    #[test]
    fn message_edges() {
        // Exactly one space is consumed; a trailing \r stays in the message.
        let h = header(b"Mar  5 06:25:01 web1 sshd[1]:  two spaces\r").unwrap();
        assert_eq!(h.message, b" two spaces\r");
        let h = header(b"Mar  5 06:25:01 web1 sshd[1]: ").unwrap();
        assert_eq!(h.message, b"");
        // The message may hold anything, colons and brackets included.
        let h = header(b"Mar  5 06:25:01 web1 sshd[1]: a[2]: b: c\xff").unwrap();
        assert_eq!(h.message, b"a[2]: b: c\xff");
        // The longest pid.
        let h = header(b"Mar  5 06:25:01 web1 sshd[4294967295]: x").unwrap();
        assert_eq!(h.pid, Some(&b"4294967295"[..]));
        // Host names as they come: FQDN, IP, anything without a space.
        let h = header(b"Mar  5 06:25:01 203.0.113.9 sshd[1]: x").unwrap();
        assert_eq!(h.host, b"203.0.113.9");
    }

    #[test]
    fn malformed_headers() {
        for l in [
            &b""[..],
            b"Mar  5 06:25:01",
            b"Mar  5 06:25:01 ",
            b"Mar  5 06:25:01  web1 sshd[1]: x", // empty host
            b"Mar  5 06:25:01 web1  sshd[1]: x", // empty program
            b"Mar  5 06:25:01 web1 sshd[1]:x",   // no space after ':'
            b"Mar  5 06:25:01 web1 sshd[1] : x",
            b"Mar  5 06:25:01 web1 sshd[1]",
            b"Mar  5 06:25:01 web1 sshd[]: x",    // empty pid
            b"Mar  5 06:25:01 web1 sshd[12a]: x", // non-digit pid
            b"Mar  5 06:25:01 web1 sshd[-1]: x",
            b"Mar  5 06:25:01 web1 sshd[12345678901]: x", // 11 digits
            b"Mar  5 06:25:01 web1 sshd[1: x",
            b"Mar  5 06:25:01 web1 sshd[1]]: x",
            b"Mar  5 06:25:01 web1 ssh d[1]: x",
            b"Mar  5 06:25:01 web1 sshd(1): x",
            b"Mar  5 06:25:01 web1 s\xc3\xa9[1]: x",
            b"Mar  5 06:25:01 web1 sshd[1]\t: x",
            b"Mar  5 06:25:01 web1 sshd",
            b"Mar  5 06:25:01 web1",
            b"Mar  5 06:25:01 sshd[1234]: Failed password", // no host
            b"Mar  5 06:25:01web1 sshd[1]: x",
            b"Mar  5 06:25:01.web1 sshd[1]: x",
            b"Mar  5 06:25 web1 sshd[1]: x",
            b"Foo  5 06:25:01 web1 sshd[1]: x",
            b"2024-05-01T12:34:56 web1 sshd[1]: x", // RFC 3339 without offset
            b"2024-05-01T12:34:56+02 web1 sshd[1]: x",
            b"<34>Mar  5 06:25:01 web1 sshd[1]: x",
            b" Mar  5 06:25:01 web1 sshd[1]: x",
        ] {
            assert_eq!(header(l), None, "{:?}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn truncated_at_every_length() {
        let lines = [
            line("Mar  5 06:25:01 web1 sshd[1234]: ", FAILED),
            line("Mar 05 06:25:01.123456 web1 sshd-session[1234]: ", FAILED),
            line("2024-05-01T12:34:56.123456+02:00 web1 sshd[1234]: ", FAILED),
            line("2024-05-01T12:34:56+0200 web1 sshd[1234]: ", FAILED),
            b"Mar  5 06:25:01 web1 CRON: x".to_vec(),
        ];
        let mut c = clock();
        for l in &lines {
            let mut parsed = 0;
            for n in 0..=l.len() {
                if let Some(h) = parse_header(&l[..n], &mut c) {
                    assert_well_formed(&l[..n], &h);
                    parsed += 1;
                }
            }
            // Once the ": " is there, every longer prefix parses; before it,
            // none does.
            let start = l.windows(2).position(|w| w == b": ").unwrap() + 2;
            assert_eq!(
                parsed,
                l.len() - start + 1,
                "{:?}",
                String::from_utf8_lossy(l)
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(l in prop::collection::vec(any::<u8>(), 0..96)) {
            if let Some(h) = parse_header(&l, &mut clock()) {
                assert_well_formed(&l, &h);
            }
        }

        #[test]
        fn near_misses_never_panic(
            l in "(Mar  5 06:25:01|Mar 05 06:25:01\\.[0-9]{0,3}|2024-05-01T12:34:56(\\.[0-9]{1,3})?(Z|\\+0200|\\+02:00))? ?[a-z0-9. ]{0,6} ?[a-z/@_.-]{0,5}(\\[[0-9a-z]{0,3}\\]?)?:? ?.{0,5}",
        ) {
            if let Some(h) = parse_header(l.as_bytes(), &mut clock()) {
                assert_well_formed(l.as_bytes(), &h);
            }
        }

        #[test]
        fn generated_headers_round_trip(
            host in "[a-z0-9][a-z0-9.-]{0,20}",
            program in "[A-Za-z0-9._/@-]{1,64}",
            pid in prop::option::of("[0-9]{1,10}"),
            message in "[ -~]{0,40}",
        ) {
            let pid_part = pid.as_ref().map(|p| format!("[{p}]")).unwrap_or_default();
            let l = format!("Mar  5 06:25:01 {host} {program}{pid_part}: {message}");
            let h = parse_header(l.as_bytes(), &mut clock()).unwrap();
            prop_assert_eq!(h.host, host.as_bytes());
            prop_assert_eq!(h.program, program.as_bytes());
            prop_assert_eq!(h.pid, pid.as_ref().map(|p| p.as_bytes()));
            prop_assert_eq!(h.message, message.as_bytes());
        }
    }
}
