//! The API and the operator's commands, against a real `redis-server`.
//!
//! The API is served by `authwatch::api::server` itself, in the test, over
//! a unix socket in a temporary directory and over TCP on `127.0.0.1:0`.
//! The engine is played by the test: it answers `Status` with the health
//! the test sets and records every `Forget`, so these stories do not
//! depend on the daemon's wiring.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use authwatch::api::client::{Client, Response};
use authwatch::api::server::ApiServer;
use authwatch::api::{ApiConfig, ApiContext, ApiError, ControlRequest};
use authwatch::config::Config;
use authwatch::sink::blocklist::Blocklist;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::common::{RedisServer, DEADLINE};

const PREFIX: &str = "awapi:";
const TOKEN: &str = "test-token-0123456789abcdef";

/// An API served in the test, with a fake engine behind it.
struct Api {
    dir: tempfile::TempDir,
    socket: PathBuf,
    tcp: Option<SocketAddr>,
    blocklist: Blocklist,
    /// What `Status` answers in `health`.
    health: Arc<Mutex<String>>,
    /// Every `Forget` subject the engine received.
    forgets: mpsc::UnboundedReceiver<String>,
    shutdown: CancellationToken,
    server: JoinHandle<Result<(), ApiError>>,
}

impl Api {
    /// Serves on a unix socket in a directory that does not exist yet, and,
    /// with `tcp`, on 127.0.0.1:0 with a token file.
    async fn start(redis: &RedisServer, tcp: bool) -> Api {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("run").join("api.sock");
        let token_file = dir.path().join("token");
        write_private(&token_file, &format!("{TOKEN}\n"));
        let config = ApiConfig {
            socket: socket.clone(),
            listen: tcp.then(|| "127.0.0.1:0".parse().unwrap()),
            allow_remote: false,
            token_file: Some(token_file),
        };
        let blocklist = Blocklist::connect(&redis.url(), PREFIX)
            .await
            .expect("connect to the test redis-server");

        let (control, mut requests) = mpsc::channel::<ControlRequest>(8);
        let health = Arc::new(Mutex::new("ok".to_owned()));
        let (forgot, forgets) = mpsc::unbounded_channel();
        let engine_health = health.clone();
        tokio::spawn(async move {
            while let Some(request) = requests.recv().await {
                match request {
                    ControlRequest::Status { reply } => {
                        let health = engine_health.lock().unwrap().clone();
                        let _ = reply
                            .send(json!({"version": "test", "health": health, "tracked_keys": 0}));
                    }
                    ControlRequest::Forget { subject, reply } => {
                        let _ = forgot.send(subject);
                        let _ = reply.send(());
                    }
                }
            }
        });

        let ctx = ApiContext {
            blocklist: blocklist.clone(),
            control,
            metrics: authwatch::api::install_metrics(),
            host: "api-test-host".to_owned(),
        };
        let shutdown = CancellationToken::new();
        let (server, tcp) = if tcp {
            // Bound first, to learn the port of 127.0.0.1:0.
            let bound = ApiServer::bind(&config, ctx).await.expect("bind the API");
            let tcp = bound.tcp_addr();
            (tokio::spawn(bound.run(shutdown.clone())), tcp)
        } else {
            // The daemon's entry point, as the daemon calls it.
            let stop = shutdown.clone();
            let server =
                tokio::spawn(async move { authwatch::api::serve(&config, ctx, stop).await });
            wait_for_socket(&socket).await;
            (server, None)
        };
        Api {
            dir,
            socket,
            tcp,
            blocklist,
            health,
            forgets,
            shutdown,
            server,
        }
    }

    async fn unix(&self, method: &str, target: &str, body: Option<Value>) -> Response {
        Client::new(&self.socket)
            .request(method, target, body.as_ref())
            .await
            .unwrap_or_else(|e| panic!("{method} {target} over the socket: {e}"))
    }

