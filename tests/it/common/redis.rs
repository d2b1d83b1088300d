//! A real `redis-server`, private to one test: its own free port, its own
//! temporary directory, nothing saved to disk. Tests can stop and restart it
//! (on the same port) to play an outage.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tokio::sync::mpsc;

/// How long redis-server may take to answer its first PING.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// The block entry of `ip` in Redis under the default key prefix, if any.
pub async fn block_json(conn: &mut MultiplexedConnection, ip: &str) -> Option<String> {
    redis::AsyncCommands::get(conn, format!("authwatch:block:{ip}"))
        .await
        .expect("GET")
}

/// Whether `ip` is blocked in Redis under the default key prefix.
pub async fn is_blocked(conn: &mut MultiplexedConnection, ip: &str) -> bool {
    redis::AsyncCommands::exists(conn, format!("authwatch:block:{ip}"))
        .await
        .expect("EXISTS")
}

/// Waits (up to [`super::DEADLINE`]) for `ip`'s block entry and returns it.
pub async fn wait_for_block(conn: &mut MultiplexedConnection, ip: &str) -> String {
    let until = Instant::now() + super::DEADLINE;
    loop {
        if let Some(v) = block_json(conn, ip).await {
            return v;
        }
        assert!(
            Instant::now() < until,
            "{ip} was not blocked within {:?}",
            super::DEADLINE
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> RedisServer {
        let binary = find_redis_server();
        let dir = tempfile::tempdir().expect("create a temp dir for redis-server");
        // The port is free when we look, but another process may take it
        // before redis-server binds it: then pick another.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match launch(&binary, port, dir.path()) {
                Ok(child) => {
                    return RedisServer {
                        binary,
                        port,
                        dir,
                        child: Some(child),
                    }
                }
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start after 5 attempts: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and waits for it to exit. Its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs, then starts a fresh, empty one on the
    /// same port.
    pub fn restart(&mut self) {
        self.stop();
        match launch(&self.binary, self.port, self.dir.path()) {
            Ok(child) => self.child = Some(child),
            Err(e) => panic!("redis-server did not restart on port {}: {e}", self.port),
        }
    }

    /// A client for assertions, independent of the code under test.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("the test URL parses")
    }

    /// A plain connection for assertions.
    pub async fn conn(&self) -> MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }

    /// A connection subscribed to `channel`. Subscribing completes before
    /// this returns, so nothing published afterwards is missed.
    pub async fn subscribe(&self, channel: &str) -> Subscriber {
        // RESP3 delivers messages as pushes on an ordinary connection, to a
        // tokio channel: no Stream trait (and no futures crate) needed.
        let client = redis::Client::open(format!("{}?protocol=resp3", self.url()))
            .expect("the test URL parses");
        let (tx, rx) = mpsc::unbounded_channel();
        let config = AsyncConnectionConfig::new().set_push_sender(tx);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connect to the test redis-server");
        conn.subscribe(channel).await.expect("SUBSCRIBE");
        Subscriber {
            conn,
            channel: channel.to_owned(),
            rx,
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A pub/sub subscription, see [`RedisServer::subscribe`].
pub struct Subscriber {
    /// Held so that the subscription lives as long as this value.
    conn: MultiplexedConnection,
    channel: String,
    rx: mpsc::UnboundedReceiver<PushInfo>,
}

impl Subscriber {
    /// The next message payload on the channel; panics after `deadline`.
    pub async fn next_message(&mut self, deadline: Duration) -> Vec<u8> {
        let wait = async {
            while let Some(push) = self.rx.recv().await {
                if push.kind != PushKind::Message {
                    continue; // subscribe confirmations and the like
                }
                // data = [channel, payload]
                if let Some(Value::BulkString(payload)) = push.data.get(1) {
                    return payload.clone();
                }
            }
            panic!("subscription to {} closed", self.channel);
        };
        match tokio::time::timeout(deadline, wait).await {
            Ok(payload) => payload,
            Err(_) => panic!("no message on {} within {deadline:?}", self.channel),
        }
    }
}

fn find_redis_server() -> PathBuf {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    // Debian installs to /usr/bin; sbin covers other layouts when PATH is
    // minimal (cron, CI sandboxes).
    let fallbacks = [PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")];
    from_path
        .iter()
        .chain(fallbacks.iter())
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server not found on PATH: these tests run a real Redis. \
                 Install the Debian package `redis-server` (apt-get install redis-server)."
            )
        })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Spawns redis-server and waits for its first PING answer. `Err` carries
/// the reason and the server's log.
fn launch(binary: &Path, port: u16, dir: &Path) -> Result<Child, String> {
    let log = dir.join("redis.log");
    let _ = std::fs::remove_file(&log);
    let mut child = Command::new(binary)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;

    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let until = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("redis-server exited with {status}; log:\n{log}"));
        }
        // Ask for the server's pid, not just a PONG: if another test's
        // server grabbed the same port, ours has failed to bind and the
        // answer comes from the wrong process.
        let info = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .and_then(|mut con| redis::cmd("INFO").arg("server").query::<String>(&mut con));
        if let Ok(info) = info {
            let pid = format!("process_id:{}", child.id());
            if info.lines().any(|line| line.trim() == pid) {
                return Ok(child);
            }
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "redis-server on port {port} did not answer PING within {START_DEADLINE:?}; log:\n{log}"
            ));
        }
        // Polling interval.
        std::thread::sleep(Duration::from_millis(10));
    }
}
