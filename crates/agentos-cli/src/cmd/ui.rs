//! `agentos ui [--listen 127.0.0.1:PORT]`: the team dashboard's pages for one person, from this
//! machine's data (the ingest store and the recorder log), on loopback, without sign-in.
//!
//! The pages read a private collector database (`<data_dir>/ui/dashboard.db`) that is rebuilt
//! from the sources at every start (see `agentos_collector::local`), so what they show is
//! exactly what `agentos report` and the recorder log hold at that moment.

use std::net::SocketAddr;

use agentos_collector::{AppState, Store, StoreOptions};
use agentos_core::license::Keyring;
use agentos_ingest::ingest::load_all;
use agentos_ingest::store::{SourceKind, list_stores};
use anyhow::Context as _;

use crate::context::Context;
use crate::output::ExitStatus;

/// Default address: loopback, a port next to the collector's.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8083";

/// Arguments of `agentos ui`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; loopback only [default: 127.0.0.1:8083].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Runs `agentos ui`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let listen: SocketAddr = match args.listen {
        Some(a) => a,
        None => DEFAULT_LISTEN
            .parse()
            .context("parsing the default address")?,
    };
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "agentos ui serves without sign-in, so it listens on loopback only ({listen} is not); \
             for a team, run `agentos ccc serve` and sign in with a viewer key"
        );
    }
    let s = ctx.ingest()?;
    let data_dir = s.data_dir.clone();
    let prices = s.prices(None)?;
    let set = load_all(&data_dir, None).context("loading the ingest store")?;
    let has_claude = list_stores(&data_dir)
        .iter()
        .any(|(k, _)| *k == SourceKind::Claude);
    let log_path = agentos_config::DataDir::new(&data_dir).windows();
    let log: Vec<String> = match std::fs::read_to_string(&log_path) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", log_path.display())),
    };
    let dir = data_dir.join("ui");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("dashboard.db");
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    let url = format!("sqlite:{}", db.display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .with_context(|| format!("opening {}", db.display()))?;
        let now = jiff::Timestamp::now().as_microsecond();
        let imported = agentos_collector::local::import(&store, &set, has_claude, &log, now)
            .await
            .context("filling the dashboard database")?;
        eprintln!(
            "agentos ui: {} usage record(s) from the ingest store, {} event(s) from {}{}",
            imported.records,
            imported.log_events,
            log_path.display(),
            if imported.skipped_claude_turns > 0 {
                format!(
                    " ({} Claude Code turn(s) of the log left out: the ingest store has them)",
                    imported.skipped_claude_turns
                )
            } else {
                String::new()
            }
        );
        let state = AppState::builder(store.clone(), Keyring::new())
            .prices(prices)
            .local_ui(agentos_collector::local::LOCAL_TENANT)
            .build();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        println!("agentos ui on http://{}/", listener.local_addr()?);
        agentos_collector::serve(listener, state, agentos_collector::shutdown_signal())
            .await
            .context("serving")?;
        store.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitStatus::Ok)
}
