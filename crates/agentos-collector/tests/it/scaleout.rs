//! Scale-out: two collectors over one PostgreSQL database, clients spread across both, every
//! batch also replayed through the other collector at the same time (a client retrying after a
//! timeout behind a load balancer).

use std::collections::BTreeMap;

use base64::Engine as _;
use tokio::task::JoinSet;

use crate::common::{Harness, batch, turn};

const DEVICES: u64 = 4;
const BATCHES: u64 = 12;
const PER_BATCH: u64 = 50;

async fn get(
    client: &reqwest::Client,
    url: String,
    key: &str,
) -> anyhow::Result<serde_json::Value> {
    let resp = client.get(url).bearer_auth(key).send().await?;
    anyhow::ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    Ok(resp.json().await?)
}

/// Sends every batch through one collector and, concurrently, its replay through the other;
/// then checks both collectors' answers.
async fn spread_workload(
    bases: [String; 2],
    key: String,
    lic: String,
    store: &agentos_collector::Store,
) -> anyhow::Result<()> {
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
    assert_eq!(store.event_count("acme").await?, total);

    let mut views = Vec::new();
    for base in &bases {
        let summary = get(&client, format!("{base}/v1/summary"), &key).await?;
        let usage = get(&client, format!("{base}/v1/usage"), &key).await?;
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
        let m = &usage["models"]["claude-haiku-4-5-20251001"];
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

async fn two_collectors_share_one_database(a: Harness) -> anyhow::Result<()> {
    let b = a.sibling().await?;
    let key = a.key("acme").await?;
    spread_workload(
        [a.base.clone(), b.base.clone()],
        key,
        a.full(),
        a.state.store(),
    )
    .await
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

const CHILD_DB_ENV: &str = "AGENTOS_COLLECTOR_TEST_CHILD_DB";
const CHILD_KEYS_ENV: &str = "AGENTOS_COLLECTOR_TEST_CHILD_PUBKEYS";

/// Not a test on its own: the body of a collector *process* that
/// `two_collector_processes_over_one_postgres` starts by re-running this test binary.
#[test]
#[ignore = "runs only as a child process of the scale-out test"]
fn child_collector_process() -> anyhow::Result<()> {
    let (Ok(db), Ok(keys)) = (std::env::var(CHILD_DB_ENV), std::env::var(CHILD_KEYS_ENV)) else {
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store =
            agentos_collector::Store::connect(&db, &agentos_collector::StoreOptions::default())
                .await?;
        let mut ring = agentos_core::license::Keyring::new();
        ring.extend_from_env(&keys)?;
        let state = agentos_collector::AppState::builder(store, ring)
            .clock(std::sync::Arc::new(
                agentos_collector::clock::ManualClock::new(crate::common::NOW_US),
            ))
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("LISTENING http://{}", listener.local_addr()?);
        agentos_collector::serve(listener, state, agentos_collector::shutdown_signal()).await?;
        Ok(())
    })
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_collector(db: &str, keys: &str) -> anyhow::Result<(Child, String)> {
    use std::io::BufRead as _;
    let mut child = Child(
        std::process::Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "scaleout::child_collector_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB_ENV, db)
            .env(CHILD_KEYS_ENV, keys)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    // libtest prints `test name ... ` before the child's own output on the same line, so look
    // for the marker anywhere in a line; keep draining afterwards so the child never blocks.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(i) = line.find("LISTENING ") {
                let _ = tx.send(line[i + "LISTENING ".len()..].trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .map_err(|_| anyhow::anyhow!("collector child did not start listening within 60 s"))?;
    Ok((child, base))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collector_processes_over_one_postgres() -> anyhow::Result<()> {
    // The harness only provides the database, the key and a signed license here.
    let Some(h) = Harness::postgres().await? else {
        return Ok(());
    };
    let key = h.key("acme").await?;
    let pubkey =
        base64::engine::general_purpose::STANDARD.encode(h.signing.verifying_key().as_bytes());
    let keys = format!("{}={pubkey}", crate::common::KID);
    let (mut c1, base1) = tokio::task::block_in_place(|| spawn_collector(&h.url, &keys))?;
    let (mut c2, base2) = tokio::task::block_in_place(|| spawn_collector(&h.url, &keys))?;
    spread_workload([base1, base2], key, h.full(), h.state.store()).await?;
    // SIGTERM: both processes shut down gracefully and exit 0.
    for c in [&mut c1, &mut c2] {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &c.0.id().to_string()])
            .status()?;
        assert!(status.success());
        let exit = tokio::task::block_in_place(|| c.0.wait())?;
        assert!(exit.success(), "collector process exited with {exit}");
    }
    Ok(())
}
