//! Torn lines, corrupt cursors, and the single-uploader lock.

use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, DeliveryError, status};
use agentos_test_support::http::RecordingServer;

use crate::support::{
    append_events, append_raw, assert_exactly_once_in_order, settings, sync, turn_envelope,
};

#[test]
fn a_torn_last_line_is_not_sent_and_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    append_events(data, 1..=10, |_| Tier::Full);
    let whole = serde_json::to_vec(&turn_envelope(11, Tier::Full)).expect("json");
    let (head, rest) = whole.split_at(whole.len() / 2);
    append_raw(data, head);
    let s = settings(data, &server.url(), Tier::Full);

    let report = sync(&s);
    assert!(report.caught_up);
    assert_eq!(server.event_count(), 10, "the half line is not sent");
    let st = status(data).expect("status");
    assert_eq!(st.torn_tail_bytes, head.len() as u64);
    assert_eq!(st.pending_events, 0);

    // The writer finishes its line: it goes out on the next sync.
    append_raw(data, rest);
    append_raw(data, b"\n");
    sync(&s);
    assert_exactly_once_in_order(&server, 11);
}

#[test]
fn a_torn_line_followed_by_more_events_is_skipped_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    append_events(data, 1..=3, |_| Tier::Full);
    // A crash mid-write, then a later writer appended after the torn bytes.
    append_raw(data, b"{\"type\":\"turn\",\"event_id\":\"01");
    append_raw(data, b"\n");
    append_events(data, 4..=6, |_| Tier::Full);
    let report = sync(&settings(data, &server.url(), Tier::Full));
    assert!(report.caught_up);
    let seqs: Vec<u64> = server.events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let rejected = std::fs::read_to_string(data.join("delivery/rejected.jsonl")).expect("log");
    assert!(rejected.contains("unparsable_local_line"), "{rejected}");
    assert!(
        rejected.contains("windows.jsonl"),
        "names the file: {rejected}"
    );
    assert_eq!(
        report.rejected,
        rejected.lines().count() as u64,
        "the report counts every line rejected.jsonl gained"
    );
}

#[test]
fn a_corrupt_cursor_rescans_without_loss_or_duplicates() {
    for corruption in [
        &b"{\"version\":1,\"offset\":12"[..],
        b"not json at all",
        b"{\"version\":1,\"offset\":100,\"acked_seq\":1,\"reported_seq\":1,\"checksum\":\"00\"}",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        let server = RecordingServer::start().expect("server");
        append_events(data, 1..=100, |_| Tier::Full);
        let s = settings(data, &server.url(), Tier::Full);
        sync(&s);
        std::fs::write(data.join("delivery/cursor.json"), corruption).expect("corrupt");
        append_events(data, 101..=150, |_| Tier::Full);
        let st = status(data).expect("status");
        assert!(
            st.cursor_problem.is_some(),
            "status reports the corrupt cursor"
        );
        assert_eq!(st.pending_events, 150, "everything counts as pending again");

        let report = sync(&s);
        assert!(report.caught_up);
        assert!(
            report
                .rescan
                .as_deref()
                .is_some_and(|r| r.contains("corrupt")),
            "{:?}",
            report.rescan
        );
        assert_exactly_once_in_order(&server, 150);
        assert_eq!(
            server.duplicates(),
            100,
            "the replay was deduped by event_id"
        );
        let st = status(data).expect("status");
        assert_eq!(st.rescans.len(), 1);
        assert!(st.cursor_problem.is_none());
    }
}

#[test]
fn a_cursor_past_the_end_of_a_replaced_log_rescans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    append_events(data, 1..=20, |_| Tier::Full);
    let s = settings(data, &server.url(), Tier::Full);
    sync(&s);
    // The log is replaced by a shorter one (the user restored an older copy).
    let text = std::fs::read_to_string(data.join("windows.jsonl")).expect("log");
    let first5: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(data.join("windows.jsonl"), first5).expect("replace");
    let report = sync(&s);
    assert!(
        report
            .rescan
            .as_deref()
            .is_some_and(|r| r.contains("past the end"))
    );
    assert_eq!(report.duplicates, 5);
    assert_eq!(server.event_count(), 20);
}

#[test]
fn a_second_uploader_on_the_same_data_dir_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(dir.path(), "http://127.0.0.1:9", Tier::Full);
    let _first = Delivery::open(s.clone()).expect("first");
    let err = Delivery::open(s).expect_err("second must fail");
    assert!(matches!(err, DeliveryError::Locked { .. }));
    assert!(err.to_string().contains("another"), "{err}");
    assert!(status(dir.path()).expect("status").uploader_running);
}
