//! Rollups: the running totals behind `metrics_summary.json`.
//!
//! [`Rollup`] is incremental: [`Rollup::apply`] costs O(1) per event (plus O(models) in the
//! turn's attribution), so the recorder never re-reads its log. Recomputing from scratch is the
//! same fold over the whole log, which is how `agentos ccc rollup` checks it.
//!
//! Besides the totals over everything, the rollup keeps a second set of [`Aggregates`] over only the events recorded under a tier that allows `/v1/metrics`. The summary that
//! leaves the machine is built from those, so raising the tier never leaks aggregates of work
//! recorded as `local` (for example during a license downgrade).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attribution::{Attribution, ChurnTrend, DayChurn, RerouteCounts, churn_trend};
use crate::event::{Envelope, EventBody, TurnEvent};
use crate::tier::Egress;

/// The sums behind the aggregate summary fields. A [`Rollup`] keeps one set over every turn and
/// one over the turns whose recorded tier allows `/v1/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregates {
    /// Σ `turn.capacity_used`.
    pub capacity_used: f64,
    /// Σ `measurement.feature_delta`.
    pub features_shipped: f64,
    /// Turns that carried a measurement.
    pub measurements: u64,
    /// Σ `measurement.churn_score`.
    pub sum_churn_score: f64,
    /// Σ `measurement.cls`.
    pub sum_cls: f64,
    /// Σ `measurement.impf`.
    pub sum_impf: f64,
}

impl Aggregates {
    fn apply_turn(&mut self, t: &TurnEvent) {
        if let Some(c) = t.turn.capacity_used {
            self.capacity_used += c;
        }
        if let Some(m) = &t.measurement {
            self.measurements += 1;
            self.features_shipped += m.feature_delta;
            self.sum_cls += m.cls;
            self.sum_impf += m.impf;
            self.sum_churn_score += m.churn_score;
        }
    }

    fn summary(&self) -> SharedSummary {
        let avg = |sum: f64| (self.measurements > 0).then(|| sum / self.measurements as f64);
        SharedSummary {
            avg_churn_score: avg(self.sum_churn_score),
            avg_cls: avg(self.sum_cls),
            avg_impf: avg(self.sum_impf),
            capacity_used: self.capacity_used,
            features_per_capacity: (self.capacity_used != 0.0)
                .then(|| self.features_shipped / self.capacity_used),
            features_shipped: self.features_shipped,
        }
    }
}

/// The aggregate summary fields computed from one set of [`Aggregates`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedSummary {
    /// Mean churn score (null when none).
    pub avg_churn_score: Option<f64>,
    /// Mean CLS (null when none).
    pub avg_cls: Option<f64>,
    /// Mean interaction minutes per feature (null when none).
    pub avg_impf: Option<f64>,
    /// Σ capacity used.
    pub capacity_used: f64,
    /// features_shipped / capacity_used; null when capacity is 0.
    pub features_per_capacity: Option<f64>,
    /// Σ feature_delta.
    pub features_shipped: f64,
}

/// Per-model usage totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// Estimated cost in USD (Σ `cost.estimated_usd`).
    pub estimated_usd: f64,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// Turns served.
    pub turns: u64,
}

/// Running totals; serializable so a recorder can persist and resume it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// `session` events seen.
    pub sessions: u64,
    /// `turn` events seen.
    pub turns: u64,
    /// Aggregates over every turn (flattened: the persisted layout is unchanged).
    #[serde(flatten)]
    pub totals: Aggregates,
    /// Σ attribution per model.
    pub model_value: BTreeMap<String, f64>,
    /// Usage per model.
    pub models: BTreeMap<String, ModelUsage>,
    /// Aggregates over turns recorded under a tier that allows `/v1/metrics`.
    #[serde(default)]
    pub shareable: Aggregates,
    /// Features attributed to models, per model, session, feature and day (see
    /// [`crate::attribution`]).
    #[serde(default)]
    pub value: Attribution,
    /// Routing decisions counted from the turns' `decision` blocks.
    #[serde(default)]
    pub reroute: RerouteCounts,
    /// Churn per UTC day (for the churn trend).
    #[serde(default)]
    pub churn_by_day: BTreeMap<jiff::civil::Date, DayChurn>,
}

