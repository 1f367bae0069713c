//! API keys: 401s and tenant isolation.

use crate::both_backends;
use crate::common::{Harness, batch, turn};

async fn requests_without_a_valid_key_get_401(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let body = serde_json::to_vec(&batch("d", 1, 1, vec![turn(1)]))?;
    let post = |k: Option<String>| {
        let body = body.clone();
        async move {
            h.send(
                reqwest::Method::POST,
                "/v1/events",
                k.as_deref(),
                Some(&h.full()),
                None,
                Some(body),
            )
            .await
        }
    };
    let (s, b) = post(None).await?;
    assert_eq!(s, 401);
    assert_eq!(b["code"], "unauthorized");
    // Right id, wrong secret.
    let forged = format!("{}{}", &key[..key.len() - 4], "AAAA");
    assert_eq!(post(Some(forged)).await?.0, 401);
    assert_eq!(post(Some("not-a-key".into())).await?.0, 401);
    assert_eq!(
        post(Some("aos_000000000000_unknownsecret".into())).await?.0,
        401
    );
    assert_eq!(post(Some(key.clone())).await?.0, 200);
    let (s, _) = h
        .send(reqwest::Method::GET, "/v1/usage", None, None, None, None)
        .await?;
    assert_eq!(s, 401);
    // Revocation takes effect (cache is per id and short-lived; a fresh id is not cached).
    let other = h.key("acme").await?;
    let id = agentos_collector::auth::key_id_of(&other)
        .unwrap_or_default()
        .to_string();
    assert!(h.state.store().revoke_key(&id, 0).await?);
    assert_eq!(h.get("/v1/summary", &other).await?.0, 401);
    Ok(())
}
both_backends!(requests_without_a_valid_key_get_401);

async fn a_key_only_sees_its_own_tenant(h: &Harness) -> anyhow::Result<()> {
    let a = h.key("tenant-a").await?;
    let b = h.key("tenant-b").await?;
    let events = vec![turn(1), turn(2)];
    let (_, ra) = h.post_events(&a, &batch("d", 1, 2, events.clone())).await?;
    assert_eq!(ra["accepted"], 2);
    // The same event ids under another tenant are new there, not duplicates.
    let (_, rb) = h
        .post_events(&b, &batch("d", 1, 1, events[..1].to_vec()))
        .await?;
    assert_eq!(rb["accepted"], 1);
    assert_eq!(rb["duplicates"], 0);
    assert_eq!(rb["watermark"], 1, "device state is per tenant");
    // Turns sent as `claude-haiku-4.5` (no quota configured under that name) are listed under
    // the model's canonical id.
    let (_, usage_b) = h.get("/v1/usage", &b).await?;
    assert_eq!(usage_b["models"]["claude-haiku-4-5-20251001"]["reqs"], 1);
    let (_, usage_a) = h.get("/v1/usage", &a).await?;
    assert_eq!(usage_a["models"]["claude-haiku-4-5-20251001"]["reqs"], 2);
    let (_, sum_b) = h.get("/v1/summary", &b).await?;
    assert_eq!(sum_b["tenant"], "tenant-b");
    assert_eq!(sum_b["devices"]["d"]["events"], 1);
    Ok(())
}
both_backends!(a_key_only_sees_its_own_tenant);

async fn unknown_key_ids_are_remembered_and_two_authorization_headers_refused(
    h: &Harness,
) -> anyhow::Result<()> {
    // A well-formed key whose id the database does not know yet.
    let (key, record) = agentos_collector::auth::generate_key("acme", 0)?;
    assert_eq!(h.get("/v1/summary", &key).await?.0, 401);
    // Stored now, but the id was remembered as unknown: the next request does not ask the
    // database again within the cache's lifetime (which is also why a flood of made-up ids
    // costs the database nothing and answers in the same time as a known id).
    h.state.store().insert_key(&record).await?;
    assert_eq!(h.get("/v1/summary", &key).await?.0, 401);

    let good = h.key("acme").await?;
    assert_eq!(h.get("/v1/summary", &good).await?.0, 200);
    for pair in [
        [good.as_str(), "aos_000000000000_x"],
        ["aos_000000000000_x", good.as_str()],
    ] {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/summary", h.base))
            .header("authorization", format!("Bearer {}", pair[0]))
            .header("authorization", format!("Bearer {}", pair[1]))
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 401, "two headers: {pair:?}");
        let text = resp.text().await?;
        assert!(
            text.contains("more than one Authorization header"),
            "{text}"
        );
    }
    Ok(())
}
both_backends!(unknown_key_ids_are_remembered_and_two_authorization_headers_refused);
