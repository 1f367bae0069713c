//! `agentos statusline`: one line for Claude Code's status bar, from the log the hooks write.
//!
//! Figures: the model, this session's cost, today's cost (local calendar day), the running
//! 5-hour block's cost and time left (the block rule of [`agentos_ingest::blocks::BlockTracker`],
//! shared with `agentos ccc report blocks`) and its burn rate. Costs are the `cost` payloads the
//! hooks recorded with the offline price table.
//!
//! With a collector or CCC URL configured, the line also shows the model's rolling quota use and
//! warn/block state from `/v1/usage`, read from a cache (`claude/usage_cache.json`) that a
//! detached `agentos statusline --refresh-usage` renews when it is older than
//! [`USAGE_MAX_AGE`]: the statusline itself never waits on the network.
//!
//! Speed: the aggregates live in `claude/statusline_state.json` with the log offset they cover;
//! each call folds only the log lines appended since (bounded by a deadline; a first call on a
//! large log catches up over several calls and says so with `…`). No network, ever.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::time::Instant;

use agentos_config::DataDir;
use agentos_ingest::blocks::{BLOCK_MS as BLOCK_LEN_MS, BlockTracker};
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

/// File name of the `/v1/usage` cache below `claude/`.
pub const USAGE_CACHE_FILE: &str = "usage_cache.json";
/// File name of the lock held by the one refresher below `claude/`.
pub const USAGE_LOCK_FILE: &str = "usage_refresh.lock";
/// A cache older than this is renewed in the background.
pub const USAGE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// One model's quota state from `/v1/usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    /// Fraction of the rolling window used (1.0 = all).
    pub rolling_pct: f64,
    /// At or above the warn threshold.
    pub warn: bool,
    /// Rolling or weekly capacity reached.
    pub block: bool,
}

/// The cached `/v1/usage` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageCache {
    /// When it was fetched (or the fetch failed).
    pub fetched_at: jiff::Timestamp,
    /// Quota per model.
    #[serde(default)]
    pub models: BTreeMap<String, Quota>,
    /// Why the last fetch failed, if it did (the models are then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The cached usage, if any.
