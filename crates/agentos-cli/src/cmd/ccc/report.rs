//! `agentos ccc report daily|weekly|monthly|session|blocks`: usage reports over everything
//! ingested, or straight from a source (`--source claude|ccc`).
//!
//! Without `--since/--until`, a `--source` report goes through the store: the first run ingests
//! the source, later runs read only new bytes. With a range, the source is scanned directly and
//! the work outside the range is skipped (files last written before `--since` are not opened;
//! lines are rejected by a cheap timestamp check before they are parsed).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use agentos_ingest::Progress;
use agentos_ingest::account::write_skipped;
use agentos_ingest::ingest::{
    IngestRun, RunOptions, ingest_ccc, ingest_claude, load_all, scan_ccc, scan_claude,
};
use agentos_ingest::report::{Report, ReportKind, ReportOptions, Row};
use agentos_ingest::time::{TimeRange, time_zone};
use anyhow::Context as _;

use crate::context::Context;
use crate::flags::PricedRun;
use crate::output::{
    Bar, ExitStatus, Table, print_account, print_json, skipped_lines_status, thousands,
};

/// Report kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One row per day.
    Daily,
    /// One row per week (Monday start).
    Weekly,
    /// One row per month.
    Monthly,
    /// One row per session.
    Session,
    /// One row per 5-hour billing block.
    Blocks,
}

/// Sources a report can read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// Claude Code transcripts.
    Claude,
    /// CCC shim usage logs (needs `--ccp-root`).
    Ccc,
}

/// Arguments of `agentos ccc report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which report.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Read this source (through the store) instead of everything already ingested.
    #[arg(long, value_enum)]
    pub source: Option<Source>,
    /// Claude config or projects dir (with `--source claude`).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// CCC root (with `--source ccc`).
    #[arg(long)]
    pub ccp_root: Option<PathBuf>,
    /// First day (YYYY-MM-DD or YYYYMMDD, in `--timezone`) or RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD or YYYYMMDD) or RFC 3339 time (exclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// Time zone for calendar buckets (IANA name, `UTC` or `local`; default UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show a per-model line under each row of the table.
    #[arg(long)]
    pub breakdown: bool,
    /// `--threads`, `--prices`, `--strict`.
    #[command(flatten)]
    pub run: PricedRun,
}

/// Runs `agentos ccc report`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let s = ctx.ingest()?;
    let tz_name = args
        .timezone
        .clone()
        .or(s.section.timezone.clone())
        .unwrap_or_else(|| "UTC".into());
    let tz = time_zone(Some(&tz_name))?;
    let range = TimeRange::from_user(args.since.as_deref(), args.until.as_deref(), &tz)
        .map_err(|e| anyhow::anyhow!("invalid --since/--until: {e}"))?;
    let opts = RunOptions {
        threads: s.threads(args.run.threads.threads),
        range,
    };
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(progress.clone(), "reading");
    let res: anyhow::Result<IngestRun> = match args.source {
        None => load_all(&s.data_dir, None)
            .map(|set| IngestRun {
                set,
                ..IngestRun::default()
            })
            .context("loading the ingest store"),
        Some(Source::Claude) if range.is_open() => {
            ingest_claude(&s.data_dir, args.path.as_deref(), &opts, Some(&progress))
                .context("reading Claude Code transcripts")
        }
        Some(Source::Claude) => scan_claude(args.path.as_deref(), &opts, Some(&progress))
            .context("reading Claude Code transcripts"),
        Some(Source::Ccc) => {
            let root = args
                .ccp_root
                .as_deref()
                .context("--source ccc needs --ccp-root DIR")?;
            if range.is_open() {
                ingest_ccc(&s.data_dir, root, &opts, Some(&progress))
            } else {
                scan_ccc(root, &opts, Some(&progress))
            }
            .with_context(|| format!("reading CCC logs under {}", root.display()))
        }
    };
    bar.finish();
    let mut run = res?;
    if run.store_dir.is_none() && !run.skipped.is_empty() {
        let list = s.data_dir.join("ingest").join("report-skipped.jsonl");
        run.account.skipped_list = write_skipped(&list, &run.skipped)
            .with_context(|| format!("writing {}", list.display()))?;
    }
    let report = run
        .report(&ReportOptions {
            kind: match args.kind {
                Kind::Daily => ReportKind::Daily,
                Kind::Weekly => ReportKind::Weekly,
                Kind::Monthly => ReportKind::Monthly,
                Kind::Session => ReportKind::Session,
                Kind::Blocks => ReportKind::Blocks,
            },
            tz,
            tz_name,
            range,
            prices: s.prices(args.run.prices.path())?,
        })
        .context("building the report")?;
    if args.json {
        print_json(&report)?;
    } else {
        let mut out = std::io::stdout().lock();
        render_table(&mut out, &report, args.breakdown)?;
        out.flush()?;
    }
    run.account.turns = report.totals.turns;
    print_account("report", &run.account);
    Ok(skipped_lines_status(args.run.strict.strict, &run.account))
}

