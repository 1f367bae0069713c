//! `agentos ccc turn` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc turn`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos ccc turn`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc turn` is not implemented yet")
}
