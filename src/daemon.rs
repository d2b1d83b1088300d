//! The daemon: wiring of tasks and channels, progress, signals, shutdown.
//!
//! ```text
//!  tailer thread ──Chunk──▶ engine task ──Entry──▶ writer task ──▶ Redis
//!  (blocking reads,          (rules + detector,      (from the         └─▶ alerts
//!   inotify wake-ups)         outbox append,          outbox)
//!                             checkpoints)
//! ```
//!
//! The tailer reads on a dedicated thread because file reads block; the
//! engine owns every window, so the per-line path takes no lock; the writer
//! is the only task that waits on Redis, so a slow or absent Redis never
//! stalls detection.
//!
//! # Never lose, never double-count
//!
//! * A decision is appended to the [`Outbox`] before it goes to Redis, and
//!   fsynced before any saved checkpoint counts the line that caused it as
//!   processed. A SIGKILL at any moment therefore loses no block: the
//!   outbox is replayed at start, and lines not yet counted are read again.
//! * Each file's checkpoint holds two offsets. `done` is how far lines are
//!   processed with everything they caused durable. `offset`, where reading
//!   resumes, lags behind it by the longest window (plus the life of an
//!   sshd connection), so that after any restart the lines still inside a
//!   live window are read again to rebuild the windows exactly: 49 failures
//!   before a crash and 1 after still block. Lines before `done` rebuild
//!   windows only; the decisions they reproduce are recognised by the
//!   outbox and cause no second block or alert.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{ApiContext, ControlRequest};
use crate::config::Config;
use crate::detector::Decision;
use crate::engine::Engine;
use crate::rules::RuleSet;
use crate::sink::alert::Alerter;
use crate::sink::blocklist::{Blocklist, WriteOutcome};
use crate::sink::outbox::{Durable, Entry, Outbox, OutboxError};
use crate::sink::BlockRecord;
use crate::source::checkpoint::{unix_now, Checkpointer, Checkpoints};
use crate::source::fingerprint::FileKey;
use crate::source::journald::{JournalLine, JournalReader, JournalSpec};
use crate::source::tailer::{Chunk, SourceStats, Tailer, TailerOptions, WatchSpec};
use crate::time::Timestamp;

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load checkpoints: {0}")]
    Checkpoints(#[from] crate::source::checkpoint::CheckpointError),
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("cannot start the file tailer: {0}")]
    Tailer(#[source] std::io::Error),
    #[error("the tailer thread panicked")]
    TailerPanic,
    #[error("cannot start the checkpoint saver: {0}")]
    Saver(#[source] std::io::Error),
}

/// Chunks in flight between the tailer and the engine: enough to absorb a
/// burst, small enough that memory stays flat when the engine lags.
const CHUNK_QUEUE: usize = 64;

/// How often progress is written to the checkpoint file. Progress between
/// two saves is not lost by a crash, only read again.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How long an sshd connection can correlate lines (LoginGraceTime is 2
/// minutes by default): the checkpoint lag covers it too.
const SESSION_LAG: Duration = Duration::from_secs(180);

/// What the writer shares with status and health reports.
#[derive(Debug, Default)]
pub struct WriterHealth {
    /// Since when Redis has been unreachable, if it is.
    pub redis_down_since: Option<Timestamp>,
    pub last_error: Option<String>,
    pub queue_depth: usize,
}

/// How far each followed file is processed, and which of its chunks hold
/// failures still inside a live window.
struct FileProgress {
    key: FileKey,
    path: Arc<Path>,
    /// Lines before this offset were processed before a restart: they only
    /// rebuild windows.
    replay_until: u64,
    done: u64,
    /// (start offset, newest failure time) of chunks with failures, oldest
    /// first.
    hits: VecDeque<(u64, Timestamp)>,
}

impl FileProgress {
    /// Where reading must resume to rebuild every window live at `now`.
    fn resume(&mut self, now: Timestamp, lag: Duration) -> u64 {
        let horizon = now.saturating_sub(lag);
        while self.hits.front().is_some_and(|&(_, t)| t < horizon) {
            self.hits.pop_front();
        }
        self.hits
            .front()
            .map_or(self.done, |&(start, _)| start.min(self.done))
    }
}

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

    create_private_dir(&config.state_dir)?;
    let checkpointer = Checkpointer::new(config.state_dir.join("checkpoints.json"));
    let checkpoints = checkpointer.load()?;
    let outbox = Outbox::open(&config.state_dir)?;
    let backlog = outbox.unsettled();
    if !backlog.is_empty() {
        tracing::info!(
            pending = backlog.len(),
            "resuming blocks decided before the last stop"
        );
    }
    let outbox = Arc::new(Mutex::new(outbox));

    let lag = rules
        .rules()
        .iter()
        .map(|r| r.window)
        .max()
        .unwrap_or_default()
        + SESSION_LAG;
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
    )
    .with_detector_limits(crate::detector::DetectorLimits {
        max_keys: config.max_tracked_keys,
    });

    let specs = config
        .sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.journal.is_none())
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
    let mut tailer = Tailer::new(specs, options, &checkpoints);

    let (chunk_tx, mut chunk_rx) = mpsc::channel::<Chunk>(CHUNK_QUEUE);
    let (entry_tx, entry_rx) = mpsc::unbounded_channel::<Vec<Entry>>();
    let health = Arc::new(Mutex::new(WriterHealth::default()));

    // The alert tasks stop after the writer, not with everything else: the
    // writer may still write (and alert) blocks decided just before the stop.
    let alerts_done = CancellationToken::new();
    let alerter = Alerter::spawn(
        config.alerts.clone(),
        config.host.clone(),
        alerts_done.clone(),
        &tracker,
    );
    let alert_stats = alerter.stats();
    let metrics = crate::api::install_metrics();
    let (control_tx, mut control_rx) = mpsc::channel::<ControlRequest>(16);
    tracker.spawn(serve_api(
        config.clone(),
        control_tx,
        metrics,
        shutdown.clone(),
    ));
    {
        let writer = writer(
            config.clone(),
            rules.clone(),
            alerter,
            outbox.clone(),
            backlog,
            entry_rx,
            health.clone(),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            writer.await;
            alerts_done.cancel();
        });
    }

    let saver = Saver::spawn(checkpointer.clone()).map_err(DaemonError::Saver)?;
    let mut progress = Progress {
        files: HashMap::new(),
        previous: checkpoints,
        checkpointer,
        lag,
        dirty: false,
    };
    let mut ctx = Ctx {
        host: config.host.clone(),
        outbox: outbox.clone(),
        entries: entry_tx,
        unsynced: None,
    };

    // Position every source before saying ready, so that "ready" means
    // "lines appended from now on are counted".
    let source_stats: Vec<Arc<SourceStats>> =
        (0..config.sources.len()).map(|i| tailer.stats(i)).collect();
    let started = Timestamp::now();
    let mut first = Vec::new();
    tailer
        .poll_once(&mut |c| first.push(c))
        .map_err(DaemonError::Tailer)?;
    for chunk in first {
        process(&mut engine, &mut progress, &mut ctx, chunk)?;
    }
    ctx.sync_decisions()?;
    // Every file known at "ready" has a checkpoint before anything else can
    // happen: a SIGKILL a moment later must not make a restart skip to the
    // end of files whose lines were never read.
    progress.save(engine.newest_hit());

    let stop = Arc::new(AtomicBool::new(false));
    let (journal_tx, mut journal_rx) = mpsc::channel::<JournalLine>(1024);
    let mut journals = JournalProgress::load(&config.state_dir);
    let mut journal_threads = Vec::new();
    for (i, s) in config.sources.iter().enumerate() {
        let Some(j) = &s.journal else { continue };
        let state = journals.sources.entry(s.name.clone()).or_default();
        state.replaying = state.done.is_some() && state.resume != state.done;
        let spec = JournalSpec {
            source: i,
            units: j.units.clone(),
            identifiers: j.identifiers.clone(),
            directory: j.directory.clone(),
            files: Vec::new(),
            start_at: s.start_at,
            cursor: state.resume.clone().or_else(|| state.done.clone()),
            follow: true,
        };
        let reader = match JournalReader::new(spec) {
            Ok(r) => r.with_max_line_bytes(config.max_line_bytes),
            Err(e) => {
                tracing::error!(source = %s.name, error = %e, "journal source not started");
                continue;
            }
        };
        let (tx, stop) = (journal_tx.clone(), stop.clone());
        let name = s.name.clone();
        journal_threads.push(
            std::thread::Builder::new()
                .name(format!("authwatch-journal-{i}"))
                .spawn(move || {
                    if let Err(e) = reader.run(move |line| tx.blocking_send(line).is_ok(), stop) {
                        tracing::error!(source = %name, error = %e, "journal source stopped");
                    }
                }),
        );
    }
    drop(journal_tx);
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
    crate::systemd::ready(&format!(
        "watching {} sources with {} rules",
        config.sources.len(),
        rules.rules().len()
    ));
    ready();

    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            biased;
            chunk = chunk_rx.recv() => match chunk {
                Some(chunk) => if let Err(e) = process(&mut engine, &mut progress, &mut ctx, chunk) {
                    break Err(e);
                },
                None => break Ok(()),
            },
            Some(line) = journal_rx.recv() => {
                if let Err(e) = process_journal(&mut engine, &mut journals, &config, &mut ctx, line) {
                    break Err(e);
                }
            }
            _ = tick.tick() => {
                match saver.take_failure() {
                    Some(SaveFailure::Decisions(e)) => break Err(e.into()),
                    Some(SaveFailure::Checkpoints) => progress.dirty = true,
                    None => {}
                }
                // The ack gate: no checkpoint or cursor saved may cover a
                // line whose decision is not on disk. Journal cursors are
                // saved here, so their decisions are synced here first;
                // file checkpoints go to the saver with the fsync owed.
                if journals.dirty {
                    if let Err(e) = ctx.sync_decisions() {
                        break Err(e);
                    }
                }
                if let Some(checkpoints) = progress.snapshot(engine.newest_hit()) {
                    if let Err(decisions) = saver.save(ctx.unsynced.take(), checkpoints) {
                        // The saver is behind: this tick's progress waits
                        // for the next one.
                        ctx.unsynced = decisions;
                        progress.dirty = true;
                    }
                }
                journals.save(engine.newest_hit(), lag);
                // The loop turning is what the watchdog vouches for.
                crate::systemd::watchdog_ping();
                crate::systemd::status(&summary(&engine, &health));
                publish_metrics(&config, &engine, &source_stats, &health, &alert_stats);
            }
            Some(req) = control_rx.recv() => match req {
                ControlRequest::Status { reply } => {
                    let _ = reply.send(status_json(&config, &engine, &source_stats, &health, started));
                }
                ControlRequest::Forget { subject, reply } => {
                    match subject.parse::<crate::ip::Subject>() {
                        Ok(s) => engine.detector_mut().reset_subject(&s),
                        Err(_) => tracing::warn!(subject = %subject, "forget: not an address or network"),
                    }
                    let _ = reply.send(());
                }
            },
            () = shutdown.cancelled() => break Ok(()),
        }
    };

    tracing::info!("stopping");
    crate::systemd::stopping();
    stop.store(true, Ordering::Relaxed);
    // The saves still queued finish before the last one below.
    let failure = tokio::task::spawn_blocking(move || saver.finish())
        .await
        .unwrap_or(None);
    match failure {
        Some(SaveFailure::Decisions(e)) => return Err(e.into()),
        Some(SaveFailure::Checkpoints) => progress.dirty = true,
        None => {}
    }
    // Lines already read are still counted: their blocks must not be lost.
    chunk_rx.close();
    while let Some(chunk) = chunk_rx.recv().await {
        process(&mut engine, &mut progress, &mut ctx, chunk)?;
    }
    ctx.sync_decisions()?;
    progress.save(engine.newest_hit());
    journal_rx.close();
    while let Some(line) = journal_rx.recv().await {
        process_journal(&mut engine, &mut journals, &config, &mut ctx, line)?;
    }
    ctx.sync_decisions()?;
    journals.save(engine.newest_hit(), lag);
    drop(ctx);
    let joined = tokio::task::spawn_blocking(move || tailer_thread.join()).await;
    tracker.close();
    tracker.wait().await;
    result?;
    match joined {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(DaemonError::Tailer(e)),
        _ => Err(DaemonError::TailerPanic),
    }
}

