//! The hook's own bookkeeping, for `agentos claude status`: the last run
//! (`claude/hook_status.json`) and one line per error (`claude/hook.log`).
//!
//! A hook must never fail Claude Code, so its errors end up here instead of on the terminal.
//! When the data dir itself cannot be written, the status goes to a fallback file in the
//! system temp dir, named after the data dir, which `status` reads as well.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use agentos_config::DataDir;
use serde::{Deserialize, Serialize};

use crate::payload::HookEvent;

/// How one hook run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything was handled.
    Ok,
    /// Handled up to the time bound; the next hook continues.
    Partial,
    /// An error (in [`HookRun::error`]).
    Error,
    /// The hard time bound was hit; the process exited before the work finished.
    TimedOut,
}

/// One hook run, as recorded for `agentos claude status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    /// When it ran (UTC).
    pub at: jiff::Timestamp,
    /// The event.
    pub event: HookEvent,
    /// The session (may be empty when stdin was unusable).
    pub session_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Turns written by this run.
    pub turns_recorded: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// The error, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `claude/hook_status.json`: the last run and the last error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HookStatus {
    /// The most recent run.
    pub last: Option<HookRun>,
    /// The most recent run that did not end [`Outcome::Ok`] or [`Outcome::Partial`].
    pub last_error: Option<HookRun>,
    /// Runs that ended in an error or timeout, ever.
    pub errors_total: u64,
}

/// The fallback status file used when the data dir cannot be written.
pub fn fallback_path(data_dir: &Path) -> PathBuf {
    let h = agentos_ingest::scan::fnv1a64(data_dir.as_os_str().as_encoded_bytes());
    std::env::temp_dir().join(format!("agentos-claude-hook-{h:016x}.json"))
}

/// Reads the status of `data_dir` (the data dir's file and the fallback; the newer last run
/// wins, error counts add up).
pub fn read(data_dir: &Path) -> HookStatus {
    let read_one = |p: &Path| -> HookStatus {
        std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    let main = read_one(&DataDir::new(data_dir).claude_hook_status());
    let fb = read_one(&fallback_path(data_dir));
    let newer = |a: Option<HookRun>, b: Option<HookRun>| match (a, b) {
        (Some(a), Some(b)) => Some(if b.at > a.at { b } else { a }),
        (a, b) => a.or(b),
    };
    HookStatus {
        last: newer(main.last, fb.last),
        last_error: newer(main.last_error, fb.last_error),
        errors_total: main.errors_total + fb.errors_total,
    }
}

/// Records `run` (best effort: a hook has nowhere else to report). Returns whether the data
/// dir took it (false = the fallback file was used, or nothing could be written).
pub fn record(data_dir: &Path, run: &HookRun) -> bool {
    let layout = DataDir::new(data_dir);
    let failed = !matches!(run.outcome, Outcome::Ok | Outcome::Partial);
    let update = |path: &Path| -> std::io::Result<()> {
        let mut st: HookStatus = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if failed {
            st.errors_total += 1;
            st.last_error = Some(run.clone());
        }
        st.last = Some(run.clone());
        let bytes = serde_json::to_vec_pretty(&st).map_err(std::io::Error::other)?;
        agentos_config::durable::replace_file(path, &bytes)
    };
    let in_data_dir = std::fs::create_dir_all(layout.claude_dir())
        .and_then(|()| update(&layout.claude_hook_status()))
        .is_ok();
    if in_data_dir {
        if failed {
            let _ = append_log(&layout.claude_hook_log(), run);
        }
        return true;
    }
    let _ = update(&fallback_path(data_dir));
    false
}

fn append_log(path: &Path, run: &HookRun) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(run).map_err(std::io::Error::other)?;
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome, at: &str) -> HookRun {
        HookRun {
            at: at.parse().expect("ts"),
            event: HookEvent::Stop,
            session_id: "s".into(),
            outcome,
            turns_recorded: 1,
            elapsed_ms: 3,
            error: (outcome == Outcome::Error).then(|| "boom".into()),
        }
    }

    #[test]
    fn errors_are_counted_logged_and_kept_after_later_successes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(record(
            dir.path(),
            &run(Outcome::Error, "2026-01-01T00:00:00Z")
        ));
        assert!(record(
            dir.path(),
            &run(Outcome::Ok, "2026-01-01T00:00:01Z")
        ));
        let st = read(dir.path());
        assert_eq!(st.errors_total, 1);
        assert_eq!(st.last.expect("last").outcome, Outcome::Ok);
        assert_eq!(st.last_error.expect("error").error.as_deref(), Some("boom"));
        let log = std::fs::read_to_string(DataDir::new(dir.path()).claude_hook_log()).expect("log");
        assert_eq!(log.lines().count(), 1);
    }
}
