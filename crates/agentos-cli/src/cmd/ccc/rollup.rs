//! `agentos ccc rollup`: recompute `metrics_summary.json` from `windows.jsonl` from scratch.
//!
//! The recorder keeps the summary current incrementally; this is the independent check (and the
//! repair after hand edits). Torn and invalid lines are reported with their line numbers.

use agentos_recorder::Recorder;
use serde_json::json;

use crate::context::Context;
use crate::flags::Strict;
use crate::output::{ExitStatus, error_line, print_json, warn_line};

/// Arguments of `agentos ccc rollup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--strict`: exit 1 when a line of the log had to be skipped.
    #[command(flatten)]
    pub strict: Strict,
    /// Print a JSON report (summary, counts, skipped lines).
    #[arg(long)]
    pub json: bool,
}

/// Runs `agentos ccc rollup`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let mut rec = Recorder::open(ctx.config()?.clone())?;
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
    if args.strict.strict && !r.warnings.is_empty() {
        error_line(&format!("{} line(s) skipped (--strict)", r.warnings.len()));
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Ok)
}
