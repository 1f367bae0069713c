//! `agentos ccc serve`: run the collector (CCC endpoint).
//!
//! Resolution (flags > env > `[collector]` in agentos.toml > defaults):
//! - listen: `--listen` / `AGENTOS_COLLECTOR_LISTEN` / `collector.listen` / `127.0.0.1:8082`;
//! - database: `--database` / `AGENTOS_COLLECTOR_DATABASE` / `collector.database` /
//!   `sqlite:<data dir>/collector.db`;
//! - quotas: `--quotas` / `AGENTOS_COLLECTOR_QUOTAS` / `collector.quotas` / CCC defaults;
//! - license keys: `[license] pubkeys` + `AGENTOS_LICENSE_PUBKEYS` (the same keyring the
//!   recorder uses) + `--license-pubkeys kid=base64,…`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentos_collector::{AppState, Limits, Quotas, Store, StoreOptions};
use agentos_config::{CollectorConfig, Config, DataDir};
use anyhow::Context as _;

use crate::global::GlobalArgs;

/// Default listen address (loopback: exposing the collector is a deliberate act).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8082";

/// Arguments of `agentos ccc serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1:8082].
    #[arg(long, env = "AGENTOS_COLLECTOR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Database: `sqlite:PATH` or `postgres://user@host:port/db` [default: sqlite file in the data dir].
    #[arg(long, env = "AGENTOS_COLLECTOR_DATABASE")]
    pub database: Option<String>,
    /// Budgets for /v1/usage, a `ccp.quotas.v1` JSON file.
    #[arg(long, env = "AGENTOS_COLLECTOR_QUOTAS")]
    pub quotas: Option<PathBuf>,
    /// Extra trusted license keys, `kid=base64,…` (added to `[license] pubkeys` and
    /// `AGENTOS_LICENSE_PUBKEYS`).
    #[arg(long)]
    pub license_pubkeys: Option<String>,
    /// Largest accepted request body in bytes [default: 1048576].
    #[arg(long)]
    pub body_limit: Option<usize>,
    /// Most events per batch [default: 1000].
    #[arg(long)]
    pub batch_limit: Option<usize>,
    /// PostgreSQL pool size [default: 16].
    #[arg(long)]
    pub max_connections: Option<u32>,
}

/// Loads the config and its `[collector]` section.
pub(crate) fn load_config(g: &GlobalArgs) -> anyhow::Result<(Config, CollectorConfig)> {
    let cfg = Config::load(g.data_dir.as_deref(), g.config.as_deref())
        .context("loading the agentos configuration")?;
    let section = cfg.collector.clone();
    Ok((cfg, section))
}

/// The database URL: flag/env, then config, then an SQLite file in the data dir (created).
pub(crate) fn resolve_database(
    flag: Option<&str>,
    section: &CollectorConfig,
    data_dir: &Path,
) -> anyhow::Result<String> {
    if let Some(url) = flag.or(section.database.as_deref()) {
        return Ok(url.to_string());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    Ok(format!(
        "sqlite:{}",
        DataDir::new(data_dir).collector_db().display()
    ))
}

/// Runs `agentos ccc serve`.
pub fn run(args: Args, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (cfg, section) = load_config(g)?;
    let listen = args
        .listen
        .or(section.listen)
        .map_or_else(|| DEFAULT_LISTEN.parse(), Ok)
        .context("parsing the listen address")?;
    let database = resolve_database(args.database.as_deref(), &section, cfg.data_dir())?;
    let quotas = match args.quotas.as_ref().or(section.quotas.as_ref()) {
        Some(path) => Quotas::load(path)?,
        None => Quotas::default(),
    };
    let mut keyring = cfg
        .license
        .keyring()
        .context("reading [license] pubkeys / AGENTOS_LICENSE_PUBKEYS")?;
    if let Some(extra) = &args.license_pubkeys {
        keyring
            .extend_from_env(extra)
            .context("parsing --license-pubkeys")?;
    }
    let defaults = Limits::default();
    let limits = Limits {
        body_bytes: args
            .body_limit
            .or(section.body_limit)
            .unwrap_or(defaults.body_bytes),
        batch_events: args
            .batch_limit
            .or(section.batch_limit)
            .unwrap_or(defaults.batch_events),
    };
    let store_opts = StoreOptions {
        max_connections: args
            .max_connections
            .or(section.max_connections)
            .unwrap_or(StoreOptions::default().max_connections),
        ..StoreOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let shown_db = agentos_collector::store::redact_url(&database);
        let store = Store::connect(&database, &store_opts)
            .await
            .with_context(|| format!("opening the database {shown_db}"))?;
        if keyring.is_empty() {
            eprintln!(
                "agentos: warning: no license public keys configured ([license] pubkeys, \
                 AGENTOS_LICENSE_PUBKEYS or --license-pubkeys): every upload will be refused with 403"
            );
        }
        let kids = keyring.len();
        let state = AppState::builder(store.clone(), keyring)
            .quotas(quotas)
            .limits(limits)
            .build();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        println!(
            "agentos collector listening on http://{addr} (database {shown_db}, {kids} license key(s))"
        );
        agentos_collector::serve(listener, state, agentos_collector::shutdown_signal())
            .await
            .context("serving")?;
        // In-flight requests have finished (each commits before answering); release the pools.
        store.close().await;
        eprintln!("agentos collector stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_flags_the_database_is_an_sqlite_file_in_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = resolve_database(None, &CollectorConfig::default(), dir.path())
            .expect("default database");
        assert_eq!(
            url,
            format!("sqlite:{}", dir.path().join("collector.db").display())
        );
    }

    #[test]
    fn the_flag_wins_over_the_config_file() {
        let section = CollectorConfig {
            database: Some("postgres://cfg".into()),
            ..CollectorConfig::default()
        };
        let url = resolve_database(Some("sqlite:/x.db"), &section, Path::new("/nonexistent"))
            .expect("flag");
        assert_eq!(url, "sqlite:/x.db");
    }
}
