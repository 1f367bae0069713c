//! Run drivers: incremental ingest into the store, or a direct one-shot scan of a source.

use std::path::{Path, PathBuf};

use crate::account::{Account, Progress, SkippedLine, append_skipped};
use crate::checkpoint::{Checkpoints, Plan, mtime_ns};
use crate::error::IngestError;
use crate::record::{FLAG_ERROR, FLAG_INCOMPLETE, LocalBatch, RecordSet, UsageRecord};
use crate::report::{Aggregator, Report, ReportOptions, build};
use crate::source::ccc::{self, Assembler, CccTurn, LogJob};
use crate::source::claude::{self, FileJob};
use crate::store::{SourceKind, Store, list_stores, store_dir};
use crate::time::TimeRange;

/// Knobs shared by every run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Only records inside this range (direct scans skip the work outside it).
    pub range: TimeRange,
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct IngestRun {
    /// The records (everything in the store for store runs; the scanned ones for direct scans).
    pub set: RecordSet,
    /// Counters of this run.
    pub account: Account,
    /// Lines skipped in this run.
    pub skipped: Vec<SkippedLine>,
    /// The store used, if any.
    pub store_dir: Option<PathBuf>,
    /// Set when nothing was new and the store is duplicate-free: `set` is then left empty and
    /// reports stream the records from the store instead of holding them (the warm path).
    pub deferred: Option<Store>,
}

impl IngestRun {
    /// Number of records the run stands for (in `set`, or in the deferred store).
    pub fn record_count(&self) -> u64 {
        match &self.deferred {
            Some(st) => st.record_count(),
            None => self.set.records.len() as u64,
        }
    }

    /// Builds a report over the run's records.
    pub fn report(&self, o: &ReportOptions) -> Result<Report, IngestError> {
        match &self.deferred {
            Some(st) => {
                let strings = st.strings()?;
                let mut agg = Aggregator::new(o, &strings);
                st.for_each_record(|r| agg.add(r))?;
                Ok(agg.finish(&strings))
            }
            None => Ok(build(&self.set, o)),
        }
    }
}

/// A CCC request is kept open across runs for at most this long after the newest line seen;
/// after that it is closed as incomplete (a shim restart loses its final line for good).
const PENDING_MAX_AGE_S: f64 = 3600.0;

fn claude_jobs(
    path: Option<&Path>,
    cps: Option<&mut Checkpoints>,
    range: &TimeRange,
    acc: &mut Account,
) -> Result<(Vec<FileJob>, String), IngestError> {
    let roots = claude::paths::roots(path)?;
    let root_key = crate::agent::key_of(&roots);
    let mut jobs = Vec::new();
    let mut cps = cps;
    for root in &roots {
        let mut files = claude::paths::transcript_files(std::slice::from_ref(root));
        files.sort();
        for f in files {
            let Ok(meta) = std::fs::metadata(&f) else {
                continue;
            };
            // A file last written before `since` cannot hold entries inside the range. An hour
            // of slack covers clocks that disagree a little.
            if let Some(since) = range.since
                && ((mtime_ns(&meta) / 1_000_000) as i64) < since - 3_600_000
            {
                acc.files_skipped += 1;
                acc.files_before_range += 1;
                continue;
            }
            let (start, first_line) = match cps.as_deref_mut().map(|c| (c.plan(&f, &meta), c)) {
                Some((Plan::Unchanged, c)) => {
                    c.touch(&f, &meta);
                    acc.files_skipped += 1;
                    continue;
                }
                Some((Plan::Resume { offset, first_line }, _)) => (offset, first_line),
                Some((Plan::Fresh, _)) | None => (0, 1),
            };
            jobs.push(FileJob {
                project: claude::paths::project_of(root, &f),
                path: f,
                start,
                first_line,
                size: meta.len(),
                limit: None,
                resync: false,
            });
        }
    }
    Ok((jobs, root_key))
}

/// The store key of the Claude roots `path` resolves to (no file is listed).
pub fn claude_root_key(path: Option<&Path>) -> Result<String, IngestError> {
    Ok(crate::agent::key_of(&claude::paths::roots(path)?))
}

