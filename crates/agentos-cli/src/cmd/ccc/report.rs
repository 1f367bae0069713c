//! `agentos ccc report` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc report`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos ccc report`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc report` is not implemented yet")
}
