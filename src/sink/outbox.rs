//! The outbox: a durable queue of block decisions between the detector and
//! the sinks, in `state_dir/outbox.jsonl`.
//!
//! A decision is appended and fsynced *before* the line that caused it is
//! counted as processed, so a crash at any moment loses no block: on
//! restart every decision not yet written to Redis is written (with its
//! remaining TTL; those that expired meanwhile are dropped and counted), and
//! every new block not yet handed to the alerters is alerted. The same file
//! is the retry queue while Redis is unreachable, so a restart during an
//! outage loses nothing either.
//!
//! Decisions are identified by rule, subject and the event time of the
//! failure that reached the threshold. Lines read again after a crash
//! reproduce exactly these identities, so they are recognised and neither
//! a second block nor a second alert comes of them.
//!
//! The file is a log of JSON operations, one per line:
//! `{"op":"add","id":7,"record":{…}}`, `{"op":"written","id":7,"new":true}`,
//! `{"op":"alerted","id":7}`. It is compacted (rewritten atomically) when it
//! has grown, keeping only entries whose block has not yet expired. Only
//! `add` is fsynced; the progress records are not (losing one only makes a
//! safe step happen again, see `Outbox::log`), and the daemon sends a
//! decision to Redis while its fsync runs (see `daemon::hand_over`).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BlockRecord;
use crate::time::Timestamp;

/// More pending decisions than this means Redis has been away for a long
/// time during a flood: the oldest are dropped (and counted) rather than
/// letting the file grow without bound.
pub const MAX_PENDING: usize = 100_000;

/// Compact once the file holds this many more operations than live entries.
const COMPACT_SLACK: usize = 4_096;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where one decision stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: u64,
    pub record: BlockRecord,
    /// `Some(new)` once written to Redis; `new` says whether the key did not
    /// exist before (only new blocks are alerted).
    pub written: Option<bool>,
    pub alerted: bool,
}

