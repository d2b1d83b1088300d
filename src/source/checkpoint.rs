//! Checkpoints: how far each followed file was read, kept across restarts.
//!
//! [`Checkpoints`] maps a file's identity ([`FileKey`]: device, inode and
//! fingerprint) to the offset where reading resumes. There is at most one
//! entry per device and inode: recording a file again replaces its entry,
//! fingerprint included, since the tailer's fingerprint of a file grows while
//! the file is shorter than 256 bytes. A lookup matches device and inode and
//! then checks the fingerprint against the file as it is *now*, so a reused
//! inode holding other content is not resumed.
//!
//! [`Checkpointer`] keeps them in a versioned JSON file,
//! `{"version":1,"files":[...]}`, replaced atomically (temporary file in the
//! same directory, write, fsync, rename over, fsync the directory) with mode
//! 0600. Entries not updated for [`RETENTION`] (7 days) are left out when
//! saving: the daemon refreshes the files it still follows with
//! [`Checkpoints::touch`], so only files long gone age out.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::fingerprint::{FileKey, Fingerprint, Head};

/// The checkpoint file format this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// How long an entry is kept without being updated.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where reading of one file resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointEntry {
    /// Byte offset in the file where reading resumes.
    pub offset: u64,
    /// The path the file had when last recorded; informational only, files
    /// are matched by identity.
    pub path: PathBuf,
    /// When the entry was last recorded or touched, in Unix seconds.
    pub updated: u64,
    /// How far every line is processed and everything it caused is durable
    /// (the daemon's ack-gated progress). At or after `offset`: lines from
    /// `offset` to `done` are read again after a restart only to rebuild
    /// the sliding windows, and cause no new decision. `None` = `offset`.
    pub done: Option<u64>,
}

impl CheckpointEntry {
    pub fn done(&self) -> u64 {
        self.done.unwrap_or(self.offset).max(self.offset)
    }
}

/// Offsets by file identity; at most one entry per (device, inode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoints {
    entries: HashMap<(u64, u64), (FileKey, CheckpointEntry)>,
}

