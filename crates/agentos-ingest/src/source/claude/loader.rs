//! Reading transcript files (in parallel) into usage records.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memchr::memmem;

use super::parser::{Parsed, USAGE_MARKER, parse_line};
use crate::account::{Account, Progress, SkippedLine, settle_scan};
use crate::dedup::DedupKey;
use crate::record::{FLAG_SIDECHAIN, LocalBatch, UsageRecord};
use crate::scan::{ReadBuffer, ScanEnd, Tail, scan_file};
use crate::time::TimeRange;

/// One file to read, possibly from a checkpoint.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// The transcript.
    pub path: PathBuf,
    /// Its project (directory below `projects/`).
    pub project: String,
    /// Byte offset to start at.
    pub start: u64,
    /// Number of the line at `start`.
    pub first_line: u64,
    /// Current size (for balancing and progress).
    pub size: u64,
    /// Stop before lines that start at or after this offset (a chunk of a large file).
    pub limit: Option<u64>,
    /// `start` is a chunk boundary: the partial first line belongs to the previous chunk and line
    /// numbers are relative to the chunk (see [`ChunkJoiner`]).
    pub resync: bool,
}

/// Splits transcripts read from their start into chunks of about `chunk` bytes, so one huge file
/// neither holds all its records in one batch nor keeps a single worker busy. Chunks of one file
/// stay adjacent and in order.
pub fn split_jobs(jobs: Vec<FileJob>, chunk: u64) -> Vec<FileJob> {
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        match crate::chunk::pieces(j.start, j.limit, j.size, chunk) {
            None => out.push(j),
            Some(pieces) => out.extend(pieces.into_iter().map(|p| FileJob {
                path: j.path.clone(),
                project: j.project.clone(),
                start: p.start,
                first_line: p.first_line,
                size: p.size,
                limit: p.limit,
                resync: p.resync,
            })),
        }
    }
    out
}

/// Turns chunk-relative line numbers into file line numbers while outcomes are consumed in job
/// order.
#[derive(Debug, Default)]
pub struct ChunkJoiner(crate::chunk::LineJoiner);

impl ChunkJoiner {
    /// Fixes `o` (the outcome of `job`) in place.
    pub fn fix(&mut self, job: &FileJob, o: &mut FileOutcome) {
        self.0.fix(
            job.resync,
            job.first_line,
            &mut o.account,
            &mut o.skipped,
            o.end.as_mut(),
        );
    }
}

/// What reading one file produced.
#[derive(Debug)]
pub struct FileOutcome {
    /// Records with file-local strings.
    pub batch: LocalBatch,
    /// Counters.
    pub account: Account,
    /// Skipped lines.
    pub skipped: Vec<SkippedLine>,
    /// Where the scan ended (for the checkpoint); `None` when the file could not be read.
    pub end: Option<ScanEnd>,
}

/// Reads one transcript from `job.start`.
pub fn read_file(job: &FileJob, range: &TimeRange, progress: Option<&Progress>) -> FileOutcome {
    let finder = memmem::Finder::new(USAGE_MARKER);
    let path: Arc<Path> = Arc::from(job.path.as_path());
    let file_name = job.path.to_string_lossy();
    let mut batch = LocalBatch::default();
    let project = batch.strings.intern(&job.project);
    let stem_session = job
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut account = Account {
        files: 1,
        ..Account::default()
    };
    let mut skipped = Vec::new();
    let mut buf = ReadBuffer::take();
    let scan_start = if job.resync { job.start - 1 } else { job.start };
    let mut skip_partial = job.resync;
    let res = scan_file(&job.path, scan_start, job.first_line, &mut buf, |line| {
        if skip_partial {
            skip_partial = false;
            return ControlFlow::Continue(Tail::Consumed);
        }
        if job.limit.is_some_and(|l| line.offset >= l) {
            return ControlFlow::Break(());
        }
        account.lines += 1;
        match parse_line(line.bytes, range, &finder) {
            Parsed::Entry(e) => {
                account.records += 1;
                let key = match (&e.message_id, &e.request_id) {
                    (Some(m), Some(r)) => DedupKey::claude(m, r),
                    _ => DedupKey::positional(&file_name, line.offset),
                };
                let session = match &e.session_id {
                    Some(s) => batch.strings.intern(s),
                    None => batch.strings.intern(&stem_session),
                };
                let model = batch.strings.intern(&e.model);
                batch.records.push(UsageRecord {
                    key,
                    ts_ms: e.ts_ms,
                    model,
                    session,
                    project,
                    flags: if e.sidechain { FLAG_SIDECHAIN } else { 0 },
                    tokens: e.tokens,
                });
                ControlFlow::Continue(Tail::Consumed)
            }
            Parsed::NoUsage => ControlFlow::Continue(Tail::Consumed),
            Parsed::OutOfRange => {
                account.out_of_range += 1;
                ControlFlow::Continue(Tail::Consumed)
            }
            Parsed::Skip(reason) => {
                if line.unterminated {
                    // A write in progress at the end of the file: leave it for the next run.
                    account.lines -= 1;
                    return ControlFlow::Continue(Tail::Pending);
                }
                account.lines_skipped += 1;
                skipped.push(SkippedLine {
                    path: path.clone(),
                    line: line.no,
                    offset: line.offset,
                    reason,
                });
                ControlFlow::Continue(Tail::Consumed)
            }
        }
    });
    let end = settle_scan(res, &path, &mut account, &mut skipped, progress);
    FileOutcome {
        batch,
        account,
        skipped,
        end,
    }
}

/// Reads all jobs with `threads` workers; outcomes come back in job order.
pub fn read_files(
    jobs: &[FileJob],
    threads: usize,
    range: &TimeRange,
    progress: Option<&Progress>,
) -> Vec<FileOutcome> {
    crate::parallel::map_ordered(
        jobs,
        threads,
        |j| j.size.saturating_sub(j.start),
        |j| read_file(j, range, progress),
    )
}
