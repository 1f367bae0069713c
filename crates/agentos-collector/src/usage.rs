//! `GET /v1/usage`: per-model quota snapshots in the real CCC's `ccp.usage.v1` shape, computed
//! from stored turns against budgets from a `ccp.quotas.v1` file.
//!
//! The rules follow the CCC handler (see `ccc-formats.md` §3.1), with three deliberate
//! differences that come from being a database-backed, multi-device server instead of an
//! in-process proxy:
//! - a *sample* is one stored `turn` event; its time is `recorded_at`, its dirty seconds are
//!   `latency_ms / 1000`. Turns carry no stream duration or time to first token, so the "ELR"
//!   rates fall back to dirty seconds (exactly what the CCC does per sample when stream time is 0)
//!   and `ttft_ms` quantiles are zero;
//! - `speeds.session` covers every retained sample (the weekly window), because the collector has
//!   no "since process start" that means anything across restarts and replicas;
//! - `speeds.hourly` bins by the UTC hour, not the server's local hour, so that two replicas in
//!   different time zones answer the same.
//!
//! Percentages are fractions in `0..1` as the CCC handler emits them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentos_ingest::pricing::{Price, PriceTable, Tokens};
use serde::{Deserialize, Serialize};

/// Default rolling window of the CCC (5 h).
pub const DEFAULT_ROLLING_SECONDS: u64 = 18_000;
/// Default weekly window of the CCC (7 d).
pub const DEFAULT_WEEKLY_SECONDS: u64 = 604_800;
/// Hourly rates are only reported for hours with at least this many samples (CCC rule).
const HOURLY_MIN_SAMPLES: u64 = 10;

/// A problem with a quotas file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuotasError {
    /// The file could not be read.
    #[error("cannot read quotas file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid `ccp.quotas.v1` JSON.
    #[error("quotas file {path} is not valid ccp.quotas.v1 JSON")]
    Parse {
        /// The file.
        path: PathBuf,
        /// serde_json's error (names line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A field has a value outside its domain.
    #[error("quotas file {path}: {field} = {value} is invalid ({expected})")]
    Field {
        /// The file.
        path: PathBuf,
        /// Dotted path of the field, e.g. `models.claude-haiku-4.5.weekly_limit_type`.
        field: String,
        /// The offending value as written.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

impl QuotasError {
    /// Stable snake_case code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            QuotasError::Read { .. } => "quotas_unreadable",
            QuotasError::Parse { .. } => "quotas_malformed",
            QuotasError::Field { .. } => "quotas_invalid_field",
        }
    }
}

#[derive(Deserialize)]
struct QuotasFile {
    #[serde(rename = "$schema", default)]
    _schema: Option<String>,
    #[serde(default)]
    windows: WindowsFile,
    #[serde(default)]
    models: BTreeMap<String, ModelFile>,
}

#[derive(Deserialize, Default)]
struct WindowsFile {
    rolling_seconds: Option<u64>,
    weekly_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct ModelFile {
    provider: Option<String>,
    rolling_tokens: Option<u64>,
    weekly_limit_type: Option<String>,
    weekly_limit_value: Option<f64>,
    warn_pct: Option<f64>,
}

/// Weekly budget of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeeklyLimit {
    /// Hours of wall time (dirty seconds) per weekly window; never blocks.
    Hours(f64),
    /// Tokens (in + out) per weekly window; blocks at 100 %.
    Tokens(f64),
}

/// Budgets of one model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelQuota {
    /// Display-only provider tag (`zai`, `anth`, …).
    pub provider: Option<String>,
    /// Token capacity of the rolling window (0 = not configured).
    pub rolling_tokens: u64,
    /// Weekly budget, if configured.
    pub weekly: Option<WeeklyLimit>,
    /// Warn threshold as a fraction (0 = never warn).
    pub warn_pct: f64,
}

/// A parsed `ccp.quotas.v1` file (or the CCC defaults when none was given).
#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    /// Where the budgets came from (reported as `path` in the snapshot).
    pub source: String,
    /// Rolling window length in seconds.
    pub rolling_seconds: u64,
    /// Weekly window length in seconds.
    pub weekly_seconds: u64,
    /// Budgets by exact model name (case-sensitive, as the CCC matches).
    pub models: BTreeMap<String, ModelQuota>,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            source: "<defaults>".into(),
            rolling_seconds: DEFAULT_ROLLING_SECONDS,
            weekly_seconds: DEFAULT_WEEKLY_SECONDS,
            models: BTreeMap::new(),
        }
    }
}