impl Checkpoints {
    pub fn new() -> Checkpoints {
        Checkpoints::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records that reading of `file` resumes at `offset`, replacing any
    /// entry for the same device and inode.
    pub fn record(&mut self, file: &FileKey, offset: u64, path: &Path, now: u64) {
        self.record_progress(file, offset, None, path, now);
    }

    /// Records where reading resumes (`offset`) and how far processing is
    /// durable (`done`), replacing any entry for the same device and inode.
    pub fn record_progress(
        &mut self,
        file: &FileKey,
        offset: u64,
        done: Option<u64>,
        path: &Path,
        now: u64,
    ) {
        self.entries.insert(
            (file.dev, file.ino),
            (
                *file,
                CheckpointEntry {
                    offset,
                    path: path.to_path_buf(),
                    updated: now,
                    done,
                },
            ),
        );
    }

    /// Marks the entry for this device and inode as still in use, so that
    /// saving does not prune it (for files followed but idle for days).
    pub fn touch(&mut self, dev: u64, ino: u64, now: u64) {
        if let Some((_, entry)) = self.entries.get_mut(&(dev, ino)) {
            entry.updated = entry.updated.max(now);
        }
    }

    /// Touches every entry whose recorded path still leads to the same
    /// device and inode: files still there but idle for days are kept, while
    /// the tailer is owned by its thread. (A rotated file whose rename the
    /// entry has not seen ages out unless recorded again; that is the point.)
    pub fn touch_existing(&mut self, now: u64) {
        for (key, entry) in self.entries.values_mut() {
            let still_there =
                fs::metadata(&entry.path).is_ok_and(|m| key.same_inode(m.dev(), m.ino()));
            if still_there {
                entry.updated = entry.updated.max(now);
            }
        }
    }

    pub fn remove(&mut self, dev: u64, ino: u64) -> Option<(FileKey, CheckpointEntry)> {
        self.entries.remove(&(dev, ino))
    }

    /// The entry for this device and inode, without checking the fingerprint.
    pub fn get(&self, dev: u64, ino: u64) -> Option<(&FileKey, &CheckpointEntry)> {
        self.entries.get(&(dev, ino)).map(|(k, e)| (k, e))
    }

    /// The resume offset for the file at this device and inode, if there is an
    /// entry and `head_check` accepts its fingerprint. `head_check` should
    /// re-hash the file's first `fingerprint.len` bytes as they are now (see
    /// [`Fingerprint::matches`]); a reused inode then fails it.
    pub fn find(
        &self,
        dev: u64,
        ino: u64,
        head_check: impl FnOnce(&Fingerprint) -> bool,
    ) -> Option<u64> {
        let (key, entry) = self.entries.get(&(dev, ino))?;
        head_check(&key.fingerprint).then_some(entry.offset)
    }

    /// [`Checkpoints::find`] for an open file: reads its head now.
    pub fn find_file(&self, file: &File, meta: &Metadata) -> io::Result<Option<u64>> {
        if self.get(meta.dev(), meta.ino()).is_none() {
            return Ok(None);
        }
        let head = Head::read(file)?;
        Ok(self.find(meta.dev(), meta.ino(), |fp| fp.matches(head.bytes())))
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&FileKey, &CheckpointEntry)> {
        self.entries.values().map(|(k, e)| (k, e))
    }

    /// Drops entries not updated within `retention` before `now`.
    pub fn prune(&mut self, now: u64, retention: Duration) {
        self.entries
            .retain(|_, (_, entry)| !is_stale(entry, now, retention));
    }
}

fn is_stale(entry: &CheckpointEntry, now: u64, retention: Duration) -> bool {
    now.saturating_sub(entry.updated) > retention.as_secs()
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint file {}: {error}", .path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("checkpoint file {} is corrupt: {error}", .path.display())]
    Corrupt {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error(
        "checkpoint file {} has format version {version}; this build reads version {FORMAT_VERSION}",
        .path.display()
    )]
    UnsupportedVersion { path: PathBuf, version: u64 },
    #[error("cannot write checkpoint file {}: {error}", .path.display())]
    Write { path: PathBuf, error: io::Error },
}

/// The on-disk form. Only the version is read first, so that a future format
/// is reported as such rather than as corrupt.
#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u64,
    files: Vec<RecordV1>,
}

#[derive(Serialize, Deserialize)]
struct RecordV1 {
    dev: u64,
    ino: u64,
    fingerprint: Fingerprint,
    offset: u64,
    /// Lossy UTF-8: the path is informational, and a non-UTF-8 path must not
    /// make the whole save fail.
    path: String,
    updated: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    done: Option<u64>,
}

/// Loads and saves [`Checkpoints`] at one path.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    path: PathBuf,
    retention: Duration,
}

impl Checkpointer {
    pub fn new(path: impl Into<PathBuf>) -> Checkpointer {
        Checkpointer {
            path: path.into(),
            retention: RETENTION,
        }
    }

