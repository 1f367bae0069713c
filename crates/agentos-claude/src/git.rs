//! Repository facts for a session record, read straight from `.git` (no `git` process: a hook
//! must stay within a few milliseconds, and git may be missing or slow on a large repo).
//!
//! Handles plain repositories and linked worktrees / submodules (`.git` file with `gitdir:`),
//! loose refs and `packed-refs`. Anything unreadable gives an empty field, never an error.

use std::path::{Path, PathBuf};

/// What a session records about where the agent works.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoInfo {
    /// The `origin` remote URL (else the first remote) without credentials or `.git` suffix;
    /// else the top-level directory of the work tree; else the working directory itself.
    pub repo_id: String,
    /// The checked-out branch (empty when detached or unknown).
    pub branch: String,
    /// The commit at HEAD (empty when unknown, e.g. a repository without commits).
    pub commit: String,
}

/// Reads the repository facts of `cwd`.
pub fn repo_info(cwd: &Path) -> RepoInfo {
    let Some((top, git_dir)) = find_git_dir(cwd) else {
        return RepoInfo {
            repo_id: cwd.display().to_string(),
            ..RepoInfo::default()
        };
    };
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| resolve(&git_dir, c.trim()))
        .unwrap_or_else(|| git_dir.clone());
    let head = std::fs::read_to_string(git_dir.join("HEAD")).unwrap_or_default();
    let head = head.trim();
    let (branch, commit) = match head.strip_prefix("ref:") {
        Some(r) => {
            let r = r.trim();
            let branch = r.strip_prefix("refs/heads/").unwrap_or(r).to_string();
            let commit = read_ref(&git_dir, r)
                .or_else(|| read_ref(&common, r))
                .unwrap_or_default();
            (branch, commit)
        }
        None => (String::new(), head.to_string()),
    };
    let remote = std::fs::read_to_string(common.join("config"))
        .ok()
        .and_then(|c| remote_url(&c));
    RepoInfo {
        repo_id: remote
            .map(|u| clean_remote(&u))
            .unwrap_or_else(|| top.display().to_string()),
        branch,
        commit,
    }
}

/// The work tree top and its git dir, walking up from `start`.
fn find_git_dir(start: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let dot = d.join(".git");
        if dot.is_dir() {
            return Some((d.to_path_buf(), dot));
        }
        if dot.is_file() {
            let text = std::fs::read_to_string(&dot).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            return Some((d.to_path_buf(), resolve(d, target)));
        }
        dir = d.parent();
    }
    None
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read_ref(git_dir: &Path, name: &str) -> Option<String> {
    if let Ok(s) = std::fs::read_to_string(git_dir.join(name)) {
        let s = s.trim();
        if !s.is_empty() {
            return Some(s.to_string());
        }
    }
    let packed = std::fs::read_to_string(git_dir.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (sha, r) = l.split_once(' ')?;
        (r.trim() == name && !sha.starts_with('#') && !sha.starts_with('^'))
            .then(|| sha.to_string())
    })
}

/// The `origin` URL from a git config text, else the first remote's.
fn remote_url(config: &str) -> Option<String> {
    let mut section: Option<String> = None;
    let mut first = None;
    for line in config.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            section = rest
                .strip_suffix(']')
                .and_then(|s| s.strip_prefix("remote "))
                .map(|s| s.trim().trim_matches('"').to_string());
            continue;
        }
        let Some(name) = &section else { continue };
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == "url"
        {
            let v = v.trim().to_string();
            if name == "origin" {
                return Some(v);
            }
            first.get_or_insert(v);
        }
    }
    first
}

/// Drops credentials (`https://user:token@host/…` → `https://host/…`) and a `.git` suffix: a
/// token in a remote URL must never end up in a session record.
fn clean_remote(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    };
    if let Some(s) = out.strip_suffix(".git") {
        out = s.to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive_in_the_repo_id() {
        assert_eq!(
            clean_remote("https://bob:ghp_secret@github.com/acme/app.git"),
            "https://github.com/acme/app"
        );
        assert_eq!(
            clean_remote("git@github.com:acme/app.git"),
            "git@github.com:acme/app"
        );
    }

    #[test]
    fn origin_wins_over_other_remotes() {
        let cfg = "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://u/x\n[remote \"origin\"]\n\turl = https://o/x\n";
        assert_eq!(remote_url(cfg).as_deref(), Some("https://o/x"));
        assert_eq!(
            remote_url("[remote \"fork\"]\nurl = https://f/x\n").as_deref(),
            Some("https://f/x")
        );
    }

    #[test]
    fn a_repository_is_read_from_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).expect("mkdir");
        std::fs::write(git.join("HEAD"), "ref: refs/heads/feature/x\n").expect("HEAD");
        std::fs::write(
            git.join("packed-refs"),
            "# pack-refs with: peeled\nabc123 refs/heads/feature/x\n",
        )
        .expect("packed");
        std::fs::write(
            git.join("config"),
            "[remote \"origin\"]\n\turl = https://t@h/r.git\n",
        )
        .expect("config");
        let sub = dir.path().join("src/deep");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let info = repo_info(&sub);
        assert_eq!(info.branch, "feature/x");
        assert_eq!(info.commit, "abc123");
        assert_eq!(info.repo_id, "https://h/r");
    }

    #[test]
    fn outside_a_repository_the_directory_is_the_repo_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let info = repo_info(dir.path());
        assert_eq!(info.repo_id, dir.path().display().to_string());
        assert!(info.branch.is_empty() && info.commit.is_empty());
    }
}
