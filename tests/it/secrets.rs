//! Secrets stay secret (issue 7, item 6). The operator gives authwatch a
//! webhook HMAC key (`[[alert]] secret_file`) and an API token (`[api]
//! token_file`); the daemon uses both — on a webhook that fails and is
//! retried, on API calls with a wrong token and with the right one — and
//! neither ever appears in what it prints, in `/v1/status` or `/metrics`,
//! in what it sends, or in the errors about those files.
//! (`tests/limits.rs` checks the same for the Redis password.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::common::daemon::{sshd_failures, Daemon, TestHost};
use crate::common::{Receiver, RedisServer, Reply, DEADLINE};

const HMAC_SECRET: &str = "whsec-7f3a9c1e-not-for-logs";
const API_TOKEN: &str = "apitok-52d8b6e0-not-for-logs";

fn write_with_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The TCP address from the daemon's "API listening" line
/// (`tcp=Some(127.0.0.1:PORT)`): it was asked for port 0.
fn tcp_address(daemon: &Daemon) -> String {
    daemon.wait_for_log("API listening", DEADLINE);
    daemon
        .logs()
        .iter()
        .filter(|l| l.contains("API listening"))
        .find_map(|l| {
            let rest = &l[l.find("tcp=Some(")? + "tcp=Some(".len()..];
            Some(rest[..rest.find(')')?].to_owned())
        })
        .unwrap_or_else(|| panic!("no TCP address logged:\n{}", daemon.logs().join("\n")))
}

/// Where `secret` shows in `text`, if it does, with some context.
fn leak(text: &str, secret: &str) -> Option<String> {
    let at = text.find(secret)?;
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(80)
        .map_or(0, |(i, _)| i);
    Some(text[start..(at + secret.len()).min(text.len())].to_owned())
}

fn assert_secret_free(what: &str, text: &str) {
    for secret in [HMAC_SECRET, API_TOKEN] {
        if let Some(context) = leak(text, secret) {
            panic!("a secret is in {what}: …{context}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_secret_and_the_api_token_never_reach_logs_status_or_errors() {
    let redis = RedisServer::start();
    let receiver = Receiver::start().await;
    // The receiver fails twice first: the daemon retries, and logs that.
    receiver.script([Reply::Status(500), Reply::Status(500)]);
    // The generated config ends inside its `[api]` table: the first lines
    // of `extra` are `[api]` keys.
    let host = TestHost::new(
        &redis.url(),
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_file = \"api.token\"\n\n\
             [[source]]\nname = \"sshd\"\npath = \"log/auth.log\"\n\n\
             [[alert]]\nkind = \"webhook\"\nurl = \"{}\"\nsecret_file = \"webhook.secret\"\n",
            receiver.url("/hook")
        ),
    );
    let dir = host.dir.path();
    write_with_mode(
        &dir.join("webhook.secret"),
        &format!("{HMAC_SECRET}\n"),
        0o600,
    );
    write_with_mode(&dir.join("api.token"), &format!("{API_TOKEN}\n"), 0o600);
    host.append("auth.log", &[]);
    // Debug: the most the daemon ever says, retries included.
    let mut daemon = Daemon::start_logging(&host.config, "debug");
    let base = format!("http://{}", tcp_address(&daemon));

    // An attack: a block, an alert, two failed deliveries and a third that
    // is accepted, each signed with the secret.
    host.append("auth.log", &sshd_failures("203.0.113.7", 50, 1000));
    let requests = receiver.wait_for_requests(3, DEADLINE).await;
    for r in &requests {
        assert!(r.header("x-authwatch-signature").is_some(), "signed: {r:?}");
        assert_secret_free("a webhook request", &format!("{r:?}"));
    }
    daemon.wait_for_log("alert failed; will retry", DEADLINE);

    // API calls over TCP: a wrong token (one that holds the real one, so
    // that echoing it would show), none, and the right one.
    authwatch::sink::alert::install_tls_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    let block = serde_json::json!({"ip": "198.51.100.77", "duration": "1h", "reason": "test"});
    let wrong = http
        .post(format!("{base}/v1/blocks"))
        .bearer_auth(format!("{API_TOKEN}x"))
        .json(&block)
        .send()
        .await
        .expect("POST with a wrong token");
    assert_eq!(wrong.status(), 401);
    assert_secret_free(
        "the answer to a wrong token",
        &wrong.text().await.unwrap_or_default(),
    );
    let none = http
        .post(format!("{base}/v1/blocks"))
        .json(&block)
        .send()
        .await
        .expect("POST without a token");
    assert_eq!(none.status(), 401);
    let right = http
        .post(format!("{base}/v1/blocks"))
        .bearer_auth(API_TOKEN)
        .json(&block)
        .send()
        .await
        .expect("POST with the token");
    assert!(right.status().is_success(), "{}", right.status());
    assert_secret_free(
        "the answer to the right token",
        &right.text().await.unwrap_or_default(),
    );
    daemon.wait_for_log("API call with a wrong token", DEADLINE);

    for route in ["/v1/status", "/metrics", "/v1/blocks"] {
        let resp = http
            .get(format!("{base}{route}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {route}: {e}"));
        assert!(resp.status().is_success(), "{route}: {}", resp.status());
        let body = resp.text().await.unwrap_or_default();
        assert!(!body.is_empty(), "{route} answered nothing");
        assert_secret_free(route, &body);
    }

    // A clean stop logs too; then everything it printed is checked.
    assert!(daemon.stop().success());
    let logs = daemon.logs().join("\n");
    assert!(
        logs.contains("alert sent") && logs.contains("block"),
        "the daemon's output shows none of the work, so proves nothing:\n{logs}"
    );
    assert_secret_free("the daemon's output", &logs);
    for entry in walk(&dir.join("state")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert_secret_free(
            &entry.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }

    // The errors about those files name the file, never its content: here
    // a token file that others may read, which is refused.
    write_with_mode(&dir.join("api.token"), &format!("{API_TOKEN}\n"), 0o644);
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(["rules", "check", "--config"])
        .arg(&host.config)
        .output()
        .expect("authwatch rules check");
    assert!(!check.status.success(), "a 0644 token file must be refused");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("api.token_file"), "{said}");
    assert_secret_free("the token file's error", &said);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
