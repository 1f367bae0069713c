//! Shared helpers: data dirs with valid logs, fast-retry settings, licensed configs, sessions
//! recorded by the real recorder.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use agentos_config::Config;
use agentos_core::event::{
    Envelope, EventBody, EventId, InputKind, Measurement, SessionId, Turn, TurnEvent, TurnId,
    ValueRecord,
};
use agentos_core::license;
use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, DrainReport, Settings};
use agentos_recorder::recorder::{Recorder, StartRequest};
use agentos_test_support::fixtures::seed_turn;
use serde_json::json;

/// The device id every test data dir uses.
pub const DEVICE: &str = "0190a0a0-0000-7000-8000-000000000001";

/// Settings that retry fast: backoff 5–50 ms, 2 s request timeout.
pub fn settings(data: &Path, url: &str, tier: Tier) -> Settings {
    let mut s = Settings::new(data, DEVICE);
    s.url = Some(url.to_owned());
    s.api_key = Some("test-key".into());
    s.tier = Some(tier);
    s.license_ceiling = Tier::Full;
    s.backoff_min = Duration::from_millis(5);
    s.backoff_max = Duration::from_millis(50);
    s.timeout = Duration::from_secs(2);
    s.poll_interval = Duration::from_millis(50);
    s
}

/// A current-thread runtime.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Opens delivery and syncs once with a generous deadline (only hit if something is broken).
pub fn sync(s: &Settings) -> DrainReport {
    let rt = rt();
    rt.block_on(async {
        let mut d = Delivery::open(s.clone()).expect("open delivery");
        d.sync(Some(tokio::time::Instant::now() + Duration::from_secs(120)))
            .await
            .expect("sync")
    })
}

/// A turn envelope with free text in every redactable place.
pub fn turn_envelope(seq: u64, tier: Tier) -> Envelope {
    Envelope {
        event_id: EventId(uuid::Uuid::now_v7()),
        seq,
        recorded_at: jiff::Timestamp::now(),
        tier,
        body: EventBody::Turn(TurnEvent {
            turn: Turn {
                turn_id: TurnId(format!("t-{seq}")),
                session_id: SessionId("s-1".into()),
                model: "claude-sonnet-4.5".into(),
                subagent: "main".into(),
                tokens_in: 1000 + seq,
                tokens_out: 300,
                input_kind: InputKind::Text,
                latency_ms: 850.0,
                attribution: None,
                capacity_used: Some(0.5),
                cache_creation_tokens: None,
                cache_read_tokens: None,
                source: None,
            },
            measurement: Some(Measurement {
                cls: 1.2,
                impf: 4.5,
                churn_score: 0.1,
                feature_delta: 1.0,
                errors: Some(vec!["secret error text".into()]),
                error_count: None,
            }),
            value: Some(ValueRecord {
                summary: "did a thing".into(),
                links: Some(vec!["https://example.invalid/pr/1".into()]),
                evidence_refs: Some(vec!["/home/me/private.txt".into()]),
            }),
            ..TurnEvent::default()
        }),
    }
}

/// Appends envelopes for `seqs` (tier chosen per seq) straight to `windows.jsonl`.
pub fn append_events(
    data: &Path,
    seqs: std::ops::RangeInclusive<u64>,
    tier: impl Fn(u64) -> Tier,
) -> Vec<String> {
    std::fs::create_dir_all(data).expect("data dir");
    let mut buf = Vec::new();
    let mut ids = Vec::new();
    for seq in seqs {
        let env = turn_envelope(seq, tier(seq));
        ids.push(env.event_id.to_string());
        serde_json::to_writer(&mut buf, &env).expect("serialize");
        buf.push(b'\n');
    }
    append_raw(data, &buf);
    ids
}

/// Appends raw bytes to `windows.jsonl`.
pub fn append_raw(data: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("windows.jsonl"))
        .expect("open log");
    f.write_all(bytes).expect("append");
}

/// Asserts the server stored exactly seqs 1..=n of [`DEVICE`], each once, in seq order.
pub fn assert_exactly_once_in_order(server: &agentos_test_support::http::RecordingServer, n: u64) {
    let events = server.events();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let want: Vec<u64> = (1..=n).collect();
    assert_eq!(seqs.len(), want.len(), "stored event count");
    assert_eq!(seqs, want, "stored seqs must be 1..=n in order");
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, n, "every event_id once");
    assert!(events.iter().all(|e| e.device == DEVICE));
}

/// A config for `dir/data` whose license pack (signed with a key made here) grants `features`.
pub fn licensed_config(dir: &Path, tier: Tier, features: &[&str]) -> Config {
    let mut cfg = Config::with_data_dir(dir.join("data"));
    cfg.ccc.tier = Some(tier);
    if features.is_empty() {
        return cfg;
    }
    let key = agentos_config::license::generate_signing_key().expect("key");
    let claims = agentos_test_support::fixtures::license_claims("k1", features, 4_000_000_000);
    let pack = license::issue_pack(&key, &claims);
    let pack_path = dir.join("pack.json");
    std::fs::write(&pack_path, pack).expect("write pack");
    cfg.license.pack = Some(pack_path);
    cfg.license.pubkeys.insert(
        "k1".into(),
        license::public_key_base64(&key.verifying_key()),
    );
    cfg
}

/// Records, with the real recorder, a session under `cfg`'s tier (metadata `team` = `core` and
/// the not allowlisted `customer` = `ACME secret`), one [`seed_turn`] per model in `models` and
/// a session end with `notes`; returns the delivery settings `cfg` resolves to.
pub fn record_seed_session(cfg: &Config, models: &[&str], notes: &str) -> Settings {
    let mut rec = Recorder::open(cfg.clone()).expect("open recorder");
    let started = rec
        .start_session(StartRequest {
            repo_id: "repo-1".into(),
            branch: "main".into(),
            commit: "abc123".into(),
            license_id: Some("lic-1".into()),
            tier: cfg.ccc.tier,
            metadata: [
                ("team".to_string(), json!("core")),
                ("customer".to_string(), json!("ACME secret")),
            ]
            .into_iter()
            .collect(),
            ..StartRequest::default()
        })
        .expect("start session");
    assert!(
        started.downgrade.is_none(),
        "the license grants the tier: {:?}",
        started.downgrade
    );
    for model in models {
        rec.record_turn(seed_turn(model)).expect("turn");
    }
    rec.end_session(Some(notes.into())).expect("end session");
    Settings::from_config(cfg).expect("settings")
}
