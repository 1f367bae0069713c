//! `results/METRICS*.json`: feature totals written by the CCC test harness, plus the window
//! measurements (`cls`, `impf`, `churn_score`) and model attribution when a file carries them.
//!
//! The format is not published beyond `{"total": N}` (see `ccc-formats.md` §6.2), so the
//! optional fields are read under the names AgentOS uses for the same quantities, each either
//! bare (`cls`) or as a mean (`avg_cls`); a file that has neither simply does not count towards
//! that mean. `model_value` (model → value) or `attribution` (model → share of `total`) add to the
//! per-model value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::IngestError;

#[derive(Deserialize)]
struct MetricsFile {
    total: Option<f64>,
    #[serde(alias = "avg_cls")]
    cls: Option<f64>,
    #[serde(alias = "avg_impf")]
    impf: Option<f64>,
    #[serde(alias = "avg_churn_score")]
    churn_score: Option<f64>,
    model_value: Option<BTreeMap<String, f64>>,
    attribution: Option<BTreeMap<String, f64>>,
}

/// Features found in results files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultsTotals {
    /// Sum of `total` over all files.
    pub features_shipped: f64,
    /// Files that were used.
    pub files: Vec<PathBuf>,
    /// Mean `cls` over the files that carry one.
    pub avg_cls: Option<f64>,
    /// Mean `impf` over the files that carry one.
    pub avg_impf: Option<f64>,
    /// Mean `churn_score` over the files that carry one.
    pub avg_churn_score: Option<f64>,
    /// Value per model: `model_value` maps summed, plus `attribution` shares × the file's `total`.
    pub model_value: BTreeMap<String, f64>,
}

/// A running mean that stays `None` until a value arrives.
#[derive(Default)]
struct Mean(f64, u32);

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.0 += v;
            self.1 += 1;
        }
    }
    fn get(&self) -> Option<f64> {
        (self.1 > 0).then(|| self.0 / f64::from(self.1))
    }
}

/// Reads every results file; a file without a numeric `total` is an error naming the file.
pub fn read_results(files: &[PathBuf]) -> Result<ResultsTotals, IngestError> {
    let mut t = ResultsTotals::default();
    let (mut cls, mut impf, mut churn) = (Mean::default(), Mean::default(), Mean::default());
    for f in files {
        let (total, m) = read_one(f)?;
        t.features_shipped += total;
        t.files.push(f.clone());
        cls.add(m.cls);
        impf.add(m.impf);
        churn.add(m.churn_score);
        let shares = m
            .attribution
            .into_iter()
            .flatten()
            .map(|(k, s)| (k, s * total));
        for (model, v) in m.model_value.into_iter().flatten().chain(shares) {
            if v.is_finite() {
                *t.model_value.entry(model).or_default() += v;
            }
        }
    }
    t.avg_cls = cls.get();
    t.avg_impf = impf.get();
    t.avg_churn_score = churn.get();
    Ok(t)
}

fn read_one(path: &Path) -> Result<(f64, MetricsFile), IngestError> {
    let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
    let m: MetricsFile = serde_json::from_str(&text)
        .map_err(|e| IngestError::json(path.display().to_string(), e))?;
    match m.total {
        Some(v) if v.is_finite() && v >= 0.0 => Ok((v, m)),
        Some(v) => Err(IngestError::BadResults {
            path: path.to_path_buf(),
            detail: format!("field \"total\" is {v}, expected a non-negative number"),
        }),
        None => Err(IngestError::BadResults {
            path: path.to_path_buf(),
            detail: "field \"total\" is missing".into(),
        }),
    }
}
