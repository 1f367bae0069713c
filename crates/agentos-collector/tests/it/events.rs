//! Ingest: acknowledgement, idempotency, coverage (watermark and gaps), per-event rejection.

use serde_json::json;

use crate::both_backends;
use crate::common::{Harness, batch, turn};

async fn a_batch_is_stored_and_acknowledged(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let (status, body) = h
        .post_events(&key, &batch("dev-1", 1, 3, vec![turn(1), turn(2), turn(3)]))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["duplicates"], 0);
    assert_eq!(body["rejected"], json!([]));
    assert_eq!(body["watermark"], 3);
    assert_eq!(body["gaps"], json!([]));
    assert_eq!(h.state.store().event_count("acme").await?, 3);
    Ok(())
}
both_backends!(a_batch_is_stored_and_acknowledged);

async fn a_replayed_batch_is_not_stored_twice(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let b = batch("dev-1", 1, 3, vec![turn(1), turn(2), turn(3)]);
    let (_, first) = h.post_events(&key, &b).await?;
    assert_eq!(first["accepted"], 3);
    let (status, again) = h.post_events(&key, &b).await?;
    assert_eq!(status, 200);
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["duplicates"], 3);
    assert_eq!(again["watermark"], 3);
    // The same event twice inside one batch counts once.
    let e = turn(4);
    let (_, dup) = h
        .post_events(&key, &batch("dev-1", 4, 4, vec![e.clone(), e]))
        .await?;
    assert_eq!(dup["accepted"], 1);
    assert_eq!(dup["duplicates"], 1);
    assert_eq!(h.state.store().event_count("acme").await?, 4);
    Ok(())
}
both_backends!(a_replayed_batch_is_not_stored_twice);

async fn withheld_seqs_are_covered_and_missing_batches_are_gaps(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    // Seqs 3 and 5 were withheld by the client (privacy tier): covered, not gaps.
    let (_, r) = h
        .post_events(&key, &batch("dev-1", 1, 5, vec![turn(1), turn(2), turn(4)]))
        .await?;
    assert_eq!(r["accepted"], 3);
    assert_eq!(r["watermark"], 5);
    assert_eq!(r["gaps"], json!([]));
    // Batch 6..7 is lost in transit; 8..9 arrives.
    let (_, r) = h
        .post_events(&key, &batch("dev-1", 8, 9, vec![turn(8), turn(9)]))
        .await?;
    assert_eq!(r["watermark"], 5);
    assert_eq!(r["gaps"], json!([[6, 7]]));
    // Another device is independent.
    let (_, other) = h
        .post_events(&key, &batch("dev-2", 1, 1, vec![turn(1)]))
        .await?;
    assert_eq!(other["watermark"], 1);
    assert_eq!(other["gaps"], json!([]));
    // The retry fills the gap.
    let (_, r) = h
        .post_events(&key, &batch("dev-1", 6, 7, vec![turn(6), turn(7)]))
        .await?;
    assert_eq!(r["watermark"], 9);
    assert_eq!(r["gaps"], json!([]));
    Ok(())
}
both_backends!(withheld_seqs_are_covered_and_missing_batches_are_gaps);

async fn bad_events_are_rejected_one_by_one_and_still_covered(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let mut negative = turn(2);
    negative["turn"]["tokens_in"] = json!(-1);
    let mut minimized = turn(3);
    minimized["tier"] = json!("minimized");
    let mut unredacted = turn(4);
    unredacted["feature"]["notes"] = json!("secret plans");
    let mut value_extra = turn(5);
    value_extra["value"] = json!({"summary": "s", "evidence_refs": ["private"]});
    let (status, r) = h
        .post_events(
            &key,
            &batch(
                "dev-1",
                1,
                5,
                vec![turn(1), negative, minimized, unredacted, value_extra],
            ),
        )
        .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["accepted"], 1);
    let rejected = r["rejected"].as_array().expect("rejected array");
    let codes: Vec<(&str, u64)> = rejected
        .iter()
        .map(|x| {
            (
                x["code"].as_str().unwrap_or(""),
                x["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("schema_violation", 2),
            ("tier_not_allowed", 3),
            ("unredacted_field", 4),
            ("unredacted_field", 5)
        ]
    );
    let reason = rejected[0]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("/turn/tokens_in"),
        "reason names the pointer: {reason}"
    );
    assert!(
        rejected[2]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("/feature/notes")
    );
    assert_eq!(r["watermark"], 5, "rejected seqs count as covered");
    assert_eq!(h.state.store().event_count("acme").await?, 1);
    Ok(())
}
both_backends!(bad_events_are_rejected_one_by_one_and_still_covered);