/// How far each journald source is processed, by cursor: `done` is the
/// last entry processed with everything it caused durable; `resume` lags
/// behind it like a file's `offset`, so that a restart rebuilds the windows.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct JournalState {
    resume: Option<String>,
    done: Option<String>,
    /// Event time of `done`: if that entry is never met again (the journal
    /// was vacuumed), rebuilding stops at the first later entry.
    done_at: Option<Timestamp>,
    #[serde(skip)]
    replaying: bool,
    #[serde(skip)]
    hits: VecDeque<(Option<String>, Timestamp)>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct JournalProgress {
    version: u32,
    sources: std::collections::BTreeMap<String, JournalState>,
    #[serde(skip)]
    path: PathBuf,
    #[serde(skip)]
    dirty: bool,
}

impl JournalProgress {
    fn load(state_dir: &Path) -> JournalProgress {
        let path = state_dir.join("journal.json");
        let mut p: JournalProgress = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(path = %path.display(), error = %e, "journal cursors unreadable; journal sources start afresh");
                JournalProgress::default()
            }),
            Err(_) => JournalProgress::default(),
        };
        p.version = 1;
        p.path = path;
        p
    }

    fn save(&mut self, newest: Option<Timestamp>, lag: Duration) {
        if !self.dirty {
            return;
        }
        let horizon = newest.unwrap_or_else(Timestamp::now).saturating_sub(lag);
        for st in self.sources.values_mut() {
            while st.hits.front().is_some_and(|&(_, t)| t < horizon) {
                st.hits.pop_front();
            }
            st.resume = match st.hits.front() {
                Some((before, _)) => before.clone(),
                None => st.done.clone(),
            };
        }
        match serde_json::to_vec_pretty(self) {
            Ok(bytes) => match crate::sink::outbox::write_atomically(&self.path, &bytes) {
                Ok(()) => self.dirty = false,
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot save journal cursors; retrying")
                }
            },
            Err(e) => tracing::error!(error = %e, "cannot encode journal cursors"),
        }
    }
}

