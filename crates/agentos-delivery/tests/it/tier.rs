//! The tier applies at send time: an event leaves when the cap in force allows its recorded
//! tier; a lower cap holds it back (pending), and a later run whose cap allows it sends it.

use std::time::Duration;

use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, Uploader};
use agentos_test_support::http::{Fault, RecordingServer};

use crate::support::{DEVICE, append_events, rt, settings, sync};

#[test]
fn only_events_recorded_under_full_leave_and_the_server_sees_no_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    let tier_of = |seq: u64| match seq % 3 {
        0 => Tier::Local,
        1 => Tier::Minimized,
        _ => Tier::Full,
    };
    append_events(data, 1..=300, tier_of);
    let report = sync(&settings(data, &server.url(), Tier::Full));
    assert!(report.caught_up);
    let seqs: Vec<u64> = server.events().iter().map(|e| e.seq).collect();
    let want: Vec<u64> = (1..=300).filter(|s| tier_of(*s) == Tier::Full).collect();
    assert_eq!(seqs, want);
    assert_eq!(report.withheld, 200);
    assert_eq!(
        server.watermark(DEVICE),
        300,
        "withheld seqs are covered, not gaps"
    );
    assert!(server.gaps(DEVICE).is_empty());
}

#[test]
fn lowering_the_tier_mid_backlog_holds_everything_above_it_until_it_is_raised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    append_events(data, 1..=1000, |_| Tier::Full);
    let mut s = settings(data, &server.url(), Tier::Full);
    s.batch_max_events = 100;
    // Three batches go through, then the server asks for a long pause.
    server.push_faults([
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Unavailable {
            retry_after_secs: 3600,
        },
    ]);
    let rt = rt();
    rt.block_on(async {
        let mut d = Delivery::open(s).expect("open");
        let first = d
            .sync(Some(tokio::time::Instant::now() + Duration::from_secs(30)))
            .await
            .expect("first sync");
        assert!(!first.caught_up, "the backlog was interrupted");
        assert_eq!(server.event_count(), 300);

        d.tier().set(Tier::Minimized);
        let second = d.sync(None).await.expect("second sync");
        assert!(second.caught_up);
        assert_eq!(second.sent, 0);
        assert_eq!(second.held, 700);
        assert_eq!(second.held_pending, 700);
        assert_eq!(second.withheld, 0);
    });
    assert_eq!(server.event_count(), 300, "nothing above the new tier left");
    assert_eq!(server.requests_to("/v1/events").len(), 4);
    assert!(server.events().iter().all(|e| e.seq <= 300));
    let st = agentos_delivery::status(data).expect("status");
    assert_eq!((st.held_events, st.pending_events), (700, 0));

    // Raising the tier again sends what was held back, once, in order.
    let again = sync(&settings(data, &server.url(), Tier::Full));
    assert!(again.caught_up);
    assert_eq!(
        (again.sent, again.replayed, again.held_pending),
        (700, 700, 0)
    );
    crate::support::assert_exactly_once_in_order(&server, 1000);
    assert!(server.gaps(DEVICE).is_empty());
    assert_eq!(server.watermark(DEVICE), 1000);
}

#[test]
fn lowering_the_tier_while_a_batch_is_being_retried_holds_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    server.push_faults(std::iter::repeat_n(Fault::Status(500), 200));
    append_events(data, 1..=50, |_| Tier::Full);
    let rt = rt();
    rt.block_on(async {
        let up = Uploader::start(settings(data, &server.url(), Tier::Full)).expect("start");
        while server.faults_served() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        up.set_tier(Tier::Local);
        assert!(
            up.flush(Duration::from_secs(30)).await,
            "held back counts as done for this cap"
        );
        up.shutdown(Duration::from_secs(5)).await;
    });
    assert_eq!(server.event_count(), 0);
    assert!(
        server
            .requests_to("/v1/events")
            .iter()
            .all(|r| r.status == 500),
        "no request after the tier change succeeded"
    );
    assert_eq!(
        agentos_delivery::status(data).expect("status").held_events,
        50
    );
    server.clear_faults();
    // Once the server and the tier allow it, everything leaves.
    let later = sync(&settings(data, &server.url(), Tier::Full));
    assert_eq!(later.replayed, 50, "{later:?}");
    crate::support::assert_exactly_once_in_order(&server, 50);
}
