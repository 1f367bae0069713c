//! The seed's three scenarios (local, minimized, full) through the library.

use agentos_core::privacy::MINIMIZED_SUMMARY_FIELDS;
use agentos_core::tier::Tier;
use agentos_recorder::preview::preview;
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

    // Nothing may leave under local, whatever tier is previewed.
    let p = preview(&cfg, Tier::Full).expect("preview");
    assert!(p.events.is_empty());
    assert_eq!(p.withheld, 3);
    let p = preview(&cfg, Tier::Local).expect("preview");
    assert!(p.events.is_empty() && p.metrics.is_none());
}

#[test]
fn minimized_tier_yields_exactly_the_allowlisted_summary_and_glm_counts() {
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
    let turn_line = &log_lines(&data)[1];
    assert_eq!(glm[0]["turn_id"], turn_line["turn"]["turn_id"]);

    let p = preview(&cfg, Tier::Minimized).expect("preview");
    assert!(p.events.is_empty(), "minimized sends no events");
    let metrics: Value =
        serde_json::from_slice(p.metrics.as_deref().expect("metrics")).expect("json");
    let mut keys: Vec<_> = metrics
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    let mut want: Vec<String> = MINIMIZED_SUMMARY_FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(metrics["features_shipped"], json!(2.0));
    assert_eq!(metrics["capacity_used"], json!(1.0));
    assert_eq!(metrics["features_per_capacity"], json!(2.0));

    // Previewing full on minimized data still sends no events (recorded tier caps it).
    let p = preview(&cfg, Tier::Full).expect("preview");
    assert!(p.events.is_empty());
    assert_eq!(p.withheld, 4);
}

#[test]
fn full_tier_yields_redacted_event_payloads() {
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

    let p = preview(&cfg, Tier::Full).expect("preview");
    assert_eq!(p.events.len(), 3);
    assert_eq!(p.withheld, 0);
    let ev: Vec<Value> = p
        .events
        .iter()
        .map(|b| serde_json::from_slice(b).expect("json"))
        .collect();
    for e in &ev {
        agentos_core::schema::validate_envelope(e).expect("egress stays schema-valid");
        assert_eq!(e["tier"], "full");
    }
    assert_eq!(ev[0]["session"]["metadata"], json!({"team": "core"}));
    let turn = &ev[1];
    assert_eq!(
        turn["value"],
        json!({"summary": "login works", "links": ["https://example.invalid/pr/1"]})
    );
    assert!(turn["feature"].get("notes").is_none());
    assert_eq!(turn["feature"]["feature_id"], "F-1");
    assert!(turn["measurement"].get("errors").is_none());
    assert_eq!(turn["measurement"]["error_count"], 1);
    assert_eq!(turn["turn"]["tokens_in"], 1200);
    assert_eq!(ev[2]["type"], "session_end");
    assert!(ev[2].get("notes").is_none());
    let all = p.events.concat();
    let all = String::from_utf8_lossy(&all);
    for secret in [
        "ACME",
        "private note",
        "secret_plan",
        "evidence.txt",
        "retro",
    ] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    // The local log keeps everything.
    let local = std::fs::read_to_string(cfg.data_dir.join("windows.jsonl")).expect("log");
    assert!(local.contains("private note") && local.contains("secret retro notes"));

    // Preview under minimized: no events, only the summary subset.
    let p = preview(&cfg, Tier::Minimized).expect("preview");
    assert!(p.events.is_empty());
    assert!(p.metrics.is_some());
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