impl Quotas {
    /// Reads and validates a quotas file.
    ///
    /// # Errors
    /// [`QuotasError`] naming the file and, for bad values, the field.
    pub fn load(path: &Path) -> Result<Self, QuotasError> {
        let bytes = std::fs::read(path).map_err(|source| QuotasError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Parses quotas JSON; `source` names it in errors and in the snapshot's `path`.
    ///
    /// # Errors
    /// [`QuotasError::Parse`] or [`QuotasError::Field`].
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self, QuotasError> {
        let path = PathBuf::from(source);
        let file: QuotasFile =
            serde_json::from_slice(bytes).map_err(|source| QuotasError::Parse {
                path: path.clone(),
                source,
            })?;
        let field_err = |field: String, value: String, expected| QuotasError::Field {
            path: path.clone(),
            field,
            value,
            expected,
        };
        let rolling_seconds = file
            .windows
            .rolling_seconds
            .unwrap_or(DEFAULT_ROLLING_SECONDS);
        let weekly_seconds = file
            .windows
            .weekly_seconds
            .unwrap_or(DEFAULT_WEEKLY_SECONDS);
        if rolling_seconds == 0 {
            return Err(field_err(
                "windows.rolling_seconds".into(),
                "0".into(),
                "a positive number of seconds",
            ));
        }
        if weekly_seconds == 0 {
            return Err(field_err(
                "windows.weekly_seconds".into(),
                "0".into(),
                "a positive number of seconds",
            ));
        }
        let mut models = BTreeMap::new();
        for (name, m) in file.models {
            let weekly = match (m.weekly_limit_type.as_deref(), m.weekly_limit_value) {
                (None, _) => None,
                (Some(t), value) => {
                    let value = value.unwrap_or(0.0);
                    if !value.is_finite() || value < 0.0 {
                        return Err(field_err(
                            format!("models.{name}.weekly_limit_value"),
                            value.to_string(),
                            "a number >= 0",
                        ));
                    }
                    match t.to_ascii_lowercase().as_str() {
                        "hours" => Some(WeeklyLimit::Hours(value)),
                        "tokens" => Some(WeeklyLimit::Tokens(value)),
                        "" => None,
                        _ => {
                            return Err(field_err(
                                format!("models.{name}.weekly_limit_type"),
                                t.to_string(),
                                "\"hours\" or \"tokens\"",
                            ));
                        }
                    }
                }
            };
            let warn_pct = m.warn_pct.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&warn_pct) {
                return Err(field_err(
                    format!("models.{name}.warn_pct"),
                    warn_pct.to_string(),
                    "a fraction between 0 and 1",
                ));
            }
            models.insert(
                name,
                ModelQuota {
                    provider: m.provider.filter(|p| !p.is_empty()),
                    rolling_tokens: m.rolling_tokens.unwrap_or(0),
                    weekly,
                    warn_pct,
                },
            );
        }
        Ok(Quotas {
            source: source.to_string(),
            rolling_seconds,
            weekly_seconds,
            models,
        })
    }
}

/// Totals of one model's turns inside one window, as the store aggregates them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowTotals {
    /// Number of turns.
    pub samples: u64,
    /// Σ tokens_in.
    pub tokens_in: u64,
    /// Σ tokens_out.
    pub tokens_out: u64,
    /// Σ cache_creation_tokens (v1.1; 0 where turns do not say).
    pub cache_creation_tokens: u64,
    /// Σ cache_read_tokens (v1.1; 0 where turns do not say).
    pub cache_read_tokens: u64,
    /// Σ latency in seconds (the CCC's "dirty seconds").
    pub dirty_seconds: f64,
    /// `recorded_at` of the oldest turn, epoch microseconds.
    pub oldest_us: Option<i64>,
    /// Turns that carried their own cost.
    pub carried_samples: u64,
    /// Their tokens (in, out, cache creation, cache read).
    pub carried_tokens: [u64; 4],
    /// Σ the costs they carried (USD).
    pub carried_cost_usd: f64,
}