impl Rollup {
    /// An empty rollup.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event into the totals.
    pub fn apply(&mut self, env: &Envelope) {
        match &env.body {
            EventBody::Session(_) => self.sessions += 1,
            EventBody::Turn(t) => {
                self.apply_turn(t);
                let day = jiff::tz::TimeZone::UTC.to_datetime(env.recorded_at).date();
                self.value.apply(t, day);
                self.reroute.apply(t);
                if let Some(m) = &t.measurement {
                    let d = self.churn_by_day.entry(day).or_default();
                    d.measurements += 1;
                    d.sum_churn_score += m.churn_score;
                }
                if env.tier.allows(Egress::Metrics) {
                    self.shareable.apply_turn(t);
                }
            }
            EventBody::SessionEnd(_) => {}
        }
    }

    /// Folds one turn into the totals over everything (not into [`Rollup::shareable`], which
    /// needs the recorded tier, nor into [`Rollup::value`], which needs the recorded time: use
    /// [`Rollup::apply`]).
    pub fn apply_turn(&mut self, t: &TurnEvent) {
        self.turns += 1;
        self.totals.apply_turn(t);
        if let Some(attr) = &t.turn.attribution {
            for (model, v) in attr {
                // get_mut first: the common case allocates nothing.
                match self.model_value.get_mut(model) {
                    Some(sum) => *sum += v,
                    None => {
                        self.model_value.insert(model.clone(), *v);
                    }
                }
            }
        }
        let usage = match self.models.get_mut(&t.turn.model) {
            Some(u) => u,
            None => self.models.entry(t.turn.model.clone()).or_default(),
        };
        usage.turns += 1;
        // Saturating: a log written before the schema bounded token counts may hold any u64.
        usage.tokens_in = usage.tokens_in.saturating_add(t.turn.tokens_in);
        usage.tokens_out = usage.tokens_out.saturating_add(t.turn.tokens_out);
        if let Some(c) = &t.cost {
            usage.estimated_usd += c.estimated_usd;
        }
    }

    /// The summary as of `generated_at`.
    pub fn summary(&self, generated_at: jiff::Timestamp) -> Summary {
        let all = self.totals.summary();
        Summary {
            avg_churn_score: all.avg_churn_score,
            avg_cls: all.avg_cls,
            avg_impf: all.avg_impf,
            capacity_used: all.capacity_used,
            features_per_capacity: all.features_per_capacity,
            features_shipped: all.features_shipped,
            generated_at,
            license: None,
            model_health: None,
            model_health_source: None,
            model_value: self.model_value.clone(),
            models: self.models.clone(),
            sessions: self.sessions,
            shareable: self.shareable.summary(),
            turns: self.turns,
            value: self.value.clone(),
            reroute: self.reroute.clone(),
            churn_trend: churn_trend(
                &self.churn_by_day,
                jiff::tz::TimeZone::UTC.to_datetime(generated_at).date(),
            ),
        }
    }
}

/// Health of one model as the shim reports it (`ccc-formats.md` §3.1), plus the configured warn
/// fraction seen in the usage logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelHealth {
    /// Provider from the quotas config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Config warn threshold reached.
    pub warn: bool,
    /// Rolling or weekly capacity reached.
    pub block: bool,
    /// Configured warn fraction (from the usage logs' `warn_pct_cfg`, when seen).
    pub warn_pct_cfg: Option<f64>,
    /// Calibrated warn fraction.
    pub warn_pct_auto: Option<f64>,
    /// Calibration confidence 0..1.
    pub warn_pct_confidence: Option<f64>,
    /// Calibration gap p50 (seconds).
    pub gap_seconds_p50: Option<f64>,
    /// Calibration gap p95 (seconds).
    pub gap_seconds_p95: Option<f64>,
    /// Calibration samples.
    pub gap_samples: Option<u64>,
    /// Requests in the rolling window.
    pub reqs: u64,
    /// Rolling input tokens.
    pub rolling_in: u64,
    /// Rolling output tokens.
    pub rolling_out: u64,
    /// Rolling fraction used.
    pub rolling_pct: f64,
    /// Weekly fraction used.
    pub weekly_pct: f64,
    /// Seconds until the oldest rolling tokens leave the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_rolling_sec: Option<f64>,
    /// Speeds object as reported (rolling/session rates, TTFT quantiles, hourly bins).
    pub speeds: serde_json::Value,
}

