//! The seed's three tier scenarios end to end: the recorder writes a session, the uploader
//! delivers it to a real loopback server, and we look at what the server received.

use agentos_config::Config;
use agentos_core::privacy::MINIMIZED_SUMMARY_FIELDS;
use agentos_core::tier::Tier;
use agentos_delivery::{Settings, SummaryOutcome};
use agentos_test_support::http::{RecordingServer, ServerOptions};
use serde_json::{Value, json};

use crate::support::{self, licensed_config, sync};

/// Records session + turn + session_end under `cfg`'s tier and returns the delivery settings
/// pointing at `server`.
fn record_seed_session(cfg: &Config, server: &RecordingServer) -> Settings {
    let mut s = support::record_seed_session(cfg, &["claude-sonnet-4.5"], "closing notes, private");
    s.url = Some(server.url());
    s
}

#[test]
fn local_tier_makes_zero_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RecordingServer::start().expect("server");
    let cfg = licensed_config(dir.path(), Tier::Local, &[]);
    let s = record_seed_session(&cfg, &server);
    let report = sync(&s);
    assert!(report.caught_up);
    assert_eq!(report.withheld, 3, "all three events stay home");
    assert_eq!(report.summary, Some(SummaryOutcome::Withheld));
    assert_eq!(server.connections(), 0, "local: not even a TCP connection");
    assert!(server.requests().is_empty());
}

#[test]
fn minimized_tier_sends_exactly_one_allowlisted_summary_and_no_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RecordingServer::start_with(ServerOptions {
        api_key: Some("k-min".into()),
        ..ServerOptions::default()
    })
    .expect("server");
    let mut cfg = licensed_config(dir.path(), Tier::Minimized, &["telemetry_minimized"]);
    cfg.ccc.api_key = Some("k-min".into());
    let s = record_seed_session(&cfg, &server);
    let report = sync(&s);
    assert!(report.caught_up);
    assert_eq!(report.sent, 0);
    assert_eq!(report.summary, Some(SummaryOutcome::Sent));
    // A second sync has nothing new to say.
    let again = sync(&s);
    assert_eq!(again.summary, Some(SummaryOutcome::Unchanged));
    // Nor after a local session: the summary is rewritten (new `generated_at`) but its
    // shareable figures are the same, and a fresh upload would only leak activity timing.
    let before = std::fs::read(cfg.data_dir.join("metrics_summary.json")).expect("summary");
    let mut local = cfg.clone();
    local.ccc.tier = Some(Tier::Local);
    support::record_seed_session(&local, &["claude-sonnet-4.5"], "more private notes");
    let after = std::fs::read(cfg.data_dir.join("metrics_summary.json")).expect("summary");
    assert_ne!(before, after, "the summary file was rewritten");
    let third = sync(&s);
    assert_eq!(third.summary, Some(SummaryOutcome::Unchanged));

    assert!(
        server.requests_to("/v1/events").is_empty(),
        "no events under minimized"
    );
    let metrics = server.requests_to("/v1/metrics");
    assert_eq!(metrics.len(), 1, "exactly one /v1/metrics body");
    let body = metrics[0].json().expect("json body");
    let mut keys: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    let mut want = MINIMIZED_SUMMARY_FIELDS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "only the allowlisted summary keys");
    assert_eq!(body["features_shipped"], json!(1.0));
    assert_eq!(body["features_per_capacity"], json!(2.0));
    assert_eq!(body["avg_cls"], json!(1.2));
    assert_eq!(body["avg_impf"], json!(4.5));
    assert_eq!(metrics[0].authorization.as_deref(), Some("Bearer k-min"));
    assert!(
        metrics[0].license.is_some(),
        "the license pack travels in a header"
    );
    assert!(metrics[0].device.is_some());
}

#[test]
fn full_tier_sends_redacted_session_turn_and_end_plus_the_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RecordingServer::start().expect("server");
    let mut cfg = licensed_config(dir.path(), Tier::Full, &["telemetry_full"]);
    cfg.privacy.metadata_allowlist = vec!["team".into()];
    let s = record_seed_session(&cfg, &server);
    let report = sync(&s);
    assert!(report.caught_up);
    assert_eq!(report.sent, 3);
    assert_eq!(report.accepted, 3);
    assert_eq!(report.summary, Some(SummaryOutcome::Sent));

    let events: Vec<Value> = server
        .events()
        .iter()
        .map(|e| e.json().expect("event json"))
        .collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["session", "turn", "session_end"]);
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, [1, 2, 3]);

    let session = &events[0]["session"];
    assert_eq!(
        session["metadata"],
        json!({"team": "core"}),
        "only allowlisted metadata keys"
    );
    let turn = &events[1];
    assert_eq!(
        turn["value"],
        json!({"summary": "login works", "links": ["https://example.invalid/pr/1"]}),
        "value keeps only summary and links"
    );
    assert!(
        turn["feature"].get("notes").is_none(),
        "feature.notes never leaves"
    );
    assert!(
        turn["measurement"].get("errors").is_none(),
        "measurement.errors never leaves"
    );
    assert_eq!(
        turn["measurement"]["error_count"],
        json!(1),
        "but its count does"
    );
    assert!(
        events[2].get("notes").is_none(),
        "session_end.notes never leaves"
    );
    let all = serde_json::to_string(&events).expect("json");
    for secret in [
        "ACME secret",
        "private note",
        "secret_plan",
        "closing notes",
        "evidence.txt",
    ] {
        assert!(!all.contains(secret), "{secret:?} left the machine");
    }

    let batch = server.requests_to("/v1/events")[0].json().expect("batch");
    assert_eq!(batch["covers"], json!({"from": 1, "to": 3}));
    assert_eq!(server.watermark(&s.device_id), 3);
    let metrics = server.metrics();
    assert_eq!(metrics.len(), 1, "plus the summary");
    assert_eq!(metrics[0].1["features_shipped"], json!(1.0));
}

#[test]
fn closing_a_session_uploads_the_summary_once_and_sync_does_not_repeat_it() {
    for (tier, features) in [
        (Tier::Minimized, &["telemetry_minimized"][..]),
        (Tier::Full, &["telemetry_full"][..]),
        (Tier::Local, &[][..]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = RecordingServer::start().expect("server");
        let cfg = licensed_config(dir.path(), tier, features);
        let s = record_seed_session(&cfg, &server);
        // What `agentos ccc session end` does after appending session_end.
        let summary = agentos_delivery::read_summary(&agentos_delivery::Paths::new(&s.data_dir))
            .expect("summary file")
            .expect("the recorder wrote one");
        let outcome = agentos_delivery::upload_summary_blocking(
            &s,
            &summary,
            std::time::Duration::from_secs(30),
        )
        .expect("upload");
        let report = sync(&s);
        if tier == Tier::Local {
            assert_eq!(outcome, SummaryOutcome::Withheld);
            assert_eq!(server.connections(), 0);
            continue;
        }
        assert_eq!(outcome, SummaryOutcome::Sent, "{tier}");
        assert_eq!(report.summary, Some(SummaryOutcome::Unchanged), "{tier}");
        assert_eq!(
            server.metrics().len(),
            1,
            "{tier}: exactly one summary body"
        );
    }
}
