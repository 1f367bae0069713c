//! The account every run ends with (one line on stderr) and the list of skipped lines.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::IngestError;

/// Why a line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
#[non_exhaustive]
pub enum SkipReason {
    /// Not valid JSON (a torn write, or garbage).
    InvalidJson(String),
    /// Valid JSON, but a field has a type this reader cannot use.
    BadField(String),
    /// Longer than the maximum line length.
    Oversized,
    /// The whole file could not be read.
    Unreadable(String),
}

/// One skipped line: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedLine {
    /// The file.
    pub path: Arc<Path>,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line.
    pub offset: u64,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Files read (fully or from a checkpoint).
    pub files: u64,
    /// Files not opened: unchanged since their checkpoint, or last written before `--since`.
    pub files_skipped: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Physical lines read.
    pub lines: u64,
    /// Usage records found (before de-duplication).
    pub records: u64,
    /// Turns (requests / unique assistant messages) kept.
    pub turns: u64,
    /// Records dropped as duplicates.
    pub duplicates: u64,
    /// Records added to the store by this run (0 for direct scans).
    pub added: u64,
    /// Lines skipped (torn, malformed, oversized).
    pub lines_skipped: u64,
    /// Stray JSON fragments such as `{}` that carry nothing.
    pub fragments: u64,
    /// Lines skipped cheaply because their timestamp is outside the requested range.
    pub out_of_range: u64,
    /// CCC requests that never got a final line.
    pub incomplete: u64,
    /// Where the list of skipped lines was written, if any line was skipped.
    pub skipped_list: Option<PathBuf>,
}

impl Account {
    /// Adds the counters of `o` (not the list path).
    pub fn add(&mut self, o: &Account) {
        self.files += o.files;
        self.files_skipped += o.files_skipped;
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.records += o.records;
        self.turns += o.turns;
        self.duplicates += o.duplicates;
        self.added += o.added;
        self.lines_skipped += o.lines_skipped;
        self.fragments += o.fragments;
        self.out_of_range += o.out_of_range;
        self.incomplete += o.incomplete;
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files ({} not opened), {} bytes, {} records, {} turns, {} duplicates dropped, {} lines skipped",
            self.files,
            self.files_skipped,
            self.bytes,
            self.records,
            self.turns,
            self.duplicates,
            self.lines_skipped
        )?;
        if self.added > 0 {
            write!(f, ", {} added to the store", self.added)?;
        }
        if self.incomplete > 0 {
            write!(f, ", {} incomplete requests", self.incomplete)?;
        }
        if self.out_of_range > 0 {
            write!(f, ", {} lines outside the range", self.out_of_range)?;
        }
        if let Some(p) = &self.skipped_list {
            write!(f, " (list: {})", p.display())?;
        }
        Ok(())
    }
}

/// Writes `skipped` as JSON lines to `path` (replacing it). Nothing is written for an empty list.
pub fn write_skipped(path: &Path, skipped: &[SkippedLine]) -> Result<Option<PathBuf>, IngestError> {
    if skipped.is_empty() {
        return Ok(None);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
    }
    let mut out = Vec::new();
    for s in skipped {
        // Serialising these plain structs cannot fail.
        if let Ok(v) = serde_json::to_vec(s) {
            out.extend_from_slice(&v);
            out.push(b'\n');
        }
    }
    let mut f = std::fs::File::create(path).map_err(|e| IngestError::io(path, e))?;
    f.write_all(&out).map_err(|e| IngestError::io(path, e))?;
    Ok(Some(path.to_path_buf()))
}

/// Live counters a progress bar can poll while worker threads run.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes read so far.
    pub bytes: AtomicU64,
    /// Files finished so far.
    pub files: AtomicU64,
    /// Total bytes expected (set before workers start).
    pub total_bytes: AtomicU64,
}

impl Progress {
    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn file_done(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }
}