/// Reads Claude transcripts straight from disk (no store), skipping work outside `opts.range`.
pub fn scan_claude(
    path: Option<&Path>,
    opts: &RunOptions,
    progress: Option<&Progress>,
) -> Result<IngestRun, IngestError> {
    let mut run = IngestRun::default();
    let (jobs, _) = claude_jobs(path, None, &opts.range, &mut run.account)?;
    set_total(progress, jobs.iter().map(|j| j.size).sum());
    let jobs = claude::split_jobs(jobs, crate::backfill::CHUNK_BYTES);
    let mut joiner = claude::ChunkJoiner::default();
    crate::parallel::for_each_ordered(
        &jobs,
        opts.threads,
        |j| claude::read_file(j, &opts.range, progress),
        |j, mut o| {
            joiner.fix(j, &mut o);
            run.account.add(&o.account);
            run.skipped.extend(o.skipped);
            run.set.merge_batch(o.batch);
        },
    );
    finish_counts(&mut run);
    Ok(run)
}

/// Ingests Claude transcripts into the store under `data_dir`, reading only new bytes, and
/// returns everything the store holds for these roots.
pub fn ingest_claude(
    data_dir: &Path,
    path: Option<&Path>,
    opts: &RunOptions,
    progress: Option<&Progress>,
) -> Result<IngestRun, IngestError> {
    let root_key = claude_root_key(path)?;
    let dir = store_dir(data_dir, SourceKind::Claude, &root_key);
    let mut store = Store::open(&dir, SourceKind::Claude, &root_key)?;
    let mut cps = store.checkpoints.clone();
    let mut run = IngestRun {
        store_dir: Some(dir.clone()),
        ..IngestRun::default()
    };
    let (jobs, _) = claude_jobs(
        path,
        Some(&mut cps),
        &TimeRange::default(),
        &mut run.account,
    )?;
    if jobs.is_empty() && cps == store.checkpoints && store.is_duplicate_free() {
        run.account.turns = store.record_count();
        recorded_skips(&mut run, &store);
        run.deferred = Some(store);
        return Ok(run);
    }
    run.set = store.load()?;
    let before = run.set.duplicates;
    let replaced_before = run.set.replacements;
    set_total(progress, jobs.iter().map(|j| j.size - j.start).sum());
    let jobs = claude::split_jobs(jobs, crate::backfill::CHUNK_BYTES);
    let mut joiner = claude::ChunkJoiner::default();
    let mut app = store.appender();
    let mut err = None;
    let none = TimeRange::default();
    crate::parallel::for_each_ordered(
        &jobs,
        opts.threads,
        |j| {
            let o = claude::read_file(j, &none, progress);
            let meta = std::fs::metadata(&j.path).ok();
            (meta, o)
        },
        |j, (meta, mut o)| {
            joiner.fix(j, &mut o);
            run.account.add(&o.account);
            run.skipped.extend(o.skipped);
            let fresh = run.set.merge_batch(o.batch);
            run.account.added += fresh.len() as u64;
            if err.is_none()
                && let Err(e) = app.write(&fresh)
            {
                err = Some(e);
            }
            // Only the file's last chunk knows where the file ends.
            if j.limit.is_none()
                && let (Some(end), Some(meta)) = (o.end, meta)
            {
                cps.record(&j.path, &meta, &end);
            }
        },
    );
    if let Some(e) = err {
        return Err(e);
    }
    run.account.duplicates = run.set.duplicates - before;
    if jobs.is_empty() && cps == store.checkpoints {
        // Nothing new and nothing moved: leave the store untouched (no fsync on a warm run).
        finish_counts_store(&mut run, &store)?;
        return Ok(run);
    }
    let replaced = run.set.replacements - replaced_before;
    record_skips(&run, &mut store)?;
    store.commit(app, replaced, &run.set.strings, None, cps)?;
    finish_counts_store(&mut run, &store)?;
    Ok(run)
}

fn ccc_jobs(
    root: &Path,
    cps: Option<&mut Checkpoints>,
    range: &TimeRange,
    acc: &mut Account,
) -> Result<Vec<LogJob>, IngestError> {
    let files = ccc::paths::usage_logs(root)?;
    let mut jobs = Vec::new();
    let mut cps = cps;
    for f in files {
        let Ok(meta) = std::fs::metadata(&f) else {
            continue;
        };
        if let Some(since) = range.since
            && ((mtime_ns(&meta) / 1_000_000) as i64) < since - 3_600_000
        {
            acc.files_skipped += 1;
            acc.files_before_range += 1;
            continue;
        }
        let (start, first_line) = match cps.as_deref_mut().map(|c| (c.plan(&f, &meta), c)) {
            Some((Plan::Unchanged, c)) => {
                c.touch(&f, &meta);
                acc.files_skipped += 1;
                continue;
            }
            Some((Plan::Resume { offset, first_line }, _)) => (offset, first_line),
            Some((Plan::Fresh, _)) | None => (0, 1),
        };
        jobs.push(LogJob::whole(f, start, first_line, meta.len()));
    }
    Ok(jobs)
}

