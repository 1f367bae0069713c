//! Load generator for the collector: sustained batched ingest over loopback HTTP, bounded in
//! time. Starts its own collector (SQLite file in a temp dir, or a throwaway durable PostgreSQL
//! cluster) unless `--url` points at a running one.
//!
//! Run with:
//! ```text
//! cargo run --release -p agentos-collector --example loadgen -- --backend sqlite --seconds 10
//! cargo run --release -p agentos-collector --example loadgen -- --backend postgres --seconds 10
//! ```
//! Options: `--backend sqlite|postgres`, `--seconds N` (default 10), `--clients N` (concurrent
//! devices, default 4), `--batch N` (events per batch, default 500), `--server-threads N`
//! (default 2), `--url http://… --key K --license B64` (external collector).
//!
//! Every batch is committed before it is acknowledged (SQLite `synchronous=FULL`, PostgreSQL
//! with fsync and synchronous_commit on), so the figure is durable throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentos_collector::{AppState, Store, StoreOptions};
use agentos_core::license::{
    Claims, Keyring, LICENSE_SCHEMA, Plan, issue_pack, signing_key_from_seed,
};
use base64::Engine as _;

struct Opts {
    backend: String,
    seconds: u64,
    clients: usize,
    batch: usize,
    server_threads: usize,
    url: Option<String>,
    key: Option<String>,
    license: Option<String>,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        backend: "sqlite".into(),
        seconds: 10,
        clients: 4,
        batch: 500,
        server_threads: 2,
        url: None,
        key: None,
        license: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--backend" => o.backend = val()?,
            "--seconds" => o.seconds = num(val()?)?.clamp(1, 600),
            "--clients" => o.clients = num(val()?)? as usize,
            "--batch" => o.batch = num(val()?)? as usize,
            "--server-threads" => o.server_threads = num(val()?)? as usize,
            "--url" => o.url = Some(val()?),
            "--key" => o.key = Some(val()?),
            "--license" => o.license = Some(val()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// One realistic full-tier turn envelope (≈ 420 bytes), built by string formatting so the
/// client spends as little CPU as possible.
fn event(out: &mut String, device: usize, seq: u64, recorded_at: &str) {
    use std::fmt::Write as _;
    let id = uuid::Uuid::now_v7();
    let model = if seq.is_multiple_of(3) {
        "glm-4.6"
    } else {
        "claude-haiku-4.5"
    };
    let _ = write!(
        out,
        r#"{{"type":"turn","event_id":"{id}","seq":{seq},"recorded_at":"{recorded_at}","tier":"full","turn":{{"turn_id":"t{seq}","session_id":"s-{device}","model":"{model}","subagent":"","tokens_in":1200,"tokens_out":340,"input_kind":"text","latency_ms":2150.5}},"measurement":{{"cls":1.2,"impf":4.5,"churn_score":0.1,"feature_delta":0.0}},"cost":{{"provider":"anth","estimated_usd":0.0123}}}}"#
    );
}

fn batch_body(device: usize, from: u64, n: usize) -> Vec<u8> {
    let recorded_at = jiff::Timestamp::now().to_string();
    let mut s = String::with_capacity(n * 460 + 200);
    s.push_str(&format!(
        r#"{{"device_id":"loadgen-{device}","batch_id":"{}","covers":{{"from":{from},"to":{}}},"events":["#,
        uuid::Uuid::now_v7(),
        from + n as u64 - 1
    ));
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        event(&mut s, device, from + i as u64, &recorded_at);
    }
    s.push_str("]}");
    s.into_bytes()
}

struct Target {
    base: String,
    key: String,
    license: String,
    state: Option<AppState>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse_opts()?;
    // Sanity: the generated events are valid v1 envelopes.
    let sample = batch_body(0, 1, 1);
    let v: serde_json::Value = serde_json::from_slice(&sample)?;
    agentos_core::schema::validate_envelope(&v["events"][0])?;

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.server_threads.max(1))
        .thread_name("collector")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("loadgen")
        .enable_all()
        .build()?;

