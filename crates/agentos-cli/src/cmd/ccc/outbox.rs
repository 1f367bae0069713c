//! `agentos ccc outbox` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Subcommands of `agentos ccc outbox`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Todo,
}

/// Runs `agentos ccc outbox`.
pub fn run(_cmd: Command, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc outbox` is not implemented yet")
}
