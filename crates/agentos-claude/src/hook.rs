//! The hook handler: one Claude Code hook event → sessions and turns in `windows.jsonl`.
//!
//! | event | what is recorded |
//! |---|---|
//! | SessionStart | a `session` (repo id, branch, commit from `cwd`; tier from configuration and license) |
//! | Stop, SubagentStop | one `turn` per API request appended to the session's transcripts since the cursor |
//! | SessionEnd | the remaining turns, then `session_end` |
//!
//! Every event first catches up: a session whose SessionStart was missed is started by the first
//! hook that sees it, and turns a missed Stop would have recorded are recorded by the next one.
//!
//! # Nothing lost, nothing doubled
//! One hook at a time per session (a lock file beside the cursor). Each run: (1) re-reads the
//! log from the cursor's `log_len` and adds the turn ids of this session found there (the work of
//! a run killed after writing turns but before saving its cursor), (2) appends the new turns,
//! skipping ids already recorded, (3) saves the cursor with the new offsets and log length. A
//! kill at any point leaves either turns the next run finds in step 1, or transcript bytes it
//! has not consumed yet: never a gap, never a second copy.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentos_config::durable::FileLock;
use agentos_config::{Config, DataDir};
use agentos_core::event::{
    Cost, EventBody, InputKind, SessionEnd, SessionId, Turn, TurnEvent, TurnId, TurnSource,
};
use agentos_core::tier::Tier;
use agentos_ingest::PriceTable;
use agentos_ingest::scan::{Tail, scan_file};
use agentos_recorder::{Recorder, StartRequest};
use serde::Deserialize;

use crate::cursor::{self, FileCursor, SessionCursor};
use crate::error::ClaudeError;
use crate::payload::{HookEvent, HookInput};
use crate::transcript::{self, Request};

/// Provider name in the `cost` payload of Claude Code turns.
pub const COST_PROVIDER: &str = "anthropic";

/// Knobs of one hook run.
#[derive(Debug, Clone)]
pub struct HookOptions {
    /// Stop reading transcripts at this instant (the rest waits for the next hook); also bounds
    /// the wait for another hook of the same session.
    pub deadline: Instant,
    /// Stop writing turns at this instant (later than `deadline`, so every run that read
    /// something also records some of it); what is left is read again by the next hook.
    pub write_deadline: Instant,
    /// Prices for the `cost` payload.
    pub prices: PriceTable,
}

/// What one hook run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookReport {
    /// The session's tier (`None` when the event was ignored).
    pub tier: Option<Tier>,
    /// This run wrote the session's `session` event.
    pub started: bool,
    /// This run wrote the session's `session_end` event.
    pub ended: bool,
    /// Turns written.
    pub turns_recorded: u64,
    /// Transcript lines that could not be used.
    pub skipped_lines: u64,
    /// Work is left (deadline, or another hook of the session held the lock).
    pub more: bool,
}

