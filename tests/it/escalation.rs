//! Repeat offenders, against a real `redis-server`: the offence history in
//! `{prefix}offenses:{ip}` chooses each block's duration from the rule's
//! `escalate` ladder, survives restarts (it lives in Redis) and is shared
//! by every host writing to the same Redis.

use std::time::Duration;

use authwatch::sink::blocklist::{Blocklist, WriteOutcome, Written, OFFENSE_HISTORY};
use authwatch::sink::BlockRecord;
use authwatch::time::Timestamp;
use redis::AsyncCommands;

use crate::common::{eventually, RedisServer, DEADLINE};

const PREFIX: &str = "awtest:";

const MIN: u64 = 60;
const HOUR: u64 = 3600;

/// `escalate = ["15m", "1h", "6h", "24h"]`
fn ladder() -> Vec<Duration> {
    [15 * MIN, HOUR, 6 * HOUR, 24 * HOUR]
        .map(Duration::from_secs)
        .to_vec()
}

/// A decision of rule `sshd` whose last failure was at `last_seen`, as the
/// daemon builds it (the rule's `block_for` is the first step).
fn decision(ip: &str, host: &str, last_seen: Timestamp) -> BlockRecord {
    BlockRecord {
        ip: ip.to_owned(),
        rule: "sshd".to_owned(),
        count: 50,
        window_secs: 60,
        first_seen: last_seen.saturating_sub(Duration::from_secs(59)),
        last_seen,
        blocked_at: Timestamp::now(),
        expires_at: last_seen.saturating_add(Duration::from_secs(15 * MIN)),
        host: host.to_owned(),
        reason: "50 failures of rule sshd within 1m".to_owned(),
        block_for_secs: 15 * MIN,
        offense: 0,
        shadow: false,
    }
}

async fn blocklist(server: &RedisServer) -> Blocklist {
    Blocklist::connect(&server.url(), PREFIX)
        .await
        .expect("connect to the test redis-server")
}

/// Checks that `written` is what Redis holds for its address: the JSON,
/// byte for byte, and a TTL that ends at its `expires_at`.
async fn assert_stored(
    server: &RedisServer,
    bl: &Blocklist,
    written: &Written,
    step: Duration,
    offense: u32,
) {
    let rec = &written.record;
    assert_eq!(rec.offense, offense, "{rec:?}");
    assert_eq!(rec.block_for_secs, step.as_secs(), "{rec:?}");
    assert_eq!(
        rec.expires_at,
        rec.last_seen.saturating_add(step),
        "{rec:?}"
    );

    let mut conn = server.conn().await;
    let key = bl.block_key(&rec.ip);
    let stored: String = conn.get(&key).await.unwrap();
    assert_eq!(stored, serde_json::to_string(rec).unwrap());
    let pttl: i64 = conn.pttl(&key).await.unwrap();
    let left = rec.expires_at.as_millis() - Timestamp::now().as_millis();
    assert!(
        // The TTL is counted from the writer's `now`: the key outlives
        // `expires_at` by the write's latency.
        pttl <= left + 1000 && pttl > left - 2000,
        "PTTL {pttl}, {left} ms left"
    );
    let score: Option<i64> = conn.zscore(bl.index_key(), &rec.ip).await.unwrap();
    assert_eq!(
        score,
        Some((rec.expires_at.as_millis() + 999).div_euclid(1000))
    );
}

