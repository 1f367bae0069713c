//! The local side of agentos: configuration, durable file helpers and the session recorder.
//!
//! Data dir layout (all files are created on demand):
//!
//! ```text
//! <data_dir>/
//!   agentos.toml          optional config (see `config`)
//!   device_id             this device's UUID, created once
//!   windows.jsonl         the event log: one v1 envelope per line, seq 1..N gap-free
//!   glm_counts.jsonl      one line per turn served by a GLM model
//!   metrics_summary.json  the rollup (pretty, sorted keys, replaced atomically)
//!   rollup_state.json     rollup accumulators + last seq + the log length they cover
//!   current_session.json  the session shell hooks are recording into
//!   recorder.lock         held while one record is appended (cross-process)
//! ```

pub mod config;
pub mod durable;
pub mod licensing;
pub mod log;
pub mod preview;
pub mod recorder;

pub use config::{Config, ConfigError};
pub use durable::{FileLock, atomic_write};
pub use licensing::LicenseProblem;
pub use log::{LogState, LogWarning};
pub use recorder::{
    CurrentSession, Paths, Recorded, Recorder, RecorderError, StartOutcome, StartRequest,
};
