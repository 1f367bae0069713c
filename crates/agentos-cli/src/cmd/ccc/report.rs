//! `agentos report daily|weekly|monthly|session|blocks` (also `agentos ccc report …`): usage
//! reports over everything ingested, or straight from a source (`--source claude|codex|ccc`).
//!
//! Without `--since/--until`, a `--source` report goes through the store: the first run ingests
//! the source, later runs read only new bytes. With a range, the source is scanned directly and
//! the work outside the range is skipped (files last written before `--since` are not opened;
//! lines are rejected by a cheap timestamp check before they are parsed). `blocks` always goes
//! through the store: where a block starts depends on the activity before `--since`.
//!
//! Aggregation, time zones and block boundaries live in `agentos_ingest`; this file picks the
//! layout (full or compact, fitted to the terminal) and prints.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use agentos_ingest::Progress;
use agentos_ingest::account::write_skipped;
use agentos_ingest::blocks::TokenLimit;
use agentos_ingest::ingest::{
    IngestRun, RunOptions, ingest_ccc, ingest_claude, load_all, scan_ccc, scan_claude,
};
use agentos_ingest::report::{Filters, Report, ReportKind, ReportOptions, Row};
use agentos_ingest::source::AgentSource as _;
use agentos_ingest::source::claude::paths as claude_paths;
use agentos_ingest::source::codex::Codex;
use agentos_ingest::time::{TimeRange, parse_weekday, resolve_zone};
use anyhow::Context as _;

use crate::context::Context;
use crate::flags::PricedRun;
use crate::output::{
    Bar, ExitStatus, Table, color_stdout, note, print_account, print_json, skipped_lines_status,
    table_width, thousands,
};

/// Report kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One row per day.
    Daily,
    /// One row per week (`--start-of-week`, default Monday).
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
    /// Codex CLI session rollouts.
    Codex,
    /// CCC shim usage logs (needs `--ccp-root`).
    Ccc,
    /// Claude Code's OpenTelemetry export, received by the collector (needs `--remote`).
    Otlp,
    /// Turns recorded by the recorder without a source of their own (`windows.jsonl`).
    Recorder,
}

impl Source {
    /// The report vocabulary's name (what `--remote` sends as `source=`).
    fn name(self) -> agentos_core::source::Source {
        use agentos_core::source::Source as S;
        match self {
            Source::Claude => S::Claude,
            Source::Codex => S::Codex,
            Source::Ccc => S::Ccc,
            Source::Otlp => S::Otlp,
            Source::Recorder => S::Recorder,
        }
    }
}

/// `agentos report …` (also `agentos ccc report …`): one subcommand per report, so each
/// `--help` lists that report's own flags first.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// One row per day.
    Daily(Common),
    /// One row per week.
    Weekly(WeeklyArgs),
    /// One row per month.
    Monthly(Common),
    /// One row per session.
    Session(SessionArgs),
    /// One row per 5-hour billing block, with the gaps between them.
    Blocks(BlocksArgs),
    /// Features attributed to models, from the recorded turns (docs/attribution.md).
    Value(ValueArgs),
}

/// What `agentos report value` groups by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueBy {
    /// One row per model.
    #[default]
    Model,
    /// One row per session and model.
    Session,
    /// One row per feature and model.
    Feature,
    /// One row per UTC day and model.
    Day,
}

/// Flags of `agentos report value`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ValueArgs {
    /// Group by model, session, feature or (UTC) day.
    #[arg(long, value_enum, default_value_t = ValueBy::Model)]
    pub by: ValueBy,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of every report.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Common {
    /// Read this source (through the store) instead of everything already ingested:
    /// `recorder` reads the turns recorded without a source (`windows.jsonl`); with `--remote`,
    /// only the collector's turns of this source (`otlp` exists only there).
    #[arg(long, value_enum)]
    pub source: Option<Source>,
    /// Claude config or projects dir (with `--source claude`), Codex home or sessions dir
    /// (with `--source codex`).
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
    /// Time zone for calendar buckets and times (IANA name, `UTC` or `local`; default
    /// `[ingest] timezone`, else local).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// JSON shape (implies `--json`): `agentos` (the default) or `ccusage` (ccusage 20's field
    /// names, nesting and number formats, for scripts written against it).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub json_format: Option<JsonFormat>,
    /// Show a per-model line under each row of the table.
    #[arg(long)]
    pub breakdown: bool,
    /// Narrow table (date, models, input, output, cost); chosen by itself when the full table
    /// is wider than the terminal or `COLUMNS`.
    #[arg(long)]
    pub compact: bool,
    /// Only this project: its full name or its last part(s) (`agentos` matches
    /// `-home-me-src-agentos`).
    #[arg(long)]
    pub project: Option<String>,
    /// One row per period and project.
    #[arg(long)]
    pub instances: bool,
    /// One row per period and source: claude, codex and ccc over everything ingested; with
    /// `--remote`, every source the collector holds (also otlp and recorder).
    #[arg(long, conflicts_with_all = ["instances", "source"])]
    pub by_source: bool,
    /// Row order: `asc` (oldest first, the default) or `desc`.
    #[arg(long, value_enum, default_value_t = Order::Asc)]
    pub order: Order,
    /// Only the newest N rows (totals cover those rows).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Print the run's account (files read and unchanged, bytes, skipped lines) on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// The team's report from the collector (`[ccc] url` and `api_key`, `GET /v1/report`)
    /// instead of the local store; `--project` then names a repository exactly, `--source`
    /// filters the collector's turns by source and `--by-source` splits rows by it.
    #[arg(long, conflicts_with_all = ["path", "ccp_root"])]
    pub remote: bool,
    /// `--threads`, `--prices`, `--strict`.
    #[command(flatten)]
    pub run: PricedRun,
}

