//! The window update: [`Detector::observe`] for the shapes of traffic the
//! corpora hold.
//!
//! `cargo bench --bench detector`. The policies are the shipped rules'
//! (50 failures in 60 s), so the numbers are those of a real replay.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use authwatch::detector::Detector;
use authwatch::rules::{Hit, RuleIdx, RuleSet, Tally};
use authwatch::time::Timestamp;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn detector() -> (Detector, RuleIdx) {
    let set = RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .unwrap_or_else(|e| panic!("{e}"));
    let sshd = set
        .rules()
        .iter()
        .position(|r| &*r.id == "sshd")
        .expect("the shipped sshd rule");
    (Detector::new(set.policies()), RuleIdx(sshd as u16))
}

fn hit(rule: RuleIdx, ip: IpAddr, session: Option<u64>, tally: Tally) -> Hit {
    Hit {
        rule,
        ip,
        time: None,
        weight: 1,
        session,
        tally,
    }
}

/// A spread of addresses, a fifth of them IPv6, as in the corpora.
fn address(i: u32) -> IpAddr {
    if i.is_multiple_of(5) {
        IpAddr::V6(Ipv6Addr::new(
            0x2a01,
            0x4f8,
            (i >> 16) as u16,
            i as u16,
            0,
            0,
            0,
            7,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(
            0x0b00_0000 + i.wrapping_mul(2_654_435_761) % 0x0f00_0000,
        ))
    }
}

fn observe(c: &mut Criterion) {
    const START: i64 = 1_772_690_400_000;
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(1));

    // One attacker, one attempt every 1.3 s: the ring stays near full and
    // every hit drops the oldest event (no block ever fires).
    let (mut d, rule) = detector();
    let h = hit(rule, address(1), None, Tally::Each);
    let mut t = START;
    g.bench_function("one-slow-attacker", |b| {
        b.iter(|| {
            t += 1_300;
            black_box(d.observe(&h, Timestamp::from_millis(t)));
        })
    });

    // A fast attacker: blocks every 50 hits, then ignores the rest of the
    // block, then counts afresh.
    let (mut d, rule) = detector();
    let h = hit(rule, address(2), None, Tally::Each);
    let mut t = START;
    g.bench_function("one-fast-attacker", |b| {
        b.iter(|| {
            t += 200;
            black_box(d.observe(&h, Timestamp::from_millis(t)));
        })
    });

    // A scan: each hit a new address, 100,000 keys live (a new detector per
    // batch, so the table size is the same for every sample).
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("scan-100k-new-keys", |b| {
        b.iter_batched(
            || detector().0,
            |mut d| {
                for i in 0..100_000u32 {
                    let h = hit(rule, address(i), None, Tally::Each);
                    black_box(d.observe(&h, Timestamp::from_millis(START + i64::from(i))));
                }
                d
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(1));

    // sshd's sessions: `Invalid user` (announce) then `Failed … invalid
    // user` (each) on the same connection, connections 3 s apart.
    let (mut d, rule) = detector();
    let mut t = START;
    let mut pid = 0u64;
    g.bench_function("sessions-announce-then-each", |b| {
        b.iter(|| {
            pid += 1;
            t += 3_000;
            let ip = address((pid % 1000) as u32);
            let a = hit(rule, ip, Some(pid), Tally::Announce);
            let e = hit(rule, ip, Some(pid), Tally::Each);
            black_box(d.observe(&a, Timestamp::from_millis(t)));
            black_box(d.observe(&e, Timestamp::from_millis(t + 500)));
        })
    });
    g.finish();

    // The sweep the engine runs once a second of event time, with 100,000
    // keys and as many sessions (the cap keeps 65,536) whose events are all
    // still inside the window: the cost of a sweep that drops nothing.
    let mut g = c.benchmark_group("sweep");
    let populated = || {
        let (mut d, rule) = detector();
        for i in 0..100_000u32 {
            let h = hit(rule, address(i), Some(u64::from(i)), Tally::Each);
            black_box(d.observe(&h, Timestamp::from_millis(START + i64::from(i) / 10)));
        }
        d
    };
    g.bench_function("1s-of-event-time-100k-keys", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let mut d = populated();
                // 40 sweeps a second apart stay inside every key's window.
                for k in 0..40.min(iters - done) {
                    let now = Timestamp::from_millis(START + 10_000 + k as i64 * 1_000);
                    let t0 = Instant::now();
                    d.sweep(now);
                    total += t0.elapsed();
                    done += 1;
                }
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = observe
}
criterion_main!(benches);
