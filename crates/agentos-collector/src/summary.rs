//! Minimized summaries (`POST /v1/metrics`) and their merge across a tenant's devices
//! (`GET /v1/summary`).
//!
//! The server is a second privacy guard: a summary may only carry
//! [`agentos_core::privacy::MINIMIZED_SUMMARY_FIELDS`]; any other key is refused by
//! [`MinimizedSummary::from_json`] with the JSON pointer of the key.
//!
//! Merge rules (one device = its latest summary):
//! - `features_shipped` and `capacity_used` are sums;
//! - `features_per_capacity` is recomputed from the sums (`null` when the capacity sum is 0);
//! - `avg_cls`, `avg_impf`, `avg_churn_score` are the unweighted mean over the devices that
//!   report a value, because minimized summaries carry no turn counts to weight by;
//! - `generated_at` is the newest device's.

use agentos_core::privacy::MINIMIZED_SUMMARY_FIELDS;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a metrics body was refused (the route maps this to 422 with the pointer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct SummaryShapeError {
    /// JSON pointer of the offending value ("" = the whole body).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// The allowlisted summary of one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinimizedSummary {
    /// When the device computed the summary (RFC 3339).
    #[serde(default)]
    pub generated_at: Option<jiff::Timestamp>,
    /// Σ feature_delta.
    #[serde(default)]
    pub features_shipped: Option<f64>,
    /// features_shipped / capacity_used.
    #[serde(default)]
    pub features_per_capacity: Option<f64>,
    /// Mean CLS.
    #[serde(default)]
    pub avg_cls: Option<f64>,
    /// Mean IMPF.
    #[serde(default)]
    pub avg_impf: Option<f64>,
    /// Mean churn score.
    #[serde(default)]
    pub avg_churn_score: Option<f64>,
    /// Σ capacity_used.
    #[serde(default)]
    pub capacity_used: Option<f64>,
}

impl MinimizedSummary {
    /// Validates a `/v1/metrics` body: an object with only allowlisted keys, numbers (or null)
    /// for the figures, an RFC 3339 string (or null) for `generated_at`.
    ///
    /// # Errors
    /// [`SummaryShapeError`] naming the first offending key.
    pub fn from_json(value: &Value) -> Result<Self, SummaryShapeError> {
        let Some(obj) = value.as_object() else {
            return Err(SummaryShapeError {
                pointer: String::new(),
                message: "the metrics body must be a JSON object".into(),
            });
        };
        let mut out = MinimizedSummary::default();
        for (key, v) in obj {
            let pointer = format!("/{}", escape_pointer(key));
            if !MINIMIZED_SUMMARY_FIELDS.contains(&key.as_str()) {
                return Err(SummaryShapeError {
                    pointer,
                    message: format!(
                        "field `{key}` is not an allowlisted summary field (allowed: {})",
                        MINIMIZED_SUMMARY_FIELDS.join(", ")
                    ),
                });
            }
            if key == "generated_at" {
                out.generated_at = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.parse().map_err(|e| SummaryShapeError {
                        pointer,
                        message: format!("`{s}` is not an RFC 3339 timestamp: {e}"),
                    })?),
                    _ => {
                        return Err(SummaryShapeError {
                            pointer,
                            message: "must be an RFC 3339 string or null".into(),
                        });
                    }
                };
                continue;
            }
            let n = match v {
                Value::Null => None,
                Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
                _ => None,
            };
            if n.is_none() && !v.is_null() {
                return Err(SummaryShapeError {
                    pointer,
                    message: format!("must be a finite number or null, got {v}"),
                });
            }
            // Sums and means of quantities the v1 schema bounds at 0 (capacity_used, impf):
            // a negative one cannot come from a real rollup.
            if NON_NEGATIVE.contains(&key.as_str()) && n.is_some_and(|f| f < 0.0) {
                return Err(SummaryShapeError {
                    pointer,
                    message: format!("must not be negative, got {v}"),
                });
            }
            let slot = match key.as_str() {
                "features_shipped" => &mut out.features_shipped,
                "features_per_capacity" => &mut out.features_per_capacity,
                "avg_cls" => &mut out.avg_cls,
                "avg_impf" => &mut out.avg_impf,
                "avg_churn_score" => &mut out.avg_churn_score,
                _ => &mut out.capacity_used,
            };
            *slot = n;
        }
        Ok(out)
    }
}

