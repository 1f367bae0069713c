//! Incremental CCC ingest: rotation by identity, pending requests across runs, idempotence, and a
//! crash between appending records and committing the checkpoint.

use std::io::Write;
use std::path::Path;

use agentos_ingest::ingest::{RunOptions, ingest_ccc};
use agentos_ingest::record::FLAG_INCOMPLETE;
use agentos_ingest::time::TimeRange;

use crate::support::generate;

fn opts() -> RunOptions {
    RunOptions {
        threads: 2,
        range: TimeRange::default(),
    }
}

fn request(rid: &str, ts: f64, tokens: u64) -> String {
    format!(
        "{{\"ts\":{ts},\"rid\":\"{rid}\",\"lane\":\"zai\",\"model\":\"glm-4.6\",\"input_tokens\":0,\"output_tokens\":0,\"status\":-1,\"event\":\"decision\",\"decision\":\"quota_pass\"}}\n{{\"ts\":{},\"rid\":\"{rid}\",\"lane\":\"zai\",\"model\":\"glm-4.6\",\"input_tokens\":{tokens},\"output_tokens\":1,\"status\":200,\"reason\":\"ok\",\"op\":\"nonstream\",\"reroute_decision\":\"quota_pass\"}}\n",
        ts + 1.0
    )
}

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .expect("open");
    f.write_all(s.as_bytes()).expect("append");
}

#[test]
fn rotation_is_recognised_by_identity_and_not_counted_again() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let cur = logs.join("usage.jsonl");
    append(&cur, &request("00000001", 100.0, 10));
    append(&cur, &request("00000002", 200.0, 20));
    let r1 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r1.account.added, 2);
    // The shim rotates: current → .1, new empty current, then one more request.
    std::fs::rename(&cur, logs.join("usage.jsonl.1")).expect("rotate");
    append(&cur, &request("00000003", 300.0, 30));
    let r2 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r2.account.added, 1);
    assert_eq!(
        r2.account.files_skipped, 1,
        "the rotated file is known by its inode"
    );
    assert_eq!(
        r2.account.bytes,
        std::fs::metadata(&cur).expect("meta").len()
    );
    assert_eq!(r2.set.records.len(), 3);
    let r3 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r3.account.added, 0);
    assert_eq!(r3.account.bytes, 0);
}

#[test]
fn a_request_open_at_the_end_of_a_run_is_completed_by_the_next_run() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let cur = logs.join("usage.jsonl");
    let req = request("abcdef01", 1000.0, 42);
    let (decision, fin) = req.split_at(req.find('\n').expect("two lines") + 1);
    append(&cur, decision);
    let r1 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r1.account.added, 0, "an open request is not a turn yet");
    append(&cur, fin);
    let r2 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r2.account.added, 1);
    let r = r2.set.records[0];
    assert_eq!(r.tokens.input, 42);
    assert_eq!(r.flags & FLAG_INCOMPLETE, 0);
}

#[test]
fn reingesting_a_generated_root_adds_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let truth = generate(
        "gen_ccp_logs.py",
        root.path(),
        &["--requests", "1500", "--seed", "2"],
    );
    let r1 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r1.account.added, truth["requests"].as_u64().expect("n"));
    assert_eq!(
        r1.account.lines_skipped,
        truth["torn_lines"].as_u64().expect("n")
    );
    let r2 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r2.account.added, 0);
    assert_eq!(r2.record_count(), truth["requests"].as_u64().expect("n"));
}

#[test]
fn uncommitted_records_after_a_crash_are_cut_off_and_re_read_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    append(&logs.join("usage.jsonl"), &request("00000001", 100.0, 10));
    let r1 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    let store = r1.store_dir.expect("store dir");
    // Simulate a crash after records were appended but before the checkpoint was committed.
    append(&logs.join("usage.jsonl"), &request("00000002", 200.0, 20));
    let junk = vec![7u8; 72 + 13];
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(store.join("records.bin"))
        .expect("open");
    f.write_all(&junk).expect("append junk");
    drop(f);
    let r2 = ingest_ccc(data.path(), root.path(), &opts(), None).expect("ingest");
    assert_eq!(r2.set.records.len(), 2);
    assert_eq!(
        std::fs::metadata(store.join("records.bin"))
            .expect("meta")
            .len(),
        2 * 72
    );
}

#[test]
fn a_second_writer_on_the_same_store_gets_a_clear_error() {
    use agentos_ingest::store::{SourceKind, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Store::open(dir.path(), SourceKind::Ccc, "root").expect("open");
    let err = Store::open(dir.path(), SourceKind::Ccc, "root").expect_err("locked");
    assert_eq!(err.code(), "store_unusable");
    assert!(
        err.to_string().contains("is another agentos ingest"),
        "{err}"
    );
    drop(first);
    Store::open(dir.path(), SourceKind::Ccc, "root").expect("free again");
}

#[test]
fn records_appended_while_early_syncs_run_are_all_committed() {
    use agentos_ingest::checkpoint::Checkpoints;
    use agentos_ingest::record::{StringTable, UsageRecord};
    use agentos_ingest::store::{SourceKind, Store};
    use agentos_ingest::{DedupKey, Tokens};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut strings = StringTable::default();
    let model = strings.intern("gpt-5");
    let rec = |i: u64| UsageRecord {
        key: DedupKey { a: i, b: !i },
        ts_ms: i as i64,
        model,
        session: 0,
        project: 0,
        flags: 0,
        tokens: Tokens {
            input: i,
            output: 1,
            cache_creation: 0,
            cache_read: 0,
        },
    };
    // 5 MiB in 100 appends: the appender starts background syncs on the way, and the commit
    // has to wait for the one in flight.
    let n: u64 = (5 << 20) / UsageRecord::SIZE as u64;
    let mut store = Store::open(dir.path(), SourceKind::Codex, "root").expect("open");
    let mut app = store.appender();
    let all: Vec<UsageRecord> = (0..n).map(rec).collect();
    for chunk in all.chunks(all.len() / 100) {
        app.write(chunk).expect("append");
    }
    assert_eq!(app.written(), n * UsageRecord::SIZE as u64);
    store
        .commit(app, 0, &strings, None, Checkpoints::default())
        .expect("commit");
    drop(store);
    let store = Store::open(dir.path(), SourceKind::Codex, "root").expect("reopen");
    assert_eq!(store.record_count(), n);
    let set = store.load().expect("load");
    assert_eq!(set.records, all);
    assert_eq!(
        std::fs::metadata(dir.path().join("records.bin"))
            .expect("meta")
            .len(),
        n * UsageRecord::SIZE as u64
    );
}
