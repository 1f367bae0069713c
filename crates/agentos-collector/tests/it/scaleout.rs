//! Scale-out: two collectors over one PostgreSQL database, clients spread across both, every
//! batch also replayed through the other collector at the same time (a client retrying after a
//! timeout behind a load balancer).

use std::collections::BTreeMap;

use tokio::task::JoinSet;

use crate::common::{Harness, batch, turn};

const DEVICES: u64 = 4;
const BATCHES: u64 = 12;
const PER_BATCH: u64 = 50;

async fn two_collectors_share_one_database(a: Harness) -> anyhow::Result<()> {
    let b = a.sibling().await?;
    let key = a.key("acme").await?;
    let lic = a.full();
    let bases = [a.base.clone(), b.base.clone()];
    let client = reqwest::Client::new();
    let mut tasks = JoinSet::new();
    for d in 0..DEVICES {
        for i in 0..BATCHES {
            let from = i * PER_BATCH + 1;
            let to = from + PER_BATCH - 1;
            let body = serde_json::to_vec(&batch(
                &format!("dev-{d}"),
                from,
                to,
                (from..=to).map(turn).collect(),
            ))?;
            // Original through one collector, the replay through the other, concurrently.
            for copy in 0..2 {
                let base = bases[((d + i + copy) % 2) as usize].clone();
                let (client, key, lic, body) =
                    (client.clone(), key.clone(), lic.clone(), body.clone());
                tasks.spawn(async move {
                    let resp = client
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(key)
                        .header("X-AgentOS-License", lic)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    anyhow::ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
                    Ok::<_, anyhow::Error>(resp.json::<serde_json::Value>().await?)
                });
            }
        }
    }
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    while let Some(r) = tasks.join_next().await {
        let r = r??;
        accepted += r["accepted"].as_u64().unwrap_or(0);
        duplicates += r["duplicates"].as_u64().unwrap_or(0);
    }
    let total = DEVICES * BATCHES * PER_BATCH;
    assert_eq!(accepted, total, "each event stored exactly once");
    assert_eq!(
        duplicates, total,
        "each replayed event recognised as a duplicate"
    );
    assert_eq!(a.state.store().event_count("acme").await?, total);

    let mut views = Vec::new();
    for h in [&a, &b] {
        let (s, summary) = h.get("/v1/summary", &key).await?;
        assert_eq!(s, 200);
        let (s, usage) = h.get("/v1/usage", &key).await?;
        assert_eq!(s, 200);
        let devices: BTreeMap<String, (u64, u64, usize)> = summary["devices"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            (
                                v["events"].as_u64().unwrap_or(0),
                                v["watermark"].as_u64().unwrap_or(0),
                                v["gaps"].as_array().map_or(99, Vec::len),
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let m = &usage["models"]["claude-haiku-4.5"];
        views.push((
            devices,
            m["reqs"].as_u64(),
            m["rolling_in"].as_u64(),
            m["rolling_out"].as_u64(),
        ));
    }
    let (devices, reqs, tin, tout) = &views[0];
    assert_eq!(devices.len() as u64, DEVICES);
    for (events, watermark, gaps) in devices.values() {
        assert_eq!(
            (*events, *watermark, *gaps),
            (BATCHES * PER_BATCH, BATCHES * PER_BATCH, 0)
        );
    }
    assert_eq!(*reqs, Some(total));
    assert_eq!(*tin, Some(total * 100));
    assert_eq!(*tout, Some(total * 50));
    assert_eq!(views[0], views[1], "both collectors answer the same");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_collectors_no_duplicates_consistent_watermarks_and_usage()
-> anyhow::Result<()> {
    let Some(a) = Harness::postgres().await? else {
        return Ok(());
    };
    two_collectors_share_one_database(a).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_collectors_on_one_file_stay_consistent() -> anyhow::Result<()> {
    let a = Harness::sqlite().await?;
    two_collectors_share_one_database(a).await
}
