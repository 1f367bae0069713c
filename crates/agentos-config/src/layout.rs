//! The data-dir layout: the name of every file agentos keeps in a data dir, in one place.
//!
//! ```text
//! <data_dir>/
//!   agentos.toml               optional config (see `crate::config`)
//!   device_id                  this device's UUID, created once
//!   windows.jsonl              the recorder's event log: one v1 envelope per line, seq 1..N gap-free
//!   glm_counts.jsonl           one line per turn served by a GLM model
//!   metrics_summary.json       the rollup (pretty, sorted keys, replaced atomically)
//!   rollup_state.json          rollup accumulators + last seq + the log length they cover
//!   current_session.json       the session shell hooks are recording into
//!   recorder.lock              held while one record is appended (cross-process)
//!   delivery/
//!     cursor.json              durable upload cursor
//!     state.json               counters, last ack/error, server watermark and gaps (advisory)
//!     rejected.jsonl           events given up on, with the server's reason
//!     summary_sent.json        hash of the last summary body the server acknowledged
//!     held.json                events held back behind the cursor (the held-back ledger)
//!     forget.jsonl             every `agentos ccc outbox forget` decision, append-only
//!     uploader.lock            held by the one uploader of this data dir
//!   license/
//!     last_good.pack           the last configured license pack that verified (used, loudly,
//!                              until its own expiry when a refreshed pack fails)
//!   claude/                    Claude Code integration (`agentos claude …`)
//!     sessions/<id>.json       per-session cursor: transcript offset, tier, turn ids recorded
//!     sessions/<id>.lock       held while one hook handles that session
//!     hook_status.json         the last hook run: when, which event, ok or the error
//!     hook.log                 one line per hook error (append-only)
//!     statusline_state.json    `agentos statusline`: costs folded from the log, and its offset
//!     usage_cache.json         `agentos statusline`: the last `/v1/usage` answer
//!   ingest/                    the ingest stores (their inner files belong to `agentos-ingest`)
//!     backfill-skipped.jsonl   lines `agentos ccc backfill` skipped
//!   ccp_metrics_summary.json   default output of `agentos ccc backfill`
//!   model_health.json          the last `/v1/usage` health per model (fetched by `ccc sync` and
//!                              the statusline, or written by `ccc backfill`); read into the
//!                              summary's `model_health`, never fetched while recording a turn
//!   collector.db               default SQLite database of `agentos ccc serve`
//!   keys/                      default output of `agentos license keygen`
//! ```

use std::path::{Path, PathBuf};

/// `agentos.toml`: the config file looked up in the XDG config dir and in the data dir.
pub const CONFIG_FILE: &str = "agentos.toml";
/// `device_id`: this device's id.
pub const DEVICE_ID_FILE: &str = "device_id";
/// `windows.jsonl`: the event log.
pub const WINDOWS_FILE: &str = "windows.jsonl";
/// `glm_counts.jsonl`: per-turn token counts of GLM models.
pub const GLM_COUNTS_FILE: &str = "glm_counts.jsonl";
/// `metrics_summary.json`: the rollup summary.
pub const SUMMARY_FILE: &str = "metrics_summary.json";
/// `rollup_state.json`: the recorder's persisted log state.
pub const ROLLUP_STATE_FILE: &str = "rollup_state.json";
/// `current_session.json`: the session shell hooks record into.
pub const SESSION_FILE: &str = "current_session.json";
/// `recorder.lock`: the cross-process append lock.
pub const RECORDER_LOCK_FILE: &str = "recorder.lock";
/// `delivery/`: the uploader's bookkeeping.
pub const DELIVERY_DIR: &str = "delivery";
/// `delivery/cursor.json`.
pub const CURSOR_FILE: &str = "cursor.json";
/// `delivery/state.json`.
pub const DELIVERY_STATE_FILE: &str = "state.json";
/// `delivery/rejected.jsonl`.
pub const REJECTED_FILE: &str = "rejected.jsonl";
/// `delivery/summary_sent.json`.
pub const SUMMARY_SENT_FILE: &str = "summary_sent.json";
/// `license/`: the license state agentos keeps (not the configured pack itself).
pub const LICENSE_DIR: &str = "license";
/// `license/last_good.pack`.
pub const LAST_GOOD_LICENSE_FILE: &str = "last_good.pack";
/// `delivery/held.json`.
pub const HELD_FILE: &str = "held.json";
/// `delivery/forget.jsonl`.
pub const FORGET_FILE: &str = "forget.jsonl";
/// `delivery/uploader.lock`.
pub const UPLOADER_LOCK_FILE: &str = "uploader.lock";
/// `claude/`: the Claude Code integration's files.
pub const CLAUDE_DIR: &str = "claude";
/// `claude/sessions/`: one cursor (and lock) per Claude Code session.
pub const CLAUDE_SESSIONS_DIR: &str = "sessions";
/// `claude/hook_status.json`.
pub const CLAUDE_HOOK_STATUS_FILE: &str = "hook_status.json";
/// `claude/hook.log`.
pub const CLAUDE_HOOK_LOG_FILE: &str = "hook.log";
/// `ingest/`: the ingest stores.
pub const INGEST_DIR: &str = "ingest";
/// `ingest/backfill-skipped.jsonl`.
pub const BACKFILL_SKIPPED_FILE: &str = "backfill-skipped.jsonl";
/// `ccp_metrics_summary.json`: the backfill summary.
pub const CCP_SUMMARY_FILE: &str = "ccp_metrics_summary.json";
/// `model_health.json`: the cached model health.
pub const MODEL_HEALTH_FILE: &str = "model_health.json";
/// `collector.db`: the collector's default SQLite database.
pub const COLLECTOR_DB_FILE: &str = "collector.db";
/// `keys/`: where `agentos license keygen` writes key pairs by default.
pub const KEYS_DIR: &str = "keys";

