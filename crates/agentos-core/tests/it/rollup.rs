use agentos_core::event::*;
use agentos_core::rollup::Rollup;
use agentos_core::tier::Tier;
use proptest::prelude::*;

use crate::examples::*;

#[test]
fn the_seed_scenario_one_turn_with_capacity_half() {
    let mut r = Rollup::new();
    for e in three_events(Tier::Local) {
        r.apply(&e);
    }
    let s = r.summary(ts("2026-11-24T12:00:00Z"));
    assert_eq!(s.sessions, 1);
    assert_eq!(s.turns, 1);
    assert_eq!(s.features_shipped, 1.0);
    assert_eq!(s.capacity_used, 0.5);
    assert_eq!(s.features_per_capacity, Some(2.0));
    assert_eq!(s.avg_cls, Some(1.2));
    assert_eq!(s.avg_impf, Some(4.5));
    assert_eq!(s.model_value.get("glm-4.6"), Some(&0.75));
    let glm = &s.models["glm-4.6"];
    assert_eq!((glm.turns, glm.tokens_in, glm.tokens_out), (1, 1200, 300));
    assert!((glm.estimated_usd - 0.012).abs() < 1e-12);
}

#[test]
fn empty_rollup_has_null_ratios_and_averages() {
    let s = Rollup::new().summary(ts("2026-11-24T12:00:00Z"));
    assert_eq!(s.features_per_capacity, None);
    assert_eq!(s.avg_cls, None);
    let v = serde_json::to_value(&s).expect("serialize");
    assert!(v["avg_churn_score"].is_null());
    let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "summary keys serialize sorted");
}

fn arb_turn() -> impl Strategy<Value = TurnEvent> {
    (
        prop::sample::select(vec!["glm-4.6", "claude-sonnet-4.5", "GLM-5"]),
        0u64..100_000,
        0u64..100_000,
        prop::option::of(0.0f64..10.0),
        prop::option::of((-3.0f64..3.0, 0.0f64..30.0, -1.0f64..1.0, 0.0f64..3.0)),
    )
        .prop_map(|(model, tin, tout, cap, m)| {
            let mut t = full_turn();
            t.turn.model = model.to_string();
            t.turn.tokens_in = tin;
            t.turn.tokens_out = tout;
            t.turn.capacity_used = cap;
            t.measurement = m.map(|(cls, impf, churn, fd)| Measurement {
                cls,
                impf,
                churn_score: churn,
                feature_delta: fd,
                errors: None,
                error_count: None,
            });
            t
        })
}

proptest! {
    #[test]
    fn a_resumed_rollup_equals_one_folded_in_a_single_pass(turns in prop::collection::vec(arb_turn(), 0..40), split in 0usize..40) {
        let events: Vec<Envelope> = turns
            .into_iter()
            .enumerate()
            .map(|(i, t)| envelope(i as u64 + 1, Tier::Full, EventBody::Turn(t)))
            .collect();
        let mut whole = Rollup::new();
        for e in &events { whole.apply(e); }
        // Persist/resume in the middle, as the recorder does across processes.
        let cut = split.min(events.len());
        let mut first = Rollup::new();
        for e in &events[..cut] { first.apply(e); }
        let saved = serde_json::to_string(&first).expect("serialize");
        let mut resumed: Rollup = serde_json::from_str(&saved).expect("deserialize");
        for e in &events[cut..] { resumed.apply(e); }
        prop_assert_eq!(resumed.summary(ts("2026-11-24T12:00:00Z")), whole.summary(ts("2026-11-24T12:00:00Z")));
        prop_assert_eq!(whole.turns as usize, events.len());
    }
}

#[test]
fn token_sums_saturate_instead_of_wrapping() {
    let mut r = Rollup::new();
    // A log written before token counts were bounded may hold any u64.
    for seq in 1..=2 {
        let mut t = full_turn();
        t.turn.tokens_in = u64::MAX;
        t.turn.tokens_out = u64::MAX - 1;
        r.apply(&envelope(seq, Tier::Full, EventBody::Turn(t)));
    }
    let model = full_turn().turn.model;
    let usage = &r.summary(jiff::Timestamp::UNIX_EPOCH).models[&model];
    assert_eq!((usage.tokens_in, usage.tokens_out), (u64::MAX, u64::MAX));
}
