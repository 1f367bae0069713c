//! `agentos ccc preview` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc preview`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos ccc preview`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos ccc preview` is not implemented yet")
}
