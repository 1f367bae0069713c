//! `agentos ccc report daily|weekly|monthly|session|blocks`: usage reports over everything
//! ingested, or straight from a source (`--source claude|ccc`).
//!
//! Without `--since/--until`, a `--source` report goes through the store: the first run ingests
//! the source, later runs read only new bytes. With a range, the source is scanned directly and
//! the work outside the range is skipped (files last written before `--since` are not opened;
//! lines are rejected by a cheap timestamp check before they are parsed).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agentos_ingest::Progress;
use agentos_ingest::account::write_skipped;
use agentos_ingest::ingest::{
    IngestRun, RunOptions, ingest_ccc, ingest_claude, load_all, scan_ccc, scan_claude,
};
use agentos_ingest::report::{Report, ReportKind, ReportOptions, Row};
use agentos_ingest::time::{TimeRange, time_zone};
use anyhow::Context as _;

use super::ingest::{Bar, exit_for, prices, print_account, settings};
use crate::global::GlobalArgs;

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
    /// Worker threads (0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Price table override.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Exit 1 when a line had to be skipped.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `agentos ccc report`.
pub fn run(args: Args, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let s = settings(g)?;
    let tz_name = args
        .timezone
        .clone()
        .or(s.section.timezone.clone())
        .unwrap_or_else(|| "UTC".into());
    let tz = time_zone(Some(&tz_name))?;
    let range = TimeRange::from_user(args.since.as_deref(), args.until.as_deref(), &tz)
        .map_err(|e| anyhow::anyhow!("invalid --since/--until: {e}"))?;
    let opts = RunOptions {
        threads: args.threads.or(s.section.threads).unwrap_or(0),
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
            prices: prices(args.prices.as_deref(), &s)?,
        })
        .context("building the report")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        render_table(&mut out, &report, args.breakdown)?;
    }
    out.flush()?;
    drop(out);
    run.account.turns = report.totals.turns;
    print_account("report", &run.account);
    Ok(exit_for(args.strict, &run.account))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
    let ncol = lines[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, l) in lines.iter().enumerate() {
        let mut s = String::new();
        for (c, cell) in l.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c < 2 {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
            if c + 1 < ncol {
                s.push_str("  ");
            }
        }
        writeln!(out, "{}", s.trim_end())?;
        if i == 0 || i + 2 == lines.len() {
            let total: usize = widths.iter().sum::<usize>() + 2 * (ncol - 1);
            writeln!(out, "{}", "-".repeat(total))?;
        }
    }
    writeln!(out, "Time zone: {}", rep.timezone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(66_253_048), "66,253,048");
    }

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
