//! What would leave under each tier, as [`agentos_delivery::plan`] computes it for
//! `agentos ccc preview`, `agentos ccc sync` and `agentos demo`, for sessions the real recorder
//! wrote. No server: the plan never connects (`scenarios.rs` checks what a sync really sends).
//!
//! Every data dir carries a license granting both telemetry tiers, so the license ceiling is
//! `full` and the only thing deciding is the tier under test and each event's recorded tier.

use agentos_config::Config;
use agentos_core::privacy::MINIMIZED_SUMMARY_FIELDS;
use agentos_core::tier::Tier;
use agentos_delivery::{Plan, Settings, plan};
use serde_json::{Value, json};

use crate::support::{licensed_config, record_seed_session};

const BOTH_TIERS: &[&str] = &["telemetry_minimized", "telemetry_full"];

/// The plan of `settings`' data dir with `tier` given explicitly (as `--tier` would).
fn plan_under(settings: &Settings, tier: Tier) -> Plan {
    let mut s = settings.clone();
    s.tier = Some(tier);
    let p = plan(&s).expect("plan");
    assert_eq!(
        p.cap, tier,
        "the license grants every tier, so the tier is the cap"
    );
    p
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("the plan holds JSON bodies")
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn minimized_keys() -> Vec<String> {
    let mut want: Vec<String> = MINIMIZED_SUMMARY_FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    want.sort();
    want
}

fn recorded(dir: &std::path::Path, tier: Tier, models: &[&str]) -> (Config, Settings) {
    let mut cfg = licensed_config(dir, tier, BOTH_TIERS);
    cfg.privacy.metadata_allowlist = vec!["team".into()];
    let settings = record_seed_session(&cfg, models, "secret retro notes");
    assert_eq!(settings.license_ceiling, Tier::Full);
    (cfg, settings)
}

#[test]
fn local_sessions_send_nothing_whatever_the_tier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, settings) = recorded(dir.path(), Tier::Local, &["claude-sonnet-4.5"]);
    for tier in Tier::ALL {
        let p = plan_under(&settings, tier);
        assert!(p.events.is_empty(), "{tier}: no events");
        assert!(p.metrics.is_none(), "{tier}: no summary");
        assert!(!p.metrics_unchanged, "{tier}: nothing was ever sent");
        assert_eq!(p.withheld, 3, "{tier}: all three events stay home for good");
        assert_eq!((p.held, p.forgotten, p.replayed), (0, 0, 0), "{tier}");
    }
}

#[test]
fn minimized_sessions_send_only_the_allowlisted_summary_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, settings) = recorded(
        dir.path(),
        Tier::Minimized,
        &["GLM-4.6", "claude-haiku-4.5"],
    );

    let p = plan_under(&settings, Tier::Minimized);
    assert!(p.events.is_empty(), "minimized sends no events");
    assert_eq!(p.withheld, 4, "session, two turns, session_end");
    assert_eq!(p.held, 0);
    let body = p.metrics.clone().expect("a summary body");
    let metrics = parse(&body);
    assert_eq!(sorted_keys(&metrics), minimized_keys());
    assert_eq!(metrics["features_shipped"], json!(2.0));
    assert_eq!(metrics["capacity_used"], json!(1.0));
    assert_eq!(metrics["features_per_capacity"], json!(2.0));
    // The local summary has more (per-model tokens, counts); none of it is in the body.
    let local: Value = serde_json::from_slice(
        &std::fs::read(cfg.data_dir.join("metrics_summary.json")).expect("summary file"),
    )
    .expect("summary json");
    assert!(local["models"]["GLM-4.6"].is_object(), "{local}");
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("GLM") && !text.contains("models"), "{text}");

    // A higher tier does not lift the events' recorded tier: the same summary, no events.
    let p = plan_under(&settings, Tier::Full);
    assert!(p.events.is_empty());
    assert_eq!(p.withheld, 4);
    assert_eq!(p.metrics.as_deref(), Some(&body[..]));

    let p = plan_under(&settings, Tier::Local);
    assert!(p.events.is_empty() && p.metrics.is_none());
}

#[test]
fn full_sessions_send_redacted_events_and_lower_tiers_hold_them_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, settings) = recorded(dir.path(), Tier::Full, &["claude-sonnet-4.5"]);

    let p = plan_under(&settings, Tier::Full);
    assert_eq!(p.events.len(), 3);
    assert_eq!((p.withheld, p.held, p.forgotten), (0, 0, 0));
    let ev: Vec<Value> = p.events.iter().map(|b| parse(b)).collect();
    for e in &ev {
        agentos_core::schema::validate_envelope(e).expect("egress stays schema-valid");
        assert_eq!(e["tier"], "full");
    }
    assert_eq!(
        ev[0]["session"]["metadata"],
        json!({"team": "core"}),
        "only allowlisted metadata keys"
    );
    let turn = &ev[1];
    assert_eq!(
        turn["value"],
        json!({"summary": "login works", "links": ["https://example.invalid/pr/1"]}),
        "value keeps only summary and links"
    );
    assert!(turn["feature"].get("notes").is_none());
    assert_eq!(turn["feature"]["feature_id"], "F-1");
    assert!(turn["measurement"].get("errors").is_none());
    assert_eq!(turn["measurement"]["error_count"], 1);
    assert_eq!(turn["turn"]["tokens_in"], 1200);
    assert_eq!(ev[2]["type"], "session_end");
    assert!(ev[2].get("notes").is_none());
    let all = String::from_utf8_lossy(&p.events.concat()).into_owned();
    for secret in [
        "ACME",
        "private note",
        "secret_plan",
        "evidence.txt",
        "retro",
    ] {
        assert!(!all.contains(secret), "{secret} would leave: {all}");
    }
    let metrics = parse(p.metrics.as_deref().expect("summary body"));
    assert_eq!(sorted_keys(&metrics), minimized_keys());
    // The local log keeps everything the plan leaves out.
    let local = std::fs::read_to_string(cfg.data_dir.join("windows.jsonl")).expect("log");
    assert!(local.contains("private note") && local.contains("secret retro notes"));

    // Under a lower tier the full events wait for a later run; the summary follows the tier.
    let p = plan_under(&settings, Tier::Minimized);
    assert!(p.events.is_empty());
    assert_eq!((p.held, p.withheld), (3, 0));
    let metrics = parse(p.metrics.as_deref().expect("summary body"));
    assert_eq!(sorted_keys(&metrics), minimized_keys());

    let p = plan_under(&settings, Tier::Local);
    assert!(p.events.is_empty() && p.metrics.is_none());
    assert_eq!((p.held, p.withheld), (3, 0));
}
