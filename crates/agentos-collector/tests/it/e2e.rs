//! End to end: the real uploader (agentos-delivery) drains a recorded log into the collector.

use std::time::Duration;

use agentos_core::event::{Envelope, EventBody, EventId, SessionId, Turn, TurnEvent, TurnId};
use agentos_core::rollup::Rollup;
use agentos_core::tier::Tier;
use agentos_delivery::settings::Settings;
use base64::Engine as _;

use crate::both_backends;
use crate::common::{Harness, NOW_US};

fn envelope(seq: u64, tier: Tier) -> Envelope {
    Envelope {
        event_id: EventId(uuid::Uuid::now_v7()),
        seq,
        recorded_at: jiff::Timestamp::from_microsecond(NOW_US - 600_000_000 + seq as i64)
            .expect("valid time"),
        tier,
        body: EventBody::Turn(TurnEvent {
            turn: Turn {
                turn_id: TurnId(format!("t{seq}")),
                session_id: SessionId("s-e2e".into()),
                model: "claude-haiku-4.5".into(),
                subagent: String::new(),
                tokens_in: 1_000,
                tokens_out: 500,
                latency_ms: 2_000.0,
                ..Turn::default()
            },
            ..TurnEvent::default()
        }),
    }
}

async fn the_uploader_delivers_a_log_exactly_once(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let dir = tempfile::tempdir()?;
    // Ten turns; 4 and 5 were recorded under `minimized`, so they never leave as events.
    let mut log = String::new();
    let mut rollup = Rollup::new();
    for seq in 1..=10 {
        let tier = if seq == 4 || seq == 5 {
            Tier::Minimized
        } else {
            Tier::Full
        };
        let env = envelope(seq, tier);
        rollup.apply(&env);
        log.push_str(&serde_json::to_string(&env)?);
        log.push('\n');
    }
    std::fs::write(dir.path().join("windows.jsonl"), log)?;
    let summary = rollup.summary(jiff::Timestamp::from_microsecond(NOW_US)?);
    std::fs::write(
        dir.path().join("metrics_summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;

    let mut settings = Settings::new(dir.path(), "e2e-device");
    settings.url = Some(h.base.clone());
    settings.api_key = Some(key.clone());
    settings.tier = None;
    settings.license_ceiling = Tier::Full;
    settings.license_pack = Some(base64::engine::general_purpose::STANDARD.decode(h.full())?);
    let report = agentos_delivery::sync_once(settings.clone(), Duration::from_secs(20)).await?;
    assert!(report.caught_up, "{report:?}");
    assert_eq!(
        (report.accepted, report.withheld, report.rejected),
        (8, 2, 0),
        "{report:?}"
    );

    assert_eq!(h.state.store().event_count("acme").await?, 8);
    let (_, s) = h.get("/v1/summary", &key).await?;
    let dev = &s["devices"]["e2e-device"];
    assert_eq!(dev["events"], 8, "{s}");
    assert_eq!(dev["watermark"], 10, "withheld seqs are covered: {s}");
    assert_eq!(dev["gaps"], serde_json::json!([]));
    assert_eq!(s["merged"]["devices"], 1, "the summary arrived too: {s}");
    let (_, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(u["models"]["claude-haiku-4-5-20251001"]["reqs"], 8);
    assert_eq!(
        u["models"]["claude-haiku-4-5-20251001"]["rolling_in"],
        8_000
    );

    // A second sync has nothing new to send; nothing is stored twice.
    let again = agentos_delivery::sync_once(settings, Duration::from_secs(20)).await?;
    assert_eq!(again.accepted, 0, "{again:?}");
    assert_eq!(h.state.store().event_count("acme").await?, 8);
    Ok(())
}
both_backends!(the_uploader_delivers_a_log_exactly_once);