/// A data dir and the paths of the files in it. Nothing is created by building one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The data dir itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `agentos.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// `device_id`.
    pub fn device_id(&self) -> PathBuf {
        self.root.join(DEVICE_ID_FILE)
    }

    /// `windows.jsonl`.
    pub fn windows(&self) -> PathBuf {
        self.root.join(WINDOWS_FILE)
    }

    /// `glm_counts.jsonl`.
    pub fn glm_counts(&self) -> PathBuf {
        self.root.join(GLM_COUNTS_FILE)
    }

    /// `metrics_summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.root.join(SUMMARY_FILE)
    }

    /// `rollup_state.json`.
    pub fn rollup_state(&self) -> PathBuf {
        self.root.join(ROLLUP_STATE_FILE)
    }

    /// `current_session.json`.
    pub fn current_session(&self) -> PathBuf {
        self.root.join(SESSION_FILE)
    }

    /// `recorder.lock`.
    pub fn recorder_lock(&self) -> PathBuf {
        self.root.join(RECORDER_LOCK_FILE)
    }

    /// `delivery/`.
    pub fn delivery_dir(&self) -> PathBuf {
        self.root.join(DELIVERY_DIR)
    }

    /// `delivery/cursor.json`.
    pub fn delivery_cursor(&self) -> PathBuf {
        self.delivery_dir().join(CURSOR_FILE)
    }

    /// `delivery/state.json`.
    pub fn delivery_state(&self) -> PathBuf {
        self.delivery_dir().join(DELIVERY_STATE_FILE)
    }

    /// `delivery/rejected.jsonl`.
    pub fn delivery_rejected(&self) -> PathBuf {
        self.delivery_dir().join(REJECTED_FILE)
    }

    /// `delivery/summary_sent.json`.
    pub fn delivery_summary_sent(&self) -> PathBuf {
        self.delivery_dir().join(SUMMARY_SENT_FILE)
    }

    /// `delivery/held.json`.
    pub fn delivery_held(&self) -> PathBuf {
        self.delivery_dir().join(HELD_FILE)
    }

    /// `delivery/forget.jsonl`.
    pub fn delivery_forget(&self) -> PathBuf {
        self.delivery_dir().join(FORGET_FILE)
    }

    /// `delivery/uploader.lock`.
    pub fn delivery_lock(&self) -> PathBuf {
        self.delivery_dir().join(UPLOADER_LOCK_FILE)
    }

    /// `claude/`.
    pub fn claude_dir(&self) -> PathBuf {
        self.root.join(CLAUDE_DIR)
    }

    /// `claude/sessions/`.
    pub fn claude_sessions_dir(&self) -> PathBuf {
        self.claude_dir().join(CLAUDE_SESSIONS_DIR)
    }

    /// `claude/hook_status.json`.
    pub fn claude_hook_status(&self) -> PathBuf {
        self.claude_dir().join(CLAUDE_HOOK_STATUS_FILE)
    }

    /// `claude/hook.log`.
    pub fn claude_hook_log(&self) -> PathBuf {
        self.claude_dir().join(CLAUDE_HOOK_LOG_FILE)
    }

    /// `ingest/`.
    pub fn ingest_dir(&self) -> PathBuf {
        self.root.join(INGEST_DIR)
    }

    /// `ingest/backfill-skipped.jsonl`.
    pub fn backfill_skipped(&self) -> PathBuf {
        self.ingest_dir().join(BACKFILL_SKIPPED_FILE)
    }

    /// `ccp_metrics_summary.json`.
    pub fn ccp_summary(&self) -> PathBuf {
        self.root.join(CCP_SUMMARY_FILE)
    }

    /// `model_health.json`: the cached model health the summary shows.
    pub fn model_health_cache(&self) -> PathBuf {
        self.root.join(MODEL_HEALTH_FILE)
    }

    /// `collector.db`.
    pub fn collector_db(&self) -> PathBuf {
        self.root.join(COLLECTOR_DB_FILE)
    }

    /// `keys/`.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join(KEYS_DIR)
    }

    /// `license/last_good.pack`: the last configured pack that verified (combined form).
    pub fn last_good_license(&self) -> PathBuf {
        self.root.join(LICENSE_DIR).join(LAST_GOOD_LICENSE_FILE)
    }
}

impl AsRef<Path> for DataDir {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}
