//! Sinks against real dependencies: the Redis blocklist contract on a real
//! `redis-server`. Alerts, delivered to a real HTTP receiver, are in
//! `alerts.rs`.

use std::time::Duration;

use authwatch::sink::alert::webhook_body;
use authwatch::sink::blocklist::{Blocklist, BlocklistError, WriteOutcome};
use authwatch::sink::BlockRecord;
use authwatch::time::Timestamp;
use redis::AsyncCommands;

use crate::common::{eventually, RedisServer, DEADLINE};

const PREFIX: &str = "awtest:";

fn record(ip: &str, now: Timestamp, ttl: Duration) -> BlockRecord {
    BlockRecord {
        ip: ip.to_owned(),
        rule: "sshd-password".to_owned(),
        count: 52,
        window_secs: 60,
        first_seen: now.saturating_sub(Duration::from_secs(59)),
        last_seen: now.saturating_sub(Duration::from_secs(1)),
        blocked_at: now,
        expires_at: now.saturating_add(ttl),
        host: "bastion-1".to_owned(),
        reason: "52 failures of rule sshd-password in 60s".to_owned(),
        block_for_secs: ttl.as_secs(),
        offense: 0,
        shadow: false,
    }
}

/// The index score the contract promises: the expiry in Unix seconds,
/// rounded up.
fn expiry_score(rec: &BlockRecord) -> i64 {
    (rec.expires_at.as_millis() + 999).div_euclid(1000)
}

async fn blocklist(server: &RedisServer) -> Blocklist {
    Blocklist::connect(&server.url(), PREFIX)
        .await
        .expect("connect to the test redis-server")
}

// ---------------------------------------------------------------- blocklist

#[tokio::test]
async fn new_block_is_written_indexed_and_announced() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut events = server.subscribe(&bl.events_channel()).await;
    let mut conn = server.conn().await;
    let now = Timestamp::now();
    let rec = record("203.0.113.7", now, Duration::from_secs(3600));

    assert_eq!(bl.write(&rec, now).await.unwrap(), WriteOutcome::New);

    let key = bl.block_key("203.0.113.7");
    assert_eq!(key, "awtest:block:203.0.113.7");
    let stored: String = conn.get(&key).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored, serde_json::to_value(&rec).unwrap());
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 3598 && ttl <= 3600, "TTL {ttl}");

    assert_eq!(bl.index_key(), "awtest:blocks");
    let score: Option<i64> = conn.zscore(bl.index_key(), "203.0.113.7").await.unwrap();
    assert_eq!(score, Some(expiry_score(&rec)));

    assert_eq!(bl.events_channel(), "awtest:events");
    let event = events.next_message(DEADLINE).await;
    assert_eq!(event, webhook_body(&rec), "the event is the record's JSON");
}

#[tokio::test]
async fn longer_block_extends_without_a_second_event() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut events = server.subscribe(&bl.events_channel()).await;
    let mut conn = server.conn().await;
    let now = Timestamp::now();
    let short = record("198.51.100.4", now, Duration::from_secs(600));
    let long = record("198.51.100.4", now, Duration::from_secs(7200));

    assert_eq!(bl.write(&short, now).await.unwrap(), WriteOutcome::New);
    assert_eq!(events.next_message(DEADLINE).await, webhook_body(&short));
    assert_eq!(bl.write(&long, now).await.unwrap(), WriteOutcome::Extended);

    let key = bl.block_key("198.51.100.4");
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 7198 && ttl <= 7200, "TTL {ttl}");
    let stored: String = conn.get(&key).await.unwrap();
    assert_eq!(stored.as_bytes(), webhook_body(&long).as_slice());
    let score: Option<i64> = conn.zscore(bl.index_key(), "198.51.100.4").await.unwrap();
    assert_eq!(score, Some(expiry_score(&long)));

    // Messages on a channel arrive in order: if the extension had been
    // announced, its event would come before this marker.
    let _: i64 = conn.publish(bl.events_channel(), "marker").await.unwrap();
    assert_eq!(events.next_message(DEADLINE).await, b"marker");
}

#[tokio::test]
async fn shorter_block_never_shortens_the_existing_one() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut conn = server.conn().await;
    let now = Timestamp::now();
    let long = record("2001:db8::1", now, Duration::from_secs(3600));
    let short = record("2001:db8::1", now, Duration::from_secs(60));

    assert_eq!(bl.write(&long, now).await.unwrap(), WriteOutcome::New);
    assert_eq!(
        bl.write(&short, now).await.unwrap(),
        WriteOutcome::Unchanged
    );
    // Neither does the same record again, nor one ending a moment later:
    // sub-second differences are clock and latency noise.
    assert_eq!(
        bl.write(&long, Timestamp::now()).await.unwrap(),
        WriteOutcome::Unchanged
    );
    let mut nudged = long.clone();
    nudged.expires_at = long.expires_at.saturating_add(Duration::from_millis(500));
    assert_eq!(
        bl.write(&nudged, now).await.unwrap(),
        WriteOutcome::Unchanged
    );

    let key = bl.block_key("2001:db8::1");
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 3598 && ttl <= 3600, "TTL {ttl}");
    let stored: String = conn.get(&key).await.unwrap();
    assert_eq!(stored.as_bytes(), webhook_body(&long).as_slice());
    let score: Option<i64> = conn.zscore(bl.index_key(), "2001:db8::1").await.unwrap();
    assert_eq!(score, Some(expiry_score(&long)));
}

