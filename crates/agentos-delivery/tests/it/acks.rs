//! Only a real acknowledgement moves the cursor: a `200` HTML page from a proxy, or JSON whose
//! counts do not match the batch, is retried; a redirect is refused naming where it pointed,
//! and nothing is re-posted to that address.

use std::time::Duration;

use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, status};
use agentos_test_support::http::{Fault, RecordingServer};

use crate::support::{DEVICE, append_events, assert_exactly_once_in_order, rt, settings, sync};

fn html_ok() -> Fault {
    Fault::Raw {
        status: 200,
        content_type: "text/html".into(),
        body: "<html><body>Please log in to the proxy</body></html>".into(),
    }
}

#[test]
fn a_200_html_page_is_not_an_acknowledgement_and_moves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    // More HTML answers than the deadline lets the client try.
    server.push_faults(std::iter::repeat_with(html_ok).take(100_000));
    append_events(data, 1..=5, |_| Tier::Full);
    let s = settings(data, &server.url(), Tier::Full);
    let report = rt().block_on(async {
        let mut d = Delivery::open(s.clone()).expect("open");
        // The deadline only bounds the test: the client must keep retrying until then.
        d.sync(Some(tokio::time::Instant::now() + Duration::from_secs(2)))
            .await
            .expect("a bad answer is transient, not fatal")
    });
    assert!(!report.caught_up, "nothing was acknowledged");
    assert_eq!(report.accepted, 0);
    assert!(server.faults_served() >= 2, "it retried");
    let st = status(data).expect("status");
    assert_eq!(st.pending_events, 5, "the cursor did not move");
    let err = st.last_error.expect("the bad answer is reported");
    assert_eq!(err.code, "bad_ack");
    assert!(
        err.message.contains("text/html") && err.message.contains("Please log in"),
        "the error names what came back: {}",
        err.message
    );

    // Once the collector answers for real, everything arrives exactly once.
    server.clear_faults();
    let report = sync(&s);
    assert!(report.caught_up);
    assert_exactly_once_in_order(&server, 5);
    assert_eq!(server.watermark(DEVICE), 5);
}

#[test]
fn json_that_does_not_match_the_batch_is_retried_until_a_consistent_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    let lie = |body: &str| Fault::Raw {
        status: 200,
        content_type: "application/json".into(),
        body: body.into(),
    };
    server.push_faults([
        lie("{}"),
        lie(r#"{"accepted":0,"duplicates":0,"rejected":[],"watermark":0,"gaps":[]}"#),
        lie(r#"{"accepted":3,"duplicates":0,"rejected":[],"watermark":2,"gaps":[]}"#),
        html_ok(),
    ]);
    append_events(data, 1..=3, |_| Tier::Full);
    let report = sync(&settings(data, &server.url(), Tier::Full));
    assert!(report.caught_up);
    assert_eq!(server.pending_faults(), 0, "every bad answer was retried");
    assert!(report.retries >= 4, "retries: {}", report.retries);
    assert_eq!(report.accepted, 3, "only the real answer counted");
    assert_exactly_once_in_order(&server, 3);
}

#[test]
fn a_summary_upload_needs_a_stored_true_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    server.push_faults([html_ok()]);
    let s = settings(data, &server.url(), Tier::Full);
    let summary = agentos_core::rollup::Rollup::new().summary(jiff::Timestamp::now());
    let out = rt()
        .block_on(agentos_delivery::upload_summary(
            &s,
            &summary,
            Duration::from_secs(60),
        ))
        .expect("upload");
    assert_eq!(out, agentos_delivery::SummaryOutcome::Sent);
    assert_eq!(
        server.requests_to("/v1/metrics").len(),
        2,
        "the HTML answer was retried"
    );
    assert_eq!(server.metrics().len(), 1);
}

#[test]
fn a_redirect_is_refused_with_its_location_and_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    let elsewhere = RecordingServer::start().expect("second server");
    let location = format!("{}/v1/events", elsewhere.url());
    server.push_faults([Fault::Redirect {
        status: 307,
        location: location.clone(),
    }]);
    append_events(data, 1..=3, |_| Tier::Full);
    let s = settings(data, &server.url(), Tier::Full);
    let err = rt()
        .block_on(async {
            let mut d = Delivery::open(s).expect("open");
            d.sync(Some(tokio::time::Instant::now() + Duration::from_secs(60)))
                .await
        })
        .expect_err("a redirect stops the sync");
    let msg = err.to_string();
    assert!(msg.contains("307") && msg.contains(&location), "{msg}");
    assert_eq!(
        elsewhere.connections(),
        0,
        "no event body or license header went to the redirect target"
    );
    assert_eq!(server.event_count(), 0);
    assert_eq!(status(data).expect("status").pending_events, 3);
}
