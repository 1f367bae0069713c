//! Value attribution: hand-computed expectations over several turns, the rules for missing and
//! odd shares, and the invariant that attributed features add up to the features shipped.

use std::collections::BTreeMap;

use agentos_core::event::*;
use agentos_core::rollup::Rollup;
use agentos_core::tier::Tier;
use proptest::prelude::*;

use crate::examples::*;

fn turn(
    model: &str,
    session: &str,
    shares: Option<&[(&str, f64)]>,
    feature_delta: Option<f64>,
    feature: Option<&str>,
) -> TurnEvent {
    let mut t = full_turn();
    t.turn.model = model.into();
    t.turn.session_id = SessionId(session.into());
    t.turn.attribution = shares.map(|s| s.iter().map(|(m, v)| (m.to_string(), *v)).collect());
    t.measurement = feature_delta.map(|fd| Measurement {
        cls: 1.0,
        impf: 1.0,
        churn_score: 0.0,
        feature_delta: fd,
        errors: None,
        error_count: None,
    });
    t.feature = feature.map(|id| Feature {
        feature_id: id.into(),
        spec_ref: "s".into(),
        status: FeatureStatus::Shipped,
        notes: None,
    });
    t
}

fn at(seq: u64, day: &str, t: TurnEvent) -> Envelope {
    let mut e = envelope(seq, Tier::Full, EventBody::Turn(t));
    e.recorded_at = ts(&format!("{day}T09:00:00Z"));
    e
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn assert_map(got: Option<&BTreeMap<String, f64>>, want: &[(&str, f64)]) {
    let got = got.cloned().unwrap_or_default();
    let want = map(want);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{got:?}"
    );
    for (k, v) in &want {
        assert!(close(got[k], *v), "{k}: got {} want {v}", got[k]);
    }
}

#[test]
fn several_turns_split_their_features_by_normalised_shares() {
    let events = [
        // Shares as given: 0.75 / 0.25 of one feature.
        at(
            1,
            "2026-11-24",
            turn(
                "glm-4.6",
                "s-1",
                Some(&[("glm-4.6", 0.75), ("sonnet", 0.25)]),
                Some(1.0),
                Some("F-1"),
            ),
        ),
        // No attribution: everything to the serving model.
        at(
            2,
            "2026-11-25",
            turn("sonnet", "s-1", None, Some(2.0), Some("F-2")),
        ),
        // Shares summing to 4: normalised to 0.5 / 0.5.
        at(
            3,
            "2026-11-24",
            turn(
                "glm-4.6",
                "s-2",
                Some(&[("glm-4.6", 2.0), ("haiku", 2.0)]),
                Some(1.0),
                None,
            ),
        ),
        // Nothing usable (negative, zero): the serving model.
        at(
            4,
            "2026-11-24",
            turn(
                "glm-4.6",
                "s-2",
                Some(&[("glm-4.6", -1.0), ("x", 0.0)]),
                Some(0.5),
                None,
            ),
        ),
        // No measurement: weight counted, no features.
        at(
            5,
            "2026-11-25",
            turn("glm-4.6", "s-3", Some(&[("sonnet", 1.0)]), None, None),
        ),
    ];
    let mut r = Rollup::new();
    for e in &events {
        r.apply(e);
    }
    let s = r.summary(ts("2026-11-26T00:00:00Z"));
    let v = &s.value;
    let m = |name: &str| v.by_model[name];
    assert!(close(m("glm-4.6").features, 1.75) && close(m("glm-4.6").turns, 2.25));
    assert!(close(m("sonnet").features, 2.25) && close(m("sonnet").turns, 2.25));
    assert!(close(m("haiku").features, 0.5) && close(m("haiku").turns, 0.5));
    assert!(!v.by_model.contains_key("x"), "a zero share is no share");
    assert!(close(v.total_features(), s.features_shipped));
    assert!(close(s.features_shipped, 4.5));
    assert_map(
        v.by_session.get("s-1"),
        &[("glm-4.6", 0.75), ("sonnet", 2.25)],
    );
    assert_map(v.by_session.get("s-2"), &[("glm-4.6", 1.0), ("haiku", 0.5)]);
    assert!(!v.by_session.contains_key("s-3"), "no features, no row");
    assert_map(
        v.by_feature.get("F-1"),
        &[("glm-4.6", 0.75), ("sonnet", 0.25)],
    );
    assert_map(v.by_feature.get("F-2"), &[("sonnet", 2.0)]);
    assert_map(
        v.by_day.get(&jiff::civil::date(2026, 11, 24)),
        &[("glm-4.6", 1.75), ("haiku", 0.5), ("sonnet", 0.25)],
    );
    assert_map(
        v.by_day.get(&jiff::civil::date(2026, 11, 25)),
        &[("sonnet", 2.0)],
    );
    // The seed's model_value keeps its meaning: the raw shares summed per model.
    assert!(close(s.model_value["glm-4.6"], 0.75 + 2.0 - 1.0));
    assert!(close(s.model_value["sonnet"], 0.25 + 1.0));
}

