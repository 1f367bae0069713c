//! `ccc backfill`: a CCC root (usage logs, results, optional `/v1/usage` snapshot) → the
//! `ccp_metrics_summary.json` document.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agentos_core::rollup::{ModelUsage, Summary};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::account::{Account, Progress, SkippedLine};
use crate::error::IngestError;
use crate::pricing::{PriceTable, Tokens};
use crate::source::ccc::{self, Assembler, CccTurn, LogJob, RerouteMode};
use crate::source::results::read_results;
use crate::source::usage_snapshot::{ModelHealth, load_snapshot};
use crate::time::TimeRange;

/// Large logs are read in chunks of this size so every worker stays busy.
pub const CHUNK_BYTES: u64 = 16 << 20;

/// Chunk size of a backfill: smaller, because a chunk's finished requests wait in memory until
/// every earlier chunk is folded, and more, finer horizons let duplicate keys go sooner.
pub const BACKFILL_CHUNK_BYTES: u64 = 4 << 20;

/// Inputs of a backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The CCC root (holding `logs/` and `results/`).
    pub ccp_root: PathBuf,
    /// Snapshot file or URL.
    pub usage_json: Option<String>,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Prices for `estimated_usd`.
    pub prices: PriceTable,
    /// Value of `generated_at`; `None` = now.
    pub generated_at: Option<jiff::Timestamp>,
}

/// Request-level routing counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestStats {
    /// Requests that did not end with a 2xx.
    pub errors: u64,
    /// Model → requests that did not end with a 2xx.
    pub errors_by_model: BTreeMap<String, u64>,
    /// Streamed requests.
    pub streams: u64,
    /// Requests rerouted by a fallback decision line.
    pub fallbacks: u64,
    /// Requests without a final line.
    pub incomplete: u64,
    /// Requests in the old telemetry shape.
    pub legacy: u64,
    /// Distinct request ids.
    pub distinct_rids: u64,
    /// Final `reroute_decision` → requests.
    pub reroute_decisions: BTreeMap<String, u64>,
    /// Reroute mode → requests.
    pub reroute_modes: BTreeMap<String, u64>,
    /// Lane → requests.
    pub lanes: BTreeMap<String, u64>,
}

/// The summary document: the rollup fields of [`Summary`] (flattened, as in the seed's
/// `metrics_summary.json`) plus sources, model health, routing counts and the run's account.
///
/// From CCC logs: `sessions` counts activity windows (the shim has no session identifier; see
/// `activity_windows`), `capacity_used` is 0 (so `features_per_capacity` is null); the `avg_*`
/// means and `model_value` come from results files that carry them (null / empty otherwise);
/// `models` carries turns, tokens and the list-price estimate per model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillSummary {
    /// The rollup fields.
    #[serde(flatten)]
    pub summary: Summary,
    /// Every file used: usage logs, results files, the snapshot.
    pub sources: Vec<String>,
    /// Routing counts.
    pub requests: RequestStats,
    /// The run's account.
    pub ingest: Account,
}

/// Result of a backfill run.
#[derive(Debug)]
pub struct Backfill {
    /// The document.
    pub summary: BackfillSummary,
    /// Skipped lines (for the list file).
    pub skipped: Vec<SkippedLine>,
}

/// How far before a file's first timestamp one of its requests may end and still be written
/// into it: appends are in time order up to the jitter of concurrent writers, far below this.
const ORDER_SLACK_MS: i64 = 3_600_000;