#[tokio::test]
async fn expired_record_writes_nothing() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut conn = server.conn().await;
    let now = Timestamp::now();
    let mut past = record("192.0.2.1", now, Duration::ZERO);
    past.expires_at = now.saturating_sub(Duration::from_secs(1));
    let at_now = record("192.0.2.2", now, Duration::ZERO);

    assert_eq!(bl.write(&past, now).await.unwrap(), WriteOutcome::Expired);
    assert_eq!(bl.write(&at_now, now).await.unwrap(), WriteOutcome::Expired);

    let keys: Vec<String> = conn.keys("awtest:*").await.unwrap();
    assert!(keys.is_empty(), "written: {keys:?}");
}

#[tokio::test]
async fn list_get_and_remove() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut conn = server.conn().await;
    let now = Timestamp::now();
    let a = record("192.0.2.10", now, Duration::from_secs(300));
    let b = record("192.0.2.11", now, Duration::from_secs(600));
    let c = record("2001:db8:1:2::/64", now, Duration::from_secs(900));
    for rec in [&c, &a, &b] {
        assert_eq!(bl.write(rec, now).await.unwrap(), WriteOutcome::New);
    }

    let listed = bl.list(now).await.unwrap();
    let ips: Vec<&str> = listed.iter().map(|s| s.ip.as_str()).collect();
    assert_eq!(
        ips,
        ["192.0.2.10", "192.0.2.11", "2001:db8:1:2::/64"],
        "soonest expiry first"
    );
    for (stored, rec) in listed.iter().zip([&a, &b, &c]) {
        assert_eq!(stored.record, serde_json::to_value(rec).unwrap());
        let ttl = rec.ttl_secs(now) as i64;
        assert!(
            stored.ttl_secs > ttl - 2 && stored.ttl_secs <= ttl,
            "{stored:?}"
        );
    }

    let got = bl
        .get("192.0.2.11")
        .await
        .unwrap()
        .expect("a block for 192.0.2.11");
    assert_eq!(got.ip, "192.0.2.11");
    assert_eq!(got.record, serde_json::to_value(&b).unwrap());
    assert!(got.ttl_secs > 598 && got.ttl_secs <= 600, "{got:?}");
    assert_eq!(bl.get("192.0.2.99").await.unwrap(), None);

    assert!(bl.remove("192.0.2.11").await.unwrap());
    assert!(!bl.remove("192.0.2.11").await.unwrap(), "already lifted");
    assert_eq!(bl.get("192.0.2.11").await.unwrap(), None);
    let exists: bool = conn.exists(bl.block_key("192.0.2.11")).await.unwrap();
    assert!(!exists);
    let score: Option<i64> = conn.zscore(bl.index_key(), "192.0.2.11").await.unwrap();
    assert_eq!(score, None, "lifted blocks leave the index");
    let ips: Vec<String> = bl
        .list(now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.ip)
        .collect();
    assert_eq!(ips, ["192.0.2.10", "2001:db8:1:2::/64"]);

    // Blocks whose expiry has passed are not listed.
    let later = now.saturating_add(Duration::from_secs(600));
    let ips: Vec<String> = bl
        .list(later)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.ip)
        .collect();
    assert_eq!(ips, ["2001:db8:1:2::/64"]);
}

#[tokio::test]
async fn stale_index_members_are_pruned() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut conn = server.conn().await;
    let now = Timestamp::now();

    // A member whose expiry has passed (its key long gone): the next write
    // prunes it.
    let _: i64 = conn
        .zadd(bl.index_key(), "192.0.2.50", now.as_secs() - 10)
        .await
        .unwrap();
    let rec = record("192.0.2.51", now, Duration::from_secs(600));
    assert_eq!(bl.write(&rec, now).await.unwrap(), WriteOutcome::New);
    let score: Option<i64> = conn.zscore(bl.index_key(), "192.0.2.50").await.unwrap();
    assert_eq!(score, None, "expired member pruned on write");

    // A member still in the future whose key is gone (deleted by hand):
    // list skips it and prunes it.
    let gone = record("192.0.2.52", now, Duration::from_secs(600));
    assert_eq!(bl.write(&gone, now).await.unwrap(), WriteOutcome::New);
    let _: i64 = conn.del(bl.block_key("192.0.2.52")).await.unwrap();
    let ips: Vec<String> = bl
        .list(now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.ip)
        .collect();
    assert_eq!(ips, ["192.0.2.51"]);
    let score: Option<i64> = conn.zscore(bl.index_key(), "192.0.2.52").await.unwrap();
    assert_eq!(score, None, "member without a key pruned on list");
    let score: Option<i64> = conn.zscore(bl.index_key(), "192.0.2.51").await.unwrap();
    assert_eq!(score, Some(expiry_score(&rec)), "live member kept");
}

#[tokio::test]
async fn connect_fails_with_a_clear_error_and_no_password() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/");

    let err = Blocklist::connect(&url, PREFIX)
        .await
        .expect_err("nothing listens there");

    assert!(
        matches!(
            err,
            BlocklistError::Connect { .. } | BlocklistError::ConnectTimeout { .. }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn blocklist_reconnects_after_redis_restarts() {
    let mut server = RedisServer::start();
    let bl = blocklist(&server).await;
    let now = Timestamp::now();
    let rec = record("192.0.2.60", now, Duration::from_secs(600));
    assert_eq!(bl.write(&rec, now).await.unwrap(), WriteOutcome::New);

    server.stop();
    assert!(bl.write(&rec, now).await.is_err(), "Redis is down");

    server.restart(); // empty: nothing is saved
    let written = eventually(DEADLINE, || async {
        matches!(bl.write(&rec, now).await, Ok(WriteOutcome::New))
    })
    .await;
    assert!(
        written,
        "the blocklist did not reconnect to the restarted Redis"
    );
    assert!(bl.get("192.0.2.60").await.unwrap().is_some());
}