impl Entry {
    /// Nothing left to do but remember it for deduplication.
    pub fn is_settled(&self) -> bool {
        match self.written {
            Some(true) => self.alerted,
            Some(false) => true,
            None => false,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Add {
        id: u64,
        record: BlockRecord,
    },
    Written {
        id: u64,
        new: bool,
        /// The record as Redis took it, when it differs from the decided one
        /// (an escalated expiry, the offence number): a re-sent alert must
        /// carry what was first sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<BlockRecord>,
    },
    Alerted {
        id: u64,
    },
    /// Given up: expired before it could be written, or dropped at the cap.
    Dropped {
        id: u64,
    },
}

/// Counters for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Decisions recognised as already recorded (lines read again).
    pub duplicates: u64,
    /// Decisions whose block expired before Redis could take it.
    pub expired: u64,
    /// Decisions dropped because the queue was full.
    pub dropped_full: u64,
    /// Lines of the outbox file that could not be read (corruption).
    pub corrupt_lines: u64,
}

pub struct Outbox {
    path: PathBuf,
    file: File,
    entries: BTreeMap<u64, Entry>,
    by_identity: HashMap<String, u64>,
    next_id: u64,
    ops_in_file: usize,
    stats: OutboxStats,
}

/// The identity of a decision: rule, subject, and the event time of the
/// failure that reached the threshold.
fn identity(r: &BlockRecord) -> String {
    format!("{}|{}|{}", r.rule, r.ip, r.last_seen.as_millis())
}

impl Outbox {
    /// Opens (or creates, mode 0600) `dir/outbox.jsonl` and replays it.
    pub fn open(dir: &Path) -> Result<Outbox, OutboxError> {
        let path = dir.join("outbox.jsonl");
        let err = |source| OutboxError::Io {
            path: path.clone(),
            source,
        };
        let mut entries: BTreeMap<u64, Entry> = BTreeMap::new();
        let mut ops = 0;
        let mut corrupt = 0;
        match File::open(&path) {
            Ok(f) => {
                for line in BufReader::new(f).split(b'\n') {
                    let line = line.map_err(err)?;
                    if line.is_empty() {
                        continue;
                    }
                    ops += 1;
                    // A torn last line (crash mid-append) is the only
                    // expected corruption; it never held an fsynced op.
                    match serde_json::from_slice::<Op>(&line) {
                        Ok(Op::Add { id, record }) => {
                            entries.insert(
                                id,
                                Entry {
                                    id,
                                    record,
                                    written: None,
                                    alerted: false,
                                },
                            );
                        }
                        Ok(Op::Written { id, new, record }) => {
                            if let Some(e) = entries.get_mut(&id) {
                                e.written = Some(new);
                                if let Some(r) = record {
                                    e.record = r;
                                }
                            }
                        }
                        Ok(Op::Alerted { id }) => {
                            if let Some(e) = entries.get_mut(&id) {
                                e.alerted = true;
                            }
                        }
                        Ok(Op::Dropped { id }) => {
                            entries.remove(&id);
                        }
                        Err(_) => corrupt += 1,
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        let next_id = entries.keys().next_back().map_or(1, |k| k + 1);
        let by_identity = entries
            .values()
            .map(|e| (identity(&e.record), e.id))
            .collect();
        let mut outbox = Outbox {
            path,
            file,
            entries,
            by_identity,
            next_id,
            ops_in_file: ops,
            stats: OutboxStats {
                corrupt_lines: corrupt,
                ..OutboxStats::default()
            },
        };
        outbox.compact(Timestamp::now())?;
        Ok(outbox)
    }

    pub fn stats(&self) -> OutboxStats {
        self.stats
    }

    /// Entries that still need a Redis write or an alert, oldest first.
    pub fn unsettled(&self) -> Vec<Entry> {
        self.entries
            .values()
            .filter(|e| !e.is_settled())
            .cloned()
            .collect()
    }

    /// How many entries still need work.
    pub fn depth(&self) -> usize {
        self.entries.values().filter(|e| !e.is_settled()).count()
    }

    /// Records new decisions durably (one write, one fsync) and returns the
    /// entries to act on. Decisions already recorded are skipped.
    pub fn add(&mut self, records: Vec<BlockRecord>) -> Result<Vec<Entry>, OutboxError> {
        let (added, durable) = self.add_unsynced(records)?;
        durable.wait()?;
        Ok(added)
    }

    /// Like [`Outbox::add`], but returns as soon as the decisions are
    /// written to the file, with a [`Durable`] to wait on for the fsync.
    ///
    /// This lets the daemon hand a block to Redis while the disk catches up,
    /// and wait for the disk *without holding the outbox's lock*, before the
    /// lines that caused it count as processed. Once this returns, the
    /// decisions survive the process being killed (they are in the page
    /// cache); only after `wait` do they survive the machine losing power.
    pub fn add_unsynced(
        &mut self,
        records: Vec<BlockRecord>,
    ) -> Result<(Vec<Entry>, Durable), OutboxError> {
        let mut added = Vec::new();
        let mut buf = Vec::new();
        for record in records {
            let key = identity(&record);
            if self.by_identity.contains_key(&key) {
                self.stats.duplicates += 1;
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            serde_json::to_writer(
                &mut buf,
                &Op::Add {
                    id,
                    record: record.clone(),
                },
            )
            .map_err(|e| self.io(e.into()))?;
            buf.push(b'\n');
            self.by_identity.insert(key, id);
            let entry = Entry {
                id,
                record,
                written: None,
                alerted: false,
            };
            self.entries.insert(id, entry.clone());
            added.push(entry);
        }
        if added.is_empty() {
            return Ok((added, Durable::default()));
        }
        self.write(&buf)?;
        self.enforce_cap()?;
        // fdatasync on another descriptor of the same file flushes the same
        // data; after a compaction `self.file` is the new file, whose
        // content was fsynced whole by the compaction anyway.
        let file = self.file.try_clone().map_err(|e| self.io(e))?;
        Ok((
            added,
            Durable {
                file: Some(file),
                path: self.path.clone(),
            },
        ))
    }

    /// The block is in Redis (or was refused as already there).
    pub fn mark_written(&mut self, id: u64, new: bool) -> Result<(), OutboxError> {
        self.mark_written_as(id, new, None)
    }

    /// Like [`Outbox::mark_written`], recording the record as Redis took it
    /// when it differs from the decided one.
    pub fn mark_written_as(
        &mut self,
        id: u64,
        new: bool,
        written: Option<BlockRecord>,
    ) -> Result<(), OutboxError> {
        if let Some(e) = self.entries.get_mut(&id) {
            e.written = Some(new);
            let record = written.filter(|w| *w != e.record);
            if let Some(w) = &record {
                // The identity (rule, ip, last_seen) is unchanged.
                e.record = w.clone();
            }
            self.log(&Op::Written { id, new, record })?;
        }
        Ok(())
    }

    /// The alert is handed to every destination's queue.
    pub fn mark_alerted(&mut self, id: u64) -> Result<(), OutboxError> {
        if let Some(e) = self.entries.get_mut(&id) {
            e.alerted = true;
            self.log(&Op::Alerted { id })?;
        }
        Ok(())
    }

    /// The block expired before Redis could take it: given up, counted.
    pub fn mark_expired(&mut self, id: u64) -> Result<(), OutboxError> {
        if self.entries.contains_key(&id) {
            self.stats.expired += 1;
            // Keep the identity so that a re-read line does not revive it.
            if let Some(e) = self.entries.get_mut(&id) {
                e.written = Some(false);
            }
            self.log(&Op::Written {
                id,
                new: false,
                record: None,
            })?;
        }
        Ok(())
    }

    fn enforce_cap(&mut self) -> Result<(), OutboxError> {
        let pending = self.depth();
        if pending <= MAX_PENDING {
            return Ok(());
        }
        let excess: Vec<u64> = self
            .entries
            .values()
            .filter(|e| !e.is_settled())
            .take(pending - MAX_PENDING)
            .map(|e| e.id)
            .collect();
        for id in excess {
            if let Some(e) = self.entries.remove(&id) {
                tracing::error!(ip = %e.record.ip, rule = %e.record.rule, "outbox full: oldest pending block dropped");
                self.by_identity.remove(&identity(&e.record));
                self.stats.dropped_full += 1;
                self.log(&Op::Dropped { id })?;
            }
        }
        Ok(())
    }

    /// Appends a progress record (written, alerted, dropped) *without*
    /// fsync. Losing one can only make a decision look less far along than
    /// it is, and redoing a step is safe: the Redis write is idempotent and
    /// counts an offence once per decision, and an alert is at least once
    /// (a decision recovered unwritten is alerted, see the daemon's writer).
    /// A killed process loses none of them (they are in the page cache);
    /// a power loss only those not yet carried to disk by the next decision's
    /// fsync or a compaction. Syncing each one cost the writer one fsync per
    /// step of every block, holding the lock the detector needs to record
    /// the next decision: its tail on a busy disk (tens of ms) was the tail
    /// of the detection latency.
    fn log(&mut self, op: &Op) -> Result<(), OutboxError> {
        let mut buf = serde_json::to_vec(op).map_err(|e| self.io(e.into()))?;
        buf.push(b'\n');
        self.write(&buf)
    }

    /// Appends without fsync: see [`Outbox::add_unsynced`] and [`Outbox::log`].
    fn write(&mut self, buf: &[u8]) -> Result<(), OutboxError> {
        self.file.write_all(buf).map_err(|e| self.io(e))?;
        self.count_and_compact(buf)
    }

    fn count_and_compact(&mut self, buf: &[u8]) -> Result<(), OutboxError> {
        self.ops_in_file += buf.iter().filter(|&&b| b == b'\n').count();
        if self.ops_in_file > self.entries.len() + COMPACT_SLACK {
            self.compact(Timestamp::now())?;
        }
        Ok(())
    }

    /// Forgets settled entries whose block has expired, and rewrites the
    /// file with what is left (temp file, fsync, rename, fsync directory).
    pub fn compact(&mut self, now: Timestamp) -> Result<(), OutboxError> {
        let expired: Vec<u64> = self
            .entries
            .values()
            .filter(|e| e.is_settled() && e.record.expires_at <= now)
            .map(|e| e.id)
            .collect();
        for id in &expired {
            if let Some(e) = self.entries.remove(id) {
                self.by_identity.remove(&identity(&e.record));
            }
        }
        if expired.is_empty() && self.ops_in_file <= self.entries.len() + COMPACT_SLACK {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in self.entries.values() {
            let ops = [
                Some(Op::Add {
                    id: e.id,
                    record: e.record.clone(),
                }),
                e.written.map(|new| Op::Written {
                    id: e.id,
                    new,
                    record: None,
                }),
                e.alerted.then_some(Op::Alerted { id: e.id }),
            ];
            for op in ops.into_iter().flatten() {
                serde_json::to_writer(&mut buf, &op).map_err(|e| self.io(e.into()))?;
                buf.push(b'\n');
            }
        }
        write_atomically(&self.path, &buf).map_err(|e| self.io(e))?;
        self.file = OpenOptions::new()
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.ops_in_file = buf.iter().filter(|&&b| b == b'\n').count();
        Ok(())
    }

    fn io(&self, source: io::Error) -> OutboxError {
        OutboxError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// The fsync still owed for decisions written by [`Outbox::add_unsynced`].
#[derive(Debug, Default)]
#[must_use = "the decisions are not on disk until `wait` returns"]
pub struct Durable {
    /// `None` when nothing was written.
    file: Option<File>,
    path: PathBuf,
}

impl Durable {
    /// Waits until the decisions are on disk (fdatasync).
    pub fn wait(self) -> Result<(), OutboxError> {
        match self.file {
            None => Ok(()),
            Some(f) => f.sync_data().map_err(|source| OutboxError::Io {
                path: self.path,
                source,
            }),
        }
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the
/// new content: temp file (0600), fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ip: &str, last_seen: i64, expires_in: i64) -> BlockRecord {
        let now = Timestamp::now().as_millis();
        BlockRecord {
            ip: ip.into(),
            rule: "sshd".into(),
            count: 50,
            window_secs: 60,
            first_seen: Timestamp::from_millis(last_seen - 1000),
            last_seen: Timestamp::from_millis(last_seen),
            blocked_at: Timestamp::from_millis(now),
            expires_at: Timestamp::from_millis(now + expires_in),
            host: "h".into(),
            reason: "r".into(),
            block_for_secs: 900,
            offense: 1,
            shadow: false,
        }
    }

    #[test]
    fn decisions_survive_a_reopen_until_settled() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path()).unwrap();
        let added = ob
            .add(vec![
                record("203.0.113.1", 1, 60_000),
                record("203.0.113.2", 2, 60_000),
            ])
            .unwrap();
        assert_eq!(added.len(), 2);
        ob.mark_written(added[0].id, true).unwrap();
        ob.mark_alerted(added[0].id).unwrap();
        ob.mark_written(added[1].id, true).unwrap();
        drop(ob);

        let ob = Outbox::open(dir.path()).unwrap();
        let left = ob.unsettled();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].record.ip, "203.0.113.2");
        assert_eq!(left[0].written, Some(true));
        assert!(!left[0].alerted);
    }

    #[test]
    fn unsynced_decisions_are_in_the_file_before_the_fsync_and_wait_after_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path()).unwrap();
        let (added, durable) = ob
            .add_unsynced(vec![record("203.0.113.1", 1, 60_000)])
            .unwrap();
        assert_eq!(added.len(), 1);
        // A process killed here leaves the decision in the file: another
        // reader (the next start) sees it before any fsync.
        let seen = Outbox::open(dir.path()).unwrap().unsettled();
        assert_eq!(seen.len(), 1, "{seen:?}");
        // The fsync is waited for with the outbox free for other writers.
        ob.mark_written(added[0].id, false).unwrap();
        durable.wait().unwrap();
        // Nothing to add: nothing to wait for.
        let (none, durable) = ob
            .add_unsynced(vec![record("203.0.113.1", 1, 60_000)])
            .unwrap();
        assert!(none.is_empty());
        durable.wait().unwrap();
        assert!(Outbox::open(dir.path()).unwrap().unsettled().is_empty());
    }

    #[test]
    fn a_decision_made_again_from_reread_lines_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path()).unwrap();
        ob.add(vec![record("203.0.113.1", 5, 60_000)]).unwrap();
        drop(ob);
        let mut ob = Outbox::open(dir.path()).unwrap();
        let again = ob
            .add(vec![
                record("203.0.113.1", 5, 60_000),
                record("203.0.113.1", 6, 60_000),
            ])
            .unwrap();
        assert_eq!(again.len(), 1, "only the decision with a new identity");
        assert_eq!(ob.stats().duplicates, 1);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path()).unwrap();
        ob.add(vec![record("203.0.113.1", 5, 60_000)]).unwrap();
        drop(ob);
        let path = dir.path().join("outbox.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"op\":\"add\",\"id\":9,\"rec").unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        assert_eq!(ob.unsettled().len(), 1);
        assert_eq!(ob.stats().corrupt_lines, 1);
    }

    #[test]
    fn expired_settled_entries_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path()).unwrap();
        let a = ob.add(vec![record("203.0.113.1", 5, -1)]).unwrap();
        ob.mark_expired(a[0].id).unwrap();
        ob.compact(Timestamp::now()).unwrap();
        drop(ob);
        let text = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
        assert_eq!(text, "");
        let mode = std::fs::metadata(dir.path().join("outbox.jsonl"))
            .unwrap()
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
}