/// `--json-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonFormat {
    /// agentos' own report JSON.
    Agentos,
    /// ccusage 20's JSON.
    Ccusage,
}

/// `--order`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// Flags of `report session`.
#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// Only the session with this id (or id prefix, as the compact table shows it).
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `report weekly`.
#[derive(Debug, clap::Args)]
pub struct WeeklyArgs {
    /// First day of the week (monday … sunday; default `[ingest] start_of_week`, else monday).
    #[arg(long, value_name = "DAY")]
    pub start_of_week: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `report blocks`.
#[derive(Debug, clap::Args)]
pub struct BlocksArgs {
    /// Only the block still running, with its burn rate, projection and time left.
    #[arg(long)]
    pub active: bool,
    /// Tokens per block to measure against: a number, or `max` (the largest finished block).
    #[arg(long, value_name = "N|max")]
    pub token_limit: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// One report request, whichever subcommand it came from.
#[derive(Debug, Default)]
struct Args {
    kind: Option<Kind>,
    c: Common,
    start_of_week: Option<String>,
    active: bool,
    token_limit: Option<String>,
    session_id: Option<String>,
}

impl From<Command> for Args {
    fn from(cmd: Command) -> Args {
        let mut a = Args::default();
        let (kind, c) = match cmd {
            Command::Daily(c) => (Kind::Daily, c),
            Command::Monthly(c) => (Kind::Monthly, c),
            Command::Session(s) => {
                a.session_id = s.id;
                (Kind::Session, s.common)
            }
            Command::Weekly(w) => {
                a.start_of_week = w.start_of_week;
                (Kind::Weekly, w.common)
            }
            Command::Blocks(b) => {
                a.active = b.active;
                a.token_limit = b.token_limit;
                (Kind::Blocks, b.common)
            }
            // Dispatched before conversion (`run_value`); a daily report if it ever gets here.
            Command::Value(_) => (Kind::Daily, Common::default()),
        };
        Args {
            kind: Some(kind),
            c,
            ..a
        }
    }
}

/// Runs `agentos report …`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitStatus> {
    if let Command::Value(v) = cmd {
        return run_value(&v, ctx);
    }
    let args = Args::from(cmd);
    let kind = args.kind.unwrap_or(Kind::Daily);
    let s = ctx.ingest()?;
    let (tz, tz_name) = resolve_zone(args.c.timezone.as_deref().or(s.section.timezone.as_deref()))?;
    let week_start = parse_weekday(
        args.start_of_week
            .as_deref()
            .or(s.section.start_of_week.as_deref())
            .unwrap_or("monday"),
    )?;
    let range = TimeRange::from_user(args.c.since.as_deref(), args.c.until.as_deref(), &tz)
        .map_err(|e| anyhow::anyhow!("invalid --since/--until: {e}"))?;
    let token_limit = args
        .token_limit
        .as_deref()
        .map(str::parse::<TokenLimit>)
        .transpose()?;
    if args.c.remote {
        return run_remote(&args, kind, &tz_name, week_start, ctx);
    }
    let opts = RunOptions {
        threads: s.threads(args.c.run.threads.threads),
        range,
    };
    // Blocks need the history before `--since` (it decides where the blocks start), which a
    // ranged scan skips; the store has all of it.
    let through_store = range.is_open() || kind == Kind::Blocks;
    let store_opts = RunOptions {
        range: TimeRange::default(),
        ..opts
    };
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(progress.clone(), "reading");
    let res: anyhow::Result<IngestRun> = match args.c.source {
        None => load_all(&s.data_dir, None)
            .map(|set| IngestRun {
                set,
                ..IngestRun::default()
            })
            .context("loading the ingest store"),
        Some(Source::Claude) if through_store => ingest_claude(
            &s.data_dir,
            args.c.path.as_deref(),
            &store_opts,
            Some(&progress),
        )
        .context("reading Claude Code transcripts"),
        Some(Source::Claude) => scan_claude(args.c.path.as_deref(), &opts, Some(&progress))
            .context("reading Claude Code transcripts"),
        Some(Source::Codex) if through_store => agentos_ingest::agent::ingest::<Codex>(
            &s.data_dir,
            args.c.path.as_deref(),
            &store_opts,
            Some(&progress),
        )
        .context("reading Codex CLI sessions"),
        Some(Source::Codex) => {
            agentos_ingest::agent::scan::<Codex>(args.c.path.as_deref(), &opts, Some(&progress))
                .context("reading Codex CLI sessions")
        }
        Some(Source::Ccc) => {
            let root = args
                .c
                .ccp_root
                .as_deref()
                .context("--source ccc needs --ccp-root DIR")?;
            if through_store {
                ingest_ccc(&s.data_dir, root, &store_opts, Some(&progress))
            } else {
                scan_ccc(root, &opts, Some(&progress))
            }
            .with_context(|| format!("reading CCC logs under {}", root.display()))
        }
        Some(Source::Recorder) => {
            let log = agentos_config::DataDir::new(&s.data_dir).windows();
            agentos_ingest::source::recorder::load(&log)
                .with_context(|| format!("reading the recorder log {}", log.display()))
        }
        Some(Source::Otlp) => anyhow::bail!(
            "OpenTelemetry turns are received by the collector (`ccc serve --otlp-listen`), not stored on this machine: add --remote"
        ),
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
            kind: match kind {
                Kind::Daily => ReportKind::Daily,
                Kind::Weekly => ReportKind::Weekly,
                Kind::Monthly => ReportKind::Monthly,
                Kind::Session => ReportKind::Session,
                Kind::Blocks => ReportKind::Blocks,
            },
            tz,
            tz_name,
            week_start,
            range,
            prices: s.prices(args.c.run.prices.path())?,
            now_ms: jiff::Timestamp::now().as_millisecond(),
            active_only: args.active,
            token_limit,
            filters: Filters {
                project: args.c.project.clone(),
                session_id: args.session_id.clone(),
                instances: args.c.instances,
                by_source: args.c.by_source,
                descending: args.c.order == Order::Desc,
                last: args.c.last,
            },
        })
        .context("building the report")?;
    if !report.totals.unpriced_models.is_empty() {
        // Once per run, whatever the output format: a JSON consumer reads `unpriced_models`.
        note(&format!(
            "no price for model(s) {}: their cost is not included (see `agentos prices`; --prices FILE adds prices)",
            report.totals.unpriced_models.join(", ")
        ));
    }
    let empty = report.rows.is_empty();
    let verdict = if !empty {
        None
    } else if run.record_count() == 0
        // A ranged scan does not keep what it skipped; skipped lines or files mean data exists.
        && run.account.out_of_range == 0
        && run.account.files_skipped == 0
    {
        explain_no_data(&args, &s.data_dir);
        Some("No usage data found.")
    } else if args.active {
        Some("No active block.")
    } else {
        note("no usage in the requested range");
        Some("No usage in the requested range.")
    };
    if args.c.json_format == Some(JsonFormat::Ccusage) {
        print_json(&agentos_ingest::ccusage::to_json(&report))?;
    } else if args.c.json || args.c.json_format.is_some() {
        print_json(&report)?;
    } else if let Some(v) = verdict {
        println!("{v}");
    } else {
        print_table(&report, args.c.breakdown, args.c.compact)?;
    }
    run.account.turns = report.totals.turns;
    if args.c.verbose {
        print_account("report", &run.account);
    }
    Ok(skipped_lines_status(args.c.run.strict.strict, &run.account))
}

