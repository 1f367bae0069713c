//! `agentos ccc ingest claude|ccc`: feed the local ingest store (`<data_dir>/ingest/`), reading
//! only bytes that are new since the last run. Also holds the helpers the backfill and report
//! commands share (configuration, progress bar, the closing account line).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentos_config::{Config, IngestConfig};
use agentos_ingest::ingest::{RunOptions, ingest_ccc, ingest_claude};
use agentos_ingest::{Account, PriceTable, Progress};
use anyhow::Context as _;

use crate::global::GlobalArgs;

/// Subcommands of `agentos ccc ingest`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Claude Code transcripts (`~/.claude/projects/**/*.jsonl`, `$CLAUDE_CONFIG_DIR`).
    Claude(ClaudeArgs),
    /// CCC shim usage logs of a CCC root (`logs/usage.jsonl*`, `logs/archive/usage*.jsonl`).
    Ccc(CccArgs),
}

/// Flags shared by ingest runs.
#[derive(Debug, Clone, clap::Args)]
pub struct RunFlags {
    /// Worker threads (0 = all cores; `[ingest] threads` in the config).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Exit 1 when a line had to be skipped.
    #[arg(long)]
    pub strict: bool,
    /// Print the run's account as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentos ccc ingest claude`.
#[derive(Debug, clap::Args)]
pub struct ClaudeArgs {
    /// A Claude config dir (holding `projects/`) or a projects dir.
    #[arg(long)]
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunFlags,
}

/// Arguments of `agentos ccc ingest ccc`.
#[derive(Debug, clap::Args)]
pub struct CccArgs {
    /// The CCC root (holding `logs/`).
    #[arg(long)]
    pub ccp_root: PathBuf,
    #[command(flatten)]
    pub run: RunFlags,
}

/// Resolved settings for an ingest-family command.
pub(crate) struct Settings {
    pub data_dir: PathBuf,
    pub section: IngestConfig,
}

/// Loads the config and the `[ingest]` section.
pub(crate) fn settings(g: &GlobalArgs) -> anyhow::Result<Settings> {
    let cfg = Config::load(g.data_dir.as_deref(), g.config.as_deref())
        .context("loading the agentos configuration")?;
    Ok(Settings {
        data_dir: cfg.data_dir().to_path_buf(),
        section: cfg.ingest,
    })
}

/// The price table: `--prices` flag, else `[ingest] prices`, else the embedded one.
pub(crate) fn prices(flag: Option<&Path>, s: &Settings) -> anyhow::Result<PriceTable> {
    match flag.or(s.section.prices.as_deref()) {
        Some(p) => PriceTable::with_override(p)
            .with_context(|| format!("loading the price table {}", p.display())),
        None => Ok(PriceTable::embedded()),
    }
}

/// A progress bar over a [`Progress`], drawn only when stderr is a terminal.
pub(crate) struct Bar {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    /// Starts drawing (a no-op when stderr is not a terminal).
    pub(crate) fn start(p: Arc<Progress>, what: &str) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Bar { stop, handle: None };
        }
        let what = what.to_string();
        let s2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what);
            while !s2.load(Ordering::Relaxed) {
                bar.set_length(p.total_bytes.load(Ordering::Relaxed));
                bar.set_position(p.bytes.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Bar {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and clears the bar.
    pub(crate) fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Prints the closing one-line account on stderr.
pub(crate) fn print_account(what: &str, a: &Account) {
    eprintln!("agentos: {what}: {a}");
}

/// Exit code for a run under `--strict`.
pub(crate) fn exit_for(strict: bool, a: &Account) -> ExitCode {
    if strict && a.lines_skipped > 0 {
        eprintln!("agentos: {} line(s) skipped (--strict)", a.lines_skipped);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Runs `agentos ccc ingest`.
pub fn run(cmd: Command, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let s = settings(g)?;
    let (flags, what) = match &cmd {
        Command::Claude(a) => (a.run.clone(), "ingest claude"),
        Command::Ccc(a) => (a.run.clone(), "ingest ccc"),
    };
    let opts = RunOptions {
        threads: flags.threads.or(s.section.threads).unwrap_or(0),
        ..RunOptions::default()
    };
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(progress.clone(), what);
    let res = match &cmd {
        Command::Claude(a) => ingest_claude(&s.data_dir, a.path.as_deref(), &opts, Some(&progress))
            .context("ingesting Claude Code transcripts"),
        Command::Ccc(a) => ingest_ccc(&s.data_dir, &a.ccp_root, &opts, Some(&progress))
            .with_context(|| format!("ingesting CCC logs under {}", a.ccp_root.display())),
    };
    bar.finish();
    let r = res?;
    let store = r
        .store_dir
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if flags.json {
        let v = serde_json::json!({
            "store": store,
            "added": r.account.added,
            "records_in_store": r.record_count(),
            "account": r.account,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} new record(s) in {} ({} in the store)",
            r.account.added,
            store,
            r.record_count()
        );
    }
    print_account(what, &r.account);
    Ok(exit_for(flags.strict, &r.account))
}
