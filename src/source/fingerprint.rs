//! File identity that survives renames and catches inode reuse.
//!
//! A followed file is known by its device and inode number, which a rename
//! keeps, plus a [`Fingerprint`] of its first bytes, which tells a reused
//! inode (same number, another file) from the file we saw before. The
//! fingerprint covers the first `min(size, 256)` bytes and records how many
//! bytes that was: a file fingerprinted while it was short is still the same
//! file later if its first `len` bytes still hash the same.
//!
//! The hash is FNV-1a 64, written out here rather than taken from
//! `std::hash::DefaultHasher`, because fingerprints are saved in checkpoint
//! files and must hash the same in the next process and the next Rust
//! release.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many bytes at the start of a file a fingerprint covers at most.
pub const HEAD_BYTES: usize = 256;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits: stable across processes, platforms and Rust versions.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// A hash of a file's first `len` bytes (`len` ≤ [`HEAD_BYTES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many bytes from the start of the file the hash covers.
    pub len: u16,
    /// FNV-1a 64 of those bytes.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `head`, the first bytes of a file (only the first
    /// [`HEAD_BYTES`] are used).
    pub fn of_head(head: &[u8]) -> Fingerprint {
        let head = &head[..head.len().min(HEAD_BYTES)];
        Fingerprint {
            // `head` is at most HEAD_BYTES (256) long, so this never saturates.
            len: u16::try_from(head.len()).unwrap_or(u16::MAX),
            hash: fnv1a64(head),
        }
    }

    /// Whether a file whose first bytes are now `head` is the file this
    /// fingerprint was taken of: its first `len` bytes hash the same. A head
    /// shorter than `len` (the file shrank) does not match.
    pub fn matches(&self, head: &[u8]) -> bool {
        let len = usize::from(self.len);
        head.len() >= len && fnv1a64(&head[..len]) == self.hash
    }
}

/// The first up to [`HEAD_BYTES`] bytes of a file, read with `pread` so the
/// file position of a shared handle is left alone.
#[derive(Clone)]
pub struct Head {
    buf: [u8; HEAD_BYTES],
    len: usize,
}

impl Head {
    /// Reads the first `min(size, HEAD_BYTES)` bytes of `file`, as they are now.
    pub fn read(file: &File) -> io::Result<Head> {
        let mut head = Head {
            buf: [0; HEAD_BYTES],
            len: 0,
        };
        while head.len < HEAD_BYTES {
            match file.read_at(&mut head.buf[head.len..], head.len as u64) {
                Ok(0) => break,
                Ok(n) => head.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(head)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Who a file is: where it lives (device, inode) and what it starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: Fingerprint,
}

impl FileKey {
    /// The key of an open file; `meta` must be that file's metadata
    /// (`file.metadata()`, i.e. fstat, not a stat of a path that may have been
    /// rotated since the open).
    pub fn of(file: &File, meta: &Metadata) -> io::Result<FileKey> {
        Ok(FileKey::from_head(meta, &Head::read(file)?))
    }

    /// The key from a head already read (saves a second `pread`).
    pub fn from_head(meta: &Metadata, head: &Head) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint: Fingerprint::of_head(head.bytes()),
        }
    }

    /// Same device and inode: the same file for as long as one of us holds it
    /// open (an inode cannot be reused while open), and possibly a reused
    /// inode otherwise — see [`FileKey::same_file`].
    pub fn same_inode(&self, dev: u64, ino: u64) -> bool {
        self.dev == dev && self.ino == ino
    }

    /// Whether the open `file` (with fstat `meta`) is the file this key was
    /// taken of: same device and inode, and its first `fingerprint.len`
    /// bytes unchanged. A reused inode holding other content is not.
    pub fn same_file(&self, file: &File, meta: &Metadata) -> io::Result<bool> {
        if !self.same_inode(meta.dev(), meta.ino()) {
            return Ok(false);
        }
        Ok(self.fingerprint.matches(Head::read(file)?.bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fnv1a64_matches_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn fingerprint_covers_at_most_256_bytes() {
        let long = vec![b'x'; 1000];
        let fp = Fingerprint::of_head(&long);
        assert_eq!(fp.len, 256);
        assert_eq!(fp.hash, fnv1a64(&long[..256]));
        let mut other = long.clone();
        other[500] = b'y';
        assert!(fp.matches(&other));
        other[10] = b'y';
        assert!(!fp.matches(&other));
    }

    #[test]
    fn short_file_is_still_the_same_file_after_it_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.log");
        let mut w = File::create(&path).expect("create");
        w.write_all(b"abc\n").expect("write");
        let f = File::open(&path).expect("open");
        let key = FileKey::of(&f, &f.metadata().expect("meta")).expect("key");
        assert_eq!(key.fingerprint.len, 4);

        w.write_all(&[b'z'; 600]).expect("write");
        let meta = f.metadata().expect("meta");
        assert!(key.same_file(&f, &meta).expect("check"));
        let grown = FileKey::of(&f, &meta).expect("key");
        assert_eq!(grown.fingerprint.len, 256);
        assert_eq!((grown.dev, grown.ino), (key.dev, key.ino));
    }

    #[test]
    fn rewritten_or_shrunk_file_is_not_the_same_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.log");
        std::fs::write(&path, b"first content\n").expect("write");
        let f = File::open(&path).expect("open");
        let key = FileKey::of(&f, &f.metadata().expect("meta")).expect("key");

        // Same inode, other bytes: what a reused inode looks like.
        std::fs::write(&path, b"other content\n").expect("write");
        assert!(!key
            .same_file(&f, &f.metadata().expect("meta"))
            .expect("check"));
        // Same inode, fewer bytes than the fingerprint covered.
        std::fs::write(&path, b"first").expect("write");
        assert!(!key
            .same_file(&f, &f.metadata().expect("meta"))
            .expect("check"));
        std::fs::write(&path, b"first content\nand more").expect("write");
        assert!(key
            .same_file(&f, &f.metadata().expect("meta"))
            .expect("check"));
    }

    #[test]
    fn file_key_round_trips_through_json() {
        let key = FileKey {
            dev: 2049,
            ino: u64::MAX,
            fingerprint: Fingerprint {
                len: 256,
                hash: u64::MAX - 1,
            },
        };
        let json = serde_json::to_string(&key).expect("serialize");
        let back: FileKey = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, key);
    }
}
