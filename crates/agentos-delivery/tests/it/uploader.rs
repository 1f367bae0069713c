//! The background uploader: keeps up with a recorder, flushes, shuts down cleanly.

use std::time::Duration;

use agentos_core::tier::Tier;
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

#[test]
fn the_recorder_never_waits_on_a_struggling_uploader() {
    use agentos_recorder::recorder::{Recorder, StartRequest};

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = crate::support::licensed_config(dir.path(), Tier::Full, &["telemetry_full"]);
    let server = RecordingServer::start().expect("server");
    // The server is down for a while: 40 failures of every kind before it recovers.
    server.push_faults((0..40).map(|i| match i % 4 {
        0 => Fault::Status(503),
        1 => Fault::Reset,
        2 => Fault::TooManyRequests {
            retry_after_secs: 0,
        },
        _ => Fault::Status(500),
    }));
    let mut s = agentos_delivery::Settings::from_config(&cfg).expect("settings");
    s.url = Some(server.url());
    s.device_id = crate::support::DEVICE.into();
    s.backoff_min = Duration::from_millis(5);
    s.backoff_max = Duration::from_millis(20);
    s.poll_interval = Duration::from_millis(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let up = Uploader::start(s).expect("start");
        // Record from another thread while the uploader is retrying.
        let rec_cfg = cfg.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let mut rec = Recorder::open(rec_cfg).expect("recorder");
            rec.start_session(StartRequest {
                tier: Some(Tier::Full),
                ..StartRequest::default()
            })
            .expect("start");
            for _ in 0..150 {
                rec.record_turn(agentos_core::event::TurnEvent::default())
                    .expect("record while the uploader struggles");
            }
            rec.end_session(None).expect("end").seq
        })
        .await
        .expect("recorder thread");
        assert_eq!(recorded, 152);
        up.notify();
        assert!(up.flush(Duration::from_secs(60)).await);
        up.shutdown(Duration::from_secs(10)).await;
    });
    assert_exactly_once_in_order(&server, 152);
    assert!(server.pending_faults() == 0, "the outage was really served");
}
