//! `agentos statusline`: the line Claude Code shows in its status bar (`statusLine` in its
//! settings; `agentos claude install --statusline` sets it). Reads Claude Code's statusline JSON
//! on stdin, prints one line, exits 0 whatever happens. The figures come from
//! `agentos_claude::statusline`.

use std::io::Read as _;
use std::time::{Duration, Instant};

use agentos_claude::statusline::{self, StatuslineInput, Style};

use crate::context::Context;
use crate::output::{ExitStatus, no_color};

/// Folding new log lines stops here; the rest is folded by the next call.
const FOLD_BUDGET: Duration = Duration::from_millis(60);
/// Statusline stdin larger than this is not statusline JSON.
const MAX_INPUT: u64 = 1 << 20;

/// Arguments of `agentos statusline`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Maximum width (default: `$COLUMNS`, else unlimited).
    #[arg(long)]
    pub width: Option<usize>,
    /// Fetch `/v1/usage` into the cache and exit (what the statusline starts in the background).
    #[arg(long, hide = true)]
    pub refresh_usage: bool,
}

/// Runs `agentos statusline`.
pub fn run(a: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    if a.refresh_usage {
        let cfg = ctx.config()?;
        if let Some(url) = &cfg.ccc.url {
            statusline::refresh_usage(cfg.data_dir(), url, cfg.ccc.api_key.as_deref())?;
        }
        return Ok(ExitStatus::Ok);
    }
    let mut bytes = Vec::new();
    let _ = std::io::stdin().take(MAX_INPUT).read_to_end(&mut bytes);
    // A line with what is known beats an error in the status bar.
    let input: StatuslineInput = serde_json::from_slice(&bytes).unwrap_or_default();
    let width = a.width.or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse().ok())
    });
    let style = Style {
        // Claude Code renders ANSI colours although stdout is a pipe: only NO_COLOR turns them off.
        color: !no_color(),
        width,
    };
    let tz = jiff::tz::TimeZone::system();
    let (state, caught_up) = match ctx.data_dir() {
        Ok(dir) => {
            let mut st = statusline::load(dir);
            let before = st.log_offset;
            let done = statusline::fold(&mut st, dir, &tz, started + FOLD_BUDGET).unwrap_or(true);
            if st.log_offset != before {
                let _ = statusline::save(dir, &st);
            }
            (st, done)
        }
        Err(_) => (statusline::State::default(), true),
    };
    let now = jiff::Timestamp::now();
    let mut figures = statusline::figures(&state, &input, now, &tz, !caught_up);
    figures.quota = quota(ctx, &input.model.id, now);
    println!("{}", statusline::render(&figures, style));
    Ok(ExitStatus::Ok)
}

/// The model's quota from the cache, starting a background refresh when the cache is stale
/// (never waiting for it: this line shows what the cache has now).
fn quota(ctx: &Context, model: &str, now: jiff::Timestamp) -> Option<statusline::Quota> {
    let cfg = ctx.config().ok()?;
    cfg.ccc.url.as_ref()?;
    let dir = cfg.data_dir();
    let cache = statusline::load_usage(dir);
    if statusline::usage_is_stale(cache.as_ref(), now) {
        let _ = crate::context::spawn_detached_unless_locked(
            &ctx.global_flag_args(),
            &["statusline", "--refresh-usage"],
            &statusline::usage_lock(dir),
        );
    }
    statusline::quota_for(&cache?, model)
}
