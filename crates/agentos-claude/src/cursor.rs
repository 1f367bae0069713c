//! The per-session cursor: `<data_dir>/claude/sessions/<id>.json`.
//!
//! It says how far each transcript of the session has been read, under which tier the session
//! records, which turn ids were already written to `windows.jsonl`, and how long the log was when
//! the cursor was saved. A hook writes turns first and saves the cursor after; if it is killed in
//! between, the next run reads the log from [`SessionCursor::log_len`] on and finds the turns it
//! already wrote ([`crate::hook`]), so nothing is doubled and nothing is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use agentos_config::DataDir;
use agentos_core::tier::Tier;
use serde::{Deserialize, Serialize};

use crate::error::ClaudeError;

/// Version of the cursor file format.
pub const CURSOR_VERSION: u32 = 1;

/// How far one transcript file has been read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCursor {
    /// Byte offset of the first line not yet read (always a line start).
    pub offset: u64,
    /// Timestamp (epoch ms) of the last input line read (a user prompt or tool result): the
    /// start of the next request's latency.
    #[serde(default)]
    pub last_input_ms: Option<i64>,
    /// Sub-agent name for the turns of this file ("" for the main transcript).
    #[serde(default)]
    pub subagent: String,
}

/// One session's cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCursor {
    /// [`CURSOR_VERSION`].
    pub version: u32,
    /// The session id.
    pub session_id: String,
    /// The tier the session records under; `None` until its `session` event is written.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// A `session_end` was written (a later SessionStart for the same id reopens it).
    #[serde(default)]
    pub ended: bool,
    /// Length of `windows.jsonl` when this cursor was saved.
    #[serde(default)]
    pub log_len: u64,
    /// Transcript path → how far it has been read.
    #[serde(default)]
    pub files: BTreeMap<PathBuf, FileCursor>,
    /// Turn ids of this session already in the log.
    #[serde(default)]
    pub recorded: BTreeSet<String>,
}

/// Where a session's cursor and lock live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorPaths {
    /// The cursor file.
    pub file: PathBuf,
    /// The per-session lock (held while one hook handles the session).
    pub lock: PathBuf,
    /// The copy of a SessionEnd payload a detached continuation finishes from; it exists
    /// while that continuation has work left, and the continuation removes it last.
    pub end_payload: PathBuf,
}

/// The cursor paths of `session_id`. Session ids come from stdin, so anything but
/// `[A-Za-z0-9_-]` is replaced: an id can never name a file outside `claude/sessions/`.
pub fn paths(data_dir: &Path, session_id: &str) -> CursorPaths {
    let safe: String = session_id
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = DataDir::new(data_dir).claude_sessions_dir();
    CursorPaths {
        file: dir.join(format!("{safe}.json")),
        lock: dir.join(format!("{safe}.lock")),
        end_payload: dir.join(format!("{safe}.end.json")),
    }
}

/// How [`load`] found the cursor file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A valid cursor of this session.
    Loaded,
    /// No cursor file: a session no hook has handled yet.
    Missing,
    /// A file that is unreadable, corrupt, of another version or of another session.
    Corrupt,
}

/// Loads a cursor. A missing file gives a fresh cursor ([`Found::Missing`]: the caller anchors
/// it at the log's current length before writing anything). An unreadable or corrupt one also
/// gives a fresh cursor **with `log_len` 0** ([`Found::Corrupt`]), so the next run rescans the
/// whole log for this session's turns instead of recording them again (slow once, never wrong).
pub fn load(path: &Path, session_id: &str) -> (SessionCursor, Found) {
    let fresh = SessionCursor {
        version: CURSOR_VERSION,
        session_id: session_id.to_string(),
        ..SessionCursor::default()
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (fresh, Found::Missing),
        Err(_) => return (fresh, Found::Corrupt),
    };
    match serde_json::from_slice::<SessionCursor>(&bytes) {
        Ok(c) if c.version == CURSOR_VERSION && c.session_id == session_id => (c, Found::Loaded),
        _ => (fresh, Found::Corrupt),
    }
}

/// Saves a cursor atomically (rename over the old one; a crash leaves the old or the new).
///
/// # Errors
/// I/O errors.
pub fn save(path: &Path, cursor: &SessionCursor) -> Result<(), ClaudeError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(ClaudeError::io("creating", dir))?;
    }
    let bytes = serde_json::to_vec(cursor).map_err(|e| ClaudeError::Io {
        op: "serializing",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    agentos_config::durable::replace_file(path, &bytes).map_err(ClaudeError::io("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_session_ids_stay_inside_the_sessions_dir() {
        let p = paths(Path::new("/d"), "../../etc/passwd");
        assert_eq!(p.file.parent(), Some(Path::new("/d/claude/sessions")));
        assert!(!p.file.to_string_lossy().contains(".."));
    }

    #[test]
    fn a_corrupt_cursor_is_fresh_and_rescans_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.json");
        assert_eq!(load(&p, "s").1, Found::Missing);
        std::fs::write(&p, b"{\"version\":1,\"sess").expect("write");
        let (c, found) = load(&p, "s");
        assert_eq!(found, Found::Corrupt);
        assert_eq!(c.log_len, 0);
        assert!(c.recorded.is_empty());
        let mut c = c;
        c.log_len = 7;
        c.recorded.insert("t".into());
        save(&p, &c).expect("save");
        assert_eq!(load(&p, "s"), (c, Found::Loaded));
        // A cursor of another session (hash collision of sanitised names) is not reused.
        assert_eq!(load(&p, "other").0.log_len, 0);
    }
}
