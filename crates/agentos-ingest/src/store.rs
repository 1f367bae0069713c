//! The local ingest store: normalised records plus checkpoints, one directory per source root.
//!
//! Layout of `<data_dir>/ingest/<kind>-<hash of the root>/`:
//! * `meta.json` — `{version, kind, root}`;
//! * `records.bin` — append-only [`UsageRecord`]s, [`UsageRecord::SIZE`] bytes each;
//! * `strings.json` — the string table the records index into (append-only in meaning);
//! * `checkpoints.json` — per-file checkpoints and `records_len`, the committed length of
//!   `records.bin`;
//! * `pending.json` — CCC requests still waiting for their final line;
//! * `skipped.jsonl` — the lines skipped by every run (their count is in `checkpoints.json`).
//!
//! Commit order: append records (an `fsync` of what is appended starts in the background every
//! MiB, see [`Appender`]); then `fsync` them while `strings.json` and `pending.json` are
//! replaced (each by temp file + `fsync` + rename; the string table only grows, so a newer one
//! beside older records is harmless); then, once all of that succeeded, replace
//! `checkpoints.json` the same way. A crash before the checkpoint rename leaves extra bytes after
//! `records_len`; they are cut off when the store is next opened, and the files are re-read from
//! the old checkpoints, so nothing is lost or counted twice.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoints;
use crate::error::IngestError;
use crate::record::{RecordSet, StringTable, UsageRecord};
use crate::scan::fnv1a64;
use crate::source::ccc::CccTurn;

/// Store format version.
pub const STORE_VERSION: u32 = 1;

/// Which source a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Claude Code transcripts.
    Claude,
    /// CCC shim usage logs.
    Ccc,
    /// Codex CLI session rollouts.
    Codex,
}

impl SourceKind {
    /// Every kind, in code order.
    pub const ALL: [SourceKind; 3] = [SourceKind::Claude, SourceKind::Ccc, SourceKind::Codex];

    /// The kind's tag in [`crate::record::UsageRecord::flags`] (bits 8–11, set only in memory
    /// by [`crate::ingest::load_all`]; never stored).
    pub fn flag(&self) -> u32 {
        self.source().code() << crate::record::SOURCE_SHIFT
    }

    /// The report vocabulary's name for this kind's turns.
    pub fn source(&self) -> agentos_core::source::Source {
        use agentos_core::source::Source;
        match self {
            SourceKind::Claude => Source::Claude,
            SourceKind::Ccc => Source::Ccc,
            SourceKind::Codex => Source::Codex,
        }
    }

    /// The kind tagged in `flags`, if any.
    pub fn from_flags(flags: u32) -> Option<SourceKind> {
        Self::ALL
            .into_iter()
            .find(|k| flags & crate::record::SOURCE_MASK == k.flag())
    }

    /// Directory-name prefix.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Claude => "claude",
            SourceKind::Ccc => "ccc",
            SourceKind::Codex => "codex",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    version: u32,
    kind: SourceKind,
    root: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CheckpointFile {
    records_len: u64,
    /// Appended records that replaced an earlier copy of the same key; 0 means `records.bin`
    /// holds distinct keys and can be loaded without de-duplication.
    #[serde(default)]
    replaced: u64,
    /// Lines skipped over the store's life (`skipped.jsonl` lists them).
    #[serde(default)]
    skipped: u64,
    #[serde(default)]
    checkpoints: Checkpoints,
}

/// One opened store directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    kind: SourceKind,
    /// Checkpoints as committed.
    pub checkpoints: Checkpoints,
    records_len: u64,
    replaced: u64,
    skipped: u64,
    // Held for the store's lifetime: one writer per store directory.
    _lock: File,
}

/// The ingest root: `<data_dir>/ingest` (named in [`agentos_config::layout`]).
pub fn ingest_dir(data_dir: &Path) -> PathBuf {
    agentos_config::DataDir::new(data_dir).ingest_dir()
}

/// The store directory for a source root.
pub fn store_dir(data_dir: &Path, kind: SourceKind, root_key: &str) -> PathBuf {
    ingest_dir(data_dir).join(format!(
        "{}-{:016x}",
        kind.as_str(),
        fnv1a64(root_key.as_bytes())
    ))
}

