//! The command tree. Each leaf lives in its own file under `cmd/`.

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::context::{Context, GlobalArgs};
use crate::output::ExitStatus;

/// agentos: record what coding agents cost and ship, and deliver it to a control center (CCC)
/// under a privacy tier you choose.
#[derive(Debug, Parser)]
#[command(name = "agentos", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record a sample session in each privacy tier and show where the artefacts are.
    Demo(cmd::demo::Args),
    /// Create, issue, verify and inspect license packs.
    #[command(subcommand)]
    License(cmd::license::Command),
    /// Usage reports: daily, weekly, monthly, session, blocks.
    #[command(subcommand)]
    Report(cmd::ccc::report::Command),
    /// The price table reports use, with the date it was taken.
    Prices(cmd::prices::Args),
    /// Ingest a source into the local store (read by `agentos report`).
    #[command(subcommand)]
    Ingest(cmd::ccc::ingest::Command),
    /// Claude Code wired in: hooks that record every turn, install/uninstall, status.
    #[command(subcommand)]
    Claude(cmd::claude::Command),
    /// Claude Code's status line: model, session/today/block cost, burn rate (reads its JSON on
    /// stdin).
    Statusline(cmd::statusline::Args),
    /// The dashboard for one person: this machine's usage and recorded sessions in the browser
    /// (loopback only, no sign-in).
    Ui(cmd::ui::Args),
    /// Everything that talks CCC: sessions, delivery, the collector, ingest and reports.
    #[command(subcommand)]
    Ccc(CccCommand),
}

/// `agentos ccc …`
#[derive(Debug, Subcommand)]
pub enum CccCommand {
    /// Start, or end, a recorded session.
    #[command(subcommand)]
    Session(cmd::ccc::session::Command),
    /// Record one turn of the current session.
    Turn(cmd::ccc::turn::Args),
    /// Recompute metrics_summary.json from windows.jsonl.
    Rollup(cmd::ccc::rollup::Args),
    /// Print exactly the bytes that would leave under a tier.
    Preview(cmd::ccc::preview::Args),
    /// Deliver pending events and summaries once.
    Sync(cmd::ccc::sync::Args),
    /// Inspect the delivery backlog.
    #[command(subcommand)]
    Outbox(cmd::ccc::outbox::Command),
    /// Run the collector (CCC endpoint).
    Serve(cmd::ccc::serve::Args),
    /// Manage collector API keys.
    #[command(subcommand)]
    Keys(cmd::ccc::keys::Command),
    /// Backfill a CCC root (usage logs, results, usage snapshot) into a summary file.
    Backfill(cmd::ccc::backfill::Args),
    /// Ingest a source into the local store (same as `agentos ingest`).
    #[command(subcommand)]
    Ingest(cmd::ccc::ingest::Command),
    /// Usage reports (same as `agentos report`).
    #[command(subcommand)]
    Report(cmd::ccc::report::Command),
}

/// Dispatches a parsed command line; the [`Context`] is built here, once.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let ctx = &Context::new(cli.global);
    match cli.command {
        Command::Demo(a) => cmd::demo::run(a, ctx),
        Command::License(c) => cmd::license::run(c, ctx),
        Command::Report(c) => cmd::ccc::report::run(c, ctx),
        Command::Ingest(c) => cmd::ccc::ingest::run(c, ctx),
        Command::Prices(a) => cmd::prices::run(&a, ctx),
        Command::Claude(c) => cmd::claude::run(c, ctx),
        Command::Statusline(a) => cmd::statusline::run(a, ctx),
        Command::Ui(a) => cmd::ui::run(a, ctx),
        Command::Ccc(c) => match c {
            CccCommand::Session(c) => cmd::ccc::session::run(c, ctx),
            CccCommand::Turn(a) => cmd::ccc::turn::run(a, ctx),
            CccCommand::Rollup(a) => cmd::ccc::rollup::run(a, ctx),
            CccCommand::Preview(a) => cmd::ccc::preview::run(a, ctx),
            CccCommand::Sync(a) => cmd::ccc::sync::run(a, ctx),
            CccCommand::Outbox(c) => cmd::ccc::outbox::run(c, ctx),
            CccCommand::Serve(a) => cmd::ccc::serve::run(a, ctx),
            CccCommand::Keys(c) => cmd::ccc::keys::run(c, ctx),
            CccCommand::Backfill(a) => cmd::ccc::backfill::run(a, ctx),
            CccCommand::Ingest(c) => cmd::ccc::ingest::run(c, ctx),
            CccCommand::Report(a) => cmd::ccc::report::run(a, ctx),
        },
    }
}
