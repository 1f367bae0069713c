//! Claude Code transcripts against the generator's TRUTH.json, the store's idempotence and
//! determinism across thread counts.

use std::path::Path;

use agentos_ingest::PriceTable;
use agentos_ingest::ingest::{RunOptions, ingest_claude, load_all, scan_claude};
use agentos_ingest::report::{ReportKind, ReportOptions, build};
use agentos_ingest::time::{TimeRange, parse_iso_ms, time_zone};

use crate::support::generate;

fn opts(threads: usize) -> RunOptions {
    RunOptions {
        threads,
        range: TimeRange::default(),
    }
}

fn report_opts(kind: ReportKind) -> ReportOptions {
    ReportOptions {
        kind,
        tz: time_zone(Some("UTC")).expect("utc"),
        tz_name: "UTC".into(),
        week_start: jiff::civil::Weekday::Monday,
        range: TimeRange::default(),
        prices: PriceTable::embedded(),
        now_ms: 0,
        active_only: false,
        token_limit: None,
        filters: Default::default(),
    }
}

fn corpus(dir: &Path, sessions: &str, turns: &str, seed: &str) -> serde_json::Value {
    generate(
        "gen_claude_logs.py",
        dir,
        &[
            "--sessions",
            sessions,
            "--turns",
            turns,
            "--seed",
            seed,
            "--pad",
            "200",
        ],
    )
}

#[test]
fn token_totals_duplicates_and_torn_lines_match_the_truth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = corpus(dir.path(), "24", "150", "7");
    let run = scan_claude(Some(dir.path()), &opts(2), None).expect("scan");
    let rep = build(&run.set, &report_opts(ReportKind::Daily));
    let t = &rep.totals.tokens;
    assert_eq!(t.input_tokens, truth["input"].as_u64().expect("n"));
    assert_eq!(t.output_tokens, truth["output"].as_u64().expect("n"));
    assert_eq!(
        t.cache_creation_tokens,
        truth["cache_create"].as_u64().expect("n")
    );
    assert_eq!(
        t.cache_read_tokens,
        truth["cache_read"].as_u64().expect("n")
    );
    let unique = truth["assistant_unique"].as_u64().expect("n");
    assert_eq!(rep.totals.turns, unique);
    assert_eq!(
        run.account.lines_skipped,
        truth["corrupt"].as_u64().expect("n")
    );
    assert!(
        run.account.lines_skipped > 0,
        "the seed must produce torn lines"
    );
    // Every assistant line is a record; all records beyond the unique ones are duplicates.
    let entries = truth["entries"].as_u64().expect("n");
    let user_lines = 24 * 150;
    assert_eq!(run.account.records, entries - user_lines);
    assert_eq!(run.account.duplicates, run.account.records - unique);
    assert!(run.account.duplicates > 0);
    assert!(rep.totals.cost_usd > 0.0);
    assert!(rep.totals.breakdown.iter().all(|b| b.priced));
}

#[test]
fn one_thread_gives_the_same_report_as_many() {
    let dir = tempfile::tempdir().expect("tempdir");
    corpus(dir.path(), "9", "60", "3");
    let one = scan_claude(Some(dir.path()), &opts(1), None).expect("scan");
    let many = scan_claude(Some(dir.path()), &opts(4), None).expect("scan");
    for kind in [ReportKind::Daily, ReportKind::Session, ReportKind::Blocks] {
        let a = serde_json::to_string(&build(&one.set, &report_opts(kind))).expect("json");
        let b = serde_json::to_string(&build(&many.set, &report_opts(kind))).expect("json");
        assert_eq!(a, b, "{kind:?}");
    }
}

#[test]
fn reingesting_adds_nothing_and_reads_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let truth = corpus(dir.path(), "6", "40", "5");
    let first = ingest_claude(data.path(), Some(dir.path()), &opts(2), None).expect("ingest");
    assert_eq!(
        first.account.added,
        truth["assistant_unique"].as_u64().expect("n")
    );
    let second = ingest_claude(data.path(), Some(dir.path()), &opts(2), None).expect("ingest");
    assert_eq!(second.account.added, 0);
    assert_eq!(second.account.bytes, 0);
    assert_eq!(second.account.files_skipped, 6);
    assert_eq!(second.record_count(), first.record_count());
    assert!(
        second.deferred.is_some(),
        "a warm run streams from the store"
    );
    let daily = report_opts(ReportKind::Daily);
    assert_eq!(
        second.report(&daily).expect("report"),
        first.report(&daily).expect("report"),
        "the streamed warm report equals the cold one"
    );
    drop(second); // releases the store lock the warm run holds
    let all = load_all(data.path(), None).expect("load");
    assert_eq!(
        all.records.len() as u64,
        truth["assistant_unique"].as_u64().expect("n")
    );
}

