//! Restarts, clean and brutal. An attacker gains nothing from a restart:
//! failures before it still count, none counts twice, a block decided just
//! before a SIGKILL is written exactly once and alerted exactly once, and
//! lines written while the daemon was down are read when it comes back.
//!
//! As in `daemon.rs`, "nothing happened yet" is observed by driving a
//! sentinel address over the threshold after the lines under test.

use crate::common::daemon::{sshd_failures, sshd_line_at, TestHost};
use crate::common::{is_blocked, wait_for_block, Receiver, RedisServer, DEADLINE};

/// Alerts received for `ip`, counted once per event id: delivery is at
/// least once, and an alert sent again after a SIGKILL that landed between
/// its delivery and its being recorded carries the same id.
fn alerts_for(receiver: &Receiver, ip: &str) -> usize {
    let ids: std::collections::HashSet<String> = receiver
        .requests()
        .iter()
        .filter(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).is_ok_and(|v| v["ip"] == ip)
        })
        .map(|r| {
            r.header("x-authwatch-event-id")
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    ids.len()
}

fn host(redis: &RedisServer, receiver: &Receiver) -> TestHost {
    let host = TestHost::new(
        &redis.url(),
        &format!(
            "[[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n\n[[alert]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            receiver.url("/hook")
        ),
    );
    host.append("auth.log", &[]);
    host
}

/// 49 failures, a restart (clean or SIGKILL), then one more: blocked; and
/// no failure is counted twice (48 + restart + 1 does not block).
async fn failures_survive_a_restart(kill: bool) {
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    let host = host(&redis, &receiver);
    let mut conn = redis.conn().await;

    let mut daemon = host.start_daemon();
    host.append("auth.log", &sshd_failures("203.0.113.10", 48, 1000));
    host.append("auth.log", &sshd_failures("203.0.113.11", 49, 2000));
    host.append("auth.log", &sshd_failures("198.51.100.1", 50, 3000));
    wait_for_block(&mut conn, "198.51.100.1").await;
    if kill {
        daemon.kill9();
    } else {
        assert!(daemon.stop().success());
    }

    let _daemon = host.start_daemon();
    host.append("auth.log", &sshd_failures("203.0.113.10", 1, 1048));
    host.append("auth.log", &sshd_failures("203.0.113.11", 1, 2049));
    host.append("auth.log", &sshd_failures("198.51.100.2", 50, 4000));
    wait_for_block(&mut conn, "198.51.100.2").await;

    assert!(
        is_blocked(&mut conn, "203.0.113.11").await,
        "49 before the restart + 1 after must block"
    );
    assert!(
        !is_blocked(&mut conn, "203.0.113.10").await,
        "48 + 1 must not block: a line was counted twice"
    );
    let alerts = receiver.wait_for_requests(3, DEADLINE).await;
    assert_eq!(alerts_for(&receiver, "198.51.100.1"), 1, "{alerts:?}");
    assert_eq!(alerts_for(&receiver, "203.0.113.11"), 1, "{alerts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_survive_a_clean_restart_and_none_counts_twice() {
    failures_survive_a_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_survive_sigkill_and_none_counts_twice() {
    failures_survive_a_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_decided_just_before_sigkill_is_written_and_alerted_once() {
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    let host = host(&redis, &receiver);
    let mut conn = redis.conn().await;
    let mut events = redis.subscribe("authwatch:events").await;

    let mut daemon = host.start_daemon();
    host.append("auth.log", &sshd_failures("203.0.113.20", 50, 1000));
    wait_for_block(&mut conn, "203.0.113.20").await;
    daemon.kill9();

    // The restart reads the attack again to rebuild its window.
    let _daemon = host.start_daemon();
    host.append("auth.log", &sshd_failures("198.51.100.3", 50, 5000));
    wait_for_block(&mut conn, "198.51.100.3").await;
    receiver.wait_for_requests(2, DEADLINE).await;

    assert_eq!(
        alerts_for(&receiver, "203.0.113.20"),
        1,
        "one alert, not one per start"
    );
    let first = events.next_message(DEADLINE).await;
    let second = events.next_message(DEADLINE).await;
    assert!(String::from_utf8_lossy(&first).contains("203.0.113.20"));
    assert!(
        String::from_utf8_lossy(&second).contains("198.51.100.3"),
        "no second event for the first block"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_written_while_down_are_read_and_past_blocks_are_not_written() {
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    let host = host(&redis, &receiver);
    let mut conn = redis.conn().await;

    let mut daemon = host.start_daemon();
    assert!(daemon.stop().success());

    // While the daemon is down: an attack now, and one two hours ago whose
    // 15-minute block has long expired.
    let two_hours_ago =
        authwatch::time::Timestamp::now().saturating_sub(std::time::Duration::from_secs(7200));
    let old: Vec<String> = (0..50)
        .map(|i| {
            sshd_line_at(
                two_hours_ago,
                7000 + i,
                &format!(
                    "Failed password for root from 203.0.113.31 port {} ssh2",
                    40000 + i
                ),
            )
        })
        .collect();
    host.append("auth.log", &old);
    host.append("auth.log", &sshd_failures("203.0.113.30", 50, 1000));

    let daemon = host.start_daemon();
    wait_for_block(&mut conn, "203.0.113.30").await;
    assert!(
        !is_blocked(&mut conn, "203.0.113.31").await,
        "a block that would already have expired is not written"
    );
    daemon.wait_for_log("already expired", DEADLINE);
}

/// Down through two rotations (the daily logrotate ran twice): the rest of
/// the file we were reading is now `auth.log.2`, the whole of the day in
/// between is `auth.log.1`, and today's is `auth.log`. Every line of the
/// three counts, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_of_a_file_created_and_rotated_while_down_are_read_once() {
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    let host = host(&redis, &receiver);
    let mut conn = redis.conn().await;

    let mut daemon = host.start_daemon();
    host.append("auth.log", &sshd_failures("198.51.100.40", 50, 100));
    wait_for_block(&mut conn, "198.51.100.40").await;
    assert!(daemon.stop().success());

    let rotate = |from: &str, to: &str| {
        std::fs::rename(host.log(from), host.log(to)).expect("rotate");
    };
    // 20 + 20 + 10 failures of one address block it; 16 + 17 + 16 of another
    // do not, unless a file were read twice.
    host.append("auth.log", &sshd_failures("203.0.113.41", 16, 1000));
    host.append("auth.log", &sshd_failures("203.0.113.40", 20, 2000));
    rotate("auth.log", "auth.log.1");
    host.append("auth.log", &sshd_failures("203.0.113.41", 17, 3000));
    host.append("auth.log", &sshd_failures("203.0.113.40", 20, 4000));
    rotate("auth.log.1", "auth.log.2");
    rotate("auth.log", "auth.log.1");
    host.append("auth.log", &sshd_failures("203.0.113.41", 16, 5000));
    host.append("auth.log", &sshd_failures("203.0.113.40", 10, 6000));

    let daemon = host.start_daemon();
    wait_for_block(&mut conn, "203.0.113.40").await;
    assert!(
        !is_blocked(&mut conn, "203.0.113.41").await,
        "49 failures across the three files must not block: a file was read twice"
    );
    daemon.wait_for_log("rotated while stopped", DEADLINE);
}
