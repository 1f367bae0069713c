//! `/v1/usage` against a hand-computed example (the spec's example in `ccc-formats.md` §3.1,
//! plus one turn outside the rolling window and one outside the weekly window).
//!
//! Now = 2026-11-24T20:00:00Z, rolling 18000 s, weekly 604800 s, quotas = the shared fixture
//! (claude-haiku-4.5: zai, 300000 rolling tokens, 40 h weekly, warn 0.8).
//! - haiku, 3 turns 2 h ago: 3 × (50000 in, 30000 out, 1200 s) → rolling 150000/90000,
//!   rolling_pct 240000/300000 = 0.8 (warn, no block), eta 18000 − 7200 = 10800 s,
//!   out 90000/3600 = 25 tps, in 150000/3600 = 41.666… tps, total 66.666… tps;
//! - haiku, 1 turn 2 days ago (10000, 10000, 3600 s): weekly only → weekly_pct
//!   (3600 + 3600) / (40 × 3600) = 0.05; session out 100000/7200 = 13.888… tps;
//! - haiku, 1 turn 8 days ago: outside both windows, ignored;
//! - glm-4.6 (unconfigured), 1 turn 1 min ago (1500, 1000, 40 s): rolling_pct 0, eta 17940,
//!   out 25 tps, in 37.5 tps, no provider.

use agentos_collector::Quotas;

use crate::common::{Harness, NOW_US, Options, batch, turn_at};

const H: i64 = 3_600_000_000;

async fn usage_matches_the_hand_computed_example(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let haiku = "claude-haiku-4.5";
    let events = vec![
        turn_at(1, NOW_US - 8 * 24 * H, haiku, 999, 999, 1000.0),
        turn_at(2, NOW_US - 48 * H, haiku, 10_000, 10_000, 3_600_000.0),
        turn_at(3, NOW_US - 2 * H, haiku, 50_000, 30_000, 1_200_000.0),
        turn_at(4, NOW_US - 2 * H, haiku, 50_000, 30_000, 1_200_000.0),
        turn_at(5, NOW_US - 2 * H, haiku, 50_000, 30_000, 1_200_000.0),
        turn_at(6, NOW_US - 60_000_000, "glm-4.6", 1_500, 1_000, 40_000.0),
    ];
    let (s, r) = h.post_events(&key, &batch("d", 1, 6, events)).await?;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(6)), "{r}");
    let (s, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["ts"].as_f64(), Some(1_795_550_400.0));
    assert!(
        u["path"]
            .as_str()
            .unwrap_or("")
            .ends_with("quotas.example.json"),
        "{u}"
    );
    let m = &u["models"][haiku];
    assert_eq!(m["provider"], "zai");
    assert_eq!(m["rolling_in"], 150_000);
    assert_eq!(m["rolling_out"], 90_000);
    assert_eq!(m["rolling_pct"].as_f64(), Some(0.8));
    assert_eq!(m["weekly_pct"].as_f64(), Some(0.05));
    assert_eq!(m["reqs"], 3);
    assert_eq!(m["eta_rolling_sec"], 10_800);
    assert_eq!(m["warn"], true);
    assert_eq!(m["block"], false);
    let rolling = &m["speeds"]["rolling"];
    assert_eq!(rolling["out_dirty_tps"].as_f64(), Some(25.0));
    assert_eq!(rolling["out_elr_tps"].as_f64(), Some(25.0));
    assert_eq!(rolling["in_dirty_tps"].as_f64(), Some(41.666666666666664));
    assert_eq!(rolling["total_dirty_tps"].as_f64(), Some(66.66666666666667));
    assert_eq!(
        m["speeds"]["session"]["out_dirty_tps"].as_f64(),
        Some(13.88888888888889)
    );
    assert_eq!(m["speeds"]["rolling_samples"], 3);
    assert_eq!(m["speeds"]["weekly_samples"], 4);
    assert_eq!(m["speeds"]["ttft_ms"]["p50"].as_f64(), Some(0.0));
    let hourly = m["speeds"]["hourly"].as_array().expect("hourly");
    assert_eq!(hourly.len(), 24);
    assert_eq!(hourly[18]["samples"], 3, "2 h before 20:00Z is hour 18 UTC");
    assert_eq!(hourly[20]["samples"], 1);
    assert!(
        hourly[18].get("out_dirty_tps").is_none(),
        "rates need >= 10 samples"
    );

    let g = &u["models"]["glm-4.6"];
    assert!(g.get("provider").is_none(), "{g}");
    assert_eq!(g["rolling_in"], 1_500);
    assert_eq!(g["rolling_out"], 1_000);
    assert_eq!(g["rolling_pct"].as_f64(), Some(0.0));
    assert_eq!(g["weekly_pct"].as_f64(), Some(0.0));
    assert_eq!(g["eta_rolling_sec"], 17_940);
    assert_eq!(g["warn"], false);
    assert_eq!(g["block"], false);
    assert_eq!(g["speeds"]["rolling"]["out_dirty_tps"].as_f64(), Some(25.0));
    assert_eq!(g["speeds"]["rolling"]["in_elr_tps"].as_f64(), Some(37.5));
    assert_eq!(g["speeds"]["rolling"]["total_elr_tps"].as_f64(), Some(62.5));
    assert!(
        u["models"].get("claude-sonnet-4.5").is_none(),
        "models without turns are omitted"
    );

    // Time passes: 3 more hours and the haiku burst leaves the rolling window.
    h.clock.set(NOW_US + 3 * H + 1);
    let (_, later) = h.get("/v1/usage", &key).await?;
    assert_eq!(later["models"][haiku]["reqs"], 0);
    assert_eq!(later["models"][haiku]["rolling_pct"].as_f64(), Some(0.0));
    assert_eq!(later["models"][haiku]["eta_rolling_sec"], 0);
    Ok(())
}

