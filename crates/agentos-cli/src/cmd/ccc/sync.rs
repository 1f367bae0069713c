//! `agentos ccc sync` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc sync`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos ccc sync`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc sync` is not implemented yet")
}
