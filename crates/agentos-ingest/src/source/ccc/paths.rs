//! Where a CCC root keeps its usage logs and results.

use std::path::{Path, PathBuf};

use crate::error::IngestError;

/// The usage logs of a CCC root in chronological order: `logs/archive/usage*.jsonl` (by name),
/// then `logs/usage.jsonl.N` from the highest N (oldest) down to `.1`, then `logs/usage.jsonl`.
/// A root that is itself a logs directory (holds `usage.jsonl`) is accepted too.
pub fn usage_logs(root: &Path) -> Result<Vec<PathBuf>, IngestError> {
    if !root.is_dir() {
        return Err(IngestError::MissingRoot {
            path: root.to_path_buf(),
        });
    }
    let logs = if root.join("logs").is_dir() {
        root.join("logs")
    } else {
        root.to_path_buf()
    };
    let mut out = Vec::new();
    let mut archive: Vec<PathBuf> = list(&logs.join("archive"))
        .into_iter()
        .filter(|p| {
            let n = file_name(p);
            n.starts_with("usage") && n.ends_with(".jsonl")
        })
        .collect();
    archive.sort();
    out.extend(archive);
    let mut rotated: Vec<(u64, PathBuf)> = list(&logs)
        .into_iter()
        .filter_map(|p| {
            let n = file_name(&p);
            let k = n.strip_prefix("usage.jsonl.")?.parse::<u64>().ok()?;
            Some((k, p))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    out.extend(rotated.into_iter().map(|(_, p)| p));
    let current = logs.join("usage.jsonl");
    if current.is_file() {
        out.push(current);
    }
    Ok(out)
}

/// `results/METRICS*.json` of a CCC root, sorted by name.
pub fn results_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = list(&root.join("results"))
        .into_iter()
        .filter(|p| {
            let n = file_name(p);
            n.starts_with("METRICS") && n.ends_with(".json")
        })
        .collect();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn list(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    }
}
