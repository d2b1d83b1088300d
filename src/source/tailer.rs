//! The file tailer: follows log files by path or glob, through rotation.
//!
//! We tail files ourselves rather than use linemux, which loses lines on
//! rotation (see `shared/DEPENDENCIES.md`); the shape follows Vector's
//! `file-source`.
//!
//! # How it works
//!
//! A [`Tailer`] holds one [`WatchSpec`] per configured pattern: a path, or a
//! glob in the file-name component only (`/var/log/myapi/*.log`; the
//! directory part is taken literally). Each pass ([`Tailer::poll_once`]):
//!
//! 1. *Discovers* what the pattern names now (the glob is re-evaluated every
//!    pass; symlinks are followed to their target).
//! 2. Matches what it found against the files it already follows **by
//!    identity** (device, inode), not by path: a followed file found under
//!    another name (`app.log` → `app.log.1` under `app.log*`) is the same file
//!    and is not read again. A followed file that is no longer found (renamed
//!    away, deleted, a symlink pointing elsewhere) is *away*: it stays open
//!    and is drained — read to its end, and again whenever it grows, since
//!    writers keep writing to the old inode until they reopen — until it has
//!    not grown for [`TailerOptions::rotate_wait`]; then it is closed.
//! 3. Reads every followed file to its current end, oldest first, so the
//!    rest of a rotated file comes out before the first lines of its
//!    successor. A file smaller than our offset, or whose first bytes no
//!    longer match its [`Fingerprint`](super::fingerprint::Fingerprint), was
//!    truncated (copytruncate) or rewritten: reading restarts at 0.
//! 4. Opens files seen for the first time. Where they start:
//!    * a matching checkpoint (device, inode *and* fingerprint) → its offset;
//!    * present at the spec's first pass → [`WatchSpec::start_at`], except
//!      that a file modified since the checkpoints of this pattern were last
//!      written starts at 0: it appeared while we were not running (typically
//!      the new file of a rotation during a restart);
//!    * found later (rotation, a new glob match, a file that was missing) → 0,
//!      otherwise its first lines would be lost.
//!
//!    At the first pass, files renamed away from the pattern while we were
//!    stopped are found under their rotated names and read first (see
//!    `SpecState::recover_rotated`): the file we were reading from its
//!    checkpoint, files created and rotated meanwhile from 0. At later
//!    passes, when the directory changed, so are files created and rotated
//!    away between two passes (`SpecState::recover_between_passes`).
//!
//! Output is [`Chunk`]s of whole lines, one per read of up to
//! [`TailerOptions::read_buf_bytes`]: no allocation per line. Lines end at
//! `\n` only; a partial last line is held back until its newline arrives,
//! and emitted with a `\n` added only when its file is closed after rotation.
//! Over-long lines are cut at [`TailerOptions::max_line_bytes`] and the rest
//! skipped, so memory stays bounded whatever is written.
//!
//! [`Tailer::run`] is the blocking loop for a dedicated thread: a pass, then
//! a wait for a filesystem event on the watched *directories* or for the poll
//! interval, whichever comes first.
//!
//! # Checkpointing
//!
//! The offsets that matter are those the consumer has *processed*, so the
//! tailer does not save them itself: the daemon records each chunk's
//! `end_offset` under its `file` key ([`Checkpoints::record`]) once the
//! chunk's lines are handled. Every change of a file's reading position is
//! announced by a chunk — a chunk with empty `data` when a file starts being
//! followed or restarts at 0 after truncation — so the last chunk per file
//! is always the right checkpoint. Entries of files that are followed but
//! idle for days are kept fresh with [`Checkpoints::touch_existing`] (or
//! [`Checkpoints::touch`] with [`Tailer::followed`] before `run` takes the
//! tailer), else saving prunes them after 7 days.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use memchr::{memchr, memrchr};

use super::checkpoint::CheckpointEntry;
use super::checkpoint::{unix_now, Checkpoints, RETENTION};
use super::fingerprint::{FileKey, Head, HEAD_BYTES};

/// Where a file found at the first pass, with no checkpoint, starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// Read what the file already holds.
    Beginning,
    /// Skip the complete lines already there (an incomplete last line is
    /// kept, and comes out once its newline is written).
    #[default]
    End,
}

/// One pattern to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSpec {
    /// Carried into every [`Chunk`] from this pattern, and the key of its
    /// [`SourceStats`]. Several specs may share a source.
    pub source: usize,
    /// A path, or a glob in the final component: `/var/log/myapi/*.log`.
    pub pattern: PathBuf,
    pub start_at: StartAt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailerOptions {
    /// Longer lines are cut to this many bytes (plus `\n`); the rest of the
    /// line is skipped.
    pub max_line_bytes: usize,
    /// Size of each read, and so the most a chunk holds (plus a held partial
    /// line).
    pub read_buf_bytes: usize,
    /// How often to look even without filesystem events.
    pub poll_interval: Duration,
    /// Wake on inotify events; false is polling only, for filesystems without
    /// inotify (NFS, some FUSE and container mounts).
    pub use_notify: bool,
    /// How long a file rotated away or deleted keeps being drained after it
    /// last grew (or after it was found to be away).
    pub rotate_wait: Duration,
}

impl Default for TailerOptions {
    fn default() -> TailerOptions {
        TailerOptions {
            max_line_bytes: 64 * 1024,
            read_buf_bytes: 256 * 1024,
            poll_interval: Duration::from_secs(1),
            use_notify: true,
            rotate_wait: Duration::from_secs(5),
        }
    }
}

/// A batch of complete lines from one file.
///
/// `data` holds whole lines, each ending in `\n` (a cut over-long line ends
/// with `\n` too). Offsets are byte positions in the file: `start_offset` is
/// where the first line of `data` begins, `end_offset` is where reading
/// resumes after this chunk (a cut line's skipped bytes are included, so
/// resuming never re-reads them). A chunk with empty `data` announces a
/// reading position: a file starting to be followed, or restarting at 0
/// after truncation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub source: usize,
    pub file: FileKey,
    pub path: Arc<Path>,
    pub start_offset: u64,
    pub end_offset: u64,
    pub data: Vec<u8>,
    pub read_at: SystemTime,
}

impl Chunk {
    /// The lines in `data`, without their `\n`.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.data
            .split_inclusive(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\n").unwrap_or(line))
    }
}

/// Counters for one source, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Lines emitted (cut lines and lines completed at close included).
    pub lines: AtomicU64,
    /// Bytes read from files.
    pub bytes: AtomicU64,
    /// Times a followed file left its path: renamed, deleted, replaced, or a
    /// symlink pointed elsewhere.
    pub rotations: AtomicU64,
    /// Times a file was found shorter than our offset or rewritten, and read
    /// again from 0.
    pub truncations: AtomicU64,
    /// Lines longer than `max_line_bytes`, emitted cut.
    pub lines_cut: AtomicU64,
    /// Bytes not yet emitted at the start of the last pass: what that pass
    /// found to read (held partial lines included).
    pub lag_bytes: AtomicU64,
    /// Files open now (those rotated away and still drained included).
    pub files: AtomicU64,
    /// Passes made: shows the loop is alive, and how often it looks.
    pub passes: AtomicU64,
}

/// A file followed now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowedFile {
    pub source: usize,
    pub file: FileKey,
    pub path: Arc<Path>,
    /// Where the tailer would resume reading it; the consumer's checkpoint
    /// is the `end_offset` of the last chunk it has *processed*, not this.
    pub offset: u64,
}

/// A pattern the tailer cannot follow as meant.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("{}: glob characters are only allowed in the file name, not in the directory part", .0.display())]
    GlobInDirectory(PathBuf),
    #[error("{}: invalid glob in the file name: {error}", .pattern.display())]
    InvalidGlob {
        pattern: PathBuf,
        error: glob::PatternError,
    },
    #[error("{}: a glob must be valid UTF-8", .0.display())]
    NonUtf8Glob(PathBuf),
    #[error("{}: the pattern names no file", .0.display())]
    NoFileName(PathBuf),
}

/// Checks a [`WatchSpec::pattern`] the way the tailer will read it; for the
/// configuration layer to reject bad patterns up front. (The tailer itself
/// logs and carries on: an invalid glob is then taken as a literal name.)
pub fn check_pattern(pattern: &Path) -> Result<(), PatternError> {
    parse_pattern(pattern).map(|_| ())
}

/// How often `run` checks its stop flag while waiting.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Slack, in seconds, when comparing a file's mtime with checkpoint times:
/// file timestamps come from the kernel's coarse clock.
const MTIME_SLACK_SECS: u64 = 2;

/// How often a pattern's directory is listed for rotated files written
/// since we last looked, even when nothing in it was renamed or created.
const RESCAN_EVERY: Duration = Duration::from_secs(10);

/// Follows files; see the module documentation.
pub struct Tailer {
    specs: Vec<SpecState>,
    options: TailerOptions,
    /// Checkpoints given at start, plus the final offsets of files closed
    /// since: a file found again (renamed back, a checkpointed file that was
    /// missing for a while) resumes where it was left.
    known: Checkpoints,
    stats: BTreeMap<usize, Arc<SourceStats>>,
    /// The one read buffer, reused for every read.
    buf: Vec<u8>,
}

impl Tailer {
    pub fn new(specs: Vec<WatchSpec>, options: TailerOptions, checkpoints: &Checkpoints) -> Tailer {
        let mut options = options;
        // A zero-sized line limit or buffer would make no progress.
        options.max_line_bytes = options.max_line_bytes.max(1);
        options.read_buf_bytes = options.read_buf_bytes.max(1);
        let mut stats: BTreeMap<usize, Arc<SourceStats>> = BTreeMap::new();
        let specs = specs
            .into_iter()
            .map(|spec| {
                let stats = Arc::clone(stats.entry(spec.source).or_default());
                SpecState::new(spec, checkpoints, stats)
            })
            .collect();
        Tailer {
            specs,
            buf: vec![0; options.read_buf_bytes],
            options,
            known: checkpoints.clone(),
            stats,
        }
    }

    /// The counters of `source`; a source no spec names gets counters that
    /// stay at zero.
    pub fn stats(&self, source: usize) -> Arc<SourceStats> {
        self.stats.get(&source).cloned().unwrap_or_default()
    }

    /// The files followed now, rotated-away ones still being drained
    /// included.
    pub fn followed(&self) -> Vec<FollowedFile> {
        self.specs
            .iter()
            .flat_map(|spec| {
                spec.files.iter().map(|w| FollowedFile {
                    source: spec.source,
                    file: w.key,
                    path: Arc::clone(&w.path),
                    offset: w.lines.resume_offset(w.pos),
                })
            })
            .collect()
    }

    /// One pass: discover paths (globs re-evaluated each time), detect
    /// rotation, truncation, deletion and symlink changes, read every file to
    /// its current end, hand out chunks. Deterministic: no sleeping, no
    /// background work.
    ///
    /// A failure with one file (or one pattern's directory) does not stop the
    /// pass; the first error met is returned after the whole pass, with the
    /// path in its message, and the same file is tried again next pass.
    pub fn poll_once(&mut self, out: &mut dyn FnMut(Chunk)) -> io::Result<()> {
        let mut pass = Pass {
            now: Instant::now(),
            options: &self.options,
            known: &mut self.known,
            buf: &mut self.buf,
            out,
            error: None,
        };
        let mut lag: BTreeMap<usize, u64> = BTreeMap::new();
        let mut files: BTreeMap<usize, u64> = BTreeMap::new();
        for spec in &mut self.specs {
            *lag.entry(spec.source).or_default() += spec.poll(&mut pass);
            *files.entry(spec.source).or_default() += spec.files.len() as u64;
        }
        for (source, stats) in &self.stats {
            let lag = lag.get(source).copied().unwrap_or(0);
            stats.lag_bytes.store(lag, Ordering::Relaxed);
            let files = files.get(source).copied().unwrap_or(0);
            stats.files.store(files, Ordering::Relaxed);
            stats.passes.fetch_add(1, Ordering::Relaxed);
        }
        match pass.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Blocking loop for a dedicated thread: a pass, then wait for a
    /// filesystem event in a watched directory or for the poll interval,
    /// until `stop` is set (checked at least every 100 ms) or `out` returns
    /// false (the receiver is gone).
    ///
    /// Errors of single passes are logged, not returned: a file that cannot
    /// be read now may be readable later. If inotify cannot be set up, the
    /// loop logs that and polls. Returns `Ok` when stopped.
    pub fn run(
        mut self,
        mut out: impl FnMut(Chunk) -> bool,
        stop: Arc<AtomicBool>,
    ) -> io::Result<()> {
        let (wake_tx, wake) = mpsc::sync_channel::<()>(1);
        let mut watches = if self.options.use_notify {
            DirWatches::new(wake_tx.clone())
        } else {
            None
        };
        let mut last_error: Option<String> = None;
        while !stop.load(Ordering::Relaxed) {
            // Watch before looking, so that nothing written after a pass
            // goes unnoticed until the next poll interval.
            if let Some(w) = watches.as_mut() {
                w.sync(self.watch_dirs(), self.options.poll_interval);
            }
            let mut receiver_gone = false;
            let result = self.poll_once(&mut |chunk| {
                if !receiver_gone && !out(chunk) {
                    receiver_gone = true;
                }
            });
            if receiver_gone {
                tracing::debug!("tailer: receiver gone, stopping");
                return Ok(());
            }
            match result {
                Ok(()) => last_error = None,
                Err(e) => {
                    // The same failure every second would drown the log.
                    let msg = e.to_string();
                    if last_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!("tailer: {msg}");
                    }
                    last_error = Some(msg);
                }
            }
            wait_for_wake(&wake, self.options.poll_interval, &stop);
        }
        drop(wake_tx);
        Ok(())
    }