impl WindowTotals {
    /// Adds another set of totals (used to fold hourly bins into the weekly total).
    pub fn merge(&mut self, other: &WindowTotals) {
        // Saturating: token sums come from a float aggregate and may be huge (see
        // `Store::usage_inputs`); a sum must never panic or wrap.
        self.samples = self.samples.saturating_add(other.samples);
        self.tokens_in = self.tokens_in.saturating_add(other.tokens_in);
        self.tokens_out = self.tokens_out.saturating_add(other.tokens_out);
        self.cache_creation_tokens = self
            .cache_creation_tokens
            .saturating_add(other.cache_creation_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.dirty_seconds += other.dirty_seconds;
        self.carried_samples = self.carried_samples.saturating_add(other.carried_samples);
        for (a, b) in self.carried_tokens.iter_mut().zip(other.carried_tokens) {
            *a = a.saturating_add(b);
        }
        self.carried_cost_usd += other.carried_cost_usd;
        self.oldest_us = match (self.oldest_us, other.oldest_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The aggregates `/v1/usage` needs from the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageInputs {
    /// Per model, turns with `recorded_at` strictly after `now − rolling`.
    pub rolling: BTreeMap<String, WindowTotals>,
    /// Per model and UTC hour of day (0..24), turns strictly after `now − weekly`.
    pub weekly_by_hour: BTreeMap<String, BTreeMap<u8, WindowTotals>>,
}

/// The `license` block of `/v1/usage` (present only when the request carried a valid pack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseBlock {
    /// Always true when present.
    pub ok: bool,
    /// Plan name.
    pub plan: String,
    /// Entitlements.
    pub features: Vec<String>,
}

/// Six throughput rates in tokens per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Output tokens per stream second.
    pub out_elr_tps: f64,
    /// Output tokens per wall second.
    pub out_dirty_tps: f64,
    /// Input tokens per stream second.
    pub in_elr_tps: f64,
    /// Input tokens per wall second.
    pub in_dirty_tps: f64,
    /// All tokens per stream second.
    pub total_elr_tps: f64,
    /// All tokens per wall second.
    pub total_dirty_tps: f64,
}

/// Time-to-first-token quantiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TtftQuantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One hour-of-day bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HourBin {
    /// UTC hour, 0..=23.
    pub hour: u8,
    /// Samples in this hour over the weekly window.
    pub samples: u64,
    /// Output tokens per stream second (only with ≥ 10 samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_elr_tps: Option<f64>,
    /// Output tokens per wall second (only with ≥ 10 samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_dirty_tps: Option<f64>,
}

/// `speeds` of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speeds {
    /// Rates over the rolling window.
    pub rolling: Rates,
    /// Rates over every retained sample.
    pub session: Rates,
    /// TTFT quantiles over the rolling window.
    pub ttft_ms: TtftQuantiles,
    /// 24 hour-of-day bins.
    pub hourly: Vec<HourBin>,
    /// Samples in the rolling window.
    pub rolling_samples: u64,
    /// Samples in the weekly window.
    pub weekly_samples: u64,
}

/// One model of the snapshot (`ModelView` in the CCC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    /// Provider tag from the quotas file; absent for unconfigured models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Input tokens in the rolling window.
    pub rolling_in: u64,
    /// Output tokens in the rolling window.
    pub rolling_out: u64,
    /// (rolling_in + rolling_out) / rolling_tokens; 0 when unconfigured.
    pub rolling_pct: f64,
    /// Weekly budget used, as a fraction.
    pub weekly_pct: f64,
    /// Requests in the rolling window.
    pub reqs: u64,
    /// Seconds until the oldest rolling sample leaves the window.
    pub eta_rolling_sec: i64,
    /// At or above the configured warn fraction.
    pub warn: bool,
    /// Budget exhausted.
    pub block: bool,
    /// Throughput figures.
    pub speeds: Speeds,
    /// Cost of the rolling window's turns in USD: what they carried, the rest priced from the
    /// offline table. `null` when the table does not know the model (unknown, not zero).
    #[serde(default)]
    pub rolling_cost_usd: Option<f64>,
    /// Cost of the weekly window's turns in USD (`null` when unpriced, as above).
    #[serde(default)]
    pub weekly_cost_usd: Option<f64>,
}

/// The whole `/v1/usage` answer (`ccp.usage.v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    /// Per-model views, sorted by model name.
    pub models: BTreeMap<String, ModelView>,
    /// Snapshot time, epoch seconds.
    pub ts: f64,
    /// Where the budgets came from.
    pub path: String,
    /// License of the requester, when a valid pack was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseBlock>,
}

