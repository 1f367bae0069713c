//! `/metrics` exposes request, event, gap, latency and database families.

use crate::both_backends;
use crate::common::{Harness, batch, turn};

async fn prometheus_output_counts_requests_and_event_outcomes(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let b = batch("d", 1, 2, vec![turn(1), turn(2)]);
    h.post_events(&key, &b).await?;
    h.post_events(&key, &b).await?;
    let mut bad = turn(4);
    bad["tier"] = serde_json::json!("local");
    h.post_events(&key, &batch("d", 4, 4, vec![bad])).await?;
    h.get("/v1/usage", "wrong").await?;
    let resp = reqwest::get(format!("{}/metrics", h.base)).await?;
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await?;
    for needle in [
        "agentos_collector_requests_total{route=\"/v1/events\",status=\"200\"} 3",
        "agentos_collector_requests_total{route=\"/v1/usage\",status=\"401\"} 1",
        "agentos_collector_events_total{outcome=\"accepted\",reason=\"\"} 2",
        "agentos_collector_events_total{outcome=\"duplicate\",reason=\"\"} 2",
        "agentos_collector_events_total{outcome=\"rejected\",reason=\"tier_not_allowed\"} 1",
        "agentos_collector_gap_batches_total 1",
        "agentos_collector_gap_seqs_total 1",
        "agentos_collector_ingest_duration_seconds_count 3",
        "agentos_collector_database_errors_total{op=\"ingest\"} 0",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    Ok(())
}
both_backends!(prometheus_output_counts_requests_and_event_outcomes);
