//! What every subcommand may need to know about its environment: the global flags, the
//! configuration (flags > env > `agentos.toml` > defaults), the data dir, the license keyring,
//! the collector and delivery settings, and the `[collector]` / `[ingest]` sections.
//!
//! This is the only file of the CLI that loads the configuration, so moving to another
//! configuration crate touches this file alone; subcommands name the type as
//! [`crate::context::Config`].

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use agentos_ingest::PriceTable;
use anyhow::Context as _;

pub use agentos_config::atomic_write;
pub use agentos_config::layout::CONFIG_FILE as CONFIG_FILE_NAME;
pub use agentos_config::{
    CollectorConfig as CollectorSection, Config, IngestConfig as IngestSection,
};

/// Flags accepted by every subcommand; listed after a command's own flags in `--help`, under
/// their own heading.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
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

/// The resolved environment of one invocation, built once in `main` and lent to every
/// subcommand.
///
/// The configuration is loaded on first use, not up front: `agentos demo` and
/// `agentos license issue` must keep working when the configured file is broken or missing.
#[derive(Debug)]
pub struct Context {
    global: GlobalArgs,
    config: OnceCell<Config>,
}

impl Context {
    /// A context for these global flags (nothing is read yet).
    pub fn new(global: GlobalArgs) -> Context {
        Context {
            global,
            config: OnceCell::new(),
        }
    }

    /// The global flags that choose the data dir and config file, as arguments (`--data-dir D`,
    /// `--config F`), for commands agentos writes somewhere else to run later (Claude Code
    /// hooks) or starts in the background: they must find the same data dir without this
    /// process's environment.
    pub fn global_flag_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(d) = &self.global.data_dir {
            out.push("--data-dir".to_string());
            out.push(d.display().to_string());
        }
        if let Some(c) = &self.global.config {
            out.push("--config".to_string());
            out.push(c.display().to_string());
        }
        out
    }

    /// The configuration, loaded on the first call.
    ///
    /// # Errors
    /// When no data dir can be resolved, the config file is missing or malformed, or an
    /// `AGENTOS_*` variable is unusable.
    pub fn config(&self) -> anyhow::Result<&Config> {
        if let Some(cfg) = self.config.get() {
            return Ok(cfg);
        }
        let cfg = Config::load(
            self.global.data_dir.as_deref(),
            self.global.config.as_deref(),
        )?;
        Ok(self.config.get_or_init(|| cfg))
    }

    /// The resolved data dir.
    ///
    /// # Errors
    /// As [`Context::config`].
    pub fn data_dir(&self) -> anyhow::Result<&Path> {
        Ok(self.config()?.data_dir())
    }

    /// The trusted license keys: `[license] pubkeys` plus `AGENTOS_LICENSE_PUBKEYS`.
    ///
    /// # Errors
    /// As [`Context::config`], or when a configured key is not valid base64 Ed25519.
    pub fn keyring(&self) -> anyhow::Result<agentos_core::license::Keyring> {
        Ok(self.config()?.license.keyring()?)
    }

    /// Delivery settings (collector URL, API key, tier, batching) from the configuration.
    ///
    /// # Errors
    /// As [`Context::config`], or when the delivery settings are inconsistent.
    pub fn delivery_settings(&self) -> anyhow::Result<agentos_delivery::Settings> {
        agentos_delivery::Settings::from_config(self.config()?)
            .context("resolving delivery settings")
    }

    /// Delivery settings with the delivery flags applied on top: the one resolution `ccc sync`,
    /// `ccc preview` and `ccc outbox forget` share.
    ///
    /// # Errors
    /// As [`Context::delivery_settings`].
    pub fn delivery_settings_with(
        &self,
        a: &crate::flags::DeliveryArgs,
    ) -> anyhow::Result<agentos_delivery::Settings> {
        let mut settings = self.delivery_settings()?;
        if let Some(url) = &a.url {
            settings.url = Some(url.clone());
        }
        if let Some(key) = &a.api_key {
            settings.api_key = Some(key.clone());
        }
        if let Some(tier) = a.tier {
            settings.tier = Some(tier);
        }
        Ok(settings)
    }

    /// The collector commands' settings: the `[collector]` section and the data dir.
    ///
    /// # Errors
    /// When the configuration does not load or the section has unknown or mistyped keys.
    pub fn collector(&self) -> anyhow::Result<CollectorSettings<'_>> {
        let cfg = self.config().context("loading the agentos configuration")?;
        let section = cfg.collector.clone();
        Ok(CollectorSettings { cfg, section })
    }

    /// The ingest-family commands' settings: the `[ingest]` section and the data dir.
    ///
    /// # Errors
    /// When the configuration does not load or the section has unknown or mistyped keys.
    pub fn ingest(&self) -> anyhow::Result<IngestSettings> {
        let cfg = self.config().context("loading the agentos configuration")?;
        let section = cfg.ingest.clone();
        Ok(IngestSettings {
            data_dir: cfg.data_dir().to_path_buf(),
            section,
        })
    }
}

/// How long a background upload may keep trying.
pub const BACKGROUND_SYNC_TIMEOUT: &str = "60s";