/// Runs a backfill.
///
/// Streams: each chunk's finished requests are folded into the counts as soon as every earlier
/// chunk is done, so no turn is kept. Duplicates (same rid and final timestamp, e.g. an archived
/// copy of a rotated file) are still dropped across files; their keys are forgotten once no
/// chunk still to be read starts early enough to repeat them (its first timestamp minus an hour
/// of slack for concurrent writers). Memory therefore depends on the threads, on requests left
/// open and on how far files overlap in time, not on the input's size, except for the exact
/// distinct-rid count at about 2 bytes per distinct id (`docs/perf/ingest.md`).
pub fn backfill(
    opts: &BackfillOptions,
    progress: Option<&Progress>,
) -> Result<Backfill, IngestError> {
    let logs = ccc::paths::usage_logs(&opts.ccp_root)?;
    let results_files = ccc::paths::results_files(&opts.ccp_root);
    let snapshot = opts.usage_json.as_deref().map(load_snapshot).transpose()?;
    let results = read_results(&results_files)?;
    let mut jobs = Vec::new();
    for p in &logs {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        jobs.push(LogJob::whole(p.clone(), 0, 1, size));
    }
    if let Some(pr) = progress {
        pr.total_bytes.store(
            jobs.iter().map(|j| j.size).sum(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    let jobs = ccc::split_jobs(jobs, BACKFILL_CHUNK_BYTES);
    // horizon[j]: no request finished in chunk j or later ends before this (ms), so keys older
    // than it can no longer meet a duplicate. A chunk whose start shows no timestamp holds
    // every key back.
    let mut horizon: Vec<i64> = jobs
        .iter()
        .map(|j| {
            first_ts_ms(&j.path, j.start).map_or(i64::MIN, |t| t.saturating_sub(ORDER_SLACK_MS))
        })
        .collect();
    for i in (0..horizon.len().saturating_sub(1)).rev() {
        horizon[i] = horizon[i].min(horizon[i + 1]);
    }
    let mut next_job = 0usize;
    let mut account = Account::default();
    let mut skipped = Vec::new();
    let mut asm = Assembler::default();
    let mut joiner = ccc::ChunkJoiner::default();
    let mut counts = Counts::default();
    let none = TimeRange::default();
    crate::parallel::for_each_ordered(
        &jobs,
        opts.threads,
        |j| ccc::read_log(j, &none, progress),
        |j, mut o| {
            joiner.fix(j, &mut o);
            account.add(&o.account);
            skipped.extend(o.skipped);
            asm.push(o.closed, o.open);
            for t in asm.turns.drain(..) {
                counts.add(&t);
            }
            // Jobs arrive in order: the one after this is the earliest still to come. After the
            // last, keys stay: requests left open are checked against them at the end.
            next_job += 1;
            if let Some(h) = horizon.get(next_job) {
                asm.forget_before(*h);
            }
        },
    );
    let duplicates = asm.duplicates;
    let (turns, incomplete) = asm.finish();
    for t in &turns {
        counts.add(t);
    }
    account.duplicates += duplicates;
    account.incomplete = incomplete;
    account.turns = counts.turns;

    let summary = summarize(opts, counts, &logs, results, snapshot, account, incomplete);
    Ok(Backfill { summary, skipped })
}

/// The smallest timestamp (epoch ms) among the first lines of a usage log from byte `start` on
/// (a chunk's first, partial line skipped), or `None` when they hold none (unreadable, empty,
/// torn).
fn first_ts_ms(path: &std::path::Path, start: u64) -> Option<i64> {
    use std::io::{Read as _, Seek as _};
    let mut head = Vec::with_capacity(64 << 10);
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(std::io::SeekFrom::Start(start)).ok()?;
    f.take(64 << 10).read_to_end(&mut head).ok()?;
    let mut records = Vec::new();
    let mut min: Option<f64> = None;
    // Only whole lines: the last one may be cut by the 64 KiB window, the first by the chunk.
    let from = if start == 0 {
        0
    } else {
        memchr::memchr(b'\n', &head).map_or(head.len(), |i| i + 1)
    };
    let head = &head[from..];
    let whole = memchr::memrchr(b'\n', head).map_or(&[][..], |i| &head[..i]);
    for line in whole.split(|b| *b == b'\n').take(16) {
        records.clear();
        // A broken object ends the line; what parsed before it still counts.
        let _ = ccc::parser::parse_objects(line, &mut records);
        for r in &records {
            if let Some(ts) = r.ts {
                min = Some(min.map_or(ts.0, |m| m.min(ts.0)));
            }
        }
    }
    min.filter(|m| m.is_finite())
        .map(|m| (m * 1000.0).floor() as i64)
}

/// Running counts over finished requests (owned keys: the parser's strings are per chunk).
#[derive(Default)]
struct Counts {
    turns: u64,
    models: FxHashMap<Box<str>, ModelUsage>,
    errors: FxHashMap<Box<str>, u64>,
    decisions: FxHashMap<Box<str>, u64>,
    modes: FxHashMap<RerouteMode, u64>,
    lanes: FxHashMap<Box<str>, u64>,
    warn_cfg: FxHashMap<Box<str>, f64>,
    rids: RidSet,
    req: RequestStats,
    // Hour → (first, last) request time (ms): all the block rule needs to count activity windows
    // (see `activity_windows`), in memory bounded by the hours of history, not the requests.
    hours: FxHashMap<i64, (i64, i64)>,
}

/// `map[key] += 1`, allocating the key only the first time it is seen.
fn bump(map: &mut FxHashMap<Box<str>, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.into(), 1);
        }
    }
}

