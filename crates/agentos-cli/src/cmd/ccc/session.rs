//! `agentos ccc session start|end`: open and close the session that `agentos ccc turn` records
//! into. The session lives in the data dir, so each shell-hook call can be a new process.

use agentos_core::tier::Tier;
use agentos_recorder::{Recorder, RecorderError, StartRequest};
use anyhow::Context as _;
use serde_json::{Value, json};

use crate::context::Context;
use crate::flags::JsonReport;
use crate::output::{ExitStatus, error_line, print_json, report_log_warnings, warn_line};

/// Subcommands of `agentos ccc session`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start a session (license handshake; prints the session id).
    Start(StartArgs),
    /// End the current session.
    End(EndArgs),
}

/// Arguments of `agentos ccc session start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Repository the agent works in.
    #[arg(long, default_value = "")]
    pub repo_id: String,
    /// Branch at session start.
    #[arg(long, default_value = "")]
    pub branch: String,
    /// Commit at session start.
    #[arg(long, default_value = "")]
    pub commit: String,
    /// License id for the session record (default: the license's `sub`, else empty).
    #[arg(long)]
    pub license_id: Option<String>,
    /// Privacy tier: local, minimized or full (default: `[ccc] tier` / `AGENTOS_TIER`, else local).
    #[arg(long)]
    pub tier: Option<Tier>,
    /// Session metadata, repeatable (only allowlisted keys ever leave).
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Refuse to start (exit 1) instead of recording as `local` when the license lacks the
    /// tier's entitlement.
    #[arg(long)]
    pub strict_license: bool,
    /// Use this session id instead of a new UUIDv7.
    #[arg(long)]
    pub session_id: Option<String>,
    /// Print a JSON report instead of the bare session id.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentos ccc session end`.
#[derive(Debug, clap::Args)]
pub struct EndArgs {
    /// Free-text notes (kept locally; never leave the machine).
    #[arg(long)]
    pub notes: Option<String>,
    /// Do not upload the summary now (the next `agentos ccc sync` sends it).
    #[arg(long, conflicts_with = "wait")]
    pub no_upload: bool,
    /// Upload the summary in this process and wait for it (default: a background
    /// `agentos ccc sync` sends it, so closing a session never waits on the network).
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: how long the summary upload may take, in seconds.
    #[arg(long, default_value_t = 10)]
    pub upload_timeout: u64,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonReport,
}

/// Runs `agentos ccc session`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitStatus> {
    match cmd {
        Command::Start(a) => start(a, ctx),
        Command::End(a) => end(a, ctx),
    }
}

fn start(a: StartArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let cfg = ctx.config()?;
    let mut metadata = serde_json::Map::new();
    for kv in &a.metadata {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--metadata {kv:?} is not KEY=VALUE"))?;
        metadata.insert(k.to_string(), Value::from(v));
    }
    let mut rec = Recorder::open(cfg.clone())?;
    let req = StartRequest {
        repo_id: a.repo_id,
        branch: a.branch,
        commit: a.commit,
        license_id: a.license_id,
        tier: a.tier,
        metadata,
        strict_license: a.strict_license,
        session_id: a.session_id.map(agentos_core::SessionId),
    };
    let out = match rec.start_session(req) {
        Ok(out) => out,
        Err(RecorderError::LicenseRefused { requested, problem }) => {
            if a.json {
                print_json(&json!({
                    "started": false,
                    "requested_tier": requested,
                    "problem": {"code": problem.code(), "message": problem.to_string()},
                }))?;
            }
            error_line(&format!(
                "refusing to start a {requested} session (--strict-license): {problem}"
            ));
            return Ok(ExitStatus::Failure);
        }
        Err(e) => return Err(e.into()),
    };
    report_log_warnings(&out.recorded.warnings);
    if let Some(problem) = &out.downgrade {
        warn_line(&format!(
            "tier {} NOT granted: {problem}. Recording LOCALLY ONLY as tier local (nothing will leave this machine).",
            out.session.requested_tier
        ));
    }
    if let Some(old) = &out.replaced {
        warn_line(&format!(
            "session {old} was still current and never ended; it is replaced"
        ));
    }
    if a.json {
        print_json(&json!({
            "started": true,
            "session_id": out.session.session_id,
            "tier": out.session.tier,
            "requested_tier": out.session.requested_tier,
            "downgrade": out.downgrade.as_ref().map(|p| json!({"code": p.code(), "message": p.to_string()})),
            "license": out.license.as_ref().map(|l| json!({
                "kid": l.kid, "plan": l.claims.plan.as_str(), "features": l.claims.features, "exp": l.claims.exp,
            })),
            "seq": out.recorded.seq,
            "event_id": out.recorded.event_id,
            "data_dir": rec.paths().data_dir,
        }))?;
    } else {
        println!("{}", out.session.session_id);
    }
    Ok(ExitStatus::Ok)
}