#[test]
fn appended_lines_are_read_from_the_checkpoint_and_counted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let proj = dir.path().join("projects/-home-dev-p");
    std::fs::create_dir_all(&proj).expect("mkdir");
    let file = proj.join("s1.jsonl");
    let line = |id: &str, ts: &str, out: u64| {
        format!(
            "{{\"sessionId\":\"s1\",\"type\":\"assistant\",\"requestId\":\"req_{id}\",\"message\":{{\"id\":\"msg_{id}\",\"model\":\"claude-sonnet-4-20250514\",\"usage\":{{\"input_tokens\":1,\"output_tokens\":{out},\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}},\"timestamp\":\"{ts}\"}}\n"
        )
    };
    std::fs::write(&file, line("a", "2026-09-01T10:00:00Z", 10)).expect("write");
    let r1 = ingest_claude(data.path(), Some(dir.path()), &opts(1), None).expect("ingest");
    assert_eq!(r1.account.added, 1);
    let size1 = std::fs::metadata(&file).expect("meta").len();
    // The streamed copy with the final token count, then a new message, then a write in progress.
    let mut more = line("a", "2026-09-01T10:00:01Z", 50);
    more.push_str(&line("b", "2026-09-01T10:05:00Z", 7));
    more.push_str("{\"sessionId\":\"s1\",\"type\":\"assist");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open");
    std::io::Write::write_all(&mut f, more.as_bytes()).expect("append");
    let r2 = ingest_claude(data.path(), Some(dir.path()), &opts(1), None).expect("ingest");
    assert_eq!(
        r2.account.bytes,
        std::fs::metadata(&file).expect("meta").len() - size1
    );
    assert_eq!(
        r2.account.lines_skipped, 0,
        "a pending tail is not a torn line"
    );
    assert_eq!(r2.set.records.len(), 2);
    let rep = build(&r2.set, &report_opts(ReportKind::Daily));
    // The copy with more tokens replaced the first one.
    assert_eq!(rep.totals.tokens.output_tokens, 57);
    let r3 = ingest_claude(data.path(), Some(dir.path()), &opts(1), None).expect("ingest");
    let rep3 = r3.report(&report_opts(ReportKind::Daily)).expect("report");
    assert_eq!(rep3.totals.tokens.output_tokens, 57);
    assert_eq!(r3.account.added, 0);
}

#[test]
fn since_and_until_skip_lines_outside_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    corpus(dir.path(), "8", "80", "9");
    let all = scan_claude(Some(dir.path()), &opts(2), None).expect("scan");
    let range = TimeRange::from_user(
        Some("2026-09-20"),
        Some("2026-10-05"),
        &time_zone(None).expect("tz"),
    )
    .expect("range");
    let part =
        scan_claude(Some(dir.path()), &RunOptions { threads: 2, range }, None).expect("scan");
    let want = all
        .set
        .records
        .iter()
        .filter(|r| range.contains(r.ts_ms))
        .count();
    assert_eq!(part.set.records.len(), want);
    assert!(part.account.out_of_range > 0);
    assert!(part.set.records.iter().all(|r| {
        r.ts_ms >= parse_iso_ms("2026-09-20T00:00:00Z").expect("ts")
            && r.ts_ms < parse_iso_ms("2026-10-06T00:00:00Z").expect("ts")
    }));
}

#[test]
fn daily_report_json_is_pinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::generate_pinned(
        "gen_claude_logs.py",
        dir.path(),
        &[
            "--sessions",
            "3",
            "--turns",
            "12",
            "--seed",
            "21",
            "--pad",
            "200",
        ],
    );
    let run = scan_claude(Some(dir.path()), &opts(1), None).expect("scan");
    let rep = build(&run.set, &report_opts(ReportKind::Daily));
    insta::assert_json_snapshot!("daily_report_of_a_small_generated_corpus", rep);
    let blocks = build(&run.set, &report_opts(ReportKind::Blocks));
    insta::assert_json_snapshot!("blocks_report_of_a_small_generated_corpus", blocks);
}

#[test]
fn a_large_transcript_read_in_chunks_gives_the_same_records_and_line_numbers() {
    use agentos_ingest::record::RecordSet;
    use agentos_ingest::source::claude::{self, ChunkJoiner, FileJob};
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = generate(
        "gen_claude_logs.py",
        dir.path(),
        &["--sessions", "1", "--turns", "2500", "--seed", "13"],
    );
    let files = claude::paths::transcript_files(&[dir.path().join("projects")]);
    let whole: Vec<FileJob> = files
        .iter()
        .map(|p| FileJob {
            path: p.clone(),
            project: "p".into(),
            start: 0,
            first_line: 1,
            size: std::fs::metadata(p).expect("meta").len(),
            limit: None,
            resync: false,
        })
        .collect();
    let chunked = claude::split_jobs(whole.clone(), 1 << 20);
    assert!(chunked.len() > 2, "the file must be split for this test");
    let run = |jobs: &[FileJob]| {
        let mut set = RecordSet::default();
        let mut joiner = ChunkJoiner::default();
        let mut skipped = Vec::new();
        let mut lines = 0;
        let mut end = None;
        for j in jobs {
            let mut o = claude::read_file(j, &TimeRange::default(), None);
            joiner.fix(j, &mut o);
            lines += o.account.lines;
            skipped.extend(o.skipped.iter().map(|s| s.line));
            if j.limit.is_none() {
                let e = o.end.expect("read");
                end = Some((e.offset, e.last_line_hash, e.lines));
            }
            set.merge_batch(o.batch);
        }
        (set, skipped, lines, end)
    };
    let (a, sa, la, ea) = run(&whole);
    let (b, sb, lb, eb) = run(&chunked);
    assert_eq!(
        a.records.len() as u64,
        truth["assistant_unique"].as_u64().expect("n")
    );
    assert_eq!(a.records, b.records);
    assert_eq!(sa, sb);
    assert!(!sa.is_empty(), "the seed must produce torn lines");
    assert_eq!(la, lb);
    assert_eq!(ea, eb);
}
