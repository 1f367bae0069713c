//! `agentos ccc keys`: manage collector API keys (create, list, revoke).
//!
//! A key is printed once, at creation; the database keeps only its SHA-256.

use agentos_collector::{Store, StoreOptions};
use anyhow::Context as _;

use crate::context::Context;
use crate::flags::CollectorDatabase;
use crate::output::ExitStatus;

/// Subcommands of `agentos ccc keys`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a key for a tenant and print it (only this once).
    Create {
        /// Tenant the key reads and writes (1-64 of A-Z a-z 0-9 . _ -).
        #[arg(long)]
        tenant: String,
        /// What the key may do: `ingest` (post events and metrics, read the JSON API; the
        /// default), `viewer` (read the API and the dashboard, never post) or `admin` (both).
        #[arg(long, default_value = "ingest", value_parser = ["ingest", "viewer", "admin"])]
        role: String,
        /// `--database`.
        #[command(flatten)]
        db: CollectorDatabase,
    },
    /// List key ids, tenants and states (never the keys).
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// `--database`.
        #[command(flatten)]
        db: CollectorDatabase,
    },
    /// Revoke a key by id (takes effect on running collectors within 30 s).
    Revoke {
        /// The key id (the 12 hex digits after `aos_`).
        key_id: String,
        /// `--database`.
        #[command(flatten)]
        db: CollectorDatabase,
    },
}

/// Runs `agentos ccc keys`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let settings = ctx.collector()?;
    let (Command::Create { db, .. } | Command::List { db, .. } | Command::Revoke { db, .. }) = &cmd;
    let url = settings.database(db.database.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let shown = agentos_collector::store::redact_url(&url);
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .with_context(|| format!("opening the database {shown}"))?;
        let now = jiff::Timestamp::now().as_microsecond();
        let code = match cmd {
            Command::Create { tenant, role, .. } => {
                let role = agentos_collector::auth::Role::parse(&role)?;
                let (key, record) =
                    agentos_collector::auth::generate_key_with_role(&tenant, role, now)?;
                store.insert_key(&record).await.context("storing the key")?;
                println!("{key}");
                eprintln!(
                    "created {role} key {} for tenant {tenant}; store it now, it is not shown again",
                    record.key_id
                );
                ExitStatus::Ok
            }
            Command::List { tenant, .. } => {
                for k in store.keys(tenant.as_deref()).await? {
                    let created = jiff::Timestamp::from_microsecond(k.created_at_us)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    let state = match k
                        .revoked_at_us
                        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
                    {
                        Some(t) => format!("revoked {t}"),
                        None => "active".to_string(),
                    };
                    println!(
                        "{}\t{}\t{created}\t{state}\t{}",
                        k.key_id, k.tenant, k.role
                    );
                }
                ExitStatus::Ok
            }
            Command::Revoke { key_id, .. } => {
                if store.revoke_key(&key_id, now).await? {
                    eprintln!("revoked key {key_id}");
                    ExitStatus::Ok
                } else {
                    eprintln!("no active key with id {key_id}");
                    ExitStatus::Failure
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}
