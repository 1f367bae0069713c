//! `agentos ccc backfill` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc backfill`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos ccc backfill`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc backfill` is not implemented yet")
}
