//! `agentos ccc preview [--tier T]`: print exactly the bytes the next `agentos ccc sync` with
//! the same flags and environment would send (the same code computes both:
//! `agentos_delivery::plan`), before turning anything on.
//!
//! Text output is one line per request body part, labelled by endpoint and a tab:
//! `/v1/events<TAB><redacted envelope>` for each event and `/v1/metrics<TAB><body>` for the
//! summary. The JSON after the tab is byte for byte what the uploader serializes (it uses the
//! same `agentos_core::privacy` functions and `serde_json::to_vec`); each `/v1/events` request
//! wraps its envelopes in a batch with `device_id`, `batch_id` and `covers` (see
//! docs/protocol.md).

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::session::print_json;
use crate::global::GlobalArgs;

/// Arguments of `agentos ccc preview`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What may leave (the same flags as `agentos ccc sync`).
    #[command(flatten)]
    pub delivery: super::DeliveryArgs,
    /// Print one JSON document instead of labelled lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `agentos ccc preview`.
pub fn run(args: Args, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let settings = super::delivery_settings(g, &args.delivery)?;
    if settings.do_not_track {
        super::session::warn_line("DO_NOT_TRACK is set: nothing leaves");
    }
    let p = agentos_delivery::plan(&settings)?;
    let tier = p.cap;
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
            "events_replayed": p.replayed,
            "events_held": p.held,
            "events_forgotten": p.forgotten,
            "events_withheld": p.withheld,
            "metrics": metrics,
            "metrics_unchanged": p.metrics_unchanged,
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
    if settings.do_not_track {
        eprintln!(
            "{}: nothing leaves; {} event(s) stay pending",
            super::describe_cap(&settings),
            p.held
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{}: {} event(s) would go to /v1/events, {} held back for a later run, {} forgotten, {} never shared (local/minimized); summary to /v1/metrics: {}",
        super::describe_cap(&settings),
        p.events.len(),
        p.held,
        p.forgotten,
        p.withheld,
        if p.metrics.is_some() {
            "yes (allowlisted fields only)"
        } else if p.metrics_unchanged {
            "no (unchanged since the last upload)"
        } else {
            "no"
        }
    );
    Ok(ExitCode::SUCCESS)
}
