//! The real `authwatch` binary, run as a daemon in a temporary host: its
//! own config, log directory and state directory. Its stderr (and stdout,
//! should anything ever be printed there) is collected so that tests can
//! wait for "ready" and read what it logged.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A temporary host: a config pointing at the shipped rules, a Redis, and
/// log files under its own directory.
pub struct TestHost {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl TestHost {
    /// `extra` is appended to the generated config (sources, alerts, …).
    pub fn new(redis_url: &str, extra: &str) -> TestHost {
        TestHost::build(redis_url, None, "", extra)
    }

    /// Like [`TestHost::new`], with top-level keys (`trusted_proxies = …`)
    /// that must come before the config's tables.
    pub fn with_top_level(redis_url: &str, top_level: &str, extra: &str) -> TestHost {
        TestHost::build(redis_url, None, top_level, extra)
    }

    /// Like [`TestHost::new`], with this host's own rule file instead of
    /// the shipped rules.
    pub fn with_rules(redis_url: &str, rules: &str, extra: &str) -> TestHost {
        TestHost::build(redis_url, Some(rules), "", extra)
    }

    fn build(redis_url: &str, own_rules: Option<&str>, top_level: &str, extra: &str) -> TestHost {
        let dir = tempfile::tempdir().expect("temp dir for the host");
        std::fs::create_dir_all(dir.path().join("log")).expect("log dir");
        std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
        let rules = match own_rules {
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
            Some(text) => {
                let d = dir.path().join("rules");
                std::fs::create_dir_all(&d).expect("rules dir");
                std::fs::write(d.join("test.toml"), text).expect("write rules");
                d
            }
        };
        let config = dir.path().join("authwatch.toml");
        let text = format!(
            "rules_dir = {rules:?}\nstate_dir = \"state\"\nhost = \"test-host\"\n{top_level}\n\n[redis]\nurl = \"{redis_url}\"\nkey_prefix = \"authwatch:\"\n\n[api]\nsocket = \"run/api.sock\"\n\n{extra}\n"
        );
        std::fs::write(&config, text).expect("write config");
        TestHost { dir, config }
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join("log").join(name)
    }

    /// Appends lines to a log file, as a service would: one write each.
    pub fn append(&self, name: &str, lines: &[String]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(name))
            .expect("open log for append");
        for l in lines {
            f.write_all(format!("{l}\n").as_bytes()).expect("append");
        }
    }

    pub fn start_daemon(&self) -> Daemon {
        Daemon::start(&self.config)
    }

    /// What `authwatch status --json` prints for this host's daemon.
    pub async fn status_json(&self) -> serde_json::Value {
        let config = self.config.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_authwatch"))
                .args(["status", "--json", "--config"])
                .arg(config)
                .output()
        })
        .await
        .expect("the status task")
        .expect("run authwatch status");
        assert!(
            out.status.success(),
            "authwatch status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
    }
}

pub struct Daemon {
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `authwatch run` and waits until it says it is ready.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_logging(config, "info")
    }

    /// Like [`Daemon::start`], logging at `level` (`AUTHWATCH_LOG`).
    pub fn start_logging(config: &Path, level: &str) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_authwatch"))
            .arg("run")
            // Whoever runs the tests (root in CI).
            .arg("--allow-root")
            .arg("--config")
            .arg(config)
            .env("AUTHWATCH_LOG", level)
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn authwatch");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("stderr pipe");
        let out = child.stdout.take().expect("stdout pipe");
        for pipe in [
            Box::new(err) as Box<dyn std::io::Read + Send>,
            Box::new(out),
        ] {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lock(&sink).push(line);
                }
            });
        }
        let d = Daemon {
            child: Some(child),
            stderr,
        };
        d.wait_for_log(" ready", super::DEADLINE);
        d
    }

    /// Everything logged so far.
    pub fn logs(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// Polls the log for a line containing `needle`; panics with the log
    /// after `deadline`.
    pub fn wait_for_log(&self, needle: &str, deadline: Duration) {
        let until = std::time::Instant::now() + deadline;
        loop {
            if self.logs().iter().any(|l| l.contains(needle)) {
                return;
            }
            if std::time::Instant::now() > until {
                panic!(
                    "authwatch did not log {needle:?} within {deadline:?}:\n{}",
                    self.logs().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (e.g. `libc::SIGHUP`) to the running daemon.
    pub fn signal(&self, sig: libc::c_int) {
        let child = self.child.as_ref().expect("daemon running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    }

    /// Polls the log until `needle` has appeared `n` times.
    pub fn wait_for_log_count(&self, needle: &str, n: usize, deadline: Duration) {
        let until = std::time::Instant::now() + deadline;
        loop {
            if self.logs().iter().filter(|l| l.contains(needle)).count() >= n {
                return;
            }
            if std::time::Instant::now() > until {
                panic!(
                    "authwatch did not log {needle:?} {n} times within {deadline:?}:\n{}",
                    self.logs().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to save anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        child.kill().expect("SIGKILL authwatch");
        let _ = child.wait();
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        child.wait().expect("wait for authwatch")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A syslog line as rsyslog on Ubuntu 24.04 writes it, stamped now.
pub fn sshd_line(pid: u32, message: &str) -> String {
    format!(
        "{} web1 sshd[{pid}]: {message}",
        authwatch::time::Timestamp::now()
    )
}

/// A syslog line stamped at `t`.
pub fn sshd_line_at(t: authwatch::time::Timestamp, pid: u32, message: &str) -> String {
    format!("{t} web1 sshd[{pid}]: {message}")
}

/// `n` failed passwords from `ip`, one connection (pid) each.
pub fn sshd_failures(ip: &str, n: u32, first_pid: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            sshd_line(
                first_pid + i,
                &format!("Failed password for root from {ip} port {} ssh2", 40000 + i),
            )
        })
        .collect()
}
