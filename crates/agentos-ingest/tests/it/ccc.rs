//! CCC logs, results and snapshots against the generator's TRUTH.json and the AgentOS fixtures.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;

use agentos_ingest::backfill::{BackfillOptions, backfill};
use agentos_ingest::source::ccc::{self, Assembler, LogJob};
use agentos_ingest::source::usage_snapshot::{load_snapshot, parse_snapshot};
use agentos_ingest::time::TimeRange;
use agentos_ingest::{IngestError, PriceTable};

use crate::support::{fixture, generate};

fn opts(root: &std::path::Path, threads: usize) -> BackfillOptions {
    BackfillOptions {
        ccp_root: root.to_path_buf(),
        usage_json: None,
        threads,
        prices: PriceTable::embedded(),
        generated_at: Some("2026-11-24T00:00:00Z".parse().expect("timestamp")),
    }
}

#[test]
fn backfill_matches_the_generator_truth_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = generate(
        "gen_ccp_logs.py",
        dir.path(),
        &["--requests", "3000", "--seed", "11"],
    );
    let b = backfill(&opts(dir.path(), 2), None).expect("backfill runs");
    let s = &b.summary;
    assert_eq!(
        s.summary.turns,
        truth["requests"].as_u64().expect("requests")
    );
    assert_eq!(s.requests.distinct_rids, s.summary.turns);
    assert_eq!(s.ingest.lines, truth["lines"].as_u64().expect("lines"));
    assert_eq!(
        s.ingest.lines_skipped,
        truth["torn_lines"].as_u64().expect("torn")
    );
    assert_eq!(s.requests.incomplete, 0);
    for (model, t) in truth["models"].as_object().expect("models") {
        let got = &s.summary.models[model];
        assert_eq!(
            got.turns,
            t["requests"].as_u64().expect("n"),
            "{model} requests"
        );
        assert_eq!(
            got.tokens_in,
            t["input_tokens"].as_u64().expect("n"),
            "{model} in"
        );
        assert_eq!(
            got.tokens_out,
            t["output_tokens"].as_u64().expect("n"),
            "{model} out"
        );
        assert_eq!(
            s.requests.errors_by_model.get(model).copied().unwrap_or(0),
            t["errors"].as_u64().expect("n"),
            "{model} errors"
        );
    }
    assert_eq!(
        s.summary.models.len(),
        truth["models"].as_object().expect("models").len()
    );
    let want: BTreeMap<String, u64> = truth["reroute_decisions"]
        .as_object()
        .expect("decisions")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().expect("n")))
        .collect();
    assert_eq!(s.requests.reroute_decisions, want);
    assert_eq!(
        s.summary.features_shipped,
        truth["features_shipped"].as_f64().expect("f")
    );
    assert_eq!(s.summary.features_per_capacity, None);
    // Every log and results file is listed as a source.
    assert_eq!(
        s.sources.iter().filter(|p| p.contains("METRICS_")).count(),
        3
    );
    assert_eq!(s.sources.iter().filter(|p| p.contains("usage")).count(), 7);
}

#[test]
fn torn_lines_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::write(
        logs.join("usage.jsonl"),
        concat!(
            "{\"ts\":1.0,\"rid\":\"aa\",\"status\":-1,\"event\":\"decision\",\"lane\":\"zai\",\"model\":\"m\"}\n",
            "{\"ts\":1.5,\"rid\":\"bb\",\"lane\":\"zai\",\"mod\n",
            "{\"ts\":2.0,\"rid\":\"aa\",\"status\":200,\"lane\":\"zai\",\"model\":\"m\",\"input_tokens\":5,\"output_tokens\":6,\"op\":\"nonstream\",\"reason\":\"ok\"}\n",
        ),
    )
    .expect("write");
    let b = backfill(&opts(dir.path(), 1), None).expect("a torn line never aborts");
    assert_eq!(b.summary.summary.turns, 1);
    assert_eq!(b.skipped.len(), 1);
    assert_eq!(b.skipped[0].line, 2);
    assert!(b.skipped[0].path.ends_with("logs/usage.jsonl"));
}

#[test]
fn old_telemetry_shape_gives_eight_records_and_four_requests() {
    let jobs = vec![LogJob::whole(fixture("telemetry_sample.jsonl"), 0, 1, 0)];
    let outs = ccc::read_logs(&jobs, 1, &TimeRange::default(), None);
    assert_eq!(outs[0].account.records, 8);
    assert_eq!(outs[0].account.lines_skipped, 0);
    let mut asm = Assembler::default();
    for o in outs {
        asm.push(o.closed, o.open);
    }
    let (turns, incomplete) = asm.finish();
    assert_eq!(incomplete, 0);
    let rids: Vec<&str> = turns.iter().map(|t| &*t.rid).collect();
    assert_eq!(rids, ["R1", "R2", "R3", "R4"]);
    assert!(turns.iter().all(|t| t.legacy && t.lines == 2 && t.ok()));
    // The routed (last) line is the one kept.
    assert_eq!(turns[0].input_tokens, 1000);
    assert_eq!(turns[0].lane.as_str(), "glm");
}

