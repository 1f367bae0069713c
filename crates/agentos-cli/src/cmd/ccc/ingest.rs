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
    /// Also record the Codex turns not recorded yet into the recorder log (`windows.jsonl`),
    /// one recorder session per Codex session, each turn at the time Codex made the request:
    /// `agentos ccc sync` then delivers them to the collector under the session's tier, like
    /// turns from the Claude Code hooks.
    #[arg(long)]
    pub record: bool,
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
    let (account, in_store, store_dir) = (r.account.clone(), r.record_count(), r.store_dir.clone());
    // The run may hold the store (its lock) for a deferred report: release it before reading
    // the store again to record.
    drop(r);
    let recorded = match (&cmd, store_dir) {
        (Command::Codex(a), Some(dir)) if a.record => Some(record_codex(ctx, &dir)?),
        _ => None,
    };
    if flags.json {
        let mut v = serde_json::json!({
            "store": store,
            "added": account.added,
            "records_in_store": in_store,
            "account": account,
        });
        if let Some(rec) = &recorded {
            v["recorded"] = serde_json::to_value(rec)?;
        }
        print_json(&v)?;
    } else {
        println!(
            "{} new record(s) in {} ({} in the store)",
            account.added, store, in_store
        );
        if let Some(rec) = &recorded {
            println!(
                "recorded {} turn(s) of {} session(s) into the log ({} already there); `agentos ccc sync` delivers them",
                rec.turns, rec.sessions, rec.already_in_log
            );
        }
    }
    print_account(what, &account);
    Ok(skipped_lines_status(flags.strict.strict, &account))
}

/// What `--record` wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct RecordedTurns {
    /// Turns appended to the log.
    turns: u64,
    /// Sessions they belong to.
    sessions: u64,
    /// Turns a previous run had already written (it stopped before saving its state).
    already_in_log: u64,
}

/// `ingest codex --record`: appends the store's Codex turns not forwarded yet to the recorder
/// log, opening a recorder session (licence handshake, tier) for each Codex session seen for
/// the first time; then saves what was forwarded (`agentos_ingest::forward`).
fn record_codex(ctx: &Context, store_dir: &std::path::Path) -> anyhow::Result<RecordedTurns> {
    use agentos_ingest::forward::{ForwardState, pending};
    use agentos_recorder::{Recorder, StartRequest};
    let store =
        agentos_ingest::store::Store::open(store_dir, agentos_ingest::store::SourceKind::Codex, "")
            .with_context(|| format!("opening {}", store_dir.display()))?;
    let prices = ctx.ingest()?.prices(None)?;
    let mut rec = Recorder::open(ctx.config()?.clone())?;
    let log = rec.paths().windows.clone();
    let mut state = ForwardState::load(store_dir)?;
    let todo = pending(&store, &mut state, &log, &prices)
        .with_context(|| format!("reading {} and {}", store_dir.display(), log.display()))?;
    let mut out = RecordedTurns {
        already_in_log: todo.already_in_log,
        ..RecordedTurns::default()
    };
    for s in todo.sessions {
        let tier = match s.tier {
            Some(t) => t,
            None => {
                let repo = agentos_claude::git::repo_info(std::path::Path::new(&s.repo));
                let opened = rec.open_session(StartRequest {
                    repo_id: repo.repo_id,
                    branch: repo.branch,
                    commit: repo.commit,
                    session_id: Some(agentos_core::SessionId(s.session_id.clone())),
                    ..StartRequest::default()
                })?;
                state
                    .sessions
                    .insert(s.session_id.clone(), opened.session.tier);
                opened.session.tier
            }
        };
        out.turns += s.turns.len() as u64;
        out.sessions += 1;
        rec.append_batch(tier, s.turns)?;
    }
    rec.flush()?;
    state.records = todo.records;
    state.log_len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    state.save(store_dir)?;
    Ok(out)
}
