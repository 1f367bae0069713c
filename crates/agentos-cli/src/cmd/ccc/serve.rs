//! `agentos ccc serve` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos ccc serve`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc serve` is not implemented yet")
}
