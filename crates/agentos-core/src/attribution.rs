//! Value attribution (the seed's A7): which model the shipped features are owed to.
//!
//! The rule, also in `docs/attribution.md`:
//! - A turn's **value** is its `measurement.feature_delta` (0 without a measurement).
//! - Its `turn.attribution` shares are **weights**: non-finite or negative shares are ignored,
//!   the rest are divided by their sum, so a turn hands out exactly its own value whatever its
//!   shares add up to. A turn without attribution, or whose usable shares sum to 0, owes
//!   everything to the model that served it (`turn.model`).
//! - So for every turn, `Σ_m features[m] == feature_delta`, and over any set of turns the
//!   attributed features add up to `features_shipped`.
//! - `model_value` in the summary keeps the seed's meaning (the raw shares summed per model);
//!   this module adds the weighted view per model, session, feature and UTC day.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::TurnEvent;

/// What one model is owed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelValue {
    /// Σ weight × feature_delta: features attributed to the model.
    pub features: f64,
    /// Σ of the model's normalised weights: turns' worth of attribution.
    pub turns: f64,
}

/// The attributed features, folded over turns; `BTreeMap`s keep the serialized keys sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attribution {
    /// Per UTC day (`YYYY-MM-DD` of the turn's recorded time): model → features.
    pub by_day: BTreeMap<jiff::civil::Date, BTreeMap<String, f64>>,
    /// Per feature id (turns that name a feature): model → features.
    pub by_feature: BTreeMap<String, BTreeMap<String, f64>>,
    /// Per model.
    pub by_model: BTreeMap<String, ModelValue>,
    /// Per session: model → features.
    pub by_session: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The normalised weights of a turn, by the rule in the module docs.
pub fn weights(t: &TurnEvent) -> Vec<(&str, f64)> {
    let usable: Vec<(&str, f64)> = t
        .turn
        .attribution
        .iter()
        .flatten()
        .filter(|(_, v)| v.is_finite() && **v > 0.0)
        .map(|(m, v)| (m.as_str(), *v))
        .collect();
    let sum: f64 = usable.iter().map(|(_, v)| v).sum();
    if sum > 0.0 {
        usable.into_iter().map(|(m, v)| (m, v / sum)).collect()
    } else {
        vec![(t.turn.model.as_str(), 1.0)]
    }
}

fn add(map: &mut BTreeMap<String, f64>, model: &str, v: f64) {
    match map.get_mut(model) {
        Some(x) => *x += v,
        None => {
            map.insert(model.to_string(), v);
        }
    }
}

impl Attribution {
    /// Folds one turn recorded on `day` (UTC).
    pub fn apply(&mut self, t: &TurnEvent, day: jiff::civil::Date) {
        let value = t.measurement.as_ref().map_or(0.0, |m| m.feature_delta);
        let value = if value.is_finite() { value } else { 0.0 };
        for (model, w) in weights(t) {
            // One name per model in the value report, whatever spelling the turn used.
            let model = crate::model::canonical_model(model);
            let model = model.as_ref();
            let mv = match self.by_model.get_mut(model) {
                Some(mv) => mv,
                None => self.by_model.entry(model.to_string()).or_default(),
            };
            mv.turns += w;
            mv.features += w * value;
            if value == 0.0 {
                continue;
            }
            // Look up before inserting: a session or feature already seen allocates nothing,
            // which keeps recording a turn flat.
            let session = match self.by_session.get_mut(&t.turn.session_id.0) {
                Some(m) => m,
                None => self
                    .by_session
                    .entry(t.turn.session_id.0.clone())
                    .or_default(),
            };
            add(session, model, w * value);
            if let Some(f) = &t.feature {
                let feature = match self.by_feature.get_mut(&f.feature_id) {
                    Some(m) => m,
                    None => self.by_feature.entry(f.feature_id.clone()).or_default(),
                };
                add(feature, model, w * value);
            }
            add(self.by_day.entry(day).or_default(), model, w * value);
        }
    }

    /// Whether no turn was folded.
    pub fn is_empty(&self) -> bool {
        self.by_model.is_empty()
    }

    /// Σ features over every model.
    pub fn total_features(&self) -> f64 {
        self.by_model.values().map(|m| m.features).sum()
    }
}

/// Routing decisions counted from the turns' `decision` blocks (the seed's `reroute` block).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RerouteCounts {
    /// `reroute_decision` → turns.
    pub by_decision: BTreeMap<String, u64>,
    /// `reroute_mode` → turns.
    pub by_mode: BTreeMap<String, u64>,
    /// `reroute_mode` → `reroute_decision` → turns (`-` where a turn has only one of them).
    pub by_mode_and_decision: BTreeMap<String, BTreeMap<String, u64>>,
}

impl RerouteCounts {
    /// Counts one turn's decision block, if it has one.
    pub fn apply(&mut self, t: &TurnEvent) {
        let Some(d) = &t.decision else { return };
        if d.reroute_mode.is_none() && d.reroute_decision.is_none() {
            return;
        }
        let mode = d.reroute_mode.as_deref().unwrap_or("-");
        let decision = d.reroute_decision.as_deref().unwrap_or("-");
        if let Some(m) = &d.reroute_mode {
            *self.by_mode.entry(m.clone()).or_default() += 1;
        }
        if let Some(x) = &d.reroute_decision {
            *self.by_decision.entry(x.clone()).or_default() += 1;
        }
        *self
            .by_mode_and_decision
            .entry(mode.to_string())
            .or_default()
            .entry(decision.to_string())
            .or_default() += 1;
    }

    /// Whether no decision was counted.
    pub fn is_empty(&self) -> bool {
        self.by_mode.is_empty()
            && self.by_decision.is_empty()
            && self.by_mode_and_decision.is_empty()
    }
}

/// Churn per UTC day, for [`ChurnTrend`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DayChurn {
    /// Turns with a measurement that day.
    pub measurements: u64,
    /// Σ churn_score that day.
    pub sum_churn_score: f64,
}

/// Days in each window of [`ChurnTrend`].
pub const CHURN_WINDOW_DAYS: i64 = 7;

/// Mean churn over the last [`CHURN_WINDOW_DAYS`] UTC days (the day of `generated_at` and the six
/// before it) against the seven days before those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ChurnTrend {
    /// current − previous (null unless both exist); negative is less churn.
    pub change: Option<f64>,
    /// Mean churn in the current window (null without measurements).
    pub current: Option<f64>,
    /// Mean churn in the previous window (null without measurements).
    pub previous: Option<f64>,
    /// Days per window.
    pub window_days: i64,
}

/// The trend of `daily` as of `today` (UTC date).
pub fn churn_trend(
    daily: &BTreeMap<jiff::civil::Date, DayChurn>,
    today: jiff::civil::Date,
) -> ChurnTrend {
    let window = |from_days_ago: i64| -> Option<f64> {
        let (mut n, mut sum) = (0u64, 0.0);
        for back in from_days_ago..from_days_ago + CHURN_WINDOW_DAYS {
            let Ok(day) = today.checked_sub(jiff::Span::new().days(back)) else {
                continue;
            };
            if let Some(d) = daily.get(&day) {
                n += d.measurements;
                sum += d.sum_churn_score;
            }
        }
        (n > 0).then(|| sum / n as f64)
    };
    let current = window(0);
    let previous = window(CHURN_WINDOW_DAYS);
    ChurnTrend {
        window_days: CHURN_WINDOW_DAYS,
        current,
        previous,
        change: current.zip(previous).map(|(c, p)| c - p),
    }
}
