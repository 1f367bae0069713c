//! Hostile input: 413, 400 with position, 422 with pointer, batch limit.

use serde_json::json;

use agentos_collector::Limits;

use crate::common::{Harness, Options, batch, turn};

async fn post_raw(
    h: &Harness,
    key: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    h.send(
        reqwest::Method::POST,
        "/v1/events",
        Some(key),
        Some(&h.full()),
        None,
        Some(body),
    )
    .await
}

async fn malformed_and_misshapen_bodies_are_refused_with_a_location(
    h: &Harness,
) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let (s, b) = post_raw(h, &key, b"{\"events\": [1,\n  2,, 3]}".to_vec()).await?;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["code"], "malformed_json");
    let msg = b["message"].as_str().unwrap_or("");
    assert!(msg.contains("line 2 column"), "position in message: {msg}");

    let (s, b) = post_raw(h, &key, vec![0xff, 0xfe]).await?;
    assert_eq!((s, b["code"].as_str()), (400, Some("malformed_json")));

    let cases = [
        (json!([1, 2]), ""),
        (json!({"device_id": "d"}), "/events"),
        (json!({"events": {}}), "/events"),
        (json!({"events": [], "extra": 1}), "/extra"),
        (json!({"events": [], "device_id": 5}), "/device_id"),
        (
            json!({"events": [], "covers": {"from": 5, "to": 2}}),
            "/covers",
        ),
        (
            json!({"events": [], "covers": {"from": -1, "to": 2}}),
            "/covers/from",
        ),
        (json!({"events": [], "batch_id": "nope"}), "/batch_id"),
    ];
    for (body, pointer) in cases {
        let (s, b) = post_raw(h, &key, serde_json::to_vec(&body)?).await?;
        assert_eq!(s, 422, "{body} -> {b}");
        assert_eq!(b["code"], "invalid_request");
        assert_eq!(b["pointer"], pointer, "{body} -> {b}");
    }
    Ok(())
}
crate::both_backends!(malformed_and_misshapen_bodies_are_refused_with_a_location);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_and_batches_over_the_limit_get_422() -> anyhow::Result<()> {
    let h = Harness::sqlite_with(Options {
        limits: Limits {
            body_bytes: 64 * 1024,
            batch_events: 10,
            ..Limits::default()
        },
        ..Options::default()
    })
    .await?;
    let key = h.key("acme").await?;
    let big = vec![b' '; 64 * 1024 + 1];
    let (s, b) = post_raw(&h, &key, big).await?;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["code"], "payload_too_large");
    let eleven: Vec<_> = (1..=11).map(turn).collect();
    let (s, b) = h.post_events(&key, &batch("d", 1, 11, eleven)).await?;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["pointer"], "/events");
    assert!(
        b["message"].as_str().unwrap_or("").contains("limit is 10"),
        "{b}"
    );
    let ten: Vec<_> = (1..=10).map(turn).collect();
    assert_eq!(h.post_events(&key, &batch("d", 1, 10, ten)).await?.0, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_body_limit_is_one_mebibyte() -> anyhow::Result<()> {
    let h = Harness::sqlite().await?;
    let key = h.key("acme").await?;
    let (s, _) = post_raw(&h, &key, vec![b' '; 1024 * 1024 + 1]).await?;
    assert_eq!(s, 413);
    Ok(())
}

async fn a_device_cannot_fragment_its_coverage_without_bound(h: &Harness) -> anyhow::Result<()> {
    use agentos_collector::store::{MAX_COVERAGE_RANGES, StoreError};
    let every_other: Vec<(u64, u64)> = (1..=MAX_COVERAGE_RANGES as u64 + 1)
        .map(|i| (2 * i, 2 * i))
        .collect();
    let store = h.state.store();
    let err = store
        .ingest("acme", "d", &[], &every_other, 0)
        .await
        .expect_err("too many ranges");
    assert!(matches!(err, StoreError::TooFragmented { .. }), "{err}");
    assert!(
        store.devices("acme").await?.is_empty(),
        "nothing was committed"
    );
    let ok = store
        .ingest("acme", "d", &[], &every_other[..MAX_COVERAGE_RANGES], 0)
        .await?;
    assert_eq!(ok.coverage.ranges().len(), MAX_COVERAGE_RANGES);

    // Over HTTP the refusal depends on the device's history, not on the request: a retryable
    // 409 with Retry-After, never a 422 the client would log as a rejection.
    let key = h.key("acme").await?;
    let far = 2 * MAX_COVERAGE_RANGES as u64 + 10;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/events", h.base))
        .bearer_auth(&key)
        .header("X-AgentOS-License", h.full())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&batch("d", far, far, vec![turn(far)]))?)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 409);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["code"], "coverage_too_fragmented", "{body}");
    Ok(())
}
crate::both_backends!(a_device_cannot_fragment_its_coverage_without_bound);

async fn an_event_refused_for_an_impossible_seq_covers_nothing(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let mut bad = turn(1);
    bad["seq"] = json!(u64::MAX);
    let body = json!({
        "device_id": "d",
        "batch_id": uuid::Uuid::now_v7().to_string(),
        "events": [bad, turn(1)],
    });
    let (s, r) = h.post_events(&key, &body).await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["accepted"], 1, "{r}");
    assert_eq!(r["rejected"][0]["seq"], json!(u64::MAX), "{r}");
    assert_eq!(r["watermark"], 1, "{r}");
    assert_eq!(r["gaps"], json!([]), "no gap below an impossible seq: {r}");
    let (_, sum) = h.get("/v1/summary", &key).await?;
    let dev = &sum["devices"]["d"];
    assert_eq!(dev["gaps"], json!([]), "{dev}");
    Ok(())
}
crate::both_backends!(an_event_refused_for_an_impossible_seq_covers_nothing);

async fn a_decision_with_fields_outside_the_allowlist_is_refused(
    h: &Harness,
) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let mut free_text = turn(1);
    free_text["decision"] = json!({"reroute_mode": "hybrid", "note": "customer ACME, secret"});
    let mut named_only = turn(2);
    named_only["decision"] = json!({"reroute_mode": "hybrid", "gap_samples": 3});
    let (s, r) = h
        .post_events(&key, &batch("d", 1, 2, vec![free_text, named_only]))
        .await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["accepted"], 1, "{r}");
    assert_eq!(r["rejected"][0]["code"], "unredacted_field", "{r}");
    let reason = r["rejected"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("/decision/note"), "{reason}");
    Ok(())
}
crate::both_backends!(a_decision_with_fields_outside_the_allowlist_is_refused);