#[tokio::test]
async fn each_offence_climbs_the_ladder_and_the_last_step_repeats() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut events = server.subscribe(&bl.events_channel()).await;
    let mut conn = server.conn().await;
    let ip = "203.0.113.7";
    let ladder = ladder();

    // Five offences, each after the previous block was lifted: 15m, 1h,
    // 6h, 24h, and 24h again.
    // Each a distinct decision: a distinct time of its last failure.
    let expected = [15 * MIN, HOUR, 6 * HOUR, 24 * HOUR, 24 * HOUR];
    let start = Timestamp::now().saturating_sub(Duration::from_secs(10));
    for (n, step) in expected.into_iter().enumerate() {
        let now = Timestamp::now();
        let rec = decision(
            ip,
            "web1",
            start.saturating_add(Duration::from_secs(n as u64)),
        );
        let written = bl.write_offense(&rec, &ladder, now).await.unwrap();
        assert_eq!(written.outcome, WriteOutcome::New, "offence {}", n + 1);
        assert_stored(
            &server,
            &bl,
            &written,
            Duration::from_secs(step),
            n as u32 + 1,
        )
        .await;
        assert_eq!(bl.offenses(ip).await.unwrap(), n as u32 + 1);

        // The event is the stored JSON, offence number included.
        let event = events.next_message(DEADLINE).await;
        assert_eq!(event, serde_json::to_vec(&written.record).unwrap());

        assert!(bl.remove(ip).await.unwrap(), "lift block {}", n + 1);
    }

    // The history is kept for 30 days from the latest offence.
    let key = bl.offenses_key(ip);
    assert_eq!(key, "awtest:offenses:203.0.113.7");
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    let history = OFFENSE_HISTORY.as_secs() as i64;
    assert!(ttl > history - 5 && ttl <= history, "TTL {ttl}");
    let count: String = conn.hget(&key, "count").await.unwrap();
    assert_eq!(count, "5");
}

#[tokio::test]
async fn after_a_block_expires_the_next_offence_gets_the_next_step() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let conn = server.conn().await;
    let ip = "198.51.100.4";
    let ladder = [Duration::from_secs(2), Duration::from_secs(4)];

    let now = Timestamp::now();
    let first = bl
        .write_offense(&decision(ip, "web1", now), &ladder, now)
        .await
        .unwrap();
    assert_eq!(first.outcome, WriteOutcome::New);
    assert_stored(&server, &bl, &first, ladder[0], 1).await;

    // Redis expires the block by itself.
    let key = bl.block_key(ip);
    let expired = eventually(DEADLINE, || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move { !conn.exists::<_, bool>(&key).await.unwrap() }
    })
    .await;
    assert!(expired, "the 2 s block did not expire");

    let now = Timestamp::now();
    let second = bl
        .write_offense(&decision(ip, "web1", now), &ladder, now)
        .await
        .unwrap();
    assert_eq!(second.outcome, WriteOutcome::New);
    assert_stored(&server, &bl, &second, ladder[1], 2).await;
}

