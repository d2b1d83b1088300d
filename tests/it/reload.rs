//! `systemctl reload` (SIGHUP): a tuned threshold applies to the counts
//! already there, and a broken rule file is refused with the running rules
//! kept in place.

use crate::common::daemon::{sshd_failures, TestHost};
use crate::common::{is_blocked, wait_for_block, RedisServer, DEADLINE};

fn rule(threshold: u32) -> String {
    format!(
        r#"
[[rule]]
id = "tuned"
format = "syslog"
programs = ["sshd"]
threshold = {threshold}
window = "60s"
  [[rule.pattern]]
  regex = '^Failed password for .* from (?P<ip>\S+) port \d+ ssh2$'
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_counts_under_a_new_threshold_and_refuses_a_broken_rule() {
    let redis = RedisServer::start();
    let host = TestHost::with_rules(
        &redis.url(),
        &rule(10),
        "[[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n",
    );
    host.append("auth.log", &[]);
    let mut conn = redis.conn().await;
    let daemon = host.start_daemon();

    host.append("auth.log", &sshd_failures("203.0.113.60", 6, 100));
    host.append("auth.log", &sshd_failures("198.51.100.60", 10, 200));
    wait_for_block(&mut conn, "198.51.100.60").await;
    assert!(!is_blocked(&mut conn, "203.0.113.60").await);

    // Tune the threshold down to 8 and reload: the 6 failures still count.
    std::fs::write(host.dir.path().join("rules/test.toml"), rule(8)).expect("rewrite rule");
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log_count(" ready", 2, DEADLINE);
    assert_eq!(
        host.status_json().await["last_reload"]["outcome"],
        "applied"
    );
    host.append("auth.log", &sshd_failures("203.0.113.60", 2, 106));
    wait_for_block(&mut conn, "203.0.113.60").await;

    // A broken rule file: refused, and the running rules go on blocking.
    std::fs::write(
        host.dir.path().join("rules/broken.toml"),
        "[[rule]]\nid = \"broken\"\nthreshold = 0\n",
    )
    .expect("write");
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log("reload refused", DEADLINE);
    // The operator sees why in `authwatch status`, not only in the journal.
    let status = host.status_json().await;
    assert_eq!(status["last_reload"]["outcome"], "refused", "{status}");
    let error = status["last_reload"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("broken.toml") && error.contains("threshold"),
        "the refusal names the file and the field: {error}"
    );
    host.append("auth.log", &sshd_failures("203.0.113.61", 8, 300));
    wait_for_block(&mut conn, "203.0.113.61").await;
    assert_eq!(
        daemon
            .logs()
            .iter()
            .filter(|l| l.contains(" ready"))
            .count(),
        2,
        "no third start"
    );
}
