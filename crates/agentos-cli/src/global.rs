//! Options shared by every subcommand, and process-wide setup.

use std::path::PathBuf;

/// Flags accepted by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Data directory (default: `$AGENTOS_DATA_DIR`, else the XDG data dir).
    #[arg(long, global = true, env = "AGENTOS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: `agentos.toml` in the XDG config dir, else in the data dir).
    #[arg(long, global = true, env = "AGENTOS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log filter for diagnostics on stderr (e.g. `info`, `agentos_delivery=debug`).
    #[arg(long, global = true, env = "AGENTOS_LOG", default_value = "warn")]
    pub log: String,
}

/// Installs the stderr diagnostics subscriber (only the binary does this, never a library).
pub fn init_tracing(g: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&g.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