/// All store directories under `<data_dir>/ingest`, sorted, with their kinds.
pub fn list_stores(data_dir: &Path) -> Vec<(SourceKind, PathBuf)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(ingest_dir(data_dir)) {
        for e in rd.flatten() {
            let p = e.path();
            let Ok(text) = std::fs::read(p.join("meta.json")) else {
                continue;
            };
            if let Ok(m) = serde_json::from_slice::<Meta>(&text) {
                v.push((m.kind, p));
            }
        }
    }
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<Option<T>, IngestError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| IngestError::json(path.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IngestError::io(path, e)),
    }
}

pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, v: &T) -> Result<(), IngestError> {
    let tmp = path.with_extension("json.tmp");
    let bytes =
        serde_json::to_vec(v).map_err(|e| IngestError::json(path.display().to_string(), e))?;
    let mut f = File::create(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
    f.write_all(&bytes).map_err(|e| IngestError::io(&tmp, e))?;
    f.sync_data().map_err(|e| IngestError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| IngestError::io(path, e))
}

/// How long [`Store::open`] waits for a store another run holds before it gives up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Store {
    /// Opens (creating when needed) the store at `dir` for `kind` and `root`, cutting off any
    /// uncommitted tail of `records.bin`. Waits up to two seconds for a store another run
    /// holds.
    pub fn open(dir: &Path, kind: SourceKind, root: &str) -> Result<Store, IngestError> {
        std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| IngestError::io(&lock_path, e))?;
        // A run that is just finishing should not fail the next one; nor should a child process
        // of ours (a hook, a test's generator) that holds a copy of the lock for the instant
        // between its fork and exec (flock locks go with the open file, which a fork shares).
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(IngestError::Store {
                        path: lock_path,
                        detail: format!(
                            "it is locked ({e}); is another agentos ingest or report running?"
                        ),
                    });
                }
            }
        }
        let meta_path = dir.join("meta.json");
        match read_json::<Meta>(&meta_path)? {
            Some(m) if m.version != STORE_VERSION || m.kind != kind => {
                return Err(IngestError::Store {
                    path: meta_path,
                    detail: format!(
                        "store holds {:?} version {}, expected {:?} version {STORE_VERSION}",
                        m.kind, m.version, kind
                    ),
                });
            }
            Some(_) => {}
            None => write_json_atomic(
                &meta_path,
                &Meta {
                    version: STORE_VERSION,
                    kind,
                    root: root.to_string(),
                },
            )?,
        }
        let cpf: CheckpointFile = read_json(&dir.join("checkpoints.json"))?.unwrap_or_default();
        let mut checkpoints = cpf.checkpoints;
        checkpoints.reindex();
        let rec_path = dir.join("records.bin");
        if let Ok(m) = std::fs::metadata(&rec_path)
            && m.len() > cpf.records_len
        {
            let f = OpenOptions::new()
                .write(true)
                .open(&rec_path)
                .map_err(|e| IngestError::io(&rec_path, e))?;
            f.set_len(cpf.records_len)
                .map_err(|e| IngestError::io(&rec_path, e))?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            kind,
            checkpoints,
            records_len: cpf.records_len,
            replaced: cpf.replaced,
            skipped: cpf.skipped,
            _lock: lock,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The source kind.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// Number of committed records.
    pub fn record_count(&self) -> u64 {
        self.records_len / UsageRecord::SIZE as u64
    }

    /// True when no committed record replaced another, i.e. `records.bin` holds distinct keys
    /// and can be used without de-duplication.
    pub fn is_duplicate_free(&self) -> bool {
        self.replaced == 0
    }

    /// The committed string table.
    pub fn strings(&self) -> Result<StringTable, IngestError> {
        let items: Vec<String> = read_json(&self.dir.join("strings.json"))?.unwrap_or_default();
        Ok(StringTable::from_items(items))
    }

    /// Calls `f` for every committed record in order, without holding them all in memory.
    /// Only meaningful as a report source when [`Store::is_duplicate_free`].
    pub fn for_each_record(&self, mut f: impl FnMut(&UsageRecord)) -> Result<(), IngestError> {
        let rpath = self.dir.join("records.bin");
        let mut file = match File::open(&rpath) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(IngestError::io(&rpath, e)),
        };
        let mut remaining = self.records_len;
        let mut buf = vec![0u8; UsageRecord::SIZE * 4096];
        while remaining > 0 {
            let want = (buf.len() as u64).min(remaining) as usize;
            file.read_exact(&mut buf[..want])
                .map_err(|e| IngestError::io(&rpath, e))?;
            for chunk in buf[..want].chunks_exact(UsageRecord::SIZE) {
                let mut arr = [0u8; UsageRecord::SIZE];
                arr.copy_from_slice(chunk);
                f(&UsageRecord::decode(&arr));
            }
            remaining -= want as u64;
        }
        Ok(())
    }

    /// Loads all committed records into a de-duplicated set.
    pub fn load(&self) -> Result<RecordSet, IngestError> {
        let mut set = RecordSet::default();
        self.load_into(&mut set)?;
        Ok(set)
    }

    /// Loads all committed records into `set` (strings are remapped into its table).
    pub fn load_into(&self, set: &mut RecordSet) -> Result<(), IngestError> {
        let spath = self.dir.join("strings.json");
        let strings: Vec<String> = read_json(&spath)?.unwrap_or_default();
        let table = StringTable::from_items(strings);
        let same_table = set.records.is_empty() && set.strings.is_empty();
        let map: Vec<u32> = if same_table {
            set.strings = table.clone();
            (0..table.len() as u32).collect()
        } else {
            table.items().map(|s| set.strings.intern(s)).collect()
        };
        let remap = |i: u32| map.get(i as usize).copied().unwrap_or(0);
        let rpath = self.dir.join("records.bin");
        let mut f = match File::open(&rpath) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(IngestError::io(&rpath, e)),
        };
        let mut remaining = self.records_len;
        let mut buf = vec![0u8; UsageRecord::SIZE * 8192];
        set.records
            .reserve((remaining / UsageRecord::SIZE as u64) as usize);
        // A duplicate-free store loaded into an empty set needs no index until something new
        // arrives: a warm run with nothing new never builds it.
        let unique = same_table && self.replaced == 0;
        while remaining > 0 {
            let want = (buf.len() as u64).min(remaining) as usize;
            f.read_exact(&mut buf[..want])
                .map_err(|e| IngestError::io(&rpath, e))?;
            for chunk in buf[..want].chunks_exact(UsageRecord::SIZE) {
                let mut arr = [0u8; UsageRecord::SIZE];
                arr.copy_from_slice(chunk);
                let mut r = UsageRecord::decode(&arr);
                if !same_table {
                    r.model = remap(r.model);
                    r.session = remap(r.session);
                    r.project = remap(r.project);
                }
                if unique {
                    set.extend_unique(std::iter::once(r));
                } else {
                    set.push(r);
                }
            }
            remaining -= want as u64;
        }
        Ok(())
    }

    /// CCC requests left open by the last run.
    pub fn pending(&self) -> Result<Vec<CccTurn>, IngestError> {
        Ok(read_json(&self.dir.join("pending.json"))?.unwrap_or_default())
    }

    /// Starts appending records (they stay uncommitted until [`Store::commit`]).
    pub fn appender(&self) -> Appender {
        Appender {
            path: self.dir.join("records.bin"),
            file: None,
            written: 0,
            buf: Vec::new(),
            unsynced: 0,
            syncing: None,
        }
    }

    /// Makes appended records durable and commits strings, pending requests and checkpoints.
    /// `replaced` is how many appended records replaced an earlier copy.
    pub fn commit(
        &mut self,
        app: Appender,
        replaced: u64,
        strings: &StringTable,
        pending: Option<&[CccTurn]>,
        checkpoints: Checkpoints,
    ) -> Result<(), IngestError> {
        self.commit_with(app, replaced, strings, pending, checkpoints, || Ok(()))
    }

    /// [`Store::commit`], running `side` (another file the checkpoints vouch for, such as a
    /// source's reader state) alongside. The `fsync` of the records, the strings and pending
    /// files, and `side` do not depend on each other, so they overlap; the checkpoints, which
    /// refer to all of them, are replaced only after every one succeeded.
    pub fn commit_with(
        &mut self,
        mut app: Appender,
        replaced: u64,
        strings: &StringTable,
        pending: Option<&[CccTurn]>,
        checkpoints: Checkpoints,
        side: impl FnOnce() -> Result<(), IngestError> + Send,
    ) -> Result<(), IngestError> {
        let early = app.syncing.take();
        let app = &app;
        let dir = &self.dir;
        std::thread::scope(|s| {
            let records = app.file.as_ref().map(|f| s.spawn(move || f.sync_data()));
            let side = s.spawn(side);
            let mut res = Ok(());
            if app.written > 0 {
                let items: Vec<&str> = strings.items().collect();
                res = write_json_atomic(&dir.join("strings.json"), &items);
            }
            if let (Ok(()), Some(p)) = (&res, pending) {
                res = write_json_atomic(&dir.join("pending.json"), &p);
            }
            // An early sync's error fails the commit too: after a failed fsync the next one
            // may report success without the lost pages ever having been written.
            let synced = match (records.map(joined), early.map(joined_detached)) {
                (Some(Err(e)), _) | (_, Some(Err(e))) => Err(IngestError::io(&app.path, e)),
                _ => Ok(()),
            };
            let side = joined(side);
            synced.and(side).and(res)
        })?;
        self.replaced += replaced;
        self.records_len += app.written;
        self.checkpoints = checkpoints;
        write_json_atomic(
            &self.dir.join("checkpoints.json"),
            &CheckpointFile {
                records_len: self.records_len,
                replaced: self.replaced,
                skipped: self.skipped,
                checkpoints: self.checkpoints.clone(),
            },
        )
    }

    /// Lines skipped over the store's life, committed ones plus [`Store::add_skipped`] since.
    pub fn skipped_lines(&self) -> u64 {
        self.skipped
    }

    /// Counts lines skipped by the current run; the next [`Store::commit`] records them.
    pub fn add_skipped(&mut self, n: u64) {
        self.skipped += n;
    }

    /// Where this store's skipped-lines list goes (every run's skips, appended).
    pub fn skipped_path(&self) -> PathBuf {
        self.dir.join("skipped.jsonl")
    }
}

