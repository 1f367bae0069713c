//! The seed's three scenarios (local, minimized, full) through the library: the files the
//! recorder writes. What would leave under each tier is computed by `agentos_delivery::plan` and
//! tested there (agentos-delivery `tests/it/preview.rs`), since the recorder does not depend on
//! delivery.

use agentos_core::tier::Tier;
use agentos_recorder::{Recorder, StartRequest};
use serde_json::{Value, json};

use crate::support::{licensed_config, log_lines, seed_turn, summary};

fn start(tier: Tier) -> StartRequest {
    StartRequest {
        repo_id: "repo-1".into(),
        branch: "main".into(),
        commit: "abc123".into(),
        license_id: Some("lic-1".into()),
        tier: Some(tier),
        metadata: [
            ("team".to_string(), json!("core")),
            ("customer".to_string(), json!("ACME secret")),
        ]
        .into_iter()
        .collect(),
        ..StartRequest::default()
    }
}

#[test]
fn local_tier_writes_three_events_and_the_seed_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let data = cfg.data_dir.clone();
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let started = rec.start_session(start(Tier::Local)).expect("start");
    assert_eq!(started.session.tier, Tier::Local);
    assert!(started.downgrade.is_none(), "local needs no license");
    rec.record_turn(seed_turn("claude-sonnet-4.5"))
        .expect("turn");
    rec.end_session(Some("done".into())).expect("end");

    let lines = log_lines(&data);
    let types: Vec<_> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(types, ["session", "turn", "session_end"]);
    let seqs: Vec<_> = lines
        .iter()
        .map(|l| l["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(lines.iter().all(|l| l["tier"] == "local"));
    assert_eq!(
        lines[1]["turn"]["session_id"],
        lines[0]["session"]["session_id"]
    );

    let s = summary(&data);
    assert_eq!(s["features_shipped"], json!(1.0));
    assert_eq!(s["features_per_capacity"], json!(2.0));
    assert_eq!(s["avg_cls"], json!(1.2));
    assert_eq!(s["avg_impf"], json!(4.5));
    assert_eq!(s["sessions"], json!(1));
    assert_eq!(s["turns"], json!(1));
    assert_eq!(s["models"]["claude-sonnet-4.5"]["tokens_in"], json!(1200));
    // Pretty and sorted keys.
    let text = std::fs::read_to_string(data.join("metrics_summary.json")).expect("read");
    assert!(text.contains("\n  \"avg_churn_score\""), "{text}");
    let keys: Vec<_> = s
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(
        !data.join("glm_counts.jsonl").exists(),
        "no GLM turn, no glm_counts"
    );
}

#[test]
fn minimized_tier_records_its_events_and_counts_only_glm_turns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &["telemetry_minimized"]);
    let data = cfg.data_dir.clone();
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let started = rec.start_session(start(Tier::Minimized)).expect("start");
    assert_eq!(
        started.session.tier,
        Tier::Minimized,
        "{:?}",
        started.downgrade
    );
    let t = rec.record_turn(seed_turn("GLM-4.6")).expect("turn");
    assert_eq!(t.tier, Tier::Minimized);
    rec.record_turn(seed_turn("claude-haiku-4.5"))
        .expect("turn");
    rec.end_session(None).expect("end");

    let glm = std::fs::read_to_string(data.join("glm_counts.jsonl")).expect("glm counts");
    let glm: Vec<Value> = glm
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(glm.len(), 1, "only the GLM turn");
    let keys: Vec<_> = glm[0]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 5);
    assert_eq!(glm[0]["model"], "GLM-4.6");
    assert_eq!(glm[0]["tokens_in"], 1200);
    assert_eq!(glm[0]["tokens_out"], 300);
    assert_eq!(glm[0]["session_id"], json!(started.session.session_id.0));
    let lines = log_lines(&data);
    let turn_line = &lines[1];
    assert_eq!(glm[0]["turn_id"], turn_line["turn"]["turn_id"]);
    assert_eq!(lines.len(), 4, "session, two turns, session_end");
    assert!(lines.iter().all(|l| l["tier"] == "minimized"));

    // The full summary stays local; what of it may leave is delivery's business.
    let s = summary(&data);
    assert_eq!(s["features_shipped"], json!(2.0));
    assert_eq!(s["capacity_used"], json!(1.0));
    assert_eq!(s["features_per_capacity"], json!(2.0));
    assert_eq!(s["models"]["GLM-4.6"]["tokens_in"], json!(1200));
}

#[test]
fn full_tier_keeps_every_free_text_field_in_the_local_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = licensed_config(dir.path(), &["telemetry_minimized", "telemetry_full"]);
    cfg.privacy.metadata_allowlist = vec!["team".into()];
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let started = rec.start_session(start(Tier::Full)).expect("start");
    assert_eq!(started.session.tier, Tier::Full, "{:?}", started.downgrade);
    rec.record_turn(seed_turn("claude-sonnet-4.5"))
        .expect("turn");
    rec.end_session(Some("secret retro notes".into()))
        .expect("end");

    // Redaction happens on the way out (agentos-delivery); the local log keeps everything,
    // metadata that is not allowlisted included.
    let lines = log_lines(&cfg.data_dir);
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["tier"] == "full"));
    assert_eq!(
        lines[0]["session"]["metadata"],
        json!({"team": "core", "customer": "ACME secret"})
    );
    let local = std::fs::read_to_string(cfg.data_dir.join("windows.jsonl")).expect("log");
    for text in [
        "private note",
        "secret_plan",
        "evidence.txt",
        "secret retro notes",
    ] {
        assert!(local.contains(text), "{text} missing from the local log");
    }
}

