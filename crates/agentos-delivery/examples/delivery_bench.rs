//! End-to-end delivery benchmark: N recorded events → `agentos ccc sync` (a separate process,
//! measured with `/usr/bin/time -v`) → the loopback recording server of agentos-test-support
//! (in this process, bodies not kept).
//!
//! ```text
//! cargo build --release -p agentos-cli -p agentos-delivery --example delivery_bench
//! target/release/examples/delivery_bench --events 1000000 --agentos target/release/agentos
//! ```
//!
//! Prints one JSON object: events, log bytes, wall seconds, events/s, the uploader's peak RSS,
//! and the server's view (stored, duplicates, watermark) — zero loss means stored == events and
//! watermark == events.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use agentos_core::event::{
    Envelope, EventBody, EventId, InputKind, Measurement, SessionId, Turn, TurnEvent, TurnId,
    ValueRecord,
};
use agentos_core::tier::Tier;
use agentos_test_support::http::{RecordingServer, ServerOptions};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn envelope(seq: u64) -> Envelope {
    Envelope {
        event_id: EventId(uuid::Uuid::now_v7()),
        seq,
        recorded_at: jiff::Timestamp::now(),
        tier: Tier::Full,
        body: EventBody::Turn(TurnEvent {
            turn: Turn {
                turn_id: TurnId(format!("turn-{seq}")),
                session_id: SessionId(format!("session-{}", seq / 200)),
                model: "claude-sonnet-4.5".into(),
                subagent: "main".into(),
                tokens_in: 1000 + seq % 977,
                tokens_out: 300 + seq % 311,
                input_kind: InputKind::Text,
                latency_ms: 850.0,
                attribution: Some(
                    [("claude-sonnet-4.5".to_string(), 1.0)]
                        .into_iter()
                        .collect(),
                ),
                capacity_used: Some(0.5),
                cache_creation_tokens: None,
                cache_read_tokens: None,
                source: None,
            },
            measurement: Some(Measurement {
                cls: 1.2,
                impf: 4.5,
                churn_score: 0.1,
                feature_delta: 1.0,
                errors: Some(vec!["lint: unused import".into()]),
                error_count: None,
            }),
            value: Some(ValueRecord {
                summary: "login works".into(),
                links: Some(vec!["https://example.invalid/pr/1".into()]),
                evidence_refs: Some(vec!["/home/me/evidence.txt".into()]),
            }),
            ..TurnEvent::default()
        }),
    }
}

fn main() -> anyhow::Result<()> {
    let events: u64 = arg("--events").map_or(Ok(1_000_000), |v| v.parse())?;
    let agentos =
        PathBuf::from(arg("--agentos").unwrap_or_else(|| "target/release/agentos".into()));
    let batch: Option<String> = arg("--batch-max-events");
    let keep = arg("--keep-dir").map(PathBuf::from);
    anyhow::ensure!(
        agentos.exists(),
        "{} not found; build it with cargo build --release -p agentos-cli",
        agentos.display()
    );

    let tmp = tempfile::tempdir()?;
    let data = keep.unwrap_or_else(|| tmp.path().join("data"));
    std::fs::create_dir_all(&data)?;
    let log = data.join("windows.jsonl");
    let t_gen = Instant::now();
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&log)?);
        for seq in 1..=events {
            serde_json::to_writer(&mut w, &envelope(seq))?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    let log_bytes = std::fs::metadata(&log)?.len();
    eprintln!(
        "wrote {events} events ({log_bytes} bytes) in {:.1}s",
        t_gen.elapsed().as_secs_f64()
    );
    // Full-tier events leave only under a license entitling `telemetry_full` (otherwise they
    // are held back): a throwaway signing key, its pack, and the key trusted in the config.
    let key = agentos_config::license::generate_signing_key()?;
    let claims =
        agentos_test_support::fixtures::license_claims("bench", &["telemetry_full"], 4_000_000_000);
    let pack = data.join("license.json");
    std::fs::write(&pack, agentos_core::license::issue_pack(&key, &claims))?;
    let mut toml = format!(
        "[license]\npack = {:?}\npubkeys = {{ bench = {:?} }}\n",
        pack.display().to_string(),
        agentos_core::license::public_key_base64(&key.verifying_key())
    );
    if let Some(b) = &batch {
        toml.push_str(&format!(
            "[delivery]\nbatch_max_events = {b}\nbatch_max_bytes = 900000\n"
        ));
    }
    std::fs::write(data.join("agentos.toml"), toml)?;

    let server = RecordingServer::start_with(ServerOptions {
        record_bodies: false,
        ..ServerOptions::default()
    })?;
    let t0 = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&agentos)
        .args(["--data-dir"])
        .arg(&data)
        .args(["ccc", "sync", "--timeout", "3600s", "--json"])
        .env("AGENTOS_CCC_URL", server.url())
        .env("AGENTOS_CCC_API_KEY", "bench")
        .env("AGENTOS_TIER", "full")
        .env_remove("DO_NOT_TRACK")
        .env_remove("AGENTOS_CONFIG")
        .output()?;
    let wall = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let max_rss_kb: u64 = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let secs = |label: &str| -> f64 {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let user_s = secs("User time (seconds):");
    let sys_s = secs("System time (seconds):");
    let device = std::fs::read_to_string(data.join("device_id"))?
        .trim()
        .to_owned();
    let stored = server.event_count() as u64;
    let result = serde_json::json!({
        "events": events,
        "log_bytes": log_bytes,
        "wall_seconds": wall,
        "events_per_second": events as f64 / wall,
        "uploader_max_rss_mb": max_rss_kb as f64 / 1024.0,
        "uploader_exit": out.status.code(),
        "uploader_user_seconds": user_s,
        "uploader_sys_seconds": sys_s,
        "server_stored": stored,
        "server_duplicates": server.duplicates(),
        "server_watermark": server.watermark(&device),
        "server_requests": server.requests().len(),
        "zero_loss": stored == events && server.watermark(&device) == events,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{stderr}");
        anyhow::bail!("uploader failed");
    }
    Ok(())
}
