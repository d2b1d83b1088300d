//! Behind a reverse proxy (issue 7, item 4). nginx runs behind a load
//! balancer at 10.0.0.5 and logs in its default `main` format, so every
//! line's first field is the balancer and the last quoted field is the
//! `X-Forwarded-For` list the balancer completed. The operator trusts the
//! balancer; authwatch then blocks the attacker the balancer named, never
//! the balancer (whose own health checks fail far beyond the threshold),
//! never a victim the attacker wrote into the list, and not the victim a
//! client that reaches nginx directly forges a list for.
//!
//! As in the first story, "nothing happened" is observed after a sentinel
//! address, driven over the threshold last in the same file, is blocked.

use redis::AsyncCommands;

use crate::common::daemon::TestHost;
use crate::common::{RedisServer, DEADLINE};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Now, as nginx's `$time_local` writes it in UTC: `03/Dec/2026:13:55:36 +0000`.
fn time_local_now() -> String {
    // Timestamp prints RFC 3339: 2026-12-03T13:55:36.123Z.
    let t = authwatch::time::Timestamp::now().to_string();
    let month: usize = t[5..7].parse().expect("month");
    format!(
        "{}/{}/{}:{} +0000",
        &t[8..10],
        MONTHS[month - 1],
        &t[0..4],
        &t[11..19]
    )
}

/// `n` 401s that `peer` forwarded, with the `X-Forwarded-For` field `xff`,
/// in nginx's `main` format.
fn main_401s(peer: &str, xff: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{peer} - - [{}] \"POST /api/login?try={i} HTTP/1.1\" 401 45 \"-\" \"python-requests/2.31.0\" \"{xff}\"",
                time_local_now()
            )
        })
        .collect()
}

async fn blocked(conn: &mut redis::aio::MultiplexedConnection, ip: &str) -> bool {
    let v: Option<String> = conn
        .get(format!("authwatch:block:{ip}"))
        .await
        .expect("GET");
    v.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_balancer_the_forwarded_attacker_is_blocked_and_the_balancer_never() {
    let redis = RedisServer::start();
    let host = TestHost::with_top_level(
        &redis.url(),
        "trusted_proxies = [\"10.0.0.5\"]",
        "\n[[source]]\nname = \"nginx\"\npath = \"log/access.log\"\n",
    );
    host.append("access.log", &[]);
    let mut conn = redis.conn().await;
    let daemon = host.start_daemon();

    // The balancer's own health checks: no header, 120 times a 401.
    host.append("access.log", &main_401s("10.0.0.5", "-", 120));
    // The attacker, through the balancer, writing a victim into the list.
    host.append(
        "access.log",
        &main_401s("10.0.0.5", "10.66.66.66, 203.0.113.7", 50),
    );
    // Another client hides behind an unparsable right-most entry: nobody.
    host.append(
        "access.log",
        &main_401s("10.0.0.5", "10.66.66.67, unknown", 60),
    );
    // A client that talks to nginx directly forges the whole list.
    host.append("access.log", &main_401s("198.51.100.20", "10.66.66.68", 50));
    // Sentinel, through the balancer.
    host.append("access.log", &main_401s("10.0.0.5", "198.51.100.2", 50));
    let until = std::time::Instant::now() + DEADLINE;
    while !blocked(&mut conn, "198.51.100.2").await {
        assert!(
            std::time::Instant::now() < until,
            "the sentinel was not blocked:\n{}",
            daemon.logs().join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    assert!(blocked(&mut conn, "203.0.113.7").await, "the attacker");
    assert!(
        blocked(&mut conn, "198.51.100.20").await,
        "the direct client"
    );
    for never in [
        "10.0.0.5",
        "10.66.66.66",
        "10.66.66.67",
        "10.66.66.68",
        "unknown",
    ] {
        assert!(!blocked(&mut conn, never).await, "{never} was blocked");
    }
    let keys: Vec<String> = conn.keys("authwatch:block:*").await.expect("KEYS");
    assert_eq!(keys.len(), 3, "{keys:?}");
    drop(daemon);
}
