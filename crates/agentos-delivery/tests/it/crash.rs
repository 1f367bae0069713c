//! kill -9 the uploading process at random moments while it delivers a large backlog; after
//! restarts the server holds every event exactly once, in seq order.
//!
//! The uploading process is this test binary re-executed with only [`crash_child`] selected, so
//! the test needs no extra build step.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, DeliveryError, status};
use agentos_test_support::http::{RecordingServer, ServerOptions};
use rand::RngExt as _;

use crate::support::{append_events, assert_exactly_once_in_order, settings};

const EVENTS: u64 = 50_000;
const KILLS: usize = 20;

#[test]
#[ignore = "child process of kill_dash_nine_at_random_moments_loses_nothing"]
fn crash_child() {
    let (Ok(url), Ok(data)) = (
        std::env::var("AGENTOS_CRASH_URL"),
        std::env::var("AGENTOS_CRASH_DATA"),
    ) else {
        return;
    };
    let data = PathBuf::from(data);
    let mut s = settings(&data, &url, Tier::Full);
    s.batch_max_events = 200;
    let rt = crate::support::rt();
    rt.block_on(async {
        // The previous child is dead (the parent waited for it), so its lock is gone.
        let mut d = match Delivery::open(s) {
            Ok(d) => d,
            Err(DeliveryError::Locked { .. }) => std::process::exit(3),
            Err(e) => panic!("open: {e}"),
        };
        let report = d.sync(None).await.expect("sync");
        assert!(report.caught_up);
    });
}

fn spawn_child(url: &str, data: &std::path::Path) -> std::process::Child {
    let exe = std::env::current_exe().expect("current exe");
    Command::new(exe)
        .args([
            "--exact",
            "crash::crash_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("AGENTOS_CRASH_URL", url)
        .env("AGENTOS_CRASH_DATA", data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

#[test]
fn kill_dash_nine_at_random_moments_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = RecordingServer::start_with(ServerOptions {
        record_bodies: false,
        ..ServerOptions::default()
    })
    .expect("server");
    append_events(&data, 1..=EVENTS, |_| Tier::Full);
    let mut total = EVENTS;

    let mut rng = rand::rng();
    let mut kills_mid_delivery = 0usize;
    let mut runs = 0usize;
    let mut progress = Vec::new();
    let mut alive_ms = 0u64;
    while kills_mid_delivery < KILLS && runs < 200 {
        runs += 1;
        // Spread the kills over the whole backlog: aim each run at a random share of what is
        // left, judged by the delivery rate observed so far (startup included).
        let stored_before = server.event_count() as u64;
        let max_ms = if stored_before == 0 || alive_ms == 0 {
            150
        } else {
            let per_ms = stored_before as f64 / alive_ms as f64;
            let left = (total - stored_before) as f64 / per_ms;
            let runs_left = (KILLS - kills_mid_delivery) as f64;
            (left / runs_left).clamp(5.0, 2000.0) as u64
        };
        let delay = rng.random_range(1..=max_ms);
        alive_ms += delay;
        let mut child = spawn_child(&server.url(), &data);
        std::thread::sleep(Duration::from_millis(delay));
        // Child::kill is SIGKILL on unix: no destructor, no flush, no unlock.
        let _ = child.kill();
        let _ = child.wait();
        let stored = server.event_count() as u64;
        progress.push(stored);
        if stored < total {
            kills_mid_delivery += 1;
        } else {
            // This run finished before it was killed: the recorder keeps recording, so give the
            // next runs more to deliver instead of counting a kill that hit an idle process.
            append_events(&data, total + 1..=total + 2_500, |_| Tier::Full);
            total += 2_500;
        }
    }
    assert!(
        kills_mid_delivery >= KILLS,
        "only {kills_mid_delivery} kills landed mid-delivery (progress {progress:?})"
    );

    // The last run is left alone to finish.
    let mut child = spawn_child(&server.url(), &data);
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "final run failed: {exit:?}");

    assert!(total >= EVENTS);
    assert_exactly_once_in_order(&server, total);
    assert_eq!(server.watermark(crate::support::DEVICE), total);
    let st = status(&data).expect("status");
    assert_eq!(st.pending_events, 0);
    assert!(st.cursor_problem.is_none());
    eprintln!(
        "crash test: {runs} killed runs ({kills_mid_delivery} mid-delivery), {} replays deduped, progress {progress:?}",
        server.duplicates()
    );
}
