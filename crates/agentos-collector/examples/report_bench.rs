//! Report and dashboard speed at scale (issue #10 §6): seeds one tenant with N turns (default
//! 1,000,000) over 90 days through the store's ingest path (rollup maintained as in
//! production), then times sequential requests over loopback HTTP:
//! `GET /v1/report?kind=daily` for the 90 days, the overview page `/` for the same range
//! (signed in with a viewer key), `GET /v1/usage`, and `GET /v1/report?kind=session`.
//!
//! ```text
//! cargo run --release -p agentos-collector --example report_bench -- --backend sqlite
//! cargo run --release -p agentos-collector --example report_bench -- --backend postgres
//! ```
//! Options: `--backend sqlite|postgres`, `--turns N`, `--requests N` (per endpoint, default
//! 200), `--server-threads N` (default 2).
//!
//! Latencies are measured by the client around each whole request (loopback, keep-alive), so
//! they are an upper bound of server time.

use std::time::{Duration, Instant};

use agentos_collector::auth::{Role, generate_key_with_role};
use agentos_collector::store::{CoverageUpdate, NewEvent};
use agentos_collector::{AppState, Store, StoreOptions};
use agentos_core::license::Keyring;

struct Opts {
    backend: String,
    turns: u64,
    requests: usize,
    server_threads: usize,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        backend: "sqlite".into(),
        turns: 1_000_000,
        requests: 200,
        server_threads: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--backend" => o.backend = val()?,
            "--turns" => o.turns = num(val()?)?,
            "--requests" => o.requests = num(val()?)? as usize,
            "--server-threads" => o.server_threads = num(val()?)? as usize,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

const MODELS: [&str; 5] = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-haiku-4-5-20251001",
    "glm-4.6",
    "gpt-5",
];
const DEVICES: usize = 20;
const TURNS_PER_SESSION: u64 = 200;
const DAY_US: i64 = 86_400_000_000;

