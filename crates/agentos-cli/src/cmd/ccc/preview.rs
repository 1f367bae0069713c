//! `agentos ccc preview --tier T`: print exactly the bytes that would leave this machine for
//! the current data under tier T, before turning anything on.
//!
//! Text output is one line per request body part, labelled by endpoint and a tab:
//! `/v1/events<TAB><redacted envelope>` for each event and `/v1/metrics<TAB><body>` for the
//! summary. The JSON after the tab is byte for byte what the uploader serializes (it uses the
//! same `agentos_core::privacy` functions and `serde_json::to_vec`); each `/v1/events` request
//! wraps its envelopes in a batch with `device_id`, `batch_id` and `covers` (see
//! docs/protocol.md).

use std::io::Write as _;
use std::process::ExitCode;

use agentos_core::tier::Tier;
use serde_json::{Value, json};

use super::session::{load_config, print_json, report_log_warnings};
use crate::global::GlobalArgs;

/// Arguments of `agentos ccc preview`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tier to preview (default: the configured `[ccc] tier`).
    #[arg(long)]
    pub tier: Option<Tier>,
    /// Print one JSON document instead of labelled lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `agentos ccc preview`.
pub fn run(args: Args, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(g)?;
    let tier = args.tier.unwrap_or(cfg.ccc.tier);
    if cfg.do_not_track && tier != Tier::Local {
        super::session::warn_line(
            "DO_NOT_TRACK is set: delivery forces tier local, so in practice nothing leaves",
        );
    }
    let p = agentos_recorder::preview::preview(&cfg, tier)?;
    report_log_warnings(&p.warnings);
    if args.json {
        let events: Vec<Value> = p
            .events
            .iter()
            .map(|b| serde_json::from_slice(b))
            .collect::<Result<_, _>>()?;
        let metrics: Option<Value> = p
            .metrics
            .as_deref()
            .map(serde_json::from_slice)
            .transpose()?;
        print_json(&json!({
            "tier": tier,
            "events": events,
            "events_withheld": p.withheld,
            "metrics": metrics,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for e in &p.events {
        out.write_all(b"/v1/events\t")?;
        out.write_all(e)?;
        out.write_all(b"\n")?;
    }
    if let Some(m) = &p.metrics {
        out.write_all(b"/v1/metrics\t")?;
        out.write_all(m)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!(
        "tier {tier}: {} event(s) would go to /v1/events, {} withheld; summary to /v1/metrics: {}",
        p.events.len(),
        p.withheld,
        if p.metrics.is_some() {
            "yes (allowlisted fields only)"
        } else {
            "no"
        }
    );
    Ok(ExitCode::SUCCESS)
}
