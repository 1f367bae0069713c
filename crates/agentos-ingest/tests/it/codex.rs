//! Codex CLI rollouts against the generator's TRUTH.json (bench/codex_make_sessions.py), the
//! store's incremental reads with saved reader state, and `--since` skipping work.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentos_ingest::agent::{ingest, scan};
use agentos_ingest::ingest::RunOptions;
use agentos_ingest::report::{ReportKind, ReportOptions, build};
use agentos_ingest::source::codex::Codex;
use agentos_ingest::time::TimeRange;

fn generate(out: &Path, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/codex_make_sessions.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(out)
        .args(args)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "{} failed", script.display());
    let t = std::fs::read(out.join("TRUTH.json")).expect("TRUTH.json");
    serde_json::from_slice(&t).expect("json")
}

fn opts(threads: usize) -> RunOptions {
    crate::support::run_opts(threads)
}

fn report_opts(kind: ReportKind) -> ReportOptions {
    crate::support::utc_report(kind)
}

fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// Our totals in Codex's split: (turns, input incl. cached, cached, output).
fn totals(run: &agentos_ingest::ingest::IngestRun) -> (u64, u64, u64, u64) {
    let r = run.report(&report_opts(ReportKind::Daily)).expect("report");
    let t = r.totals.tokens;
    (
        r.totals.turns,
        t.input_tokens + t.cache_read_tokens,
        t.cache_read_tokens,
        t.output_tokens,
    )
}

fn truth_totals(t: &serde_json::Value) -> (u64, u64, u64, u64) {
    (n(t, "turns"), n(t, "input"), n(t, "cached"), n(t, "output"))
}

#[test]
fn every_shape_adds_up_to_the_truth_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = generate(
        dir.path(),
        &[
            "--sessions",
            "40",
            "--turns",
            "30",
            "--seed",
            "11",
            "--restarts",
            "--torn",
        ],
    );
    for shape in ["full", "cumulative", "no_context", "resumed"] {
        assert!(
            truth["shapes"][shape].as_u64().is_some_and(|c| c > 0),
            "corpus lacks {shape}"
        );
    }
    let one = scan::<Codex>(Some(dir.path()), &opts(1), None).expect("scan");
    assert_eq!(totals(&one), truth_totals(&truth));
    assert_eq!(one.account.lines_skipped, n(&truth, "skipped"));
    assert!(one.account.duplicates > 0, "repeated token_count events");
    // Same answer whatever the thread count.
    let four = scan::<Codex>(Some(dir.path()), &opts(4), None).expect("scan");
    assert_eq!(totals(&four), totals(&one));
    // Per day and per model.
    let daily = build(&one.set, &report_opts(ReportKind::Daily));
    for row in &daily.rows {
        let want = &truth["by_day"][&row.key];
        assert_eq!(row.turns, n(want, "turns"), "{}", row.key);
        assert_eq!(row.tokens.output_tokens, n(want, "output"), "{}", row.key);
        assert_eq!(
            row.tokens.cache_read_tokens,
            n(want, "cached"),
            "{}",
            row.key
        );
    }
    assert_eq!(
        daily.rows.len(),
        truth["by_day"].as_object().map_or(0, |o| o.len())
    );
    for b in &daily.totals.breakdown {
        let want = &truth["by_model"][&b.model];
        assert_eq!(b.turns, n(want, "turns"), "{}", b.model);
        assert_eq!(
            b.tokens.input_tokens + b.tokens.cache_read_tokens,
            n(want, "input"),
            "{}",
            b.model
        );
    }
    let unknown = daily.totals.breakdown.iter().find(|b| b.model == "unknown");
    assert!(
        unknown.is_some_and(|b| !b.priced),
        "usage without turn_context is unpriced, not guessed"
    );
}

