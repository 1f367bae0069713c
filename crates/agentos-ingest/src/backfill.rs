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
    /// The turns (one per request).
    pub turns: Vec<CccTurn>,
}

/// Sessions in CCC history: the shim writes no session identifier (`ccc-formats.md` §2.1), so
/// a session is an activity window — the 5-hour block AgentOS measures as a "window" and
/// `report blocks` shows: it starts at the first request after the previous window ended.
fn activity_windows(turns: &[CccTurn]) -> u64 {
    let mut ts: Vec<i64> = turns
        .iter()
        .map(|t| (t.ts * 1000.0).round() as i64)
        .collect();
    ts.sort_unstable();
    let mut starts = crate::blocks::block_starts(&ts);
    starts.dedup();
    starts.len() as u64
}

/// Runs a backfill.
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
    let jobs = ccc::split_jobs(jobs, CHUNK_BYTES);
    let mut account = Account::default();
    let mut skipped = Vec::new();
    let mut asm = Assembler::default();
    let mut joiner = ccc::ChunkJoiner::default();
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
        },
    );
    let duplicates = asm.duplicates;
    let (turns, incomplete) = asm.finish();
    account.duplicates += duplicates;
    account.incomplete = incomplete;
    account.turns = turns.len() as u64;

    let summary = summarize(opts, &turns, &logs, results, snapshot, account, incomplete);
    Ok(Backfill {
        summary,
        skipped,
        turns,
    })
}

fn summarize(
    opts: &BackfillOptions,
    turns: &[CccTurn],
    logs: &[PathBuf],
    results: crate::source::results::ResultsTotals,
    snapshot: Option<crate::source::usage_snapshot::Snapshot>,
    account: Account,
    incomplete: u64,
) -> BackfillSummary {
    // Count into maps keyed by borrowed strings (no allocation per turn), then sort once.
    let mut models_h: FxHashMap<&str, ModelUsage> = FxHashMap::default();
    let mut errors_h: FxHashMap<&str, u64> = FxHashMap::default();
    let mut decisions_h: FxHashMap<&str, u64> = FxHashMap::default();
    let mut modes_h: FxHashMap<RerouteMode, u64> = FxHashMap::default();
    let mut lanes_h: FxHashMap<&str, u64> = FxHashMap::default();
    let mut req = RequestStats {
        incomplete,
        ..RequestStats::default()
    };
    let mut rids: FxHashSet<&str> = FxHashSet::default();
    let mut warn_cfg: FxHashMap<&str, f64> = FxHashMap::default();
    for t in turns {
        let m = models_h.entry(&t.model).or_default();
        m.turns += 1;
        m.tokens_in += t.input_tokens;
        m.tokens_out += t.output_tokens;
        if t.failed() {
            *errors_h.entry(&t.model).or_default() += 1;
            req.errors += 1;
        }
        req.streams += u64::from(t.stream);
        req.fallbacks += u64::from(t.decision.fallback.is_some());
        req.legacy += u64::from(t.legacy);
        rids.insert(&t.rid);
        if let Some(d) = &t.decision.reroute_decision {
            *decisions_h.entry(d).or_default() += 1;
        }
        if let Some(mode) = t.decision.reroute_mode {
            *modes_h.entry(mode).or_default() += 1;
        }
        *lanes_h.entry(t.lane.as_str()).or_default() += 1;
        if let Some(w) = t.decision.warn_pct_cfg {
            warn_cfg.insert(&t.model, w);
        }
    }
    let owned = |h: FxHashMap<&str, u64>| -> BTreeMap<String, u64> {
        h.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    };
    let mut models: BTreeMap<String, ModelUsage> = models_h
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    req.errors_by_model = owned(errors_h);
    req.reroute_decisions = owned(decisions_h);
    req.lanes = owned(lanes_h);
    req.reroute_modes = modes_h
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect();
    req.distinct_rids = rids.len() as u64;
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
    let sessions = activity_windows(turns);
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
            turns: turns.len() as u64,
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