impl Counts {
    fn add(&mut self, t: &CccTurn) {
        self.turns += 1;
        let m = match self.models.get_mut(&*t.model) {
            Some(m) => m,
            None => self.models.entry(t.model.as_ref().into()).or_default(),
        };
        m.turns += 1;
        m.tokens_in += t.input_tokens;
        m.tokens_out += t.output_tokens;
        let req = &mut self.req;
        if t.failed() {
            bump(&mut self.errors, &t.model);
            req.errors += 1;
        }
        req.streams += u64::from(t.stream);
        req.fallbacks += u64::from(t.decision.fallback.is_some());
        req.legacy += u64::from(t.legacy);
        self.rids.insert(&t.rid);
        if let Some(d) = &t.decision.reroute_decision {
            bump(&mut self.decisions, d);
        }
        if let Some(mode) = t.decision.reroute_mode {
            *self.modes.entry(mode).or_default() += 1;
        }
        bump(&mut self.lanes, t.lane.as_str());
        let ms = (t.ts * 1000.0).round() as i64;
        let span = self
            .hours
            .entry(ms.div_euclid(3_600_000))
            .or_insert((ms, ms));
        span.0 = span.0.min(ms);
        span.1 = span.1.max(ms);
        if let Some(w) = t.decision.warn_pct_cfg {
            match self.warn_cfg.get_mut(&*t.model) {
                Some(v) => *v = w,
                None => {
                    self.warn_cfg.insert(t.model.as_ref().into(), w);
                }
            }
        }
    }
}

/// Distinct request ids, exactly, in about 2 bytes per id: a CCC rid is 8 hex digits (32 bits),
/// kept as sorted 16-bit halves under their high half. Other ids (old shapes) go to a plain set.
#[derive(Default)]
struct RidSet {
    hex: FxHashMap<u16, Vec<u16>>,
    other: FxHashSet<Box<str>>,
    len: u64,
}

impl RidSet {
    fn insert(&mut self, rid: &str) {
        let parsed = (rid.len() == 8)
            .then(|| u32::from_str_radix(rid, 16).ok())
            .flatten()
            // Upper-case hex would alias its lower-case twin: keep those apart.
            .filter(|_| !rid.bytes().any(|b| b.is_ascii_uppercase()));
        let fresh = match parsed {
            Some(v) => {
                let low = self.hex.entry((v >> 16) as u16).or_default();
                match low.binary_search(&(v as u16)) {
                    Ok(_) => false,
                    Err(at) => {
                        low.insert(at, v as u16);
                        true
                    }
                }
            }
            None => !self.other.contains(rid) && self.other.insert(rid.into()),
        };
        self.len += u64::from(fresh);
    }
}

