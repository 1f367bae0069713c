//! `agentos statusline`: one line for Claude Code's status bar, from the log the hooks write.
//!
//! Figures: the model, this session's cost, today's cost (local calendar day), the running
//! 5-hour block's cost and time left (the block rule of [`agentos_ingest::report::BlockTracker`],
//! shared with `agentos ccc report blocks`) and its burn rate. Costs are the `cost` payloads the
//! hooks recorded with the offline price table.
//!
//! Speed: the aggregates live in `claude/statusline_state.json` with the log offset they cover;
//! each call folds only the log lines appended since (bounded by a deadline; a first call on a
//! large log catches up over several calls and says so with `…`). No network, ever.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::time::Instant;

use agentos_config::DataDir;
use agentos_ingest::report::{BLOCK_LEN_MS, BlockTracker};
use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::error::ClaudeError;

/// Version of the state file.
pub const STATE_VERSION: u32 = 1;
/// File name of the state below `claude/`.
pub const STATE_FILE: &str = "statusline_state.json";
/// Days of per-day cost kept.
const KEEP_DAYS: usize = 40;
/// Sessions kept (the most recently active).
const KEEP_SESSIONS: usize = 200;

/// What Claude Code sends on the statusline command's stdin (the fields used here).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatuslineInput {
    /// The session.
    #[serde(default)]
    pub session_id: String,
    /// The model in use.
    #[serde(default)]
    pub model: ModelInfo,
}

/// `model` of the statusline input.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelInfo {
    /// Model id (`claude-sonnet-4-5-20250929`).
    #[serde(default)]
    pub id: String,
    /// Display name (`Sonnet 4.5`).
    #[serde(default)]
    pub display_name: String,
}

/// Cost of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionCost {
    /// USD.
    pub usd: f64,
    /// Last turn (epoch ms).
    pub last_ms: i64,
}

/// The folded aggregates and how much of the log they cover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Bytes of `windows.jsonl` folded (a line start).
    pub log_offset: u64,
    /// Local date (`2026-09-01`) → USD.
    pub days: BTreeMap<String, f64>,
    /// Session id → cost.
    pub sessions: BTreeMap<String, SessionCost>,
    /// The block rule's state.
    pub block: BlockTracker,
    /// USD of the current block.
    pub block_usd: f64,
}

/// The figures of one line.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Model display name (else id).
    pub model: String,
    /// This session's cost.
    pub session_usd: f64,
    /// Today's cost.
    pub today_usd: f64,
    /// The running block: (cost, milliseconds left, USD per hour), if one runs.
    pub block: Option<(f64, i64, f64)>,
    /// The log was not fully folded within the deadline.
    pub catching_up: bool,
}

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    recorded_at: jiff::Timestamp,
    #[serde(default)]
    turn: Option<LineTurn>,
    #[serde(default)]
    cost: Option<LineCost>,
}

#[derive(Deserialize)]
struct LineTurn {
    session_id: String,
}

#[derive(Deserialize)]
struct LineCost {
    estimated_usd: f64,
}

/// Loads the state (fresh when missing, corrupt or of another version).
pub fn load(data_dir: &Path) -> State {
    let p = DataDir::new(data_dir).claude_dir().join(STATE_FILE);
    std::fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice::<State>(&b).ok())
        .filter(|s| s.version == STATE_VERSION)
        .unwrap_or_else(|| State {
            version: STATE_VERSION,
            ..State::default()
        })
}

/// Folds the log lines appended since `state.log_offset`, until `deadline`. Returns whether
/// the whole log was folded.
///
/// # Errors
/// The log exists but cannot be read.
pub fn fold(
    state: &mut State,
    data_dir: &Path,
    tz: &jiff::tz::TimeZone,
    deadline: Instant,
) -> Result<bool, ClaudeError> {
    let log = DataDir::new(data_dir).windows();
    let mut f = match std::fs::File::open(&log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(ClaudeError::io("opening", &log)(e)),
    };
    let len = f.metadata().map_err(ClaudeError::io("stat", &log))?.len();
    if len < state.log_offset {
        // The log was replaced: start over.
        *state = State {
            version: STATE_VERSION,
            ..State::default()
        };
    }
    f.seek(SeekFrom::Start(state.log_offset))
        .map_err(ClaudeError::io("seeking", &log))?;
    let finder = memmem::Finder::new(b"\"type\":\"turn\"");
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        if Instant::now() >= deadline {
            return Ok(false);
        }
        let n = f.read(&mut buf).map_err(ClaudeError::io("reading", &log))?;
        if n == 0 {
            return Ok(true);
        }
        carry.extend_from_slice(&buf[..n]);
        let Some(last_nl) = memchr::memrchr(b'\n', &carry) else {
            continue;
        };
        for line in carry[..last_nl].split(|&b| b == b'\n') {
            if finder.find(line).is_some()
                && let Ok(l) = serde_json::from_slice::<Line>(line)
            {
                add(state, &l, tz);
            }
        }
        state.log_offset += last_nl as u64 + 1;
        carry.drain(..=last_nl);
    }
}

fn add(state: &mut State, l: &Line, tz: &jiff::tz::TimeZone) {
    let (Some(turn), "turn") = (&l.turn, l.kind.as_str()) else {
        return;
    };
    let usd = l.cost.as_ref().map_or(0.0, |c| c.estimated_usd);
    let ms = l.recorded_at.as_millisecond();
    let day = tz.to_datetime(l.recorded_at).date().to_string();
    *state.days.entry(day).or_default() += usd;
    let s = state.sessions.entry(turn.session_id.clone()).or_default();
    s.usd += usd;
    s.last_ms = s.last_ms.max(ms);
    let before = state.block.start_ms;
    let start = state.block.observe(ms);
    if before != Some(start) {
        state.block_usd = 0.0;
    }
    state.block_usd += usd;
    prune(state);
}

