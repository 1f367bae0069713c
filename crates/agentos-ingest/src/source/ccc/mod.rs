//! CCC shim usage logs (`logs/usage.jsonl` and friends). See `README.md` beside this file.

pub mod loader;
pub mod parser;
pub mod paths;

pub use loader::{
    Assembler, CccTurn, ChunkJoiner, LogJob, LogOutcome, RoutingDecision, read_log, read_logs,
    split_jobs,
};
pub use parser::{Kind, Lane, LogRecord, RerouteMode, Status};