#[test]
fn a_request_split_by_rotation_is_one_turn_with_both_halves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::write(
        logs.join("usage.jsonl.1"),
        "{\"ts\":1.0,\"rid\":\"cafe0001\",\"status\":-1,\"event\":\"decision\",\"lane\":\"zai\",\"model\":\"claude-haiku-4.5\",\"decision\":\"quota_warn_attempt\",\"warn_pct_cfg\":0.8,\"reroute_mode\":\"hybrid\"}\n",
    )
    .expect("write");
    std::fs::write(
        logs.join("usage.jsonl"),
        "{\"ts\":3.0,\"rid\":\"cafe0001\",\"status\":200,\"lane\":\"zai\",\"model\":\"claude-haiku-4.5\",\"input_tokens\":10,\"output_tokens\":20,\"op\":\"nonstream\",\"reason\":\"ok\",\"reroute_decision\":\"quota_warn_attempt\"}\n",
    )
    .expect("write");
    for threads in [1, 2] {
        let b = backfill(&opts(dir.path(), threads), None).expect("backfill");
        let s = &b.summary;
        assert_eq!(s.summary.turns, 1);
        assert_eq!(s.requests.incomplete, 0);
        assert_eq!(s.ingest.duplicates, 0);
        // The mode is only on the older file's decision line, the tokens only on the final one.
        assert_eq!(s.requests.reroute_modes.get("hybrid"), Some(&1));
        let m = &s.summary.models["claude-haiku-4.5"];
        assert_eq!((m.turns, m.tokens_in, m.tokens_out), (1, 10, 20));
    }
}

fn request(rid: &str, ts: f64) -> String {
    format!(
        "{{\"ts\":{ts},\"rid\":\"{rid}\",\"status\":200,\"lane\":\"zai\",\"model\":\"glm-4.6\",\"input_tokens\":1,\"output_tokens\":2,\"op\":\"nonstream\",\"reason\":\"ok\"}}\n"
    )
}

#[test]
fn duplicates_are_dropped_across_files_however_far_apart_while_streaming() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("archive")).expect("mkdir");
    // Three rotations a day apart (far beyond the ordering slack, so keys are forgotten
    // between them) and, read last, a copy of the oldest one: the copy's early start must
    // keep those keys until it is read.
    let day = 86_400.0;
    let t0 = 1_790_000_000.0;
    let oldest: String = (0..50)
        .map(|i| request(&format!("{i:08x}"), t0 + f64::from(i)))
        .collect();
    std::fs::write(logs.join("archive/usage-2026-10-01.jsonl"), &oldest).expect("write");
    let middle: String = (50..90)
        .map(|i| request(&format!("{i:08x}"), t0 + day + f64::from(i)))
        .collect();
    std::fs::write(logs.join("usage.jsonl.2"), &middle).expect("write");
    // Same rids as the oldest file, other times: distinct requests, not duplicates.
    let reused: String = (0..30)
        .map(|i| request(&format!("{i:08x}"), t0 + 2.0 * day + f64::from(i)))
        .collect();
    std::fs::write(logs.join("usage.jsonl.1"), &reused).expect("write");
    std::fs::write(logs.join("usage.jsonl"), &oldest).expect("write");
    for threads in [1, 2] {
        let s = backfill(&opts(dir.path(), threads), None)
            .expect("backfill")
            .summary;
        assert_eq!(s.summary.turns, 50 + 40 + 30, "{threads} threads");
        assert_eq!(s.ingest.duplicates, 50);
        assert_eq!(s.requests.distinct_rids, 90);
        assert_eq!(s.summary.models["glm-4.6"].tokens_in, 120);
    }
}

#[test]
fn an_archived_copy_of_a_rotated_file_adds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(
        "gen_ccp_logs.py",
        dir.path(),
        &["--requests", "300", "--archives", "1"],
    );
    let before = backfill(&opts(dir.path(), 2), None).expect("backfill");
    std::fs::copy(
        dir.path().join("logs/usage.jsonl.1"),
        dir.path().join("logs/archive/usage-copy-of-1.jsonl"),
    )
    .expect("copy");
    let after = backfill(&opts(dir.path(), 2), None).expect("backfill");
    assert_eq!(after.summary.summary.turns, before.summary.summary.turns);
    assert_eq!(after.summary.summary.models, before.summary.summary.models);
    assert!(after.summary.ingest.duplicates > 0);
}