/// Handles one hook event (see the module docs).
///
/// # Errors
/// I/O and recorder errors. The caller logs them ([`crate::status`]) and still exits 0.
pub fn handle(
    input: &HookInput,
    config: &Config,
    opts: &HookOptions,
) -> Result<HookReport, ClaudeError> {
    let mut report = HookReport::default();
    if input.hook_event_name == HookEvent::Other {
        return Ok(report);
    }
    let data_dir = config.data_dir.as_path();
    let paths = cursor::paths(data_dir, &input.session_id);
    let sessions_dir = DataDir::new(data_dir).claude_sessions_dir();
    std::fs::create_dir_all(&sessions_dir).map_err(ClaudeError::io("creating", &sessions_dir))?;
    let Some(_lock) = lock_until(&paths.lock, opts.deadline)? else {
        // Another hook of this session is at work; whatever it misses, the next one catches up.
        report.more = true;
        return Ok(report);
    };
    let (mut cur, found) = cursor::load(&paths.file, &input.session_id);
    let log = DataDir::new(data_dir).windows();
    if found == cursor::Found::Missing {
        // A session no hook has handled: nothing of it is in the log yet. Anchor the cursor at
        // the log's end *before* writing, so a run killed before its first save is found by
        // reading from here, not by scanning the whole history.
        cur.log_len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        cursor::save(&paths.file, &cur)?;
    }
    reconcile(&mut cur, &log)?;
    let mut rec = Recorder::open(config.clone())?;

    if cur.tier.is_none() {
        start(&mut rec, &mut cur, input)?;
        report.started = true;
    } else if input.hook_event_name == HookEvent::SessionStart && cur.ended {
        // `claude --resume` of an ended session: its turns continue under the same id.
        cur.ended = false;
    }
    let tier = cur.tier.unwrap_or(Tier::Local);
    report.tier = Some(tier);

    for (path, sub) in transcripts(input, &cur) {
        let from = cur.files.get(&path).cloned().unwrap_or(FileCursor {
            subagent: sub,
            ..FileCursor::default()
        });
        let read = match transcript::read_new(&path, &from, opts.deadline) {
            Ok(r) => r,
            // Not written yet (SessionStart comes before the first line) or already removed.
            Err(_) if !path.exists() => continue,
            Err(e) => return Err(e),
        };
        report.skipped_lines += read.skipped_lines;
        let mut all_written = true;
        for req in &read.requests {
            if cur.recorded.contains(&req.turn_id) {
                continue;
            }
            if Instant::now() >= opts.write_deadline {
                all_written = false;
                break;
            }
            rec.append(
                tier,
                EventBody::Turn(turn_event(input, &from, req, &opts.prices)),
            )?;
            cur.recorded.insert(req.turn_id.clone());
            report.turns_recorded += 1;
        }
        if !all_written {
            // The file's offset stays where it was: the next hook reads these bytes again and
            // skips the turns already recorded.
            report.more = true;
            break;
        }
        cur.files.insert(path, read.cursor);
        if read.more {
            report.more = true;
            break;
        }
    }

    if input.hook_event_name == HookEvent::SessionEnd && !cur.ended && !report.more {
        rec.append(
            tier,
            EventBody::SessionEnd(SessionEnd {
                session_id: SessionId(input.session_id.clone()),
                ended_at: jiff::Timestamp::now(),
                notes: None,
            }),
        )?;
        cur.ended = true;
        report.ended = true;
    }
    rec.flush()?;
    cur.log_len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    cursor::save(&paths.file, &cur)?;
    Ok(report)
}

