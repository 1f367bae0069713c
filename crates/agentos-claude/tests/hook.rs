//! The hook handler against real files: a data dir, transcripts in Claude Code's format, the
//! recorder's log. Kills are simulated by putting back the cursor a killed run would have left.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentos_claude::{HookEvent, HookInput, HookOptions, handle};
use agentos_config::{Config, DataDir};
use agentos_ingest::PriceTable;
use serde_json::Value;

const SID: &str = "5f0c7d3e-1111-4222-8333-944445555666";

fn input(event: HookEvent, transcript: &Path, cwd: &Path) -> HookInput {
    HookInput {
        session_id: SID.into(),
        transcript_path: Some(transcript.to_path_buf()),
        cwd: Some(cwd.to_path_buf()),
        hook_event_name: event,
        source: None,
        reason: None,
        agent_id: None,
        agent_transcript_path: None,
    }
}

fn opts() -> HookOptions {
    HookOptions {
        deadline: Instant::now() + Duration::from_secs(30),
        write_deadline: Instant::now() + Duration::from_secs(30),
        prices: PriceTable::embedded(),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: Config,
    transcript: PathBuf,
    cwd: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::with_data_dir(dir.path().join("data"));
        let proj = dir.path().join("claude/projects/-work-app");
        std::fs::create_dir_all(&proj).expect("mkdir");
        let cwd = dir.path().join("work");
        std::fs::create_dir_all(&cwd).expect("mkdir");
        Fixture {
            transcript: proj.join(format!("{SID}.jsonl")),
            _dir: dir,
            config,
            cwd,
        }
    }

    fn write(&self, lines: &[String]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.transcript)
            .expect("open transcript");
        for l in lines {
            writeln!(f, "{l}").expect("write");
        }
    }

    fn hook(&self, event: HookEvent) -> agentos_claude::HookReport {
        handle(
            &input(event, &self.transcript, &self.cwd),
            &self.config,
            &opts(),
        )
        .expect("hook")
    }

    fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(DataDir::new(&self.config.data_dir).windows())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn turns(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| e["type"] == "turn")
            .map(|e| e["turn"].clone())
            .collect()
    }
}

fn user(ts: &str) -> String {
    format!(
        r#"{{"type":"user","sessionId":"{SID}","message":{{"role":"user","content":"go"}},"timestamp":"{ts}"}}"#
    )
}

fn assistant(n: u32, out: u64, ts: &str) -> String {
    format!(
        r#"{{"type":"assistant","sessionId":"{SID}","isSidechain":false,"message":{{"id":"msg_{n}","model":"claude-sonnet-4-20250514","content":[{{"type":"text","text":"ok"}}],"usage":{{"input_tokens":{n},"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":{out}}}}},"requestId":"req_{n}","timestamp":"{ts}"}}"#
    )
}

#[test]
fn a_session_records_one_turn_per_request_with_cache_tokens_cost_and_latency() {
    let fx = Fixture::new();
    let start = fx.hook(HookEvent::SessionStart);
    assert!(start.started);
    fx.write(&[
        user("2026-09-01T10:00:00Z"),
        assistant(1, 50, "2026-09-01T10:00:03Z"),
        assistant(1, 50, "2026-09-01T10:00:03Z"), // streamed copy
        user("2026-09-01T10:00:10Z"),
        assistant(2, 70, "2026-09-01T10:00:11.500Z"),
    ]);
    let stop = fx.hook(HookEvent::Stop);
    assert_eq!(stop.turns_recorded, 2);
    let turns = fx.turns();
    assert_eq!(turns.len(), 2);
    let t = &turns[0];
    assert_eq!(t["session_id"], SID);
    assert_eq!(t["tokens_in"], 1);
    assert_eq!(t["tokens_out"], 50);
    assert_eq!(t["cache_creation_tokens"], 100);
    assert_eq!(t["cache_read_tokens"], 1000);
    assert_eq!(t["source"], "claude_code");
    assert_eq!(t["latency_ms"], 3000.0);
    assert_eq!(turns[1]["latency_ms"], 1500.0);
    let expected = agentos_core::origin::Origin::ClaudeRequest {
        message_id: "msg_1",
        request_id: "req_1",
    }
    .turn_id();
    assert_eq!(t["turn_id"], expected.0);
    let turn_events: Vec<_> = fx
        .log()
        .into_iter()
        .filter(|e| e["type"] == "turn")
        .collect();
    let cost = turn_events[0]["cost"]["estimated_usd"]
        .as_f64()
        .expect("a cost from the price table");
    assert!(cost > 0.0);

    // Nothing new: nothing recorded. New lines: only they are.
    assert_eq!(fx.hook(HookEvent::Stop).turns_recorded, 0);
    fx.write(&[
        user("2026-09-01T10:01:00Z"),
        assistant(3, 9, "2026-09-01T10:01:02Z"),
    ]);
    assert_eq!(fx.hook(HookEvent::Stop).turns_recorded, 1);

    let end = fx.hook(HookEvent::SessionEnd);
    assert!(end.ended);
    let kinds: Vec<_> = fx.log().iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds.first(), Some(&Value::from("session")));
    assert_eq!(kinds.last(), Some(&Value::from("session_end")));
    assert_eq!(fx.turns().len(), 3);
}