#[test]
fn the_r35_fixture_yields_model_health_for_exactly_its_models() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("logs")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("results")).expect("mkdir");
    std::fs::write(
        dir.path().join("logs/usage.jsonl"),
        "{\"ts\":1761267000.5,\"rid\":\"0badf00d\",\"lane\":\"zai\",\"model\":\"claude-haiku-4.5\",\"input_tokens\":120,\"output_tokens\":40,\"status\":200,\"reason\":\"ok\",\"op\":\"nonstream\",\"latency_ms\":900}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("results/METRICS_stub.json"),
        "{\"total\": 0}",
    )
    .expect("write");
    let mut o = opts(dir.path(), 1);
    o.usage_json = Some(fixture("ccc_usage_r35_full.json").display().to_string());
    let s = backfill(&o, None).expect("backfill").summary;
    let health = s.summary.model_health.expect("model_health present");
    let keys: Vec<&str> = health.keys().map(String::as_str).collect();
    assert_eq!(keys, ["claude-3.5-sonnet", "claude-haiku-4.5"]);
    let haiku = &health["claude-haiku-4.5"];
    assert_eq!(haiku.warn_pct_auto, Some(0.72));
    assert_eq!(haiku.gap_seconds_p95, Some(48.0));
    assert!(haiku.speeds.get("rolling").is_some());
    assert!(s.summary.turns >= 1);
    assert_eq!(s.summary.features_shipped, 0.0);
    assert!(s.sources.iter().any(|p| p.ends_with("METRICS_stub.json")));
}

#[test]
fn an_unknown_snapshot_shape_is_a_clear_error() {
    for (body, needle) in [
        (&b"[1,2]"[..], "top-level value is an array"),
        (&b"{\"ts\":1}"[..], "\"models\" is missing"),
        (&b"{\"models\":[]}"[..], "\"models\" is an array"),
        (&b"{\"models\":{\"m\":3}}"[..], "model \"m\" is a number"),
    ] {
        let err = parse_snapshot(body, "snap.json").expect_err("unknown shape");
        assert_eq!(err.code(), "unknown_snapshot_shape");
        let msg = err.to_string();
        assert!(msg.contains(needle) && msg.contains("snap.json"), "{msg}");
    }
}

#[test]
fn a_snapshot_is_fetched_from_a_loopback_url() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let body = std::fs::read(fixture("ccc_usage_r35_full.json")).expect("fixture");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut req = [0u8; 2048];
        let n = s.read(&mut req).expect("read request");
        let head = String::from_utf8_lossy(&req[..n]).to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(resp.as_bytes()).expect("write head");
        s.write_all(&body).expect("write body");
        head
    });
    let snap = load_snapshot(&format!("http://{addr}/v1/usage")).expect("fetch");
    let head = server.join().expect("server thread");
    assert!(head.starts_with("GET /v1/usage "), "{head}");
    assert_eq!(snap.models.len(), 2);
    assert_eq!(snap.models["claude-3.5-sonnet"].gap_seconds_p95, Some(60.0));
}

#[test]
fn a_missing_root_is_fatal_and_named() {
    let err = backfill(
        &opts(std::path::Path::new("/nonexistent/ccc-root"), 1),
        None,
    )
    .expect_err("missing root");
    assert!(matches!(err, IngestError::MissingRoot { .. }));
    assert!(err.to_string().contains("/nonexistent/ccc-root"));
}

#[test]
fn one_thread_and_many_threads_give_identical_summaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(
        "gen_ccp_logs.py",
        dir.path(),
        &["--requests", "2000", "--seed", "5"],
    );
    let a = backfill(&opts(dir.path(), 1), None).expect("backfill");
    let b = backfill(&opts(dir.path(), 4), None).expect("backfill");
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.skipped.len(), b.skipped.len());
}