fn cells(
    first: String,
    models: String,
    t: &agentos_ingest::report::TokenCounts,
    cost: f64,
    turns: u64,
) -> Vec<String> {
    vec![
        first,
        models,
        thousands(t.input_tokens),
        thousands(t.output_tokens),
        thousands(t.cache_creation_tokens),
        thousands(t.cache_read_tokens),
        thousands(t.total_tokens),
        format!("${cost:.2}"),
        thousands(turns),
    ]
}

/// Short model name for tables: without the `claude-` prefix and a `-YYYYMMDD` date suffix.
fn short_model(m: &str) -> &str {
    let m = m.strip_prefix("claude-").unwrap_or(m);
    match m.rsplit_once('-') {
        Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => m,
    }
}

fn row_cells(r: &Row) -> Vec<String> {
    let key = match &r.project {
        Some(p) if !p.is_empty() => format!("{} ({p})", r.key),
        _ => r.key.clone(),
    };
    let models: Vec<&str> = r.models.iter().map(|m| short_model(m)).collect();
    cells(key, models.join(", "), &r.tokens, r.cost_usd, r.turns)
}

/// Renders a report as an aligned text table.
fn render_table(
    out: &mut impl std::io::Write,
    rep: &Report,
    breakdown: bool,
) -> std::io::Result<()> {
    let first = match rep.kind {
        ReportKind::Daily => "Date",
        ReportKind::Weekly => "Week (Mon)",
        ReportKind::Monthly => "Month",
        ReportKind::Session => "Session (project)",
        ReportKind::Blocks => "Block start",
    };
    let header: Vec<String> = [
        first,
        "Models",
        "Input",
        "Output",
        "Cache create",
        "Cache read",
        "Total tokens",
        "Cost (USD)",
        "Turns",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut lines: Vec<Vec<String>> = vec![header];
    for r in &rep.rows {
        lines.push(row_cells(r));
        if breakdown {
            for b in &r.breakdown {
                lines.push(cells(
                    format!("  └ {}", b.model),
                    String::new(),
                    &b.tokens,
                    b.cost_usd,
                    b.turns,
                ));
            }
        }
    }
    lines.push(cells(
        "Total".into(),
        String::new(),
        &rep.totals.tokens,
        rep.totals.cost_usd,
        rep.totals.turns,
    ));
    // Labels (period, models) left, numbers right.
    Table {
        left_aligned: 2,
        rows: lines,
    }
    .write(out)?;
    writeln!(out, "Time zone: {}", rep.timezone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_shortened_only_by_a_date_suffix_and_prefix() {
        assert_eq!(short_model("claude-sonnet-4-20250514"), "sonnet-4");
        assert_eq!(short_model("claude-haiku-4.5"), "haiku-4.5");
        assert_eq!(short_model("glm-4.6"), "glm-4.6");
    }

    #[test]
    fn report_arguments_parse() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: Args,
        }
        let t = T::try_parse_from([
            "t",
            "blocks",
            "--source",
            "claude",
            "--since",
            "20260901",
            "--timezone",
            "UTC",
            "--json",
        ])
        .expect("valid arguments");
        assert_eq!(t.a.kind, Kind::Blocks);
        assert_eq!(t.a.source, Some(Source::Claude));
        assert!(T::try_parse_from(["t", "hourly"]).is_err());
    }
}