fn tps(tokens: u64, seconds: f64) -> f64 {
    // The CCC reports 0 rather than inf/NaN when either side is empty.
    if tokens == 0 || seconds <= 0.0 || !seconds.is_finite() {
        0.0
    } else {
        tokens as f64 / seconds
    }
}

fn rates(t: &WindowTotals) -> Rates {
    // Turns record no stream duration, so stream seconds fall back to dirty seconds (CCC rule
    // for samples whose stream time is 0): ELR and dirty rates coincide.
    let total = t.tokens_in.saturating_add(t.tokens_out);
    let out = tps(t.tokens_out, t.dirty_seconds);
    let inp = tps(t.tokens_in, t.dirty_seconds);
    let all = tps(total, t.dirty_seconds);
    Rates {
        out_elr_tps: out,
        out_dirty_tps: out,
        in_elr_tps: inp,
        in_dirty_tps: inp,
        total_elr_tps: all,
        total_dirty_tps: all,
    }
}

/// What a window's turns cost: their carried costs plus the rest priced at `price`; `None` when
/// some turns carried nothing and the model has no price.
fn window_cost(t: &WindowTotals, price: Option<Price>) -> Option<f64> {
    let c = t.carried_tokens;
    let rest = Tokens {
        input: t.tokens_in.saturating_sub(c[0]),
        output: t.tokens_out.saturating_sub(c[1]),
        cache_creation: t.cache_creation_tokens.saturating_sub(c[2]),
        cache_read: t.cache_read_tokens.saturating_sub(c[3]),
    };
    if t.carried_samples >= t.samples {
        return Some(t.carried_cost_usd + 0.0);
    }
    price.map(|p| t.carried_cost_usd + p.cost(&rest))
}

/// `inputs` with every spelling of a model merged under one name: the quotas file's name for
/// it when the file configures that model (so a CCC client finds the model under the name it
/// configured, as the CCC answers), else the canonical id (`agentos_core::model`).
pub fn merge_spellings(quotas: &Quotas, inputs: &UsageInputs) -> UsageInputs {
    use agentos_core::model::canonical_model;
    let configured: BTreeMap<String, &String> = quotas
        .models
        .keys()
        .map(|k| (canonical_model(k).into_owned(), k))
        .collect();
    let name_of = |raw: &str| -> String {
        if quotas.models.contains_key(raw) {
            return raw.to_string();
        }
        let canonical = canonical_model(raw);
        configured
            .get(canonical.as_ref())
            .map_or_else(|| canonical.into_owned(), |k| (*k).clone())
    };
    let mut out = UsageInputs::default();
    for (m, t) in &inputs.rolling {
        out.rolling.entry(name_of(m)).or_default().merge(t);
    }
    for (m, hours) in &inputs.weekly_by_hour {
        let merged = out.weekly_by_hour.entry(name_of(m)).or_default();
        for (h, t) in hours {
            merged.entry(*h).or_default().merge(t);
        }
    }
    out
}