#[test]
fn a_missed_session_start_and_missed_stops_are_caught_up() {
    let fx = Fixture::new();
    fx.write(&[
        assistant(1, 5, "2026-09-01T10:00:03Z"),
        assistant(2, 6, "2026-09-01T10:00:09Z"),
    ]);
    // No SessionStart, no Stop for the first request: the first hook that fires does it all.
    let r = fx.hook(HookEvent::SubagentStop);
    assert!(r.started);
    assert_eq!(r.turns_recorded, 2);
    let log = fx.log();
    assert_eq!(log[0]["type"], "session");
    assert_eq!(log[0]["session"]["session_id"], SID);
}

#[test]
fn a_run_killed_after_writing_turns_but_before_its_cursor_doubles_nothing() {
    let fx = Fixture::new();
    fx.hook(HookEvent::SessionStart);
    let cursor = agentos_claude::cursor::paths(&fx.config.data_dir, SID).file;
    let before_kill = std::fs::read(&cursor).expect("cursor after start");
    fx.write(&[
        assistant(1, 5, "2026-09-01T10:00:03Z"),
        assistant(2, 6, "2026-09-01T10:00:09Z"),
    ]);
    fx.hook(HookEvent::Stop);
    // The killed run wrote its turns, but its cursor never made it to disk.
    std::fs::write(&cursor, &before_kill).expect("restore cursor");
    fx.write(&[assistant(3, 7, "2026-09-01T10:00:19Z")]);
    let again = fx.hook(HookEvent::Stop);
    assert_eq!(again.turns_recorded, 1, "only the new request");
    let ids: std::collections::BTreeSet<_> = fx
        .turns()
        .iter()
        .map(|t| t["turn_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(fx.turns().len(), 3);

    // A corrupt cursor rescans the whole log instead of recording again.
    std::fs::write(&cursor, b"{garbage").expect("corrupt cursor");
    assert_eq!(fx.hook(HookEvent::Stop).turns_recorded, 0);
    assert_eq!(fx.turns().len(), 3);
    assert_eq!(
        fx.log().iter().filter(|e| e["type"] == "session").count(),
        1,
        "the session is not started twice"
    );
}

#[test]
fn a_torn_last_line_waits_for_the_next_hook() {
    let fx = Fixture::new();
    let full = assistant(1, 5, "2026-09-01T10:00:03Z");
    let mut f = std::fs::File::create(&fx.transcript).expect("create");
    f.write_all(&full.as_bytes()[..full.len() / 2])
        .expect("half");
    assert_eq!(fx.hook(HookEvent::Stop).turns_recorded, 0);
    f.write_all(&full.as_bytes()[full.len() / 2..])
        .expect("rest");
    f.write_all(b"\n").expect("newline");
    let r = fx.hook(HookEvent::Stop);
    assert_eq!(r.turns_recorded, 1);
    assert_eq!(r.skipped_lines, 0);
}

#[test]
fn sub_agent_transcripts_beside_the_session_are_read_with_their_agent_name() {
    let fx = Fixture::new();
    fx.write(&[assistant(1, 5, "2026-09-01T10:00:03Z")]);
    let sub_dir = fx
        .transcript
        .parent()
        .expect("dir")
        .join(SID)
        .join("subagents");
    std::fs::create_dir_all(&sub_dir).expect("mkdir");
    let line = assistant(9, 4, "2026-09-01T10:00:05Z")
        .replace("\"isSidechain\":false", "\"isSidechain\":true");
    std::fs::write(sub_dir.join("agent-a1b2.jsonl"), format!("{line}\n")).expect("write");
    let r = fx.hook(HookEvent::Stop);
    assert_eq!(r.turns_recorded, 2);
    let turns = fx.turns();
    let sub = turns
        .iter()
        .find(|t| t["tokens_in"] == 9)
        .expect("the sub-agent's turn");
    assert_eq!(sub["subagent"], "a1b2");
    assert_eq!(turns[0]["subagent"], "");
}

#[test]
fn an_unwritable_data_dir_is_an_error_not_a_panic() {
    let fx = Fixture::new();
    // A file where the data dir should be: nothing can be created below it.
    std::fs::create_dir_all(fx.config.data_dir.parent().expect("parent")).expect("mkdir");
    std::fs::write(&fx.config.data_dir, b"not a dir").expect("file");
    fx.write(&[assistant(1, 5, "2026-09-01T10:00:03Z")]);
    let err = handle(
        &input(HookEvent::Stop, &fx.transcript, &fx.cwd),
        &fx.config,
        &opts(),
    )
    .expect_err("cannot record");
    assert_eq!(err.code(), "io");
}

#[test]
fn the_statusline_sums_what_the_hooks_recorded_incrementally() {
    use agentos_claude::statusline::{self, StatuslineInput};
    let fx = Fixture::new();
    fx.write(&[assistant(1, 50, "2026-09-01T10:00:03Z")]);
    fx.hook(HookEvent::Stop);
    let tz = jiff::tz::TimeZone::UTC;
    let far = Instant::now() + Duration::from_secs(30);
    let mut st = statusline::load(&fx.config.data_dir);
    assert!(statusline::fold(&mut st, &fx.config.data_dir, &tz, far).expect("fold"));
    statusline::save(&fx.config.data_dir, &st).expect("save");

    fx.write(&[assistant(2, 70, "2026-09-01T10:00:09Z")]);
    fx.hook(HookEvent::Stop);
    // A fresh process: loads the saved state and folds only the new turn.
    let mut st = statusline::load(&fx.config.data_dir);
    let covered = st.log_offset;
    assert!(covered > 0);
    assert!(statusline::fold(&mut st, &fx.config.data_dir, &tz, far).expect("fold"));
    assert!(st.log_offset > covered);

    let costs: f64 = fx
        .log()
        .iter()
        .filter(|e| e["type"] == "turn")
        .filter_map(|e| e["cost"]["estimated_usd"].as_f64())
        .sum();
    let input: StatuslineInput =
        serde_json::from_str(&format!(r#"{{"session_id":"{SID}","model":{{"id":"m"}}}}"#))
            .expect("input");
    let f = statusline::figures(&st, &input, jiff::Timestamp::now(), &tz, false);
    assert!(
        (f.session_usd - costs).abs() < 1e-9,
        "{} vs {costs}",
        f.session_usd
    );
    assert!((f.today_usd - costs).abs() < 1e-9);
    let (block_usd, left_ms, _) = f.block.expect("a running block");
    assert!((block_usd - costs).abs() < 1e-9);
    assert!(left_ms > 0);
    assert_eq!(f.model, "m");
    // Another session's line shows no session cost but the same day.
    let other: StatuslineInput = serde_json::from_str(r#"{"session_id":"other"}"#).expect("input");
    let g = statusline::figures(&st, &other, jiff::Timestamp::now(), &tz, false);
    assert_eq!(g.session_usd, 0.0);
    assert_eq!(g.today_usd, f.today_usd);
}

#[test]
fn a_run_out_of_write_time_keeps_its_offset_and_the_next_run_finishes_without_doubles() {
    let fx = Fixture::new();
    let lines: Vec<String> = (1..=20)
        .map(|n| assistant(n, 5, "2026-09-01T10:00:03Z"))
        .collect();
    fx.write(&lines);
    // Time to read, none to write: nothing recorded, nothing consumed.
    let now = Instant::now();
    let starved = HookOptions {
        deadline: now + Duration::from_secs(30),
        write_deadline: now,
        prices: PriceTable::embedded(),
    };
    let r = handle(
        &input(HookEvent::Stop, &fx.transcript, &fx.cwd),
        &fx.config,
        &starved,
    )
    .expect("hook");
    assert!(r.more);
    assert_eq!(r.turns_recorded, 0);
    let again = fx.hook(HookEvent::Stop);
    assert_eq!(again.turns_recorded, 20);
    assert!(!again.more);
    assert_eq!(fx.turns().len(), 20);
}