#[tokio::test]
async fn two_hosts_share_one_history() {
    let server = RedisServer::start();
    let web1 = blocklist(&server).await;
    let web2 = blocklist(&server).await;
    let ip = "2001:db8::7";
    let ladder = ladder();

    let now = Timestamp::now();
    let a = web1
        .write_offense(&decision(ip, "web1", now), &ladder, now)
        .await
        .unwrap();
    assert_eq!(a.outcome, WriteOutcome::New);
    assert_stored(&server, &web1, &a, ladder[0], 1).await;

    // web2 sees the same attack while web1's block stands: the same
    // offence, not a second one; its block ends a little later, so it is
    // extended, at the first step.
    let later = now.saturating_add(Duration::from_secs(5));
    let b = web2
        .write_offense(&decision(ip, "web2", later), &ladder, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(b.outcome, WriteOutcome::Extended);
    assert_stored(&server, &web2, &b, ladder[0], 1).await;
    assert_eq!(b.record.host, "web2");
    assert_eq!(web1.offenses(ip).await.unwrap(), 1);

    // Once the block is over, the address comes back to web2: its second
    // offence, counted by web1, gets the second step.
    assert!(web2.remove(ip).await.unwrap());
    let now = Timestamp::now();
    let c = web2
        .write_offense(&decision(ip, "web2", now), &ladder, now)
        .await
        .unwrap();
    assert_eq!(c.outcome, WriteOutcome::New);
    assert_stored(&server, &web2, &c, ladder[1], 2).await;
    assert_eq!(web1.offenses(ip).await.unwrap(), 2);
}

#[tokio::test]
async fn a_decision_written_again_counts_one_offence() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut events = server.subscribe(&bl.events_channel()).await;
    let mut conn = server.conn().await;
    let ip = "192.0.2.10";
    let ladder = ladder();
    let now = Timestamp::now();
    let rec = decision(ip, "web1", now);

    let first = bl.write_offense(&rec, &ladder, now).await.unwrap();
    assert_eq!(first.outcome, WriteOutcome::New);
    assert_eq!(
        events.next_message(DEADLINE).await,
        serde_json::to_vec(&first.record).unwrap()
    );

    // A retry after a lost reply: nothing changes.
    let again = bl
        .write_offense(&rec, &ladder, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(again.outcome, WriteOutcome::Unchanged);
    assert_eq!(again.record, first.record);
    assert_eq!(bl.offenses(ip).await.unwrap(), 1);

    // The outbox replayed after a crash, the block lifted meanwhile: the
    // block is written again, as the same first offence.
    assert!(bl.remove(ip).await.unwrap());
    let replayed = bl
        .write_offense(&rec, &ladder, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(replayed.outcome, WriteOutcome::New);
    assert_stored(&server, &bl, &replayed, ladder[0], 1).await;
    assert_eq!(bl.offenses(ip).await.unwrap(), 1);
    let _ = events.next_message(DEADLINE).await;

    // Neither retry was announced a second time: the next message on the
    // channel is this marker.
    let _: i64 = conn.publish(bl.events_channel(), "marker").await.unwrap();
    let _ = bl
        .write_offense(&rec, &ladder, Timestamp::now())
        .await
        .unwrap();
    let _: i64 = conn.publish(bl.events_channel(), "marker 2").await.unwrap();
    assert_eq!(events.next_message(DEADLINE).await, b"marker");
    assert_eq!(events.next_message(DEADLINE).await, b"marker 2");

    // A new decision after the block is lifted is the second offence.
    assert!(bl.remove(ip).await.unwrap());
    let now = Timestamp::now();
    let next = bl
        .write_offense(
            &decision(ip, "web1", now.saturating_add(Duration::from_millis(1))),
            &ladder,
            now,
        )
        .await
        .unwrap();
    assert_stored(&server, &bl, &next, ladder[1], 2).await;
}

#[tokio::test]
async fn expired_decisions_and_blocks_by_hand_count_no_offence() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let mut conn = server.conn().await;
    let ip = "192.0.2.20";
    let ladder = ladder();

    // A decision for an attack over 15 minutes ago: its first step has
    // passed, so nothing is written and nothing counted.
    let now = Timestamp::now();
    let old = decision(
        ip,
        "web1",
        now.saturating_sub(Duration::from_secs(16 * MIN)),
    );
    let written = bl.write_offense(&old, &ladder, now).await.unwrap();
    assert_eq!(written.outcome, WriteOutcome::Expired);
    let keys: Vec<String> = conn.keys("awtest:*").await.unwrap();
    assert!(keys.is_empty(), "written: {keys:?}");

    // A block by hand (`write`) counts no offence, and while it stands a
    // detected decision counts none either.
    let mut manual = decision(ip, "cli", now);
    manual.rule = "manual".to_owned();
    manual.expires_at = now.saturating_add(Duration::from_secs(2 * HOUR));
    assert_eq!(bl.write(&manual, now).await.unwrap(), WriteOutcome::New);
    let during = bl
        .write_offense(&decision(ip, "web1", now), &ladder, now)
        .await
        .unwrap();
    assert_eq!(during.outcome, WriteOutcome::Unchanged);
    assert_eq!(bl.offenses(ip).await.unwrap(), 0);

    // Lifted: the next decision is the first offence.
    assert!(bl.remove(ip).await.unwrap());
    let now = Timestamp::now();
    let first = bl
        .write_offense(
            &decision(ip, "web1", now.saturating_add(Duration::from_millis(1))),
            &ladder,
            now,
        )
        .await
        .unwrap();
    assert_eq!(first.outcome, WriteOutcome::New);
    assert_stored(&server, &bl, &first, ladder[0], 1).await;
}

#[tokio::test]
async fn without_a_ladder_offences_are_counted_and_block_for_is_kept() {
    let server = RedisServer::start();
    let bl = blocklist(&server).await;
    let ip = "192.0.2.30";

    let start = Timestamp::now().saturating_sub(Duration::from_secs(10));
    for n in 1..=2 {
        let now = Timestamp::now();
        let rec = decision(ip, "web1", start.saturating_add(Duration::from_secs(n)));
        let written = bl.write_offense(&rec, &[], now).await.unwrap();
        assert_eq!(written.outcome, WriteOutcome::New);
        assert_stored(
            &server,
            &bl,
            &written,
            Duration::from_secs(15 * MIN),
            n as u32,
        )
        .await;
        assert_eq!(written.record.expires_at, rec.expires_at);
        assert!(bl.remove(ip).await.unwrap());
    }
}

/// The daemon passes its rules' ladders: a first offence gets the first
/// step, an address with two offences on record (from another host, say)
/// gets the third, and the alert carries what Redis holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_blocks_by_the_rule_s_ladder() {
    use crate::common::daemon::TestHost;
    use crate::common::Receiver;

    let server = RedisServer::start();
    let receiver = Receiver::start().await;
    let mut conn = server.conn().await;
    let rules = "[[rule]]\nid = \"fail\"\nthreshold = 3\nwindow = \"60s\"\nescalate = [\"15m\", \"1h\", \"6h\"]\n\n  [[rule.pattern]]\n  regex = '^fail (?P<ip>\\S+)$'\n";
    let host = TestHost::with_rules(
        &server.url(),
        rules,
        &format!(
            "[[source]]\nname = \"app\"\npath = \"log/app.log\"\n\n[[alert]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            receiver.url("/authwatch")
        ),
    );
    host.append("app.log", &["starting".to_owned()]);
    let _: () = conn
        .hset_multiple(
            "authwatch:offenses:198.51.100.9",
            &[("count", "2"), ("last", "fail|1")],
        )
        .await
        .unwrap();
    let _daemon = host.start_daemon();

    let fail = |ip: &str| vec![format!("fail {ip}"); 3];
    host.append("app.log", &fail("203.0.113.7"));
    host.append("app.log", &fail("198.51.100.9"));

    for (ip, offense, secs) in [("203.0.113.7", 1, 15 * MIN), ("198.51.100.9", 3, 6 * HOUR)] {
        let key = format!("authwatch:block:{ip}");
        let blocked = eventually(DEADLINE, || {
            let mut conn = conn.clone();
            let key = key.clone();
            async move { conn.exists::<_, bool>(&key).await.unwrap() }
        })
        .await;
        assert!(blocked, "{ip} not blocked");
        let stored: String = conn.get(&key).await.unwrap();
        let rec: BlockRecord = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            (rec.offense, rec.block_for_secs),
            (offense, secs),
            "{stored}"
        );
        assert_eq!(
            rec.expires_at,
            rec.last_seen.saturating_add(Duration::from_secs(secs))
        );
        let ttl: i64 = conn.ttl(&key).await.unwrap();
        assert!(ttl > secs as i64 - 10 && ttl <= secs as i64, "TTL {ttl}");
        let alerted = eventually(DEADLINE, || {
            let found = receiver
                .requests()
                .iter()
                .any(|r| r.body == stored.as_bytes());
            async move { found }
        })
        .await;
        assert!(alerted, "the alert is the stored JSON: {stored}");
    }
}