/// `--remote`: the same report computed by the collector, printed through the same table code.
fn run_remote(
    args: &Args,
    kind: Kind,
    tz_name: &str,
    week_start: jiff::civil::Weekday,
    ctx: &Context,
) -> anyhow::Result<ExitStatus> {
    if args.active || args.token_limit.is_some() || args.session_id.is_some() {
        anyhow::bail!("--active, --token-limit and --id are not available with --remote");
    }
    let cfg = &ctx.config()?.ccc;
    let url = cfg
        .url
        .as_deref()
        .context("--remote needs the collector's URL: set [ccc] url or AGENTOS_CCC_URL")?;
    let key = cfg
        .api_key
        .as_deref()
        .context("--remote needs an API key: set [ccc] api_key or AGENTOS_CCC_API_KEY")?;
    let kind_name = match kind {
        Kind::Daily => "daily",
        Kind::Weekly => "weekly",
        Kind::Monthly => "monthly",
        Kind::Session => "session",
        Kind::Blocks => "blocks",
    };
    let query = agentos_collector::report::ReportQuery {
        kind: Some(kind_name.into()),
        since: args.c.since.clone(),
        until: args.c.until.clone(),
        tz: Some(tz_name.to_string()),
        group: if args.c.instances {
            Some("repo".to_string())
        } else if args.c.by_source {
            Some("source".to_string())
        } else {
            None
        },
        source: args.c.source.map(|src| src.name().to_string()),
        repo: args.c.project.clone(),
        week_start: Some(format!("{week_start:?}").to_ascii_lowercase()),
        order: (args.c.order == Order::Desc).then(|| "desc".to_string()),
        last: args.c.last,
        ..Default::default()
    };
    let answer = fetch_report(url, key, &query)?;
    let report = answer.report;
    if !answer.pricing.unpriced_models.is_empty() {
        note(&format!(
            "no price for {} (their cost is not in the totals)",
            answer.pricing.unpriced_models.join(", ")
        ));
    }
    if args.c.json_format == Some(JsonFormat::Ccusage) {
        print_json(&agentos_ingest::ccusage::to_json(&report))?;
    } else if args.c.json || args.c.json_format.is_some() {
        print_json(&report)?;
    } else if report.rows.is_empty() {
        println!("No usage in the requested range.");
    } else {
        print_table(&report, args.c.breakdown, args.c.compact)?;
    }
    Ok(ExitStatus::Ok)
}

