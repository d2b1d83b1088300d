//! The daemon: wiring of tasks and channels, signals and shutdown.
//!
//! ```text
//!  tailer thread ──Chunk──▶ engine task ──Decision──▶ writer task ──▶ Redis
//!  (blocking reads,          (rules + detector,         (blocklist,    └─▶ alerts
//!   inotify wake-ups)         owns all window state)     retries)
//! ```
//!
//! The tailer reads on a dedicated thread because file reads block; the
//! engine owns every window, so the per-line path takes no lock; the
//! writer is the only task that waits on Redis, so a slow Redis never
//! stalls detection.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::detector::Decision;
use crate::engine::Engine;
use crate::rules::RuleSet;
use crate::sink::alert::Alerter;
use crate::sink::blocklist::{Blocklist, WriteOutcome};
use crate::sink::BlockRecord;
use crate::source::checkpoint::Checkpoints;
use crate::source::tailer::{Chunk, Tailer, TailerOptions, WatchSpec};
use crate::time::Timestamp;

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot start the file tailer: {0}")]
    Tailer(#[source] std::io::Error),
    #[error("the tailer thread panicked")]
    TailerPanic,
}

/// Chunks in flight between the tailer and the engine: enough to absorb a
/// burst, small enough that memory stays flat when the engine lags.
const CHUNK_QUEUE: usize = 64;

/// Runs the daemon until `shutdown` is cancelled.
///
/// `ready` is called once the rules are loaded and every source has been
/// opened and positioned: lines appended after that are seen.
pub async fn run(
    config: Config,
    rules: Arc<RuleSet>,
    shutdown: CancellationToken,
    ready: impl FnOnce(),
) -> Result<(), DaemonError> {
    let tracker = TaskTracker::new();

    for rule in rules.rules() {
        for name in rule.sources.iter().flatten() {
            if !config.sources.iter().any(|s| &s.name == name) {
                tracing::warn!(rule = %rule.id, source = %name, "rule names a source that is not configured; it reads nothing from it");
            }
        }
    }
    if config.sources.is_empty() {
        tracing::warn!(config = %config.file.display(), "no [[source]] configured: nothing will be read");
    }

    let filters = config
        .sources
        .iter()
        .map(|s| rules.filter_for_source(&s.name))
        .collect();
    let mut engine = Engine::new(
        rules.clone(),
        filters,
        config.allowlist.clone(),
        config.max_line_bytes,
    );

    let specs = config
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| WatchSpec {
            source: i,
            pattern: s.path.clone(),
            start_at: s.start_at,
        })
        .collect();
    let options = TailerOptions {
        max_line_bytes: config.max_line_bytes,
        ..TailerOptions::default()
    };
    let mut tailer = Tailer::new(specs, options, &Checkpoints::default());

    let (chunk_tx, mut chunk_rx) = mpsc::channel::<Chunk>(CHUNK_QUEUE);
    let (decision_tx, decision_rx) = mpsc::unbounded_channel::<Decision>();

    let alerter = Alerter::spawn(
        config.alerts.clone(),
        config.host.clone(),
        shutdown.clone(),
        &tracker,
    );
    tracker.spawn(writer(
        config.clone(),
        alerter,
        decision_rx,
        shutdown.clone(),
    ));

    // Position every source before saying ready, so that "ready" means
    // "lines appended from now on are counted".
    let mut first = Vec::new();
    tailer
        .poll_once(&mut |c| first.push(c))
        .map_err(DaemonError::Tailer)?;
    for chunk in first {
        process(&mut engine, &chunk, &decision_tx);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tailer_thread = {
        let stop = stop.clone();
        let tx = chunk_tx.clone();
        std::thread::Builder::new()
            .name("authwatch-tailer".into())
            .spawn(move || tailer.run(move |chunk| tx.blocking_send(chunk).is_ok(), stop))
            .map_err(DaemonError::Tailer)?
    };
    drop(chunk_tx);

    tracing::info!(
        rules = rules.rules().len(),
        sources = config.sources.len(),
        alerts = config.alerts.len(),
        "ready"
    );
    ready();

    loop {
        tokio::select! {
            biased;
            chunk = chunk_rx.recv() => match chunk {
                Some(chunk) => process(&mut engine, &chunk, &decision_tx),
                None => break,
            },
            () = shutdown.cancelled() => break,
        }
    }

    tracing::info!("stopping");
    stop.store(true, Ordering::Relaxed);
    // Lines already read are still counted: their blocks must not be lost.
    chunk_rx.close();
    while let Some(chunk) = chunk_rx.recv().await {
        process(&mut engine, &chunk, &decision_tx);
    }
    drop(decision_tx);
    let joined = tokio::task::spawn_blocking(move || tailer_thread.join()).await;
    tracker.close();
    tracker.wait().await;
    match joined {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(DaemonError::Tailer(e)),
        _ => Err(DaemonError::TailerPanic),
    }
}

