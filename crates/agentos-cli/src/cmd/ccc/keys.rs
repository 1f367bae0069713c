//! `agentos ccc keys` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Subcommands of `agentos ccc keys`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Todo,
}

/// Runs `agentos ccc keys`.
pub fn run(_cmd: Command, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc keys` is not implemented yet")
}
