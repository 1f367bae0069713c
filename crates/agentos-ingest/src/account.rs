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
    /// Of `files_skipped`, those last written before `--since` (the rest are unchanged).
    pub files_before_range: u64,
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
    /// Lines skipped (torn, malformed, oversized) by this run.
    pub lines_skipped: u64,
    /// Lines skipped that the store holds on record, this run's and earlier runs' (0 for
    /// direct scans): a warm run that reads nothing still knows its data has holes.
    pub skipped_recorded: u64,
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
        self.files_before_range += o.files_before_range;
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.records += o.records;
        self.turns += o.turns;
        self.duplicates += o.duplicates;
        self.added += o.added;
        self.lines_skipped += o.lines_skipped;
        self.skipped_recorded += o.skipped_recorded;
        self.fragments += o.fragments;
        self.out_of_range += o.out_of_range;
        self.incomplete += o.incomplete;
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files read ({} unchanged",
            self.files,
            self.files_skipped - self.files_before_range.min(self.files_skipped)
        )?;
        if self.files_before_range > 0 {
            write!(f, ", {} before the range", self.files_before_range)?;
        }
        write!(
            f,
            "), {}, {} records, {} turns, {} duplicates dropped, {} lines skipped",
            human_bytes(self.bytes),
            self.records,
            self.turns,
            self.duplicates,
            self.lines_skipped
        )?;
        if self.skipped_recorded > self.lines_skipped {
            write!(
                f,
                " ({} skipped in all, earlier runs included)",
                self.skipped_recorded
            )?;
        }
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

/// `1536` → `"1.5 KiB"`: sizes people read at a glance.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Writes `skipped` as JSON lines to `path` (replacing it). Nothing is written for an empty list.
pub fn write_skipped(path: &Path, skipped: &[SkippedLine]) -> Result<Option<PathBuf>, IngestError> {
    write_lines(path, skipped, false)
}

/// Appends `skipped` as JSON lines to `path` (a store's list, which keeps every run's skips).
pub fn append_skipped(path: &Path, skipped: &[SkippedLine]) -> Result<(), IngestError> {
    write_lines(path, skipped, true).map(|_| ())
}

fn write_lines(
    path: &Path,
    skipped: &[SkippedLine],
    append: bool,
) -> Result<Option<PathBuf>, IngestError> {
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
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| IngestError::io(path, e))?;
    f.write_all(&out).map_err(|e| IngestError::io(path, e))?;
    Ok(Some(path.to_path_buf()))
}

/// Books the end of one file's scan: bytes read, oversized lines, or the file being unreadable
/// (a skipped "line 0", never fatal), and the progress; returns where the scan ended.
pub(crate) fn settle_scan(
    res: Result<crate::scan::ScanEnd, IngestError>,
    path: &Arc<Path>,
    account: &mut Account,
    skipped: &mut Vec<SkippedLine>,
    progress: Option<&Progress>,
) -> Option<crate::scan::ScanEnd> {
    let whole_file = |reason| SkippedLine {
        path: path.clone(),
        line: 0,
        offset: 0,
        reason,
    };
    let end = match res {
        Ok(end) => {
            account.bytes = end.bytes_read;
            if end.oversized > 0 {
                account.lines_skipped += end.oversized;
                skipped.push(whole_file(SkipReason::Oversized));
            }
            Some(end)
        }
        Err(e) => {
            account.lines_skipped += 1;
            skipped.push(whole_file(SkipReason::Unreadable(format!("{e:#}"))));
            None
        }
    };
    if let Some(p) = progress {
        p.add_bytes(account.bytes);
        p.file_done();
    }
    end
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (5 << 30, "5.0 GiB"),
        ];
        for (n, want) in cases {
            assert_eq!(human_bytes(n), want, "{n}");
        }
    }

    #[test]
    fn the_account_says_unchanged_and_sizes() {
        let a = Account {
            files: 2,
            files_skipped: 30,
            files_before_range: 4,
            bytes: 3 * 1024 * 1024,
            lines_skipped: 1,
            skipped_recorded: 3,
            ..Account::default()
        };
        let s = a.to_string();
        assert!(
            s.starts_with("2 files read (26 unchanged, 4 before the range), 3.0 MiB,"),
            "{s}"
        );
        assert!(s.contains("1 lines skipped (3 skipped in all"), "{s}");
        assert!(!s.contains("not opened"), "{s}");
    }
}