#[test]
fn the_store_reads_only_new_bytes_and_carries_model_and_totals_across_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("codex");
    let data = dir.path().join("data");
    let truth = generate(&home, &["--sessions", "12", "--turns", "25", "--seed", "5"]);
    let first = ingest::<Codex>(&data, Some(&home), &opts(2), None).expect("ingest");
    assert_eq!(totals(&first), truth_totals(&truth));
    assert_eq!(first.account.added, n(&truth, "turns"));
    let again = ingest::<Codex>(&data, Some(&home), &opts(2), None).expect("ingest");
    assert_eq!(again.account.added, 0);
    assert_eq!(again.account.files_skipped, n(&truth, "files"));
    assert_eq!(totals(&again), truth_totals(&truth));
    // A run that read nothing keeps the store (and its lock) for streaming the report.
    drop(again);

    // A session carries on: cumulative-only events, no new turn_context. Their model and
    // deltas come from the state saved at the checkpoint.
    let file = rollouts(&home.join("sessions"))
        .into_iter()
        .next()
        .expect("a rollout");
    let before = std::fs::read_to_string(&file).expect("read");
    let last_total = before
        .lines()
        .rev()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["payload"]["info"]["total_token_usage"]
                .as_object()
                .cloned()
        })
        .expect("a total");
    let model = before
        .lines()
        .rev()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["payload"]["model"].as_str().map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    let g = |k: &str| last_total[k].as_u64().expect("n");
    let (i, c, o, r) = (
        g("input_tokens"),
        g("cached_input_tokens"),
        g("output_tokens"),
        g("reasoning_output_tokens"),
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("append");
    let ev = |ts: &str, i: u64, c: u64, o: u64, r: u64| {
        format!(
            r#"{{"timestamp":"{ts}","type":"event_msg","payload":{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{i},"cached_input_tokens":{c},"output_tokens":{o},"reasoning_output_tokens":{r},"total_tokens":{}}}}}}}}}"#,
            i + o
        )
    };
    writeln!(
        f,
        "{}",
        ev(
            "2026-12-01T10:00:00.000Z",
            i + 1000,
            c + 600,
            o + 50,
            r + 20
        )
    )
    .expect("w");
    writeln!(
        f,
        "{}",
        ev(
            "2026-12-01T10:01:00.000Z",
            i + 3000,
            c + 600,
            o + 80,
            r + 20
        )
    )
    .expect("w");
    drop(f);
    let size = std::fs::metadata(&file).expect("meta").len();
    let third = ingest::<Codex>(&data, Some(&home), &opts(2), None).expect("ingest");
    assert_eq!(third.account.added, 2);
    assert_eq!(third.account.files, 1);
    assert!(
        third.account.bytes < size / 2,
        "resumed at the checkpoint: read {} of {size} bytes",
        third.account.bytes
    );
    let (turns, input, cached, output) = totals(&third);
    let (tt, ti, tc, to) = truth_totals(&truth);
    assert_eq!(
        (turns, input, cached, output),
        (tt + 2, ti + 3000, tc + 600, to + 80)
    );
    let day = build(
        &third.set,
        &ReportOptions {
            range: TimeRange::from_user(Some("2026-12-01"), None, &jiff::tz::TimeZone::UTC)
                .expect("range"),
            ..report_opts(ReportKind::Daily)
        },
    );
    assert_eq!(day.totals.breakdown.len(), 1);
    assert_eq!(day.totals.breakdown[0].model, model);
}

#[test]
fn since_skips_files_last_written_before_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(
        dir.path(),
        &["--sessions", "6", "--turns", "5", "--seed", "3"],
    );
    let files = rollouts(&dir.path().join("sessions"));
    // Backdate all but one file.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for f in &files[1..] {
        std::fs::File::options()
            .write(true)
            .open(f)
            .and_then(|h| h.set_modified(old))
            .expect("set mtime");
    }
    let o = RunOptions {
        threads: 1,
        range: TimeRange::from_user(Some("2026-01-01"), None, &jiff::tz::TimeZone::UTC)
            .expect("range"),
    };
    let run = scan::<Codex>(Some(dir.path()), &o, None).expect("scan");
    assert_eq!(run.account.files, 1);
    assert_eq!(run.account.files_before_range, files.len() as u64 - 1);
}

fn rollouts(root: &Path) -> Vec<PathBuf> {
    agentos_ingest::source::codex::paths::rollout_files(root)
}

#[test]
fn reports_over_every_store_group_by_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let codex = generate(
        &dir.path().join("codex"),
        &["--sessions", "5", "--turns", "8", "--seed", "2"],
    );
    let claude = crate::support::generate(
        "gen_claude_logs.py",
        &dir.path().join("claude"),
        &["--sessions", "3", "--turns", "20", "--seed", "4"],
    );
    drop(ingest::<Codex>(&data, Some(&dir.path().join("codex")), &opts(1), None).expect("codex"));
    drop(
        agentos_ingest::ingest::ingest_claude(
            &data,
            Some(&dir.path().join("claude")),
            &opts(1),
            None,
        )
        .expect("claude"),
    );
    let set = agentos_ingest::ingest::load_all(&data, None).expect("load");
    let mut o = report_opts(ReportKind::Monthly);
    o.filters.by_source = true;
    let r = build(&set, &o);
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for row in &r.rows {
        *by.entry(row.source.clone().expect("a source on every row"))
            .or_default() += row.turns;
    }
    let claude_turns = claude["assistant_unique"].as_u64();
    assert_eq!(by.get("codex").copied(), Some(n(&codex, "turns")));
    assert_eq!(by.get("claude").copied(), claude_turns, "{claude}");
    assert_eq!(by.len(), 2);
}