fn process_journal(
    engine: &mut Engine,
    journals: &mut JournalProgress,
    config: &Config,
    ctx: &mut Ctx,
    line: JournalLine,
) -> Result<(), DaemonError> {
    let Some(name) = config.sources.get(line.source).map(|s| s.name.clone()) else {
        return Ok(());
    };
    let st = journals.sources.entry(name).or_default();
    let now = Timestamp::now();
    engine.set_reference(now);
    if st.replaying && st.done_at.is_some_and(|t| line.realtime > t) {
        st.replaying = false;
    }
    let matched_before: u64 = engine.stats().matched.iter().sum();
    let mut decisions = Vec::new();
    if st.replaying {
        engine.line(line.source, &line.line, line.realtime, &mut |_| {});
        if st.done.as_deref() == Some(line.cursor.as_str()) {
            st.replaying = false;
        }
    } else {
        engine.line(line.source, &line.line, line.realtime, &mut |d| {
            decisions.push(d)
        });
    }
    if engine.stats().matched.iter().sum::<u64>() > matched_before {
        st.hits.push_back((
            st.done.clone(),
            engine.newest_hit().unwrap_or(line.realtime),
        ));
    }
    if !decisions.is_empty() {
        let records: Vec<BlockRecord> = decisions
            .iter()
            .map(|d| shadowed(engine, record(d, &ctx.host, now)))
            .collect();
        hand_over(ctx, records)?;
    }
    st.done = Some(line.cursor);
    st.done_at = Some(line.realtime);
    journals.dirty = true;
    Ok(())
}