fn process(engine: &mut Engine, chunk: &Chunk, decisions: &mpsc::UnboundedSender<Decision>) {
    let read_time = chunk
        .read_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Timestamp::from_millis(d.as_millis() as i64))
        .unwrap_or_else(|_| Timestamp::now());
    // Year-less syslog times are placed relative to when they were read.
    engine.set_reference(read_time);
    engine.lines(chunk.source, &chunk.data, read_time, &mut |d| {
        // The writer only goes away at shutdown, after this task.
        let _ = decisions.send(d);
    });
}

/// Turns a decision into the record written to Redis and sent as alert.
pub fn record(d: &Decision, host: &str, now: Timestamp) -> BlockRecord {
    BlockRecord {
        ip: d.subject.to_string(),
        rule: d.rule.to_string(),
        count: d.count,
        window_secs: d.window.as_secs(),
        first_seen: d.first_seen,
        last_seen: d.last_seen,
        blocked_at: now,
        expires_at: d.expires_at(),
        host: host.to_owned(),
        reason: format!(
            "{} failures of rule {} within {}",
            d.count,
            d.rule,
            crate::duration::format(d.window)
        ),
    }
}

/// Writes decisions to Redis, in order, retrying while Redis is away, and
/// alerts on every new block.
async fn writer(
    config: Config,
    alerter: Alerter,
    mut rx: mpsc::UnboundedReceiver<Decision>,
    shutdown: CancellationToken,
) {
    let mut pending: VecDeque<Decision> = VecDeque::new();
    let mut blocklist: Option<Blocklist> = None;
    let mut backoff = Duration::from_millis(200);
    let mut open = true;
    loop {
        if pending.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(d) => pending.push_back(d),
                None => open = false,
            }
            continue;
        }
        while let Ok(d) = rx.try_recv() {
            pending.push_back(d);
        }
        if blocklist.is_none() {
            match Blocklist::connect(&config.redis.url, &config.redis.key_prefix).await {
                Ok(b) => {
                    tracing::info!(url = %crate::sink::blocklist::redact_url(&config.redis.url), "connected to Redis");
                    blocklist = Some(b);
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::warn!(error = %e, pending = pending.len(), "Redis unreachable; blocks are held and retried");
                    if !wait_or_give_up(&shutdown, &mut backoff, &pending).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let Some(bl) = blocklist.as_ref() else {
            continue;
        };
        let Some(d) = pending.front() else { continue };
        let now = Timestamp::now();
        let rec = record(d, &config.host, now);
        match bl.write(&rec, now).await {
            Ok(outcome) => {
                match outcome {
                    WriteOutcome::New => {
                        tracing::warn!(ip = %rec.ip, rule = %rec.rule, count = rec.count, expires_at = %rec.expires_at, "blocked");
                        alerter.notify(&rec);
                    }
                    WriteOutcome::Extended => {
                        tracing::info!(ip = %rec.ip, rule = %rec.rule, expires_at = %rec.expires_at, "block extended")
                    }
                    WriteOutcome::Unchanged => {
                        tracing::debug!(ip = %rec.ip, rule = %rec.rule, "already blocked for longer")
                    }
                    WriteOutcome::Expired => {
                        tracing::info!(ip = %rec.ip, rule = %rec.rule, expires_at = %rec.expires_at, "block decided for a past attack has already expired; not written")
                    }
                }
                pending.pop_front();
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                tracing::warn!(error = %e, pending = pending.len(), "cannot write block to Redis; retrying");
                if !wait_or_give_up(&shutdown, &mut backoff, &pending).await {
                    return;
                }
            }
        }
    }
}

/// Waits out the backoff. At shutdown, blocks that still cannot be written
/// are reported one by one rather than dropped silently.
async fn wait_or_give_up(
    shutdown: &CancellationToken,
    backoff: &mut Duration,
    pending: &VecDeque<Decision>,
) -> bool {
    tokio::select! {
        () = tokio::time::sleep(*backoff) => {
            *backoff = (*backoff * 2).min(Duration::from_secs(10));
            true
        }
        () = shutdown.cancelled() => {
            for d in pending {
                tracing::error!(ip = %d.subject, rule = %d.rule, "shutting down with Redis unreachable: block not written");
            }
            false
        }
    }
}