fn prune(state: &mut State) {
    while state.days.len() > KEEP_DAYS {
        state.days.pop_first();
    }
    if state.sessions.len() > KEEP_SESSIONS {
        let mut by_age: Vec<(i64, String)> = state
            .sessions
            .iter()
            .map(|(k, v)| (v.last_ms, k.clone()))
            .collect();
        by_age.sort();
        for (_, k) in by_age.iter().take(state.sessions.len() - KEEP_SESSIONS) {
            state.sessions.remove(k);
        }
    }
}

/// Saves the state (replace by rename; concurrent statuslines each write a complete state).
///
/// # Errors
/// I/O errors.
pub fn save(data_dir: &Path, state: &State) -> Result<(), ClaudeError> {
    let dir = DataDir::new(data_dir).claude_dir();
    std::fs::create_dir_all(&dir).map_err(ClaudeError::io("creating", &dir))?;
    let p = dir.join(STATE_FILE);
    let bytes = serde_json::to_vec(state)
        .map_err(|e| ClaudeError::io("serializing", &p)(std::io::Error::other(e)))?;
    agentos_config::durable::replace_file(&p, &bytes).map_err(ClaudeError::io("writing", &p))
}

/// The figures for `input` at `now`.
pub fn figures(
    state: &State,
    input: &StatuslineInput,
    now: jiff::Timestamp,
    tz: &jiff::tz::TimeZone,
    catching_up: bool,
) -> Figures {
    let now_ms = now.as_millisecond();
    let today = tz.to_datetime(now).date().to_string();
    let block = state.block.active_at(now_ms).map(|start| {
        let elapsed_h = ((now_ms - start).max(60_000)) as f64 / 3_600_000.0;
        (
            state.block_usd,
            start + BLOCK_LEN_MS - now_ms,
            state.block_usd / elapsed_h,
        )
    });
    Figures {
        model: if input.model.display_name.is_empty() {
            input.model.id.clone()
        } else {
            input.model.display_name.clone()
        },
        session_usd: state.sessions.get(&input.session_id).map_or(0.0, |s| s.usd),
        today_usd: state.days.get(&today).copied().unwrap_or(0.0),
        block,
        catching_up,
    }
}

/// How to draw a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub color: bool,
    /// Maximum width in characters (`None` = unlimited).
    pub width: Option<usize>,
}

/// Renders the line: segments in priority order, the last ones dropped until it fits.
pub fn render(f: &Figures, style: Style) -> String {
    let paint = |text: String, sgr: &str| {
        if style.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut segs: Vec<(String, usize)> = Vec::new();
    let mut push = |text: String, sgr: &str| {
        let w = text.chars().count();
        segs.push((paint(text, sgr), w));
    };
    push(f.model.clone(), "1");
    push(format!("session ${:.2}", f.session_usd), "0");
    push(format!("today ${:.2}", f.today_usd), "0");
    if let Some((usd, left_ms, rate)) = f.block {
        let mins = (left_ms.max(0) / 60_000) as u64;
        // Less than half an hour left in the block is worth a glance; ten minutes, a warning.
        let sgr = if mins < 10 {
            "31"
        } else if mins < 30 {
            "33"
        } else {
            "32"
        };
        push(
            format!("block ${usd:.2} ({}h{:02}m left)", mins / 60, mins % 60),
            sgr,
        );
        push(format!("${rate:.2}/h"), "0");
    }
    if f.catching_up {
        push("…".into(), "2");
    }
    const SEP: &str = " | ";
    let mut out = String::new();
    let mut width = 0;
    for (i, (text, w)) in segs.iter().enumerate() {
        let add = w + if i == 0 { 0 } else { SEP.len() };
        if style.width.is_some_and(|max| width + add > max) {
            break;
        }
        if i > 0 {
            out.push_str(SEP);
        }
        out.push_str(text);
        width += add;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figs() -> Figures {
        Figures {
            model: "Sonnet 4.5".into(),
            session_usd: 0.4234,
            today_usd: 3.1,
            block: Some((2.05, 2 * 3_600_000 + 13 * 60_000, 0.92)),
            catching_up: false,
        }
    }

    #[test]
    fn the_line_has_every_figure_and_no_colour_when_off() {
        let s = render(
            &figs(),
            Style {
                color: false,
                width: None,
            },
        );
        assert_eq!(
            s,
            "Sonnet 4.5 | session $0.42 | today $3.10 | block $2.05 (2h13m left) | $0.92/h"
        );
        let c = render(
            &figs(),
            Style {
                color: true,
                width: None,
            },
        );
        assert!(c.contains("\x1b[32mblock"));
    }

    #[test]
    fn a_narrow_width_drops_the_last_segments() {
        let s = render(
            &figs(),
            Style {
                color: true,
                width: Some(40),
            },
        );
        let visible: String = s
            .split('\x1b')
            .map(|p| p.split_once('m').map_or(p, |(_, rest)| rest))
            .collect();
        assert!(visible.chars().count() <= 40, "{visible}");
        assert!(visible.starts_with("Sonnet 4.5 | session $0.42"));
        assert!(!visible.contains("block"));
    }
}