    /// The directories whose events should wake the loop: each pattern's
    /// directory, and the directory of each symlink's target.
    fn watch_dirs(&self) -> BTreeSet<PathBuf> {
        let mut dirs = BTreeSet::new();
        for spec in &self.specs {
            dirs.insert(spec.dir.clone());
            dirs.extend(spec.files.iter().filter_map(|w| w.target_dir.clone()));
        }
        dirs
    }
}

fn wait_for_wake(wake: &mpsc::Receiver<()>, interval: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + interval;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        match wake.recv_timeout((deadline - now).min(STOP_CHECK)) {
            Ok(()) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // `run` keeps a sender alive, so this does not happen; never spin.
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(STOP_CHECK),
        }
    }
}

/// inotify watches on directories. A watch on a file would follow the file's
/// inode through a rename and never see its successor (notify#531), so we
/// watch the directories and treat every event as "go and look".
struct DirWatches {
    watcher: notify::RecommendedWatcher,
    /// Watched directory → its (device, inode) when the watch was added, to
    /// notice a directory deleted and made anew (its watch is then dead).
    watched: HashMap<PathBuf, (u64, u64)>,
    /// Directories we failed to watch, so that the failure is logged once
    /// (they are still polled, and the watch is tried again each pass).
    failed: HashSet<PathBuf>,
}

impl DirWatches {
    fn new(wake: mpsc::SyncSender<()>) -> Option<DirWatches> {
        let handler = move |event: notify::Result<notify::Event>| {
            use notify::event::{AccessKind, EventKind};
            // notify asks inotify for IN_OPEN too; our own opens (read_dir of
            // a glob's directory, opening a new file) would otherwise wake
            // us again after every pass, forever.
            if let Ok(e) = &event {
                if matches!(e.kind, EventKind::Access(AccessKind::Open(_))) {
                    return;
                }
            }
            // A full channel already holds a wake-up: events coalesce.
            let _ = wake.try_send(());
        };
        match notify::recommended_watcher(handler) {
            Ok(watcher) => Some(DirWatches {
                watcher,
                watched: HashMap::new(),
                failed: HashSet::new(),
            }),
            Err(e) => {
                tracing::warn!("tailer: cannot use inotify ({e}); polling only");
                None
            }
        }
    }

    fn sync(&mut self, wanted: BTreeSet<PathBuf>, poll_interval: Duration) {
        use notify::Watcher;
        let DirWatches {
            watcher,
            watched,
            failed,
        } = self;
        watched.retain(|dir, id| {
            let keep = wanted.contains(dir) && dir_id(dir) == Some(*id);
            if !keep {
                // Fails harmlessly when the kernel already dropped the watch.
                let _ = watcher.unwatch(dir);
            }
            keep
        });
        for dir in wanted {
            if watched.contains_key(&dir) {
                continue;
            }
            // A missing directory is polled for until it exists.
            let Some(id) = dir_id(&dir) else { continue };
            match watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    failed.remove(&dir);
                    watched.insert(dir, id);
                }
                // E.g. the inotify watch limit (fs.inotify.max_user_watches).
                Err(e) if failed.insert(dir.clone()) => tracing::warn!(
                    "tailer: cannot watch {} ({e}); polling it every {:?}",
                    dir.display(),
                    poll_interval
                ),
                Err(_) => {}
            }
        }
    }
}

fn dir_id(dir: &Path) -> Option<(u64, u64)> {
    fs::metadata(dir)
        .ok()
        .filter(Metadata::is_dir)
        .map(|m| (m.dev(), m.ino()))
}

/// What one pass shares between specs.
struct Pass<'a> {
    now: Instant,
    options: &'a TailerOptions,
    known: &'a mut Checkpoints,
    buf: &'a mut Vec<u8>,
    out: &'a mut dyn FnMut(Chunk),
    error: Option<io::Error>,
}

impl Pass<'_> {
    fn note(&mut self, path: &Path, e: io::Error) {
        if self.error.is_none() {
            self.error = Some(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        }
    }
}

enum NameMatch {
    Literal(OsString),
    Glob(glob::Pattern),
    /// The pattern names no file (it ends in `/` or `..`).
    Nothing,
}