fn arb_shares() -> impl Strategy<Value = Option<Vec<(String, f64)>>> {
    prop::option::of(prop::collection::vec(
        (
            prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from),
            -1.0f64..3.0,
        ),
        0..4,
    ))
}

proptest! {
    #[test]
    fn attributed_features_always_add_up_to_the_features_shipped(
        turns in prop::collection::vec((arb_shares(), prop::option::of(-2.0f64..5.0)), 0..30)
    ) {
        let mut r = Rollup::new();
        for (i, (shares, fd)) in turns.iter().enumerate() {
            let mut t = turn("served", "s", None, *fd, None);
            t.turn.attribution = shares.as_ref().map(|s| s.iter().cloned().collect());
            r.apply(&at(i as u64 + 1, "2026-11-24", t));
        }
        let s = r.summary(ts("2026-11-25T00:00:00Z"));
        prop_assert!((s.value.total_features() - s.features_shipped).abs() < 1e-9);
        let by_day: f64 = s.value.by_day.values().flat_map(|m| m.values()).sum();
        prop_assert!((by_day - s.features_shipped).abs() < 1e-9);
    }
}

#[test]
fn reroute_decisions_are_counted_and_churn_is_compared_week_over_week() {
    let mut r = Rollup::new();
    let mut seq = 0;
    let mut push = |day: &str, churn: Option<f64>, mode: Option<&str>, decision: Option<&str>| {
        seq += 1;
        let mut t = turn("glm-4.6", "s", None, churn.map(|_| 0.0), None);
        if let (Some(m), Some(c)) = (t.measurement.as_mut(), churn) {
            m.churn_score = c;
        }
        t.decision = Some(Decision {
            reroute_mode: mode.map(String::from),
            reroute_decision: decision.map(String::from),
            ..Decision::default()
        });
        r.apply(&at(seq, day, t));
    };
    // Previous window (2026-11-11 ..= 11-17): mean 0.4.
    push("2026-11-11", Some(0.2), Some("hybrid"), Some("quota_pass"));
    push("2026-11-17", Some(0.6), Some("hybrid"), Some("fallback"));
    // Current window (11-18 ..= 11-24): mean 0.1.
    push("2026-11-18", Some(0.0), Some("run2cap"), None);
    push("2026-11-24", Some(0.2), None, None);
    // Outside both windows.
    push("2026-11-01", Some(5.0), Some("hybrid"), Some("quota_pass"));
    let s = r.summary(ts("2026-11-24T23:00:00Z"));
    let t = s.churn_trend;
    assert_eq!(t.window_days, 7);
    assert!(close(t.current.unwrap(), 0.1) && close(t.previous.unwrap(), 0.4));
    assert!(close(t.change.unwrap(), -0.3));
    assert_eq!(
        s.reroute.by_mode,
        BTreeMap::from([("hybrid".into(), 3), ("run2cap".into(), 1)])
    );
    assert_eq!(
        s.reroute.by_decision,
        BTreeMap::from([("fallback".into(), 1), ("quota_pass".into(), 2)])
    );
    assert_eq!(s.reroute.by_mode_and_decision["run2cap"]["-"], 1);
    assert_eq!(s.reroute.by_mode_and_decision["hybrid"]["quota_pass"], 2);
    // No measurement in a window: null, and no change.
    let s = r.summary(ts("2026-12-20T00:00:00Z"));
    assert_eq!((s.churn_trend.current, s.churn_trend.change), (None, None));
}

#[test]
fn spellings_of_one_model_are_credited_to_its_canonical_id() {
    let mut r = Rollup::new();
    r.apply(&at(
        1,
        "2026-11-24",
        turn("claude-sonnet-4.5", "s", None, Some(1.0), None),
    ));
    r.apply(&at(
        2,
        "2026-11-24",
        turn("claude-sonnet-4-5-20250929", "s", None, Some(2.0), None),
    ));
    r.apply(&at(
        3,
        "2026-11-24",
        turn("my-model", "s", None, Some(1.0), None),
    ));
    let v = r.summary(ts("2026-11-25T00:00:00Z")).value;
    let names: Vec<&str> = v.by_model.keys().map(String::as_str).collect();
    assert_eq!(names, ["claude-sonnet-4-5-20250929", "my-model"]);
    assert!(close(
        v.by_model["claude-sonnet-4-5-20250929"].features,
        3.0
    ));
}