/// Computes the snapshot at `now_us` (epoch microseconds). Spellings of one model are merged
/// first ([`merge_spellings`]).
pub fn compute(
    quotas: &Quotas,
    now_us: i64,
    inputs: &UsageInputs,
    license: Option<LicenseBlock>,
    prices: &PriceTable,
) -> UsageSnapshot {
    let merged = merge_spellings(quotas, inputs);
    let inputs = &merged;
    let mut names: Vec<&String> = inputs.weekly_by_hour.keys().collect();
    names.extend(inputs.rolling.keys());
    names.sort();
    names.dedup();
    let empty_hours = BTreeMap::new();
    let mut models = BTreeMap::new();
    for name in names {
        let quota = quotas.models.get(name).cloned().unwrap_or_default();
        let price = prices.lookup(name);
        let rolling = inputs.rolling.get(name).cloned().unwrap_or_default();
        let hours = inputs.weekly_by_hour.get(name).unwrap_or(&empty_hours);
        let mut weekly = WindowTotals::default();
        for t in hours.values() {
            weekly.merge(t);
        }
        let rolling_tokens = rolling.tokens_in.saturating_add(rolling.tokens_out);
        let rolling_pct = if quota.rolling_tokens > 0 {
            rolling_tokens as f64 / quota.rolling_tokens as f64
        } else {
            0.0
        };
        let (weekly_pct, weekly_blocks) = match quota.weekly {
            Some(WeeklyLimit::Hours(h)) if h > 0.0 => (weekly.dirty_seconds / (h * 3600.0), false),
            Some(WeeklyLimit::Tokens(t)) if t > 0.0 => {
                let pct = weekly.tokens_in.saturating_add(weekly.tokens_out) as f64 / t;
                (pct, pct >= 1.0)
            }
            _ => (0.0, false),
        };
        let eta_rolling_sec = match rolling.oldest_us {
            Some(oldest) if rolling.samples > 0 => {
                let leaves_us = oldest.saturating_add(quotas.rolling_seconds as i64 * 1_000_000);
                (leaves_us.saturating_sub(now_us) / 1_000_000).max(0)
            }
            _ => 0,
        };
        let warn = quota.warn_pct > 0.0 && rolling_pct >= quota.warn_pct;
        let block = (quota.rolling_tokens > 0 && rolling_pct >= 1.0) || weekly_blocks;
        let hourly = (0u8..24)
            .map(|hour| {
                let t = hours.get(&hour).cloned().unwrap_or_default();
                let enough = t.samples >= HOURLY_MIN_SAMPLES && t.dirty_seconds > 0.0;
                let out = enough.then(|| tps(t.tokens_out, t.dirty_seconds));
                HourBin {
                    hour,
                    samples: t.samples,
                    out_elr_tps: out,
                    out_dirty_tps: out,
                }
            })
            .collect();
        models.insert(
            name.clone(),
            ModelView {
                provider: quota.provider.clone(),
                rolling_in: rolling.tokens_in,
                rolling_out: rolling.tokens_out,
                rolling_pct,
                weekly_pct,
                reqs: rolling.samples,
                eta_rolling_sec,
                warn,
                block,
                rolling_cost_usd: window_cost(&rolling, price),
                weekly_cost_usd: window_cost(&weekly, price),
                speeds: Speeds {
                    rolling: rates(&rolling),
                    session: rates(&weekly),
                    ttft_ms: TtftQuantiles::default(),
                    hourly,
                    rolling_samples: rolling.samples,
                    weekly_samples: weekly.samples,
                },
            },
        );
    }
    UsageSnapshot {
        models,
        ts: now_us as f64 / 1e6,
        path: quotas.source.clone(),
        license,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_quotas_fixture_parses() {
        let q = Quotas::parse(
            br#"{"windows":{"rolling_seconds":18000,"weekly_seconds":604800},
                "models":{"claude-haiku-4.5":{"provider":"zai","rolling_tokens":300000,
                "weekly_limit_type":"HOURS","weekly_limit_value":40,"warn_pct":0.8}}}"#,
            "q.json",
        )
        .expect("valid quotas");
        let haiku = &q.models["claude-haiku-4.5"];
        assert_eq!(haiku.weekly, Some(WeeklyLimit::Hours(40.0)));
        assert_eq!(haiku.rolling_tokens, 300_000);
    }

    #[test]
    fn an_unknown_weekly_limit_type_is_named_in_the_error() {
        let err = Quotas::parse(
            br#"{"models":{"m":{"weekly_limit_type":"days","weekly_limit_value":1}}}"#,
            "q.json",
        )
        .expect_err("days is not a limit type");
        let msg = err.to_string();
        assert!(msg.contains("models.m.weekly_limit_type"), "{msg}");
        assert!(msg.contains("days"), "{msg}");
    }

    #[test]
    fn a_token_budget_blocks_at_one_hundred_percent() {
        let mut q = Quotas::default();
        q.models.insert(
            "m".into(),
            ModelQuota {
                weekly: Some(WeeklyLimit::Tokens(1000.0)),
                ..ModelQuota::default()
            },
        );
        let mut inputs = UsageInputs::default();
        inputs.weekly_by_hour.entry("m".into()).or_default().insert(
            3,
            WindowTotals {
                samples: 1,
                tokens_in: 600,
                tokens_out: 400,
                dirty_seconds: 1.0,
                oldest_us: Some(0),
                ..WindowTotals::default()
            },
        );
        let snap = compute(&q, 10_000_000, &inputs, None, &PriceTable::embedded());
        assert_eq!(snap.models["m"].weekly_pct, 1.0);
        assert!(snap.models["m"].block);
    }
}