/// Converts a CCC turn to a usage record (CCC has no sessions or projects: both stay empty).
pub fn ccc_record(t: &CccTurn, batch: &mut LocalBatch) -> UsageRecord {
    let mut flags = 0;
    if t.failed() {
        flags |= FLAG_ERROR;
    }
    if !t.complete {
        flags |= FLAG_INCOMPLETE;
    }
    UsageRecord {
        key: t.key(),
        ts_ms: (t.ts * 1000.0).round() as i64,
        model: batch.strings.intern(&t.model),
        session: 0,
        project: 0,
        flags,
        tokens: crate::pricing::Tokens {
            input: t.input_tokens,
            output: t.output_tokens,
            ..Default::default()
        },
    }
}

fn turns_batch(turns: &[CccTurn], range: &TimeRange) -> LocalBatch {
    let mut batch = LocalBatch::default();
    for t in turns {
        let r = ccc_record(t, &mut batch);
        if range.contains(r.ts_ms) {
            batch.records.push(r);
        }
    }
    batch
}

/// Reads a CCC root's usage logs straight from disk (no store).
pub fn scan_ccc(
    root: &Path,
    opts: &RunOptions,
    progress: Option<&Progress>,
) -> Result<IngestRun, IngestError> {
    let mut run = IngestRun::default();
    let jobs = ccc_jobs(root, None, &opts.range, &mut run.account)?;
    set_total(progress, jobs.iter().map(|j| j.size).sum());
    let jobs = ccc::split_jobs(jobs, crate::backfill::CHUNK_BYTES);
    let mut asm = Assembler::default();
    let mut joiner = ccc::ChunkJoiner::default();
    crate::parallel::for_each_ordered(
        &jobs,
        opts.threads,
        |j| ccc::read_log(j, &opts.range, progress),
        |j, mut o| {
            joiner.fix(j, &mut o);
            run.account.add(&o.account);
            run.skipped.extend(o.skipped);
            asm.push(o.closed, o.open);
            // Finished turns become compact records right away, so memory follows the
            // records (72 bytes each), not the full turns.
            let done = std::mem::take(&mut asm.turns);
            run.set.merge_batch(turns_batch(&done, &opts.range));
        },
    );
    let dups = asm.duplicates;
    let (turns, incomplete) = asm.finish();
    run.account.incomplete = incomplete;
    run.set.merge_batch(turns_batch(&turns, &opts.range));
    run.account.duplicates += dups;
    finish_counts(&mut run);
    Ok(run)
}