fn lock_until(path: &Path, deadline: Instant) -> Result<Option<FileLock>, ClaudeError> {
    loop {
        if let Some(l) = FileLock::try_acquire(path).map_err(ClaudeError::io("locking", path))? {
            return Ok(Some(l));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn start(
    rec: &mut Recorder,
    cur: &mut SessionCursor,
    input: &HookInput,
) -> Result<(), ClaudeError> {
    let cwd = input.cwd.clone().unwrap_or_else(|| PathBuf::from("."));
    let repo = crate::git::repo_info(&cwd);
    let out = rec.open_session(StartRequest {
        repo_id: repo.repo_id,
        branch: repo.branch,
        commit: repo.commit,
        session_id: Some(SessionId(input.session_id.clone())),
        ..StartRequest::default()
    })?;
    cur.tier = Some(out.session.tier);
    cur.ended = false;
    Ok(())
}

/// The transcripts of a session: the main one, the sub-agent transcript the hook names, the
/// sub-agent transcripts beside the main one (`<dir>/<session>/subagents/*.jsonl`, found even
/// when their SubagentStop was missed) and every file read before. Main transcript first.
fn transcripts(input: &HookInput, cur: &SessionCursor) -> Vec<(PathBuf, String)> {
    let mut out: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut main = None;
    if let Some(t) = &input.transcript_path {
        main = Some(t.clone());
        if let Some(dir) = t.parent() {
            let sub_dir = dir.join(&input.session_id).join("subagents");
            if let Ok(rd) = std::fs::read_dir(&sub_dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "jsonl") {
                        out.insert(p.clone(), agent_name(&p));
                    }
                }
            }
        }
    }
    if let Some(p) = &input.agent_transcript_path {
        let name = input.agent_id.clone().unwrap_or_else(|| agent_name(p));
        out.insert(p.clone(), name);
    }
    for (p, f) in &cur.files {
        out.entry(p.clone()).or_insert_with(|| f.subagent.clone());
    }
    let mut list: Vec<(PathBuf, String)> = Vec::with_capacity(out.len() + 1);
    if let Some(m) = main {
        out.remove(&m);
        list.push((m, String::new()));
    }
    list.extend(out);
    list
}

/// `agent-1a2b.jsonl` → `1a2b`.
fn agent_name(p: &Path) -> String {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.strip_prefix("agent-")
        .map(str::to_string)
        .unwrap_or(stem)
}

fn turn_event(
    input: &HookInput,
    file: &FileCursor,
    req: &Request,
    prices: &PriceTable,
) -> TurnEvent {
    let subagent = if !file.subagent.is_empty() {
        file.subagent.clone()
    } else if req.sidechain {
        "sidechain".to_string()
    } else {
        String::new()
    };
    TurnEvent {
        turn: Turn {
            turn_id: TurnId(req.turn_id.clone()),
            session_id: SessionId(input.session_id.clone()),
            model: req.model.clone(),
            subagent,
            tokens_in: req.tokens.input,
            tokens_out: req.tokens.output,
            input_kind: InputKind::Text,
            latency_ms: req.latency_ms,
            attribution: None,
            capacity_used: None,
            cache_creation_tokens: Some(req.tokens.cache_creation),
            cache_read_tokens: Some(req.tokens.cache_read),
            source: Some(TurnSource::ClaudeCode),
        },
        cost: prices.lookup(&req.model).map(|p| Cost {
            provider: COST_PROVIDER.into(),
            estimated_usd: p.cost(&req.tokens),
            unit_costs: None,
        }),
        ..TurnEvent::default()
    }
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    tier: Option<Tier>,
    #[serde(default)]
    session: Option<LogSession>,
    #[serde(default)]
    turn: Option<LogTurn>,
    #[serde(default)]
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct LogSession {
    session_id: String,
}

#[derive(Deserialize)]
struct LogTurn {
    session_id: String,
    turn_id: String,
}

/// Folds the log written since the cursor was saved into it: this session's `session` event
/// (tier), turns (ids) and `session_end`. Only lines naming the session are parsed.
fn reconcile(cur: &mut SessionCursor, log: &Path) -> Result<(), ClaudeError> {
    let len = match std::fs::metadata(log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ClaudeError::io("stat", log)(e)),
    };
    if cur.log_len > len {
        // The log was replaced or truncated: what the cursor says was recorded may be gone, so
        // start over against the log as it is (its own turns are found again below).
        *cur = SessionCursor {
            version: cursor::CURSOR_VERSION,
            session_id: cur.session_id.clone(),
            ..SessionCursor::default()
        };
    }
    if cur.log_len == len {
        return Ok(());
    }
    let needle = format!("\"{}\"", cur.session_id);
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let sid = cur.session_id.clone();
    let mut buf = Vec::new();
    scan_file(log, cur.log_len, 1, &mut buf, |line| {
        if finder.find(line.bytes).is_some()
            && let Ok(l) = serde_json::from_slice::<LogLine>(line.bytes)
        {
            match l.kind.as_str() {
                "session" if l.session.is_some_and(|s| s.session_id == sid) => {
                    cur.tier = cur.tier.or(l.tier);
                    cur.ended = false;
                }
                "turn" => {
                    if let Some(t) = l.turn.filter(|t| t.session_id == sid) {
                        cur.recorded.insert(t.turn_id);
                    }
                }
                "session_end" if l.session_id.as_deref() == Some(sid.as_str()) => {
                    cur.ended = true;
                }
                _ => {}
            }
        }
        ControlFlow::Continue(Tail::Consumed)
    })?;
    Ok(())
}
