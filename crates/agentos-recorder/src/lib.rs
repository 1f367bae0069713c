//! The session recorder: the local side of agentos that records sessions and turns.
//!
//! It appends v1 envelopes to `windows.jsonl`, keeps the rollup (`metrics_summary.json`,
//! `rollup_state.json`) and the GLM counts current, tracks the current session, and checks the
//! license entitlement a session's tier needs.
//!
//! What would leave the machine is not this crate's business: `agentos_delivery::plan` computes
//! it (for `agentos ccc preview`, `agentos ccc sync` and `agentos demo` alike).
//!
//! Configuration, the data-dir layout (every file name), durable file helpers, the device id and
//! the license-pack reader belong to `agentos-config`; this crate only records.

pub mod licensing;
pub mod log;
pub mod recorder;

pub use licensing::LicenseProblem;
pub use log::{LogState, LogWarning};
pub use recorder::{
    CurrentSession, Paths, Recorded, Recorder, RecorderError, StartOutcome, StartRequest,
};
