//! `agentos ccc outbox status`: the delivery backlog of a data dir (read-only; works while an
//! uploader runs); `agentos ccc outbox forget`: drop held-back events for good, on purpose.

use agentos_delivery::status;
use anyhow::Context as _;

use crate::context::Context;
use crate::output::{ExitStatus, print_json};

/// Subcommands of `agentos ccc outbox`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pending events and bytes, last ack, last error, retries, rejected events, server gaps.
    Status(StatusArgs),
    /// Forget pending events for good: every event recorded under `--below` or higher that has
    /// not left yet (held back, or not read yet) is never sent; the decision is recorded in
    /// `delivery/forget.jsonl` and the collector is told on the next sync.
    Forget(ForgetArgs),
}

/// Arguments of `agentos ccc outbox forget`.
#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// Forget the pending events recorded under this tier or higher (`full`: every event held
    /// back because a run's tier was below full).
    #[arg(long)]
    pub below: agentos_core::tier::Tier,
    /// Do it (without `--yes` only says what would be forgotten, and exits 1).
    #[arg(long)]
    pub yes: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentos ccc outbox status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Print the Prometheus text exposition format.
    #[arg(long)]
    pub prometheus: bool,
}

/// Runs `agentos ccc outbox`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitStatus> {
    match cmd {
        Command::Status(a) => status_cmd(a, ctx),
        Command::Forget(a) => forget_cmd(a, ctx),
    }
}

fn forget_cmd(a: ForgetArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let settings = ctx.delivery_settings()?;
    let decision = if a.yes {
        let mut d = agentos_delivery::Delivery::open(settings)?;
        d.forget(a.below)?
    } else {
        agentos_delivery::forget_preview(&settings, a.below)?
    };
    if a.json {
        print_json(&serde_json::json!({
            "forgotten": a.yes,
            "decision": decision,
        }))?;
    } else if a.yes {
        println!(
            "forgot {} events recorded under {} or higher (seqs up to {}); they will never be sent, and the collector is told on the next sync",
            decision.events, decision.below, decision.through_seq
        );
    } else {
        println!(
            "would forget {} events recorded under {} or higher (seqs up to {}); rerun with --yes to forget them for good",
            decision.events, decision.below, decision.through_seq
        );
    }
    Ok(if a.yes {
        ExitStatus::Ok
    } else {
        ExitStatus::Failure
    })
}

fn status_cmd(a: StatusArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let data_dir = ctx.data_dir()?;
    let st = status(data_dir)
        .with_context(|| format!("reading the outbox of {}", data_dir.display()))?;
    if a.json {
        print_json(&st)?;
    } else if a.prometheus {
        print!("{}", st.to_prometheus());
    } else {
        let ts =
            |t: Option<jiff::Timestamp>| t.map_or_else(|| "never".to_string(), |t| t.to_string());
        println!("data dir:          {}", st.data_dir.display());
        println!(
            "pending:           {} events, {} bytes",
            st.pending_events, st.pending_bytes
        );
        if st.torn_tail_bytes > 0 {
            println!(
                "torn tail:         {} bytes after the last complete line (not sent)",
                st.torn_tail_bytes
            );
        }
        println!(
            "last ack:          {} (seq {})",
            ts(st.last_ack_at),
            st.last_ack_seq
        );
        match &st.last_error {
            Some(e) => println!("last error:        {} {}: {}", e.at, e.code, e.message),
            None => println!("last error:        none"),
        }
        println!(
            "retries:           {} total, {} since the last success",
            st.retries_total, st.consecutive_failures
        );
        println!(
            "rejected:          {} (delivery/rejected.jsonl)",
            st.rejected
        );
        println!(
            "delivered:         {} new, {} duplicates; {} recorded as local/minimized (never sent as events)",
            st.accepted_total, st.duplicates_total, st.withheld_total
        );
        let ranges = |r: &[[u64; 2]]| {
            if r.is_empty() {
                "none".to_string()
            } else {
                r.iter()
                    .map(|[a, b]| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        println!(
            "held back:         {} events (seqs {}); a sync whose tier allows them sends them",
            st.held_events,
            ranges(&st.held)
        );
        println!(
            "forgotten:         {} events on purpose, {} decisions{}",
            st.forgotten_events,
            st.forget_decisions.len(),
            st.forget_decisions
                .last()
                .map(|d| format!(
                    " (last {}: below {}, through seq {})",
                    d.at, d.below, d.through_seq
                ))
                .unwrap_or_default()
        );
        if let Some(p) = &st.ledger_problem {
            println!("ledger:            {p}; the next sync rescans from the start");
        }
        println!(
            "server watermark:  {}, gaps: {}, held: {}, forgotten: {}",
            st.server_watermark
                .map_or_else(|| "unknown".to_string(), |w| w.to_string()),
            ranges(&st.server_gaps),
            ranges(&st.server_held),
            ranges(&st.server_forgotten)
        );
        println!("summary sent:      {}", ts(st.summary_sent_at));
        if let Some(p) = &st.cursor_problem {
            println!("cursor:            {p}; the next sync rescans from the start");
        }
        if let Some(r) = st.rescans.last() {
            println!("last rescan:       {} ({})", r.at, r.reason);
        }
        println!(
            "uploader running:  {}",
            if st.uploader_running { "yes" } else { "no" }
        );
    }
    Ok(ExitStatus::Ok)
}
