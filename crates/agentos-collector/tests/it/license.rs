//! License checks on the server: 403 with the reason.

use base64::Engine as _;

use crate::both_backends;
use crate::common::{Harness, NOW_US, batch, signing_key, turn};

async fn events_need_telemetry_full_and_metrics_need_either(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let events = serde_json::to_vec(&batch("d", 1, 1, vec![turn(1)]))?;
    let metrics = br#"{"avg_cls":1.5,"generated_at":"2026-11-24T19:00:00Z"}"#.to_vec();
    let send = |path: &'static str, lic: Option<String>, body: Vec<u8>| {
        let key = key.clone();
        async move {
            h.send(
                reqwest::Method::POST,
                path,
                Some(&key),
                lic.as_deref(),
                None,
                Some(body),
            )
            .await
        }
    };
    let (s, b) = send("/v1/events", None, events.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (403, Some("license_missing")),
        "{b}"
    );

    // A header that is not base64 says so, rather than blaming the pack's JSON.
    let (s, b) = send("/v1/events", Some("%%% not base64".into()), events.clone()).await?;
    assert_eq!(s, 403, "{b}");
    let message = b["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not standard base64") && !message.contains("JSON"),
        "{message}"
    );

    let minimized = h.license(&["telemetry_minimized"]);
    let (s, b) = send("/v1/events", Some(minimized.clone()), events.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (403, Some("entitlement_missing")),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .unwrap_or("")
            .contains("telemetry_full"),
        "{b}"
    );
    let (s, b) = send("/v1/metrics", Some(minimized), metrics.clone()).await?;
    assert_eq!(s, 200, "{b}");

    let neither = h.license(&["zai_offload"]);
    let (s, b) = send("/v1/metrics", Some(neither), metrics.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (403, Some("entitlement_missing")),
        "{b}"
    );

    let expired = h.license_signed(&h.signing, &["telemetry_full"], NOW_US / 1_000_000 - 1);
    let (s, b) = send("/v1/events", Some(expired), events.clone()).await?;
    assert_eq!(s, 403);
    assert!(
        b["message"].as_str().unwrap_or("").contains("expired"),
        "{b}"
    );

    // Signed by a key the collector does not trust (same kid, other key).
    let stranger = h.license_signed(&signing_key(), &["telemetry_full"], NOW_US / 1_000_000 + 60);
    let (s, b) = send("/v1/events", Some(stranger), events.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (403, Some("license_invalid")),
        "{b}"
    );

    // The shared CCC fixture carries a fake signature.
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/full_pack.json"
    ))?;
    let fake = base64::engine::general_purpose::STANDARD.encode(fixture);
    let (s, _) = send("/v1/events", Some(fake), events.clone()).await?;
    assert_eq!(s, 403);

    let (s, b) = send("/v1/events", Some("%%%not base64".into()), events.clone()).await?;
    assert_eq!(s, 403, "{b}");

    let (s, b) = send("/v1/events", Some(h.full()), events).await?;
    assert_eq!(s, 200, "{b}");
    Ok(())
}
both_backends!(events_need_telemetry_full_and_metrics_need_either);

async fn usage_carries_the_license_block_of_a_valid_pack(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let (s, with) = h
        .send(
            reqwest::Method::GET,
            "/v1/usage",
            Some(&key),
            Some(&h.full()),
            None,
            None,
        )
        .await?;
    assert_eq!(s, 200);
    assert_eq!(with["license"]["ok"], true);
    assert_eq!(with["license"]["plan"], "pro");
    let (_, without) = h.get("/v1/usage", &key).await?;
    assert!(without.get("license").is_none(), "{without}");
    Ok(())
}
both_backends!(usage_carries_the_license_block_of_a_valid_pack);

async fn a_device_bound_pack_is_accepted_only_from_that_device(h: &Harness) -> anyhow::Result<()> {
    use agentos_core::license::{Claims, LICENSE_SCHEMA, Plan, issue_pack};
    let key = h.key("acme").await?;
    let claims = Claims {
        device: Some("fp-0123456789abcdef".into()),
        exp: NOW_US / 1_000_000 + 86_400,
        features: vec!["telemetry_full".into()],
        iat: None,
        kid: crate::common::KID.into(),
        nonce: None,
        plan: Plan::Pro,
        schema: LICENSE_SCHEMA.into(),
        sub: None,
    };
    let lic = base64::engine::general_purpose::STANDARD.encode(issue_pack(&h.signing, &claims));
    let body = serde_json::to_vec(&batch("d", 1, 1, vec![turn(1)]))?;
    let post = |binding: Option<&'static str>| {
        let mut req = h
            .client
            .post(format!("{}/v1/events", h.base))
            .bearer_auth(&key)
            .header("X-AgentOS-License", &lic)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(b) = binding {
            req = req.header("X-AgentOS-Device-Binding", b);
        }
        async move {
            let r = req.send().await?;
            let status = r.status().as_u16();
            let v: serde_json::Value = serde_json::from_str(&r.text().await?)?;
            anyhow::Ok((status, v))
        }
    };
    let (s, b) = post(None).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (403, Some("license_device_mismatch")),
        "{b}"
    );
    let (s, b) = post(Some("fp-other")).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (403, Some("license_device_mismatch")),
        "{b}"
    );
    let (s, b) = post(Some("fp-0123456789abcdef")).await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["accepted"], 1);
    Ok(())
}
both_backends!(a_device_bound_pack_is_accepted_only_from_that_device);
