//! Fully populated example events shared by the test modules.

use std::collections::BTreeMap;

use agentos_core::event::*;
use agentos_core::tier::Tier;

pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("valid timestamp literal")
}

pub fn session(tier: Tier) -> Session {
    let mut metadata = serde_json::Map::new();
    metadata.insert("team".into(), "platform".into());
    metadata.insert("ticket_title".into(), "secret project name".into());
    Session {
        session_id: SessionId("s-1".into()),
        repo_id: "repo".into(),
        branch: "main".into(),
        commit: "abc123".into(),
        license_id: "lic-1".into(),
        privacy_tier: tier,
        created_at: ts("2026-11-24T10:00:00Z"),
        metadata: Some(metadata),
    }
}

pub fn full_turn() -> TurnEvent {
    let mut decision_extra = BTreeMap::new();
    decision_extra.insert("fallback".into(), serde_json::json!("anthropic"));
    TurnEvent {
        turn: Turn {
            turn_id: TurnId("t-1".into()),
            session_id: SessionId("s-1".into()),
            model: "glm-4.6".into(),
            subagent: "".into(),
            tokens_in: 1200,
            tokens_out: 300,
            input_kind: InputKind::Text,
            latency_ms: 420.5,
            attribution: Some(BTreeMap::from([
                ("glm-4.6".to_string(), 0.75),
                ("claude-sonnet-4.5".to_string(), 0.25),
            ])),
            capacity_used: Some(0.5),
            cache_creation_tokens: Some(4_000),
            cache_read_tokens: Some(52_000),
            source: Some(TurnSource::ClaudeCode),
        },
        measurement: Some(Measurement {
            cls: 1.2,
            impf: 4.5,
            churn_score: 0.1,
            feature_delta: 1.0,
            errors: Some(vec![
                "stack trace with /home/alice/secret".into(),
                "second".into(),
            ]),
            error_count: None,
        }),
        feature: Some(Feature {
            feature_id: "F-1".into(),
            spec_ref: "specs/f1.md".into(),
            status: FeatureStatus::Shipped,
            notes: Some("customer name in notes".into()),
        }),
        cost: Some(Cost {
            provider: "zai".into(),
            estimated_usd: 0.012,
            unit_costs: Some(BTreeMap::from([("input".to_string(), 0.000001)])),
        }),
        value: Some(ValueRecord {
            summary: "shipped login".into(),
            links: Some(vec!["https://example.invalid/pr/1".into()]),
            evidence_refs: Some(vec!["private/evidence.md".into()]),
        }),
        decision: Some(Decision {
            reroute_mode: Some("hybrid".into()),
            reroute_decision: Some("quota_pass".into()),
            preferred_attempt: Some(1),
            warn_pct_auto: Some(0.72),
            warn_pct_confidence: Some(0.5),
            warn_pct_cfg: Some(0.8),
            gap_seconds_p50: Some(30.0),
            gap_seconds_p95: Some(48.0),
            gap_samples: Some(12),
            extra: decision_extra,
        }),
    }
}

pub fn envelope(seq: u64, tier: Tier, body: EventBody) -> Envelope {
    Envelope {
        event_id: EventId(uuid::Uuid::now_v7()),
        seq,
        recorded_at: ts("2026-11-24T10:00:01Z"),
        tier,
        body,
    }
}

pub fn three_events(tier: Tier) -> Vec<Envelope> {
    vec![
        envelope(
            1,
            tier,
            EventBody::Session(SessionEvent {
                session: session(tier),
            }),
        ),
        envelope(2, tier, EventBody::Turn(full_turn())),
        envelope(
            3,
            tier,
            EventBody::SessionEnd(SessionEnd {
                session_id: SessionId("s-1".into()),
                ended_at: ts("2026-11-24T11:00:00Z"),
                notes: Some("went fine, talked to Bob".into()),
            }),
        ),
    ]
}
