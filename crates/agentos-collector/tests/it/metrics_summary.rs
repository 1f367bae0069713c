//! `/v1/metrics` allowlist and `/v1/summary` merge across devices.

use crate::both_backends;
use crate::common::{Harness, batch, turn};

async fn post_metrics(
    h: &Harness,
    key: &str,
    device: &str,
    body: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    h.send(
        reqwest::Method::POST,
        "/v1/metrics",
        Some(key),
        Some(&h.full()),
        Some(device),
        Some(body.as_bytes().to_vec()),
    )
    .await
}

async fn only_allowlisted_summary_fields_are_accepted(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let (s, b) = post_metrics(h, &key, "d1", r#"{"avg_cls":1.2,"sessions":3}"#).await?;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["pointer"], "/sessions");
    assert!(b["message"].as_str().unwrap_or("").contains("sessions"));
    let (s, b) = post_metrics(h, &key, "d1", r#"{"avg_cls":"high"}"#).await?;
    assert_eq!((s, b["pointer"].as_str()), (422, Some("/avg_cls")));
    let (s, b) = post_metrics(h, &key, "d1", r#"{"avg_cls":1.2"#).await?;
    assert_eq!(s, 400, "{b}");
    // A repeated key is ambiguous (which one counts?) and a negative capacity impossible.
    let (s, b) = post_metrics(h, &key, "d1", r#"{"avg_cls":1.2,"avg_cls":9}"#).await?;
    assert_eq!((s, b["pointer"].as_str()), (422, Some("/avg_cls")), "{b}");
    let (s, b) = post_metrics(h, &key, "d1", r#"{"capacity_used":-3}"#).await?;
    assert_eq!(
        (s, b["pointer"].as_str()),
        (422, Some("/capacity_used")),
        "{b}"
    );
    let (s, b) = post_metrics(
        h,
        &key,
        "d1",
        r#"{"avg_cls":1.2,"generated_at":"2026-11-24T19:00:00Z"}"#,
    )
    .await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["stored"], true);
    Ok(())
}
both_backends!(only_allowlisted_summary_fields_are_accepted);

async fn summaries_merge_across_devices(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let a = r#"{"generated_at":"2026-11-24T18:00:00Z","features_shipped":1.0,"capacity_used":0.5,"features_per_capacity":2.0,"avg_cls":1.0,"avg_impf":4.0,"avg_churn_score":null}"#;
    let b = r#"{"generated_at":"2026-11-24T19:00:00Z","features_shipped":3.0,"capacity_used":1.5,"features_per_capacity":2.0,"avg_cls":2.0,"avg_impf":null,"avg_churn_score":0.5}"#;
    assert_eq!(post_metrics(h, &key, "laptop", a).await?.0, 200);
    assert_eq!(post_metrics(h, &key, "desktop", b).await?.0, 200);
    // A newer summary of the same device replaces the older one.
    assert_eq!(post_metrics(h, &key, "laptop", a).await?.0, 200);
    h.post_events(&key, &batch("laptop", 1, 2, vec![turn(1), turn(2)]))
        .await?;
    let (s, r) = h.get("/v1/summary", &key).await?;
    assert_eq!(s, 200, "{r}");
    let m = &r["merged"];
    assert_eq!(m["devices"], 2);
    assert_eq!(m["features_shipped"], 4.0);
    assert_eq!(m["capacity_used"], 2.0);
    assert_eq!(m["features_per_capacity"], 2.0);
    assert_eq!(m["avg_cls"], 1.5);
    assert_eq!(m["avg_impf"], 4.0);
    assert_eq!(m["avg_churn_score"], 0.5);
    assert_eq!(m["generated_at"], "2026-11-24T19:00:00Z");
    assert_eq!(r["devices"]["laptop"]["summary"]["avg_cls"], 1.0);
    assert_eq!(r["devices"]["laptop"]["events"], 2);
    assert_eq!(r["devices"]["laptop"]["watermark"], 2);
    assert_eq!(r["devices"]["desktop"]["events"], 0);
    Ok(())
}
both_backends!(summaries_merge_across_devices);
