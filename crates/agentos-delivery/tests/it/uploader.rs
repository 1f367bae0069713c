//! The background uploader: keeps up with a recorder, flushes, shuts down cleanly.

use std::time::Duration;

use agentos_core::privacy::Tier;
use agentos_delivery::{Delivery, Uploader, status};
use agentos_test_support::http::{Fault, RecordingServer};

use crate::support::{append_events, assert_exactly_once_in_order, rt, settings};

#[test]
fn the_uploader_follows_the_log_and_flush_waits_for_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    server.push_faults([Fault::Status(503), Fault::Reset]);
    let rt = rt();
    rt.block_on(async {
        let up = Uploader::start(settings(data, &server.url(), Tier::Full)).expect("start");
        for round in 0..5u64 {
            append_events(data, round * 40 + 1..=round * 40 + 40, |_| Tier::Full);
            up.notify();
        }
        assert!(
            up.flush(Duration::from_secs(60)).await,
            "flush delivers everything"
        );
        assert_eq!(server.event_count(), 200);
        append_events(data, 201..=250, |_| Tier::Full);
        assert!(up.shutdown(Duration::from_secs(60)).await);
    });
    assert_exactly_once_in_order(&server, 250);
    // The lock is released on shutdown.
    drop(Delivery::open(settings(data, &server.url(), Tier::Full)).expect("reopen"));
    assert_eq!(status(data).expect("status").pending_events, 0);
}

#[test]
fn flush_reports_false_while_the_server_is_down_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    server.push_faults(std::iter::repeat_n(Fault::Status(503), 10_000));
    append_events(data, 1..=30, |_| Tier::Full);
    let rt = rt();
    rt.block_on(async {
        let up = Uploader::start(settings(data, &server.url(), Tier::Full)).expect("start");
        assert!(!up.flush(Duration::from_millis(300)).await);
        assert!(!up.shutdown(Duration::from_millis(300)).await);
    });
    assert_eq!(server.event_count(), 0);
    let st = status(data).expect("status");
    assert_eq!(st.pending_events, 30);
    assert!(st.retries_total > 0);
    assert!(!st.uploader_running);
}
