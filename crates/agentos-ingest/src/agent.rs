//! The run drivers every [`AgentSource`] gets for free: a direct scan, and an incremental ingest
//! into the store that resumes each file at its checkpoint with the reader state saved there.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::account::{Account, Progress, SkippedLine};
use crate::checkpoint::{Checkpoints, Plan, mtime_ns};
use crate::error::IngestError;
use crate::ingest::{
    IngestRun, RunOptions, finish_counts, finish_counts_store, record_skips, recorded_skips,
    set_total,
};
use crate::record::LocalBatch;
use crate::scan::{FileId, ScanEnd};
use crate::source::AgentSource;
use crate::store::{Store, read_json, store_dir, write_json_atomic};
use crate::time::TimeRange;

/// One file to read.
#[derive(Debug, Clone)]
pub struct AgentJob<S> {
    /// The log file.
    pub path: PathBuf,
    /// The root it was found under.
    pub root: PathBuf,
    /// Byte offset to start at (a line boundary).
    pub start: u64,
    /// Number of the line at `start`.
    pub first_line: u64,
    /// Current size (for balancing and progress).
    pub size: u64,
    /// Reader state at `start` (the default when reading from the start).
    pub state: S,
}

/// What reading one file produced.
#[derive(Debug)]
pub struct AgentOutcome<S> {
    /// Records with file-local strings.
    pub batch: LocalBatch,
    /// Counters.
    pub account: Account,
    /// Skipped lines.
    pub skipped: Vec<SkippedLine>,
    /// Where the scan ended; `None` when the file could not be read.
    pub end: Option<ScanEnd>,
    /// Reader state after the last consumed line.
    pub state: S,
}

/// Reader state saved at one file's checkpoint: only used when the checkpoint still ends at
/// `offset` (a crash between writing this and the checkpoints must not pair a newer state with
/// an older offset).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedState<S> {
    id: FileId,
    offset: u64,
    state: S,
}

const STATE_FILE: &str = "state.json";

/// Saved states by file: (checkpoint offset, state).
type States<S> = FxHashMap<FileId, (u64, S)>;

