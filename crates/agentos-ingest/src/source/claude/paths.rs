//! Where Claude Code keeps its transcripts.

use std::path::{Path, PathBuf};

use crate::error::IngestError;

/// The `projects` directories to read: `--path` if given, else every entry of the
/// comma-separated `$CLAUDE_CONFIG_DIR`, else `~/.config/claude` and `~/.claude` (those that
/// exist). A given directory may be a config dir (holding `projects/`) or a projects dir itself.
pub fn roots(path: Option<&Path>) -> Result<Vec<PathBuf>, IngestError> {
    if let Some(p) = path {
        if !p.is_dir() {
            return Err(IngestError::MissingRoot {
                path: p.to_path_buf(),
            });
        }
        return Ok(vec![projects_dir(p)]);
    }
    let mut out = Vec::new();
    if let Some(env) = std::env::var_os("CLAUDE_CONFIG_DIR") {
        for part in env.to_string_lossy().split(',') {
            let p = PathBuf::from(part.trim());
            if part.trim().is_empty() {
                continue;
            }
            if !p.is_dir() {
                return Err(IngestError::MissingRoot { path: p });
            }
            out.push(projects_dir(&p));
        }
        return Ok(out);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        for c in [home.join(".config/claude"), home.join(".claude")] {
            if c.join("projects").is_dir() {
                out.push(c.join("projects"));
            }
        }
    }
    Ok(out)
}

/// Where [`roots`] looks, whether or not those directories exist: for telling a user who has
/// no data where none was found.
pub fn searched(path: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = path {
        return vec![projects_dir(p)];
    }
    if let Some(env) = std::env::var_os("CLAUDE_CONFIG_DIR") {
        return env
            .to_string_lossy()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| projects_dir(Path::new(p)))
            .collect();
    }
    match std::env::var_os("HOME") {
        Some(home) => {
            let home = PathBuf::from(home);
            vec![
                home.join(".config/claude/projects"),
                home.join(".claude/projects"),
            ]
        }
        None => Vec::new(),
    }
}

fn projects_dir(p: &Path) -> PathBuf {
    let sub = p.join("projects");
    if sub.is_dir() { sub } else { p.to_path_buf() }
}

/// All `*.jsonl` files under `roots`, recursively, sorted by path (the input order that makes
/// results reproducible). Unreadable directories are skipped.
pub fn transcript_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for r in roots {
        crate::scan::walk_files(
            r,
            &|p| p.extension().is_some_and(|x| x == "jsonl"),
            &mut out,
        );
    }
    out.sort();
    out.dedup();
    out
}

/// The project of a transcript: the first directory below the projects root.
pub fn project_of(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next())
        .filter(|_| file.parent() != Some(root))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default()
}