pub fn load_usage(data_dir: &Path) -> Option<UsageCache> {
    let p = DataDir::new(data_dir).claude_dir().join(USAGE_CACHE_FILE);
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Whether the cache should be renewed at `now` (missing, or older than [`USAGE_MAX_AGE`]).
pub fn usage_is_stale(cache: Option<&UsageCache>, now: jiff::Timestamp) -> bool {
    cache.is_none_or(|c| {
        now.duration_since(c.fetched_at)
            .unsigned_abs()
            .ge(&USAGE_MAX_AGE)
    })
}

/// The lock the refresher holds (the statusline checks it before starting one).
pub fn usage_lock(data_dir: &Path) -> std::path::PathBuf {
    DataDir::new(data_dir).claude_dir().join(USAGE_LOCK_FILE)
}

/// Fetches `/v1/usage` from `base_url` and writes the cache (also on failure, with the error, so
/// a down collector is asked once a minute, not on every statusline). Returns without doing
/// anything when another refresher holds the lock.
///
/// # Errors
/// Local I/O errors (a failed fetch is recorded in the cache, not returned).
pub fn refresh_usage(
    data_dir: &Path,
    base_url: &str,
    api_key: Option<&str>,
) -> Result<(), ClaudeError> {
    let dir = DataDir::new(data_dir).claude_dir();
    std::fs::create_dir_all(&dir).map_err(ClaudeError::io("creating", &dir))?;
    let lock_path = usage_lock(data_dir);
    let Some(_lock) = agentos_config::FileLock::try_acquire(&lock_path)
        .map_err(ClaudeError::io("locking", &lock_path))?
    else {
        return Ok(());
    };
    let url = format!("{}/v1/usage", base_url.trim_end_matches('/'));
    let fetched = agentos_ingest::source::usage_snapshot::fetch_snapshot(
        &url,
        api_key,
        std::time::Duration::from_secs(5),
    );
    let cache = match fetched {
        Ok(snap) => {
            // The same answer feeds the summary's `model_health`; failing to save it must not
            // cost the statusline its quota cache.
            let _ = agentos_ingest::source::usage_snapshot::save_model_health(
                data_dir,
                &snap.models,
                format!("GET {url}"),
            );
            UsageCache {
                fetched_at: jiff::Timestamp::now(),
                models: snap
                    .models
                    .into_iter()
                    .map(|(m, h)| {
                        let q = Quota {
                            rolling_pct: h.rolling_pct,
                            warn: h.warn,
                            block: h.block,
                        };
                        (m, q)
                    })
                    .collect(),
                error: None,
            }
        }
        Err(e) => UsageCache {
            fetched_at: jiff::Timestamp::now(),
            models: BTreeMap::new(),
            error: Some(e.to_string()),
        },
    };
    let p = dir.join(USAGE_CACHE_FILE);
    let bytes = serde_json::to_vec(&cache)
        .map_err(|e| ClaudeError::io("serializing", &p)(std::io::Error::other(e)))?;
    agentos_config::durable::replace_file(&p, &bytes).map_err(ClaudeError::io("writing", &p))
}

/// The quota of `model` in `cache`: by exact name, else by canonical model id (the alias
/// table: `claude-sonnet-4-5-20250929` is `claude-sonnet-4.5`), else by the price table's
/// normalised name (case, dots, provider prefixes).
pub fn quota_for(cache: &UsageCache, model: &str) -> Option<Quota> {
    use agentos_core::model::canonical_model;
    if let Some(q) = cache.models.get(model) {
        return Some(*q);
    }
    let canonical = canonical_model(model);
    if let Some((_, q)) = cache
        .models
        .iter()
        .find(|(m, _)| canonical_model(m) == canonical)
    {
        return Some(*q);
    }
    let want = agentos_ingest::pricing::normalize_model(model);
    cache
        .models
        .iter()
        .find(|(m, _)| agentos_ingest::pricing::normalize_model(m) == want)
        .map(|(_, q)| *q)
}

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
    /// The model's quota from the cached `/v1/usage`, when a URL is configured and known.
    pub quota: Option<Quota>,
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
    // Pruning sorts the sessions: once per fold, not per line (it dominated the fold's cost).
    loop {
        if Instant::now() >= deadline {
            prune(state);
            return Ok(false);
        }
        let n = f.read(&mut buf).map_err(ClaudeError::io("reading", &log))?;
        if n == 0 {
            prune(state);
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
        quota: None,
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
    if let Some(q) = f.quota {
        let pct = (q.rolling_pct * 100.0).round();
        let (text, sgr) = if q.block {
            (format!("quota {pct}% BLOCK"), "1;31")
        } else if q.warn {
            (format!("quota {pct}% warn"), "33")
        } else {
            (format!("quota {pct}%"), "32")
        };
        push(text, sgr);
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
            quota: None,
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
    fn the_quota_segment_says_warn_and_block() {
        let plain = Style {
            color: false,
            width: None,
        };
        let mut f = figs();
        f.quota = Some(Quota {
            rolling_pct: 0.42,
            warn: false,
            block: false,
        });
        assert!(render(&f, plain).ends_with("| quota 42%"));
        f.quota = Some(Quota {
            rolling_pct: 0.85,
            warn: true,
            block: false,
        });
        assert!(render(&f, plain).ends_with("| quota 85% warn"));
        f.quota = Some(Quota {
            rolling_pct: 1.0,
            warn: true,
            block: true,
        });
        assert!(render(&f, plain).ends_with("| quota 100% BLOCK"));
    }

    #[test]
    fn quotas_match_by_exact_or_family_name_and_age_out() {
        let now: jiff::Timestamp = "2026-09-01T10:00:00Z".parse().expect("ts");
        let cache = UsageCache {
            fetched_at: now,
            models: BTreeMap::from([(
                "claude-sonnet-4-5-20250929".to_string(),
                Quota {
                    rolling_pct: 0.5,
                    warn: false,
                    block: false,
                },
            )]),
            error: None,
        };
        assert!(quota_for(&cache, "claude-sonnet-4-5-20250929").is_some());
        assert!(quota_for(&cache, "claude-opus-4-1-20250805").is_none());
        // Another spelling of the same model (the alias table), as a proxy or Bedrock sends it.
        assert!(quota_for(&cache, "claude-sonnet-4.5").is_some());
        assert!(quota_for(&cache, "anthropic.claude-sonnet-4-5-20250929-v1:0").is_some());
        assert!(!usage_is_stale(Some(&cache), now));
        let later = now + jiff::SignedDuration::from_secs(61);
        assert!(usage_is_stale(Some(&cache), later));
        assert!(usage_is_stale(None, now));
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