/// `GET <url>/v1/report` with `query`, as the collector's typed answer (a non-2xx answer is an
/// error carrying the collector's reason).
pub(crate) fn fetch_report(
    url: &str,
    key: &str,
    query: &agentos_collector::report::ReportQuery,
) -> anyhow::Result<agentos_collector::report::ReportResponse> {
    let endpoint = format!("{}/v1/report", url.trim_end_matches('/'));
    let mut target = reqwest::Url::parse(&endpoint)
        .with_context(|| format!("[ccc] url `{url}` is not a URL"))?;
    if let serde_json::Value::Object(fields) = serde_json::to_value(query)? {
        let mut pairs = target.query_pairs_mut();
        for (k, v) in fields {
            match v {
                serde_json::Value::String(s) => pairs.append_pair(&k, &s),
                other => pairs.append_pair(&k, &other.to_string()),
            };
        }
    }
    let resp = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?
        .get(target)
        .bearer_auth(key)
        .send()
        .with_context(|| format!("asking {endpoint}"))?;
    let status = resp.status();
    let body = resp
        .text()
        .with_context(|| format!("reading the answer of {endpoint}"))?;
    if !status.is_success() {
        let why = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        anyhow::bail!("{endpoint} answered {status}: {why}");
    }
    let answer: agentos_collector::report::ReportResponse = serde_json::from_str(&body)
        .with_context(|| format!("{endpoint} answered something that is not a report"))?;
    Ok(answer)
}

/// Says on stderr where no data was found and what to run; a table of zeros would read as
/// "you used nothing".
fn explain_no_data(args: &Args, data_dir: &std::path::Path) {
    let looked: Vec<PathBuf> = match args.c.source {
        None => vec![data_dir.join("ingest")],
        Some(Source::Claude) => claude_paths::searched(args.c.path.as_deref()),
        Some(Source::Codex) => Codex::searched(args.c.path.as_deref()),
        Some(Source::Ccc) => args.c.ccp_root.iter().map(|r| r.join("logs")).collect(),
        Some(Source::Recorder) => vec![agentos_config::DataDir::new(data_dir).windows()],
        Some(Source::Otlp) => Vec::new(),
    };
    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    let hint = match args.c.source {
        None => "run `agentos ingest claude` (or pass `--source claude`) first",
        Some(Source::Claude) => "pass `--path` to a Claude config or projects dir",
        Some(Source::Codex) => {
            "pass `--path` to a Codex home (holding sessions/) or set CODEX_HOME"
        }
        Some(Source::Ccc) => "check that `--ccp-root` is the CCC root (holding logs/)",
        Some(Source::Recorder) => {
            "record turns with `agentos ccc turn` (turns from the Claude Code hooks are under --source claude)"
        }
        Some(Source::Otlp) => "add --remote",
    };
    let looked = if looked.is_empty() {
        "nowhere: HOME is not set".to_string()
    } else {
        looked.join(", ")
    };
    note(&format!("no usage data found (looked in {looked})"));
    note(hint);
}

/// How a report table is laid out.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// A per-model line under each row.
    breakdown: bool,
    /// `--compact`: the narrow layout whatever the width.
    compact: bool,
    /// Columns available ([`table_width`]); `None` = no limit.
    width: Option<usize>,
    /// Bold totals row.
    color: bool,
}

/// A cost cell: `$1.23`; `$1.23*` when some of its models have no price (the figure covers the
/// priced ones); `n/a*` when none has. The footnote under the table names them.
fn cost_cell(usd: f64, unpriced: usize, models: usize) -> String {
    match unpriced {
        0 => format!("${}", money(usd)),
        n if n == models => "n/a*".to_string(),
        _ => format!("${}*", money(usd)),
    }
}

fn cells(
    first: String,
    models: String,
    t: &agentos_ingest::report::TokenCounts,
    cost: String,
    turns: u64,
    compact: bool,
) -> Vec<String> {
    if compact {
        return vec![
            first,
            models,
            thousands(t.input_tokens),
            thousands(t.output_tokens),
            cost,
        ];
    }
    vec![
        first,
        models,
        thousands(t.input_tokens),
        thousands(t.output_tokens),
        thousands(t.cache_creation_tokens),
        thousands(t.cache_read_tokens),
        thousands(t.total_tokens),
        cost,
        thousands(turns),
    ]
}

/// `1234.5` → `"1,234.50"`.
fn money(usd: f64) -> String {
    let cents = (usd * 100.0).round().max(0.0) as u64;
    format!("{}.{:02}", thousands(cents / 100), cents % 100)
}