fn options() -> anyhow::Result<Options> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/quotas.example.json"
    );
    Ok(Options {
        quotas: Quotas::load(std::path::Path::new(path))?,
        ..Options::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() -> anyhow::Result<()> {
    let h = Harness::sqlite_with(options()?).await?;
    usage_matches_the_hand_computed_example(&h).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() -> anyhow::Result<()> {
    let Some(h) = Harness::postgres_with(options()?).await? else {
        return Ok(());
    };
    usage_matches_the_hand_computed_example(&h).await
}

async fn huge_token_counts_are_refused_and_sums_never_overflow(h: &Harness) -> anyhow::Result<()> {
    use agentos_core::event::MAX_TURN_TOKENS;
    let key = h.key("acme").await?;
    // Over the documented maximum, 2^63, 1e30, and an integer-valued float: refused per event.
    let mut events = Vec::new();
    for (seq, tokens) in [
        (1, serde_json::json!(MAX_TURN_TOKENS + 1)),
        (2, serde_json::json!(9_223_372_036_854_775_808u64)),
        (3, serde_json::json!(1e30)),
        (4, serde_json::json!(1000.0)),
    ] {
        let mut e = crate::common::turn(seq);
        e["turn"]["tokens_in"] = tokens;
        events.push(e);
    }
    let mut ok = crate::common::turn(5);
    ok["turn"]["tokens_in"] = serde_json::json!(MAX_TURN_TOKENS);
    events.push(ok);
    let (s, r) = h
        .post_events(&key, &crate::common::batch("d", 1, 5, events))
        .await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["accepted"], 1, "{r}");
    let rejected: Vec<u64> = r["rejected"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["seq"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(rejected, vec![1, 2, 3, 4], "{r}");
    // Rows stored before the bound existed (clamped to i64::MAX): their sum is past 2^63, and
    // /v1/usage must still answer.
    let mut old = Vec::new();
    for seq in 6..=8 {
        let mut e = agentos_collector::ingest::check_event(&crate::common::turn(seq), "{}")
            .map_err(|(c, r)| anyhow::anyhow!("{c}: {r}"))?;
        e.tokens_in = Some(i64::MAX);
        old.push(e);
    }
    h.state
        .store()
        .ingest("acme", "d", &old, &[(6, 8)], crate::common::NOW_US)
        .await?;
    let (s, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(s, 200, "a sum past 2^63 must not fail /v1/usage: {u}");
    Ok(())
}
crate::both_backends!(huge_token_counts_are_refused_and_sums_never_overflow);