/// Records decisions in the outbox and hands them to the writer at once;
/// their fsync is owed until [`Ctx::sync_decisions`], which runs before any
/// checkpoint is saved (the ack gate).
///
/// Neither the Redis write nor the next lines wait for the disk. An fsync
/// costs 0.4–3 ms on an ordinary virtual disk and tens of ms in its tail
/// when other processes write, and waiting for it here was most of the
/// time from a failure line to its block (see `BENCHMARKS.md`). What this
/// gives up is narrow. The decisions are in the file (the page cache) before
/// the writer sees them, so a killed process loses nothing, as before; and
/// no saved checkpoint covers their lines before they are on disk, so after
/// a power loss or kernel crash the lines are read again and decide the
/// same blocks. Only an alert can be lost then: one whose block Redis took
/// (it reports it as existing the second time) but which had not gone out
/// before the machine went down. No block is lost.
fn hand_over(ctx: &mut Ctx, records: Vec<BlockRecord>) -> Result<(), DaemonError> {
    let (added, durable) = lock(&ctx.outbox).add_unsynced(records)?;
    if !added.is_empty() {
        // The writer only goes away at shutdown, after this task.
        let _ = ctx.entries.send(added);
        // One fdatasync flushes everything written to the file before it,
        // and a compaction fsyncs its new file whole: waiting on the latest
        // covers the earlier ones.
        ctx.unsynced = Some(durable);
    }
    Ok(())
}

/// What `process` needs besides the engine and the progress.
struct Ctx {
    host: String,
    outbox: Arc<Mutex<Outbox>>,
    entries: mpsc::UnboundedSender<Vec<Entry>>,
    /// The fsync owed for the decisions handed over since the last
    /// [`Ctx::sync_decisions`].
    unsynced: Option<Durable>,
}

impl Ctx {
    /// Waits until every decision handed over is on disk. Call it before
    /// saving any checkpoint or journal cursor.
    fn sync_decisions(&mut self) -> Result<(), DaemonError> {
        match self.unsynced.take() {
            Some(d) => Ok(d.wait()?),
            None => Ok(()),
        }
    }
}

struct Progress {
    files: HashMap<(u64, u64), FileProgress>,
    /// The checkpoints loaded at start: where lines of each file were
    /// already processed.
    previous: Checkpoints,
    checkpointer: Checkpointer,
    lag: Duration,
    dirty: bool,
}

impl Progress {
    fn file(&mut self, chunk: &Chunk) -> &mut FileProgress {
        let previous = &self.previous;
        let p = self
            .files
            .entry((chunk.file.dev, chunk.file.ino))
            .or_insert_with(|| {
                let replay_until = previous
                    .get(chunk.file.dev, chunk.file.ino)
                    .filter(|(key, _)| {
                        key.fingerprint.hash == chunk.file.fingerprint.hash
                            || key.fingerprint.len < chunk.file.fingerprint.len
                    })
                    .map_or(0, |(_, e)| e.done());
                FileProgress {
                    key: chunk.file,
                    path: chunk.path.clone(),
                    replay_until,
                    done: chunk.start_offset,
                    hits: VecDeque::new(),
                }
            });
        p.key = chunk.file;
        p.path = chunk.path.clone();
        p
    }

    /// Writes every file's resume and done offsets, atomically, here and
    /// now (at start and at the stop; in between, the [`Saver`] does). A
    /// failure is logged and retried at the next save: progress is only read
    /// again.
    fn save(&mut self, newest: Option<Timestamp>) {
        let Some(cps) = self.snapshot(newest) else {
            return;
        };
        if let Err(e) = self.checkpointer.save(&cps) {
            tracing::error!(error = %e, "cannot save checkpoints; retrying");
            self.dirty = true;
        }
    }

