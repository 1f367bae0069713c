//! Ingest of CCC shim usage logs, results files, `/v1/usage` snapshots and Claude Code
//! transcripts: exact (one turn per request, explicit de-duplication), tolerant (torn lines are
//! counted and skipped, never fatal), incremental (per-file checkpoints) and fast (memchr line
//! splitting, cheap prefilters before serde, deterministic parallel reads).
//!
//! Layout: `source/<name>/{paths,parser,loader}.rs` per source (each with a README on quirks),
//! [`record`] for the normalised record, [`dedup`] for the key and its tie-break rule,
//! [`checkpoint`] and [`store`] for incremental runs, [`report`] for the calendar reports and
//! [`backfill`] for the summary document, [`forward`] for handing ingested Codex turns to the
//! recorder log (and so to the collector).

pub mod account;
pub mod agent;
pub mod backfill;
pub mod blocks;
pub mod ccusage;
pub mod checkpoint;
pub mod chunk;
pub mod dedup;
pub mod error;
pub mod forward;
pub mod ingest;
pub mod parallel;
pub mod pricing;
pub mod record;
pub mod report;
pub mod scan;
pub mod source;
pub mod store;
pub mod time;

pub use account::{Account, Progress, SkipReason, SkippedLine};
pub use dedup::DedupKey;
pub use error::IngestError;
pub use pricing::{Price, PriceTable, Tokens};
