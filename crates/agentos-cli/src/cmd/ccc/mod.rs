//! `agentos ccc …` subcommands.
pub mod backfill;
pub mod ingest;
pub mod keys;
pub mod outbox;
pub mod preview;
pub mod report;
pub mod rollup;
pub mod serve;
pub mod session;
pub mod sync;
pub mod turn;
