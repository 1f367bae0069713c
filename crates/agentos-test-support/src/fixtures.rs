//! Shared v1 test data, so every suite exercises the same seed scenario.

use agentos_core::event::{
    Cost, Feature, FeatureStatus, InputKind, Measurement, SessionId, Turn, TurnEvent, TurnId,
    ValueRecord,
};

/// The seed's turn: capacity 0.5, cls 1.2, impf 4.5, feature_delta 1.0, with free text in every
/// field that must never leave (error text, feature notes, evidence refs).
pub fn seed_turn(model: &str) -> TurnEvent {
    TurnEvent {
        turn: Turn {
            turn_id: TurnId(String::new()),
            session_id: SessionId(String::new()),
            model: model.into(),
            subagent: "main".into(),
            tokens_in: 1200,
            tokens_out: 300,
            input_kind: InputKind::Text,
            latency_ms: 850.0,
            attribution: Some([(model.to_string(), 1.0)].into_iter().collect()),
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
            errors: Some(vec!["lint: unused import in src/secret_plan.rs".into()]),
            error_count: None,
        }),
        feature: Some(Feature {
            feature_id: "F-1".into(),
            spec_ref: "docs/spec.md#f1".into(),
            status: FeatureStatus::Shipped,
            notes: Some("private note about the customer".into()),
        }),
        cost: Some(Cost {
            provider: "anthropic".into(),
            estimated_usd: 0.02,
            unit_costs: None,
        }),
        value: Some(ValueRecord {
            summary: "login works".into(),
            links: Some(vec!["https://example.invalid/pr/1".into()]),
            evidence_refs: Some(vec!["/home/me/evidence.txt".into()]),
        }),
        decision: None,
    }
}

/// `ccp.license.v1` claims of a `pro` license for `kid` granting `features` until `exp`.
pub fn license_claims(kid: &str, features: &[&str], exp: i64) -> agentos_core::license::Claims {
    agentos_core::license::Claims {
        device: None,
        exp,
        features: features.iter().map(|s| s.to_string()).collect(),
        iat: None,
        kid: kid.into(),
        nonce: None,
        plan: agentos_core::license::Plan::Pro,
        schema: agentos_core::license::LICENSE_SCHEMA.into(),
        sub: Some("lic-test".into()),
    }
}