/// The store key of `roots`: their canonical paths.
pub(crate) fn key_of(roots: &[PathBuf]) -> String {
    roots
        .iter()
        .map(|r| {
            std::fs::canonicalize(r)
                .unwrap_or_else(|_| r.clone())
                .display()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn jobs<S: AgentSource>(
    roots: &[PathBuf],
    mut cps: Option<&mut Checkpoints>,
    states: &States<S::State>,
    range: &TimeRange,
    acc: &mut Account,
) -> Vec<AgentJob<S::State>> {
    let mut out = Vec::new();
    for root in roots {
        for f in S::files(root) {
            let Ok(meta) = std::fs::metadata(&f) else {
                continue;
            };
            // A file last written before `since` cannot hold usage inside the range; an hour of
            // slack covers clocks that disagree a little.
            if let Some(since) = range.since
                && ((mtime_ns(&meta) / 1_000_000) as i64) < since - 3_600_000
            {
                acc.files_skipped += 1;
                acc.files_before_range += 1;
                continue;
            }
            let fresh = (0, 1, S::State::default());
            let (start, first_line, state) =
                match cps.as_deref_mut().map(|c| (c.plan(&f, &meta), c)) {
                    Some((Plan::Unchanged, c)) => {
                        c.touch(&f, &meta);
                        acc.files_skipped += 1;
                        continue;
                    }
                    Some((Plan::Resume { offset, first_line }, _)) => {
                        let id = FileId::of(&meta);
                        match states.get(&id).filter(|(at, _)| *at == offset) {
                            Some((_, s)) => (offset, first_line, s.clone()),
                            // No state for this offset: read it all again; the keys of what
                            // was read before are the same, so nothing counts twice.
                            None => fresh,
                        }
                    }
                    Some((Plan::Fresh, _)) | None => fresh,
                };
            out.push(AgentJob {
                path: f,
                root: root.clone(),
                start,
                first_line,
                size: meta.len(),
                state,
            });
        }
    }
    out
}

/// The store key of the roots `path` resolves to for source `S` (no file is listed).
pub fn root_key<S: AgentSource>(path: Option<&Path>) -> Result<String, IngestError> {
    Ok(key_of(&S::roots(path)?))
}

/// Reads source `S` straight from disk (no store), skipping work outside `opts.range`.
pub fn scan<S: AgentSource>(
    path: Option<&Path>,
    opts: &RunOptions,
    progress: Option<&Progress>,
) -> Result<IngestRun, IngestError> {
    let mut run = IngestRun::default();
    let jobs = jobs::<S>(
        &S::roots(path)?,
        None,
        &States::default(),
        &opts.range,
        &mut run.account,
    );
    set_total(progress, jobs.iter().map(|j| j.size).sum());
    crate::parallel::for_each_ordered(
        &jobs,
        opts.threads,
        |j| S::read(j, &opts.range, progress),
        |_, o| {
            run.account.add(&o.account);
            run.skipped.extend(o.skipped);
            run.set.merge_batch(o.batch);
        },
    );
    finish_counts(&mut run);
    Ok(run)
}

/// Ingests source `S` into the store under `data_dir`, reading only bytes that are new since
/// the last run, and returns everything the store holds for these roots.
pub fn ingest<S: AgentSource>(
    data_dir: &Path,
    path: Option<&Path>,
    opts: &RunOptions,
    progress: Option<&Progress>,
) -> Result<IngestRun, IngestError> {
    let roots = S::roots(path)?;
    let key = key_of(&roots);
    let dir = store_dir(data_dir, S::KIND, &key);
    let mut store = Store::open(&dir, S::KIND, &key)?;
    let state_path = dir.join(STATE_FILE);
    let saved: Vec<SavedState<S::State>> = read_json(&state_path)?.unwrap_or_default();
    let mut states: States<S::State> = saved
        .into_iter()
        .map(|s| (s.id, (s.offset, s.state)))
        .collect();
    let mut cps = store.checkpoints.clone();
    let mut run = IngestRun {
        store_dir: Some(dir.clone()),
        ..IngestRun::default()
    };
    let jobs = jobs::<S>(
        &roots,
        Some(&mut cps),
        &states,
        &TimeRange::default(),
        &mut run.account,
    );
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
    let mut app = store.appender();
    let mut err = None;
    let none = TimeRange::default();
    crate::parallel::for_each_ordered(
        &jobs,
        opts.threads,
        |j| {
            let o = S::read(j, &none, progress);
            let meta = std::fs::metadata(&j.path).ok();
            (meta, o)
        },
        |j, (meta, o)| {
            run.account.add(&o.account);
            run.skipped.extend(o.skipped);
            let fresh = run.set.merge_batch(o.batch);
            run.account.added += fresh.len() as u64;
            if err.is_none()
                && let Err(e) = app.write(&fresh)
            {
                err = Some(e);
            }
            if let (Some(end), Some(meta)) = (o.end, meta) {
                cps.record(&j.path, &meta, &end);
                states.insert(FileId::of(&meta), (end.offset, o.state));
            }
        },
    );
    if let Some(e) = err {
        return Err(e);
    }
    run.account.duplicates += run.set.duplicates - before;
    if jobs.is_empty() && cps == store.checkpoints {
        finish_counts_store(&mut run, &store)?;
        return Ok(run);
    }
    let replaced = run.set.replacements - replaced_before;
    record_skips(&run, &mut store)?;
    // Durable before the checkpoints (a state whose offset no checkpoint has yet is never used),
    // written while the store syncs its records.
    let mut saved: Vec<SavedState<S::State>> = states
        .into_iter()
        .map(|(id, (offset, state))| SavedState { id, offset, state })
        .collect();
    saved.sort_by_key(|s| s.id);
    store.commit_with(app, replaced, &run.set.strings, None, cps, || {
        write_json_atomic(&state_path, &saved)
    })?;
    finish_counts_store(&mut run, &store)?;
    Ok(run)
}