#[test]
fn schema_violation_names_the_pointer_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    rec.start_session(start(Tier::Local)).expect("start");
    let before = std::fs::read(cfg.data_dir.join("windows.jsonl")).expect("log");
    let mut bad = seed_turn("m");
    bad.turn.latency_ms = -1.0;
    let err = rec.record_turn(bad).expect_err("negative latency");
    let msg = err.to_string();
    assert!(msg.contains("/turn/latency_ms"), "{msg}");
    // What `ccc turn --tokens-in 18446744073709551615` asks for: refused naming the bound.
    let mut huge = seed_turn("m");
    huge.turn.tokens_in = u64::MAX;
    let msg = rec
        .record_turn(huge)
        .expect_err("over the maximum")
        .to_string();
    assert!(
        msg.contains("/turn/tokens_in") && msg.contains("1000000000000"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(cfg.data_dir.join("windows.jsonl")).expect("log"),
        before,
        "nothing written, so the local rollup never sees either"
    );
    // The seq is not consumed: the next good turn is seq 2.
    let ok = rec.record_turn(seed_turn("m")).expect("turn");
    assert_eq!(ok.seq, 2);
}

#[test]
fn turn_without_a_session_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let mut rec = Recorder::open(cfg).expect("open");
    let err = rec.record_turn(seed_turn("m")).expect_err("no session");
    assert_eq!(err.code(), "no_session");
}

#[test]
fn a_second_recorder_continues_the_session_from_the_state_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let mut a = Recorder::open(cfg.clone()).expect("open");
    a.start_session(start(Tier::Local)).expect("start");
    drop(a);
    let mut b = Recorder::open(cfg.clone()).expect("open");
    let r = b.record_turn(seed_turn("m")).expect("turn");
    assert_eq!(r.seq, 2);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let s = summary(&cfg.data_dir);
    assert_eq!(s["sessions"], 1);
    assert_eq!(s["turns"], 1);
}

#[test]
fn a_busy_recorder_coalesces_summary_refreshes_and_flushes_on_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = licensed_config(dir.path(), &[]);
    cfg.recorder.refresh_interval_ms = 3_600_000;
    let data = cfg.data_dir.clone();
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    rec.start_session(start(Tier::Local)).expect("start");
    assert_eq!(
        summary(&data)["sessions"],
        1,
        "session start refreshes at once"
    );
    for _ in 0..3 {
        rec.record_turn(seed_turn("m")).expect("turn");
    }
    assert_eq!(
        summary(&data)["turns"],
        0,
        "turns within the interval are coalesced"
    );
    assert_eq!(log_lines(&data).len(), 4, "the log itself is never delayed");
    rec.flush().expect("flush");
    assert_eq!(summary(&data)["turns"], 3);
    rec.record_turn(seed_turn("m")).expect("turn");
    drop(rec);
    assert_eq!(summary(&data)["turns"], 4, "drop flushes");
}

#[test]
fn an_opened_session_is_recorded_but_leaves_the_current_session_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let data = cfg.data_dir.clone();
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let shell = rec.start_session(start(Tier::Local)).expect("start");
    let opened = rec
        .open_session(StartRequest {
            session_id: Some(agentos_core::SessionId("claude-1".into())),
            ..start(Tier::Local)
        })
        .expect("open a second session");
    assert_eq!(opened.session.session_id.0, "claude-1");
    assert!(opened.replaced.is_none());
    // The shell hooks' current session is still the first one, on disk too.
    let mut fresh = Recorder::open(cfg).expect("reopen");
    let current = fresh.current_session().expect("read").expect("current");
    assert_eq!(current.session_id, shell.session.session_id);
    let lines = log_lines(&data);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["session"]["session_id"], "claude-1");
}

#[test]
fn a_failed_summary_refresh_after_the_append_is_a_warning_repaired_by_the_next_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let data = cfg.data_dir.clone();
    Recorder::open(cfg.clone())
        .expect("open")
        .start_session(start(Tier::Local))
        .expect("start");
    // A real write failure: the summary's path is now a non-empty directory, so replacing it
    // fails the way a full disk does, after the line is already in the log.
    let summary_path = data.join("metrics_summary.json");
    std::fs::remove_file(&summary_path).expect("remove summary");
    std::fs::create_dir_all(summary_path.join("blocker")).expect("block the summary");
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let r = rec
        .record_turn(seed_turn("glm-4.6"))
        .expect("recorded, not an error");
    assert_eq!(r.seq, 2);
    let why = r.not_refreshed.expect("the failed refresh is reported");
    assert!(why.contains("metrics_summary.json"), "{why}");
    assert_eq!(log_lines(&data).len(), 2, "the turn is in the log once");
    drop(rec);

    std::fs::remove_dir_all(&summary_path).expect("unblock");
    let mut rec = Recorder::open(cfg).expect("open");
    let r = rec.record_turn(seed_turn("m")).expect("turn");
    assert_eq!(r.not_refreshed, None);
    let s = summary(&data);
    assert_eq!(s["turns"], 2, "the next write repairs the summary: {s}");
}
