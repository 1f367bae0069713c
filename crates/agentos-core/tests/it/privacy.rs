use agentos_core::privacy::*;
use agentos_core::rollup::Rollup;
use agentos_core::schema::validate_envelope;
use agentos_core::tier::{Egress, Tier};
use serde_json::json;

use crate::examples::*;

fn policy(keys: &[&str]) -> RedactionPolicy {
    RedactionPolicy {
        metadata_allowlist: keys.iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn the_tier_table_allows_exactly_what_the_docs_say() {
    let table: Vec<(Tier, bool, bool)> = Tier::ALL
        .iter()
        .map(|t| (*t, t.allows(Egress::Events), t.allows(Egress::Metrics)))
        .collect();
    assert_eq!(
        table,
        vec![
            (Tier::Local, false, false),
            (Tier::Minimized, false, true),
            (Tier::Full, true, true)
        ]
    );
}

#[test]
fn full_tier_events_leave_with_free_text_redacted_and_stay_schema_valid() {
    let events = three_events(Tier::Full);
    let out: Vec<_> = events
        .iter()
        .map(|e| egress_event(e, Tier::Full, &policy(&["team"])).expect("full tier leaves"))
        .collect();
    for v in &out {
        validate_envelope(v).unwrap_or_else(|e| panic!("redacted event must stay valid: {e}"));
    }
    assert_eq!(out[0]["session"]["metadata"], json!({"team": "platform"}));
    let turn = &out[1];
    assert_eq!(
        turn["value"],
        json!({"summary": "shipped login", "links": ["https://example.invalid/pr/1"]})
    );
    assert!(turn["feature"].get("notes").is_none());
    assert!(turn["measurement"].get("errors").is_none());
    assert_eq!(turn["measurement"]["error_count"], 2);
    assert_eq!(turn["turn"]["tokens_in"], 1200);
    assert!(out[2].get("notes").is_none());
    // The example's decision carries an extra `fallback` field: only the named routing fields
    // leave.
    assert!(
        turn["decision"].get("fallback").is_none(),
        "{}",
        turn["decision"]
    );
    assert_eq!(turn["decision"]["reroute_mode"], "hybrid");
    assert_eq!(turn["decision"]["gap_samples"], 12);
    let text = serde_json::to_string(&out).expect("serialize");
    for secret in [
        "secret project",
        "/home/alice",
        "customer name",
        "private/evidence",
        "Bob",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}

#[test]
fn metadata_without_allowlisted_keys_is_dropped_entirely() {
    let events = three_events(Tier::Full);
    let out = egress_event(&events[0], Tier::Full, &RedactionPolicy::default()).expect("leaves");
    assert!(out["session"].get("metadata").is_none());
}

#[test]
fn an_event_leaves_only_under_the_stricter_of_recorded_and_current_tier() {
    let recorded_full = three_events(Tier::Full);
    let recorded_local = three_events(Tier::Local);
    let p = RedactionPolicy::default();
    assert!(
        egress_event(&recorded_full[1], Tier::Minimized, &p).is_none(),
        "lowering stops uploads"
    );
    assert!(egress_event(&recorded_full[1], Tier::Local, &p).is_none());
    assert!(
        egress_event(&recorded_local[1], Tier::Full, &p).is_none(),
        "raising never uploads history"
    );
    assert!(egress_event(&three_events(Tier::Minimized)[1], Tier::Full, &p).is_none());
}

#[test]
fn the_summary_leaves_with_only_the_allowlisted_fields() {
    let mut r = Rollup::new();
    for e in three_events(Tier::Minimized) {
        r.apply(&e);
    }
    let s = r.summary(ts("2026-11-24T12:00:00Z"));
    assert!(egress_summary(&s, Tier::Local).is_none());
    let body = egress_summary(&s, Tier::Minimized).expect("minimized sends the summary");
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = MINIMIZED_SUMMARY_FIELDS.to_vec();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(body["features_per_capacity"], 2.0);
    assert_eq!(egress_summary(&s, Tier::Full), Some(body));
}

#[test]
fn tier_names_parse_and_reject_unknowns() {
    assert_eq!("FULL".parse::<Tier>(), Ok(Tier::Full));
    assert_eq!(" minimized ".parse::<Tier>(), Ok(Tier::Minimized));
    let err = "public".parse::<Tier>().unwrap_err();
    assert!(err.to_string().contains("public"));
}

#[test]
fn docs_privacy_table_mirrors_the_code_table() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/privacy.md"),
    )
    .expect("docs/privacy.md");
    for (path, rule) in EVENT_FIELD_RULES {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{path}` ")))
            .unwrap_or_else(|| panic!("docs/privacy.md has no row for {path}"));
        let rule_name = match rule {
            FieldRule::Drop => "never leaves".to_string(),
            FieldRule::CountInto(f) => format!("count only, as `{f}`"),
            FieldRule::AllowlistedKeys => "allowlisted keys only".to_string(),
            FieldRule::KeepOnly(keys) => format!(
                "only {}",
                keys.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        assert!(
            row.contains(&rule_name),
            "row for {path} should say {rule_name:?}: {row}"
        );
    }
    for field in MINIMIZED_SUMMARY_FIELDS {
        assert!(
            doc.contains(&format!("`{field}`")),
            "summary field {field} missing from docs"
        );
    }
}

#[test]
fn aggregates_of_work_recorded_as_local_never_leave_even_after_the_tier_is_raised() {
    let mut r = Rollup::new();
    for e in three_events(Tier::Local) {
        r.apply(&e);
    }
    let s = r.summary(ts("2026-11-24T12:00:00Z"));
    assert_eq!(
        s.features_shipped, 1.0,
        "the local summary counts everything"
    );
    let body = egress_summary(&s, Tier::Full).expect("full sends a summary");
    assert_eq!(body["features_shipped"], 0.0);
    assert_eq!(body["capacity_used"], 0.0);
    assert!(body["avg_cls"].is_null());
    assert!(body["features_per_capacity"].is_null());
}