/// Short model name for tables: without the `claude-` prefix and a `-YYYYMMDD` date suffix.
fn short_model(m: &str) -> &str {
    let m = m.strip_prefix("claude-").unwrap_or(m);
    match m.rsplit_once('-') {
        Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => m,
    }
}

/// The row's models as one short cell: the model that cost the most, and how many others
/// (`sonnet-4.5 +3`); `--breakdown` lists them all.
fn collapsed_models(r: &Row) -> String {
    let top = r.breakdown.iter().max_by(|a, b| {
        a.cost_usd
            .total_cmp(&b.cost_usd)
            .then(a.turns.cmp(&b.turns))
            // Equal rows: the first name wins, so the cell does not depend on map order.
            .then(b.model.cmp(&a.model))
    });
    match top {
        None => String::new(),
        Some(t) if r.breakdown.len() == 1 => short_model(&t.model).to_string(),
        Some(t) => format!("{} +{}", short_model(&t.model), r.breakdown.len() - 1),
    }
}

/// Characters of a session id kept in the compact layout (enough to tell sessions apart and
/// to pass to `--id` as a prefix).
const SHORT_ID: usize = 8;

fn row_label(kind: ReportKind, r: &Row, compact: bool) -> String {
    let active = r.block.as_ref().is_some_and(|b| b.active);
    let key = match kind {
        ReportKind::Session if compact && r.key.chars().count() > SHORT_ID => {
            let mut k: String = r.key.chars().take(SHORT_ID).collect();
            k.push('…');
            k
        }
        // `2026-09-01T10:00:00+02:00` → `2026-09-01 10:00`: the zone is printed under the table.
        ReportKind::Blocks if compact && r.key.len() >= 16 && r.key.is_char_boundary(16) => {
            format!("{} {}", &r.key[..10], &r.key[11..16])
        }
        _ => r.key.clone(),
    };
    match r.project.as_ref().or(r.source.as_ref()) {
        Some(p) if !p.is_empty() => format!("{key} ({p})"),
        _ if active => format!("{key} (active)"),
        _ => key,
    }
}

/// `7h 05m` between two report times (empty when they do not parse).
fn span(from: &str, to: Option<&str>) -> String {
    let parse = |s: &str| s.parse::<jiff::Timestamp>().ok();
    match (parse(from), to.and_then(parse)) {
        (Some(a), Some(b)) => {
            let min = (b.as_millisecond() - a.as_millisecond()).max(0) / 60_000;
            hours_minutes(min)
        }
        _ => String::new(),
    }
}

fn hours_minutes(min: i64) -> String {
    format!("{}h {:02}m", min / 60, min % 60)
}

/// The lines under a blocks table: the token limit, and the running block's pace.
fn block_summary(out: &mut impl std::io::Write, rep: &Report) -> std::io::Result<()> {
    if rep.kind != ReportKind::Blocks {
        return Ok(());
    }
    let pct = |n: u64| match rep.token_limit {
        Some(l) if l > 0 => format!(" ({:.1}% of the limit)", n as f64 * 100.0 / l as f64),
        _ => String::new(),
    };
    if let Some(l) = rep.token_limit {
        writeln!(out, "Token limit: {} per block", thousands(l))?;
    }
    let active = rep
        .rows
        .iter()
        .find(|r| r.block.as_ref().is_some_and(|b| b.active));
    let Some(row) = active else {
        return Ok(());
    };
    writeln!(
        out,
        "Active block: {} tokens{}, ${}",
        thousands(row.tokens.total_tokens),
        pct(row.tokens.total_tokens),
        money(row.cost_usd)
    )?;
    if let Some(p) = row.block.as_ref().and_then(|b| b.projection.as_ref()) {
        writeln!(out, "  Time left: {}", hours_minutes(p.minutes_left))?;
        writeln!(
            out,
            "  Burn rate: {} tokens/min, ${}/h",
            thousands(p.tokens_per_minute.round() as u64),
            money(p.cost_per_hour)
        )?;
        writeln!(
            out,
            "  Projected at block end: {} tokens{}, ${}",
            thousands(p.projected_tokens),
            pct(p.projected_tokens),
            money(p.projected_cost_usd)
        )?;
        if rep.token_limit.is_some_and(|l| p.projected_tokens > l) {
            writeln!(out, "  At this pace the block goes over the token limit.")?;
        }
    }
    Ok(())
}