    /// The checkpoints to save, if anything changed since the last save
    /// (which it then counts as done: a failed save sets `dirty` again).
    fn snapshot(&mut self, newest: Option<Timestamp>) -> Option<Checkpoints> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let now = newest.unwrap_or_else(Timestamp::now);
        let mut cps = Checkpoints::new();
        let secs = unix_now();
        for p in self.files.values_mut() {
            let resume = p.resume(now, self.lag);
            cps.record_progress(&p.key, resume, Some(p.done), &p.path, secs);
        }
        // Keep what we knew of files not seen since the start (rotated
        // away, or not yet reached): pruned after a week by the checkpointer.
        for (key, e) in self.previous.iter() {
            if !self.files.contains_key(&(key.dev, key.ino)) {
                cps.record_progress(key, e.offset, e.done, &e.path, e.updated);
            }
        }
        Some(cps)
    }
}

/// Saves checkpoints on a thread of its own, so that the engine task never
/// waits for the disk between two lines: the fsync owed for the decisions
/// handed over since the last save (the ack gate: first), then the
/// checkpoint file's own (temp file, rename, directory). Their tail on a
/// busy disk, tens to hundreds of ms once a second, was the tail of the
/// time from a failure line to its block (see `BENCHMARKS.md`).
///
/// Saves run one at a time, in order. At most one waits behind the running
/// one; a tick that finds that place taken leaves its progress to the next.
struct Saver {
    jobs: Option<std::sync::mpsc::SyncSender<(Option<Durable>, Checkpoints)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    failure: Arc<Mutex<Option<SaveFailure>>>,
}

/// Why a save on the [`Saver`]'s thread did not happen.
enum SaveFailure {
    /// The checkpoint file could not be written: saved again next tick.
    Checkpoints,
    /// The decisions' fsync failed: their lines are not counted as done,
    /// and the daemon stops, as it did when this fsync was inline.
    Decisions(OutboxError),
}

impl Saver {
    fn spawn(checkpointer: Checkpointer) -> std::io::Result<Saver> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Option<Durable>, Checkpoints)>(1);
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let thread = std::thread::Builder::new()
            .name("authwatch-saver".into())
            .spawn(move || {
                for (decisions, checkpoints) in rx {
                    if let Some(d) = decisions {
                        if let Err(e) = d.wait() {
                            tracing::error!(error = %e, "cannot make block decisions durable");
                            *lock(&failed) = Some(SaveFailure::Decisions(e));
                            // Not the checkpoints: they would count the
                            // lines of these decisions as done.
                            continue;
                        }
                    }
                    if let Err(e) = checkpointer.save(&checkpoints) {
                        tracing::error!(error = %e, "cannot save checkpoints; retrying");
                        lock(&failed).get_or_insert(SaveFailure::Checkpoints);
                    }
                }
            })?;
        Ok(Saver {
            jobs: Some(tx),
            thread: Some(thread),
            failure,
        })
    }

    /// Queues a save; gives `decisions` back if the saver is behind.
    fn save(
        &self,
        decisions: Option<Durable>,
        checkpoints: Checkpoints,
    ) -> Result<(), Option<Durable>> {
        let Some(jobs) = &self.jobs else {
            return Err(decisions);
        };
        jobs.try_send((decisions, checkpoints))
            .map_err(|e| match e {
                std::sync::mpsc::TrySendError::Full((d, _))
                | std::sync::mpsc::TrySendError::Disconnected((d, _)) => d,
            })
    }

    fn take_failure(&self) -> Option<SaveFailure> {
        lock(&self.failure).take()
    }

    /// Waits for the queued saves; returns how the last failing one failed.
    fn finish(mut self) -> Option<SaveFailure> {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the checkpoint saver panicked");
                return Some(SaveFailure::Checkpoints);
            }
        }
        self.take_failure()
    }
}

fn process(
    engine: &mut Engine,
    progress: &mut Progress,
    ctx: &mut Ctx,
    chunk: Chunk,
) -> Result<(), DaemonError> {
    let read_time = chunk
        .read_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Timestamp::from_millis(d.as_millis() as i64))
        .unwrap_or_else(|_| Timestamp::now());
    // Year-less syslog times are placed relative to when they were read.
    engine.set_reference(read_time);
    let file = progress.file(&chunk);
    if chunk.start_offset < file.done {
        // Truncated (copytruncate) or rewritten: what follows is new
        // content, whatever offsets the lines had before.
        file.replay_until = 0;
        file.hits.clear();
    }
    let matched_before: u64 = engine.stats().matched.iter().sum();
    let mut decisions: Vec<Decision> = Vec::new();
    if chunk.end_offset <= file.replay_until || chunk.data.is_empty() {
        // Read again only to rebuild windows.
        engine.lines(chunk.source, &chunk.data, read_time, &mut |_| {});
    } else {
        // The part of the chunk before `replay_until` was processed before
        // the restart; split it off at a line boundary.
        let skip = file.replay_until.saturating_sub(chunk.start_offset) as usize;
        let cut = if skip == 0 {
            0
        } else {
            chunk.data[..skip.min(chunk.data.len())]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
        };
        engine.lines(chunk.source, &chunk.data[..cut], read_time, &mut |_| {});
        engine.lines(chunk.source, &chunk.data[cut..], read_time, &mut |d| {
            decisions.push(d)
        });
    }
    let file = progress.file(&chunk);
    let matched_after: u64 = engine.stats().matched.iter().sum();
    if matched_after > matched_before {
        let newest = engine.newest_hit().unwrap_or(read_time);
        file.hits.push_back((chunk.start_offset, newest));
    }
    if !decisions.is_empty() {
        let now = Timestamp::now();
        let records: Vec<BlockRecord> = decisions
            .iter()
            .map(|d| shadowed(engine, record(d, &ctx.host, now)))
            .collect();
        // On disk before a checkpoint counts these lines as processed: the
        // ack gate (see `hand_over`).
        hand_over(ctx, records)?;
    }
    file.done = chunk.end_offset;
    progress.dirty = true;
    Ok(())
}

