//! `agentos ccc rollup` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc rollup`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos ccc rollup`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc rollup` is not implemented yet")
}
