//! Rule matching per line with the shipped rules: hits and misses, sshd
//! and JSON (and the access log for comparison).
//!
//! `cargo bench --bench rules`. Each benchmark matches one line against
//! every shipped rule, as `authwatch replay` does; throughput is in bytes
//! of the line. The lines are the shapes that dominate the generated
//! corpora (`examples/gen_corpus.rs`): most lines are misses, so the miss
//! numbers bound the throughput; hits add a regex or a JSON scan.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use authwatch::rules::RuleSet;
use authwatch::time::Timestamp;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Lines of the three corpora: (name, line).
const LINES: &[(&str, &str)] = &[
    (
        "sshd/hit/failed-password",
        "Mar  5 06:25:01 web1 sshd[41234]: Failed password for root from 203.0.113.7 port 52344 ssh2",
    ),
    (
        "sshd/hit/invalid-user-ipv6-rfc3339",
        "2026-03-05T07:25:01.123456+01:00 web1 sshd-session[41234]: Invalid user oracle from 2a01:4f8:dd44:2593::7398 port 40022",
    ),
    (
        "sshd/hit/closed-preauth",
        "Mar  5 06:25:01 web1 sshd-auth[41234]: Connection closed by authenticating user root 203.0.113.7 port 52344 [preauth]",
    ),
    (
        "sshd/miss/cron",
        "Mar  5 06:25:01 web1 CRON[41234]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    ),
    (
        // Shares its first words with the `[preauth]` pattern's literals.
        "sshd/miss/connection-closed",
        "Mar  5 06:25:01 web1 sshd[41234]: Connection closed by 198.51.100.23 port 40022 [preauth]",
    ),
    (
        "json/hit/pino",
        r#"{"level":40,"time":1772690701123,"pid":4242,"hostname":"api-1","req":{"id":7,"method":"GET","url":"/v1/me","remoteAddress":"::ffff:203.0.113.7","remotePort":51234},"err":{"type":"JsonWebTokenError","message":"invalid signature","stack":"JsonWebTokenError: invalid signature\n    at /app/node_modules/jsonwebtoken/verify.js:171:19"},"msg":"invalid signature"}"#,
    ),
    (
        "json/hit/zap",
        r#"{"level":"warn","ts":1772690701.123456,"caller":"auth/middleware.go:42","msg":"jwt rejected","error":"token signature is invalid: signature is invalid","remote_addr":"203.0.113.7:51234","method":"GET","path":"/api/v1/me","request_id":"1cebfafd-8fd1-48ee-ab15-38edb8e380ca"}"#,
    ),
    (
        "json/miss/request",
        r#"{"timestamp":"2026-03-05T06:25:01.222118Z","level":"INFO","fields":{"message":"finished processing request","status":200,"latency_ms":217,"client_ip":"60.115.0.64"},"target":"tower_http::trace::on_response","span":{"method":"POST","path":"/api/v1/me","request_id":"fb93181a-77f2-40bc-acae-b83ffe369803","name":"request"}}"#,
    ),
    (
        // Another auth failure: the prefilter passes nothing.
        "json/miss/expired",
        r#"{"event": "token rejected", "error": "Signature has expired", "client_ip": "203.0.113.7", "method": "GET", "path": "/api/v1/me", "request_id": "558390a6-63f4-442b-a1f1-931fcd0d51b8", "level": "warning", "timestamp": "2026-03-05T06:25:01.123456Z"}"#,
    ),
    (
        "access/hit/401",
        r#"203.0.113.7 - admin [05/Mar/2026:07:25:01 +0100] "GET /api/v1/me HTTP/1.1" 401 45 "-" "python-requests/2.31.0""#,
    ),
    (
        "access/miss/200",
        r#"198.51.100.23 - - [05/Mar/2026:07:25:01 +0100] "GET /static/app.8f2c1e.js HTTP/1.1" 200 27746 "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0""#,
    ),
];

fn match_line(c: &mut Criterion) {
    let set = RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .unwrap_or_else(|e| panic!("{e}"));
    let filter = set.filter_all();
    // The corpora's reference time: year-less syslog times land in 2026.
    let mut st = set.new_state(Timestamp::from_secs(1_772_730_000));
    let mut group = c.benchmark_group("match_line");
    for (name, line) in LINES {
        let want_hit = name.contains("/hit/");
        let mut hits = 0;
        set.match_line(&mut st, &filter, line.as_bytes(), &mut |_| hits += 1);
        assert_eq!(
            hits > 0,
            want_hit,
            "{name}: the line is not what its name says"
        );
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                set.match_line(&mut st, &filter, black_box(line.as_bytes()), &mut |h| {
                    black_box(h);
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the machine is shared, and the numbers compare shapes.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = match_line
}
criterion_main!(benches);