/// Serves the API once Redis can be reached (the API reads blocks from
/// it); until then, retries quietly: detection does not wait for it.
async fn serve_api(
    config: Config,
    control: mpsc::Sender<ControlRequest>,
    metrics: Option<crate::api::PrometheusHandle>,
    shutdown: CancellationToken,
) {
    let blocklist = loop {
        match Blocklist::connect(&config.redis.url, &config.redis.key_prefix).await {
            Ok(b) => break b,
            Err(e) => {
                tracing::debug!(error = %e, "API waits for Redis");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    };
    let ctx = ApiContext {
        blocklist,
        control,
        metrics,
        host: config.host.clone(),
    };
    if let Err(e) = crate::api::serve(&config.api, ctx, shutdown).await {
        tracing::error!(error = %e, socket = %config.api.socket.display(), "the API could not be served");
    }
}

fn health_line(h: &WriterHealth) -> String {
    match h.redis_down_since {
        Some(t) => format!("degraded: redis unreachable since {t}"),
        None => "ok".to_owned(),
    }
}

/// The answer to `GET /v1/status`.
fn status_json(
    config: &Config,
    engine: &Engine,
    sources: &[Arc<SourceStats>],
    health: &Mutex<WriterHealth>,
    started: Timestamp,
) -> serde_json::Value {
    let h = lock(health);
    let now = Timestamp::now();
    let srcs: Vec<serde_json::Value> = config
        .sources
        .iter()
        .zip(sources)
        .map(|(s, st)| {
            serde_json::json!({
                "name": s.name,
                "path": s.path,
                "files": st.files.load(Ordering::Relaxed),
                "lines": st.lines.load(Ordering::Relaxed),
                "bytes": st.bytes.load(Ordering::Relaxed),
                "rotations": st.rotations.load(Ordering::Relaxed),
                "truncations": st.truncations.load(Ordering::Relaxed),
                "lines_cut": st.lines_cut.load(Ordering::Relaxed),
                "lag_bytes": st.lag_bytes.load(Ordering::Relaxed),
            })
        })
        .collect();
    let rules: Vec<serde_json::Value> = engine
        .rules()
        .rules()
        .iter()
        .zip(&engine.stats().matched)
        .map(|(r, n)| {
            serde_json::json!({
                "id": &*r.id,
                "threshold": r.threshold,
                "window_secs": r.window.as_secs(),
                "block_for_secs": r.block_for.as_secs(),
                "matches": n,
            })
        })
        .collect();
    let s = engine.stats();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": started,
        "uptime_secs": now.since(started).as_secs(),
        "host": config.host,
        "health": health_line(&h),
        "sources": srcs,
        "rules": rules,
        "redis": {
            "url": crate::sink::blocklist::redact_url(&config.redis.url),
            "state": if h.redis_down_since.is_some() { "down" } else { "up" },
            "since": h.redis_down_since,
            "last_error": h.last_error,
        },
        "queues": { "decisions": h.queue_depth },
        "lines": s.lines,
        "lines_cut": s.lines_cut,
        "allowlisted": s.allowlisted,
        // Lines skipped, and why (none of them crashes or stalls anything).
        "malformed_json": engine.misses().malformed,
        "ambiguous_json": engine.misses().ambiguous,
        // Lines from a trusted proxy whose X-Forwarded-For named no client.
        "proxied_without_client": engine.misses().unresolved,
        // Hits counted at their read time: their time was unreadable.
        "unreadable_times": engine.misses().unreadable_time,
        "decisions": s.decisions,
        "tracked_keys": engine.detector().tracked_keys(),
        "evictions": engine.detector().evictions(),
        "last_reload": crate::reload::last(),
    })
}

