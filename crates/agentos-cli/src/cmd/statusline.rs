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
}

/// Runs `agentos statusline`.
pub fn run(a: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
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
    let figures = statusline::figures(&state, &input, jiff::Timestamp::now(), &tz, !caught_up);
    println!("{}", statusline::render(&figures, style));
    Ok(ExitStatus::Ok)
}
