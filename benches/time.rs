//! Timestamp parsing: every format a rule reads, and the syslog header
//! that carries most of them.
//!
//! `cargo bench --bench time`.

use std::hint::black_box;
use std::time::Duration;

use authwatch::syslog::parse_header;
use authwatch::time::{
    parse_clf, parse_epoch, parse_log_time, parse_rfc3339, SyslogClock, Timestamp,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn clock() -> SyslogClock {
    SyslogClock::new(jiff::tz::TimeZone::UTC, Timestamp::from_secs(1_772_730_000))
}

fn timestamps(c: &mut Criterion) {
    let mut g = c.benchmark_group("time");
    g.bench_function("rfc3339/micros+offset", |b| {
        b.iter(|| parse_rfc3339(black_box(b"2026-03-05T07:25:01.123456+01:00")))
    });
    g.bench_function("rfc3339/nanos-utc", |b| {
        b.iter(|| parse_rfc3339(black_box(b"2026-03-05T06:25:01.123456789Z")))
    });
    g.bench_function("epoch/seconds.micros", |b| {
        b.iter(|| parse_epoch(black_box(b"1772690701.123456")))
    });
    g.bench_function("epoch/millis", |b| {
        b.iter(|| parse_epoch(black_box(b"1772690701123")))
    });
    let mut ck = clock();
    g.bench_function("syslog/classic", |b| {
        b.iter(|| ck.parse_prefix(black_box(b"Mar  5 06:25:01 web1")))
    });
    g.bench_function("syslog/precise", |b| {
        b.iter(|| ck.parse_prefix(black_box(b"Mar 05 06:25:01.123456 web1")))
    });
    let ck2 = clock();
    g.bench_function("clf/offset", |b| {
        b.iter(|| parse_clf(black_box(b"05/Mar/2026:07:25:01 +0100"), &ck2))
    });
    g.bench_function("log_time/clf", |b| {
        b.iter(|| parse_log_time(black_box(b"05/Mar/2026:07:25:01 +0100"), &mut ck))
    });
    g.finish();

    let mut g = c.benchmark_group("syslog_header");
    for (name, line) in [
        ("classic", &b"Mar  5 06:25:01 web1 sshd[41234]: Failed password for root from 203.0.113.7 port 52344 ssh2"[..]),
        ("rfc3339", b"2026-03-05T07:25:01.123456+01:00 web1 sshd-session[41234]: Failed password for root from 203.0.113.7 port 52344 ssh2"),
        ("short-iso", b"2026-03-05T07:25:01+0100 web1 sshd[41234]: Failed password for root from 203.0.113.7 port 52344 ssh2"),
    ] {
        assert!(parse_header(line, &mut ck).is_some(), "{name}");
        g.bench_function(name, |b| b.iter(|| parse_header(black_box(line), &mut ck)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = timestamps
}
criterion_main!(benches);
