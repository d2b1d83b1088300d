//! The `blocks` and `status` commands.
//!
//! They ask the daemon through its unix socket, so that a lift also
//! resets the engine's windows. When no daemon answers (no socket, or a
//! stale one) the block commands work on Redis directly, the same records
//! through the same [`Blocklist`], and say so on stderr: an operator can
//! still lift a block while the daemon is stopped.

use std::io::{self, Write};
use std::time::Duration;

use serde_json::{json, Value};

use super::client::{encode_segment, Client, ClientError, Response};
use super::{block_json, manual_record, Subject};
use crate::config::Config;
use crate::sink::blocklist::{redact_url, Blocklist, BlocklistError, WriteOutcome};
use crate::time::Timestamp;

/// What a command asks of the blocks.
#[derive(Debug, Clone)]
pub enum BlocksAction {
    List {
        json: bool,
    },
    Show {
        subject: Subject,
        json: bool,
    },
    Add {
        subject: Subject,
        duration: Duration,
        reason: Option<String>,
    },
    Remove {
        subject: Subject,
    },
}

/// How a command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Done,
    /// The block asked for does not exist: exit 1.
    NotFound,
    /// `status` found no daemon: exit 3, as `systemctl status` does.
    NotRunning,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Redis(#[from] BlocklistError),
    #[error("the daemon answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Runs a `blocks` command; `out` gets the result, `err` the notes.
pub async fn blocks(
    config: &Config,
    action: &BlocksAction,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let client = Client::new(&config.api.socket);
    let (method, target, body) = match action {
        BlocksAction::List { .. } => ("GET", "/v1/blocks".to_owned(), None),
        BlocksAction::Show { subject, .. } => ("GET", block_path(subject), None),
        BlocksAction::Add {
            subject,
            duration,
            reason,
        } => (
            "POST",
            "/v1/blocks".to_owned(),
            Some(json!({
                "ip": subject.to_string(),
                "duration": crate::duration::format(*duration),
                "reason": reason,
            })),
        ),
        BlocksAction::Remove { subject } => ("DELETE", block_path(subject), None),
    };
    match client.request(method, &target, body.as_ref()).await {
        Ok(resp) => {
            writeln!(
                err,
                "authwatch: via the daemon ({})",
                client.path().display()
            )?;
            from_api(action, &resp, out)
        }
        Err(ClientError::NotRunning { source, .. }) => {
            writeln!(
                err,
                "authwatch: no daemon answers on {} ({source}); using Redis at {} directly",
                client.path().display(),
                redact_url(&config.redis.url)
            )?;
            let bl = Blocklist::connect(&config.redis.url, &config.redis.key_prefix).await?;
            from_redis(config, &bl, action, out).await
        }
        Err(e) => Err(e.into()),
    }
}

fn block_path(subject: &Subject) -> String {
    format!("/v1/blocks/{}", encode_segment(&subject.to_string()))
}

fn api_error(resp: &Response) -> CommandError {
    CommandError::Api {
        status: resp.status,
        message: resp.error_message(),
    }
}

fn from_api(
    action: &BlocksAction,
    resp: &Response,
    out: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    match (action, resp.status) {
        (BlocksAction::List { json }, 200) => {
            let list = resp.json()?;
            let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
            print_list(list, *json, out)?;
        }
        (BlocksAction::Show { json, .. }, 200) => print_block(&resp.json()?, *json, out)?,
        (BlocksAction::Add { subject, .. }, 200 | 201) => {
            let v = resp.json()?;
            print_added(
                subject,
                v["outcome"].as_str().unwrap_or("?"),
                &v["block"],
                out,
            )?;
        }
        (BlocksAction::Remove { subject }, 200) => writeln!(out, "lifted the block of {subject}")?,
        (BlocksAction::Show { subject, .. } | BlocksAction::Remove { subject }, 404) => {
            writeln!(out, "no block for {subject}")?;
            return Ok(Outcome::NotFound);
        }
        _ => return Err(api_error(resp)),
    }
    Ok(Outcome::Done)
}

async fn from_redis(
    config: &Config,
    bl: &Blocklist,
    action: &BlocksAction,
    out: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let now = Timestamp::now();
    match action {
        BlocksAction::List { json } => {
            let list: Vec<Value> = bl.list(now).await?.iter().map(block_json).collect();
            print_list(&list, *json, out)?;
        }
        BlocksAction::Show { subject, json } => match bl.get(&subject.to_string()).await? {
            Some(b) => print_block(&block_json(&b), *json, out)?,
            None => {
                writeln!(out, "no block for {subject}")?;
                return Ok(Outcome::NotFound);
            }
        },
        BlocksAction::Add {
            subject,
            duration,
            reason,
        } => {
            let record = manual_record(subject, *duration, reason.as_deref(), &config.host, now);
            let outcome = match bl.write(&record, now).await? {
                WriteOutcome::New => "new",
                WriteOutcome::Extended => "extended",
                WriteOutcome::Unchanged => "unchanged",
                WriteOutcome::Expired => "expired",
            };
            let stored = bl.get(&record.ip).await?.map(|b| block_json(&b));
            print_added(
                subject,
                outcome,
                stored.as_ref().unwrap_or(&Value::Null),
                out,
            )?;
        }
        BlocksAction::Remove { subject } => {
            if bl.remove(&subject.to_string()).await? {
                writeln!(out, "lifted the block of {subject}")?;
            } else {
                writeln!(out, "no block for {subject}")?;
                return Ok(Outcome::NotFound);
            }
        }
    }
    Ok(Outcome::Done)
}

/// Pretty JSON and a newline.
fn write_json(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

/// A field of a block as text: strings bare, other values as JSON.
fn field(block: &Value, key: &str) -> String {
    match block.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn left(block: &Value) -> String {
    match block["seconds_left"].as_i64() {
        Some(s) if s >= 0 => crate::duration::format(Duration::from_secs(s as u64)),
        Some(_) => "never".to_owned(),
        None => String::new(),
    }
}

fn print_list(list: &[Value], json: bool, out: &mut dyn Write) -> io::Result<()> {
    if json {
        return write_json(&Value::from(list), out);
    }
    if list.is_empty() {
        return writeln!(out, "no current blocks");
    }
    writeln!(
        out,
        "{:<40} {:<20} {:>6}  {:<24} {:>10}  REASON",
        "IP", "RULE", "COUNT", "EXPIRES", "LEFT"
    )?;
    for b in list {
        writeln!(
            out,
            "{:<40} {:<20} {:>6}  {:<24} {:>10}  {}",
            field(b, "ip"),
            field(b, "rule"),
            field(b, "count"),
            field(b, "expires_at"),
            left(b),
            field(b, "reason"),
        )?;
    }
    Ok(())
}

fn print_block(block: &Value, json: bool, out: &mut dyn Write) -> io::Result<()> {
    if json {
        return write_json(block, out);
    }
    const ORDER: &[&str] = &[
        "ip",
        "rule",
        "reason",
        "count",
        "window_secs",
        "first_seen",
        "last_seen",
        "blocked_at",
        "expires_at",
        "host",
    ];
    for key in ORDER {
        if block.get(key).is_some() {
            writeln!(out, "{:<12} {}", format!("{key}:"), field(block, key))?;
        }
    }
    writeln!(out, "{:<12} {}", "left:", left(block))?;
    if let Some(o) = block.as_object() {
        for (k, _) in o
            .iter()
            .filter(|(k, _)| !ORDER.contains(&k.as_str()) && *k != "seconds_left")
        {
            writeln!(out, "{:<12} {}", format!("{k}:"), field(block, k))?;
        }
    }
    Ok(())
}

fn print_added(
    subject: &Subject,
    outcome: &str,
    block: &Value,
    out: &mut dyn Write,
) -> io::Result<()> {
    let until = field(block, "expires_at");
    match outcome {
        "new" => writeln!(out, "blocked {subject} until {until}"),
        "extended" => writeln!(out, "extended the block of {subject} until {until}"),
        "unchanged" => writeln!(
            out,
            "{subject} is already blocked until {until}, at least as long; unchanged"
        ),
        other => writeln!(out, "{subject}: {other}"),
    }
}

/// Runs `status`.
pub async fn status(
    config: &Config,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let client = Client::new(&config.api.socket);
    match client.request("GET", "/v1/status", None).await {
        Ok(resp) if resp.status == 200 => {
            let v = resp.json()?;
            if json {
                write_json(&v, out)?;
            } else {
                print_status(&v, out)?;
            }
            Ok(Outcome::Done)
        }
        Ok(resp) => Err(api_error(&resp)),
        Err(ClientError::NotRunning { source, .. }) => {
            let why = format!(
                "no daemon answers on {} ({source})",
                client.path().display()
            );
            // Still say what an operator checks next: can Redis be reached,
            // and what does it hold.
            let redis = match Blocklist::connect(&config.redis.url, &config.redis.key_prefix).await
            {
                Ok(bl) => match bl.list(Timestamp::now()).await {
                    Ok(list) => json!({"state": "up", "blocks": list.len()}),
                    Err(e) => json!({"state": "error", "error": e.to_string()}),
                },
                Err(e) => json!({"state": "down", "error": e.to_string()}),
            };
            let redis_url = redact_url(&config.redis.url);
            if json {
                let v = json!({"running": false, "reason": why, "redis": redis, "redis_url": redis_url});
                write_json(&v, out)?;
            } else {
                writeln!(out, "daemon:  not running: {why}")?;
                match redis["state"].as_str() {
                    Some("up") => writeln!(
                        out,
                        "redis:   up ({redis_url}), {} current blocks",
                        redis["blocks"]
                    )?,
                    _ => writeln!(out, "redis:   {} ({redis_url})", field(&redis, "error"))?,
                }
            }
            writeln!(err, "authwatch: the daemon is not running")?;
            Ok(Outcome::NotRunning)
        }
        Err(e) => Err(e.into()),
    }
}

/// The status JSON for humans. Fields the daemon does not send are left
/// out; the whole object is always available with `--json`.
fn print_status(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let uptime = v["uptime_secs"]
        .as_u64()
        .map(|s| format!(", up {}", human_secs(s)))
        .unwrap_or_default();
    writeln!(
        out,
        "daemon:  running, version {}{uptime}",
        field(v, "version")
    )?;
    writeln!(out, "health:  {}", v["health"].as_str().unwrap_or("ok"))?;
    if let Some(r) = v.get("redis").filter(|r| r.is_object()) {
        let mut line = format!("redis:   {} ({})", field(r, "state"), field(r, "url"));
        if !field(r, "since").is_empty() {
            line.push_str(&format!(" since {}", field(r, "since")));
        }
        if !field(r, "last_error").is_empty() {
            line.push_str(&format!(", last error: {}", field(r, "last_error")));
        }
        writeln!(out, "{line}")?;
    }
    if let Some(r) = v.get("last_reload").filter(|r| r.is_object()) {
        let mut line = format!("reload:  {} at {}", field(r, "outcome"), field(r, "at"));
        if !field(r, "error").is_empty() {
            line.push_str(&format!(": {}", field(r, "error")));
        }
        writeln!(out, "{line}")?;
    }
    if let Some(n) = v.get("tracked_keys") {
        writeln!(out, "tracked: {n} windows")?;
    }
    if v.get("lines").is_some() {
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        let mut line = format!("lines:   {} read, {} cut", n("lines"), n("lines_cut"));
        let skipped: Vec<String> = [
            ("malformed_json", "malformed JSON"),
            ("ambiguous_json", "ambiguous JSON"),
            ("proxied_without_client", "from a proxy, naming no client"),
        ]
        .iter()
        .filter(|(k, _)| n(k) > 0)
        .map(|(k, what)| format!("{} {what}", n(k)))
        .collect();
        if !skipped.is_empty() {
            line.push_str(&format!("; skipped: {}", skipped.join(", ")));
        }
        if n("unreadable_times") > 0 {
            line.push_str(&format!(
                "; {} counted at their read time (time unreadable)",
                n("unreadable_times")
            ));
        }
        writeln!(out, "{line}")?;
    }
    if let Some(q) = v["queues"].as_object() {
        let parts: Vec<String> = q.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(out, "queues:  {}", parts.join(", "))?;
    }
    if let Some(sources) = v["sources"].as_array() {
        writeln!(out, "sources:")?;
        for s in sources {
            writeln!(
                out,
                "  {:<16} {:<40} lag {} bytes",
                field(s, "name"),
                field(s, "path"),
                s["lag_bytes"].as_u64().unwrap_or(0)
            )?;
        }
    }
    match &v["rules"] {
        Value::Array(rules) => {
            writeln!(out, "rules:   {} loaded", rules.len())?;
            for r in rules {
                writeln!(
                    out,
                    "  {:<24} threshold {} in {}s, block for {}s",
                    field(r, "id"),
                    field(r, "threshold"),
                    field(r, "window_secs"),
                    field(r, "block_for_secs")
                )?;
            }
        }
        Value::Null => {}
        n => writeln!(out, "rules:   {n} loaded")?,
    }
    Ok(())
}

/// 3h12m, 2d4h: the two largest units.
fn human_secs(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m{}s", s % 60),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_renders_what_the_daemon_sends_and_skips_the_rest() {
        let v = json!({
            "version": "0.1.0", "uptime_secs": 11_520, "health": "degraded: redis unreachable since x",
            "redis": {"url": "redis://127.0.0.1:6379/0", "state": "down", "since": "x"},
            "sources": [{"name": "sshd", "path": "/var/log/auth.log", "lag_bytes": 12}],
            "rules": [{"id": "sshd", "threshold": 50, "window_secs": 60, "block_for_secs": 900}],
            "queues": {"chunks": 0}, "tracked_keys": 3,
            "lines": 1000, "lines_cut": 1, "malformed_json": 2, "ambiguous_json": 0,
            "proxied_without_client": 0, "unreadable_times": 5,
            "last_reload": {"outcome": "refused", "at": "2026-12-03T17:00:00Z", "error": "rules/x.toml:3: threshold"}
        });
        let mut out = Vec::new();
        print_status(&v, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("up 3h12m"), "{text}");
        assert!(
            text.contains("health:  degraded: redis unreachable"),
            "{text}"
        );
        assert!(text.contains("lag 12 bytes"), "{text}");
        assert!(
            text.contains("reload:  refused at 2026-12-03T17:00:00Z: rules/x.toml:3: threshold"),
            "{text}"
        );
        assert!(text.contains("rules:   1 loaded"), "{text}");
        assert!(
            text.contains(
                "lines:   1000 read, 1 cut; skipped: 2 malformed JSON; 5 counted at their read time (time unreadable)"
            ),
            "{text}"
        );
        let mut out = Vec::new();
        print_status(&json!({}), &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("health:  ok"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(59), "59s");
        assert_eq!(human_secs(61), "1m1s");
        assert_eq!(human_secs(90_000), "1d1h");
    }
}
