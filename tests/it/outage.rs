//! Redis goes away in the middle of an attack. Detection does not stall:
//! the block is kept in the outbox and written, with its remaining TTL,
//! once Redis is back — even across a daemon restart during the outage.

use redis::AsyncCommands;

use crate::common::daemon::{sshd_failures, TestHost};
use crate::common::{RedisServer, DEADLINE};

async fn wait_for_key(redis: &RedisServer, ip: &str) -> i64 {
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(mut conn) = redis.client().get_multiplexed_async_connection().await {
            let ttl: i64 = conn
                .ttl(format!("authwatch:block:{ip}"))
                .await
                .unwrap_or(-2);
            if ttl > 0 {
                return ttl;
            }
        }
        assert!(
            std::time::Instant::now() < until,
            "{ip} was not blocked within {DEADLINE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn host(redis: &RedisServer) -> TestHost {
    let host = TestHost::new(
        &redis.url(),
        "[[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n",
    );
    host.append("auth.log", &[]);
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attack_during_a_redis_outage_is_blocked_when_redis_is_back() {
    let mut redis = RedisServer::start();
    let host = host(&redis);
    let daemon = host.start_daemon();

    redis.stop();
    host.append("auth.log", &sshd_failures("203.0.113.50", 50, 100));
    daemon.wait_for_log("Redis unreachable", DEADLINE);

    redis.restart();
    let ttl = wait_for_key(&redis, "203.0.113.50").await;
    assert!(
        (800..=900).contains(&ttl),
        "the remaining TTL of a 15-minute block: {ttl}"
    );
    daemon.wait_for_log("Redis reachable again", DEADLINE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restart_during_the_outage_still_writes_the_block() {
    let mut redis = RedisServer::start();
    let host = host(&redis);
    let mut daemon = host.start_daemon();

    redis.stop();
    host.append("auth.log", &sshd_failures("203.0.113.51", 50, 100));
    // The decision is durable (in the outbox) before the writer tries Redis.
    daemon.wait_for_log("Redis unreachable", DEADLINE);
    daemon.kill9();

    redis.restart();
    let _daemon = host.start_daemon();
    let ttl = wait_for_key(&redis, "203.0.113.51").await;
    assert!((800..=900).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_url_is_understood_and_its_failure_reported_without_the_password() {
    // Nothing listens on port 1: the point is that `rediss://` is a URL the
    // client accepts (TLS is compiled in) and that the error hides the
    // password.
    let e = authwatch::sink::blocklist::Blocklist::connect(
        "rediss://:s3cr3t-pass@127.0.0.1:1/0",
        "authwatch:",
    )
    .await
    .expect_err("nothing listens there")
    .to_string();
    assert!(!e.contains("s3cr3t-pass"), "{e}");
    assert!(
        e.starts_with("cannot connect to Redis"),
        "a connection failure, not a refused URL: {e}"
    );
}
