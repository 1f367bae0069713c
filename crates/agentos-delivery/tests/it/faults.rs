//! A server that fails in every transient way: everything arrives once it recovers, nothing
//! is stored twice; permanent rejections are isolated and logged.

use std::time::Duration;

use agentos_core::tier::Tier;
use agentos_delivery::status;
use agentos_test_support::http::{Fault, RecordingServer};

use crate::support::{DEVICE, append_events, assert_exactly_once_in_order, settings, sync};

#[test]
fn transient_faults_delay_but_never_lose_or_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    server.push_faults([
        Fault::Status(500),
        Fault::Status(502),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        Fault::Pass,
        Fault::Reset,
        Fault::Reset,
        // Stored, then answered after the client gave up: the retry is a replay.
        Fault::Stall(Duration::from_secs(3)),
        Fault::Unavailable {
            retry_after_secs: 0,
        },
        Fault::Pass,
        Fault::Status(500),
    ]);
    append_events(data, 1..=2000, |_| Tier::Full);
    let mut s = settings(data, &server.url(), Tier::Full);
    s.batch_max_events = 100;
    s.timeout = Duration::from_secs(1);
    let report = sync(&s);

    assert!(report.caught_up);
    assert_eq!(server.pending_faults(), 0, "every fault was served");
    assert_exactly_once_in_order(&server, 2000);
    assert!(
        server.duplicates() >= 100,
        "the stalled batch was replayed and deduped"
    );
    assert!(report.retries >= 8, "retries: {}", report.retries);
    assert_eq!(server.watermark(DEVICE), 2000);
    assert!(server.gaps(DEVICE).is_empty());
    let st = status(data).expect("status");
    assert_eq!(st.pending_events, 0);
    assert!(st.retries_total >= 8);
    assert!(st.last_error.is_some());
    assert_eq!(st.server_watermark, Some(2000));
}

#[test]
fn per_event_rejections_go_to_rejected_jsonl_and_delivery_moves_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    server.reject_seqs([5, 17]);
    append_events(data, 1..=50, |_| Tier::Full);
    let report = sync(&settings(data, &server.url(), Tier::Full));
    assert!(report.caught_up);
    assert_eq!(report.rejected, 2);
    assert_eq!(server.event_count(), 48);
    assert_eq!(
        server.watermark(DEVICE),
        50,
        "rejected seqs count as covered"
    );
    let text = std::fs::read_to_string(data.join("delivery/rejected.jsonl")).expect("rejected");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["seq"], 5);
    assert_eq!(lines[0]["code"], "test_rejected");
    assert!(
        lines[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("seq 5"))
    );
    assert_eq!(
        lines[0]["event"]["seq"], 5,
        "the event as sent is kept for diagnosis"
    );
    assert_eq!(status(data).expect("status").rejected, 2);
}

#[test]
fn a_batch_refused_as_a_whole_is_resent_one_by_one_to_isolate_the_bad_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    // The batch is refused, then the first single (seq 1) too; the rest pass.
    server.push_faults([Fault::Unprocessable, Fault::Unprocessable]);
    append_events(data, 1..=20, |_| Tier::Full);
    let report = sync(&settings(data, &server.url(), Tier::Full));
    assert!(report.caught_up);
    assert_eq!(report.rejected, 1);
    let seqs: Vec<u64> = server.events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (2..=20).collect::<Vec<_>>());
    let text = std::fs::read_to_string(data.join("delivery/rejected.jsonl")).expect("rejected");
    let rec: serde_json::Value = serde_json::from_str(text.trim()).expect("one record");
    assert_eq!(rec["seq"], 1);
    assert_eq!(rec["status"], 422);
    assert!(
        rec["reason"]
            .as_str()
            .is_some_and(|r| r.contains("/events"))
    );
    assert_eq!(
        server.watermark(DEVICE),
        20,
        "the refused seq is still accounted for"
    );
}

#[test]
fn a_refusing_server_stops_sync_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start_with(agentos_test_support::http::ServerOptions {
        api_key: Some("right".into()),
        ..Default::default()
    })
    .expect("server");
    append_events(data, 1..=3, |_| Tier::Full);
    let mut s = settings(data, &server.url(), Tier::Full);
    s.api_key = Some("wrong".into());
    let rt = crate::support::rt();
    let err = rt
        .block_on(async {
            let mut d = agentos_delivery::Delivery::open(s).expect("open");
            d.sync(None).await
        })
        .expect_err("401 must stop the sync");
    let msg = err.to_string();
    assert!(msg.contains("401") && msg.contains("unauthorized"), "{msg}");
    assert_eq!(server.event_count(), 0);
    let st = status(data).expect("status");
    assert_eq!(st.pending_events, 3, "nothing is lost: still pending");
    assert_eq!(
        st.last_error.map(|e| e.code).as_deref(),
        Some("unauthorized")
    );
}

#[test]
fn the_sync_deadline_cuts_off_a_request_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    // An answer that would take ten minutes, within a per-request timeout just as long: only
    // the sync's own deadline can end the call (without it this test hangs).
    server.push_faults([Fault::Stall(Duration::from_secs(600))]);
    append_events(data, 1..=5, |_| Tier::Full);
    let mut s = settings(data, &server.url(), Tier::Full);
    s.timeout = Duration::from_secs(600);
    let report = crate::support::rt().block_on(async {
        let mut d = agentos_delivery::Delivery::open(s.clone()).expect("open delivery");
        d.sync(Some(
            tokio::time::Instant::now() + Duration::from_millis(500),
        ))
        .await
        .expect("sync")
    });
    assert!(!report.caught_up, "out of time, not delivered");
    let st = status(data).expect("status");
    assert_eq!(
        st.pending_events, 5,
        "nothing moved without an acknowledgement"
    );
}
