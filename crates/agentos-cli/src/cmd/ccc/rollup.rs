//! `agentos ccc rollup`: recompute `metrics_summary.json` from `windows.jsonl` from scratch.
//!
//! The recorder keeps the summary current incrementally; this is the independent check (and the
//! repair after hand edits). Torn and invalid lines are reported with their line numbers.

use std::process::ExitCode;

use agentos_recorder::Recorder;
use serde_json::json;

use super::session::{error_line, load_config, print_json, warn_line};
use crate::global::GlobalArgs;

/// Arguments of `agentos ccc rollup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit 1 when a line of the log had to be skipped.
    #[arg(long)]
    pub strict: bool,
    /// Print a JSON report (summary, counts, skipped lines).
    #[arg(long)]
    pub json: bool,
}

/// Runs `agentos ccc rollup`.
pub fn run(args: Args, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(g)?;
    let mut rec = Recorder::open(cfg)?;
    let r = rec.rebuild()?;
    let paths = rec.paths();
    if args.json {
        print_json(&json!({
            "summary_file": paths.summary,
            "log": paths.windows,
            "lines": r.lines,
            "events": r.events,
            "last_seq": r.last_seq,
            "skipped": r.warnings.iter().map(|w| json!({"code": w.code(), "message": w.to_string()})).collect::<Vec<_>>(),
            "summary": r.summary,
        }))?;
    } else {
        for w in &r.warnings {
            warn_line(&format!("{}: {w}", paths.windows.display()));
        }
        println!(
            "recomputed {} from {} events ({} lines, last seq {}): {} sessions, {} turns",
            paths.summary.display(),
            r.events,
            r.lines,
            r.last_seq,
            r.summary.sessions,
            r.summary.turns
        );
    }
    if args.strict && !r.warnings.is_empty() {
        error_line(&format!("{} line(s) skipped (--strict)", r.warnings.len()));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
