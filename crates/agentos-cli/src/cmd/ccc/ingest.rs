//! `agentos ccc ingest claude|codex|ccc`: feed the local ingest store (`<data_dir>/ingest/`), reading
//! only bytes that are new since the last run.

use std::path::PathBuf;
use std::sync::Arc;

use agentos_ingest::Progress;
use agentos_ingest::ingest::{RunOptions, ingest_ccc, ingest_claude};
use agentos_ingest::source::codex::Codex;
use anyhow::Context as _;

use crate::context::Context;
use crate::flags::{Strict, Threads};
use crate::output::{Bar, ExitStatus, print_account, print_json, skipped_lines_status};

/// Subcommands of `agentos ccc ingest`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Claude Code transcripts (`~/.claude/projects/**/*.jsonl`, `$CLAUDE_CONFIG_DIR`).
    Claude(ClaudeArgs),
    /// Codex CLI session rollouts (`${CODEX_HOME:-~/.codex}/sessions/**/rollout-*.jsonl`).
    Codex(CodexArgs),
    /// CCC shim usage logs of a CCC root (`logs/usage.jsonl*`, `logs/archive/usage*.jsonl`).
    Ccc(CccArgs),
}

/// Flags shared by `ingest claude` and `ingest ccc`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunFlags {
    /// `--threads`.
    #[command(flatten)]
    pub threads: Threads,
    /// `--strict`.
    #[command(flatten)]
    pub strict: Strict,
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

/// Arguments of `agentos ccc ingest codex`.
#[derive(Debug, clap::Args)]
pub struct CodexArgs {
    /// A Codex home (holding `sessions/`) or a sessions dir (default `$CODEX_HOME`, else
    /// `~/.codex`).
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

/// Runs `agentos ccc ingest`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let s = ctx.ingest()?;
    let (flags, what) = match &cmd {
        Command::Claude(a) => (a.run.clone(), "ingest claude"),
        Command::Codex(a) => (a.run.clone(), "ingest codex"),
        Command::Ccc(a) => (a.run.clone(), "ingest ccc"),
    };
    let opts = RunOptions {
        threads: s.threads(flags.threads.threads),
        ..RunOptions::default()
    };
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(progress.clone(), what);
    let res = match &cmd {
        Command::Claude(a) => ingest_claude(&s.data_dir, a.path.as_deref(), &opts, Some(&progress))
            .context("ingesting Claude Code transcripts"),
        Command::Codex(a) => agentos_ingest::agent::ingest::<Codex>(
            &s.data_dir,
            a.path.as_deref(),
            &opts,
            Some(&progress),
        )
        .context("ingesting Codex CLI sessions"),
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
        print_json(&v)?;
    } else {
        println!(
            "{} new record(s) in {} ({} in the store)",
            r.account.added,
            store,
            r.record_count()
        );
    }
    print_account(what, &r.account);
    Ok(skipped_lines_status(flags.strict.strict, &r.account))
}