/// Figures that can never be negative (their per-turn sources have `minimum: 0`).
/// (`features_shipped` and so `features_per_capacity` may be: a `feature_delta` can be.)
const NON_NEGATIVE: [&str; 2] = ["capacity_used", "avg_impf"];

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The merged view over several devices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergedSummary {
    /// Devices that sent a summary.
    pub devices: u64,
    /// Newest `generated_at`.
    pub generated_at: Option<jiff::Timestamp>,
    /// Σ features_shipped.
    pub features_shipped: f64,
    /// Σ capacity_used.
    pub capacity_used: f64,
    /// Σ features_shipped / Σ capacity_used, null when the capacity is 0.
    pub features_per_capacity: Option<f64>,
    /// Mean over reporting devices.
    pub avg_cls: Option<f64>,
    /// Mean over reporting devices.
    pub avg_impf: Option<f64>,
    /// Mean over reporting devices.
    pub avg_churn_score: Option<f64>,
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Merges the latest summary of each device.
pub fn merge<'a>(
    summaries: impl IntoIterator<Item = &'a MinimizedSummary> + Clone,
) -> MergedSummary {
    let all: Vec<&MinimizedSummary> = summaries.into_iter().collect();
    // Folded from +0.0: `Iterator::sum` of no f64 is -0.0, which would show as `-0.0`.
    let features_shipped = all
        .iter()
        .filter_map(|s| s.features_shipped)
        .fold(0.0, |a, b| a + b);
    let capacity_used = all
        .iter()
        .filter_map(|s| s.capacity_used)
        .fold(0.0, |a, b| a + b);
    MergedSummary {
        devices: all.len() as u64,
        generated_at: all.iter().filter_map(|s| s.generated_at).max(),
        features_shipped,
        capacity_used,
        features_per_capacity: (capacity_used > 0.0).then(|| features_shipped / capacity_used),
        avg_cls: mean(all.iter().map(|s| s.avg_cls)),
        avg_impf: mean(all.iter().map(|s| s.avg_impf)),
        avg_churn_score: mean(all.iter().map(|s| s.avg_churn_score)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_extra_field_is_refused_with_its_pointer() {
        let err = MinimizedSummary::from_json(&json!({"avg_cls": 1.0, "models": {}}))
            .expect_err("models is not allowlisted");
        assert_eq!(err.pointer, "/models");
    }

    #[test]
    fn an_empty_merge_has_positive_zeros_and_negative_figures_are_refused() {
        let m = merge(std::iter::empty::<&MinimizedSummary>());
        assert_eq!(
            serde_json::to_value(&m).expect("json")["features_shipped"].to_string(),
            "0.0"
        );
        assert!(m.capacity_used.is_sign_positive());
        for key in NON_NEGATIVE {
            let err =
                MinimizedSummary::from_json(&json!({ key: -1.0 })).expect_err("negative refused");
            assert_eq!(err.pointer, format!("/{key}"));
        }
        // A mean of signed scores may be negative.
        assert!(MinimizedSummary::from_json(&json!({"avg_cls": -0.5})).is_ok());
    }

    #[test]
    fn two_devices_merge_by_sum_and_mean() {
        let a = MinimizedSummary {
            features_shipped: Some(1.0),
            capacity_used: Some(0.5),
            avg_cls: Some(1.0),
            ..Default::default()
        };
        let b = MinimizedSummary {
            features_shipped: Some(3.0),
            capacity_used: Some(1.5),
            avg_cls: Some(2.0),
            avg_impf: Some(4.0),
            ..Default::default()
        };
        let m = merge([&a, &b]);
        assert_eq!(m.devices, 2);
        assert_eq!(m.features_shipped, 4.0);
        assert_eq!(m.features_per_capacity, Some(2.0));
        assert_eq!(m.avg_cls, Some(1.5));
        assert_eq!(m.avg_impf, Some(4.0));
        assert_eq!(m.avg_churn_score, None);
    }
}