/// Starts one detached `agentos <global_args> ccc sync` for `data_dir`, with no terminal and in
/// its own process group, and returns at once: the caller never waits on the network. Returns
/// `Ok(false)` without starting anything when an uploader already holds the data dir (it, or
/// the next sync, sends what is new; the uploader lock means at most one runs anyway).
///
/// # Errors
/// When the agentos binary cannot be located or started.
pub fn spawn_background_sync(global_args: &[String], data_dir: &Path) -> std::io::Result<bool> {
    let lock = agentos_config::DataDir::new(data_dir).delivery_lock();
    spawn_detached_unless_locked(
        global_args,
        &["ccc", "sync", "--timeout", BACKGROUND_SYNC_TIMEOUT],
        &lock,
    )
}

/// Starts `agentos <global_args> <args>` detached (no terminal, own process group, not waited
/// for) unless `lock` is held by a running process; `Ok(false)` when it is.
///
/// # Errors
/// When the agentos binary cannot be located or started.
pub fn spawn_detached_unless_locked(
    global_args: &[String],
    args: &[&str],
    lock: &Path,
) -> std::io::Result<bool> {
    if lock.exists() && matches!(agentos_config::FileLock::try_acquire(lock), Ok(None)) {
        return Ok(false);
    }
    spawn_detached(global_args, args).map(|()| true)
}

/// Starts `agentos <global_args> <args>` detached: no terminal, its own process group (a
/// terminal or a host tool ending ours must not end the child), not waited for (it reparents
/// to init when this process exits).
///
/// # Errors
/// When the agentos binary cannot be located or started.
pub fn spawn_detached(global_args: &[String], args: &[&str]) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(global_args)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
    }
    cmd.spawn().map(|_| ())
}

/// Loads the configuration of one data dir and config file, outside the invocation's own
/// (the demo writes several data dirs, each with its own `agentos.toml`).
///
/// # Errors
/// As [`Context::config`].
pub fn load_config_for(data_dir: &Path, config_file: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(Some(data_dir), Some(config_file))?)
}

/// Resolved settings of `agentos ccc serve` and `agentos ccc keys`.
#[derive(Debug)]
pub struct CollectorSettings<'a> {
    /// The whole configuration (for the license keyring and the data dir).
    pub cfg: &'a Config,
    /// The `[collector]` section.
    pub section: CollectorSection,
}

impl CollectorSettings<'_> {
    /// The database URL: flag/env, then `[collector] database`, then an SQLite file in the data
    /// dir (the dir is created).
    ///
    /// # Errors
    /// When the data dir cannot be created.
    pub fn database(&self, flag: Option<&str>) -> anyhow::Result<String> {
        resolve_database(flag, &self.section, self.cfg.data_dir())
    }
}

fn resolve_database(
    flag: Option<&str>,
    section: &CollectorSection,
    data_dir: &Path,
) -> anyhow::Result<String> {
    if let Some(url) = flag.or(section.database.as_deref()) {
        return Ok(url.to_string());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    Ok(format!(
        "sqlite:{}",
        agentos_config::DataDir::new(data_dir)
            .collector_db()
            .display()
    ))
}

/// Resolved settings of the ingest, backfill and report commands.
#[derive(Debug)]
pub struct IngestSettings {
    /// The data dir (the ingest store lives in `<data_dir>/ingest/`).
    pub data_dir: PathBuf,
    /// The `[ingest]` section.
    pub section: IngestSection,
}

impl IngestSettings {
    /// Worker threads: the flag, else `[ingest] threads`, else 0 (all cores).
    pub fn threads(&self, flag: Option<usize>) -> usize {
        flag.or(self.section.threads).unwrap_or(0)
    }

    /// The price table: the flag, else `[ingest] prices`, else the embedded one.
    ///
    /// # Errors
    /// When the override file does not load.
    pub fn prices(&self, flag: Option<&Path>) -> anyhow::Result<PriceTable> {
        match flag.or(self.section.prices.as_deref()) {
            Some(p) => PriceTable::with_override(p)
                .with_context(|| format!("loading the price table {}", p.display())),
            None => Ok(PriceTable::embedded()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_flags_the_database_is_an_sqlite_file_in_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = resolve_database(None, &CollectorSection::default(), dir.path())
            .expect("default database");
        assert_eq!(
            url,
            format!("sqlite:{}", dir.path().join("collector.db").display())
        );
    }

    #[test]
    fn the_flag_wins_over_the_config_file() {
        let section = CollectorSection {
            database: Some("postgres://cfg".into()),
            ..CollectorSection::default()
        };
        let url = resolve_database(Some("sqlite:/x.db"), &section, Path::new("/nonexistent"))
            .expect("flag");
        assert_eq!(url, "sqlite:/x.db");
    }

    #[test]
    fn the_configuration_is_loaded_once_and_only_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join(CONFIG_FILE_NAME);
        let ctx = Context::new(GlobalArgs {
            data_dir: Some(dir.path().join("data")),
            config: Some(config.clone()),
            log: "warn".into(),
        });
        // A missing explicit config file is an error only once somebody needs the config.
        assert!(ctx.config().is_err());
        std::fs::write(&config, "[ccc]\ntier = \"full\"\n").expect("config");
        let first: *const Config = ctx.config().expect("loads");
        std::fs::write(&config, "[ccc]\ntier = \"minimized\"\n").expect("config");
        let again = ctx.config().expect("cached");
        assert!(std::ptr::eq(first, again));
        assert_eq!(again.ccc.tier, Some(agentos_core::tier::Tier::Full));
    }
}
