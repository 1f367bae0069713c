//! `agentos ccc ingest` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Subcommands of `agentos ccc ingest`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Todo,
}

/// Runs `agentos ccc ingest`.
pub fn run(_cmd: Command, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc ingest` is not implemented yet")
}