/// Sets the Prometheus counters and gauges from the daemon's own counters.
fn publish_metrics(
    config: &Config,
    engine: &Engine,
    sources: &[Arc<SourceStats>],
    health: &Mutex<WriterHealth>,
    alerts: &crate::sink::alert::AlertStats,
) {
    use crate::api::metrics as m;
    for (s, st) in config.sources.iter().zip(sources) {
        metrics::counter!(m::LINES_READ, "source" => s.name.clone())
            .absolute(st.lines.load(Ordering::Relaxed));
        metrics::counter!(m::BYTES_READ, "source" => s.name.clone())
            .absolute(st.bytes.load(Ordering::Relaxed));
    }
    for (r, n) in engine.rules().rules().iter().zip(&engine.stats().matched) {
        metrics::counter!(m::RULE_MATCHES, "rule" => r.id.to_string()).absolute(*n);
    }
    let misses = engine.misses();
    for (reason, n) in [
        ("malformed_json", misses.malformed),
        ("ambiguous_json", misses.ambiguous),
        ("proxied_without_client", misses.unresolved),
    ] {
        metrics::counter!(m::LINES_SKIPPED, "reason" => reason).absolute(n);
    }
    metrics::counter!(m::UNREADABLE_TIMES).absolute(misses.unreadable_time);
    metrics::gauge!(m::TRACKED_KEYS).set(engine.detector().tracked_keys() as f64);
    metrics::counter!(m::EVICTIONS).absolute(engine.detector().evictions());
    metrics::gauge!(m::QUEUE_DEPTH, "queue" => "decisions").set(lock(health).queue_depth as f64);
    metrics::counter!(m::ALERTS_SENT, "kind" => "all")
        .absolute(alerts.sent.load(Ordering::Relaxed));
    metrics::counter!(m::ALERTS_RETRIED, "kind" => "all")
        .absolute(alerts.retried.load(Ordering::Relaxed));
    metrics::counter!(m::ALERTS_GIVEN_UP, "kind" => "all")
        .absolute(alerts.given_up.load(Ordering::Relaxed));
}