    let tmp = tempfile::tempdir()?;
    let mut _pg_cluster = None;
    let target = match (&o.url, &o.key, &o.license) {
        (Some(url), Some(key), Some(lic)) => Target {
            base: url.trim_end_matches('/').to_string(),
            key: key.clone(),
            license: lic.clone(),
            state: None,
        },
        (Some(_), _, _) => return Err("--url needs --key and --license".into()),
        _ => {
            let db_url = match o.backend.as_str() {
                "sqlite" => format!("sqlite:{}", tmp.path().join("loadgen.db").display()),
                "postgres" => {
                    let c = agentos_test_support::pg::PgCluster::start(
                        agentos_test_support::pg::Durability::Durable,
                    )
                    .map_err(|e| format!("{e:#}"))?;
                    let url = c.admin_url.clone();
                    _pg_cluster = Some(c);
                    url
                }
                other => return Err(format!("unknown backend {other}").into()),
            };
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
            let signing = signing_key_from_seed(&seed);
            let mut ring = Keyring::new();
            ring.insert("loadgen", signing.verifying_key());
            let claims = Claims {
                device: None,
                exp: jiff::Timestamp::now().as_second() + 3600,
                features: vec!["telemetry_full".into()],
                iat: None,
                kid: "loadgen".into(),
                nonce: None,
                plan: Plan::Pro,
                schema: LICENSE_SCHEMA.into(),
                sub: None,
            };
            let license =
                base64::engine::general_purpose::STANDARD.encode(issue_pack(&signing, &claims));
            server_rt.block_on(async {
                let store = Store::connect(&db_url, &StoreOptions::default()).await?;
                let (key, rec) = agentos_collector::auth::generate_key("loadgen", 0)?;
                store.insert_key(&rec).await?;
                let state = AppState::builder(store, ring).build();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let base = format!("http://{}", listener.local_addr()?);
                let st = state.clone();
                tokio::spawn(async move {
                    let _ = agentos_collector::serve(listener, st, std::future::pending()).await;
                });
                Ok::<_, Box<dyn std::error::Error>>(Target {
                    base,
                    key,
                    license,
                    state: Some(state),
                })
            })?
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let results = client_rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let mut handles = Vec::new();
        for device in 0..o.clients {
            let (client, stop) = (client.clone(), stop.clone());
            let url = format!("{}/v1/events", target.base);
            let (key, lic, batch) = (target.key.clone(), target.license.clone(), o.batch);
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let (mut accepted, mut errors, mut seq) = (0u64, 0u64, 1u64);
                while !stop.load(Ordering::Relaxed) {
                    let body = batch_body(device, seq, batch);
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("X-AgentOS-License", &lic)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().is_success() => {
                            let v: serde_json::Value = r.json().await.unwrap_or_default();
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                            accepted += v["accepted"].as_u64().unwrap_or(0);
                            seq += batch as u64;
                        }
                        _ => errors += 1,
                    }
                }
                (lat, accepted, errors)
            }));
        }
        tokio::time::sleep(Duration::from_secs(o.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = (Vec::new(), 0u64, 0u64);
        for h in handles {
            let (l, a, e) = h.await?;
            all.0.extend(l);
            all.1 += a;
            all.2 += e;
        }
        Ok::<_, Box<dyn std::error::Error>>(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let (mut lat, accepted, errors) = results;
    lat.sort_by(f64::total_cmp);
    let stored = match &target.state {
        Some(s) => Some(server_rt.block_on(s.store().event_count("loadgen"))?),
        None => None,
    };
    println!(
        "backend={} clients={} batch={} seconds={:.1} batches={} accepted_events={} stored_events={} errors={}",
        if o.url.is_some() {
            "external"
        } else {
            o.backend.as_str()
        },
        o.clients,
        o.batch,
        elapsed,
        lat.len(),
        accepted,
        stored.map_or_else(|| "n/a".into(), |n| n.to_string()),
        errors
    );
    println!(
        "throughput_events_per_s={:.0} batch_latency_ms p50={:.2} p99={:.2} max={:.2}",
        accepted as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    if let Some(s) = &target.state {
        server_rt.block_on(s.store().close());
    }
    Ok(())
}
