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

use serde_json::{Value, json};

use crate::context::Context;
use crate::output::{ExitStatus, describe_cap, print_json, warn_line};

/// Arguments of `agentos ccc preview`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What may leave (the same flags as `agentos ccc sync`).
    #[command(flatten)]
    pub delivery: crate::flags::DeliveryArgs,
    /// Print one JSON document instead of labelled lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `agentos ccc preview`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let settings = ctx.delivery_settings_with(&args.delivery)?;
    if settings.do_not_track {
        warn_line("DO_NOT_TRACK is set: nothing leaves");
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
        return Ok(ExitStatus::Ok);
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
            describe_cap(&settings),
            p.held
        );
        return Ok(ExitStatus::Ok);
    }
    eprintln!(
        "{}: {} event(s) would go to /v1/events, {} held back for a later run, {} forgotten, {} never shared (local/minimized); summary to /v1/metrics: {}",
        describe_cap(&settings),
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
    Ok(ExitStatus::Ok)
}
