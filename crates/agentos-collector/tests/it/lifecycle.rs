//! Health, readiness, graceful shutdown and acknowledgement-after-commit.

use agentos_collector::{Store, StoreOptions};

use crate::both_backends;
use crate::common::{Harness, Options, batch, turn};

async fn readyz_reports_database_keyring_and_tiers(h: &Harness) -> anyhow::Result<()> {
    let (s, b) = h
        .send(reqwest::Method::GET, "/healthz", None, None, None, None)
        .await?;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
    let (s, b) = h
        .send(reqwest::Method::GET, "/readyz", None, None, None, None)
        .await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["ready"], true);
    assert_eq!(b["database"]["ok"], true);
    assert_eq!(b["keyring"]["kids"], serde_json::json!(["test-2026"]));
    assert_eq!(b["tiers"]["full"]["accepted"], true);
    assert_eq!(b["tiers"]["local"]["accepted"], false);
    Ok(())
}
both_backends!(readyz_reports_database_keyring_and_tiers);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_license_keys_readyz_is_503_and_says_why() -> anyhow::Result<()> {
    let h = Harness::sqlite_with(Options {
        trust_keys: false,
        ..Options::default()
    })
    .await?;
    let (s, b) = h
        .send(reqwest::Method::GET, "/readyz", None, None, None, None)
        .await?;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["keyring"]["loaded"], false);
    assert_eq!(b["tiers"]["full"]["accepted"], false);
    assert!(
        b["tiers"]["minimized"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no license public keys")
    );
    Ok(())
}

async fn acknowledged_events_survive_a_shutdown(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let (s, r) = h
        .post_events(&key, &batch("d", 1, 3, vec![turn(1), turn(2), turn(3)]))
        .await?;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(3)));
    // Reopen the database independently of the server: the acknowledged batch is there.
    let store = Store::connect(&h.url, &StoreOptions::default()).await?;
    assert_eq!(store.event_count("acme").await?, 3);
    let devices = store.devices("acme").await?;
    assert_eq!(devices[0].coverage.watermark(), 3);
    store.close().await;
    Ok(())
}
both_backends!(acknowledged_events_survive_a_shutdown);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests_then_stops() -> anyhow::Result<()> {
    let mut h = Harness::sqlite().await?;
    let key = h.key("acme").await?;
    let events: Vec<_> = (1..=500).map(turn).collect();
    let body = batch("d", 1, 500, events);
    let client = h.client.clone();
    let url = format!("{}/v1/events", h.base);
    let lic = h.full();
    let in_flight = tokio::spawn({
        let key = key.clone();
        async move {
            client
                .post(url)
                .bearer_auth(key)
                .header("X-AgentOS-License", lic)
                .json(&body)
                .send()
                .await
        }
    });
    // Give the request a moment to be accepted by the server before shutting down. Either
    // order is correct: what matters is that an answered request was committed.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    h.shutdown().await?;
    match in_flight.await? {
        Ok(resp) => {
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(h.state.store().event_count("acme").await?, 500);
        }
        // The request never reached a handler (listener already closed): nothing stored.
        Err(_) => assert_eq!(h.state.store().event_count("acme").await?, 0),
    }
    // The listener is closed now.
    assert!(reqwest::get(format!("{}/healthz", h.base)).await.is_err());
    Ok(())
}