/// The result of a scoped thread, its panic passed on.
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The result of a thread, its panic passed on.
fn joined_detached<T>(h: std::thread::JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Appends records to `records.bin` during a run.
///
/// Every MiB appended it starts an `fsync` of what it appended so far on a background
/// thread (one at a time), so the disk writes records while the run is still reading logs and
/// the commit's own `fsync` has only the tail left (it took about a tenth of a cold Codex
/// report's wall time when it had to write every record at the end). Durability is unchanged:
/// the commit still syncs the whole file, and waits for the early sync, before the checkpoints
/// move; an early sync's error fails the run like the commit's own would.
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    file: Option<File>,
    written: u64,
    buf: Vec<u8>,
    /// Bytes appended since the last early sync started.
    unsynced: u64,
    /// The early sync in flight, if any.
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

/// Appended bytes after which [`Appender`] starts a background `fsync`.
const EARLY_SYNC: u64 = 1 << 20;

impl Appender {
    /// Appends `recs` (not yet durable).
    pub fn write(&mut self, recs: &[UsageRecord]) -> Result<(), IngestError> {
        if recs.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| IngestError::io(&self.path, e))?;
            self.file = Some(f);
        }
        self.buf.clear();
        for r in recs {
            r.encode(&mut self.buf);
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(&self.buf)
                .map_err(|e| IngestError::io(&self.path, e))?;
        }
        self.written += self.buf.len() as u64;
        self.unsynced += self.buf.len() as u64;
        if self.unsynced >= EARLY_SYNC && self.syncing.as_ref().is_none_or(|h| h.is_finished()) {
            self.wait_early_sync()?;
            if let Some(f) = self.file.as_ref() {
                // A second handle to the same open file: syncing it syncs the file. Without
                // one (out of descriptors) the commit's sync does all the work, as before.
                if let Ok(f) = f.try_clone() {
                    self.syncing = Some(std::thread::spawn(move || f.sync_data()));
                    self.unsynced = 0;
                }
            }
        }
        Ok(())
    }

    /// Waits for the early sync in flight, if any, and returns its error.
    fn wait_early_sync(&mut self) -> Result<(), IngestError> {
        match self.syncing.take().map(joined_detached) {
            Some(Err(e)) => Err(IngestError::io(&self.path, e)),
            _ => Ok(()),
        }
    }

    /// Bytes appended so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}
