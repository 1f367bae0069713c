//! `agentos demo` (not yet implemented).

use std::process::ExitCode;

use crate::global::GlobalArgs;

/// Arguments of `agentos demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentos demo`.
pub fn run(_args: Args, _g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentos demo` is not implemented yet")
}
