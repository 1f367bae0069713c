//! `agentos prices [--json]`: the price table reports use (embedded, or with `--prices FILE` /
//! `[ingest] prices` applied), with the date it was taken.

use crate::context::Context;
use crate::flags::Prices;
use std::io::Write as _;

use crate::output::{ExitStatus, Table, print_json};

/// Flags of `agentos prices`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (`{as_of, origin, unit, models: {family: {input, output, cache_creation,
    /// cache_read}}}`).
    #[arg(long)]
    pub json: bool,
    /// `--prices`.
    #[command(flatten)]
    pub prices: Prices,
}

/// Runs `agentos prices`.
pub fn run(a: &Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let table = ctx.ingest()?.prices(a.prices.path())?;
    if a.json {
        let models: serde_json::Map<String, serde_json::Value> = table
            .entries()
            .into_iter()
            .map(|(k, p)| Ok((k.to_string(), serde_json::to_value(p)?)))
            .collect::<anyhow::Result<_>>()?;
        print_json(&serde_json::json!({
            "as_of": table.as_of(),
            "origin": table.origin(),
            "unit": "USD per million tokens",
            "models": models,
        }))?;
        return Ok(ExitStatus::Ok);
    }
    let mut rows = vec![
        [
            "Model family",
            "Input",
            "Output",
            "Cache write",
            "Cache read",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (k, p) in table.entries() {
        rows.push(vec![
            k.to_string(),
            format!("{:.3}", p.input),
            format!("{:.3}", p.output),
            format!("{:.3}", p.cache_creation),
            format!("{:.3}", p.cache_read),
        ]);
    }
    // The table's last row (below its rule) is where the date goes.
    let mut last = vec![String::new(); 5];
    last[0] = format!(
        "As of {} ({})",
        table.as_of().unwrap_or("an unknown date"),
        table.origin()
    );
    rows.push(last);
    let mut out = std::io::stdout().lock();
    Table {
        left_aligned: 1,
        rows,
        bold_totals: false,
    }
    .write(&mut out)?;
    writeln!(
        out,
        "USD per million tokens. A model matches the longest family it starts with (lower case,\nprovider prefix dropped, dots as dashes); other models are reported as unpriced, never as $0."
    )?;
    Ok(ExitStatus::Ok)
}