    /// Keeps entries for `retention` instead of [`RETENTION`].
    pub fn with_retention(mut self, retention: Duration) -> Checkpointer {
        self.retention = retention;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the checkpoint file; a missing file gives empty checkpoints.
    pub fn load(&self) -> Result<Checkpoints, CheckpointError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Checkpoints::new()),
            Err(error) => {
                return Err(CheckpointError::Read {
                    path: self.path.clone(),
                    error,
                })
            }
        };
        let corrupt = |error| CheckpointError::Corrupt {
            path: self.path.clone(),
            error,
        };
        let probe: VersionProbe = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if probe.version != FORMAT_VERSION {
            return Err(CheckpointError::UnsupportedVersion {
                path: self.path.clone(),
                version: probe.version,
            });
        }
        let file: FileV1 = serde_json::from_slice(&bytes).map_err(corrupt)?;
        let mut checkpoints = Checkpoints::new();
        for r in file.files {
            let key = FileKey {
                dev: r.dev,
                ino: r.ino,
                fingerprint: r.fingerprint,
            };
            // Two entries for one inode cannot be written by `save`; if a hand
            // edit made some, the newer one wins.
            let newer = checkpoints
                .get(r.dev, r.ino)
                .is_none_or(|(_, old)| old.updated <= r.updated);
            if newer {
                checkpoints.record_progress(&key, r.offset, r.done, Path::new(&r.path), r.updated);
            }
        }
        Ok(checkpoints)
    }

    /// Saves `checkpoints` atomically, leaving out entries older than the
    /// retention.
    pub fn save(&self, checkpoints: &Checkpoints) -> Result<(), CheckpointError> {
        self.save_at(checkpoints, unix_now())
    }

    /// [`Checkpointer::save`] with the current time given (for tests).
    pub fn save_at(&self, checkpoints: &Checkpoints, now: u64) -> Result<(), CheckpointError> {
        let mut files: Vec<RecordV1> = checkpoints
            .iter()
            .filter(|(_, entry)| !is_stale(entry, now, self.retention))
            .map(|(key, entry)| RecordV1 {
                dev: key.dev,
                ino: key.ino,
                fingerprint: key.fingerprint,
                offset: entry.offset,
                path: entry.path.to_string_lossy().into_owned(),
                updated: entry.updated,
                done: entry.done,
            })
            .collect();
        // A stable order makes the file diffable and the tests exact.
        files.sort_by_key(|r| (r.dev, r.ino));
        let file = FileV1 {
            version: FORMAT_VERSION,
            files,
        };
        self.write_atomically(&file)
            .map_err(|error| CheckpointError::Write {
                path: self.path.clone(),
                error,
            })
    }

    fn write_atomically(&self, contents: &FileV1) -> io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self.path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "checkpoint path has no file name",
            )
        })?;
        let tmp = dir.join(temp_name(name));
        let result = (|| {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let mut w = BufWriter::new(file);
            serde_json::to_writer_pretty(&mut w, contents)?;
            w.write_all(b"\n")?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // The rename is durable only once the directory is synced.
            File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// A temporary name beside the checkpoint file, unique within this host for
/// concurrent saves (pid and a counter).
fn temp_name(name: &std::ffi::OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    tmp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key(dev: u64, ino: u64, len: u16, hash: u64) -> FileKey {
        FileKey {
            dev,
            ino,
            fingerprint: Fingerprint { len, hash },
        }
    }

    #[test]
    fn missing_file_loads_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cp = Checkpointer::new(dir.path().join("checkpoints.json"));
        assert!(cp.load().expect("load").is_empty());
    }

    #[test]
    fn save_then_load_round_trips_with_mode_0600_and_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.json");
        let cp = Checkpointer::new(&path);
        let mut cps = Checkpoints::new();
        let now = 1_800_000_000;
        cps.record(
            &key(1, 2, 256, u64::MAX),
            1234,
            Path::new("/var/log/a.log"),
            now,
        );
        cps.record(&key(1, 3, 0, 7), 0, Path::new("/var/log/b.log"), now - 10);
        cp.save_at(&cps, now).expect("save");

        assert_eq!(cp.load().expect("load"), cps);
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("checkpoints.json")]);

        let text = fs::read_to_string(&path).expect("read");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["version"], 1);
        assert_eq!(value["files"][0]["offset"], 1234);
        assert_eq!(value["files"][0]["fingerprint"]["hash"], u64::MAX);

        // Saving again replaces the file.
        cps.record(
            &key(1, 2, 256, u64::MAX),
            5678,
            Path::new("/var/log/a.log.1"),
            now,
        );
        cp.save_at(&cps, now).expect("save");
        assert_eq!(
            cp.load().expect("load").get(1, 2).map(|(_, e)| e.offset),
            Some(5678)
        );
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.json");
        fs::write(&path, b"{\"version\":1,\"files\":[{\"dev\":").expect("write");
        let err = Checkpointer::new(&path).load().expect_err("corrupt");
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("corrupt"), "{msg}");

        fs::write(&path, b"").expect("write");
        let err = Checkpointer::new(&path).load().expect_err("empty");
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn unknown_version_is_an_error_not_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.json");
        fs::write(&path, br#"{"version":2,"files":"something new"}"#).expect("write");
        let err = Checkpointer::new(&path).load().expect_err("version");
        assert!(
            matches!(err, CheckpointError::UnsupportedVersion { version: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn unreadable_path_is_a_read_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should be.
        let err = Checkpointer::new(dir.path()).load().expect_err("dir");
        assert!(matches!(err, CheckpointError::Read { .. }), "{err:?}");
    }

    #[test]
    fn write_failure_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("checkpoints.json");
        let err = Checkpointer::new(&path)
            .save(&Checkpoints::new())
            .expect_err("missing dir");
        assert!(matches!(err, CheckpointError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn entries_not_seen_for_seven_days_are_pruned_on_save() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cp = Checkpointer::new(dir.path().join("checkpoints.json"));
        let now = 1_800_000_000;
        let week = RETENTION.as_secs();
        let mut cps = Checkpoints::new();
        cps.record(&key(1, 1, 0, 0), 1, Path::new("fresh"), now - week);
        cps.record(&key(1, 2, 0, 0), 2, Path::new("stale"), now - week - 1);
        cps.record(&key(1, 3, 0, 0), 3, Path::new("touched"), now - week - 100);
        cps.touch(1, 3, now);
        cp.save_at(&cps, now).expect("save");
        let loaded = cp.load().expect("load");
        assert_eq!(loaded.len(), 2);
        assert!(loaded.get(1, 1).is_some());
        assert!(loaded.get(1, 2).is_none());
        assert!(loaded.get(1, 3).is_some());

        cps.prune(now, RETENTION);
        assert_eq!(cps, loaded);
    }

    #[test]
    fn touch_existing_refreshes_entries_whose_file_is_still_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        fs::write(&path, b"x\n").expect("write");
        let f = File::open(&path).expect("open");
        let k = FileKey::of(&f, &f.metadata().expect("meta")).expect("key");
        let mut cps = Checkpoints::new();
        cps.record(&k, 2, &path, 10);
        cps.record(&key(k.dev, k.ino + 1, 0, 0), 0, &path, 10);
        cps.record(&key(1, 1, 0, 0), 0, &dir.path().join("gone.log"), 10);
        cps.touch_existing(500);
        assert_eq!(cps.get(k.dev, k.ino).map(|(_, e)| e.updated), Some(500));
        assert_eq!(cps.get(k.dev, k.ino + 1).map(|(_, e)| e.updated), Some(10));
        assert_eq!(cps.get(1, 1).map(|(_, e)| e.updated), Some(10));
    }

    #[test]
    fn record_replaces_the_entry_for_the_same_inode() {
        let mut cps = Checkpoints::new();
        cps.record(&key(1, 2, 3, 10), 3, Path::new("a"), 1);
        cps.record(&key(1, 2, 256, 11), 900, Path::new("a.1"), 2);
        assert_eq!(cps.len(), 1);
        let (k, e) = cps.get(1, 2).expect("entry");
        assert_eq!(k.fingerprint.len, 256);
        assert_eq!(e.offset, 900);
        assert_eq!(e.path, Path::new("a.1"));
    }

    #[test]
    fn find_resumes_only_when_the_head_still_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        fs::write(&path, b"line one\nline two\n").expect("write");
        let f = File::open(&path).expect("open");
        let meta = f.metadata().expect("meta");
        let k = FileKey::of(&f, &meta).expect("key");
        let mut cps = Checkpoints::new();
        cps.record(&k, 9, &path, 1);
        assert_eq!(cps.find_file(&f, &meta).expect("find"), Some(9));

        // Same inode, other content: as if the inode had been reused.
        fs::write(&path, b"something else entirely\n").expect("write");
        let meta = f.metadata().expect("meta");
        assert_eq!((meta.dev(), meta.ino()), (k.dev, k.ino));
        assert_eq!(cps.find_file(&f, &meta).expect("find"), None);
        assert_eq!(cps.find(k.dev, k.ino, |_| false), None);
        assert_eq!(cps.find(k.dev, k.ino + 1, |_| true), None);
    }
}
