//! CCC shim usage logs (`logs/usage.jsonl` and friends). See `README.md` beside this file.

pub mod loader;
pub mod parser;
pub mod paths;

pub use loader::{Assembler, CccTurn, LogJob, LogOutcome, RoutingDecision, read_log, read_logs};
pub use parser::{Kind, Lane, LogRecord, RerouteMode, Status};