/// The one-line status for `systemctl status`.
fn summary(engine: &Engine, health: &Mutex<WriterHealth>) -> String {
    let s = engine.stats();
    let h = lock(health);
    let redis = match h.redis_down_since {
        Some(t) => format!("degraded: redis unreachable since {t}"),
        None => "redis ok".to_owned(),
    };
    format!(
        "{} lines, {} failures, {} blocks; {}; {} pending",
        s.lines,
        s.matched.iter().sum::<u64>(),
        s.decisions,
        redis,
        h.queue_depth
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock already ended the daemon's usefulness;
    // the data (the outbox's in-memory view) is still consistent per op.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn create_private_dir(dir: &Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(source) => Err(DaemonError::StateDir {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Marks the record of a shadow-mode rule as such.
fn shadowed(engine: &Engine, mut rec: BlockRecord) -> BlockRecord {
    rec.shadow = engine
        .rules()
        .rules()
        .iter()
        .any(|r| r.shadow && *r.id == *rec.rule);
    if rec.shadow {
        rec.reason = format!("shadow mode, not blocked: {}", rec.reason);
    }
    rec
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
        block_for_secs: d.block_for.as_secs(),
        offense: 0,
        shadow: false,
    }
}

/// Carries outbox entries to Redis, in order, retrying while Redis is
/// away, and alerts on every new block.
// Each argument is a distinct piece of the wiring (where to write, the
// rules' ladders, the queue, its channels, health and shutdown); bundling
// them would only move the list into a struct used once.
#[allow(clippy::too_many_arguments)]
async fn writer(
    config: Config,
    rules: Arc<RuleSet>,
    alerter: Alerter,
    outbox: Arc<Mutex<Outbox>>,
    backlog: Vec<Entry>,
    mut rx: mpsc::UnboundedReceiver<Vec<Entry>>,
    health: Arc<Mutex<WriterHealth>>,
    shutdown: CancellationToken,
) {
    // Decisions from before the last stop whose Redis write was not yet
    // recorded: if the write did happen, Redis now says "already there", and
    // whether it was alerted is unknown — alert (at least once).
    let recovered: std::collections::HashSet<u64> = backlog
        .iter()
        .filter(|e| e.written.is_none())
        .map(|e| e.id)
        .collect();
    let mut pending: VecDeque<Entry> = backlog.into();
    let mut blocklist: Option<Blocklist> = None;
    let mut backoff = Duration::from_millis(200);
    let mut open = true;
    let mut in_flight: Vec<(u64, std::sync::Weak<BlockRecord>)> = Vec::new();
    loop {
        lock(&health).queue_depth = pending.len();
        settle_alerts(&outbox, &mut in_flight);
        if pending.is_empty() {
            if !open && in_flight.is_empty() {
                return;
            }
            if in_flight.is_empty() {
                match rx.recv().await {
                    Some(batch) => pending.extend(batch),
                    None => open = false,
                }
            } else {
                // Look again shortly at alerts still being delivered.
                tokio::select! {
                    batch = rx.recv(), if open => match batch {
                        Some(batch) => pending.extend(batch),
                        None => open = false,
                    },
                    // At shutdown the alert tasks deliver or give up within
                    // their drain deadline, which settles these.
                    () = tokio::time::sleep(Duration::from_millis(2)) => {}
                }
            }
            continue;
        }
        while let Ok(batch) = rx.try_recv() {
            pending.extend(batch);
        }
        let Some(entry) = pending.front().cloned() else {
            continue;
        };
        let now = Timestamp::now();
        let result = match entry.written {
            Some(new) => Ok((new, entry.record.clone())),
            None if entry.record.ttl_secs(now) == 0 => {
                tracing::info!(ip = %entry.record.ip, rule = %entry.record.rule, expires_at = %entry.record.expires_at, "block decided for a past attack has already expired; not written");
                let _ = lock(&outbox).mark_expired(entry.id);
                metrics::counter!(crate::api::metrics::BLOCKS_EXPIRED).increment(1);
                pending.pop_front();
                continue;
            }
            None if entry.record.shadow => {
                tracing::warn!(ip = %entry.record.ip, rule = %entry.record.rule, count = entry.record.count, "would block (shadow mode): not written");
                Ok((true, entry.record.clone()))
            }
            None => {
                // The rule's ladder; a rule since removed has none.
                let ladder = rules
                    .rules()
                    .iter()
                    .find(|r| *r.id == *entry.record.rule)
                    .map_or(&[][..], |r| r.escalate.as_slice());
                write_block(&config, &mut blocklist, &entry.record, ladder, now)
                    .await
                    .map(|(new, written)| (new || recovered.contains(&entry.id), written))
            }
        };
        match result {
            Ok((new, written)) => {
                if entry.written.is_none() {
                    let latency = Timestamp::now().since(entry.record.blocked_at);
                    metrics::histogram!(crate::api::metrics::DETECTION_LATENCY)
                        .record(latency.as_secs_f64());
                    let outcome = if new { "new" } else { "existing" };
                    metrics::counter!(crate::api::metrics::BLOCKS_WRITTEN, "rule" => entry.record.rule.clone(), "outcome" => outcome).increment(1);
                }
                {
                    let mut h = lock(&health);
                    if h.redis_down_since.take().is_some() {
                        tracing::info!("Redis reachable again");
                    }
                }
                let mut ob = lock(&outbox);
                if entry.written.is_none() {
                    if let Err(e) = ob.mark_written_as(entry.id, new, Some(written.clone())) {
                        tracing::error!(error = %e, "cannot record progress in the outbox");
                    }
                }
                if new && !entry.alerted {
                    // Settled (and recorded so) once every destination is
                    // done with it; a crash before that alerts again.
                    in_flight.push((entry.id, alerter.notify(&written)));
                }
                pending.pop_front();
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                metrics::counter!(crate::api::metrics::REDIS_ERRORS, "op" => "write").increment(1);
                {
                    let mut h = lock(&health);
                    if h.redis_down_since.is_none() {
                        h.redis_down_since = Some(now);
                        tracing::warn!(error = %e, pending = pending.len(), "Redis unreachable; blocks are kept in the outbox and retried");
                    }
                    h.last_error = Some(e);
                }
                blocklist = None;
                tokio::select! {
                    () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(Duration::from_secs(5)),
                    () = shutdown.cancelled() => {
                        tracing::warn!(pending = pending.len(), "stopping with Redis unreachable: pending blocks stay in the outbox for the next start");
                        return;
                    }
                }
            }
        }
    }
}

/// Records in the outbox the alerts that every destination is done with.
fn settle_alerts(outbox: &Mutex<Outbox>, in_flight: &mut Vec<(u64, std::sync::Weak<BlockRecord>)>) {
    in_flight.retain(|(id, handle)| {
        if handle.strong_count() > 0 {
            return true;
        }
        if let Err(e) = lock(outbox).mark_alerted(*id) {
            tracing::error!(error = %e, "cannot record progress in the outbox");
        }
        false
    });
}

/// Writes one block as an offence, its duration from `ladder`; `Ok(true)`
/// if it is new (and must be alerted), with the record as written: alert
/// with that one, which carries the offence and the expiry used.
async fn write_block(
    config: &Config,
    blocklist: &mut Option<Blocklist>,
    rec: &BlockRecord,
    ladder: &[Duration],
    now: Timestamp,
) -> Result<(bool, BlockRecord), String> {
    if blocklist.is_none() {
        let b = Blocklist::connect(&config.redis.url, &config.redis.key_prefix)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(url = %crate::sink::blocklist::redact_url(&config.redis.url), "connected to Redis");
        *blocklist = Some(b);
    }
    let Some(bl) = blocklist.as_ref() else {
        return Err("no Redis connection".into());
    };
    let written = bl
        .write_offense(rec, ladder, now)
        .await
        .map_err(|e| e.to_string())?;
    let rec = &written.record;
    let new = match written.outcome {
        WriteOutcome::New => {
            tracing::warn!(ip = %rec.ip, rule = %rec.rule, count = rec.count, offense = rec.offense, expires_at = %rec.expires_at, "blocked");
            true
        }
        WriteOutcome::Extended => {
            tracing::info!(ip = %rec.ip, rule = %rec.rule, offense = rec.offense, expires_at = %rec.expires_at, "block extended");
            false
        }
        WriteOutcome::Unchanged => {
            tracing::debug!(ip = %rec.ip, rule = %rec.rule, "already blocked for longer");
            false
        }
        WriteOutcome::Expired => {
            tracing::info!(ip = %rec.ip, rule = %rec.rule, expires_at = %rec.expires_at, "block decided for a past attack has already expired; not written");
            false
        }
    };
    Ok((new, written.record))
}
