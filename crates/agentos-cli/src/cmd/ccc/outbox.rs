//! `agentos ccc outbox status`: the delivery backlog of a data dir (read-only; works while an
//! uploader runs).

use agentos_delivery::status;
use anyhow::Context as _;

use crate::context::Context;
use crate::output::{ExitStatus, print_json};

/// Subcommands of `agentos ccc outbox`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pending events and bytes, last ack, last error, retries, rejected events, server gaps.
    Status(StatusArgs),
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
    }
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
            "delivered:         {} new, {} duplicates, {} withheld by the tier",
            st.accepted_total, st.duplicates_total, st.withheld_total
        );
        let gaps = if st.server_gaps.is_empty() {
            "none".to_string()
        } else {
            st.server_gaps
                .iter()
                .map(|[a, b]| format!("{a}-{b}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "server watermark:  {}, gaps: {gaps}",
            st.server_watermark
                .map_or_else(|| "unknown".to_string(), |w| w.to_string())
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
