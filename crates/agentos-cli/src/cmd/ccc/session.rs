//! `agentos ccc session` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Subcommands of `agentos ccc session`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Todo,
}

/// Runs `agentos ccc session`.
pub fn run(_cmd: Command, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc session` is not implemented yet")
}
