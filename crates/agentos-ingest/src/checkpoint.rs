//! Per-file checkpoints: how far each file has been read, keyed by file identity.
//!
//! A checkpoint holds the file's identity (device + inode), the offset after the last consumed
//! line, that line's offset and FNV-1a hash, the line count, and the size and mtime seen. On the
//! next run a file is:
//! * **unchanged** when identity, size and mtime match (not even opened);
//! * **resumed** at the offset when its identity matches, it is at least as long as the offset
//!   and the line before the offset still hashes the same;
//! * **read from the start** otherwise (new file, truncated, or rewritten in place). Records read
//!   again are dropped by the store's de-duplication.
//!
//! Because the key is the identity and not the name, `usage.jsonl` → `usage.jsonl.1` is
//! recognised as the same file and only its unread tail (if any) is read.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::scan::{FileId, ScanEnd, hash_line_at};

/// How far one file has been read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// Identity (survives renames).
    pub id: FileId,
    /// Path when last read (informational).
    pub path: PathBuf,
    /// Offset after the last consumed line.
    pub offset: u64,
    /// Offset of the last consumed line.
    pub last_line_offset: u64,
    /// FNV-1a of the last consumed line.
    pub last_line_hash: u64,
    /// Lines consumed so far.
    pub lines: u64,
    /// File size when last read.
    pub size: u64,
    /// File mtime (ns since the epoch) when last read.
    pub mtime_ns: u64,
}

/// What to do with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing new: skip without opening.
    Unchanged,
    /// Read from `offset`; the line there is number `first_line`.
    Resume {
        /// Start offset.
        offset: u64,
        /// Number of the line at `offset`.
        first_line: u64,
    },
    /// Read from the start.
    Fresh,
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
pub fn mtime_ns(meta: &Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// All checkpoints of one store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    files: Vec<FileCheckpoint>,
    #[serde(skip)]
    by_id: FxHashMap<FileId, usize>,
}

impl Checkpoints {
    /// Builds the identity index (after deserialising).
    pub fn reindex(&mut self) {
        self.by_id = self
            .files
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
    }

    /// The checkpoint of a file identity.
    pub fn get(&self, id: &FileId) -> Option<&FileCheckpoint> {
        self.by_id.get(id).map(|&i| &self.files[i])
    }

    /// Number of files with a checkpoint.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Decides how to read `path` given its metadata.
    pub fn plan(&self, path: &Path, meta: &Metadata) -> Plan {
        let id = FileId::of(meta);
        let Some(cp) = self.get(&id) else {
            return Plan::Fresh;
        };
        let size = meta.len();
        if size < cp.offset {
            return Plan::Fresh;
        }
        if size == cp.size && mtime_ns(meta) == cp.mtime_ns && size == cp.offset {
            return Plan::Unchanged;
        }
        if cp.lines > 0 {
            let len = cp.offset - cp.last_line_offset;
            if hash_line_at(path, cp.last_line_offset, len) != Some(cp.last_line_hash) {
                return Plan::Fresh;
            }
        }
        if size == cp.offset {
            return Plan::Unchanged;
        }
        Plan::Resume {
            offset: cp.offset,
            first_line: cp.lines + 1,
        }
    }

    /// Records where a scan of `path` ended.
    pub fn record(&mut self, path: &Path, meta: &Metadata, end: &ScanEnd) {
        let cp = FileCheckpoint {
            id: FileId::of(meta),
            path: path.to_path_buf(),
            offset: end.offset,
            last_line_offset: end.last_line_offset,
            last_line_hash: end.last_line_hash,
            lines: end.lines,
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
        };
        match self.by_id.get(&cp.id) {
            Some(&i) => self.files[i] = cp,
            None => {
                self.by_id.insert(cp.id, self.files.len());
                self.files.push(cp);
            }
        }
    }

    /// Refreshes the path, size and mtime of an unchanged file (after a rename).
    pub fn touch(&mut self, path: &Path, meta: &Metadata) {
        if let Some(&i) = self.by_id.get(&FileId::of(meta)) {
            let c = &mut self.files[i];
            c.path = path.to_path_buf();
            c.size = meta.len();
            c.mtime_ns = mtime_ns(meta);
        }
    }
}