#[test]
fn reading_large_logs_in_chunks_gives_the_same_turns_and_line_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = generate(
        "gen_ccp_logs.py",
        dir.path(),
        &["--requests", "14000", "--seed", "8", "--archives", "0"],
    );
    let whole: Vec<LogJob> = ccc::paths::usage_logs(dir.path())
        .expect("logs")
        .into_iter()
        .map(|p| {
            let size = std::fs::metadata(&p).expect("meta").len();
            LogJob::whole(p, 0, 1, size)
        })
        .collect();
    let chunked = ccc::split_jobs(whole.clone(), 1 << 20);
    assert!(
        chunked.len() > whole.len(),
        "files must be split for this test"
    );
    let run = |jobs: &[LogJob]| {
        let mut asm = Assembler::default();
        let mut joiner = ccc::ChunkJoiner::default();
        let mut skipped = Vec::new();
        let mut lines = 0;
        let mut files = 0;
        let mut ends = Vec::new();
        for j in jobs {
            let mut o = ccc::read_log(j, &TimeRange::default(), None);
            joiner.fix(j, &mut o);
            lines += o.account.lines;
            files += o.account.files;
            skipped.extend(o.skipped.iter().map(|s| (s.path.to_path_buf(), s.line)));
            if j.limit.is_none() {
                let e = o.end.expect("read");
                ends.push((e.offset, e.last_line_offset, e.last_line_hash, e.lines));
            }
            asm.push(o.closed, o.open);
        }
        let (turns, incomplete) = asm.finish();
        (turns, incomplete, skipped, lines, files, ends)
    };
    let a = run(&whole);
    let b = run(&chunked);
    assert_eq!(a.0.len() as u64, truth["requests"].as_u64().expect("n"));
    assert_eq!(b.0.len(), a.0.len());
    let key =
        |t: &agentos_ingest::source::ccc::CccTurn| (t.rid.clone(), t.input_tokens, t.output_tokens);
    let mut ka: Vec<_> = a.0.iter().map(key).collect();
    let mut kb: Vec<_> = b.0.iter().map(key).collect();
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb);
    assert_eq!(b.1, a.1);
    assert_eq!(b.2, a.2, "skipped lines keep their file line numbers");
    assert_eq!(b.3, a.3);
    assert_eq!(b.4, a.4);
    assert_eq!(b.5, a.5, "the checkpoint end of each file is the same");
}

#[test]
fn sessions_measurements_and_value_come_from_windows_and_results_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let results = dir.path().join("results");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::create_dir_all(&results).expect("mkdir");
    // Three requests in one 5-hour window, one six hours later; "nostatus" has no `status`.
    let line = |ts: f64, rid: &str, status: &str| {
        format!(
            "{{\"ts\":{ts},\"rid\":\"{rid}\",\"lane\":\"zai\",\"model\":\"glm-4.6\",{status}\"input_tokens\":10,\"output_tokens\":2,\"op\":\"nonstream\",\"reason\":\"ok\"}}\n"
        )
    };
    let h = 3600.0;
    let log = [
        line(1_790_000_000.0, "ok1", "\"status\":200,"),
        line(1_790_000_000.0 + h, "bad", "\"status\":500,"),
        line(1_790_000_000.0 + 2.0 * h, "nostatus", ""),
        line(1_790_000_000.0 + 8.0 * h, "ok2", "\"status\":200,"),
    ]
    .concat();
    std::fs::write(logs.join("usage.jsonl"), log).expect("write");
    std::fs::write(
        results.join("METRICS_a.json"),
        r#"{"total": 2, "cls": 1.0, "impf": 10, "attribution": {"glm-4.6": 0.5, "sonnet": 0.5}}"#,
    )
    .expect("write");
    std::fs::write(
        results.join("METRICS_b.json"),
        r#"{"total": 1, "avg_cls": 2.0, "churn_score": 0.25, "model_value": {"glm-4.6": 3}}"#,
    )
    .expect("write");
    std::fs::write(results.join("METRICS_c.json"), r#"{"total": 0}"#).expect("write");

    let s = backfill(&opts(dir.path(), 1), None)
        .expect("backfill runs")
        .summary;
    assert_eq!(s.summary.turns, 4);
    assert_eq!(s.summary.sessions, 2, "two activity windows");
    assert_eq!(
        s.requests.errors, 1,
        "only the 500; a status-less line is not an error"
    );
    assert_eq!(s.summary.features_shipped, 3.0);
    // Means over the files that carry each measurement, not over all three files.
    assert_eq!(s.summary.avg_cls, Some(1.5));
    assert_eq!(s.summary.avg_impf, Some(10.0));
    assert_eq!(s.summary.avg_churn_score, Some(0.25));
    let want: BTreeMap<String, f64> = [("glm-4.6".to_string(), 4.0), ("sonnet".to_string(), 1.0)]
        .into_iter()
        .collect();
    assert_eq!(s.summary.model_value, want);
}

#[test]
fn results_without_measurements_leave_the_means_null() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(
        "gen_ccp_logs.py",
        dir.path(),
        &["--requests", "200", "--seed", "3"],
    );
    let s = backfill(&opts(dir.path(), 1), None)
        .expect("backfill runs")
        .summary;
    assert_eq!(s.summary.avg_cls, None);
    assert!(s.summary.model_value.is_empty());
    assert!(
        s.summary.sessions >= 1,
        "turns exist, so at least one window"
    );
}