fn build_table(rep: &Report, l: &Layout, compact: bool) -> Table {
    let week = format!(
        "Week ({})",
        rep.week_start
            .as_deref()
            .and_then(|d| d.get(..3))
            .map(|d| d[..1].to_ascii_uppercase() + &d[1..])
            .unwrap_or_default()
    );
    let first = match rep.kind {
        ReportKind::Daily => "Date",
        ReportKind::Weekly => week.as_str(),
        ReportKind::Monthly => "Month",
        ReportKind::Session => "Session (project)",
        ReportKind::Blocks => "Block start",
        ReportKind::Model => "Model",
        ReportKind::Device => "Device",
        ReportKind::Repo => "Repository",
    };
    let header: &[&str] = if compact {
        &[first, "Models", "Input", "Output", "Cost (USD)"]
    } else {
        &[
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
    };
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in &rep.rows {
        if r.block.as_ref().is_some_and(|b| b.gap) {
            let mut gap = vec![
                row_label(rep.kind, r, compact),
                format!("(gap {})", span(&r.key, r.end.as_deref())),
            ];
            gap.resize(header.len(), String::new());
            lines.push(gap);
            continue;
        }
        lines.push(cells(
            row_label(rep.kind, r, compact),
            collapsed_models(r),
            &r.tokens,
            cost_cell(r.cost_usd, r.unpriced_models.len(), r.breakdown.len()),
            r.turns,
            compact,
        ));
        if l.breakdown {
            for b in &r.breakdown {
                lines.push(cells(
                    format!("  └ {}", short_model(&b.model)),
                    String::new(),
                    &b.tokens,
                    cost_cell(b.cost_usd, usize::from(!b.priced), 1),
                    b.turns,
                    compact,
                ));
            }
        }
    }
    lines.push(cells(
        "Total".into(),
        String::new(),
        &rep.totals.tokens,
        cost_cell(
            rep.totals.cost_usd,
            rep.totals.unpriced_models.len(),
            rep.totals.breakdown.len(),
        ),
        rep.totals.turns,
        compact,
    ));
    // Labels (period, models) left, numbers right.
    Table {
        left_aligned: 2,
        rows: lines,
        bold_totals: l.color,
    }
}

/// Prints `rep` on stdout as a table that fits the terminal (colours per `NO_COLOR`), through a
/// buffered writer: the report commands and `agentos demo`.
pub(crate) fn print_table(rep: &Report, breakdown: bool, compact: bool) -> std::io::Result<()> {
    let layout = Layout {
        breakdown,
        compact,
        width: table_width(),
        color: color_stdout(),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    render_table(&mut out, rep, &layout)?;
    out.flush()
}

/// Renders a report as an aligned text table that fits `l.width`: the full layout when it fits,
/// else (or with `--compact`) the compact one, whose labels are cut to fit.
fn render_table(out: &mut impl std::io::Write, rep: &Report, l: &Layout) -> std::io::Result<()> {
    let full = build_table(rep, l, l.compact);
    let too_wide = !l.compact && l.width.is_some_and(|w| full.width() > w);
    let mut table = if too_wide {
        build_table(rep, l, true)
    } else {
        full
    };
    if let Some(w) = l.width {
        table.fit(w);
    }
    table.write(out)?;
    if too_wide {
        // Said, so nobody wonders where the cache columns went; short enough for 80 columns.
        writeln!(
            out,
            "Compact layout (narrow terminal): widen it or use --json for all columns."
        )?;
    }
    if !rep.totals.unpriced_models.is_empty() {
        writeln!(
            out,
            "* No price for {}: cost covers the priced models only (see `agentos prices`; add one with --prices FILE).",
            rep.totals.unpriced_models.join(", ")
        )?;
    }
    block_summary(out, rep)?;
    writeln!(out, "Time zone: {}", rep.timezone)
}

/// `agentos report value`: recomputed from `windows.jsonl` (the log is the truth; the summary's
/// `value` block is the same fold kept incrementally).
fn run_value(a: &ValueArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let data_dir = ctx.data_dir()?;
    let log = agentos_config::DataDir::new(data_dir).windows();
    let r = agentos_recorder::log::recompute(&log)
        .with_context(|| format!("reading {}", log.display()))?;
    crate::output::report_log_warnings(&r.warnings);
    let value = &r.state.rollup.value;
    let total = value.total_features();
    if a.json {
        let rows: serde_json::Value = match a.by {
            ValueBy::Model => serde_json::to_value(&value.by_model)?,
            ValueBy::Session => serde_json::to_value(&value.by_session)?,
            ValueBy::Feature => serde_json::to_value(&value.by_feature)?,
            ValueBy::Day => serde_json::to_value(&value.by_day)?,
        };
        crate::output::print_json(&serde_json::json!({
            "by": format!("{:?}", a.by).to_lowercase(),
            "features_total": total,
            "rows": rows,
        }))?;
        return Ok(ExitStatus::Ok);
    }
    if value.is_empty() {
        println!(
            "No turns recorded in {} yet (record with `agentos ccc turn` or the Claude Code hooks).",
            log.display()
        );
        return Ok(ExitStatus::Ok);
    }
    let pct = |f: f64| {
        if total == 0.0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * f / total)
        }
    };
    let mut rows = Vec::new();
    let nested =
        |group: &str,
         m: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
         rows: &mut Vec<Vec<String>>| {
            rows.push(vec![
                group.into(),
                "Model".into(),
                "Features".into(),
                "Share".into(),
            ]);
            for (k, models) in m {
                for (model, f) in models {
                    rows.push(vec![k.clone(), model.clone(), format!("{f:.2}"), pct(*f)]);
                }
            }
        };
    match a.by {
        ValueBy::Model => {
            rows.push(vec![
                "Model".into(),
                "Features".into(),
                "Share".into(),
                "Turns credited".into(),
            ]);
            for (model, v) in &value.by_model {
                rows.push(vec![
                    model.clone(),
                    format!("{:.2}", v.features),
                    pct(v.features),
                    format!("{:.2}", v.turns),
                ]);
            }
        }
        ValueBy::Session => nested("Session", &value.by_session, &mut rows),
        ValueBy::Feature => nested("Feature", &value.by_feature, &mut rows),
        ValueBy::Day => {
            let by_day: std::collections::BTreeMap<
                String,
                std::collections::BTreeMap<String, f64>,
            > = value
                .by_day
                .iter()
                .map(|(d, m)| (d.to_string(), m.clone()))
                .collect();
            nested("Day (UTC)", &by_day, &mut rows);
        }
    }
    let width = rows.first().map_or(0, Vec::len);
    let mut totals = vec![String::new(); width];
    if let Some(first) = totals.first_mut() {
        *first = "Total".into();
    }
    if let Some(cell) = totals.iter_mut().rev().find(|_| true) {
        *cell = String::new();
    }
    let features_col = if a.by == ValueBy::Model { 1 } else { 2 };
    totals[features_col] = format!("{total:.2}");
    rows.push(totals);
    let table = crate::output::Table {
        left_aligned: if a.by == ValueBy::Model { 1 } else { 2 },
        rows,
        bold_totals: crate::output::color_stdout(),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    table.write(&mut out)?;
    out.flush()?;
    Ok(ExitStatus::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentos_ingest::blocks::{BlockInfo, Projection};
    use agentos_ingest::report::{ModelBreakdown, TokenCounts, Totals};

    fn tokens(n: u64) -> TokenCounts {
        TokenCounts {
            input_tokens: n,
            output_tokens: n / 3,
            cache_creation_tokens: n * 7,
            cache_read_tokens: n * 90,
            total_tokens: n + n / 3 + n * 97,
        }
    }

    fn row(key: &str, project: Option<&str>, models: &[&str], n: u64) -> Row {
        let breakdown: Vec<ModelBreakdown> = models
            .iter()
            .enumerate()
            .map(|(i, m)| ModelBreakdown {
                model: m.to_string(),
                turns: 10 + i as u64,
                tokens: tokens(n / (i as u64 + 1)),
                cost_usd: n as f64 / 1e4 / (i as f64 + 1.0),
                priced: true,
                first_ms: i as i64,
            })
            .collect();
        Row {
            key: key.into(),
            project: project.map(str::to_string),
            source: None,
            end: None,
            first: key.into(),
            last: key.into(),
            turns: breakdown.iter().map(|b| b.turns).sum(),
            tokens: tokens(n),
            cost_usd: breakdown.iter().map(|b| b.cost_usd).sum(),
            unpriced_models: Vec::new(),
            models: models.iter().map(|m| m.to_string()).collect(),
            breakdown,
            block: None,
        }
    }

    /// A report with the widest cells real data has: many models, big numbers, long ids.
    fn report(kind: ReportKind) -> Report {
        let many = [
            "claude-sonnet-4-5-20250929",
            "claude-opus-4-1-20250805",
            "claude-haiku-4-5-20251001",
            "glm-4.6",
        ];
        let rows = match kind {
            ReportKind::Session => vec![
                row(
                    "4f1c2a9e-7b3d-4e8a-9c1f-2d6b8e0a5f37",
                    Some("-home-someone-src-a-rather-long-project-name"),
                    &many,
                    123_456_789,
                ),
                row(
                    "0d9e8f7a-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
                    Some("agentos"),
                    &many[..1],
                    4_321,
                ),
            ],
            ReportKind::Blocks => {
                let mut done = row("2026-09-01T10:00:00+02:00", None, &many, 98_765_432);
                done.block = Some(BlockInfo {
                    gap: false,
                    active: false,
                    projection: None,
                });
                let mut gap = row("2026-09-01T15:00:00+02:00", None, &[], 0);
                gap.end = Some("2026-09-01T22:00:00+02:00".into());
                gap.block = Some(BlockInfo {
                    gap: true,
                    active: false,
                    projection: None,
                });
                let mut active = row("2026-09-01T22:00:00+02:00", None, &many[2..], 1_234);
                active.block = Some(BlockInfo {
                    gap: false,
                    active: true,
                    projection: Some(Projection {
                        tokens_per_minute: 1234.4,
                        cost_per_hour: 0.5,
                        projected_tokens: 456_789,
                        projected_cost_usd: 2.25,
                        minutes_left: 125,
                    }),
                });
                vec![done, gap, active]
            }
            _ => vec![
                row("2026-09-01", None, &many, 987_654_321),
                row("2026-09-02", None, &many[1..2], 12),
            ],
        };
        let t = tokens(rows.iter().map(|r| r.tokens.input_tokens).sum());
        Report {
            kind,
            token_limit: (kind == ReportKind::Blocks).then_some(400_000),
            timezone: "Europe/Berlin".into(),
            week_start: (kind == ReportKind::Weekly).then(|| "sunday".into()),
            totals: Totals {
                turns: rows.iter().map(|r| r.turns).sum(),
                tokens: t,
                cost_usd: rows.iter().map(|r| r.cost_usd).sum(),
                unpriced_models: Vec::new(),
                breakdown: Vec::new(),
            },
            rows,
        }
    }

    fn render(kind: ReportKind, width: Option<usize>, compact: bool, breakdown: bool) -> String {
        let mut out = Vec::new();
        let l = Layout {
            breakdown,
            compact,
            width,
            color: false,
        };
        render_table(&mut out, &report(kind), &l).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    const KINDS: [ReportKind; 5] = [
        ReportKind::Daily,
        ReportKind::Weekly,
        ReportKind::Monthly,
        ReportKind::Session,
        ReportKind::Blocks,
    ];

    #[test]
    fn tables_never_wrap_in_the_compact_layout() {
        for kind in KINDS {
            for width in [80, 100, 120] {
                for breakdown in [false, true] {
                    for compact in [false, true] {
                        let text = render(kind, Some(width), compact, breakdown);
                        for line in text.lines() {
                            assert!(
                                line.chars().count() <= width,
                                "{kind:?} at {width}: {line:?} is {} wide\n{text}",
                                line.chars().count()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_narrow_terminal_switches_to_the_compact_layout_and_says_so() {
        let wide = render(ReportKind::Daily, None, false, false);
        assert!(wide.contains("Cache read"), "{wide}");
        assert!(!wide.contains("Compact layout"), "{wide}");
        let narrow = render(ReportKind::Daily, Some(80), false, false);
        assert!(!narrow.contains("Cache read"), "{narrow}");
        assert!(narrow.contains("Compact layout"), "{narrow}");
        // Forced: compact, but nothing to explain.
        let forced = render(ReportKind::Daily, None, true, false);
        assert!(!forced.contains("Cache read"), "{forced}");
        assert!(!forced.contains("Compact layout"), "{forced}");
    }

    #[test]
    fn models_collapse_to_the_costliest_and_a_count() {
        let r = row(
            "d",
            None,
            &["claude-haiku-4-5-20251001", "glm-4.6", "zz"],
            1000,
        );
        // The first model of the list gets the largest cost in `row`.
        assert_eq!(collapsed_models(&r), "haiku-4-5 +2");
        assert_eq!(
            collapsed_models(&row("d", None, &["glm-4.6"], 1)),
            "glm-4.6"
        );
        assert_eq!(collapsed_models(&row("d", None, &[], 1)), "");
    }

    #[test]
    fn blocks_show_gaps_the_active_block_and_its_pace() {
        let text = render(ReportKind::Blocks, None, false, false);
        assert!(text.contains("(gap 7h 00m)"), "{text}");
        assert!(
            text.contains("2026-09-01T22:00:00+02:00 (active)"),
            "{text}"
        );
        assert!(text.contains("Token limit: 400,000 per block"), "{text}");
        assert!(text.contains("Time left: 2h 05m"), "{text}");
        assert!(
            text.contains("Burn rate: 1,234 tokens/min, $0.50/h"),
            "{text}"
        );
        assert!(
            text.contains("Projected at block end: 456,789 tokens (114.2% of the limit), $2.25"),
            "{text}"
        );
        assert!(text.contains("goes over the token limit"), "{text}");
    }

    #[test]
    fn money_has_separators_and_cents() {
        assert_eq!(money(0.0), "0.00");
        assert_eq!(money(1234.5), "1,234.50");
        assert_eq!(money(0.005), "0.01");
    }

    #[test]
    fn table_snapshots_at_fixed_widths() {
        for kind in KINDS {
            for width in [80, 100, 120] {
                insta::assert_snapshot!(
                    format!("{kind:?}_{width}").to_lowercase(),
                    render(kind, Some(width), false, false)
                );
            }
        }
        insta::assert_snapshot!(
            "session_breakdown_compact_80",
            render(ReportKind::Session, Some(80), true, true)
        );
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
            #[command(subcommand)]
            c: Command,
        }
        let t = T::try_parse_from([
            "t",
            "blocks",
            "--active",
            "--token-limit",
            "max",
            "--source",
            "claude",
            "--since",
            "20260901",
            "--timezone",
            "UTC",
            "--json",
        ])
        .expect("valid arguments");
        let a = Args::from(t.c);
        assert_eq!(a.kind, Some(Kind::Blocks));
        assert_eq!(a.c.source, Some(Source::Claude));
        assert!(a.active);
        assert_eq!(a.token_limit.as_deref(), Some("max"));
        assert!(T::try_parse_from(["t", "hourly"]).is_err());
        // A report's own flags belong to that report only.
        assert!(T::try_parse_from(["t", "daily", "--active"]).is_err());
        assert!(T::try_parse_from(["t", "daily", "--start-of-week", "sunday"]).is_err());
        let t = T::try_parse_from(["t", "weekly", "--start-of-week", "sunday"]).expect("weekly");
        assert_eq!(Args::from(t.c).start_of_week.as_deref(), Some("sunday"));
    }
}
