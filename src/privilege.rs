//! Least privilege: refuse to run as root, and create the files and
//! directories authwatch owns so that only its own user can read them.
//!
//! authwatch parses attacker-controlled log lines all day. It needs to read
//! logs (the `adm` group does that), write its state directory and talk to
//! Redis; it never needs root. A parser bug in a root process is a root
//! compromise, so the daemon refuses euid 0 unless the operator says
//! `--allow-root` on purpose (containers without user namespaces, tests).
//!
//! The state directory holds checkpoints and queues, which carry client
//! addresses and pieces of log lines: `create_private_dir` makes it 0700
//! and `write_private_file` writes files 0600, atomically, without ever
//! following a symlink planted where the file goes.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Permission bits of a directory only its owner may use.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Permission bits of a file only its owner may read and write.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Why authwatch will not run, or could not create a private file.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// The effective user is root and `--allow-root` was not given.
    #[error(
        "refusing to run as root (effective uid 0): authwatch parses \
         attacker-controlled log lines and needs no root privileges. Run it \
         as a dedicated unprivileged user that can read the logs (e.g. in \
         the adm group; the shipped systemd unit uses DynamicUser= with \
         SupplementaryGroups=adm), or pass --allow-root to run as root anyway"
    )]
    Root,
    /// A file-system step failed, on this path.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        /// What was being done, e.g. "create the directory".
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// The path exists and is not a directory.
    #[error("{}: exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
}

impl PrivilegeError {
    fn io<'a>(
        path: &'a Path,
        action: &'static str,
    ) -> impl FnOnce(io::Error) -> PrivilegeError + 'a {
        move |source| PrivilegeError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, touches no memory of ours and
    // cannot fail.
    unsafe { libc::geteuid() }
}

/// `Err(PrivilegeError::Root)` when this process runs with effective uid 0
/// and `allow_root` is false; `Ok(())` otherwise. Call it before opening
/// any source.
pub fn refuse_root(allow_root: bool) -> Result<(), PrivilegeError> {
    refuse_root_for(effective_uid(), allow_root)
}

/// [`refuse_root`]'s decision for a given effective uid.
pub fn refuse_root_for(euid: u32, allow_root: bool) -> Result<(), PrivilegeError> {
    if euid == 0 && !allow_root {
        Err(PrivilegeError::Root)
    } else {
        Ok(())
    }
}

/// Creates `path`, and any missing parents, as directories with mode 0700
/// (less whatever the umask removes).
///
/// An existing directory is kept (a symlink to one is followed: operators
/// move state to other disks that way), but if its permissions let its
/// group or others in, they are tightened to 0700: a state directory that
/// an earlier version or a hand-made `mkdir` left world-readable does not
/// stay so. That fails, with [`PrivilegeError::Io`], unless this user owns
/// it (or is root).
pub fn create_private_dir(path: &Path) -> Result<(), PrivilegeError> {
    let created = fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path);
    if let Err(e) = created {
        // `recursive(true)` accepts an existing directory; a file in the
        // way comes back as an error, which deserves a plain message.
        if path.metadata().is_ok_and(|m| !m.is_dir()) {
            return Err(PrivilegeError::NotADirectory {
                path: path.to_owned(),
            });
        }
        return Err(PrivilegeError::io(path, "create the directory")(e));
    }
    let meta = fs::metadata(path).map_err(PrivilegeError::io(path, "inspect the directory"))?;
    if !meta.is_dir() {
        return Err(PrivilegeError::NotADirectory {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700)).map_err(
            PrivilegeError::io(path, "restrict the directory to its owner"),
        )?;
    }
    Ok(())
}

/// Writes `contents` to `path` as a file with mode 0600, atomically: the
/// bytes go to a new temporary file in the same directory (created with
/// `O_EXCL`, so a symlink planted there is never followed), which is
/// flushed to disk and renamed over `path`. Readers see the old file or
/// the new one, never a part; a symlink at `path` is replaced, not
/// followed. The directory must exist (see [`create_private_dir`]).
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), PrivilegeError> {
    let tmp = temp_path(path);
    let result = write_new(&tmp, contents).and_then(|()| {
        fs::rename(&tmp, path).map_err(PrivilegeError::io(path, "replace the file"))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable. A directory that cannot be opened or
    // synced (some file systems refuse) leaves the write done but not yet
    // durable, which is not worth failing the caller for.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn write_new(tmp: &Path, contents: &[u8]) -> Result<(), PrivilegeError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(tmp)
        .map_err(PrivilegeError::io(tmp, "create the file"))?;
    // The mode given to open(2) is reduced by the umask, never widened; set
    // it explicitly anyway so the file is exactly 0600 whatever the umask.
    f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        .map_err(PrivilegeError::io(tmp, "set the file's permissions"))?;
    f.write_all(contents)
        .map_err(PrivilegeError::io(tmp, "write the file"))?;
    f.sync_all()
        .map_err(PrivilegeError::io(tmp, "flush the file to disk"))
}

/// `dir/.name.tmp.PID.N`, unique within this process and across processes.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_else(|| "file".as_ref()));
    name.push(format!(".tmp.{}.{n}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn root_is_refused_unless_allowed() {
        assert!(matches!(
            refuse_root_for(0, false),
            Err(PrivilegeError::Root)
        ));
        assert!(refuse_root_for(0, true).is_ok());
        assert!(refuse_root_for(1000, false).is_ok());
        assert!(refuse_root_for(1000, true).is_ok());
    }

    #[test]
    fn the_root_error_says_what_to_do() {
        let msg = PrivilegeError::Root.to_string();
        assert!(msg.contains("--allow-root"), "{msg}");
        assert!(msg.contains("dedicated"), "{msg}");
    }

    #[test]
    fn refuse_root_follows_the_effective_uid() {
        let is_root = effective_uid() == 0;
        assert_eq!(refuse_root(false).is_err(), is_root);
        assert!(refuse_root(true).is_ok());
    }

    #[test]
    fn private_dirs_are_0700_with_their_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/state");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")) & 0o077, 0);
        // Again: an existing directory is fine.
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn an_open_existing_dir_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_file_in_the_way_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("state");
        fs::write(&file, b"x").unwrap();
        let err = create_private_dir(&file).unwrap_err();
        assert!(
            matches!(err, PrivilegeError::NotADirectory { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("state"), "{err}");
    }

    #[test]
    fn private_files_are_0600_and_replace_the_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("checkpoint.json");
        fs::write(&file, b"old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_file(&file, b"new").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"new");
        assert_eq!(mode(&file), 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("checkpoint.json")]);
    }

    #[test]
    fn a_symlink_at_the_path_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let file = tmp.path().join("queue");
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        write_private_file(&file, b"data").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&file).unwrap().file_type().is_file());
        assert_eq!(fs::read(&file).unwrap(), b"data");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("missing/file");
        let err = write_private_file(&file, b"x").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
