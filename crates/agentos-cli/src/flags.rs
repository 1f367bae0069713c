//! Flag groups that several subcommands accept, declared once and `#[command(flatten)]`ed, so
//! a flag has one name, one env var and one help text wherever it appears.
//!
//! A flag whose help says something specific to its command (e.g. `--json` of
//! `agentos ccc session start`, which replaces the bare session id) stays in that command.

use std::path::{Path, PathBuf};

/// `--threads`: worker threads for the ingest-family commands.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Threads {
    /// Worker threads (0 = all cores; `[ingest] threads` in the config).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `--prices`: a price table replacing the embedded one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Prices {
    /// Price table file whose entries add to or replace the embedded ones (JSON:
    /// `{"as_of": "YYYY-MM-DD", "models": {"family": {"input": USD/Mtok, "output": …,
    /// "cache_creation": …, "cache_read": …}}}`; `[ingest] prices` in the config).
    #[arg(long)]
    pub prices: Option<PathBuf>,
}

impl Prices {
    /// The flag's path, if given.
    pub fn path(&self) -> Option<&Path> {
        self.prices.as_deref()
    }
}

/// `--strict`: skipped input lines make the run fail.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Strict {
    /// Exit 1 when a line had to be skipped.
    #[arg(long)]
    pub strict: bool,
}

/// `--threads`, `--prices` and `--strict`: the run flags of the commands that read sources and
/// price their turns (`agentos ccc backfill`, `agentos ccc report`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PricedRun {
    /// `--threads`.
    #[command(flatten)]
    pub threads: Threads,
    /// `--prices`.
    #[command(flatten)]
    pub prices: Prices,
    /// `--strict`.
    #[command(flatten)]
    pub strict: Strict,
}

/// `--json` of the commands whose JSON output is simply their report.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct JsonReport {
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
}

/// `--database` of `agentos ccc keys …`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CollectorDatabase {
    /// Collector database (default: as `agentos ccc serve`).
    #[arg(long, env = "AGENTOS_COLLECTOR_DATABASE")]
    pub database: Option<String>,
}

/// The flags that decide what leaves, shared by `ccc sync` and `ccc preview` so that the same
/// flags and environment give the same answer in both.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeliveryArgs {
    /// Collector base URL (default: `AGENTOS_CCC_URL`, else `[ccc] url`).
    #[arg(long)]
    pub url: Option<String>,
    /// API key (default: `AGENTOS_CCC_API_KEY`, else `[ccc] api_key`).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Highest tier anything may leave under in this run (default: `AGENTOS_TIER`, else
    /// `[ccc] tier`, else none: each event leaves under the tier it was recorded under).
    /// Events recorded under a higher tier are held back, not dropped: a later run whose tier
    /// allows them sends them. Always bounded by the license in force; `DO_NOT_TRACK=1` holds
    /// everything back.
    #[arg(long)]
    pub tier: Option<agentos_core::tier::Tier>,
}
