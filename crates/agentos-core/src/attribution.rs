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
    /// Σ of the model's normalised weights: turns' worth of attribution.
    pub turns: f64,
    /// Σ weight × feature_delta: features attributed to the model.
    pub features: f64,
}

/// The attributed features, folded over turns; `BTreeMap`s keep the serialized keys sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attribution {
    /// Per model.
    pub by_model: BTreeMap<String, ModelValue>,
    /// Per session: model → features.
    pub by_session: BTreeMap<String, BTreeMap<String, f64>>,
    /// Per feature id (turns that name a feature): model → features.
    pub by_feature: BTreeMap<String, BTreeMap<String, f64>>,
    /// Per UTC day (`YYYY-MM-DD` of the turn's recorded time): model → features.
    pub by_day: BTreeMap<String, BTreeMap<String, f64>>,
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
    /// Folds one turn recorded at `day` (`YYYY-MM-DD`, UTC).
    pub fn apply(&mut self, t: &TurnEvent, day: &str) {
        let value = t.measurement.as_ref().map_or(0.0, |m| m.feature_delta);
        let value = if value.is_finite() { value } else { 0.0 };
        for (model, w) in weights(t) {
            let mv = match self.by_model.get_mut(model) {
                Some(mv) => mv,
                None => self.by_model.entry(model.to_string()).or_default(),
            };
            mv.turns += w;
            mv.features += w * value;
            if value == 0.0 {
                continue;
            }
            add(
                self.by_session
                    .entry(t.turn.session_id.0.clone())
                    .or_default(),
                model,
                w * value,
            );
            if let Some(f) = &t.feature {
                add(
                    self.by_feature.entry(f.feature_id.clone()).or_default(),
                    model,
                    w * value,
                );
            }
            add(
                self.by_day.entry(day.to_string()).or_default(),
                model,
                w * value,
            );
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