/// Sessions in CCC history: the shim writes no session identifier (`ccc-formats.md` §2.1), so
/// a session is an activity window — the 5-hour block AgentOS measures as a "window" and
/// `report blocks` shows, starting at the first request after the previous window ended. The
/// first and last request of each hour decide every block start, so those are all that is kept.
fn activity_windows(hours: &FxHashMap<i64, (i64, i64)>) -> u64 {
    let mut spans: Vec<(i64, i64)> = hours.values().copied().collect();
    spans.sort_unstable();
    let ts: Vec<i64> = spans.iter().flat_map(|&(a, b)| [a, b]).collect();
    let mut starts = crate::blocks::block_starts(&ts);
    starts.dedup();
    starts.len() as u64
}

fn summarize(
    opts: &BackfillOptions,
    counts: Counts,
    logs: &[PathBuf],
    results: crate::source::results::ResultsTotals,
    snapshot: Option<crate::source::usage_snapshot::Snapshot>,
    account: Account,
    incomplete: u64,
) -> BackfillSummary {
    let owned = |h: FxHashMap<Box<str>, u64>| -> BTreeMap<String, u64> {
        h.into_iter().map(|(k, v)| (k.into_string(), v)).collect()
    };
    let Counts {
        turns,
        models,
        errors,
        decisions,
        modes,
        lanes,
        warn_cfg,
        rids,
        mut req,
        hours,
    } = counts;
    let sessions = activity_windows(&hours);
    req.incomplete = incomplete;
    let mut models: BTreeMap<String, ModelUsage> = models
        .into_iter()
        .map(|(k, v)| (k.into_string(), v))
        .collect();
    req.errors_by_model = owned(errors);
    req.reroute_decisions = owned(decisions);
    req.lanes = owned(lanes);
    req.reroute_modes = modes
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect();
    req.distinct_rids = rids.len;
    // Cost is linear in tokens: pricing the per-model sums keeps the figure independent of the
    // order turns were added in (float sums are not associative).
    for (name, m) in models.iter_mut() {
        if let Some(p) = opts.prices.lookup(name) {
            m.estimated_usd = p.cost(&Tokens {
                input: m.tokens_in,
                output: m.tokens_out,
                ..Tokens::default()
            });
        }
    }
    let mut sources: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
    sources.extend(results.files.iter().map(|p| p.display().to_string()));
    // From the snapshot, when given: keys are exactly the snapshot's models.
    let model_health_source = snapshot.as_ref().map(|s| s.origin.clone());
    let model_health: Option<BTreeMap<String, ModelHealth>> = snapshot.map(|s| {
        sources.push(s.origin.clone());
        s.models
            .into_iter()
            .map(|(k, mut h)| {
                if h.warn_pct_cfg.is_none() {
                    h.warn_pct_cfg = warn_cfg.get(k.as_str()).copied();
                }
                (k, h)
            })
            .collect()
    });
    BackfillSummary {
        summary: Summary {
            avg_churn_score: results.avg_churn_score,
            avg_cls: results.avg_cls,
            avg_impf: results.avg_impf,
            capacity_used: 0.0,
            features_per_capacity: None,
            features_shipped: results.features_shipped,
            generated_at: opts.generated_at.unwrap_or_else(jiff::Timestamp::now),
            license: None,
            model_health,
            model_health_source,
            model_value: results.model_value,
            models,
            sessions,
            // Backfilled history never leaves the machine through /v1/metrics.
            shareable: Default::default(),
            turns,
            value: Default::default(),
            reroute: agentos_core::attribution::RerouteCounts {
                by_mode: req.reroute_modes.clone(),
                by_decision: req.reroute_decisions.clone(),
                by_mode_and_decision: Default::default(),
            },
            churn_trend: Default::default(),
        },
        sources,
        requests: req,
        ingest: account,
    }
}