/// Seeds `turns` turns over the 90 days before `now`: sessions of 200 turns, one device each,
/// spread evenly; 10 repositories; 5 models.
async fn seed(store: &Store, turns: u64, now_us: i64) -> Result<Duration, String> {
    let started = Instant::now();
    let sessions = turns.div_ceil(TURNS_PER_SESSION);
    let span = 90 * DAY_US - 3_600_000_000;
    let step = span / i64::try_from(sessions.max(1)).unwrap_or(1);
    let mut seqs = [0u64; DEVICES];
    let mut done = 0u64;
    let mut batch: Vec<NewEvent> = Vec::with_capacity(1010);
    let mut from_seq = 1u64;
    for s in 0..sessions {
        // Five consecutive sessions per device and ingest call: 1000-event batches, so the
        // seeding costs 1,000 durable commits rather than 5,000.
        let device = usize::try_from(s / 5).unwrap_or(0) % DEVICES;
        let start = now_us - span + step * i64::try_from(s).unwrap_or(0);
        let sid = format!("session-{s:07}");
        let dev = format!("device-{device:02}");
        if batch.is_empty() {
            from_seq = seqs[device] + 1;
        }
        seqs[device] += 1;
        batch.push(NewEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            seq: i64::try_from(seqs[device]).unwrap_or(0),
            kind: "session",
            recorded_at_us: start,
            model: None,
            tokens_in: None,
            tokens_out: None,
            cache_creation_tokens: None,
            cache_read_tokens: None,
            latency_ms: None,
            body: "{}".into(),
            turn_key: None,
            session_id: Some(sid.clone()),
            source: None,
            cost_usd: None,
            repo_id: Some(format!("github.com/acme/repo-{}", s % 10)),
            features: 0.0,
            capacity: 0.0,
        });
        let n = TURNS_PER_SESSION.min(turns - done);
        for t in 0..n {
            seqs[device] += 1;
            let i = t as usize;
            batch.push(NewEvent {
                event_id: uuid::Uuid::now_v7().to_string(),
                seq: i64::try_from(seqs[device]).unwrap_or(0),
                kind: "turn",
                // A turn every ~20 s within the session.
                recorded_at_us: start + i64::try_from(t).unwrap_or(0) * 20_000_000,
                model: Some(MODELS[(i / 7) % MODELS.len()].into()),
                tokens_in: Some(1200 + (i as i64 % 500)),
                tokens_out: Some(340 + (i as i64 % 200)),
                cache_creation_tokens: Some(5000),
                cache_read_tokens: Some(60_000),
                latency_ms: Some(2150.5),
                // Production bodies are ~420 bytes; the size only matters for storage here.
                body: format!("{{\"pad\":\"{}\"}}", "x".repeat(400)),
                turn_key: None,
                session_id: Some(sid.clone()),
                source: Some("claude_code".into()),
                cost_usd: i.is_multiple_of(3).then_some(0.0123),
                repo_id: None,
                features: if i.is_multiple_of(50) { 1.0 } else { 0.0 },
                capacity: 0.01,
            });
        }
        done += n;
        if s % 5 == 4 || s + 1 == sessions {
            store
                .ingest_with(
                    "bench",
                    &dev,
                    &batch,
                    &CoverageUpdate {
                        covered: vec![(from_seq, seqs[device])],
                        ..CoverageUpdate::default()
                    },
                    now_us,
                )
                .await
                .map_err(|e| format!("seeding: {e}"))?;
            batch.clear();
        }
    }
    Ok(started.elapsed())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn time(
    client: &reqwest::Client,
    url: &str,
    auth: (&str, &str),
    n: usize,
) -> Result<(Vec<f64>, usize), String> {
    let mut lat = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n + 5 {
        let t = Instant::now();
        let resp = client
            .get(url)
            .header(auth.0, auth.1)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() {
            return Err(format!(
                "{url}: {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        bytes = body.len();
        // The first five warm the caches (a page is served many times).
        if i >= 5 {
            lat.push(ms);
        }
    }
    lat.sort_by(f64::total_cmp);
    Ok((lat, bytes))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse_opts()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.server_threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(run(o))
}

async fn run(o: Opts) -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let mut _cluster = None;
    let url = match o.backend.as_str() {
        "sqlite" => format!("sqlite:{}", tmp.path().join("bench.db").display()),
        "postgres" => {
            let c = agentos_test_support::pg::PgCluster::start(
                agentos_test_support::pg::Durability::Durable,
            )
            .map_err(|e| format!("{e:#}"))?;
            let u = c.admin_url.clone();
            _cluster = Some(c);
            u
        }
        other => return Err(format!("unknown backend {other}").into()),
    };
    let store = Store::connect(&url, &StoreOptions::default()).await?;
    let now = jiff::Timestamp::now().as_microsecond();
    let seeded = seed(&store, o.turns, now).await?;
    println!(
        "seeded {} turns in {:.1} s ({:.0} events/s through Store::ingest_with, rollup included)",
        o.turns,
        seeded.as_secs_f64(),
        o.turns as f64 / seeded.as_secs_f64()
    );
    if let Store::Postgres { pool } = &store {
        // What autovacuum would have done by now on a live database.
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    let (viewer, record) = generate_key_with_role("bench", Role::Viewer, now)?;
    store.insert_key(&record).await?;
    let state = AppState::builder(store.clone(), Keyring::new()).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agentos_collector::serve(listener, state, async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Sign in as a browser would.
    let login = client.get(format!("{base}/login")).send().await?;
    let token = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("aos_login="))
        .and_then(|v| v.split(';').next())
        .ok_or("no login cookie")?
        .to_string();
    let resp = client
        .post(format!("{base}/login"))
        .header("cookie", format!("aos_login={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={viewer}&csrf={token}&next=/"))
        .send()
        .await?;
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("aos_session="))
        .and_then(|v| v.split(';').next())
        .ok_or("sign-in failed")?
        .to_string();
    let today = jiff::Timestamp::from_microsecond(now)?
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let since = today.checked_sub(jiff::Span::new().days(89))?;
    let range = format!("since={since}&until={today}&tz=UTC");
    let bearer = format!("Bearer {viewer}");
    let cookie = format!("aos_session={session}");
    let cases: [(&str, String, (&str, &str)); 4] = [
        (
            "GET /v1/report?kind=daily (90 days)",
            format!("{base}/v1/report?kind=daily&{range}"),
            ("authorization", bearer.as_str()),
        ),
        (
            "GET / (overview page, 90 days)",
            format!("{base}/?{range}"),
            ("cookie", cookie.as_str()),
        ),
        (
            "GET /v1/usage",
            format!("{base}/v1/usage"),
            ("authorization", bearer.as_str()),
        ),
        (
            "GET /v1/report?kind=session (90 days)",
            format!("{base}/v1/report?kind=session&{range}"),
            ("authorization", bearer.as_str()),
        ),
    ];
    println!();
    println!("| backend | request | p50 ms | p95 ms | p99 ms | max ms | body bytes | n |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, url, auth) in &cases {
        let (lat, bytes) = time(&client, url, *auth, o.requests).await?;
        println!(
            "| {} | {name} | {:.1} | {:.1} | {:.1} | {:.1} | {bytes} | {} |",
            o.backend,
            quantile(&lat, 0.5),
            quantile(&lat, 0.95),
            quantile(&lat, 0.99),
            lat.last().copied().unwrap_or(0.0),
            lat.len()
        );
    }
    let _ = tx.send(());
    server.await??;
    store.close().await;
    Ok(())
}
