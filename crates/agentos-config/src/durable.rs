//! Small durable-write helpers shared by the recorder and the delivery outbox.
//!
//! - [`atomic_write`]: replace a small state file so that readers see either the old or the new
//!   content, never a mix, even across a power loss (temp file in the same dir, fsync, rename,
//!   fsync of the dir).
//! - [`create_once`]: create a file with given content only if it does not exist yet, race-free
//!   across processes.
//! - [`FileLock`]: an exclusive advisory lock on a lock file (std `File::lock`), released on drop.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Atomically replaces `path` with `bytes`.
///
/// Writes a uniquely named temp file in the same directory (rename is only atomic within one
/// file system), `sync_all`s it, renames it over `path`, then fsyncs the directory so the rename
/// itself survives a power loss.
///
/// # Errors
/// Any I/O error; the temp file is removed on failure.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_and_rename(path, bytes, true)
}

/// Like [`atomic_write`] but without any fsync: atomic against concurrent readers and process
/// crashes (rename is atomic), not against power loss. Used for derived files that can be
/// recomputed (the metrics summary, the rollup state), where an fsync per turn would dominate.
///
/// # Errors
/// Any I/O error; the temp file is removed on failure.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_and_rename(path, bytes, false)
}

/// Writes `bytes` to a fresh temp file beside `path` and renames it over `path`; with `durable`,
/// the data and then the directory entry are fsynced too.
fn write_and_rename(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = temp_path(path)?;
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)?;
        if durable { sync_parent(path) } else { Ok(()) }
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` holding `bytes` unless it already exists. Returns whether this call created it.
///
/// The content is written and synced under a temp name first, then hard-linked into place:
/// `link` fails if the target exists, so exactly one of several racing processes wins and no
/// reader ever sees a half-written file.
///
/// # Errors
/// Any I/O error other than "already exists".
pub fn create_once(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let tmp = temp_path(path)?;
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                sync_parent(path)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    // pid + a random suffix: unique across processes and across threads of one process.
    tmp_name.push(format!(".{}.{:016x}.tmp", std::process::id(), random_u64()));
    Ok(path.with_file_name(tmp_name))
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Uniqueness, not secrecy, is needed: fall back to the clock.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return t as u64;
    }
    u64::from_le_bytes(b)
}

/// Fsyncs the directory containing `path` (makes a rename or create durable).
///
/// # Errors
/// Any I/O error.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock on a file, held until drop.
///
/// Advisory: it only excludes other holders of the same lock (every agentos process writing into
/// a data dir takes it), not arbitrary writers.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` (created if missing) is held.
    ///
    /// # Errors
    /// Any I/O error opening or locking the file.
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        let file = open_lock_file(path)?;
        file.lock()?;
        Ok(FileLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Takes the exclusive lock on `path` if nobody holds it; `Ok(None)` when it is held.
    ///
    /// # Errors
    /// Any I/O error opening or locking the file.
    pub fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock anyway; unlocking first makes it prompt even if
        // the File were leaked elsewhere.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        atomic_write(&p, b"one").expect("write 1");
        atomic_write(&p, b"two").expect("write 2");
        replace_file(&p, b"three").expect("write 3");
        assert_eq!(std::fs::read(&p).expect("read"), b"three");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn create_once_keeps_the_first_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id");
        assert!(create_once(&p, b"first").expect("1"));
        assert!(!create_once(&p, b"second").expect("2"));
        assert_eq!(std::fs::read(&p).expect("read"), b"first");
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.lock");
        let held = FileLock::acquire(&p).expect("lock");
        assert!(FileLock::try_acquire(&p).expect("try").is_none());
        drop(held);
        assert!(FileLock::try_acquire(&p).expect("try").is_some());
    }
}
