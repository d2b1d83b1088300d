//! The operator's first story: authwatch runs next to sshd and an API,
//! with a real Redis and a real webhook receiver. An attacker fails 49
//! times (nothing happens), then once more (blocked, published, alerted);
//! a monitoring probe on loopback fails endlessly and is never blocked.
//!
//! "Nothing happened yet" is observed without sleeping: after the lines
//! under test, a *sentinel* address is driven over the threshold in the
//! same file. Lines of one file are processed in order, so once the
//! sentinel's block exists, every earlier line has been counted.

use redis::AsyncCommands;

use crate::common::daemon::{sshd_failures, sshd_line, TestHost};
use crate::common::{block_json, wait_for_block, Receiver, RedisServer, DEADLINE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sshd_failures_block_the_address_in_redis_and_alert_once() {
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    let host = TestHost::new(
        &redis.url(),
        &format!(
            "[[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n\n[[alert]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            receiver.url("/authwatch")
        ),
    );
    host.append(
        "auth.log",
        &[sshd_line(1, "Server listening on 0.0.0.0 port 22.")],
    );
    let mut events = redis.subscribe("authwatch:events").await;
    let mut conn = redis.conn().await;
    let daemon = host.start_daemon();

    // 49 failures: under the threshold.
    host.append("auth.log", &sshd_failures("203.0.113.7", 49, 1000));
    host.append("auth.log", &sshd_failures("198.51.100.1", 50, 2000));
    wait_for_block(&mut conn, "198.51.100.1").await;
    assert_eq!(
        block_json(&mut conn, "203.0.113.7").await,
        None,
        "49 failures must not block"
    );
    let sentinel_event = events.next_message(DEADLINE).await;
    assert!(String::from_utf8_lossy(&sentinel_event).contains("198.51.100.1"));

    // The 50th failure within the window blocks.
    host.append("auth.log", &sshd_failures("203.0.113.7", 1, 1049));
    let stored = wait_for_block(&mut conn, "203.0.113.7").await;

    let record: serde_json::Value = serde_json::from_str(&stored).expect("the block is JSON");
    assert_eq!(record["ip"], "203.0.113.7");
    assert_eq!(record["rule"], "sshd");
    assert_eq!(record["count"], 50);
    assert_eq!(record["window_secs"], 60);
    assert_eq!(record["host"], "test-host");
    for field in [
        "first_seen",
        "last_seen",
        "blocked_at",
        "expires_at",
        "reason",
    ] {
        assert!(record[field].is_string(), "{field} missing in {record}");
    }

    // The TTL is block_for (15 min) from the 50th failure.
    let ttl: i64 = conn.ttl("authwatch:block:203.0.113.7").await.expect("TTL");
    assert!((880..=900).contains(&ttl), "TTL {ttl}");
    let expires_at =
        authwatch::time::parse_rfc3339(record["expires_at"].as_str().unwrap_or("").as_bytes())
            .expect("expires_at");
    let score: Option<f64> = conn
        .zscore("authwatch:blocks", "203.0.113.7")
        .await
        .expect("ZSCORE");
    // The score is the expiry in whole seconds, rounded up like the TTL.
    let expires_secs = (expires_at.as_millis() + 999).div_euclid(1000);
    assert_eq!(
        score.map(|s| s as i64),
        Some(expires_secs),
        "index score is the expiry"
    );

    // Published once, with the same JSON.
    let event = events.next_message(DEADLINE).await;
    assert_eq!(String::from_utf8_lossy(&event), stored);

    // The webhook received exactly that JSON, once per block.
    let requests = receiver.wait_for_requests(2, DEADLINE).await;
    let ours: Vec<_> = requests
        .iter()
        .filter(|r| r.body == stored.as_bytes())
        .collect();
    assert_eq!(ours.len(), 1, "one alert for the block: {requests:?}");
    assert_eq!(ours[0].method, "POST");
    assert_eq!(ours[0].path, "/authwatch");
    assert_eq!(ours[0].header("content-type"), Some("application/json"));

    // The operator's view.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(["blocks", "list", "--json", "--config"])
        .arg(&host.config)
        .output()
        .expect("run authwatch blocks list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("blocks list --json is JSON");
    let ips: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|b| b["ip"].as_str())
        .collect();
    assert!(
        ips.contains(&"203.0.113.7") && ips.contains(&"198.51.100.1"),
        "{listed}"
    );
    let left = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["ip"] == "203.0.113.7")
        .map(|b| b["seconds_left"].as_i64());
    assert!(matches!(left, Some(Some(880..=900))), "{listed}");

    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_and_injected_addresses_are_never_blocked() {
    let redis = RedisServer::start();
    let host = TestHost::new(
        &redis.url(),
        "[[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n",
    );
    host.append("auth.log", &[]);
    let mut conn = redis.conn().await;
    let daemon = host.start_daemon();

    // A monitoring probe on loopback, failing far beyond the threshold.
    host.append("auth.log", &sshd_failures("127.0.0.1", 120, 100));
    host.append("auth.log", &sshd_failures("::1", 120, 300));
    // An attacker who puts a victim's address in the user name.
    let injected: Vec<String> = (0..60)
        .map(|i| {
            sshd_line(
                600 + i,
                &format!("Failed password for invalid user x from 10.9.9.9 port 22 ssh2 from 203.0.113.8 port {} ssh2", 40000 + i),
            )
        })
        .collect();
    host.append("auth.log", &injected);
    // Sentinel: once it is blocked, everything above has been counted.
    host.append("auth.log", &sshd_failures("198.51.100.2", 50, 900));
    wait_for_block(&mut conn, "198.51.100.2").await;

    assert_eq!(block_json(&mut conn, "127.0.0.1").await, None);
    assert_eq!(block_json(&mut conn, "::1").await, None);
    assert_eq!(
        block_json(&mut conn, "10.9.9.9").await,
        None,
        "the victim in the user name"
    );
    assert!(
        block_json(&mut conn, "203.0.113.8").await.is_some(),
        "the real client"
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_jwts_in_a_json_service_log_are_blocked() {
    let redis = RedisServer::start();
    let host = TestHost::new(
        &redis.url(),
        "[[source]]\nname = \"api\"\npath = \"log/api-*.log\"\n",
    );
    host.append("api-1.log", &[]);
    let mut conn = redis.conn().await;
    let mut daemon = host.start_daemon();

    // Lines the rule selects but cannot count are counted and skipped: cut
    // JSON, the address field twice; a time it cannot read counts the
    // failure at its read time, and says so.
    host.append(
        "api-1.log",
        &[
            r#"{"msg":"invalid signature","client_ip":"203.0.113.11""#.to_owned(),
            r#"{"msg":"invalid signature","client_ip":"203.0.113.11"}}"#.to_owned(),
            r#"{"msg":"invalid signature","client_ip":"203.0.113.11","client_ip":"10.0.0.1"}"#
                .to_owned(),
            r#"{"msg":"invalid signature","client_ip":"203.0.113.12","time":"soon"}"#.to_owned(),
        ],
    );
    let now = authwatch::time::Timestamp::now().as_millis();
    let lines: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"level":40,"time":{},"req":{{"method":"GET","url":"/v1/me","remoteAddress":"::ffff:203.0.113.9"}},"err":{{"type":"JsonWebTokenError","message":"invalid signature"}},"msg":"invalid signature"}}"#,
                now + i
            )
        })
        .collect();
    host.append("api-1.log", &lines);
    let stored = wait_for_block(&mut conn, "203.0.113.9").await;
    let record: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(record["rule"], "jwt-signature");
    assert_eq!(record["count"], 50);

    let status = host.status_json().await;
    assert_eq!(status["malformed_json"], 2, "{status}");
    assert_eq!(status["ambiguous_json"], 1, "{status}");
    assert_eq!(status["unreadable_times"], 1, "{status}");

    let status = daemon.stop();
    assert!(status.success(), "SIGTERM stops cleanly: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_rule_alerts_but_never_blocks() {
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    let rules = r#"
[[rule]]
id = "trial"
mode = "shadow"
format = "syslog"
programs = ["sshd"]
threshold = 3
window = "60s"
  [[rule.pattern]]
  regex = '^Failed password for .* from (?P<ip>\S+) port \d+ ssh2$'
"#;
    let host = TestHost::with_rules(
        &redis.url(),
        rules,
        &format!(
            "[[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n\n[[alert]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            receiver.url("/hook")
        ),
    );
    host.append("auth.log", &[]);
    let mut conn = redis.conn().await;
    let daemon = host.start_daemon();
    host.append("auth.log", &sshd_failures("203.0.113.40", 3, 100));

    let alerts = receiver.wait_for_requests(1, DEADLINE).await;
    let body: serde_json::Value = serde_json::from_slice(&alerts[0].body).expect("JSON alert");
    assert_eq!(body["ip"], "203.0.113.40");
    assert_eq!(body["shadow"], true, "{body}");
    assert_eq!(
        block_json(&mut conn, "203.0.113.40").await,
        None,
        "shadow mode writes no block"
    );
    daemon.wait_for_log("would block (shadow mode)", DEADLINE);
}