fn has_glob_chars(s: &OsStr) -> bool {
    s.as_bytes().iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Splits a pattern into its literal directory and its file-name matcher.
fn parse_pattern(pattern: &Path) -> Result<(PathBuf, NameMatch), PatternError> {
    let dir = match pattern.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = pattern.file_name() else {
        return Err(PatternError::NoFileName(pattern.to_path_buf()));
    };
    let glob_in_dir = dir.components().any(|c| match c {
        Component::Normal(s) => has_glob_chars(s),
        _ => false,
    });
    if glob_in_dir {
        return Err(PatternError::GlobInDirectory(pattern.to_path_buf()));
    }
    if !has_glob_chars(name) {
        return Ok((dir, NameMatch::Literal(name.to_os_string())));
    }
    let Some(text) = name.to_str() else {
        return Err(PatternError::NonUtf8Glob(pattern.to_path_buf()));
    };
    let glob = glob::Pattern::new(text).map_err(|error| PatternError::InvalidGlob {
        pattern: pattern.to_path_buf(),
        error,
    })?;
    Ok((dir, NameMatch::Glob(glob)))
}

/// A file the pattern names now, by the identity of what the path leads to.
struct Found {
    path: Arc<Path>,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
}

impl Found {
    fn new(path: PathBuf, meta: &Metadata) -> Found {
        Found {
            path: Arc::from(path),
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// What a file whose first bytes are `head` is to the file `original`
/// names, which we read up to `read_to`: `None` when their first bytes
/// differ. A copy is resumed at `read_to` only once its original was
/// truncated (`original_intact` false): while the original is intact, we
/// read on there, and reading the copy too would count lines twice.
fn as_copy_of(
    original: &FileKey,
    head: &Head,
    size: u64,
    original_intact: impl FnOnce() -> bool,
    read_to: u64,
) -> Option<Copy> {
    let len = usize::from(original.fingerprint.len);
    if len == 0 || !original.fingerprint.matches(head.bytes()) {
        return None;
    }
    Some(if len < HEAD_BYTES {
        // A short fingerprint (the file was small when first seen) is no
        // proof of identity: neither a copy nor a new file.
        Copy::Skip("its first bytes match a file read before")
    } else if original_intact() {
        Copy::Skip("a copy of a file still being followed")
    } else if read_to > size {
        Copy::Skip("a copy shorter than what was read of its original")
    } else {
        Copy::Resume(read_to)
    })
}

/// What a rotated file that no checkpoint knows by identity is to us.
enum Copy {
    /// Not a copy of anything we read: a new file, read from its start.
    Not,
    /// A copy of a file we read, truncated since: resume at its checkpoint.
    Resume(u64),
    /// Not read, for this reason.
    Skip(&'static str),
}

struct SpecState {
    source: usize,
    start_at: StartAt,
    dir: PathBuf,
    name: NameMatch,
    /// Whether a pass has looked at the directory successfully: files found
    /// after that were not there at the start.
    looked: bool,
    /// The newest `updated` time among the given checkpoints whose path this
    /// pattern matches: set when we followed this pattern before.
    followed_until: Option<u64>,
    /// Followed files, in the order they were first followed: reading in
    /// this order drains a rotated file before its successor.
    files: Vec<Watched>,
    stats: Arc<SourceStats>,
    /// The directory's mtime when [`SpecState::recover_between_passes`]
    /// last looked: renames and creations change it, writes do not.
    dir_mtime: Option<(i64, i64)>,
    /// Wall-clock time since which a rotated file counts as written since
    /// we last looked: the start of the first pass, then of each listing.
    last_scan: Option<SystemTime>,
}

impl SpecState {
    fn new(spec: WatchSpec, checkpoints: &Checkpoints, stats: Arc<SourceStats>) -> SpecState {
        let (dir, name) = match parse_pattern(&spec.pattern) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::error!("tailer: {e}; taking the pattern literally");
                let dir = match spec.pattern.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = match spec.pattern.file_name() {
                    Some(n) => NameMatch::Literal(n.to_os_string()),
                    None => NameMatch::Nothing,
                };
                (dir, name)
            }
        };
        let mut state = SpecState {
            source: spec.source,
            start_at: spec.start_at,
            dir,
            name,
            looked: false,
            followed_until: None,
            files: Vec::new(),
            stats,
            dir_mtime: None,
            last_scan: None,
        };
        state.followed_until = checkpoints
            .iter()
            .filter(|(_, entry)| state.matches(&entry.path) || state.matches_rotated(&entry.path))
            .map(|(_, entry)| entry.updated)
            .max();
        state
    }

    fn matches_name(&self, name: &OsStr) -> bool {
        match &self.name {
            NameMatch::Literal(n) => n == name,
            NameMatch::Glob(g) => name
                .to_str()
                .is_some_and(|s| g.matches_with(s, glob_options())),
            NameMatch::Nothing => false,
        }
    }

    /// Whether `path` is a rotated name of a file this pattern names: in
    /// the same directory, with rotation suffixes (`.1`, `-20261203`)
    /// removed it matches.
    fn matches_rotated(&self, path: &Path) -> bool {
        if path.parent() != Some(self.dir.as_path()) {
            return false;
        }
        let Some(mut name) = path.file_name().and_then(OsStr::to_str) else {
            return false;
        };
        while let Some(cut) = name.rfind(['.', '-']) {
            let suffix = &name[cut + 1..];
            if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
                break;
            }
            name = &name[..cut];
            if self.matches_name(OsStr::new(name)) {
                return true;
            }
        }
        false
    }

    fn matches(&self, path: &Path) -> bool {
        path.parent() == Some(self.dir.as_path())
            && path.file_name().is_some_and(|n| self.matches_name(n))
    }

    /// What the pattern names now: regular files only (following symlinks),
    /// sorted by path, one entry per (device, inode).
    fn discover(&self) -> io::Result<Vec<Found>> {
        let mut found = Vec::new();
        match &self.name {
            NameMatch::Nothing => {}
            NameMatch::Literal(name) => {
                let path = self.dir.join(name);
                match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => found.push(Found::new(path, &meta)),
                    Ok(_) => {}
                    Err(e) if is_absent(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            NameMatch::Glob(_) => {
                let entries = match fs::read_dir(&self.dir) {
                    Ok(entries) => entries,
                    Err(e) if is_absent(&e) => return Ok(found),
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let entry = entry?;
                    if !self.matches_name(&entry.file_name()) {
                        continue;
                    }
                    let path = entry.path();
                    // Dangling symlinks and files gone since read_dir are
                    // skipped; FIFOs and directories would block or fail.
                    if let Ok(meta) = fs::metadata(&path) {
                        if meta.is_file() {
                            found.push(Found::new(path, &meta));
                        }
                    }
                }
                found.sort_by(|a, b| a.path.cmp(&b.path));
                let mut seen = HashSet::new();
                found.retain(|f| seen.insert((f.dev, f.ino)));
            }
        }
        Ok(found)
    }

    /// One pass over this pattern; returns the lag found.
    fn poll(&mut self, pass: &mut Pass<'_>) -> u64 {
        let found = match self.discover() {
            Ok(found) => Some(found),
            Err(e) => {
                // Without a listing we cannot tell what went away: keep
                // reading what we have, open nothing new.
                pass.note(&self.dir, e);
                None
            }
        };
        let pass_started = SystemTime::now();
        if let Some(found) = &found {
            self.mark_away(found, pass.now);
            if self.looked {
                self.recover_between_passes(found, pass);
            }
        }
        self.last_scan.get_or_insert(pass_started);

        let mut lag = 0;
        let mut i = 0;
        while i < self.files.len() {
            let w = &mut self.files[i];
            match w.read(self.source, &self.stats, pass) {
                Ok(l) => lag += l,
                Err(e) => pass.note(&w.path, e),
            }
            let drained = w.away_since.is_some_and(|_| {
                pass.now.saturating_duration_since(w.last_growth) >= pass.options.rotate_wait
            });
            if drained {
                let w = self.files.remove(i);
                w.close(self.source, &self.stats, pass);
            } else {
                i += 1;
            }
        }

        if let Some(mut found) = found {
            let first = !self.looked;
            self.looked = true;
            if first {
                lag += self.recover_rotated(&found, pass);
            }
            found.retain(|f| !self.files.iter().any(|w| w.key.same_inode(f.dev, f.ino)));
            // Oldest first, as a rotated series is meant to be read.
            found.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.path.cmp(&b.path)));
            for f in found {
                match self.open(&f, first, pass) {
                    Ok(Some(mut w)) => {
                        match w.read(self.source, &self.stats, pass) {
                            Ok(l) => lag += l,
                            Err(e) => pass.note(&w.path, e),
                        }
                        self.files.push(w);
                    }
                    Ok(None) => {}
                    Err(e) => pass.note(&f.path, e),
                }
            }
        }
        lag
    }

    /// At the first pass, the files of this pattern that logrotate renamed
    /// away while we were stopped, read before their successors so that no
    /// line written while we were not running is lost:
    ///
    /// * a checkpointed file that still sits in the directory under another
    ///   name (identity and fingerprint match its checkpoint) is drained from
    ///   its checkpoint;
    /// * a file under a rotated name of this pattern (`app.log.1`,
    ///   `app.log-20261204`) that no checkpoint knows, modified since the
    ///   checkpoints were last written, was created *and* rotated while we
    ///   were stopped (two rotations in one downtime): it is read from its
    ///   start — unless it is a copy of a file we read (copytruncate: its
    ///   first [`HEAD_BYTES`] bytes match a checkpoint's fingerprint), which
    ///   resumes at that checkpoint when the original was truncated since, and
    ///   is skipped while the original is intact, so no line counts twice.
    fn recover_rotated(&mut self, found: &[Found], pass: &mut Pass<'_>) -> u64 {
        if self.followed_until.is_none() {
            // Never followed before: nothing was missed.
            return 0;
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut recovered: Vec<(Found, Option<u64>)> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if !meta.is_file() || found.iter().any(|f| (f.dev, f.ino) == id) {
                continue;
            }
            let ours = pass
                .known
                .get(id.0, id.1)
                .is_some_and(|(_, e)| self.matches(&e.path) || self.matches_rotated(&e.path));
            let new_rotated = self.matches_rotated(&path) && self.appeared_while_stopped(&meta);
            if !ours && !new_rotated {
                continue;
            }
            let Ok(head) = File::open(&path).and_then(|f| Head::read(&f)) else {
                continue;
            };
            if ours && checkpoint_vouches(pass.known, &meta, &head) {
                recovered.push((Found::new(path, &meta), None));
                continue;
            }
            if !new_rotated {
                continue;
            }
            match self.copy_of(pass.known, &head, meta.len()) {
                Copy::Not => recovered.push((Found::new(path, &meta), Some(0))),
                Copy::Resume(offset) => recovered.push((Found::new(path, &meta), Some(offset))),
                Copy::Skip(why) => {
                    tracing::info!("tailer: not reading {}: {why}", path.display());
                }
            }
        }
        // Oldest first, as a rotated series is meant to be read: the files
        // we followed before any we never saw (those were created after ours
        // was rotated away), then by mtime, then `.2` before `.1`.
        recovered.sort_by(|(a, a_start), (b, b_start)| {
            (a_start.is_some(), a.mtime)
                .cmp(&(b_start.is_some(), b.mtime))
                .then_with(|| b.path.cmp(&a.path))
        });

        let mut lag = 0;
        for (f, start) in recovered {
            if let Some(mut w) = self.open_rotated(&f, start, "rotated while stopped", pass) {
                match w.read(self.source, &self.stats, pass) {
                    Ok(l) => lag += l,
                    Err(e) => pass.note(&w.path, e),
                }
                self.files.push(w);
            }
        }
        lag
    }

    /// Opens a file found under a rotated name, at `start` (or its
    /// checkpoint), as a file rotated away: drained, then closed.
    fn open_rotated(
        &mut self,
        f: &Found,
        start: Option<u64>,
        why: &str,
        pass: &mut Pass<'_>,
    ) -> Option<Watched> {
        match self.open_at(f, false, start, pass) {
            Ok(Some(mut w)) => {
                tracing::info!(
                    "tailer: reading {} from offset {}, {why}",
                    w.path.display(),
                    w.pos
                );
                self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                w.away_since = Some(pass.now);
                Some(w)
            }
            Ok(None) => None,
            Err(e) => {
                pass.note(&f.path, e);
                None
            }
        }
    }

    /// Whether a file no checkpoint knows by identity, whose first bytes are
    /// `head`, is a copy of a file of this pattern that we read.
    fn copy_of(&self, known: &Checkpoints, head: &Head, size: u64) -> Copy {
        known
            .iter()
            .filter(|(_, entry)| self.matches(&entry.path) || self.matches_rotated(&entry.path))
            .find_map(|(key, entry)| {
                as_copy_of(
                    key,
                    head,
                    size,
                    || self.original_intact(key, entry),
                    entry.offset,
                )
            })
            .unwrap_or(Copy::Not)
    }

    /// Between two passes a file may have been created, written and rotated
    /// away again (two quick rotations: `app.log` → `.1` → `.2`, the file
    /// in between never seen under the pattern's name). When the directory
    /// changed since we last looked (or too recently to tell by its mtime),
    /// a followed file shrank, or [`RESCAN_EVERY`] passed, a rotated name of
    /// this pattern that we do not follow, modified since we last looked,
    /// is followed as a rotated file: from its
    /// checkpoint if it has one (a file we closed, written to again), from
    /// the position we had read to in its original if it is a copy of a
    /// file we follow that was truncated since (copytruncate, so the lines
    /// written between our last read and the truncation are not lost), and
    /// otherwise from its start. A copy of a file still intact is skipped.
    /// The files are added in order, oldest first, to be read in this pass.
    fn recover_between_passes(&mut self, found: &[Found], pass: &mut Pass<'_>) {
        let Some(since) = self.last_scan else {
            return;
        };
        let scan_started = SystemTime::now();
        // And every RESCAN_EVERY in any case: a service that never reopens
        // its log after rotation (no postrotate reload) goes on writing to
        // the rotated file, which we closed after rotate_wait without growth.
        let due = scan_started
            .duration_since(since)
            .is_ok_and(|d| d >= RESCAN_EVERY);
        let Ok(dir) = fs::metadata(&self.dir) else {
            return;
        };
        let mtime = (dir.mtime(), dir.mtime_nsec());
        let recent = dir.modified().is_ok_and(|m| {
            SystemTime::now()
                .duration_since(m)
                .map_or(true, |age| age.as_secs() < MTIME_SLACK_SECS)
        });
        // copytruncate renames nothing: a followed file shorter than where
        // we are is the other sign (logrotate may have spent longer than
        // the slack copying a big file).
        let truncated = || {
            self.files
                .iter()
                .any(|w| w.file.metadata().is_ok_and(|m| m.len() < w.pos))
        };
        if self.dir_mtime == Some(mtime) && !recent && !due && !truncated() {
            return;
        }
        self.dir_mtime = Some(mtime);
        self.last_scan = Some(scan_started);
        let since = since - Duration::from_secs(MTIME_SLACK_SECS);
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        // Each with where to start and, for a copy, the file it is a copy of.
        let mut recovered: Vec<(Found, Option<u64>, Option<FileKey>)> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if self.matches(&path) || !self.matches_rotated(&path) {
                continue;
            }
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let (dev, ino) = (meta.dev(), meta.ino());
            let fresh = meta.modified().is_ok_and(|m| m >= since);
            if !meta.is_file()
                || !fresh
                || found.iter().any(|f| (f.dev, f.ino) == (dev, ino))
                || self.files.iter().any(|w| w.key.same_inode(dev, ino))
            {
                continue;
            }
            let Ok(head) = File::open(&path).and_then(|f| Head::read(&f)) else {
                continue;
            };
            let (start, original) = if checkpoint_vouches(pass.known, &meta, &head) {
                // A file we closed: worth opening again only if it grew.
                let grew = pass
                    .known
                    .get(dev, ino)
                    .is_some_and(|(_, entry)| meta.len() > entry.offset);
                if !grew {
                    continue;
                }
                (None, None)
            } else {
                match self.copy_of_followed(&head, meta.len()) {
                    (Copy::Not, _) => (Some(0), None),
                    (Copy::Resume(offset), original) => (Some(offset), original),
                    (Copy::Skip(why), _) => {
                        tracing::debug!("tailer: not reading {}: {why}", path.display());
                        continue;
                    }
                }
            };
            recovered.push((Found::new(path, &meta), start, original));
        }
        recovered
            .sort_by(|(a, ..), (b, ..)| a.mtime.cmp(&b.mtime).then_with(|| b.path.cmp(&a.path)));
        for (f, start, original) in recovered {
            if let Some(w) = self.open_rotated(&f, start, "rotated between two looks", pass) {
                // A copy's lines are older than what its truncated original
                // holds now: read them first.
                let at = original
                    .and_then(|o| {
                        self.files
                            .iter()
                            .position(|x| x.key.same_inode(o.dev, o.ino))
                    })
                    .unwrap_or(self.files.len());
                self.files.insert(at, w);
            }
        }
    }

    /// Whether a file we do not follow, whose first bytes are `head`, is a
    /// copy of one we follow (see [`SpecState::recover_between_passes`]).
    fn copy_of_followed(&self, head: &Head, size: u64) -> (Copy, Option<FileKey>) {
        for w in &self.files {
            // Intact unless truncated since we read it (we have not read it
            // in this pass yet): shorter, or already written past where we
            // were. We resume from the start of a partial line we hold: the
            // truncation drops it, and the copy has it whole.
            let intact = || {
                w.file.metadata().is_ok_and(|m| m.len() >= w.pos)
                    && Head::read(&w.file).is_ok_and(|h| w.key.fingerprint.matches(h.bytes()))
            };
            let read_to = w.lines.resume_offset(w.pos);
            match as_copy_of(&w.key, head, size, intact, read_to) {
                Some(copy @ Copy::Resume(_)) => return (copy, Some(w.key)),
                Some(copy) => return (copy, None),
                None => {}
            }
        }
        (Copy::Not, None)
    }

    /// Whether the file `key` names is still in the directory with the first
    /// bytes and at least the length it had at its checkpoint (not
    /// truncated). When the directory cannot be read, it is taken to be.
    fn original_intact(&self, key: &FileKey, entry: &CheckpointEntry) -> bool {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return true;
        };
        entries.flatten().any(|e| {
            // stat before open: a FIFO in the directory would block an open.
            let path = e.path();
            let same = fs::metadata(&path).is_ok_and(|meta| {
                meta.is_file()
                    && key.same_inode(meta.dev(), meta.ino())
                    && meta.len() >= entry.offset
            });
            same && File::open(&path)
                .and_then(|file| Head::read(&file))
                .is_ok_and(|head| key.fingerprint.matches(head.bytes()))
        })
    }

    /// Matches followed files with what was found: updates paths, marks the
    /// ones no longer found as away (and ones found again as back).
    fn mark_away(&mut self, found: &[Found], now: Instant) {
        let by_id: HashMap<(u64, u64), &Found> =
            found.iter().map(|f| ((f.dev, f.ino), f)).collect();
        for w in &mut self.files {
            match by_id.get(&(w.key.dev, w.key.ino)) {
                Some(f) => {
                    let was_away = w.away_since.take().is_some();
                    if w.path != f.path {
                        if !was_away {
                            self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                        }
                        w.path = Arc::clone(&f.path);
                    }
                }
                None if w.away_since.is_none() => {
                    tracing::debug!("tailer: {} rotated away or deleted", w.path.display());
                    self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                    w.away_since = Some(now);
                    // The writer may go on writing to the old file until it
                    // reopens: give it rotate_wait from now, not from the
                    // last write.
                    w.last_growth = now;
                }
                None => {}
            }
        }
    }

    /// Opens a newly found file and decides where to start; `None` if it is
    /// gone already or turned out to be a file we follow.
    fn open(&mut self, f: &Found, first: bool, pass: &mut Pass<'_>) -> io::Result<Option<Watched>> {
        self.open_at(f, first, None, pass)
    }

    /// [`SpecState::open`], but starting at `start` (a checkpoint offset, or
    /// 0) instead of what the file's own checkpoint says, when given.
    fn open_at(
        &mut self,
        f: &Found,
        first: bool,
        start: Option<u64>,
        pass: &mut Pass<'_>,
    ) -> io::Result<Option<Watched>> {
        let file = match File::open(&f.path) {
            Ok(file) => file,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        // Identity from the open handle: the path may have been rotated
        // between the listing and the open.
        let meta = file.metadata()?;
        if !meta.is_file()
            || self
                .files
                .iter()
                .any(|w| w.key.same_inode(meta.dev(), meta.ino()))
        {
            return Ok(None);
        }
        let head = Head::read(&file)?;
        let key = FileKey::from_head(&meta, &head);
        let size = meta.len();
        let max_line = pass.options.max_line_bytes;

        let checkpoint = start.or_else(|| {
            pass.known
                .find(key.dev, key.ino, |fp| fp.matches(head.bytes()))
        });
        let (offset, discard) = match checkpoint {
            Some(offset) if offset <= size => {
                // Checkpoints sit at line starts, except after a cut line,
                // whose rest must still be skipped.
                let mid_line = offset > 0 && byte_at(&file, offset - 1)? != Some(b'\n');
                (offset, mid_line)
            }
            Some(_) => {
                // Shorter than where we were: truncated while we were away.
                self.stats.truncations.fetch_add(1, Ordering::Relaxed);
                (0, false)
            }
            None if first && !self.appeared_while_stopped(&meta) => match self.start_at {
                StartAt::Beginning => (0, false),
                StartAt::End => start_of_last_line(&file, size, max_line)?,
            },
            None => (0, false),
        };
        tracing::debug!(
            "tailer: following {} from offset {offset}",
            f.path.display()
        );

        let target_dir = match fs::symlink_metadata(&f.path) {
            Ok(m) if m.file_type().is_symlink() => fs::canonicalize(&f.path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf)),
            _ => None,
        };
        let w = Watched {
            file,
            key,
            path: Arc::clone(&f.path),
            pos: offset,
            lines: Splitter::new(offset, discard, max_line),
            away_since: None,
            last_growth: pass.now,
            seen: signature(&meta),
            target_dir,
        };
        (pass.out)(w.announce(self.source, offset));
        Ok(Some(w))
    }

    /// Whether a file found at the first pass, without a checkpoint, was
    /// modified after the checkpoints of this pattern were last written: then
    /// it appeared while we were not running and is read from the start.
    fn appeared_while_stopped(&self, meta: &Metadata) -> bool {
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        self.followed_until
            .is_some_and(|until| mtime.saturating_add(MTIME_SLACK_SECS) >= until)
    }
}

