//! `agentos license` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Subcommands of `agentos license`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Todo,
}

/// Runs `agentos license`.
pub fn run(_cmd: Command, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos license` is not implemented yet")
}
