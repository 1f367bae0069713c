//! Input sources.
//!
//! # Adding an agent
//!
//! An agent that writes one append-only JSON-lines log per session (Codex CLI, Gemini CLI,
//! OpenCode…) is one folder, `source/<agent>/`, with one type implementing [`AgentSource`]:
//!
//! * [`AgentSource::roots`] and [`AgentSource::files`] say where its logs are;
//! * [`AgentSource::read`] turns the lines of one file, from a byte offset and a saved
//!   [`AgentSource::State`], into [`crate::record::UsageRecord`]s (each with a
//!   [`crate::DedupKey`] that is the same whenever the same usage is read again);
//! * a `SourceKind` variant names its store, and one arm per command wires it into
//!   `ingest`/`report` (`--source <agent>`).
//!
//! Everything else comes from [`crate::agent`]: the incremental store with per-file checkpoints
//! (the state at each checkpoint is saved too, so a resumed file needs nothing before its
//! offset), de-duplication, torn lines counted and skipped, parallel reads in path order, the
//! progress bar and `--since` skipping files last written before the range. `source/codex/` is
//! the worked example. Claude Code transcripts and CCC shim logs predate the trait: they split
//! huge files into chunks (Claude) or assemble requests across lines and files (CCC).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::account::Progress;
use crate::agent::{AgentJob, AgentOutcome};
use crate::error::IngestError;
use crate::store::SourceKind;
use crate::time::TimeRange;

pub mod ccc;
pub mod claude;
pub mod codex;
pub mod recorder;
pub mod results;
pub mod usage_snapshot;

/// One agent's session logs (see the module docs for what implementing it buys).
pub trait AgentSource {
    /// Which store holds its records.
    const KIND: SourceKind;
    /// What a reader must remember at a checkpoint to carry on from there (e.g. the model of
    /// the last `turn_context`); saved in the store beside the checkpoint.
    type State: Clone + Default + Serialize + DeserializeOwned + Send + Sync;

    /// The directories to read: `path` when given (an error when it does not exist), else the
    /// agent's defaults that exist.
    fn roots(path: Option<&Path>) -> Result<Vec<PathBuf>, IngestError>;

    /// Where [`AgentSource::roots`] looks, existing or not (for "no data found" messages).
    fn searched(path: Option<&Path>) -> Vec<PathBuf>;

    /// The log files under one root, sorted by path.
    fn files(root: &Path) -> Vec<PathBuf>;

    /// Reads one file from `job.start`, starting from `job.state`.
    fn read(
        job: &AgentJob<Self::State>,
        range: &TimeRange,
        progress: Option<&Progress>,
    ) -> AgentOutcome<Self::State>;
}
