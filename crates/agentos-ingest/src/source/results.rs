//! `results/METRICS*.json`: feature totals written by the CCC test harness.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::IngestError;

#[derive(Deserialize)]
struct MetricsFile {
    total: Option<f64>,
}

/// Features found in results files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultsTotals {
    /// Sum of `total` over all files.
    pub features_shipped: f64,
    /// Files that were used.
    pub files: Vec<PathBuf>,
}

/// Reads every results file; a file without a numeric `total` is an error naming the file.
pub fn read_results(files: &[PathBuf]) -> Result<ResultsTotals, IngestError> {
    let mut t = ResultsTotals::default();
    for f in files {
        t.features_shipped += read_one(f)?;
        t.files.push(f.clone());
    }
    Ok(t)
}

fn read_one(path: &Path) -> Result<f64, IngestError> {
    let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
    let m: MetricsFile = serde_json::from_str(&text)
        .map_err(|e| IngestError::json(path.display().to_string(), e))?;
    match m.total {
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
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
