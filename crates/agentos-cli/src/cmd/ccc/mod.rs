//! `agentos ccc …` subcommands.
pub mod backfill;
pub mod ingest;
pub mod keys;
pub mod outbox;
pub mod preview;
pub mod report;
pub mod rollup;
pub mod serve;
pub mod session;
pub mod sync;
pub mod turn;

use agentos_core::privacy::Tier;
use agentos_delivery::Settings;
use anyhow::Context as _;

use crate::global::GlobalArgs;

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
    pub tier: Option<Tier>,
}

/// Delivery settings from the configuration and the delivery flags.
pub(crate) fn delivery_settings(g: &GlobalArgs, a: &DeliveryArgs) -> anyhow::Result<Settings> {
    let cfg = session::load_config(g)?;
    let mut settings = Settings::from_config(&cfg).context("resolving delivery settings")?;
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

/// One line saying what bounds the cap, e.g. `tier full (as recorded; license allows full)`.
pub(crate) fn describe_cap(s: &Settings) -> String {
    let chosen = match s.tier {
        Some(t) => format!("--tier {t}"),
        None => "as recorded".to_owned(),
    };
    if s.do_not_track {
        return format!("tier local ({chosen}; DO_NOT_TRACK is set: nothing leaves)");
    }
    format!(
        "tier {} ({chosen}; license allows {})",
        s.cap(),
        s.license_ceiling
    )
}