/// Whether the checkpoint of this inode is for *this* file: its first
/// bytes match the fingerprint, or — when the checkpoint saw the file empty,
/// and so has no fingerprint to compare — the file was created no later
/// than the checkpoint was recorded (a reused inode is born after it).
fn checkpoint_vouches(known: &Checkpoints, meta: &Metadata, head: &Head) -> bool {
    match known.get(meta.dev(), meta.ino()) {
        Some((key, _)) if key.fingerprint.len > 0 => key.fingerprint.matches(head.bytes()),
        Some((_, entry)) => meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|born| born.as_secs() <= entry.updated),
        None => false,
    }
}

fn glob_options() -> glob::MatchOptions {
    glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        // `*.log` does not match `.hidden.log`, as in the shell.
        require_literal_leading_dot: true,
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// What tells us a file changed without reading it: size and mtime.
fn signature(meta: &Metadata) -> (u64, i64, i64) {
    (meta.len(), meta.mtime(), meta.mtime_nsec())
}

fn byte_at(file: &File, offset: u64) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    loop {
        match file.read_at(&mut b, offset) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// For [`StartAt::End`]: the start of the incomplete last line, so that it
/// comes out whole once finished; or the end, skipping an incomplete last
/// line already longer than the line limit.
fn start_of_last_line(file: &File, size: u64, max_line: usize) -> io::Result<(u64, bool)> {
    let window = size.min(max_line as u64 + 1);
    let from = size - window;
    // `window` ≤ max_line + 1, which is a usize.
    let mut tail = vec![0u8; usize::try_from(window).unwrap_or(max_line + 1)];
    file.read_exact_at(&mut tail, from)?;
    Ok(match memrchr(b'\n', &tail) {
        Some(i) => (from + i as u64 + 1, false),
        None if from == 0 => (0, false),
        None => (size, true),
    })
}

/// One followed file.
struct Watched {
    file: File,
    key: FileKey,
    path: Arc<Path>,
    /// Next byte to read.
    pos: u64,
    lines: Splitter,
    /// When the file was found no longer at a path the pattern names.
    away_since: Option<Instant>,
    last_growth: Instant,
    /// Size and mtime at the last look, to re-check the head only on change.
    seen: (u64, i64, i64),
    /// The directory of a symlink's target, to watch as well.
    target_dir: Option<PathBuf>,
}

impl Watched {
    fn chunk(&self, source: usize, start: u64, end: u64, data: Vec<u8>) -> Chunk {
        Chunk {
            source,
            file: self.key,
            path: Arc::clone(&self.path),
            start_offset: start,
            end_offset: end,
            data,
            read_at: SystemTime::now(),
        }
    }

    fn announce(&self, source: usize, offset: u64) -> Chunk {
        self.chunk(source, offset, offset, Vec::new())
    }

    /// Checks for truncation, then reads to the end; returns the lag found.
    fn read(&mut self, source: usize, stats: &SourceStats, pass: &mut Pass<'_>) -> io::Result<u64> {
        let meta = self.file.metadata()?;
        let size = meta.len();
        let lag = size.saturating_sub(self.lines.resume_offset(self.pos));
        let sig = signature(&meta);
        let mut rewritten = size < self.pos;
        if !rewritten && sig != self.seen {
            let head = Head::read(&self.file)?;
            if !self.key.fingerprint.matches(head.bytes()) {
                // Same inode, other first bytes: truncated and written again
                // past our offset before we looked.
                rewritten = true;
            } else if head.bytes().len() > usize::from(self.key.fingerprint.len) {
                // The file was short when first seen: a longer fingerprint
                // tells it apart from a reused inode more surely.
                self.key = FileKey::from_head(&meta, &head);
            }
        }
        self.seen = sig;
        if rewritten {
            tracing::debug!("tailer: {} truncated, reading from 0", self.path.display());
            stats.truncations.fetch_add(1, Ordering::Relaxed);
            self.key = FileKey::from_head(&meta, &Head::read(&self.file)?);
            self.pos = 0;
            self.lines = Splitter::new(0, false, pass.options.max_line_bytes);
            (pass.out)(self.announce(source, 0));
        }

        let mut grew = false;
        loop {
            let n = match self.file.read_at(&mut pass.buf[..], self.pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            grew = true;
            let mut data = Vec::new();
            let fed = self.lines.feed(self.pos, &pass.buf[..n], &mut data);
            self.pos += n as u64;
            stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            stats.lines.fetch_add(fed.lines, Ordering::Relaxed);
            stats.lines_cut.fetch_add(fed.cut, Ordering::Relaxed);
            if let Some(start) = fed.first_line_start {
                let end = self.lines.resume_offset(self.pos);
                (pass.out)(self.chunk(source, start, end, data));
            }
        }
        if grew {
            self.last_growth = pass.now;
        }
        Ok(lag)
    }

    /// Done draining: the held partial line comes out with a `\n` added, and
    /// the final offset is remembered in case the file is found again.
    fn close(mut self, source: usize, stats: &SourceStats, pass: &mut Pass<'_>) {
        tracing::debug!(
            "tailer: closing {} at offset {}",
            self.path.display(),
            self.pos
        );
        let mut data = Vec::new();
        if let Some(start) = self.lines.flush(&mut data) {
            stats.lines.fetch_add(1, Ordering::Relaxed);
            (pass.out)(self.chunk(source, start, self.pos, data));
        }
        let now = unix_now();
        pass.known.record(&self.key, self.pos, &self.path, now);
        pass.known.prune(now, RETENTION);
    }
}

/// What one read gave.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fed {
    /// File offset where the first emitted line starts; `None` if no line
    /// was completed.
    first_line_start: Option<u64>,
    lines: u64,
    cut: u64,
}

/// Cuts bytes into lines, holding at most `max_line` bytes of an unfinished
/// line between reads.
struct Splitter {
    max_line: usize,
    /// The unfinished line so far (never more than `max_line` bytes).
    partial: Vec<u8>,
    /// Skipping the rest of a line already emitted cut.
    discarding: bool,
    /// File offset where `partial` (or the next line) starts.
    line_start: u64,
}

impl Splitter {
    fn new(offset: u64, discarding: bool, max_line: usize) -> Splitter {
        Splitter {
            max_line,
            partial: Vec::new(),
            discarding,
            line_start: offset,
        }
    }

    /// Where reading resumes if this splitter's state were lost, once bytes
    /// up to `pos` have been fed: the start of the held partial line, if
    /// any, else `pos`.
    fn resume_offset(&self, pos: u64) -> u64 {
        if self.partial.is_empty() {
            pos
        } else {
            self.line_start
        }
    }

    fn emit_first(&self, fed: &mut Fed, out: &mut Vec<u8>, upcoming: usize) {
        if fed.first_line_start.is_none() {
            fed.first_line_start = Some(self.line_start);
            out.reserve(self.partial.len() + upcoming + 1);
        }
    }

    /// Feeds `bytes` read at file offset `at` (right after what was fed
    /// before); appends completed lines, each with its `\n`, to `out`.
    fn feed(&mut self, at: u64, bytes: &[u8], out: &mut Vec<u8>) -> Fed {
        let mut fed = Fed::default();
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let newline = memchr(b'\n', rest);
            if self.discarding {
                match newline {
                    Some(k) => {
                        i += k + 1;
                        self.discarding = false;
                        self.line_start = at + i as u64;
                    }
                    None => i = bytes.len(),
                }
                continue;
            }
            match newline {
                Some(k) => {
                    self.emit_first(&mut fed, out, rest.len());
                    let line = &rest[..k];
                    let room = self.max_line - self.partial.len();
                    out.extend_from_slice(&self.partial);
                    if line.len() > room {
                        out.extend_from_slice(&line[..room]);
                        fed.cut += 1;
                    } else {
                        out.extend_from_slice(line);
                    }
                    out.push(b'\n');
                    fed.lines += 1;
                    self.partial.clear();
                    i += k + 1;
                    self.line_start = at + i as u64;
                }
                None => {
                    let room = self.max_line - self.partial.len();
                    if rest.len() > room {
                        // Too long already: emit it cut now, skip the rest,
                        // and never hold more than max_line bytes.
                        self.emit_first(&mut fed, out, room);
                        out.extend_from_slice(&self.partial);
                        out.extend_from_slice(&rest[..room]);
                        out.push(b'\n');
                        fed.lines += 1;
                        fed.cut += 1;
                        self.partial.clear();
                        self.discarding = true;
                    } else {
                        self.hold(rest);
                    }
                    i = bytes.len();
                }
            }
        }
        fed
    }

    /// Adds to the unfinished line, growing its buffer to at most
    /// `max_line` bytes (plain `extend` could double it past that).
    fn hold(&mut self, bytes: &[u8]) {
        let needed = self.partial.len() + bytes.len();
        if needed > self.partial.capacity() {
            let target = (self.partial.capacity() * 2).clamp(needed, self.max_line.max(needed));
            self.partial.reserve_exact(target - self.partial.len());
        }
        self.partial.extend_from_slice(bytes);
    }

    /// Emits the held partial line with a `\n` added; returns where it
    /// started, if there was one.
    fn flush(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        self.discarding = false;
        if self.partial.is_empty() {
            return None;
        }
        out.extend_from_slice(&self.partial);
        out.push(b'\n');
        self.partial.clear();
        Some(self.line_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    use crate::source::checkpoint::Checkpointer;

    fn options() -> TailerOptions {
        TailerOptions {
            use_notify: false,
            poll_interval: Duration::from_secs(60),
            rotate_wait: Duration::from_secs(3600),
            ..TailerOptions::default()
        }
    }

    fn spec(pattern: &Path, start_at: StartAt) -> WatchSpec {
        WatchSpec {
            source: 0,
            pattern: pattern.to_path_buf(),
            start_at,
        }
    }

    fn tailer(pattern: &Path, start_at: StartAt) -> Tailer {
        Tailer::new(
            vec![spec(pattern, start_at)],
            options(),
            &Checkpoints::new(),
        )
    }

    fn poll(t: &mut Tailer) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        t.poll_once(&mut |c| chunks.push(c)).expect("poll_once");
        chunks
    }

    fn lines(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| c.lines().map(|l| String::from_utf8_lossy(l).into_owned()))
            .collect()
    }

    fn poll_lines(t: &mut Tailer) -> Vec<String> {
        lines(&poll(t))
    }

    fn append(path: &Path, bytes: &[u8]) {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| f.write_all(bytes))
            .expect("append");
    }

    fn stat(t: &Tailer, get: impl Fn(&SourceStats) -> &AtomicU64) -> u64 {
        get(&t.stats(0)).load(Ordering::Relaxed)
    }

    /// Every non-empty chunk holds whole lines and consistent offsets.
    fn assert_well_formed(chunks: &[Chunk]) {
        for c in chunks {
            assert!(c.start_offset <= c.end_offset, "{c:?}");
            if !c.data.is_empty() {
                assert_eq!(c.data.last(), Some(&b'\n'), "{c:?}");
            }
        }
    }

    #[test]
    fn reads_a_path_line_by_line_with_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, b"a\nbb\n");
        let mut t = tailer(&path, StartAt::Beginning);
        let chunks = poll(&mut t);
        // The announcement of where reading starts, then the lines.
        assert_eq!(chunks.len(), 2);
        assert!(chunks[0].data.is_empty());
        assert_eq!((chunks[0].start_offset, chunks[0].end_offset), (0, 0));
        assert_eq!(chunks[1].data, b"a\nbb\n");
        assert_eq!((chunks[1].start_offset, chunks[1].end_offset), (0, 5));
        assert_eq!(&*chunks[1].path, path.as_path());

        append(&path, b"ccc\n");
        let chunks = poll(&mut t);
        assert_eq!(lines(&chunks), ["ccc"]);
        assert_eq!((chunks[0].start_offset, chunks[0].end_offset), (5, 9));
        assert!(poll(&mut t).is_empty());
        assert_eq!(stat(&t, |s| &s.lines), 3);
        assert_eq!(stat(&t, |s| &s.bytes), 9);
        assert_eq!(stat(&t, |s| &s.files), 1);
    }

    #[test]
    fn start_at_end_skips_existing_lines_but_keeps_an_unfinished_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, b"old1\nold2\npart");
        let mut t = tailer(&path, StartAt::End);
        let chunks = poll(&mut t);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].end_offset, 10);
        append(&path, b"ial\nnew\n");
        assert_eq!(poll_lines(&mut t), ["partial", "new"]);
    }

    #[test]
    fn files_found_after_the_first_pass_start_at_zero_even_with_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        append(&dir.path().join("a.log"), b"existing\n");
        let mut t = tailer(&dir.path().join("*.log"), StartAt::End);
        assert!(poll_lines(&mut t).is_empty());
        append(&dir.path().join("b.log"), b"1\n2\n");
        assert_eq!(poll_lines(&mut t), ["1", "2"]);
    }

    #[test]
    fn a_missing_file_is_waited_for_and_read_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let mut t = tailer(&path, StartAt::End);
        assert!(poll(&mut t).is_empty());
        assert!(poll(&mut t).is_empty());
        append(&path, b"first\n");
        assert_eq!(poll_lines(&mut t), ["first"]);
    }

    #[test]
    fn a_missing_directory_is_waited_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("later");
        let mut t = tailer(&sub.join("*.log"), StartAt::End);
        assert!(poll(&mut t).is_empty());
        fs::create_dir(&sub).expect("mkdir");
        append(&sub.join("x.log"), b"hello\n");
        assert_eq!(poll_lines(&mut t), ["hello"]);
    }

    #[test]
    fn glob_picks_up_files_that_start_to_match_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = tailer(&dir.path().join("*.log"), StartAt::Beginning);
        append(&dir.path().join("a.log"), b"a1\n");
        assert_eq!(poll_lines(&mut t), ["a1"]);
        append(&dir.path().join("notes.txt"), b"ignored\n");
        append(&dir.path().join(".hidden.log"), b"ignored\n");
        fs::create_dir(dir.path().join("dir.log")).expect("mkdir");
        assert!(poll_lines(&mut t).is_empty());
        // A file renamed into the pattern is picked up from its start.
        fs::rename(dir.path().join("notes.txt"), dir.path().join("notes.log")).expect("rename");
        append(&dir.path().join("a.log"), b"a2\n");
        assert_eq!(poll_lines(&mut t), ["a2", "ignored"]);
        assert_eq!(stat(&t, |s| &s.files), 2);
    }

    #[test]
    fn a_file_rotated_within_the_glob_is_not_read_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let log1 = dir.path().join("app.log.1");
        let mut t = tailer(&dir.path().join("app.log*"), StartAt::Beginning);
        append(&log, b"1\n2\n");
        assert_eq!(poll_lines(&mut t), ["1", "2"]);

        fs::rename(&log, &log1).expect("rename");
        append(&log, b"3\n");
        append(&log1, b"2b\n");
        let chunks = poll(&mut t);
        assert_well_formed(&chunks);
        // The old file's rest first, then the new file from its start.
        assert_eq!(lines(&chunks), ["2b", "3"]);
        let old = chunks.iter().find(|c| !c.data.is_empty()).expect("chunk");
        assert_eq!(&*old.path, log1.as_path());
        assert_eq!(stat(&t, |s| &s.rotations), 1);
        assert!(poll(&mut t).is_empty());
    }

    #[test]
    fn rename_and_create_drains_the_old_file_first_and_while_it_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let old = dir.path().join("app.log.1");
        let mut t = tailer(&log, StartAt::Beginning);
        append(&log, b"1\n");
        assert_eq!(poll_lines(&mut t), ["1"]);

        fs::rename(&log, &old).expect("rename");
        append(&log, b"new1\n");
        append(&old, b"old2\n");
        assert_eq!(poll_lines(&mut t), ["old2", "new1"]);
        // The writer has not reopened yet: the old file is still read.
        append(&old, b"old3\n");
        append(&log, b"new2\n");
        assert_eq!(poll_lines(&mut t), ["old3", "new2"]);
        assert_eq!(stat(&t, |s| &s.files), 2);
        assert_eq!(stat(&t, |s| &s.rotations), 1);
    }

    /// A tailer of `log` from its start that closes a rotated file as soon
    /// as it stops growing (`rotate_wait` zero).
    fn closing_at_once(log: &Path) -> Tailer {
        let opts = TailerOptions {
            rotate_wait: Duration::ZERO,
            ..options()
        };
        Tailer::new(
            vec![spec(log, StartAt::Beginning)],
            opts,
            &Checkpoints::new(),
        )
    }

    #[test]
    fn a_rotated_file_is_closed_after_rotate_wait_and_its_partial_line_flushed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let old = dir.path().join("app.log.1");
        let mut t = closing_at_once(&log);
        append(&log, b"1\npart");
        assert_eq!(poll_lines(&mut t), ["1"]);

        fs::rename(&log, &old).expect("rename");
        append(&old, b"ial");
        let chunks = poll(&mut t);
        // Drained, not grown for rotate_wait (zero): closed, the unfinished
        // line emitted with a newline added.
        assert_eq!(lines(&chunks), ["partial"]);
        assert_eq!(chunks[0].data, b"partial\n");
        assert_eq!((chunks[0].start_offset, chunks[0].end_offset), (2, 9));
        assert_eq!(stat(&t, |s| &s.files), 0);
        // Written to after it was closed: the rest of the line that was
        // flushed is not a line of its own; the next one is read.
        append(&old, b"late\nlater\n");
        assert_eq!(poll_lines(&mut t), ["later"]);
    }

    #[test]
    fn copytruncate_restarts_at_zero_and_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let mut t = tailer(&log, StartAt::Beginning);
        append(&log, b"1\n2\n");
        assert_eq!(poll_lines(&mut t), ["1", "2"]);

        OpenOptions::new()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        append(&log, b"3\n");
        let chunks = poll(&mut t);
        assert!(chunks[0].data.is_empty(), "restart announced");
        assert_eq!(chunks[0].end_offset, 0);
        assert_eq!(lines(&chunks), ["3"]);
        assert_eq!(stat(&t, |s| &s.truncations), 1);
    }

    #[test]
    fn truncation_regrown_past_our_offset_is_caught_by_the_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let mut t = tailer(&log, StartAt::Beginning);
        append(&log, b"aa\n");
        assert_eq!(poll_lines(&mut t), ["aa"]);
        fs::write(&log, b"bbbbbb\ncc\n").expect("rewrite in place");
        assert_eq!(poll_lines(&mut t), ["bbbbbb", "cc"]);
        assert_eq!(stat(&t, |s| &s.truncations), 1);
    }

    #[test]
    fn a_deleted_file_is_drained_then_the_recreated_one_read_from_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let mut writer = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .expect("open");
        let mut t = tailer(&log, StartAt::Beginning);
        writer.write_all(b"1\n").expect("write");
        assert_eq!(poll_lines(&mut t), ["1"]);

        fs::remove_file(&log).expect("delete");
        writer.write_all(b"2 to the deleted file\n").expect("write");
        append(&log, b"3\n");
        assert_eq!(poll_lines(&mut t), ["2 to the deleted file", "3"]);
        assert_eq!(stat(&t, |s| &s.rotations), 1);
    }

    #[test]
    fn a_symlink_is_followed_and_retargeting_it_is_a_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        let links = dir.path().join("links");
        fs::create_dir(&real).expect("mkdir");
        fs::create_dir(&links).expect("mkdir");
        let t1 = real.join("t1.log");
        let t2 = real.join("t2.log");
        let link = links.join("current.log");
        append(&t1, b"a\n");
        symlink(&t1, &link).expect("symlink");

        let mut t = tailer(&link, StartAt::Beginning);
        let chunks = poll(&mut t);
        assert_eq!(lines(&chunks), ["a"]);
        assert_eq!(&*chunks[0].path, link.as_path());
        // Writes to the target land in another directory: watch it too.
        let real = fs::canonicalize(&real).expect("canonicalize");
        assert!(t.watch_dirs().contains(&real), "{:?}", t.watch_dirs());
        append(&t1, b"b\n");
        assert_eq!(poll_lines(&mut t), ["b"]);

        append(&t2, b"c\n");
        let tmp = links.join("tmp");
        symlink(&t2, &tmp).expect("symlink");
        fs::rename(&tmp, &link).expect("retarget");
        append(&t1, b"d\n");
        assert_eq!(poll_lines(&mut t), ["d", "c"]);
        assert_eq!(stat(&t, |s| &s.rotations), 1);
    }

    #[test]
    fn a_partial_line_is_held_until_its_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let mut t = tailer(&log, StartAt::Beginning);
        append(&log, b"x\nab");
        let chunks = poll(&mut t);
        assert_eq!(lines(&chunks), ["x"]);
        assert_eq!(chunks.last().map(|c| c.end_offset), Some(2));
        append(&log, b"c");
        assert!(poll(&mut t).is_empty());
        assert_eq!(t.followed()[0].offset, 2);
        assert_eq!(stat(&t, |s| &s.lag_bytes), 3);
        append(&log, b"d\n");
        let chunks = poll(&mut t);
        assert_eq!(lines(&chunks), ["abcd"]);
        assert_eq!((chunks[0].start_offset, chunks[0].end_offset), (2, 7));
        assert_eq!(poll(&mut t), []);
        assert_eq!(stat(&t, |s| &s.lag_bytes), 0);
    }

    #[test]
    fn long_lines_are_cut_and_their_rest_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        for read_buf_bytes in [3, 1024] {
            let opts = TailerOptions {
                max_line_bytes: 8,
                read_buf_bytes,
                ..options()
            };
            let _ = fs::remove_file(&log);
            append(&log, b"0123456789abcdef\nshort\n01234567\n");
            let mut t = Tailer::new(
                vec![spec(&log, StartAt::Beginning)],
                opts,
                &Checkpoints::new(),
            );
            let chunks = poll(&mut t);
            assert_well_formed(&chunks);
            assert_eq!(lines(&chunks), ["01234567", "short", "01234567"]);
            assert_eq!(stat(&t, |s| &s.lines_cut), 1);

            // Too long before its newline arrives: emitted cut at once.
            append(&log, b"ABCDEFGHIJ");
            let chunks = poll(&mut t);
            assert_eq!(lines(&chunks), ["ABCDEFGH"]);
            // end_offset is past the bytes skipped so far (all 10 when read
            // at once; with 3-byte reads the cut is known after 9).
            let end = chunks.last().map_or(0, |c| c.end_offset);
            assert!(end > 32 + 8, "{chunks:?}");
            if read_buf_bytes > 10 {
                assert_eq!(end, 32 + 10);
            }
            append(&log, b"KLM\nok\n");
            assert_eq!(poll_lines(&mut t), ["ok"]);
            assert_eq!(stat(&t, |s| &s.lines_cut), 2);
        }
    }

    #[test]
    fn a_huge_line_without_newline_does_not_grow_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        // 100 MB of zero bytes, no newline (sparse: cheap to make).
        let f = File::create(&log).expect("create");
        f.set_len(100 << 20).expect("set_len");
        let mut t = tailer(&log, StartAt::Beginning);
        let chunks = poll(&mut t);
        let data: Vec<&Chunk> = chunks.iter().filter(|c| !c.data.is_empty()).collect();
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].data.len(), 64 * 1024 + 1);
        assert_eq!(stat(&t, |s| &s.lines_cut), 1);
        let held = &t.specs[0].files[0].lines;
        assert!(
            held.partial.capacity() <= 64 * 1024,
            "{}",
            held.partial.capacity()
        );
        assert!(held.discarding);
        append(&log, b"\nnext\n");
        assert_eq!(poll_lines(&mut t), ["next"]);
    }

    #[test]
    fn invalid_utf8_and_carriage_returns_pass_through_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let bytes = b"\xff\xfe bad\r\n\x00ok\r\n\xc3\n";
        append(&log, bytes);
        let mut t = tailer(&log, StartAt::Beginning);
        let chunks = poll(&mut t);
        let data: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(data, bytes);
    }

    #[test]
    fn chunks_are_batched_per_read_with_contiguous_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        for i in 0..10 {
            append(&log, format!("line-{i:02}\n").as_bytes());
        }
        let opts = TailerOptions {
            read_buf_bytes: 16,
            ..options()
        };
        let mut t = Tailer::new(
            vec![spec(&log, StartAt::Beginning)],
            opts,
            &Checkpoints::new(),
        );
        let chunks: Vec<Chunk> = poll(&mut t)
            .into_iter()
            .filter(|c| !c.data.is_empty())
            .collect();
        assert_eq!(chunks.len(), 5);
        for pair in chunks.windows(2) {
            assert_eq!(pair[0].end_offset, pair[1].start_offset);
        }
        assert!(chunks.iter().all(|c| c.lines().count() == 2));
    }

    #[test]
    fn a_checkpoint_resumes_at_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"1\n2\n3\n");
        let f = File::open(&log).expect("open");
        let key = FileKey::of(&f, &f.metadata().expect("meta")).expect("key");
        let mut cps = Checkpoints::new();
        cps.record(&key, 2, &log, unix_now());
        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        let chunks = poll(&mut t);
        assert_eq!(chunks[0].end_offset, 2);
        assert_eq!(lines(&chunks), ["2", "3"]);
    }

    #[test]
    fn a_reused_inode_with_other_content_is_not_resumed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"1\n2\n3\n");
        let meta = fs::metadata(&log).expect("meta");
        // What a checkpoint of an earlier file with this inode looks like.
        let earlier = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint: crate::source::fingerprint::Fingerprint::of_head(b"other\n"),
        };
        let mut cps = Checkpoints::new();
        cps.record(&earlier, 4, Path::new("/elsewhere/other.log"), unix_now());
        let mut t = Tailer::new(vec![spec(&log, StartAt::Beginning)], options(), &cps);
        assert_eq!(poll_lines(&mut t), ["1", "2", "3"]);
    }

    #[test]
    fn a_checkpoint_past_the_end_means_truncated_while_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"1\n2\n");
        let f = File::open(&log).expect("open");
        let key = FileKey::of(&f, &f.metadata().expect("meta")).expect("key");
        let mut cps = Checkpoints::new();
        cps.record(&key, 100, &log, unix_now());
        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        assert_eq!(poll_lines(&mut t), ["1", "2"]);
        assert_eq!(stat(&t, |s| &s.truncations), 1);
    }

    #[test]
    fn resuming_in_the_middle_of_a_cut_line_skips_its_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let opts = TailerOptions {
            max_line_bytes: 8,
            ..options()
        };
        let mut t = Tailer::new(
            vec![spec(&log, StartAt::Beginning)],
            opts.clone(),
            &Checkpoints::new(),
        );
        append(&log, b"0123456789");
        let mut cps = Checkpoints::new();
        for c in poll(&mut t) {
            cps.record(&c.file, c.end_offset, &c.path, unix_now());
        }
        drop(t);
        append(&log, b"xyz\nok\n");
        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], opts, &cps);
        assert_eq!(poll_lines(&mut t), ["ok"]);
    }

    #[test]
    fn a_file_that_appeared_while_stopped_is_read_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"1\n");
        let mut t = tailer(&log, StartAt::Beginning);
        let mut cps = Checkpoints::new();
        for c in poll(&mut t) {
            cps.record(&c.file, c.end_offset, &c.path, unix_now());
        }
        drop(t);

        // Rotated while we were not running.
        fs::rename(&log, dir.path().join("app.log.1")).expect("rename");
        append(&log, b"new\n");
        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        let chunks = poll(&mut t);
        assert_eq!(lines(&chunks), ["new"]);
        for c in chunks {
            cps.record(&c.file, c.end_offset, &c.path, unix_now());
        }

        // But a file last modified well before our last checkpoint, that we
        // did not follow, starts at the end as configured.
        let other = dir.path().join("other.log");
        append(&other, b"old\n");
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&other)
            .and_then(|f| f.set_modified(hour_ago))
            .expect("set mtime");
        let mut t = Tailer::new(
            vec![spec(&dir.path().join("*.log"), StartAt::End)],
            options(),
            &cps,
        );
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
        append(&other, b"fresh\n");
        assert_eq!(poll_lines(&mut t), ["fresh"]);
    }

    #[test]
    fn a_file_rotated_while_stopped_is_drained_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, b"one\n");
        let mut t = tailer(&log, StartAt::Beginning);
        assert_eq!(poll_lines(&mut t), vec!["one"]);
        let mut cps = Checkpoints::new();
        for f in t.followed() {
            cps.record(
                &f.file,
                f.offset,
                &f.path,
                crate::source::checkpoint::unix_now(),
            );
        }
        drop(t);
        // While stopped: two more lines, then logrotate renames and creates.
        append(&log, b"two\nthree\n");
        fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, b"four\n");
        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        assert_eq!(poll_lines(&mut t), vec!["two", "three", "four"]);
    }

    /// Follows `log` from its start, records where the tailer got to as the
    /// daemon would, and stops.
    fn follow_and_stop(log: &Path) -> Checkpoints {
        let mut t = tailer(log, StartAt::Beginning);
        let mut cps = Checkpoints::new();
        for c in poll(&mut t) {
            cps.record(&c.file, c.end_offset, &c.path, unix_now());
        }
        cps
    }

    /// A first line long enough that the file's fingerprint covers all of
    /// HEAD_BYTES, as any real log's would.
    fn long_first_line(tag: &str) -> Vec<u8> {
        let mut line = format!("{tag} ").into_bytes();
        line.resize(HEAD_BYTES + 10, b'x');
        line.push(b'\n');
        line
    }

    #[test]
    fn a_file_created_and_rotated_while_stopped_is_read_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"a1\n");
        let cps = follow_and_stop(&log);

        // Stopped through two daily rotations: app.log -> .1 -> .2, and the
        // file created in between is itself rotated before we start again.
        append(&log, b"a2\n");
        fs::rename(dir.path().join("app.log"), dir.path().join("app.log.1")).expect("rename");
        append(&log, b"b1\nb2\n");
        fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).expect("rename");
        fs::rename(dir.path().join("app.log"), dir.path().join("app.log.1")).expect("rename");
        append(&log, b"c1\n");
        // Compressed and unrelated files are left alone.
        append(&dir.path().join("app.log.3.gz"), b"gz\n");
        append(&dir.path().join("other.log.1"), b"other\n");

        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        assert_eq!(poll_lines(&mut t), ["a2", "b1", "b2", "c1"]);
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
    }

    #[test]
    fn an_old_rotated_file_we_never_followed_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let old = dir.path().join("app.log.1");
        append(&old, b"last week\n");
        File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(86_400)))
            .expect("set mtime");
        append(&log, b"a1\n");
        let cps = follow_and_stop(&log);
        append(&log, b"a2\n");
        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        assert_eq!(poll_lines(&mut t), ["a2"]);
    }

    #[test]
    fn a_copytruncate_while_stopped_resumes_in_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, &long_first_line("first"));
        append(&log, b"read\n");
        let cps = follow_and_stop(&log);

        // While stopped: more lines, then logrotate's copytruncate.
        append(&log, b"unread1\nunread2\n");
        fs::copy(&log, dir.path().join("app.log.1")).expect("copy");
        File::options()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        append(&log, b"after\n");

        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        assert_eq!(poll_lines(&mut t), ["unread1", "unread2", "after"]);
    }

    #[test]
    fn a_copy_of_a_file_still_followed_is_not_read_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, &long_first_line("first"));
        let cps = follow_and_stop(&log);
        append(&log, b"new\n");
        // A backup copy, the original left alone.
        fs::copy(&log, dir.path().join("app.log.1")).expect("copy");

        let mut t = Tailer::new(vec![spec(&log, StartAt::End)], options(), &cps);
        assert_eq!(poll_lines(&mut t), ["new"]);
    }

    #[test]
    fn a_file_created_and_rotated_between_two_passes_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"a1\n");
        let mut t = tailer(&log, StartAt::Beginning);
        assert_eq!(poll_lines(&mut t), ["a1"]);

        // Two rotations before the next pass: the file in between is never
        // under the pattern's name when the tailer looks.
        append(&log, b"a2\n");
        fs::rename(dir.path().join("app.log"), dir.path().join("app.log.1")).expect("rename");
        append(&log, b"b1\nb2\n");
        fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).expect("rename");
        fs::rename(dir.path().join("app.log"), dir.path().join("app.log.1")).expect("rename");
        append(&log, b"c1\n");
        assert_eq!(poll_lines(&mut t), ["a2", "b1", "b2", "c1"]);
        append(&dir.path().join("app.log.1"), b"b3\n");
        assert_eq!(poll_lines(&mut t), ["b3"]);
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
    }

    #[test]
    fn a_rotated_file_still_written_after_it_was_closed_is_read_at_the_next_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let old = dir.path().join("app.log.1");
        let mut t = closing_at_once(&log);
        append(&log, b"1\n");
        assert_eq!(poll_lines(&mut t), ["1"]);
        // Rotated, but the service never reopens its log: it writes on to
        // the old file after we closed it.
        fs::rename(&log, &old).expect("rename");
        append(&log, b"");
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
        assert_eq!(t.followed().len(), 1, "the rotated file is closed");
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::open(dir.path())
            .and_then(|d| d.set_modified(hour_ago))
            .expect("set the directory's mtime");
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
        append(&old, b"late\n");
        // Nothing renamed or created since: the next listing is due only
        // RESCAN_EVERY after the last.
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
        t.specs[0].last_scan = Some(SystemTime::now() - RESCAN_EVERY - Duration::from_secs(1));
        assert_eq!(poll_lines(&mut t), ["late"]);
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
    }

    #[test]
    fn a_copytruncate_between_two_passes_reads_the_rest_from_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, &long_first_line("first"));
        append(&log, b"read\npart");
        let mut t = tailer(&log, StartAt::Beginning);
        assert_eq!(poll_lines(&mut t).len(), 2);

        append(&log, b"ial\nunread\n");
        fs::copy(&log, dir.path().join("app.log.1")).expect("copy");
        File::options()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        append(&log, b"after\n");
        assert_eq!(poll_lines(&mut t), ["partial", "unread", "after"]);
        assert_eq!(poll_lines(&mut t), Vec::<String>::new());
    }

    #[test]
    fn a_copytruncate_regrown_past_our_offset_before_the_pass_still_reads_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, &long_first_line("first"));
        let mut t = tailer(&log, StartAt::Beginning);
        assert_eq!(poll_lines(&mut t).len(), 1);

        append(&log, b"unread\n");
        fs::copy(&log, dir.path().join("app.log.1")).expect("copy");
        File::options()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        append(&log, &long_first_line("second"));
        let got = poll_lines(&mut t);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], "unread");
        assert!(got[1].starts_with("second "), "{got:?}");
    }

    #[test]
    fn a_copy_of_a_followed_file_made_between_two_passes_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, &long_first_line("first"));
        let mut t = tailer(&log, StartAt::Beginning);
        assert_eq!(poll_lines(&mut t).len(), 1);
        append(&log, b"new\n");
        fs::copy(&log, dir.path().join("app.log.1")).expect("copy");
        assert_eq!(poll_lines(&mut t), ["new"]);
    }

    #[test]
    fn stats_are_kept_per_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        append(&a, b"1\n");
        append(&b, b"1\n2\n");
        let specs = vec![
            WatchSpec {
                source: 3,
                pattern: a,
                start_at: StartAt::Beginning,
            },
            WatchSpec {
                source: 7,
                pattern: b,
                start_at: StartAt::Beginning,
            },
        ];
        let mut t = Tailer::new(specs, options(), &Checkpoints::new());
        let chunks = poll(&mut t);
        assert!(chunks.iter().any(|c| c.source == 3));
        assert_eq!(t.stats(3).lines.load(Ordering::Relaxed), 1);
        assert_eq!(t.stats(7).lines.load(Ordering::Relaxed), 2);
        assert_eq!(t.stats(99).lines.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn patterns_allow_globs_in_the_file_name_only() {
        assert!(check_pattern(Path::new("/var/log/auth.log")).is_ok());
        assert!(check_pattern(Path::new("/var/log/myapi/*.log")).is_ok());
        assert!(check_pattern(Path::new("app-[0-9].log")).is_ok());
        assert!(matches!(
            check_pattern(Path::new("/var/log/*/x.log")),
            Err(PatternError::GlobInDirectory(_))
        ));
        assert!(matches!(
            check_pattern(Path::new("/var/log/[.log")),
            Err(PatternError::InvalidGlob { .. })
        ));
        assert!(matches!(
            check_pattern(Path::new("/")),
            Err(PatternError::NoFileName(_))
        ));
    }

    #[test]
    fn splitter_buffer_never_grows_past_the_line_limit() {
        let mut s = Splitter::new(0, false, 1000);
        let mut out = Vec::new();
        let mut at = 0;
        for _ in 0..99 {
            s.feed(at, b"0123456789", &mut out);
            at += 10;
        }
        assert_eq!(s.partial.len(), 990);
        assert!(s.partial.capacity() <= 1000, "{}", s.partial.capacity());
        s.feed(at, b"0123456789", &mut out);
        assert!(out.is_empty(), "exactly the limit is still held");
        s.feed(at + 10, b"X", &mut out);
        assert_eq!(out.len(), 1001);
        assert!(s.discarding);
    }

    #[test]
    fn splitter_never_holds_more_than_the_line_limit() {
        let mut s = Splitter::new(0, false, 4);
        let mut out = Vec::new();
        let fed = s.feed(0, b"ab", &mut out);
        assert_eq!(fed, Fed::default());
        let fed = s.feed(2, b"cd", &mut out);
        assert_eq!(fed.lines, 0);
        assert_eq!(s.partial, b"abcd");
        let fed = s.feed(4, b"\n", &mut out);
        assert_eq!((fed.first_line_start, fed.lines, fed.cut), (Some(0), 1, 0));
        assert_eq!(out, b"abcd\n");
        out.clear();
        let fed = s.feed(5, b"efghi", &mut out);
        assert_eq!((fed.first_line_start, fed.lines, fed.cut), (Some(5), 1, 1));
        assert_eq!(out, b"efgh\n");
        assert!(s.partial.is_empty() && s.discarding);
        assert_eq!(s.resume_offset(10), 10);
    }

    // ---- run(): the real loop on a thread ----

    const DEADLINE: Duration = Duration::from_secs(5);

    struct Running {
        stop: Arc<AtomicBool>,
        chunks: mpsc::Receiver<Chunk>,
        thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    }

    impl Running {
        fn start(pattern: &Path, opts: TailerOptions) -> Running {
            let t = Tailer::new(
                vec![spec(pattern, StartAt::Beginning)],
                opts,
                &Checkpoints::new(),
            );
            let stop = Arc::new(AtomicBool::new(false));
            let (tx, chunks) = mpsc::channel();
            let thread_stop = Arc::clone(&stop);
            let thread =
                std::thread::spawn(move || t.run(move |c| tx.send(c).is_ok(), thread_stop));
            Running {
                stop,
                chunks,
                thread: Some(thread),
            }
        }

        /// Waits until `want` lines have come, or the deadline.
        fn lines(&self, want: usize) -> Vec<String> {
            let deadline = Instant::now() + DEADLINE;
            let mut got = Vec::new();
            while got.len() < want {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.chunks.recv_timeout(left) {
                    Ok(c) => got.extend(lines(&[c])),
                    Err(_) => break,
                }
            }
            got
        }

        /// Waits for the first chunk: the loop has made its first pass, with
        /// its directory watches in place.
        fn started(&self) {
            self.chunks.recv_timeout(DEADLINE).expect("first pass");
        }

        fn stop(mut self) -> Duration {
            let asked = Instant::now();
            self.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                thread.join().expect("join").expect("run");
            }
            asked.elapsed()
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn notify_only() -> TailerOptions {
        TailerOptions {
            use_notify: true,
            // Far beyond the deadline: only an event can wake the loop.
            poll_interval: Duration::from_secs(60),
            ..options()
        }
    }

    #[test]
    fn run_wakes_on_inotify_events_and_follows_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"");
        let running = Running::start(&log, notify_only());
        running.started();

        append(&log, b"hello\n");
        assert_eq!(running.lines(1), ["hello"]);
        fs::rename(&log, dir.path().join("app.log.1")).expect("rename");
        append(&dir.path().join("app.log.1"), b"last old\n");
        append(&log, b"first new\n");
        assert_eq!(running.lines(2), ["last old", "first new"]);
        assert!(running.stop() < Duration::from_secs(2));
    }

    #[test]
    fn run_is_not_woken_by_its_own_reads() {
        // notify also reports IN_OPEN, which our own read_dir and opens
        // cause: if those woke the loop it would spin instead of waiting.
        let dir = tempfile::tempdir().expect("tempdir");
        append(&dir.path().join("a.log"), b"a\n");
        let t = Tailer::new(
            vec![spec(&dir.path().join("*.log"), StartAt::Beginning)],
            notify_only(),
            &Checkpoints::new(),
        );
        let stats = t.stats(0);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, chunks) = mpsc::channel();
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::spawn(move || t.run(move |c| tx.send(c).is_ok(), thread_stop));
        chunks.recv_timeout(DEADLINE).expect("first pass");
        // Measuring that nothing happens takes a while by nature.
        std::thread::sleep(Duration::from_millis(500));
        let passes = stats.passes.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        thread.join().expect("join").expect("run");
        assert!(passes <= 3, "{passes} passes without any change");
    }

    #[test]
    fn run_wakes_when_a_missing_directory_appears() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("sub");
        let opts = TailerOptions {
            poll_interval: Duration::from_millis(50),
            ..notify_only()
        };
        let running = Running::start(&sub.join("*.log"), opts);
        fs::create_dir(&sub).expect("mkdir");
        append(&sub.join("a.log"), b"a\n");
        assert_eq!(running.lines(1), ["a"]);
        running.stop();
    }

    #[test]
    fn run_polls_without_inotify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let opts = TailerOptions {
            use_notify: false,
            poll_interval: Duration::from_millis(20),
            ..options()
        };
        let running = Running::start(&log, opts);
        append(&log, b"polled\n");
        assert_eq!(running.lines(1), ["polled"]);
        running.stop();
    }

    #[test]
    fn run_stops_promptly_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let running = Running::start(&dir.path().join("app.log"), notify_only());
        assert!(running.stop() < Duration::from_secs(2));
    }

    #[test]
    fn run_returns_when_the_receiver_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, b"x\n");
        let t = Tailer::new(
            vec![spec(&log, StartAt::Beginning)],
            notify_only(),
            &Checkpoints::new(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(t.run(|_| false, stop));
        });
        let result = done.recv_timeout(DEADLINE).expect("run returned");
        assert!(result.is_ok());
    }

    // ---- the model-based test ----

    mod model {
        use super::*;
        use proptest::prelude::*;

        const MAX_LINE: usize = 48;

        #[derive(Clone, Debug)]
        enum Op {
            /// Full lines to the file at the pattern's path (completing its
            /// unfinished line first, if any).
            Append {
                n: u8,
                long: bool,
            },
            AppendPartial {
                long: bool,
            },
            CompletePartial,
            /// Full lines to the latest rotated file: its writer has not
            /// reopened yet.
            AppendOld {
                n: u8,
            },
            /// Rename to `app.log.N`; with `create`, create the new file at
            /// once (logrotate's `create`), else on the next write.
            Rotate {
                create: bool,
            },
            CopyTruncate,
            DeleteRecreate,
            /// Drop the tailer, save and load its checkpoints, start anew.
            Restart,
            Poll,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (1u8..4, prop::bool::weighted(0.15)).prop_map(|(n, long)| Op::Append { n, long }),
                2 => prop::bool::weighted(0.2).prop_map(|long| Op::AppendPartial { long }),
                2 => Just(Op::CompletePartial),
                2 => (1u8..3).prop_map(|n| Op::AppendOld { n }),
                2 => any::<bool>().prop_map(|create| Op::Rotate { create }),
                1 => Just(Op::CopyTruncate),
                1 => Just(Op::DeleteRecreate),
                1 => Just(Op::Restart),
                5 => Just(Op::Poll),
            ]
        }

        /// One real file, as the model knows it.
        struct MFile {
            /// `None` once deleted.
            path: Option<PathBuf>,
            id: (u64, u64),
            /// The lines that must come out, in order.
            expected: Vec<Vec<u8>>,
            got: Vec<Vec<u8>>,
            /// The unfinished last line written.
            partial: Vec<u8>,
            /// That line already came out cut (it grew past the limit).
            cut_emitted: bool,
            /// `expected.len()` at the last pass.
            polled_upto: usize,
            /// The current tailer has found it at a path the pattern names.
            seen: bool,
            /// No longer followed: nothing more may come out of it.
            dead: bool,
            /// Lines given up on when it died: they come out after all if a
            /// later start drains it from a checkpoint.
            lost: Vec<Vec<u8>>,
        }

        struct Model {
            dir: tempfile::TempDir,
            state: tempfile::TempDir,
            glob: bool,
            tailer: Tailer,
            checkpoints: Checkpoints,
            files: Vec<MFile>,
            /// The file at `app.log`.
            current: Option<usize>,
            /// The latest rotated file, still written to.
            old: Option<usize>,
            counter: u64,
            rotations: u64,
            /// No pass since the last restart: the tailer's first pass will
            /// drain checkpointed files renamed away meanwhile.
            fresh: bool,
            /// When the last poll began.
            last_poll: Option<SystemTime>,
        }

        fn model_options() -> TailerOptions {
            TailerOptions {
                max_line_bytes: MAX_LINE,
                read_buf_bytes: 64,
                use_notify: false,
                poll_interval: Duration::from_secs(60),
                // Long enough that no rotated file is closed during a case.
                rotate_wait: Duration::from_secs(3600),
            }
        }

        fn cut(line: &[u8]) -> Vec<u8> {
            line[..line.len().min(MAX_LINE)].to_vec()
        }

        impl Model {
            fn new(glob: bool) -> Model {
                let dir = tempfile::tempdir().expect("tempdir");
                let state = tempfile::tempdir().expect("tempdir");
                let checkpoints = Checkpoints::new();
                let tailer = Model::tailer(dir.path(), glob, &checkpoints);
                let mut m = Model {
                    dir,
                    state,
                    glob,
                    tailer,
                    checkpoints,
                    files: Vec::new(),
                    current: None,
                    old: None,
                    counter: 0,
                    rotations: 0,
                    fresh: false,
                    last_poll: None,
                };
                m.current();
                m.poll();
                m
            }

            fn tailer(dir: &Path, glob: bool, checkpoints: &Checkpoints) -> Tailer {
                let pattern = dir.join(if glob { "app.log*" } else { "app.log" });
                Tailer::new(
                    vec![spec(&pattern, StartAt::End)],
                    model_options(),
                    checkpoints,
                )
            }

            fn log_path(&self) -> PathBuf {
                self.dir.path().join("app.log")
            }

            /// Whether the pattern names this path.
            fn matching(&self, path: &Path) -> bool {
                self.glob || path == self.log_path()
            }

            /// The file at `app.log`, created if missing.
            fn current(&mut self) -> usize {
                if let Some(i) = self.current {
                    return i;
                }
                let path = self.log_path();
                let f = File::create(&path).expect("create");
                let meta = f.metadata().expect("meta");
                self.files.push(MFile {
                    path: Some(path),
                    id: (meta.dev(), meta.ino()),
                    expected: Vec::new(),
                    got: Vec::new(),
                    partial: Vec::new(),
                    cut_emitted: false,
                    polled_upto: 0,
                    seen: false,
                    dead: false,
                    lost: Vec::new(),
                });
                let i = self.files.len() - 1;
                self.current = Some(i);
                i
            }

            /// Unique text (so no two files ever start alike), with bytes
            /// that are not UTF-8 and a `\r`; never `\n`.
            fn text(&mut self, long: bool) -> Vec<u8> {
                self.counter += 1;
                let mut t = format!("L{}:", self.counter).into_bytes();
                let len = if long {
                    MAX_LINE + 1 + (self.counter as usize % 40)
                } else {
                    self.counter as usize % 20
                };
                let filler = [b'a', 0xff, b'\r', b'z', 0x00, 0xc3, b' '];
                t.extend((0..len).map(|i| filler[i % filler.len()]));
                t
            }

            fn write(&self, i: usize, bytes: &[u8]) {
                let path = self.files[i]
                    .path
                    .as_ref()
                    .expect("a file written to exists");
                append(path, bytes);
            }

            fn finish_line(&mut self, i: usize, rest: &[u8]) {
                let f = &mut self.files[i];
                if f.cut_emitted {
                    // Came out cut already; the rest is skipped.
                    f.cut_emitted = false;
                } else {
                    let mut line = std::mem::take(&mut f.partial);
                    line.extend_from_slice(rest);
                    f.expected.push(cut(&line));
                }
                f.partial.clear();
            }

            fn append_lines(&mut self, i: usize, n: u8, long: bool) {
                for _ in 0..n {
                    let text = self.text(long);
                    let mut bytes = text.clone();
                    bytes.push(b'\n');
                    self.write(i, &bytes);
                    self.finish_line(i, &text);
                }
            }

            /// The file stops being followed: what it had not yet given out
            /// by the last pass is lost.
            fn kill(&mut self, i: usize) {
                let f = &mut self.files[i];
                let upto = f.polled_upto.min(f.expected.len());
                f.lost = f.expected.split_off(upto);
                f.dead = true;
                if self.old == Some(i) {
                    self.old = None;
                }
            }

            fn apply(&mut self, op: &Op) {
                match *op {
                    Op::Append { n, long } => {
                        let i = self.current();
                        self.append_lines(i, n, long);
                    }
                    Op::AppendPartial { long } => {
                        let i = self.current();
                        let text = self.text(long);
                        self.write(i, &text);
                        self.files[i].partial.extend_from_slice(&text);
                    }
                    Op::CompletePartial => {
                        let target = [self.current, self.old]
                            .into_iter()
                            .flatten()
                            .find(|&i| !self.files[i].partial.is_empty());
                        if let Some(i) = target {
                            let text = self.text(false);
                            let mut bytes = text.clone();
                            bytes.push(b'\n');
                            self.write(i, &bytes);
                            self.finish_line(i, &text);
                        }
                    }
                    Op::AppendOld { n } => {
                        if let Some(i) = self.old {
                            self.append_lines(i, n, false);
                        }
                    }
                    Op::Rotate { create } => {
                        if let Some(i) = self.current.take() {
                            self.rotations += 1;
                            let to = self.dir.path().join(format!("app.log.{}", self.rotations));
                            fs::rename(self.log_path(), &to).expect("rotate");
                            // Before the first pass after a restart, the
                            // pass will find it under its rotated name:
                            // drained from its checkpoint, or, unknown, read
                            // from its start.
                            // Before the next pass, never seen: the pass
                            // finds it under its rotated name, modified
                            // since the previous pass began (see
                            // `recover_between_passes`).
                            let followed = self.files[i].seen
                                || self.matching(&to)
                                || (self.fresh
                                    && (self.checkpointed(i, &to)
                                        || self.appeared_while_stopped(&to)))
                                || (!self.fresh && self.modified_since_last_poll(&to));
                            self.files[i].path = Some(to);
                            if followed {
                                self.old = Some(i);
                            } else {
                                // Renamed out of a literal pattern before any
                                // pass saw it: never followed.
                                self.kill(i);
                            }
                            if create {
                                self.current();
                            }
                        }
                    }
                    Op::CopyTruncate => {
                        if let Some(i) = self.current {
                            // copytruncate loses whatever was written but
                            // not yet read when it truncates: read first, as
                            // only lines read before can be expected.
                            self.poll();
                            OpenOptions::new()
                                .write(true)
                                .open(self.log_path())
                                .and_then(|f| f.set_len(0))
                                .expect("truncate");
                            let f = &mut self.files[i];
                            f.partial.clear();
                            f.cut_emitted = false;
                        }
                    }
                    Op::DeleteRecreate => {
                        if let Some(i) = self.current.take() {
                            fs::remove_file(self.log_path()).expect("delete");
                            self.files[i].path = None;
                            if !self.files[i].seen {
                                // Gone before any pass opened it.
                                self.kill(i);
                            }
                            self.current();
                        }
                    }
                    Op::Restart => self.restart(),
                    Op::Poll => self.poll(),
                }
            }

            /// Whether file `i`, now at `path`, has a checkpoint the tailer
            /// would resume it from (same inode, same first bytes).
            fn checkpointed(&self, i: usize, path: &Path) -> bool {
                let Ok(f) = File::open(path) else {
                    return false;
                };
                let (Ok(meta), Ok(head)) = (f.metadata(), Head::read(&f)) else {
                    return false;
                };
                (meta.dev(), meta.ino()) == self.files[i].id
                    && checkpoint_vouches(&self.checkpoints, &meta, &head)
            }

            /// Whether the tailer takes the file at `path`, which no
            /// checkpoint vouches for, as written while it was stopped: its
            /// mtime is no older than the newest checkpoint (less the slack).
            fn appeared_while_stopped(&self, path: &Path) -> bool {
                let Ok(meta) = fs::metadata(path) else {
                    return false;
                };
                let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
                self.checkpoints
                    .iter()
                    .map(|(_, e)| e.updated)
                    .max()
                    .is_some_and(|until| mtime + MTIME_SLACK_SECS >= until)
            }

            /// Whether the file at `path` was modified since the last poll
            /// began, as the tailer judges it (with the mtime slack).
            fn modified_since_last_poll(&self, path: &Path) -> bool {
                let Some(since) = self.last_poll else {
                    return false;
                };
                fs::metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m + Duration::from_secs(MTIME_SLACK_SECS) >= since)
            }

            fn restart(&mut self) {
                let cp = Checkpointer::new(self.state.path().join("checkpoints.json"));
                cp.save(&self.checkpoints).expect("save");
                let loaded = cp.load().expect("load");
                assert_eq!(loaded.len(), self.checkpoints.len());
                // Dropping the tailer closes every file it held.
                self.tailer = Model::tailer(self.dir.path(), self.glob, &loaded);
                self.checkpoints = loaded;
                self.fresh = true;
                for i in 0..self.files.len() {
                    if self.files[i].dead {
                        // Back: drained from its checkpoint, or, never
                        // followed, read from its start as a file created
                        // and rotated away while we were stopped.
                        let back = match &self.files[i].path {
                            Some(p) => {
                                !self.matching(p)
                                    && (self.checkpointed(i, p) || self.appeared_while_stopped(p))
                            }
                            None => false,
                        };
                        if back {
                            let f = &mut self.files[i];
                            let lost = std::mem::take(&mut f.lost);
                            f.expected.extend(lost);
                            f.dead = false;
                            f.seen = false;
                        }
                        continue;
                    }
                    // Found again: still named by the pattern, or renamed
                    // within the directory after the tailer recorded a
                    // checkpoint for it (drained from there at start).
                    // Or, never read, found under a rotated name and read
                    // from its start.
                    let found_again = match &self.files[i].path {
                        Some(p) => {
                            self.matching(p)
                                || self.checkpointed(i, p)
                                || self.appeared_while_stopped(p)
                        }
                        None => false,
                    };
                    self.files[i].seen = false;
                    if !found_again {
                        self.kill(i);
                    }
                }
            }

            fn poll(&mut self) {
                self.fresh = false;
                self.last_poll = Some(SystemTime::now());
                let mut chunks = Vec::new();
                self.tailer
                    .poll_once(&mut |c| chunks.push(c))
                    .expect("poll_once");
                let now = unix_now();
                for c in chunks {
                    assert!(c.start_offset <= c.end_offset, "{c:?}");
                    // What the daemon does with each chunk it has handled.
                    self.checkpoints.record(&c.file, c.end_offset, &c.path, now);
                    if c.data.is_empty() {
                        continue;
                    }
                    assert_eq!(c.data.last(), Some(&b'\n'));
                    let i = self
                        .files
                        .iter()
                        .position(|f| !f.dead && f.id == (c.file.dev, c.file.ino))
                        .unwrap_or_else(|| panic!("chunk from a file not followed: {c:?}"));
                    let lines: Vec<Vec<u8>> = c.lines().map(<[u8]>::to_vec).collect();
                    self.files[i].got.extend(lines);
                }
                for i in 0..self.files.len() {
                    if self.files[i].dead {
                        continue;
                    }
                    let at_pattern = match &self.files[i].path {
                        Some(p) => self.matching(p),
                        None => false,
                    };
                    let f = &mut self.files[i];
                    f.seen |= at_pattern;
                    if f.partial.len() > MAX_LINE && !f.cut_emitted {
                        f.expected.push(cut(&f.partial));
                        f.cut_emitted = true;
                    }
                    f.polled_upto = f.expected.len();
                }
                self.check();
            }

            fn check(&self) {
                for (i, f) in self.files.iter().enumerate() {
                    assert_eq!(
                        f.got
                            .iter()
                            .map(|l| String::from_utf8_lossy(l))
                            .collect::<Vec<_>>(),
                        f.expected
                            .iter()
                            .map(|l| String::from_utf8_lossy(l))
                            .collect::<Vec<_>>(),
                        "file {i} ({:?}, dead: {})",
                        f.path,
                        f.dead
                    );
                }
            }
        }

        fn config() -> ProptestConfig {
            let cases = std::env::var("AUTHWATCH_PROPTEST_CASES")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(256);
            ProptestConfig {
                cases,
                // No regression files written into the source tree.
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        proptest! {
            #![proptest_config(config())]

            /// Every complete line written comes out exactly once, in order,
            /// per file, through rotations, truncations, deletions and
            /// restarts from checkpoints; for a literal path and for a glob
            /// that also matches the rotated files.
            #[test]
            fn every_line_comes_out_exactly_once_in_order(
                glob in any::<bool>(),
                ops in prop::collection::vec(op(), 1..60),
            ) {
                let mut m = Model::new(glob);
                for op in &ops {
                    m.apply(op);
                }
                m.poll();
            }
        }
    }
}
