//! `agentos ccc serve`: run the collector (CCC endpoint).
//!
//! Resolution (flags > env > `[collector]` in agentos.toml > defaults):
//! - listen: `--listen` / `AGENTOS_COLLECTOR_LISTEN` / `collector.listen` / `127.0.0.1:8082`;
//! - OTLP receiver: `--otlp-listen` / `AGENTOS_COLLECTOR_OTLP_LISTEN` / `collector.otlp_listen` /
//!   none (no OTLP listener; see `docs/opentelemetry.md`);
//! - database: `--database` / `AGENTOS_COLLECTOR_DATABASE` / `collector.database` /
//!   `sqlite:<data dir>/collector.db`;
//! - quotas: `--quotas` / `AGENTOS_COLLECTOR_QUOTAS` / `collector.quotas` / CCC defaults;
//! - license keys: `[license] pubkeys` + `AGENTOS_LICENSE_PUBKEYS` (the same keyring the
//!   recorder uses) + `--license-pubkeys kid=base64,…`.

use std::net::SocketAddr;
use std::path::PathBuf;

use agentos_collector::{AppState, Limits, Quotas, Store, StoreOptions};
use anyhow::Context as _;

use crate::context::Context;
use crate::output::ExitStatus;

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
    /// Most open client connections; one more is answered 503 [default: 1024].
    #[arg(long)]
    pub max_client_connections: Option<usize>,
    /// Most request bodies read or processed at once; more are answered 503 [default: 32].
    #[arg(long)]
    pub max_inflight_bodies: Option<usize>,
    /// Mark the dashboard's cookies `Secure` on every response (the collector is reachable
    /// only over TLS); otherwise only when the proxy sends `X-Forwarded-Proto: https`.
    #[arg(long)]
    pub secure_cookies: bool,
    /// Also serve the OpenTelemetry receiver (OTLP/HTTP `/v1/logs`, `/v1/metrics`) on this
    /// address, e.g. 127.0.0.1:4318 [default: off].
    #[arg(long, env = "AGENTOS_COLLECTOR_OTLP_LISTEN")]
    pub otlp_listen: Option<SocketAddr>,
    /// Largest OTLP request body in bytes, compressed and decompressed [default: 8388608].
    #[arg(long)]
    pub otlp_body_limit: Option<usize>,
    /// Most OTLP requests processed at once; more are answered 429 [default: 4].
    #[arg(long)]
    pub otlp_max_inflight: Option<usize>,
}

/// Runs `agentos ccc serve`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let settings = ctx.collector()?;
    let section = &settings.section;
    let listen = args
        .listen
        .or(section.listen)
        .map_or_else(|| DEFAULT_LISTEN.parse(), Ok)
        .context("parsing the listen address")?;
    let database = settings.database(args.database.as_deref())?;
    let quotas = match args.quotas.as_ref().or(section.quotas.as_ref()) {
        Some(path) => Quotas::load(path)?,
        None => Quotas::default(),
    };
    let mut keyring = ctx
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
        max_connections: args
            .max_client_connections
            .or(section.max_client_connections)
            .unwrap_or(defaults.max_connections),
        max_inflight_bodies: args
            .max_inflight_bodies
            .or(section.max_inflight_bodies)
            .unwrap_or(defaults.max_inflight_bodies),
        ..defaults
    };
    let store_opts = StoreOptions {
        max_connections: args
            .max_connections
            .or(section.max_connections)
            .unwrap_or(StoreOptions::default().max_connections),
        ..StoreOptions::default()
    };
    let otlp_listen = args.otlp_listen.or(section.otlp_listen);
    let otlp_defaults = agentos_collector::otlp::OtlpLimits::default();
    let otlp_limits = agentos_collector::otlp::OtlpLimits {
        max_body_bytes: args
            .otlp_body_limit
            .or(section.otlp_body_limit)
            .unwrap_or(otlp_defaults.max_body_bytes),
        max_inflight: args
            .otlp_max_inflight
            .or(section.otlp_max_inflight)
            .unwrap_or(otlp_defaults.max_inflight),
        ..otlp_defaults
    };
    let prices = ctx.ingest()?.prices(None)?;
    let secure_cookies = args.secure_cookies || section.secure_cookies.unwrap_or(false);
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
            .prices(prices)
            .secure_cookies(secure_cookies)
            .otlp(otlp_limits)
            .build();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        println!(
            "agentos collector listening on http://{addr} (database {shown_db}, {kids} license key(s))"
        );
        // One signal stops both listeners: the OTLP one is told through a channel.
        let (otlp_stop, otlp_stopped) = tokio::sync::watch::channel(false);
        let otlp_task = match otlp_listen {
            Some(at) => {
                let l = tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding the OTLP listener {at}"))?;
                println!(
                    "agentos collector OTLP receiver listening on http://{}",
                    l.local_addr()?
                );
                let mut stopped = otlp_stopped.clone();
                Some(tokio::spawn(agentos_collector::serve_otlp(
                    l,
                    state.clone(),
                    async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                )))
            }
            None => None,
        };
        let served =
            agentos_collector::serve(listener, state, agentos_collector::shutdown_signal()).await;
        let _ = otlp_stop.send(true);
        if let Some(task) = otlp_task {
            task.await
                .context("the OTLP listener's task")?
                .context("serving OTLP")?;
        }
        served.context("serving")?;
        // In-flight requests have finished (each commits before answering); release the pools.
        store.close().await;
        eprintln!("agentos collector stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitStatus::Ok)
}
