//! A crash mid-append leaves a torn last line: reported, skipped, terminated, seq reused.

use std::io::Write as _;

use agentos_core::tier::Tier;
use agentos_recorder::{LogWarning, Recorder, StartRequest};

use crate::support::{licensed_config, seed_turn};

/// A config in `dir`, its log's path and a recorder with a local session started.
fn local_session(dir: &std::path::Path) -> (agentos_config::Config, std::path::PathBuf, Recorder) {
    let cfg = licensed_config(dir, &[]);
    let log = cfg.data_dir.join("windows.jsonl");
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    rec.start_session(StartRequest {
        tier: Some(Tier::Local),
        ..StartRequest::default()
    })
    .expect("start");
    (cfg, log, rec)
}

#[test]
fn torn_tail_is_reported_skipped_terminated_and_its_seq_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, log, mut a) = local_session(dir.path());
    a.record_turn(seed_turn("m")).expect("turn");
    drop(a);
    // Simulate a writer that died after writing half a line.
    let full = std::fs::read(&log).expect("log");
    let half_line = br#"{"type":"turn","event_id":"0199"#;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open")
        .write_all(half_line)
        .expect("write");

    let mut b = Recorder::open(cfg.clone()).expect("open");
    let r = b.record_turn(seed_turn("m")).expect("turn");
    assert_eq!(r.seq, 3, "the torn line's seq is reused");
    assert!(
        matches!(
            r.warnings.as_slice(),
            [LogWarning::TornLine { line: 3, .. }]
        ),
        "{:?}",
        r.warnings
    );
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[2].as_bytes(),
        half_line,
        "torn bytes kept on their own line"
    );
    assert!(text.ends_with('\n'));
    assert!(text.as_bytes().starts_with(&full));
    let last: serde_json::Value = serde_json::from_str(lines[3]).expect("new line parses");
    assert_eq!(last["seq"], 3);

    // Recompute agrees and reports the line number.
    let rc = agentos_recorder::log::recompute(&log).expect("recompute");
    assert_eq!(rc.state.rollup.turns, 2);
    assert_eq!(rc.state.last_seq, 3);
    assert!(
        matches!(
            rc.warnings.as_slice(),
            [LogWarning::InvalidLine { line: 3, .. }]
        ),
        "{:?}",
        rc.warnings
    );
    assert_eq!(b.state().map(|s| &s.rollup), Some(&rc.state.rollup));
}

#[test]
fn rebuild_reports_torn_tail_with_its_line_number_and_repairs_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let log = cfg.data_dir.join("windows.jsonl");
    let mut a = Recorder::open(cfg.clone()).expect("open");
    a.start_session(StartRequest::default()).expect("start");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open")
        .write_all(b"{\"type\":\"tu")
        .expect("write");
    let mut b = Recorder::open(cfg.clone()).expect("open");
    let rebuilt = b.rebuild().expect("rebuild");
    assert_eq!(rebuilt.events, 1);
    assert!(
        matches!(
            rebuilt.warnings.as_slice(),
            [LogWarning::TornLine { line: 2, .. }]
        ),
        "{:?}",
        rebuilt.warnings
    );
    assert!(std::fs::read_to_string(&log).expect("log").ends_with('\n'));
    let r = b.record_turn(seed_turn("m")).expect("turn");
    assert_eq!(r.seq, 2);
}

#[test]
fn a_missing_or_corrupt_state_file_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let mut a = Recorder::open(cfg.clone()).expect("open");
    a.start_session(StartRequest::default()).expect("start");
    a.record_turn(seed_turn("m")).expect("turn");
    drop(a);
    std::fs::write(cfg.data_dir.join("rollup_state.json"), b"{not json").expect("corrupt");
    let mut b = Recorder::open(cfg.clone()).expect("open");
    let r = b.record_turn(seed_turn("m")).expect("turn");
    assert_eq!(r.seq, 3);
    assert!(
        matches!(r.warnings.as_slice(), [LogWarning::StateRebuilt { .. }]),
        "{:?}",
        r.warnings
    );
    assert_eq!(b.state().map(|s| s.rollup.turns), Some(2));
}

#[test]
fn a_truncated_log_never_gets_a_seq_handed_out_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, log, mut a) = local_session(dir.path());
    for _ in 0..3 {
        a.record_turn(seed_turn("m")).expect("turn");
    }
    drop(a);
    // Someone truncates the log to its first two lines (seqs 1 and 2); seqs 3 and 4 were
    // handed out and may already be on the server.
    let text = std::fs::read_to_string(&log).expect("log");
    let kept: String = text.split_inclusive('\n').take(2).collect();
    std::fs::write(&log, kept).expect("truncate");

    let mut b = Recorder::open(cfg.clone()).expect("open");
    let r = b.record_turn(seed_turn("m")).expect("turn");
    assert_eq!(r.seq, 5, "3 and 4 are never handed out again");
    assert!(
        r.warnings
            .iter()
            .any(|w| matches!(w, LogWarning::LogShrank { .. })),
        "{:?}",
        r.warnings
    );
    // A full recompute (`agentos ccc rollup`) keeps the high-water mark too.
    b.rebuild().expect("rebuild");
    assert_eq!(b.record_turn(seed_turn("m")).expect("turn").seq, 6);
    drop(b);
    let mut c = Recorder::open(cfg).expect("open");
    assert_eq!(c.record_turn(seed_turn("m")).expect("turn").seq, 7);
}

#[test]
fn a_batch_keeps_each_events_time_takes_consecutive_seqs_and_is_all_or_nothing() {
    use agentos_core::event::EventBody;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, log, mut rec) = local_session(dir.path());
    let session = rec
        .current_session()
        .expect("session")
        .expect("a session")
        .session_id;
    let turn = |model: &str| {
        let mut t = seed_turn(model);
        t.turn.session_id = session.clone();
        t.turn.turn_id = agentos_core::TurnId(uuid::Uuid::now_v7().to_string());
        t
    };
    let at: jiff::Timestamp = "2026-09-01T10:00:00Z".parse().expect("time");
    let later: jiff::Timestamp = "2026-09-01T10:05:00Z".parse().expect("time");
    let before = std::fs::read(&log).expect("log");
    // One invalid event (a negative latency the schema refuses): nothing at all is written.
    let mut bad = turn("m");
    bad.turn.latency_ms = -1.0;
    let err = rec
        .append_batch(
            Tier::Local,
            vec![
                (at, EventBody::Turn(turn("m"))),
                (later, EventBody::Turn(bad)),
            ],
        )
        .expect_err("schema error");
    assert!(err.to_string().contains("latency"), "{err}");
    assert_eq!(std::fs::read(&log).expect("log"), before);

    let last = rec
        .append_batch(
            Tier::Local,
            vec![
                (at, EventBody::Turn(turn("m"))),
                (later, EventBody::Turn(turn("m"))),
            ],
        )
        .expect("batch");
    assert_eq!(last, Some(3), "the session is seq 1");
    drop(rec);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let times: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["recorded_at"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(times, ["2026-09-01T10:00:00Z", "2026-09-01T10:05:00Z"]);
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    // The summary written after the batch counts both turns.
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cfg.data_dir.join("metrics_summary.json")).expect("summary"),
    )
    .expect("json");
    assert_eq!(summary["turns"], 2, "{summary}");
}
