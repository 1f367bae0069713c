//! Where Codex CLI keeps its session rollouts: `${CODEX_HOME:-~/.codex}/sessions/YYYY/MM/DD/`.

use std::path::{Path, PathBuf};

use crate::error::IngestError;

/// The `sessions` directories to read: `--path` if given (a Codex home holding `sessions/`, or a
/// sessions dir itself), else `$CODEX_HOME/sessions`, else `~/.codex/sessions` when it exists.
pub fn roots(path: Option<&Path>) -> Result<Vec<PathBuf>, IngestError> {
    if let Some(p) = path {
        if !p.is_dir() {
            return Err(IngestError::MissingRoot {
                path: p.to_path_buf(),
            });
        }
        return Ok(vec![sessions_dir(p)]);
    }
    if let Some(home) = std::env::var_os("CODEX_HOME").filter(|h| !h.is_empty()) {
        let p = PathBuf::from(home);
        if !p.is_dir() {
            return Err(IngestError::MissingRoot { path: p });
        }
        return Ok(vec![sessions_dir(&p)]);
    }
    Ok(searched(None).into_iter().filter(|p| p.is_dir()).collect())
}

/// Where [`roots`] looks, whether or not it exists.
pub fn searched(path: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = path {
        return vec![sessions_dir(p)];
    }
    if let Some(home) = std::env::var_os("CODEX_HOME").filter(|h| !h.is_empty()) {
        return vec![sessions_dir(Path::new(&home))];
    }
    match std::env::var_os("HOME") {
        Some(home) => vec![PathBuf::from(home).join(".codex/sessions")],
        None => Vec::new(),
    }
}

fn sessions_dir(p: &Path) -> PathBuf {
    let sub = p.join("sessions");
    if sub.is_dir() { sub } else { p.to_path_buf() }
}

/// Every `rollout-*.jsonl` under `root`, recursively, sorted by path. Unreadable directories
/// are skipped.
pub fn rollout_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let rollout = |p: &Path| {
        p.extension().is_some_and(|x| x == "jsonl")
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rollout-"))
    };
    crate::scan::walk_files(root, &rollout, &mut out);
    out.sort();
    out
}