    fn http(&self) -> (reqwest::Client, String) {
        authwatch::sink::alert::install_tls_provider();
        let base = format!("http://{}", self.tcp.expect("served over TCP"));
        (reqwest::Client::new(), base)
    }

    /// The next subject the engine was asked to forget.
    async fn next_forget(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.forgets.recv())
            .await
            .expect("a Forget request in time")
            .expect("the fake engine runs")
    }

    async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.server)
            .await
            .expect("the API stops in time")
            .expect("the API task did not panic")
            .expect("the API stopped cleanly");
        self.dir
    }
}

/// Waits until the API answers on `socket`.
async fn wait_for_socket(socket: &Path) {
    let client = Client::new(socket);
    let answers = crate::common::eventually(DEADLINE, || {
        let client = client.clone();
        async move { client.request("GET", "/healthz", None).await.is_ok() }
    })
    .await;
    assert!(answers, "the API answers on {}", socket.display());
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

fn json_of(resp: &Response) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        )
    })
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

// ------------------------------------------------------------------ the API

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_adds_lists_shows_and_lifts_blocks_over_the_unix_socket() {
    let redis = RedisServer::start();
    let mut api = Api::start(&redis, false).await;

    let resp = api.unix("GET", "/v1/blocks", None).await;
    assert_eq!((resp.status, json_of(&resp)), (200, json!([])));

    let resp = api
        .unix(
            "POST",
            "/v1/blocks",
            Some(json!({"ip": "203.0.113.7", "duration": "1h", "reason": "credential stuffing"})),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let added = json_of(&resp);
    assert_eq!(added["outcome"], "new");
    assert_eq!(added["block"]["rule"], "manual");
    assert_eq!(added["block"]["host"], "api-test-host");

    let resp = api
        .unix(
            "POST",
            "/v1/blocks",
            Some(json!({"ip": "2001:DB8::/64", "duration": "15m"})),
        )
        .await;
    assert_eq!(resp.status, 201);

    // The list carries every field of the stored record, and the time left.
    let resp = api.unix("GET", "/v1/blocks", None).await;
    assert_eq!(resp.status, 200);
    let list = json_of(&resp);
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 2, "{list:?}");
    // Soonest expiry first.
    assert_eq!(list[0]["ip"], "2001:db8::/64");
    let b = &list[1];
    assert_eq!(b["ip"], "203.0.113.7");
    assert_eq!(b["reason"], "credential stuffing");
    for field in [
        "rule",
        "count",
        "window_secs",
        "first_seen",
        "last_seen",
        "blocked_at",
        "expires_at",
        "host",
    ] {
        assert!(b.get(field).is_some(), "{field} missing in {b}");
    }
    let left = b["seconds_left"].as_i64().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");

    // Show one, a CIDR URL-encoded, and one that is not blocked.
    let resp = api.unix("GET", "/v1/blocks/203.0.113.7", None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(json_of(&resp)["reason"], "credential stuffing");
    let resp = api.unix("GET", "/v1/blocks/2001:db8::%2F64", None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(json_of(&resp)["ip"], "2001:db8::/64");
    let resp = api.unix("GET", "/v1/blocks/198.51.100.1", None).await;
    assert_eq!(resp.status, 404);
    assert!(json_of(&resp)["error"]
        .as_str()
        .unwrap()
        .contains("no block"));

    // Lifting removes the key and makes the engine forget the windows.
    let resp = api.unix("DELETE", "/v1/blocks/203.0.113.7", None).await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(json_of(&resp)["forgotten"], true);
    assert_eq!(api.next_forget().await, "203.0.113.7");
    assert!(api.blocklist.get("203.0.113.7").await.unwrap().is_none());
    let resp = api.unix("GET", "/v1/blocks/203.0.113.7", None).await;
    assert_eq!(resp.status, 404);

    let resp = api.unix("DELETE", "/v1/blocks/2001:db8::%2F64", None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(api.next_forget().await, "2001:db8::/64");

    // Lifting what is not blocked is a 404, and still resets the count.
    let resp = api.unix("DELETE", "/v1/blocks/203.0.113.7", None).await;
    assert_eq!(resp.status, 404);
    assert_eq!(api.next_forget().await, "203.0.113.7");

    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_malformed_blocks_and_never_shortens_one() {
    let redis = RedisServer::start();
    let api = Api::start(&redis, false).await;

    for (body, what) in [
        (json!({"ip": "example.com", "duration": "1h"}), "host name"),
        (
            json!({"ip": "010.0.0.1", "duration": "1h"}),
            "leading zeros",
        ),
        (
            json!({"ip": "2001:db8::1/64", "duration": "1h"}),
            "host bits",
        ),
        (json!({"ip": "0.0.0.0/0", "duration": "1h"}), "everything"),
        (json!({"ip": "203.0.113.7", "duration": "60"}), "no unit"),
        (json!({"ip": "203.0.113.7", "duration": "0s"}), "zero"),
        (
            json!({"ip": "203.0.113.7", "duration": "1h", "reason": "a\nb"}),
            "newline",
        ),
    ] {
        let resp = api.unix("POST", "/v1/blocks", Some(body)).await;
        assert_eq!(
            resp.status,
            422,
            "{what}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert!(json_of(&resp)["error"].is_string(), "{what}");
    }
    let resp = api
        .unix(
            "POST",
            "/v1/blocks",
            Some(json!({"address": "203.0.113.7"})),
        )
        .await;
    assert!(resp.status == 400 || resp.status == 422, "{}", resp.status);
    let resp = api.unix("GET", "/v1/blocks/not-an-ip", None).await;
    assert_eq!(resp.status, 400);
    assert!(api
        .blocklist
        .list(authwatch::time::Timestamp::now())
        .await
        .unwrap()
        .is_empty());

    // A shorter manual block leaves a longer one alone.
    let add = |d: &str| json!({"ip": "198.51.100.9", "duration": d});
    assert_eq!(
        api.unix("POST", "/v1/blocks", Some(add("2h"))).await.status,
        201
    );
    let resp = api.unix("POST", "/v1/blocks", Some(add("5m"))).await;
    assert_eq!(resp.status, 200);
    let v = json_of(&resp);
    assert_eq!(v["outcome"], "unchanged");
    assert!(v["block"]["seconds_left"].as_i64().unwrap() > 7000, "{v}");

    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_socket_is_0660_in_a_0750_directory_and_removed_on_shutdown() {
    let redis = RedisServer::start();
    let api = Api::start(&redis, false).await;
    let socket = api.socket.clone();
    assert_eq!(mode(&socket), 0o660);
    assert_eq!(mode(socket.parent().unwrap()), 0o750);

    // A second server must not steal a live socket.
    let ctx = ApiContext {
        blocklist: api.blocklist.clone(),
        control: mpsc::channel(1).0,
        metrics: None,
        host: "x".into(),
    };
    let config = ApiConfig {
        socket: socket.clone(),
        ..ApiConfig::default()
    };
    let err = ApiServer::bind(&config, ctx.clone())
        .await
        .err()
        .expect("a live socket is refused");
    assert!(matches!(err, ApiError::SocketInUse { .. }), "{err}");

    let _dir = api.stop().await;
    assert!(!socket.exists(), "the socket file is removed on shutdown");

    // A stale socket (left by a crash) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    drop(stale);
    assert!(socket.exists());
    let bound = ApiServer::bind(&config, ctx)
        .await
        .expect("stale socket replaced");
    drop(bound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_over_tcp_needs_the_token_for_changes() {
    let redis = RedisServer::start();
    let mut api = Api::start(&redis, true).await;
    let (http, base) = api.http();
    let body = json!({"ip": "192.0.2.44", "duration": "10m", "reason": "tcp"});

    let resp = http
        .post(format!("{base}/v1/blocks"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    let resp = http
        .post(format!("{base}/v1/blocks"))
        .bearer_auth("test-token-0123456789abcdeX")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a wrong token");
    assert!(api.blocklist.get("192.0.2.44").await.unwrap().is_none());

    let resp = http
        .post(format!("{base}/v1/blocks"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(api.blocklist.get("192.0.2.44").await.unwrap().is_some());

    // Reads on a loopback address need no token.
    let resp = http.get(format!("{base}/v1/blocks")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list[0]["ip"], "192.0.2.44");

    let resp = http
        .delete(format!("{base}/v1/blocks/192.0.2.44"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        api.forgets.try_recv().is_err(),
        "no Forget without the token"
    );
    let resp = http
        .delete(format!("{base}/v1/blocks/192.0.2.44"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(api.next_forget().await, "192.0.2.44");

    api.stop().await;
}

#[tokio::test]
async fn api_refuses_a_non_loopback_listen_address_without_allow_remote() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("authwatch.toml");
    let token = dir.path().join("token");
    write_private(&token, TOKEN);
    let parse = |api: &str| Config::parse(&file, &format!("[api]\n{api}\n"));

    let e = parse("listen = \"0.0.0.0:9470\"").unwrap_err().to_string();
    assert!(
        e.contains("authwatch.toml:2: api.listen:") && e.contains("allow_remote"),
        "{e}"
    );
    let e = parse("listen = \"192.0.2.1:9470\"\nallow_remote = true")
        .unwrap_err()
        .to_string();
    assert!(e.contains("token_file"), "{e}");
    let c = parse("listen = \"0.0.0.0:9470\"\nallow_remote = true\ntoken_file = \"token\"")
        .expect("remote with a token is allowed");
    assert_eq!(c.api.token_file.as_deref(), Some(token.as_path()));
    let c = parse("listen = \"127.0.0.1:9470\"\nsocket = \"run/api.sock\"").unwrap();
    assert_eq!(c.api.socket, dir.path().join("run/api.sock"));
    assert_eq!(
        parse("").unwrap().api.socket,
        PathBuf::from("/run/authwatch/api.sock")
    );

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = parse("token_file = \"token\"").unwrap_err().to_string();
    assert!(
        e.contains("api.token_file") && e.contains("0640") && e.contains("0600"),
        "{e}"
    );
    let e = parse("listen = \"localhost:9470\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("api.listen"), "{e}");

    // The server checks again: ApiConfig's fields are public.
    let redis = RedisServer::start();
    let ctx = ApiContext {
        blocklist: Blocklist::connect(&redis.url(), PREFIX).await.unwrap(),
        control: mpsc::channel(1).0,
        metrics: None,
        host: "x".into(),
    };
    let config = ApiConfig {
        socket: dir.path().join("api.sock"),
        listen: Some("0.0.0.0:0".parse().unwrap()),
        allow_remote: false,
        token_file: None,
    };
    let err = ApiServer::bind(&config, ctx.clone()).await.err().unwrap();
    assert!(matches!(err, ApiError::RemoteRefused { .. }), "{err}");
    let config = ApiConfig {
        allow_remote: true,
        ..config
    };
    let err = ApiServer::bind(&config, ctx).await.err().unwrap();
    assert!(matches!(err, ApiError::TokenRequired { .. }), "{err}");
    assert!(!dir.path().join("api.sock").exists(), "nothing bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_prometheus_metrics() {
    let redis = RedisServer::start();
    let api = Api::start(&redis, true).await;
    metrics::counter!("authwatch_test_scrapes_total", "from" => "api-test").increment(3);
    metrics::counter!(authwatch::api::metrics::LINES_READ, "source" => "api-test").increment(7);
    // A manual block is counted by the API itself.
    let resp = api
        .unix(
            "POST",
            "/v1/blocks",
            Some(json!({"ip": "198.51.100.200", "duration": "1m"})),
        )
        .await;
    assert_eq!(resp.status, 201);

    let resp = api.unix("GET", "/metrics", None).await;
    assert_eq!(resp.status, 200);
    let text = String::from_utf8(resp.body).expect("UTF-8");
    assert!(text.lines().any(|l| l.starts_with("# TYPE ")), "{text}");
    assert!(
        text.contains("# TYPE authwatch_test_scrapes_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# HELP authwatch_lines_read_total"),
        "described: {text}"
    );
    let samples = parse_exposition(&text);
    assert_eq!(
        samples.get("authwatch_test_scrapes_total{from=\"api-test\"}"),
        Some(&3.0),
        "{text}"
    );
    assert_eq!(
        samples.get("authwatch_lines_read_total{source=\"api-test\"}"),
        Some(&7.0)
    );
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("authwatch_blocks_written_total{")
                && k.contains("rule=\"manual\"")),
        "{text}"
    );

    // The same over TCP, without a token on loopback.
    let (http, base) = api.http();
    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    api.stop().await;
}

/// Parses Prometheus text: `name{labels} value` per sample line; every
/// line must be a comment, blank, or a sample with a numeric value.
fn parse_exposition(text: &str) -> std::collections::HashMap<String, f64> {
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {line:?}")),
        };
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_healthz_and_status_come_from_the_engine() {
    let redis = RedisServer::start();
    let api = Api::start(&redis, true).await;

    let resp = api.unix("GET", "/healthz", None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(String::from_utf8_lossy(&resp.body), "ok\n");
    let resp = api.unix("GET", "/v1/status", None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(json_of(&resp)["version"], "test");

    let degraded = "degraded: redis unreachable since 2026-12-03T16:01:07Z";
    *api.health.lock().unwrap() = degraded.to_owned();
    let resp = api.unix("GET", "/healthz", None).await;
    assert_eq!(resp.status, 503);
    assert_eq!(String::from_utf8_lossy(&resp.body).trim(), degraded);
    let (http, base) = api.http();
    let resp = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.text().await.unwrap().trim(), degraded);

    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_healthz_is_503_when_the_engine_is_gone() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (control, requests) = mpsc::channel(1);
    drop(requests);
    let ctx = ApiContext {
        blocklist: Blocklist::connect(&redis.url(), PREFIX).await.unwrap(),
        control,
        metrics: None,
        host: "x".into(),
    };
    let config = ApiConfig {
        socket: dir.path().join("api.sock"),
        ..ApiConfig::default()
    };
    let shutdown = CancellationToken::new();
    let bound = ApiServer::bind(&config, ctx).await.unwrap();
    let server = tokio::spawn(bound.run(shutdown.clone()));
    let client = Client::new(&config.socket);
    let resp = client.request("GET", "/healthz", None).await.unwrap();
    assert_eq!(resp.status, 503);
    assert!(String::from_utf8_lossy(&resp.body).starts_with("down: "));
    let resp = client.request("GET", "/metrics", None).await.unwrap();
    assert_eq!(resp.status, 404, "no recorder handle, no metrics");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

// ------------------------------------------------------------ the commands

/// A config for the commands: the test Redis, a socket path in `dir`.
fn command_config(dir: &Path, redis: &RedisServer, socket: &Path) -> PathBuf {
    let file = dir.join("authwatch.toml");
    std::fs::write(
        &file,
        format!(
            "host = \"cli-host\"\n[redis]\nurl = \"{}\"\nkey_prefix = \"{PREFIX}\"\n[api]\nsocket = {:?}\n",
            redis.url(),
            socket
        ),
    )
    .unwrap();
    file
}

/// Runs the binary off the runtime's threads (an API may be serving it
/// from this very process).
async fn authwatch(config: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"));
    cmd.args(args).arg("--config").arg(config);
    cmd.env_remove("AUTHWATCH_CONFIG");
    tokio::task::spawn_blocking(move || cmd.output().expect("run authwatch"))
        .await
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_blocks_add_list_remove_on_redis_when_no_daemon_runs() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = command_config(dir.path(), &redis, &dir.path().join("absent.sock"));

    let out = authwatch(
        &config,
        &[
            "blocks",
            "add",
            "203.0.113.50",
            "--for",
            "2h",
            "--reason",
            "by hand",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("no daemon answers"), "{stderr}");
    assert!(stderr.contains("using Redis"), "{stderr}");
    assert!(stdout.contains("blocked 203.0.113.50 until"), "{stdout}");

    let bl = Blocklist::connect(&redis.url(), PREFIX).await.unwrap();
    let stored = bl.get("203.0.113.50").await.unwrap().expect("written");
    assert_eq!(stored.record["rule"], "manual");
    assert_eq!(stored.record["host"], "cli-host");
    assert_eq!(stored.record["reason"], "by hand");
    assert!(
        (7190..=7200).contains(&stored.ttl_secs),
        "{}",
        stored.ttl_secs
    );

    let out = authwatch(&config, &["blocks", "list", "--json"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let list: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(list[0]["ip"], "203.0.113.50");
    assert!(list[0]["seconds_left"].as_i64().unwrap() > 7000);

    let out = authwatch(&config, &["blocks", "list"]).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("203.0.113.50") && stdout.contains("manual") && stdout.contains("by hand"),
        "{stdout}"
    );

    let out = authwatch(&config, &["blocks", "show", "203.0.113.50"]).await;
    assert!(out.status.success());
    assert!(
        text(&out).0.contains("reason:      by hand"),
        "{}",
        text(&out).0
    );

    let out = authwatch(&config, &["blocks", "remove", "203.0.113.50"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("lifted"), "{stdout}");
    assert!(bl.get("203.0.113.50").await.unwrap().is_none());

    let out = authwatch(&config, &["blocks", "remove", "203.0.113.50"]).await;
    assert_eq!(out.status.code(), Some(1), "nothing to lift");
    let out = authwatch(&config, &["blocks", "show", "203.0.113.50"]).await;
    assert_eq!(out.status.code(), Some(1), "nothing to show");

    let out = authwatch(&config, &["blocks", "add", "203.0.113.999"]).await;
    assert_eq!(out.status.code(), Some(2), "usage error: {}", text(&out).1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_blocks_go_through_the_daemon_when_it_runs() {
    let redis = RedisServer::start();
    let mut api = Api::start(&redis, false).await;
    let config = command_config(api.dir.path(), &redis, &api.socket);

    let out = authwatch(
        &config,
        &["blocks", "add", "2001:db8:7::/48", "--for", "1d"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("via the daemon"), "{stderr}");
    let stored = api.blocklist.get("2001:db8:7::/48").await.unwrap().unwrap();
    assert_eq!(stored.record["host"], "api-test-host", "written by the API");

    let out = authwatch(&config, &["blocks", "list", "--json"]).await;
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["ip"], "2001:db8:7::/48");

    let out = authwatch(&config, &["blocks", "rm", "2001:db8:7::/48"]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(api.next_forget().await, "2001:db8:7::/48");

    let out = authwatch(&config, &["status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["health"], "ok");
    let out = authwatch(&config, &["status"]).await;
    assert!(text(&out).0.contains("health:  ok"), "{}", text(&out).0);

    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_status_without_a_daemon_exits_3_and_reports_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = command_config(dir.path(), &redis, &dir.path().join("absent.sock"));
    let out = authwatch(&config, &["status"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("not running") && stdout.contains("redis:   up"),
        "{stdout}"
    );
}

#[test]
fn cli_completions_and_manpage_come_from_the_clap_definitions() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        assert!(
            script.contains("authwatch") && script.contains("blocks"),
            "{shell}"
        );
    }
    let page = run(&["manpage"]);
    assert!(page.contains(".TH authwatch"), "{page}");
    assert!(page.contains("blocks"), "{page}");
}