/// Ingests a CCC root's usage logs into the store, reading only new bytes; requests without a
/// final line yet are kept in `pending.json` for the next run.
pub fn ingest_ccc(
    data_dir: &Path,
    root: &Path,
    opts: &RunOptions,
    progress: Option<&Progress>,
) -> Result<IngestRun, IngestError> {
    if !root.is_dir() {
        return Err(IngestError::MissingRoot {
            path: root.to_path_buf(),
        });
    }
    let root_key = std::fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string();
    let dir = store_dir(data_dir, SourceKind::Ccc, &root_key);
    let mut store = Store::open(&dir, SourceKind::Ccc, &root_key)?;
    let mut cps = store.checkpoints.clone();
    let mut run = IngestRun {
        store_dir: Some(dir.clone()),
        ..IngestRun::default()
    };
    let jobs = ccc_jobs(
        root,
        Some(&mut cps),
        &TimeRange::default(),
        &mut run.account,
    )?;
    if jobs.is_empty() && cps == store.checkpoints && store.is_duplicate_free() {
        run.account.turns = store.record_count();
        recorded_skips(&mut run, &store);
        run.deferred = Some(store);
        return Ok(run);
    }
    run.set = store.load()?;
    if jobs.is_empty() {
        // Only paths or mtimes moved (e.g. a rotation without new lines): remember them.
        let app = store.appender();
        store.commit(app, 0, &run.set.strings, None, cps)?;
        finish_counts_store(&mut run, &store)?;
        return Ok(run);
    }
    set_total(progress, jobs.iter().map(|j| j.size - j.start).sum());
    let jobs = ccc::split_jobs(jobs, crate::backfill::CHUNK_BYTES);
    let mut joiner = ccc::ChunkJoiner::default();
    let mut asm = Assembler::with_open(store.pending()?);
    let none = TimeRange::default();
    let mut max_ts = f64::MIN;
    let mut app = store.appender();
    let mut err = None;
    let before = run.set.duplicates;
    let replaced_before = run.set.replacements;
    crate::parallel::for_each_ordered(
        &jobs,
        opts.threads,
        |j| {
            let o = ccc::read_log(j, &none, progress);
            let meta = std::fs::metadata(&j.path).ok();
            (meta, o)
        },
        |j, (meta, mut o)| {
            joiner.fix(j, &mut o);
            run.account.add(&o.account);
            run.skipped.extend(o.skipped);
            for t in o.closed.iter().chain(o.open.iter()) {
                max_ts = max_ts.max(t.ts);
            }
            asm.push(o.closed, o.open);
            let done = std::mem::take(&mut asm.turns);
            let fresh = run.set.merge_batch(turns_batch(&done, &none));
            run.account.added += fresh.len() as u64;
            if err.is_none()
                && let Err(e) = app.write(&fresh)
            {
                err = Some(e);
            }
            // Only the file's last chunk knows where the file ends.
            if j.limit.is_none()
                && let (Some(end), Some(meta)) = (o.end, meta)
            {
                cps.record(&j.path, &meta, &end);
            }
        },
    );
    if let Some(e) = err {
        return Err(e);
    }
    let mut still_open = Vec::new();
    let mut stale = Vec::new();
    for t in asm.take_open() {
        if t.complete || max_ts - t.ts > PENDING_MAX_AGE_S {
            stale.push(t);
        } else {
            still_open.push(t);
        }
    }
    let dups = asm.duplicates;
    let mut turns = std::mem::take(&mut asm.turns);
    run.account.incomplete = stale.iter().filter(|t| !t.complete).count() as u64;
    turns.extend(stale);
    let fresh = run.set.merge_batch(turns_batch(&turns, &none));
    app.write(&fresh)?;
    run.account.added += fresh.len() as u64;
    run.account.duplicates += dups + (run.set.duplicates - before);
    let replaced = run.set.replacements - replaced_before;
    record_skips(&run, &mut store)?;
    store.commit(app, replaced, &run.set.strings, Some(&still_open), cps)?;
    finish_counts_store(&mut run, &store)?;
    Ok(run)
}

/// Loads every store under `data_dir` (optionally only one kind) into one set; records present in
/// several stores count once.
pub fn load_all(data_dir: &Path, kind: Option<SourceKind>) -> Result<RecordSet, IngestError> {
    let mut set = RecordSet::default();
    for (k, dir) in list_stores(data_dir) {
        if kind.is_some_and(|want| want != k) {
            continue;
        }
        let store = Store::open(&dir, k, "")?;
        let before = set.records.len();
        store.load_into(&mut set)?;
        // Tag what this store added with its source, for `--by-source` (in memory only).
        for r in &mut set.records[before..] {
            r.flags |= k.flag();
        }
    }
    Ok(set)
}

pub(crate) fn set_total(progress: Option<&Progress>, n: u64) {
    if let Some(p) = progress {
        p.total_bytes.store(n, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(crate) fn finish_counts(run: &mut IngestRun) {
    run.account.turns = run.set.records.len() as u64;
    run.account.duplicates += run.set.duplicates;
}

pub(crate) fn finish_counts_store(run: &mut IngestRun, store: &Store) -> Result<(), IngestError> {
    run.account.turns = run.set.records.len() as u64;
    recorded_skips(run, store);
    Ok(())
}

/// The store's count of skipped lines (earlier runs included) and its list, so `--strict`
/// answers the same on a warm run that reads nothing as on the cold run that hit the lines.
pub(crate) fn recorded_skips(run: &mut IngestRun, store: &Store) {
    run.account.skipped_recorded = store.skipped_lines();
    if store.skipped_lines() > 0 {
        run.account.skipped_list = Some(store.skipped_path());
    }
}

/// Adds this run's skipped lines to the store's list and count (before its commit).
pub(crate) fn record_skips(run: &IngestRun, store: &mut Store) -> Result<(), IngestError> {
    append_skipped(&store.skipped_path(), &run.skipped)?;
    store.add_skipped(run.skipped.len() as u64);
    Ok(())
}