async fn a_single_bare_event_uses_the_device_header(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let (status, r) = h
        .send(
            reqwest::Method::POST,
            "/v1/events",
            Some(&key),
            Some(&h.full()),
            Some("laptop-7"),
            Some(serde_json::to_vec(&turn(1))?),
        )
        .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["accepted"], 1);
    assert_eq!(r["watermark"], 1);
    let devices = h.state.store().devices("acme").await?;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, "laptop-7");
    assert_eq!(devices[0].events, 1);
    Ok(())
}
both_backends!(a_single_bare_event_uses_the_device_header);

async fn held_and_forgotten_seqs_are_accounted_for_not_gaps(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    // The client sends 6 and 7, holds 1..=3 back for a later run and forgot 4..=5 on purpose.
    let mut b = batch("dev-1", 6, 7, vec![turn(6), turn(7)]);
    b["held"] = json!([[1, 3]]);
    b["forgotten"] = json!([[4, 5]]);
    let (status, r) = h.post_events(&key, &b).await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["accepted"], 2);
    assert_eq!(r["watermark"], 7);
    assert_eq!(r["gaps"], json!([]));
    assert_eq!(r["held"], json!([[1, 3]]));
    assert_eq!(r["forgotten"], json!([[4, 5]]));
    // Two held events arrive; the third is forgotten after all.
    let mut b = batch("dev-1", 8, 8, vec![turn(1), turn(2)]);
    b["forgotten"] = json!([[3, 3]]);
    let (_, r) = h.post_events(&key, &b).await?;
    assert_eq!(r["held"], json!([]));
    assert_eq!(r["forgotten"], json!([[3, 5]]));
    assert_eq!(
        (r["watermark"].as_u64(), r["gaps"].clone()),
        (Some(8), json!([]))
    );
    let devices = h.state.store().devices("acme").await?;
    assert_eq!(
        (devices[0].held.count(), devices[0].forgotten.count()),
        (0, 3)
    );
    // A malformed range names its place.
    let mut bad = batch("dev-1", 9, 9, vec![turn(9)]);
    bad["held"] = json!([[3, 1]]);
    let (status, r) = h.post_events(&key, &bad).await?;
    assert_eq!(status, 422, "{r}");
    assert!(
        r["message"].to_string().contains("/held/0") || r.to_string().contains("/held/0"),
        "{r}"
    );
    Ok(())
}
both_backends!(held_and_forgotten_seqs_are_accounted_for_not_gaps);

async fn a_turn_with_a_derived_id_is_stored_once_whatever_path_brings_it(
    h: &Harness,
) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    // The same Claude Code request, recorded as two events (a hook and a later catch-up, or two
    // devices): different event ids and seqs, one derived turn id.
    let derived = |seq: u64| {
        let mut t = turn(seq);
        t["turn"]["source"] = json!("claude_code");
        t["turn"]["turn_id"] = json!("0190a0a0-0000-8000-8000-00000000abcd");
        t
    };
    let (status, r) = h
        .post_events(&key, &batch("dev-1", 1, 2, vec![derived(1), derived(2)]))
        .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let (_, r) = h
        .post_events(&key, &batch("dev-2", 1, 1, vec![derived(1)]))
        .await?;
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    assert_eq!(r["gaps"], json!([]), "a duplicate still covers its seq");
    // Hand-recorded turns reuse ids like "t1" across sessions: no key, never merged.
    let (_, r) = h
        .post_events(&key, &batch("dev-1", 3, 4, vec![turn(3), turn(4)]))
        .await?;
    assert_eq!(r["accepted"].as_u64(), Some(2), "{r}");
    assert_eq!(h.state.store().event_count("acme").await?, 3);
    Ok(())
}
both_backends!(a_turn_with_a_derived_id_is_stored_once_whatever_path_brings_it);