fn end(a: EndArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let mut rec = Recorder::open(ctx.config()?.clone())?;
    let session = rec.current_session()?;
    let r = rec.end_session(a.notes)?;
    report_log_warnings(&r.warnings);
    let session_id = session.map(|s| s.session_id.0).unwrap_or_default();
    let upload = if a.no_upload {
        "skipped"
    } else if a.wait {
        upload_summary_at_close(ctx, r.tier, &rec, a.upload_timeout)
    } else {
        upload_in_background(ctx, r.tier)
    };
    if a.json.json {
        print_json(&json!({
            "ended": true, "session_id": session_id, "seq": r.seq, "event_id": r.event_id, "tier": r.tier,
            "summary_upload": upload,
        }))?;
    } else {
        println!("ended {session_id}");
    }
    Ok(ExitStatus::Ok)
}

/// What may leave at close, decided before any upload: `None` = go ahead.
fn withheld_at_close(ctx: &Context, session_tier: Tier) -> Option<&'static str> {
    if !session_tier.allows(agentos_core::tier::Egress::Metrics) {
        return Some("withheld");
    }
    if !ctx.config().is_ok_and(|cfg| cfg.ccc.url.is_some()) {
        return Some("no_url");
    }
    None
}

/// The default at close: a detached `agentos ccc sync` sends the summary (and, under `full`,
/// the events); this process returns at once whatever the network does.
fn upload_in_background(ctx: &Context, session_tier: Tier) -> &'static str {
    if let Some(why) = withheld_at_close(ctx, session_tier) {
        return why;
    }
    let Ok(data_dir) = ctx.data_dir() else {
        return "pending";
    };
    match crate::context::spawn_background_sync(&ctx.global_flag_args(), data_dir) {
        Ok(true) => "background",
        Ok(false) => "pending",
        Err(e) => {
            warn_line(&format!(
                "could not start the background upload ({e}); `agentos ccc sync` will send the summary"
            ));
            "pending"
        }
    }
}

/// Closing a session with `--wait` sends the summary for the minimized and full tiers (the seed's "upload at
/// session close"). A failure is a warning, not an error: the summary stays on disk and the next
/// `agentos ccc sync` sends it, so nothing is lost. The tier is the one the session was recorded
/// under (license-checked at start, forced to `local` by `DO_NOT_TRACK`).
fn upload_summary_at_close(
    ctx: &Context,
    session_tier: Tier,
    rec: &Recorder,
    timeout_secs: u64,
) -> &'static str {
    use agentos_delivery::{SummaryOutcome, upload_summary_blocking};
    if let Some(why) = withheld_at_close(ctx, session_tier) {
        return why;
    }
    let Some(summary) = rec.summary() else {
        return "no_summary";
    };
    let result = ctx.delivery_settings().and_then(|mut s| {
        s.tier = Some(session_tier);
        upload_summary_blocking(&s, &summary, std::time::Duration::from_secs(timeout_secs))
            .map_err(anyhow::Error::from)
    });
    match result {
        Ok(SummaryOutcome::Sent) => "sent",
        Ok(SummaryOutcome::Unchanged) => "unchanged",
        Ok(SummaryOutcome::Withheld) => "withheld",
        Ok(SummaryOutcome::NoSummary) => "no_summary",
        Ok(SummaryOutcome::OutOfTime) => {
            warn_line("summary upload timed out; `agentos ccc sync` will send it");
            "pending"
        }
        Err(e) => {
            warn_line(&format!(
                "summary upload failed ({e:#}); `agentos ccc sync` will send it"
            ));
            "pending"
        }
    }
}