/// `model_health.json` in the data dir: the last model health a fetch or a backfill saw. The
/// recorder copies it into the summary; it never fetches while a turn is being recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelHealthCache {
    /// Where it came from: `GET <url>` or `backfill of <snapshot>`.
    pub source: String,
    /// When it was fetched or backfilled.
    pub fetched_at: Option<jiff::Timestamp>,
    /// Health per model, as the backfill shapes it.
    pub models: BTreeMap<String, ModelHealth>,
}

impl ModelHealthCache {
    /// Copies the cache into `summary` (`model_health` and where it came from).
    pub fn apply(&self, summary: &mut Summary) {
        summary.model_health = Some(self.models.clone());
        summary.model_health_source = Some(match self.fetched_at {
            Some(at) => format!("{} at {at}", self.source),
            None => self.source.clone(),
        });
    }
}

/// The content of `metrics_summary.json`. Fields are in alphabetical order so the serialized
/// keys are sorted whatever map type serde_json is built with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Mean churn score over measured turns (null when none).
    pub avg_churn_score: Option<f64>,
    /// Mean CLS over measured turns (null when none).
    pub avg_cls: Option<f64>,
    /// Mean interaction minutes per feature (null when none).
    pub avg_impf: Option<f64>,
    /// Σ capacity used.
    pub capacity_used: f64,
    /// Mean churn of the last 7 UTC days against the 7 before (local; not an allowlisted key).
    #[serde(default)]
    pub churn_trend: ChurnTrend,
    /// features_shipped / capacity_used; null when capacity is 0.
    pub features_per_capacity: Option<f64>,
    /// Σ feature_delta.
    pub features_shipped: f64,
    /// When the summary was computed.
    pub generated_at: jiff::Timestamp,
    /// The license in force when the summary was written (local only; never the signature or
    /// the claim bytes). Absent without a valid license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseSummary>,
    /// Σ attribution per model.
    pub model_value: BTreeMap<String, f64>,
    /// Quota health per model, from the CCC's `/v1/usage` (the last cached fetch) or the last
    /// backfill's snapshot; absent when neither exists. Local only: it came from the CCC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_health: Option<BTreeMap<String, ModelHealth>>,
    /// Where `model_health` came from and when (`GET <url> at <time>`, `backfill of <path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_health_source: Option<String>,
    /// Tokens, turns and cost per model.
    pub models: BTreeMap<String, ModelUsage>,
    /// Routing decisions by mode and decision (local; not an allowlisted key).
    #[serde(default, skip_serializing_if = "RerouteCounts::is_empty")]
    pub reroute: RerouteCounts,
    /// Sessions started.
    pub sessions: u64,
    /// The aggregate fields over shareable turns only: what `/v1/metrics` may carry.
    #[serde(default)]
    pub shareable: SharedSummary,
    /// Turns recorded.
    pub turns: u64,
    /// Features attributed to models (never leaves under `minimized`: not an allowlisted key).
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub value: Attribution,
}

/// The `license` block of the local summary: what a person needs to know about the license in
/// force, and nothing that would let anyone reuse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseSummary {
    /// Whole days until expiry (negative once expired).
    pub days_left: i64,
    /// Entitlements granted.
    pub entitlements: Vec<String>,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// The trusted key that verified it.
    pub kid: String,
    /// Plan.
    pub plan: String,
    /// `configured`, or `last_known_good` when the configured pack does not verify.
    pub source: String,
}

impl LicenseSummary {
    /// The block for a verified license at `now_unix`.
    pub fn new(lic: &crate::license::VerifiedLicense, source: &str, now_unix: i64) -> Self {
        LicenseSummary {
            days_left: (lic.claims.exp - now_unix).div_euclid(86_400),
            entitlements: lic.claims.features.clone(),
            exp: lic.claims.exp,
            kid: lic.kid.clone(),
            plan: lic.claims.plan.as_str().to_string(),
            source: source.to_string(),
        }
    }
}
